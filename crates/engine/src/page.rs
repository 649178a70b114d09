//! `dfpipe report`: the report crate's page, filled from a plan and the store. Nothing is
//! executed but the contract checks (the queries of `dfpipe check`).

use std::collections::{BTreeMap, BTreeSet};

use dfpipe_artifacts::{RunRecord, ViewChange, ViewDiff, WriteRecord, diff_runs};
use dfpipe_report::{
    Bar, LastStatus, LastWrite, Report, RunSummary, Schedules, SourceNode, Timeline, ViewPage, render,
};
use dfpipe_scheduler::Schedule;
use dfpipe_writer::WriteReport;

use crate::pipeline::{Pipeline, RunOptions};
use crate::planned::Planned;
use crate::spec::{Materialize, SourceFormat};
use crate::{EngineError, Result};

/// Sample rows shown per violated constraint.
const SAMPLES: usize = 3;

impl Pipeline {
    /// The HTML report of the pipeline: one self-contained page with the DAG of views and
    /// sources coloured by their last status, each view's columns and lineage (down to the
    /// sources), tree explain, last write, contract results and diff against the previous
    /// run, and the last run's Gantt chart beside the predicted schedule. Plans every view
    /// (with `options`' parameters and workers) and checks the contracts; runs no view.
    pub async fn html_report(&self, options: &RunOptions) -> Result<String> {
        let started = std::time::Instant::now();
        let planned = self.plan(options).await?;
        let planned_ms = started.elapsed().as_millis();
        let report = self.report_data(&planned).await?;
        let gathered_ms = started.elapsed().as_millis();
        let page =
            render(&report).map_err(|e| EngineError::Internal(format!("cannot encode the report's data: {e}")))?;
        tracing::info!(
            planned_ms,
            checked_and_read_ms = gathered_ms - planned_ms,
            rendered_ms = started.elapsed().as_millis() - gathered_ms,
            bytes = page.len(),
            "report written"
        );
        Ok(page)
    }

    async fn report_data(&self, planned: &Planned) -> Result<Report> {
        let store = &planned.store;
        let ids = store.run_ids()?;
        let latest = ids.last().map(|id| store.run(id)).transpose()?;
        let previous = ids.len().checked_sub(2).map(|at| store.run(&ids[at])).transpose()?;
        let mut diffs: BTreeMap<String, ViewDiff> = match (&previous, &latest) {
            (Some(from), Some(to)) => diff_runs(store, from, to)?
                .views
                .into_iter()
                .filter(|v| v.change != ViewChange::Unchanged)
                .map(|v| (v.name.clone(), v))
                .collect(),
            _ => BTreeMap::new(),
        };
        let mut writes = last_writes(planned, &ids)?;
        let contracts: Vec<_> = planned.spec.contracts.values().cloned().collect();
        let checked = dfpipe_contract::check(planned.context(), &contracts, SAMPLES).await?;
        let deep = planned.lineage(true).views;
        let views = (planned.views.iter().zip(deep))
            .map(|(view, deep)| {
                let template = self.templates().any(|t| t.name() == view.name);
                let file = self.dir().join("views").join(format!("{}.sql", view.name));
                let unparsed = view.bundle.sql.as_ref().and_then(|s| s.sql.clone());
                ViewPage {
                    name: view.name.clone(),
                    kind: if template { "template" } else { "sql" }.to_owned(),
                    materialize: match view.spec.materialize {
                        Materialize::Lazy => "lazy",
                        Materialize::Parquet => "parquet",
                    }
                    .to_owned(),
                    fingerprint: view.fingerprint.to_string(),
                    will_run: view.decision.will_run,
                    reason: view.decision.reason.clone(),
                    last: view.last.as_ref().map(|l| LastStatus {
                        status: l.status,
                        reason: l.reason.clone(),
                        duration_ms: l.duration_ms,
                        rows: l.rows,
                    }),
                    columns: view.bundle.schema.clone(),
                    lineage: view.bundle.lineage.clone(),
                    deep: deep.lineage,
                    tree: view.bundle.tree.clone(),
                    sql: if template { unparsed } else { std::fs::read_to_string(file).ok().or(unparsed) },
                    write: writes.remove(&view.name),
                    diff: diffs.remove(&view.name),
                }
            })
            .collect();
        let sources = (planned.spec.sources.iter())
            .map(|(name, source)| SourceNode {
                name: name.clone(),
                location: source.path.clone(),
                format: match source.format {
                    SourceFormat::Parquet => "parquet",
                    SourceFormat::Csv => "csv",
                    SourceFormat::Json => "json",
                    SourceFormat::Arrow => "arrow",
                }
                .to_owned(),
            })
            .collect();
        let actual = latest.as_ref().map(|run| actual(planned, run)).transpose()?.flatten();
        let predicted = predicted(planned, actual.as_ref())?;
        Ok(Report {
            pipeline: planned.spec.pipeline.name.clone(),
            run: latest.as_ref().map(|run| RunSummary {
                run_id: run.run_id.clone(),
                status: run.status,
                previous_run_id: previous.as_ref().map(|p| p.run_id.clone()),
            }),
            sources,
            views,
            schedule: Schedules { actual, predicted },
            contracts: checked.results,
        })
    }
}

