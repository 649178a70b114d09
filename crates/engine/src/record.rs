//! Stage "record": what a run did with each view, turned into its run record, its bundle
//! (with the physical plan that executed and its metrics) and the run's report.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use datafusion::physical_plan::ExecutionPlan;
use dfpipe_artifacts::{
    AnalyzeLevel, ClusterRun, PlanBundle, RunRecord, RunStatus, ViewRecord, ViewStatus, WriteRecord, collect_metrics,
};
use dfpipe_scheduler::{TaskOutcome, TaskTiming};

use crate::Result;
use crate::decide::{BYTES, ELAPSED_COMPUTE_US, PARTITIONS, REPARTITIONS, ROWS};
use crate::planned::{Planned, PlannedView};
use crate::report::{RunReport, ViewRunReport};
use crate::run::{Executed, Halt};

/// What a run records as it goes, before its end: its id, its environment, and the record
/// of each view that committed, indexed like the views.
pub(crate) struct Journal {
    pub(crate) run_id: String,
    pub(crate) environment: Option<dfpipe_artifacts::Fingerprint>,
    pub(crate) committed: std::sync::Mutex<Vec<Option<ViewRecord>>>,
}
use dfpipe_writer::WriteReport;

/// Why a view that was running when the run was cancelled did not commit.
const CANCELLED: &str = "cancelled while running: nothing committed, the previous output stays";
/// Why a view that had not started when the run was cancelled did not run.
const NOT_STARTED: &str = "not started: the run was cancelled";
/// Why a view that had to run has no commit in the record of a run still going on (or
/// killed before its end).
const INTERRUPTED: &str = "not committed: the run ended before this view committed";
/// Why a view that had not started when `--fail-fast` stopped the run did not run.
const STOPPED: &str = "not started: an earlier failure stopped the run (--fail-fast)";

/// What a run did with one view.
struct Outcome {
    status: ViewStatus,
    reason: Option<String>,
    duration: Option<Duration>,
    executed: Option<Executed>,
    /// It had to run, and the cancellation kept it from committing.
    interrupted: bool,
}

impl Planned {
    /// Records the run: bundles, write reports and the run record in the store; returns the
    /// report of the run, with the schedule as it ran. `journal` holds what the run recorded
    /// of each view as it committed.
    pub(crate) fn record(
        &self,
        outcomes: Vec<TaskOutcome<Option<Executed>, Halt>>,
        timings: &[Option<TaskTiming>],
        wall: Duration,
        journal: Journal,
    ) -> Result<RunReport> {
        let Journal { run_id, environment, committed } = journal;
        let mut committed = committed.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let cancelled: BTreeSet<usize> = (outcomes.iter().enumerate())
            .filter(|(_, o)| matches!(o, TaskOutcome::Failed { error: Halt::Cancelled, .. }))
            .map(|(id, _)| id)
            .collect();
        let mut records = Vec::with_capacity(self.views.len());
        let mut views = Vec::with_capacity(self.views.len());
        let mut measured = vec![0u64; self.views.len()];
        let mut interrupted = false;
        for (id, (view, outcome)) in self.views.iter().zip(outcomes).enumerate() {
            let outcome = self.outcome(view, outcome, &cancelled);
            interrupted |= outcome.interrupted;
            let mut record = match (committed[id].take(), outcome.duration) {
                (Some(mut record), Some(duration)) if outcome.executed.is_some() => {
                    record.duration_ms = Some(duration.as_millis() as u64);
                    record.cost_ms = record.duration_ms;
                    record
                }
                _ => self.record_view(view, &outcome)?,
            };
            if outcome.executed.is_some() {
                measured[id] = record.duration_ms.unwrap_or_default();
            }
            // When and where it ran, for a view that executed (and succeeded or failed).
            if let (Some(timing), Some(_)) = (timings[id], outcome.duration) {
                record.started_ms = Some(timing.start.as_millis() as u64);
                record.worker = Some(timing.worker);
            }
            views.push(ViewRunReport {
                name: view.name.clone(),
                status: record.status,
                reason: record.reason.clone(),
                rows: record.rows,
                duration_ms: record.duration_ms,
                fingerprint: view.fingerprint.to_string(),
                cost_source: view.cost.source,
            });
            records.push(record);
        }
        // A run stopped before it did what it was asked fails; its views run next time.
        let failed = interrupted || views.iter().any(|v| v.status.is_failure());
        let status = if failed { RunStatus::Failed } else { RunStatus::Succeeded };
        let workers = Some(self.workers);
        let cluster = self.cluster_run();
        self.store.put_run(&RunRecord {
            run_id: run_id.clone(),
            status,
            views: records,
            environment,
            workers,
            cluster: cluster.clone(),
        })?;

        // The schedule as it ran: measured durations, the wall time as the makespan.
        let actual = self.graph.schedule(&measured, self.workers)?;
        let mut schedule = self.schedule_report(&actual);
        schedule.makespan_ms = wall.as_millis() as u64;
        schedule.critical_path = (actual.critical_path.iter())
            .filter(|&&id| measured[id] > 0)
            .map(|&id| self.views[id].name.clone())
            .collect();
        Ok(RunReport { run_id, status, views, schedule, cluster })
    }

