//! A planned pipeline: every view planned once, with its bundle, fingerprint, decision and
//! cost; what `run`, `plan`, `lineage`, `explain` and `show` read.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use dfpipe_artifacts::{Environment, Fingerprint, PlanBundle, RunLock, Store, ViewRecord};
use dfpipe_plan_walk::Lineage;
use dfpipe_scheduler::{Cost, Schedule, TaskGraph};
use dfpipe_writer::{WriteReport, WriteSpec};

use crate::Result;
use crate::decide::Decision;
use crate::output::Outputs;
use crate::pipeline::RunOptions;
use crate::report::{LineageReport, PlanReport, ScheduleReport, ViewLineage, ViewPlanReport};
use crate::spec::{PipelineSpec, ViewSpec};

/// One view, planned once.
pub(crate) struct PlannedView {
    pub(crate) name: String,
    pub(crate) spec: ViewSpec,
    /// How it is written, when it is materialized.
    pub(crate) write: Option<WriteSpec>,
    pub(crate) bundle: PlanBundle,
    /// The plan as the view's SQL or template says it, before optimizing.
    pub(crate) logical: LogicalPlan,
    /// The optimized plan: what the physical plan was built from.
    pub(crate) optimized: LogicalPlan,
    pub(crate) physical: Arc<dyn ExecutionPlan>,
    pub(crate) fingerprint: Fingerprint,
    /// The views (not sources) it reads, from its lineage.
    pub(crate) depends_on: Vec<String>,
    /// Whether it reads a materialized view's committed output, directly or through lazy
    /// views: then its physical plan is built again at execution, from `optimized`.
    pub(crate) reads_outputs: bool,
    /// The rows its physical plan's statistics expect.
    pub(crate) estimated_rows: Option<u64>,
    /// Its record in the last run.
    pub(crate) last: Option<ViewRecord>,
    pub(crate) decision: Decision,
    pub(crate) cost: Cost,
    /// With a cluster, for a materialized view: `physical` cut into stages, as the run
    /// executes it (unless the view is planned again at execution).
    pub(crate) distributed: Option<Arc<dyn ExecutionPlan>>,
}

impl PlannedView {
    /// The fingerprint its committed output was built from, per the last run.
    pub(crate) fn output_fingerprint(&self) -> Option<&Fingerprint> {
        self.last.as_ref().and_then(|l| l.output_fingerprint.as_ref())
    }
}

/// A pipeline with every view planned, and the decision of what runs.
pub struct Planned {
    pub(crate) spec: PipelineSpec,
    pub(crate) outputs: Outputs,
    ctx: SessionContext,
    pub(crate) store: Store,
    /// Indexed like the tasks of `graph`, in name order.
    pub(crate) views: Vec<PlannedView>,
    pub(crate) graph: TaskGraph<()>,
    pub(crate) workers: usize,
    /// How the run executes: `fail_fast`, `dynamic` and `cancel` of [`RunOptions`].
    pub(crate) execution: RunOptions,
    /// `information_schema` as it was when planning began.
    environment: Environment,
    /// The store's run lock, when planning took it for the run.
    pub(crate) lock: Option<RunLock>,
    /// The id of the last run recorded when planning began.
    pub(crate) last_run_id: Option<String>,
    /// The workers the views' plans run on, if any.
    pub(crate) cluster: Option<dfpipe_cluster::Cluster>,
}

