//! Executing a planned pipeline: write what must run, in critical-path order, then record.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use datafusion::physical_plan::ExecutionPlan;
use dfpipe_artifacts::{RunRecord, RunStatus, ViewRecord, ViewStatus, collect_metrics};
use dfpipe_scheduler::{ExecuteOptions, TaskOutcome};
use dfpipe_writer::{SortColumn, WriteSpec, clean_staging, write};

use crate::materialized::OutputDir;
use crate::pipeline::Planned;
use crate::report::{RunReport, ViewRunReport};
use crate::{EngineError, Result};

/// Progress of a run, for a display to follow. The engine never prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The run starts executing `total` views.
    Started {
        /// How many views will execute.
        total: usize,
    },
    /// A view started executing.
    ViewStarted {
        /// The view.
        view: String,
    },
    /// A view finished, with its status.
    ViewFinished {
        /// The view.
        view: String,
        /// `succeeded`, `failed`, or `skipped` when the run was cancelled while it ran.
        status: String,
    },
}

/// What executing one view produced.
struct Executed {
    rows: Option<u64>,
    metrics: BTreeMap<String, u64>,
    /// The physical plan that ran: its operators hold the execution's metrics.
    physical: Arc<dyn ExecutionPlan>,
}

impl Planned {
    /// Executes the views that must run, at most `workers` at a time in critical-path order,
    /// commits their outputs, and records the bundles and the run in the store. A failed
    /// view skips its descendants; independent branches go on.
    pub async fn run(self, progress: Arc<dyn Fn(Event) + Send + Sync>) -> Result<RunReport> {
        if let OutputDir::Local(dir) = &self.output {
            std::fs::create_dir_all(dir).map_err(|source| EngineError::Io {
                action: "cannot create output directory",
                path: dir.clone(),
                source,
            })?;
        }
        let leftovers = clean_staging(&self.ctx.runtime_env(), &self.output.location()).await?;
        if leftovers > 0 {
            tracing::info!(leftovers, "repaired or removed staging leftovers of an interrupted run");
        }
        let run_id = run_id();
        let costs = self.costs();
        progress(Event::Started { total: self.views.iter().filter(|v| v.will_run).count() });
        let parquet = self.spec.profile.parquet_options();
        let knobs = self.spec.profile.writer_knobs();
        let started = Instant::now();
        let cancel = self.execution.cancel.clone();
        let mut execution =
            ExecuteOptions::new(self.workers).fail_fast(self.execution.fail_fast).cancel_on(cancel.clone());
        if self.execution.dynamic {
            // The engine's costs are milliseconds.
            execution = execution.dynamic(std::time::Duration::from_millis(1));
        }
        let report = self
            .graph
            .execute_with(&costs, execution, |id, ()| {
                let view = &self.views[id];
                let task = view.will_run.then(|| {
                    let plan = Arc::clone(&view.physical);
                    let state = self.ctx.state();
                    // The leading `sort_by` keys that are output columns: the order every file has.
                    let schema = view.physical.schema();
                    let sort_by = view
                        .spec
                        .sort_by
                        .iter()
                        .map_while(|s| SortColumn::parse(s).ok().filter(|k| schema.index_of(&k.column).is_ok()))
                        .collect();
                    let spec = WriteSpec {
                        target: self.output.target(&view.name),
                        options: parquet.clone(),
                        partition_by: view.spec.partition_by.clone(),
                        sort_by,
                        knobs: knobs.clone(),
                        ..WriteSpec::default()
                    };
                    let contract = self.spec.contracts.get(&view.name).cloned();
                    let ctx = self.ctx.clone();
                    let replan = view.reads_outputs.then(|| view.optimized.clone());
                    let cancel = cancel.clone();
                    tokio::spawn(async move {
                        // A reader of committed outputs lists their files now, after its
                        // upstream views committed: the same optimized plan, planned physically again.
                        let plan = match replan {
                            Some(optimized) => state
                                .query_planner()
                                .create_physical_plan(&optimized, &state)
                                .await
                                .map_err(|e| e.strip_backtrace())?,
                            None => plan,
                        };
                        // A cancelled write is dropped, and with it its staging directory.
                        let staged = tokio::select! {
                            biased;
                            () = cancel.cancelled() => return Err(Halt::Cancelled),
                            staged = write(Arc::clone(&plan), &state, &spec) => staged.map_err(|e| e.to_string())?,
                        };
                        if let Some(contract) = contract {
                            check_staged(&ctx, contract, &staged).await?;
                        }
                        // The last point to stop: once the commit begins, it completes.
                        if cancel.is_cancelled() {
                            staged.discard().await.map_err(|e| e.to_string())?;
                            return Err(Halt::Cancelled);
                        }
                        let report = staged.commit().await.map_err(|e| e.to_string())?;
                        let metrics = BTreeMap::from([
                            ("bytes".to_owned(), report.bytes),
                            ("files".to_owned(), report.files.len() as u64),
                        ]);
                        Ok::<_, Halt>(Executed { rows: Some(report.rows), metrics, physical: plan })
                    })
                });
                let progress = Arc::clone(&progress);
                let name = view.name.clone();
                async move {
                    let Some(task) = task else { return Ok(None) };
                    progress(Event::ViewStarted { view: name.clone() });
                    let result = match task.await {
                        Ok(result) => result,
                        Err(join) => Err(Halt::Failed(format!("the task running the view panicked: {join}"))),
                    };
                    let status = match &result {
                        Ok(_) => "succeeded",
                        Err(Halt::Cancelled) => "skipped",
                        Err(Halt::Failed(_)) => "failed",
                    };
                    progress(Event::ViewFinished { view: name, status: status.to_owned() });
                    result.map(Some)
                }
            })
            .await?;
        let wall_ms = started.elapsed().as_millis() as u64;

        let mut views = Vec::with_capacity(self.views.len());
        let mut records = Vec::with_capacity(self.views.len());
        let mut measured = vec![0u64; self.views.len()];
        // Views stopped by the cancellation, and whether any view that had to run was.
        let cancelled: BTreeSet<usize> = (report.outcomes.iter().enumerate())
            .filter(|(_, o)| matches!(o, TaskOutcome::Failed { error: Halt::Cancelled, .. }))
            .map(|(id, _)| id)
            .collect();
        let mut interrupted = false;
        for (id, (view, outcome)) in self.views.iter().zip(report.outcomes).enumerate() {
            let ran = matches!(outcome, TaskOutcome::Succeeded { value: Some(_), .. });
            let stopped_by_cancel = view.will_run
                && match &outcome {
                    TaskOutcome::Failed { error: Halt::Cancelled, .. } => true,
                    TaskOutcome::UpstreamFailed { failed } => cancelled.contains(failed),
                    TaskOutcome::Cancelled => cancel.is_cancelled(),
                    _ => false,
                };
            interrupted |= stopped_by_cancel;
            let mut executed_plan = None;
            let (status, reason, rows, duration_ms, metrics) = match outcome {
                TaskOutcome::Succeeded { value: Some(executed), duration } => {
                    let ms = duration.as_millis() as u64;
                    measured[id] = ms;
                    executed_plan = Some(executed.physical);
                    (ViewStatus::Succeeded, None, executed.rows, Some(ms), executed.metrics)
                }
                // A view with nothing to do keeps its reason, whether or not a failure or a
                // stop kept the executor from visiting it.
                _ if !view.will_run => (ViewStatus::Skipped, Some(view.reason.clone()), None, None, BTreeMap::new()),
                TaskOutcome::Failed { error: Halt::Cancelled, .. } => {
                    (ViewStatus::Skipped, Some(CANCELLED.to_owned()), None, None, BTreeMap::new())
                }
                _ if stopped_by_cancel => {
                    (ViewStatus::Skipped, Some(NOT_STARTED.to_owned()), None, None, BTreeMap::new())
                }
                TaskOutcome::Failed { error: Halt::Failed(error), duration } => {
                    (ViewStatus::Failed, Some(error), None, Some(duration.as_millis() as u64), BTreeMap::new())
                }
                TaskOutcome::UpstreamFailed { failed } => (
                    ViewStatus::UpstreamFailed,
                    Some(format!("upstream view `{}` failed", self.views[failed].name)),
                    None,
                    None,
                    BTreeMap::new(),
                ),
                TaskOutcome::Succeeded { value: None, .. } | TaskOutcome::Cancelled => (
                    ViewStatus::Skipped,
                    Some("not started: an earlier failure stopped the run (--fail-fast)".to_owned()),
                    None,
                    None,
                    BTreeMap::new(),
                ),
            };
            // A view that ran gets its bundle with the metrics of that execution; a view that did
            // not keeps the bundle (and metrics) of the run that last executed that plan.
            if let Some(physical) = executed_plan {
                let mut bundle = view.bundle.clone();
                bundle.metrics = collect_metrics(physical.as_ref(), self.spec.profile.analyze_level);
                self.store.put_bundle(&view.fingerprint, &bundle)?;
            } else if self.store.bundle(&view.fingerprint)?.is_none() {
                self.store.put_bundle(&view.fingerprint, &view.bundle)?;
            }
            records.push(ViewRecord {
                name: view.name.clone(),
                fingerprint: view.fingerprint.clone(),
                output_fingerprint: if ran { Some(view.fingerprint.clone()) } else { view.output_fingerprint.clone() },
                status,
                reason: reason.clone(),
                rows,
                duration_ms,
                // Only a successful run measures the cost; other runs keep the last measurement.
                cost_ms: if ran { duration_ms } else { (view.cost_source == "measured").then_some(view.cost_ms) },
                metrics,
                write: None,
            });
            views.push(ViewRunReport {
                name: view.name.clone(),
                status: status.to_string(),
                reason,
                rows,
                duration_ms,
                fingerprint: view.fingerprint.to_string(),
                cost_source: view.cost_source.to_owned(),
            });
        }
        // A run stopped before it did what it was asked fails; its views run next time.
        let failed = interrupted || views.iter().any(|v| v.status == "failed" || v.status == "upstream_failed");
        let status = if failed { RunStatus::Failed } else { RunStatus::Succeeded };
        self.store.put_run(&RunRecord { run_id: run_id.clone(), status, views: records, environment: None })?;

        // The schedule as it ran: measured durations, the wall time as the makespan.
        let actual = self.graph.schedule(&measured, self.workers)?;
        let mut schedule = self.schedule_report(&actual);
        schedule.makespan_ms = wall_ms;
        schedule.critical_path = actual
            .critical_path
            .iter()
            .filter(|&&id| measured[id] > 0)
            .map(|&id| self.views[id].name.clone())
            .collect();
        Ok(RunReport { run_id, status: status.to_string(), views, schedule })
    }
}