    /// The cluster of the run, with the tasks each worker was given.
    fn cluster_run(&self) -> Option<ClusterRun> {
        self.cluster.as_ref().map(|c| ClusterRun { workers: c.workers(), tasks: c.tasks() })
    }

    /// What the executor's outcome means for `view`.
    fn outcome(
        &self,
        view: &PlannedView,
        outcome: TaskOutcome<Option<Executed>, Halt>,
        cancelled: &BTreeSet<usize>,
    ) -> Outcome {
        let cancel = &self.execution.cancel;
        let stopped_by_cancel = view.decision.will_run
            && match &outcome {
                TaskOutcome::Failed { error: Halt::Cancelled, .. } => true,
                TaskOutcome::UpstreamFailed { failed } => cancelled.contains(failed),
                TaskOutcome::Cancelled => cancel.is_cancelled(),
                _ => false,
            };
        let skipped = |reason: &str| Outcome {
            status: ViewStatus::Skipped,
            reason: Some(reason.to_owned()),
            duration: None,
            executed: None,
            interrupted: stopped_by_cancel,
        };
        match outcome {
            TaskOutcome::Succeeded { value: Some(executed), duration } => Outcome {
                status: ViewStatus::Succeeded,
                reason: None,
                duration: Some(duration),
                executed: Some(executed),
                interrupted: false,
            },
            // A view with nothing to do keeps its reason, whether or not a failure or a
            // stop kept the executor from visiting it.
            _ if !view.decision.will_run => skipped(&view.decision.reason),
            TaskOutcome::Failed { error: Halt::Cancelled, .. } => skipped(CANCELLED),
            _ if stopped_by_cancel => skipped(NOT_STARTED),
            TaskOutcome::Failed { error: Halt::Failed(error), duration } => Outcome {
                status: ViewStatus::Failed,
                reason: Some(error),
                duration: Some(duration),
                executed: None,
                interrupted: false,
            },
            TaskOutcome::UpstreamFailed { failed } => Outcome {
                status: ViewStatus::UpstreamFailed,
                reason: Some(format!("upstream view `{}` failed", self.views[failed].name)),
                duration: None,
                executed: None,
                interrupted: false,
            },
            TaskOutcome::Succeeded { value: None, .. } | TaskOutcome::Cancelled => skipped(STOPPED),
        }
    }

    /// Stores the bundle of `view` and returns its record. A view that ran gets its bundle
    /// with the physical plan that executed and its metrics; a view that did not keeps the
    /// bundle (and metrics) of the run that last executed that plan.
    fn record_view(&self, view: &PlannedView, outcome: &Outcome) -> Result<ViewRecord> {
        if let (Some(executed), Some(duration)) = (&outcome.executed, outcome.duration) {
            let (record, bundle) = self.record_executed(view, &executed.write, executed.physical.as_ref(), duration)?;
            self.store.put_bundle(&view.fingerprint, &bundle)?;
            return Ok(record);
        }
        if self.store.bundle(&view.fingerprint)?.is_none() {
            self.store.put_bundle(&view.fingerprint, &view.bundle)?;
        }
        Ok(carried(view, outcome.status, outcome.reason.clone(), outcome.duration))
    }

    /// The record of `view`, which ran and committed, and its bundle with the physical plan
    /// that executed and its metrics, to store.
    pub(crate) fn record_executed(
        &self,
        view: &PlannedView,
        write: &WriteReport,
        physical: &dyn ExecutionPlan,
        duration: Duration,
    ) -> Result<(ViewRecord, PlanBundle)> {
        let mut record = carried(view, ViewStatus::Succeeded, None, Some(duration));
        let mut bundle = view.bundle.clone();
        bundle.record_execution(physical, self.spec.profile.analyze_level);
        record.output_fingerprint = Some(view.fingerprint.clone());
        record.rows = Some(write.rows);
        record.cost_ms = record.duration_ms;
        record.measured_on_cluster = self.cluster.is_some();
        record.metrics = cost_metrics(physical);
        record.metrics.insert(ROWS.to_owned(), write.rows);
        record.metrics.insert(BYTES.to_owned(), write.bytes);
        record.metrics.insert("files".to_owned(), write.files.len() as u64);
        record.write = Some(write_record(write)?);
        Ok((record, bundle))
    }