impl Planned {
    // One argument per stage output: a constructor, not an API.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        spec: PipelineSpec,
        outputs: Outputs,
        ctx: SessionContext,
        store: Store,
        views: Vec<PlannedView>,
        graph: TaskGraph<()>,
        options: &RunOptions,
        environment: Environment,
    ) -> Self {
        let workers = options.workers.max(1);
        Self {
            spec,
            outputs,
            ctx,
            store,
            views,
            graph,
            workers,
            execution: options.clone(),
            environment,
            lock: None,
            last_run_id: None,
            cluster: None,
        }
    }

    /// The planned views' names, in name order.
    pub fn view_names(&self) -> Vec<&str> {
        self.views.iter().map(|v| v.name.as_str()).collect()
    }

    /// `information_schema` as it was when planning began: what fingerprints take their
    /// environment hashes from.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// The bundle captured for `view`.
    pub fn bundle(&self, view: &str) -> Option<&PlanBundle> {
        self.views.iter().find(|v| v.name == view).map(|v| &v.bundle)
    }

    /// `view`'s plan unparsed to SQL, and whether that SQL plans again: captured for a
    /// template, unparsed now for a view written in SQL (whose SQL is its file). `None` for
    /// an unknown view.
    pub async fn unparsed(&self, view: &str) -> Option<dfpipe_artifacts::Unparsed> {
        let planned = self.views.iter().find(|v| v.name == view)?;
        match &planned.bundle.sql {
            Some(unparsed) => Some(unparsed.clone()),
            None => Some(dfpipe_artifacts::unparse(&planned.logical, &self.ctx.state()).await),
        }
    }

    /// The session every view was planned in.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The predicted schedule of the views that will run, with costs from the last run.
    pub fn predicted_schedule(&self) -> Result<Schedule> {
        Ok(self.graph.schedule(&self.costs(), self.workers)?)
    }

    /// The partitions each view's plan runs with, indexed like the tasks: the session's
    /// `target_partitions` divided by how many views `schedule` runs on average while it
    /// runs, rounded, at least 1. Views running side by side share the cores rather than
    /// oversubscribe them; a view running alone, or beside others for a short part of its
    /// run, has them all. With a cluster every view keeps them all: the workers bring their
    /// own cores, and stages are cut at repartitions.
    pub(crate) fn partitions(&self, schedule: &Schedule) -> Vec<usize> {
        let cores = self.ctx.state().config().target_partitions();
        let concurrency = schedule.concurrency();
        (0..self.views.len())
            .map(|id| match (&self.cluster, concurrency.get(id)) {
                (None, Some(&sharing)) => ((cores as f64 / sharing).round() as usize).clamp(1, cores),
                _ => cores,
            })
            .collect()
    }

    /// The cost of each view, indexed like the tasks: its cost if it will run, else 0.
    pub(crate) fn costs(&self) -> Vec<u64> {
        self.views.iter().map(|v| if v.decision.will_run { v.cost.value } else { 0 }).collect()
    }

    /// `dfpipe plan --json`.
    pub fn report(&self) -> Result<PlanReport> {
        let schedule = self.predicted_schedule()?;
        let partitions = self.partitions(&schedule);
        Ok(PlanReport {
            views: (self.views.iter().zip(partitions))
                .map(|(v, partitions)| ViewPlanReport {
                    name: v.name.clone(),
                    fingerprint: v.fingerprint.to_string(),
                    depends_on: v.bundle.lineage.depends_on.clone(),
                    will_run: v.decision.will_run,
                    reason: v.decision.reason.clone(),
                    cost_ms: v.cost.value,
                    cost_source: v.cost.source,
                    last_duration_ms: v.last.as_ref().and_then(|l| l.cost_ms),
                    partitions: v.decision.will_run.then_some(partitions),
                    stages: v.distributed.as_ref().map(dfpipe_cluster::stage_count),
                })
                .collect(),
            schedule: self.schedule_report(&schedule),
        })
    }

    /// `view`'s physical plan as the cluster runs it, its stages and network boundaries
    /// drawn: `None` without a cluster, for a lazy view, or when the plan stays on the
    /// coordinator.
    pub fn distributed_plan(&self, view: &str) -> Option<String> {
        let view = self.views.iter().find(|v| v.name == view)?;
        dfpipe_cluster::display_distributed(view.distributed.as_deref()?)
    }

    /// `dfpipe lineage --format json`. With `deep`, lineage resolves through views down to
    /// the sources.
    pub fn lineage(&self, deep: bool) -> LineageReport {
        let lineages: HashMap<&str, &Lineage> =
            self.views.iter().map(|v| (v.name.as_str(), &v.bundle.lineage)).collect();
        let of = |name: &str| lineages.get(name).copied();
        LineageReport {
            views: self
                .views
                .iter()
                .map(|v| ViewLineage {
                    name: v.name.clone(),
                    lineage: if deep { v.bundle.lineage.deep(&of) } else { v.bundle.lineage.clone() },
                })
                .collect(),
        }
    }

    /// The stored bundle of `view`'s current plan: the one recorded when that plan last
    /// ran, with the physical plan that executed and its metrics. `None` if this plan never
    /// ran.
    pub fn executed_bundle(&self, view: &str) -> Result<Option<PlanBundle>> {
        let Some(planned) = self.views.iter().find(|v| v.name == view) else { return Ok(None) };
        Ok(self.store.bundle(&planned.fingerprint)?.filter(|b| !b.metrics.is_empty()))
    }

    /// The report of the last write of `view`'s output, with the id of the run that wrote
    /// it: the files, rows and bytes, and every format option and knob used. `None` if no
    /// recorded run wrote it.
    pub fn last_write(&self, view: &str) -> Result<Option<(String, WriteReport)>> {
        let Some((run_id, record)) = self.store.last_write(view)? else { return Ok(None) };
        Ok(record.report::<WriteReport>()?.map(|report| (run_id, report)))
    }

    pub(crate) fn schedule_report(&self, schedule: &Schedule) -> ScheduleReport {
        ScheduleReport {
            workers: schedule.workers,
            makespan_ms: schedule.makespan,
            lower_bound_ms: schedule.lower_bound,
            critical_path: schedule
                .critical_path
                .iter()
                .filter(|&&id| self.views[id].decision.will_run)
                .map(|&id| self.views[id].name.clone())
                .collect(),
        }
    }
}
