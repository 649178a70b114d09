//! Stage "execute": the views that must run, at most `workers` at a time in critical-path
//! order, each written into staging, its contract checked on the staged output, then
//! committed. What each produced is handed to the "record" stage (`record.rs`).

use std::sync::Arc;
use std::time::Instant;

use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use dfpipe_artifacts::{RunLock, Store, ViewStatus};
use dfpipe_scheduler::{CancelToken, ExecuteOptions};
use dfpipe_writer::{WriteReport, WriteSpec, write};

use crate::planned::Planned;
use crate::record::{Journal, run_id};
use crate::report::RunReport;
use crate::show::physical_plan;
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
        /// `Succeeded`, `Failed`, or `Skipped` when the run was cancelled while it ran.
        status: ViewStatus,
    },
}

/// What executing one view produced.
pub(crate) struct Executed {
    /// The committed write.
    pub(crate) write: WriteReport,
    /// The physical plan that ran: its operators hold the execution's metrics.
    pub(crate) physical: Arc<dyn ExecutionPlan>,
}

/// Why a view's task stopped short of its commit.
pub(crate) enum Halt {
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

/// Everything one view's execution needs, owned, to run on its own task.
struct Job {
    ctx: SessionContext,
    state: SessionState,
    /// The plan to execute: with a cluster, already cut into stages.
    plan: Arc<dyn ExecutionPlan>,
    /// The optimized plan, planned physically again at execution: for a reader of committed
    /// outputs, so that it lists the files its upstream views committed in this run; for a
    /// view sharing the cores, with its share of partitions (`state` has them).
    replan: Option<LogicalPlan>,
    write: WriteSpec,
    contract: Option<dfpipe_contract::Contract>,
    cancel: CancelToken,
    /// The workers the plan is distributed over, if any.
    cluster: Option<dfpipe_cluster::Cluster>,
}

impl Planned {
    /// Executes the views that must run, at most `workers` at a time in critical-path order,
    /// commits their outputs, and records the bundles and the run in the store. A failed
    /// view skips its descendants; independent branches go on.
    ///
    /// The run holds the store's run lock from start to end: the lock taken when planning
    /// ([`RunOptions::lock_timeout`](crate::RunOptions::lock_timeout)), or else taken here
    /// without waiting, refusing a plan that another run has made stale. Each commit is
    /// recorded as it happens, so a run killed midway has its committed views skip next time.
    pub async fn run(mut self, progress: Arc<dyn Fn(Event) + Send + Sync>) -> Result<RunReport> {
        // Planning under the lock repaired the outputs already.
        let _lock = if let Some(lock) = self.lock.take() {
            lock
        } else {
            let lock = self.lock_unplanned().await?;
            self.outputs.repair(self.context()).await?;
            lock
        };
        // Every worker answers before anything runs; a run with nothing to do contacts none.
        if let Some(cluster) = &self.cluster
            && self.views.iter().any(|v| v.decision.will_run)
        {
            cluster.probe().await?;
        }
        self.outputs.create()?;
        progress(Event::Started { total: self.views.iter().filter(|v| v.decision.will_run).count() });
        let started = Instant::now();
        let journal = Journal {
            run_id: run_id(),
            // The whole environment, stored once per distinct content.
            environment: Some(self.store.put_environment(self.environment())?),
            committed: std::sync::Mutex::new(vec![None; self.views.len()]),
        };
        let partitions = self.partitions(&self.predicted_schedule()?);
        let report = self
            .graph
            .execute_with(&self.costs(), self.execute_options(), |id, ()| {
                let job = self.job(id, partitions[id]);
                let (progress, name) = (Arc::clone(&progress), self.views[id].name.clone());
                let (this, journal) = (&self, &journal);
                async move {
                    let Some(job) = job else { return Ok(None) };
                    progress(Event::ViewStarted { view: name.clone() });
                    let began = Instant::now();
                    let cancel = job.cancel.clone();
                    let result = match tokio::spawn(stage(job)).await {
                        Ok(Ok((staged, plan))) => this.commit(journal, id, staged, plan, began, &cancel).await,
                        Ok(Err(halt)) => Err(halt),
                        Err(join) => Err(Halt::Failed(format!("the task running the view panicked: {join}"))),
                    };
                    let status = match &result {
                        Ok(_) => ViewStatus::Succeeded,
                        Err(Halt::Cancelled) => ViewStatus::Skipped,
                        Err(Halt::Failed(_)) => ViewStatus::Failed,
                    };
                    progress(Event::ViewFinished { view: name, status });
                    result.map(Some)
                }
            })
            .await?;
        self.record(report.outcomes, &report.timings, started.elapsed(), journal)
    }

    /// The run lock, for a plan made without it: taken without waiting, and refused when
    /// another run recorded since the plan was made (what it decided may be stale).
    async fn lock_unplanned(&self) -> Result<RunLock> {
        let lock = lock_store(&self.store, std::time::Duration::ZERO).await?;
        let latest = self.store.latest_run()?.map(|r| r.run_id);
        if latest != self.last_run_id {
            return Err(EngineError::Usage {
                flag: "Planned::run".to_owned(),
                message: "another run of the pipeline recorded since this plan was made; plan again, \
                          or plan with `RunOptions::lock_timeout` to hold the lock from planning on"
                    .to_owned(),
            });
        }
        Ok(lock)
    }