/// Why a view's task stopped short of its commit.
enum Halt {
    /// It failed: the message says why.
    Failed(String),
    /// The run was cancelled while it ran.
    Cancelled,
}

impl From<String> for Halt {
    fn from(message: String) -> Self {
        Self::Failed(message)
    }
}

/// Why a view that was running when the run was cancelled did not commit.
const CANCELLED: &str = "cancelled while running: nothing committed, the previous output stays";
/// Why a view that had not started when the run was cancelled did not run.
const NOT_STARTED: &str = "not started: the run was cancelled";

/// Checks a view's contract on its staged output, before the commit. Violations fail the view.
async fn check_staged(
    ctx: &datafusion::prelude::SessionContext,
    mut contract: dfpipe_contract::Contract,
    staged: &dfpipe_writer::Staged,
) -> Result<(), String> {
    let view = std::mem::take(&mut contract.relation);
    let staged_name = format!("__dfpipe_staged_{view}");
    staged
        .register(ctx, &staged_name)
        .map_err(|e| format!("cannot read the staged output to check its contract: {e}"))?;
    contract.relation.clone_from(&staged_name);
    let report = dfpipe_contract::check(ctx, std::slice::from_ref(&contract), 3).await;
    let _ = ctx.deregister_table(staged_name.as_str());
    let report = report.map_err(|e| e.to_string())?;
    let violated: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.violations > 0)
        .map(|r| format!("{} ({}) has {} violation(s)", r.constraint, r.columns.join(", "), r.violations))
        .collect();
    if violated.is_empty() {
        Ok(())
    } else {
        Err(format!("contract on `{view}` violated, output not committed: {}", violated.join("; ")))
    }
}

/// A run id that sorts by start time: nanoseconds since the Unix epoch, zero-padded.
fn run_id() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{nanos:020}")
}