/// The last write of each planned view that has one, reading each run record once, newest
/// first, until every materialized view has been found.
fn last_writes(planned: &Planned, ids: &[String]) -> Result<BTreeMap<String, LastWrite>> {
    let wanted: BTreeSet<&str> = planned.views.iter().filter(|v| v.write.is_some()).map(|v| v.name.as_str()).collect();
    let mut found = BTreeMap::new();
    for id in ids.iter().rev() {
        if found.len() == wanted.len() {
            break;
        }
        for view in planned.store.run(id)?.views {
            if !wanted.contains(view.name.as_str()) || found.contains_key(&view.name) {
                continue;
            }
            if let Some(report) = view.write.as_ref().map(WriteRecord::report::<WriteReport>).transpose()?.flatten() {
                found.insert(view.name, LastWrite { run_id: id.clone(), report });
            }
        }
    }
    Ok(found)
}

/// The last run as it went: each view that executed, on its worker slot. `None` when no view
/// executed, or the run was recorded by a dfpipe that kept no start times.
fn actual(planned: &Planned, run: &RunRecord) -> Result<Option<Timeline>> {
    let bars: Vec<Bar> = (run.views.iter())
        .filter_map(|v| {
            let (start, duration, worker) = (v.started_ms?, v.duration_ms?, v.worker?);
            Some(Bar {
                view: v.name.clone(),
                worker,
                start_ms: start,
                end_ms: start + duration,
                status: Some(v.status),
            })
        })
        .collect();
    if bars.is_empty() {
        return Ok(None);
    }
    let slots = bars.iter().map(|b| b.worker + 1).max().unwrap_or(1);
    let workers = run.workers.unwrap_or(slots).max(slots);
    let ran: BTreeMap<&str, u64> = bars.iter().map(|b| (b.view.as_str(), b.end_ms - b.start_ms)).collect();
    let measured: Vec<u64> = planned.views.iter().map(|v| ran.get(v.name.as_str()).copied().unwrap_or(0)).collect();
    let schedule = planned.graph.schedule(&measured, workers)?;
    let mut bars = bars;
    bars.sort_by_key(|b| (b.start_ms, b.worker));
    Ok(Some(Timeline {
        workers,
        makespan_ms: bars.iter().map(|b| b.end_ms).max().unwrap_or(0),
        lower_bound_ms: schedule.lower_bound,
        critical_path: critical_path(planned, &schedule, &measured),
        bars,
    }))
}

/// The schedule the cost model predicts for the views the last run executed (or, before any
/// run, for those that would run now) on as many workers.
fn predicted(planned: &Planned, actual: Option<&Timeline>) -> Result<Timeline> {
    let ran: BTreeSet<&str> = actual.map(|t| t.bars.iter().map(|b| b.view.as_str()).collect()).unwrap_or_default();
    let costs: Vec<u64> = (planned.views.iter())
        .map(|v| {
            let included = if ran.is_empty() { v.decision.will_run } else { ran.contains(v.name.as_str()) };
            if included { v.cost.value } else { 0 }
        })
        .collect();
    let workers = actual.map_or(planned.workers, |t| t.workers);
    let schedule = planned.graph.schedule(&costs, workers)?;
    Ok(Timeline {
        workers,
        makespan_ms: schedule.makespan,
        lower_bound_ms: schedule.lower_bound,
        critical_path: critical_path(planned, &schedule, &costs),
        bars: (schedule.tasks.iter())
            .filter(|t| costs[t.task] > 0)
            .map(|t| Bar {
                view: planned.views[t.task].name.clone(),
                worker: t.worker,
                start_ms: t.start,
                end_ms: t.finish,
                status: None,
            })
            .collect(),
    })
}

/// The names of the views of `schedule`'s critical path that cost anything.
fn critical_path(planned: &Planned, schedule: &Schedule, costs: &[u64]) -> Vec<String> {
    (schedule.critical_path.iter()).filter(|&&id| costs[id] > 0).map(|&id| planned.views[id].name.clone()).collect()
}
