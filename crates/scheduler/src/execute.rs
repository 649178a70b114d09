//! The executor: runs async task closures in critical-path order with bounded concurrency.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::graph::Dag;
use crate::schedule::levels;
use crate::{CancelToken, SchedulerError, TaskGraph, TaskId};

/// What happened to one task in [`TaskGraph::execute`].
#[derive(Debug)]
pub enum TaskOutcome<R, E> {
    /// The closure returned `Ok`.
    Succeeded {
        /// Its value.
        value: R,
        /// Wall time from start to finish.
        duration: Duration,
    },
    /// The closure returned `Err`.
    Failed {
        /// Its error.
        error: E,
        /// Wall time from start to failure.
        duration: Duration,
    },
    /// Not run because a task it depends on failed.
    UpstreamFailed {
        /// The failed ancestor.
        failed: TaskId,
    },
    /// Not run because the run stopped early: `fail_fast` after a failure elsewhere, or a
    /// [`CancelToken`] was cancelled.
    Cancelled,
}

/// When one task ran, relative to the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskTiming {
    /// From the start of the run to the start of the task.
    pub start: Duration,
    /// From the start of the task to its end.
    pub duration: Duration,
    /// The worker slot it ran in, from `0` to `workers - 1`: a slot runs one task at a time,
    /// and a task takes the lowest free slot when it starts.
    pub worker: usize,
}

/// The outcome of every task, indexed by [`TaskId`].
#[derive(Debug)]
pub struct ExecutionReport<R, E> {
    /// One outcome per task.
    pub outcomes: Vec<TaskOutcome<R, E>>,
    /// When each task ran; `None` for tasks that never started. The durations are the
    /// measurements the next run's costs come from.
    pub timings: Vec<Option<TaskTiming>>,
    /// The tasks in the order they were started.
    pub started: Vec<TaskId>,
}

impl<R, E> ExecutionReport<R, E> {
    /// Whether every task succeeded.
    pub fn succeeded(&self) -> bool {
        self.outcomes.iter().all(|o| matches!(o, TaskOutcome::Succeeded { .. }))
    }
}

/// How [`TaskGraph::execute_with`] runs: the worker count and the optional behaviours.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    workers: usize,
    fail_fast: bool,
    dynamic: Option<Duration>,
    cancel: Option<CancelToken>,
}

impl ExecuteOptions {
    /// At most `workers` tasks at a time (at least one); a failure stops only its
    /// descendants; static ranks; no cancellation.
    pub fn new(workers: usize) -> Self {
        Self { workers: workers.max(1), fail_fast: false, dynamic: None, cancel: None }
    }

    /// With `true`, nothing new starts after the first failure.
    #[must_use]
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Dynamic mode: as tasks finish, their actual durations correct the costs of the tasks
    /// still to run, and the ready tasks are re-ranked by the corrected bottom levels.
    /// `unit` is the wall time of one cost unit (one millisecond for the engine's costs).
    ///
    /// A finished task's correction factor is its actual duration over its predicted one.
    /// A task yet to run takes the mean factor of its direct dependencies (the data that
    /// made an upstream task slow usually flows on), and a task without dependencies takes
    /// the factor of all the work finished so far. Each completion costs one pass over the
    /// graph, `O(tasks + edges)`.
    #[must_use]
    pub fn dynamic(mut self, unit: Duration) -> Self {
        self.dynamic = Some(unit);
        self
    }

    /// Stops starting tasks once `token` is cancelled.
    #[must_use]
    pub fn cancel_on(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }
}