    /// Records that view `id` committed, while the run goes on: the run record as it stands
    /// (the views still to commit keep what the last run said of their outputs), then the
    /// view's bundle. A run killed after this leaves a record saying the output was built
    /// from this fingerprint, so the next run does not execute the view again; killed between
    /// the commit and this record, the next run executes it again.
    pub(crate) fn journal_commit(&self, journal: &Journal, id: usize, prepared: Result<(ViewRecord, PlanBundle)>) {
        let view = &self.views[id];
        let mut committed = journal.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = prepared.and_then(|(record, bundle)| {
            committed[id] = Some(record);
            let views = (self.views.iter().zip(committed.iter()))
                .map(|(view, record)| match record {
                    Some(record) => record.clone(),
                    None if view.decision.will_run => {
                        carried(view, ViewStatus::Skipped, Some(INTERRUPTED.to_owned()), None)
                    }
                    None => carried(view, ViewStatus::Skipped, Some(view.decision.reason.clone()), None),
                })
                .collect();
            let run = RunRecord {
                run_id: journal.run_id.clone(),
                status: RunStatus::Failed,
                views,
                environment: journal.environment.clone(),
                workers: Some(self.workers),
                cluster: self.cluster_run(),
            };
            self.store.put_run(&run)?;
            Ok(self.store.put_bundle(&view.fingerprint, &bundle)?)
        });
        if let Err(error) = written {
            // The run's end records it again; until then a crash re-runs the view.
            tracing::warn!(view = %view.name, %error, "cannot record the commit of a view while the run goes on");
        }
    }
}

/// The record of `view` before (or without) a commit of this run: what the last run said of
/// its output and cost is carried over.
fn carried(view: &PlannedView, status: ViewStatus, reason: Option<String>, duration: Option<Duration>) -> ViewRecord {
    ViewRecord {
        name: view.name.clone(),
        fingerprint: view.fingerprint.clone(),
        output_fingerprint: view.output_fingerprint().cloned(),
        status,
        reason,
        rows: None,
        duration_ms: duration.map(|d| d.as_millis() as u64),
        started_ms: None,
        worker: None,
        // Only a successful run measures the cost; other runs keep the last measurement.
        cost_ms: view.last.as_ref().and_then(|l| l.cost_ms),
        metrics: view.last.as_ref().map(|l| l.metrics.clone()).unwrap_or_default(),
        measured_on_cluster: view.last.as_ref().is_some_and(|l| l.measured_on_cluster),
        write: None,
    }
}

/// The store's record of a committed write: its figures, every resolved option and knob
/// (what `dfpipe diff` compares), and the whole report (what `explain --format write` shows).
fn write_record(report: &WriteReport) -> Result<WriteRecord> {
    let mut options = report.options.clone();
    let knobs = &report.knobs;
    let mut knob = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            options.insert(format!("knob.{name}"), value);
        }
    };
    let text = |v: Option<usize>| v.map(|v| v.to_string());
    knob("minimum_parallel_output_files", text(knobs.minimum_parallel_output_files));
    knob("soft_max_rows_per_output_file", text(knobs.soft_max_rows_per_output_file));
    knob("maximum_parallel_row_group_writers", text(knobs.maximum_parallel_row_group_writers));
    knob("maximum_buffered_record_batches_per_stream", text(knobs.maximum_buffered_record_batches_per_stream));
    knob("allow_single_file_parallelism", knobs.allow_single_file_parallelism.map(|b| b.to_string()));
    let record = WriteRecord {
        target: report.target.clone(),
        format: report.format.name().to_owned(),
        files: report.files.len() as u64,
        rows: report.rows,
        bytes: report.bytes,
        options,
        report: Vec::new(),
    };
    Ok(record.with_report(report)?)
}

/// What the cost model reads of an executed plan, whatever the profile's `analyze_level`:
/// compute summed over its operators, the widest parallelism it ran at, its repartitions.
fn cost_metrics(plan: &dyn ExecutionPlan) -> BTreeMap<String, u64> {
    let operators = collect_metrics(plan, AnalyzeLevel::Summary);
    let compute_ns: u64 = operators.iter().filter_map(|m| m.elapsed_compute_ns).sum();
    let partitions = operators.iter().map(|m| m.partitions as u64).max().unwrap_or(1).max(1);
    let repartitions = operators.iter().filter(|m| m.operator.starts_with("RepartitionExec")).count() as u64;
    BTreeMap::from([
        (ELAPSED_COMPUTE_US.to_owned(), compute_ns / 1000),
        (PARTITIONS.to_owned(), partitions),
        (REPARTITIONS.to_owned(), repartitions),
    ])
}

/// A run id that sorts by start time: nanoseconds since the Unix epoch, zero-padded.
pub(crate) fn run_id() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{nanos:020}")
}