    /// `--fail-fast`, `--dynamic` and the cancel token, for the scheduler's executor.
    fn execute_options(&self) -> ExecuteOptions {
        let options = ExecuteOptions::new(self.workers)
            .fail_fast(self.execution.fail_fast)
            .cancel_on(self.execution.cancel.clone());
        // The engine's costs are milliseconds.
        if self.execution.dynamic { options.dynamic(std::time::Duration::from_millis(1)) } else { options }
    }

    /// The job of view `id`, if it runs, its plan made with `partitions`.
    fn job(&self, id: usize, partitions: usize) -> Option<Job> {
        let view = &self.views[id];
        let write = view.write.clone().filter(|_| view.decision.will_run)?;
        let mut state = self.context().state();
        let fewer = partitions != state.config().target_partitions();
        state.config_mut().options_mut().execution.target_partitions = partitions;
        Some(Job {
            ctx: self.context().clone(),
            state,
            plan: Arc::clone(view.distributed.as_ref().unwrap_or(&view.physical)),
            replan: (view.reads_outputs || fewer).then(|| view.optimized.clone()),
            write,
            contract: self.spec.contracts.get(&view.name).cloned(),
            cancel: self.execution.cancel.clone(),
            cluster: self.cluster.clone(),
        })
    }

    /// Commits the staged output of view `id` and records the commit at once. The record is
    /// prepared before the commit, so that a kill between the two finds as little as
    /// possible to do.
    async fn commit(
        &self,
        journal: &Journal,
        id: usize,
        staged: dfpipe_writer::Staged,
        plan: Arc<dyn ExecutionPlan>,
        began: Instant,
        cancel: &CancelToken,
    ) -> Result<Executed, Halt> {
        // The last point to stop: once the commit begins, it completes.
        if cancel.is_cancelled() {
            staged.discard().await.map_err(|e| e.to_string())?;
            return Err(Halt::Cancelled);
        }
        let prepared = self.record_executed(&self.views[id], staged.report(), plan.as_ref(), began.elapsed());
        let write = staged.commit().await.map_err(|e| e.to_string())?;
        self.journal_commit(journal, id, prepared);
        Ok(Executed { write, physical: plan })
    }
}

/// Writes one view into staging and checks its contract there: what is left to do is the
/// commit.
async fn stage(job: Job) -> Result<(dfpipe_writer::Staged, Arc<dyn ExecutionPlan>), Halt> {
    let plan = match &job.replan {
        None => job.plan,
        // Planned again, so cut into stages again.
        Some(optimized) => {
            let plan = physical_plan(optimized, &job.state).await.map_err(|e| e.strip_backtrace())?;
            match &job.cluster {
                Some(cluster) => cluster.distribute(plan, &job.state).await.map_err(|e| e.strip_backtrace())?,
                None => plan,
            }
        }
    };
    // A cancelled write is dropped, and with it its staging directory.
    let staged = tokio::select! {
        biased;
        () = job.cancel.cancelled() => return Err(Halt::Cancelled),
        staged = write(Arc::clone(&plan), &job.state, &job.write) => match staged {
            Ok(staged) => staged,
            Err(error) => return Err(Halt::Failed(naming_lost_workers(job.cluster.as_ref(), error.to_string()).await)),
        },
    };
    // The metrics of the stages that ran on workers, for the bundle and the costs.
    let plan = dfpipe_cluster::with_worker_metrics(plan).await;
    if let Some(contract) = job.contract {
        check_staged(&job.ctx, contract, &staged).await?;
    }
    Ok((staged, plan))
}

/// `message`, naming the workers of `cluster` that no longer answer, if any: what a
/// transport error from the middle of a plan does not say.
async fn naming_lost_workers(cluster: Option<&dfpipe_cluster::Cluster>, message: String) -> String {
    let Some(cluster) = cluster else { return message };
    match cluster.unreachable().await.as_slice() {
        [] => message,
        [worker] => format!("{message} (worker {worker} no longer answers)"),
        workers => format!("{message} (workers {} no longer answer)", workers.join(", ")),
    }
}

/// Checks a view's contract on its staged output, before the commit. Violations fail the view.
async fn check_staged(
    ctx: &SessionContext,
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

impl From<EngineError> for Halt {
    fn from(error: EngineError) -> Self {
        Self::Failed(error.to_string())
    }
}

/// Takes the run lock of `store`, waiting up to `wait` on a blocking thread.
pub(crate) async fn lock_store(store: &Store, wait: std::time::Duration) -> Result<RunLock> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.lock_run(wait)).await {
        Ok(Ok(lock)) => Ok(lock),
        Ok(Err(source @ dfpipe_artifacts::ArtifactError::Locked { .. })) => Err(EngineError::Locked { source }),
        Ok(Err(other)) => Err(other.into()),
        Err(join) => Err(EngineError::Internal(format!("the task taking the run lock failed: {join}"))),
    }
}
