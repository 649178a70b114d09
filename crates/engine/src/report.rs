//! The JSON documents of `run`, `plan` and `lineage`, as PRODUCT.md specifies them.

use dfpipe_artifacts::{ClusterRun, RunStatus, ViewStatus};
use dfpipe_plan_walk::Lineage;
use dfpipe_scheduler::CostSource;
use serde::Serialize;

/// `dfpipe run --json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run's id in the store.
    pub run_id: String,
    /// `succeeded` or `failed`.
    pub status: RunStatus,
    /// One entry per view, in name order.
    pub views: Vec<ViewRunReport>,
    /// The schedule as it ran.
    pub schedule: ScheduleReport,
    /// The cluster the views' plans ran on: its workers and the tasks each was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterRun>,
}

/// One view in [`RunReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ViewRunReport {
    /// The view.
    pub name: String,
    /// `succeeded`, `skipped`, `failed` or `upstream_failed`.
    pub status: ViewStatus,
    /// Why it was skipped or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rows written, for a materialized view that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Wall time, for a view that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The view's fingerprint.
    pub fingerprint: String,
    /// Where the cost used to schedule it came from: `measured`, `estimated` or `default`.
    pub cost_source: CostSource,
}

/// A schedule: predicted by `plan`, as it ran for `run`.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleReport {
    /// Workers.
    pub workers: usize,
    /// Makespan in milliseconds.
    pub makespan_ms: u64,
    /// `max(critical path, total work / workers)` in milliseconds.
    pub lower_bound_ms: u64,
    /// The views on the critical path, first to last.
    pub critical_path: Vec<String>,
}

/// `dfpipe plan --json`.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// One entry per view, in name order.
    pub views: Vec<ViewPlanReport>,
    /// The predicted schedule of the views that will run.
    pub schedule: ScheduleReport,
}

/// One view in [`PlanReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ViewPlanReport {
    /// The view.
    pub name: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// The views it reads.
    pub depends_on: Vec<String>,
    /// Whether `run` would execute it.
    pub will_run: bool,
    /// Why, or why not.
    pub reason: String,
    /// The cost used to schedule it, in milliseconds: the scheduler's cost model applied to
    /// the metrics of the plan that last executed, else an estimate from the plan's
    /// statistics, else a default.
    pub cost_ms: u64,
    /// `measured` (last run), `estimated` (plan statistics) or `default`.
    pub cost_source: CostSource,
    /// The wall time of its last execution: what `cost_ms` predicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_duration_ms: Option<u64>,
    /// For a view that will run: the partitions its plan runs with, its share of the cores
    /// beside the views the predicted schedule runs at the same time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<usize>,
    /// With a cluster, for a materialized view: how many stages its plan runs in (1 when
    /// it stays on the coordinator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<usize>,
}

/// `dfpipe lineage --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct LineageReport {
    /// One entry per view, in name order.
    pub views: Vec<ViewLineage>,
}

/// One view in [`LineageReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ViewLineage {
    /// The view.
    pub name: String,
    /// What it reads, what flows into each column, what it inspects and calls.
    #[serde(flatten)]
    pub lineage: Lineage,
}