impl<T> TaskGraph<T> {
    /// Runs `run` for every task, at most `workers` at a time, a task only after all its
    /// dependencies succeeded, and ready tasks in order of bottom level (then id). When a
    /// task fails, its descendants are not run and independent branches go on; with
    /// `fail_fast`, nothing new starts after the first failure.
    pub async fn execute<R, E, F, Fut>(
        &self,
        costs: &[u64],
        workers: usize,
        fail_fast: bool,
        run: F,
    ) -> Result<ExecutionReport<R, E>, SchedulerError>
    where
        F: FnMut(TaskId, &T) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        self.execute_with(costs, ExecuteOptions::new(workers).fail_fast(fail_fast), run).await
    }

    /// [`TaskGraph::execute`] with every option: dynamic re-ranking and cancellation too.
    pub async fn execute_with<R, E, F, Fut>(
        &self,
        costs: &[u64],
        options: ExecuteOptions,
        mut run: F,
    ) -> Result<ExecutionReport<R, E>, SchedulerError>
    where
        F: FnMut(TaskId, &T) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        self.check_costs(costs)?;
        let dag = self.dag()?;
        let n = self.len();
        let mut level = levels(&dag, costs, |_, _| 0);
        let mut outcomes: Vec<Option<TaskOutcome<R, E>>> = (0..n).map(|_| None).collect();
        let mut timings: Vec<Option<TaskTiming>> = vec![None; n];
        let mut started = Vec::with_capacity(n);
        let mut waiting_on: Vec<usize> = (0..n).map(|id| dag.adjacency.dependencies(id).len()).collect();
        let mut ready: BinaryHeap<(u64, Reverse<TaskId>)> =
            (0..n).filter(|&id| waiting_on[id] == 0).map(|id| (level[id], Reverse(id))).collect();
        let mut learned = Learned::new(n);
        let mut running = FuturesUnordered::new();
        let mut free: BinaryHeap<Reverse<usize>> = (0..options.workers).map(Reverse).collect();
        let mut stopped = false;
        let cancelled = || options.cancel.as_ref().is_some_and(CancelToken::is_cancelled);
        let run_start = Instant::now();
        loop {
            if learned.stale && !ready.is_empty() && running.len() < options.workers {
                level = learned.levels(&dag, costs);
                ready = ready.into_iter().map(|(_, Reverse(id))| (level[id], Reverse(id))).collect();
            }
            while running.len() < options.workers && !stopped {
                if cancelled() {
                    stopped = true;
                    break;
                }
                let Some((_, Reverse(id))) = ready.pop() else { break };
                // Fewer than `workers` tasks run, so a slot is free.
                let Some(Reverse(worker)) = free.pop() else { break };
                started.push(id);
                let start = run_start.elapsed();
                let future = run(id, self.payload(id));
                running.push(async move {
                    let result = future.await;
                    (id, result, start, run_start.elapsed().saturating_sub(start), worker)
                });
            }
            let Some((id, result, start, duration, worker)) = running.next().await else { break };
            free.push(Reverse(worker));
            timings[id] = Some(TaskTiming { start, duration, worker });
            match result {
                Ok(value) => {
                    outcomes[id] = Some(TaskOutcome::Succeeded { value, duration });
                    if let Some(unit) = options.dynamic {
                        learned.observe(id, costs[id], duration, unit);
                    }
                    for &next in dag.adjacency.dependents(id) {
                        waiting_on[next] -= 1;
                        if waiting_on[next] == 0 && outcomes[next].is_none() {
                            ready.push((level[next], Reverse(next)));
                        }
                    }
                }
                Err(error) => {
                    outcomes[id] = Some(TaskOutcome::Failed { error, duration });
                    for d in dag.adjacency.descendants(id) {
                        outcomes[d].get_or_insert(TaskOutcome::UpstreamFailed { failed: id });
                    }
                    stopped |= options.fail_fast;
                }
            }
        }
        let outcomes = outcomes.into_iter().map(|o| o.unwrap_or(TaskOutcome::Cancelled)).collect();
        Ok(ExecutionReport { outcomes, timings, started })
    }
}

/// What dynamic mode has learned: the actual-over-predicted ratio of each finished task.
struct Learned {
    ratio: Vec<Option<f64>>,
    actual: f64,
    predicted: f64,
    /// Whether a task finished since the levels were last corrected.
    stale: bool,
}

impl Learned {
    fn new(tasks: usize) -> Self {
        Self { ratio: vec![None; tasks], actual: 0.0, predicted: 0.0, stale: false }
    }

    fn observe(&mut self, id: TaskId, cost: u64, duration: Duration, unit: Duration) {
        let unit = unit.as_secs_f64();
        if cost == 0 || unit <= 0.0 {
            return;
        }
        let actual = duration.as_secs_f64() / unit;
        self.ratio[id] = Some(actual / cost as f64);
        self.actual += actual;
        self.predicted += cost as f64;
        self.stale = true;
    }

    /// Bottom levels of the costs corrected as [`ExecuteOptions::dynamic`] describes.
    fn levels(&mut self, dag: &Dag, costs: &[u64]) -> Vec<u64> {
        self.stale = false;
        let overall = if self.predicted > 0.0 { self.actual / self.predicted } else { 1.0 };
        let mut factor = vec![1.0f64; dag.order.len()];
        let mut corrected = vec![0u64; dag.order.len()];
        for &id in &dag.order {
            let dependencies = dag.adjacency.dependencies(id);
            factor[id] = self.ratio[id].unwrap_or_else(|| {
                if dependencies.is_empty() {
                    overall
                } else {
                    dependencies.iter().map(|&d| factor[d]).sum::<f64>() / dependencies.len() as f64
                }
            });
            // `as` saturates, so an absurd factor cannot wrap.
            // Scaled by 1000 so small costs keep their fractions; only the order matters.
            corrected[id] = (costs[id] as f64 * factor[id] * 1000.0).round() as u64;
        }
        levels(dag, &corrected, |_, _| 0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// a -> b -> c, a -> d, e (independent).
    fn graph() -> TaskGraph<&'static str> {
        let mut g = TaskGraph::new();
        for n in ["a", "b", "c", "d", "e"] {
            g.add_task(n, n);
        }
        for (x, y) in [(0, 1), (1, 2), (0, 3)] {
            g.add_dependency(x, y).unwrap();
        }
        g
    }

    #[tokio::test]
    async fn a_failure_skips_exactly_its_descendants() {
        let g = graph();
        let report = g
            .execute(&[1; 5], 2, false, |_, &name| async move { if name == "b" { Err("boom") } else { Ok(name) } })
            .await
            .unwrap();
        let kinds: Vec<&str> = report
            .outcomes
            .iter()
            .map(|o| match o {
                TaskOutcome::Succeeded { .. } => "ok",
                TaskOutcome::Failed { .. } => "failed",
                TaskOutcome::UpstreamFailed { failed: 1 } => "skipped(b)",
                TaskOutcome::UpstreamFailed { .. } => "skipped(?)",
                TaskOutcome::Cancelled => "cancelled",
            })
            .collect();
        assert_eq!(kinds, ["ok", "failed", "skipped(b)", "ok", "ok"]);
        assert!(!report.succeeded());
    }

    #[tokio::test]
    async fn fail_fast_starts_nothing_after_a_failure() {
        let g = graph();
        let report =
            g.execute(&[1; 5], 1, true, |id, _| async move { if id == 0 { Err(()) } else { Ok(()) } }).await.unwrap();
        // With one worker, `a` (highest bottom level) runs first and fails; `e` never starts.
        assert!(matches!(report.outcomes[4], TaskOutcome::Cancelled));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrency_never_exceeds_the_worker_count() {
        let mut g = TaskGraph::new();
        for i in 0..20 {
            g.add_task(format!("t{i}"), ());
        }
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let report = g
            .execute(&[1; 20], 3, false, |_, ()| {
                let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
                async move {
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(running, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, ()>(())
                }
            })
            .await
            .unwrap();
        assert!(report.succeeded());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    fn kind<R, E>(outcome: &TaskOutcome<R, E>) -> &'static str {
        match outcome {
            TaskOutcome::Succeeded { .. } => "ok",
            TaskOutcome::Failed { .. } => "failed",
            TaskOutcome::UpstreamFailed { .. } => "skipped",
            TaskOutcome::Cancelled => "cancelled",
        }
    }

    fn independent(n: usize) -> TaskGraph<()> {
        let mut g = TaskGraph::new();
        for i in 0..n {
            g.add_task(format!("t{i}"), ());
        }
        g
    }

    #[tokio::test]
    async fn cancelling_starts_nothing_new_and_lets_running_tasks_finish() {
        // Ten equal independent tasks on two workers start in id order. Task 0 cancels the
        // run at once; task 1, already running, still finishes.
        let g = independent(10);
        let token = CancelToken::new();
        let options = ExecuteOptions::new(2).cancel_on(token.clone());
        let report = g
            .execute_with(&[1; 10], options, |id, ()| {
                let token = token.clone();
                async move {
                    if id == 0 {
                        token.cancel();
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Ok::<_, ()>(id)
                }
            })
            .await
            .unwrap();
        let kinds: Vec<_> = report.outcomes.iter().map(kind).collect();
        assert_eq!(kinds[..2], ["ok", "ok"]);
        assert!(kinds[2..].iter().all(|&k| k == "cancelled"), "{kinds:?}");
        assert_eq!(report.started, [0, 1]);
        assert!(report.timings[1].unwrap().duration >= Duration::from_millis(20));
        assert!(report.timings[2..].iter().all(Option::is_none));
    }

    #[tokio::test]
    async fn a_cancelled_token_runs_nothing() {
        let token = CancelToken::new();
        token.cancel();
        let g = graph();
        let report = g
            .execute_with(&[1; 5], ExecuteOptions::new(4).cancel_on(token), |_, _| async { Ok::<_, ()>(()) })
            .await
            .unwrap();
        assert!(report.outcomes.iter().all(|o| matches!(o, TaskOutcome::Cancelled)));
        assert!(report.started.is_empty());
    }

    #[tokio::test]
    async fn running_tasks_can_abort_on_the_token() {
        // Task 1 waits on the token and gives up when it fires, instead of running its hour.
        let g = independent(3);
        let token = CancelToken::new();
        let report = g
            .execute_with(&[1; 3], ExecuteOptions::new(2).cancel_on(token.clone()), |id, ()| {
                let token = token.clone();
                async move {
                    if id == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        token.cancel();
                        return Ok(());
                    }
                    tokio::select! {
                        () = token.cancelled() => Err("aborted"),
                        () = tokio::time::sleep(Duration::from_hours(1)) => Ok(()),
                    }
                }
            })
            .await
            .unwrap();
        let kinds: Vec<_> = report.outcomes.iter().map(kind).collect();
        assert_eq!(kinds, ["ok", "failed", "cancelled"]);
    }

    /// Runs `g` on one worker where task `slow` takes 10 ms for a predicted 1, and returns
    /// the start order.
    async fn start_order(dynamic: bool) -> Vec<TaskId> {
        // b (4) and r (10) stand alone; a (1) -> c (4). Bottom levels: r 10, a 5, b 4, c 4,
        // so the static order is r, a, then b before c on the tie.
        let mut g = TaskGraph::new();
        for name in ["b", "c", "r", "a"] {
            g.add_task(name, name);
        }
        g.add_dependency(3, 1).unwrap();
        let costs = [4, 4, 10, 1];
        let mut options = ExecuteOptions::new(1);
        if dynamic {
            options = options.dynamic(Duration::from_millis(1));
        }
        let report = g
            .execute_with(&costs, options, |_, &name| async move {
                // r takes what was predicted; a takes ten times its prediction.
                let ms = match name {
                    "r" | "a" => 10,
                    _ => 1,
                };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, ()>(())
            })
            .await
            .unwrap();
        assert!(report.succeeded());
        report.started
    }

    #[tokio::test]
    async fn dynamic_mode_reranks_when_a_prediction_was_wrong() {
        assert_eq!(start_order(false).await, [2, 3, 0, 1]);
        // `a` ran ten times slower than predicted, so its dependent `c` is expected to as
        // well (40), while `b` is only scaled by the run's overall ratio (under 2): `c` first.
        assert_eq!(start_order(true).await, [2, 3, 1, 0]);
    }

    #[tokio::test]
    async fn timings_are_recorded_per_task() {
        let g = graph();
        let report = g
            .execute(&[1; 5], 2, false, |_, _| async {
                tokio::time::sleep(Duration::from_millis(3)).await;
                Ok::<_, ()>(())
            })
            .await
            .unwrap();
        let timing = |id: TaskId| report.timings[id].unwrap();
        for id in 0..5 {
            assert!(timing(id).duration >= Duration::from_millis(3));
            let TaskOutcome::Succeeded { duration, .. } = report.outcomes[id] else { panic!("{id} failed") };
            assert_eq!(duration, timing(id).duration);
        }
        // a -> b -> c: each starts after the one before it ended.
        for (x, y) in [(0, 1), (1, 2), (0, 3)] {
            assert!(timing(y).start >= timing(x).start + timing(x).duration);
        }
    }

    #[tokio::test]
    async fn each_task_runs_in_a_worker_slot_of_its_own_while_it_runs() {
        for workers in 1..4 {
            let g = graph();
            let report = g
                .execute(&[1; 5], workers, false, |_, _| async {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    Ok::<_, ()>(())
                })
                .await
                .unwrap();
            let timings: Vec<TaskTiming> = report.timings.iter().map(|t| t.unwrap()).collect();
            assert!(timings.iter().all(|t| t.worker < workers), "{timings:?}");
            // Two tasks in one slot never overlap.
            for (i, a) in timings.iter().enumerate() {
                for b in &timings[i + 1..] {
                    if a.worker == b.worker {
                        assert!(a.start + a.duration <= b.start || b.start + b.duration <= a.start, "{a:?} {b:?}");
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn failures_skip_exactly_their_descendants(
            n in 1usize..25,
            edges in proptest::collection::vec((0usize..25, 0usize..25), 0..50),
            failing in proptest::collection::btree_set(0usize..25, 0..5),
            workers in 1usize..4,
        ) {
            let mut g = TaskGraph::new();
            for i in 0..n {
                g.add_task(format!("t{i}"), ());
            }
            for (a, b) in edges {
                if a < b && b < n {
                    g.add_dependency(a, b).unwrap();
                }
            }
            let report = futures::executor::block_on(g.execute(&vec![1; n], workers, false, |id, ()| {
                let fails = failing.contains(&id);
                async move { if fails { Err(id) } else { Ok(id) } }
            }))
            .unwrap();
            for id in 0..n {
                // A task runs exactly when no ancestor of it failed.
                let failed_ancestors: Vec<TaskId> =
                    g.ancestors(id).into_iter().filter(|a| failing.contains(a) && !g.ancestors(*a).iter().any(|x| failing.contains(x))).collect();
                match &report.outcomes[id] {
                    TaskOutcome::Succeeded { .. } => {
                        proptest::prop_assert!(failed_ancestors.is_empty() && !failing.contains(&id));
                    }
                    TaskOutcome::Failed { error, .. } => {
                        proptest::prop_assert!(failed_ancestors.is_empty() && failing.contains(&id));
                        proptest::prop_assert_eq!(*error, id);
                    }
                    TaskOutcome::UpstreamFailed { failed } => {
                        proptest::prop_assert!(failed_ancestors.contains(failed), "{id} blames {failed}");
                    }
                    TaskOutcome::Cancelled => proptest::prop_assert!(false, "{id} cancelled without fail_fast"),
                }
            }
        }
    }
}
