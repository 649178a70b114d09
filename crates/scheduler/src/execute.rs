//! The executor: runs async task closures in critical-path order with bounded concurrency.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::{SchedulerError, TaskGraph, TaskId};

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
    /// Not run because the run stopped early (`fail_fast`).
    Cancelled,
}

/// The outcome of every task, indexed by [`TaskId`].
#[derive(Debug)]
pub struct ExecutionReport<R, E> {
    /// One outcome per task.
    pub outcomes: Vec<TaskOutcome<R, E>>,
}

impl<R, E> ExecutionReport<R, E> {
    /// Whether every task succeeded.
    pub fn succeeded(&self) -> bool {
        self.outcomes.iter().all(|o| matches!(o, TaskOutcome::Succeeded { .. }))
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
        mut run: F,
    ) -> Result<ExecutionReport<R, E>, SchedulerError>
    where
        F: FnMut(TaskId, &T) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let level = self.bottom_levels(costs)?;
        let mut outcomes: Vec<Option<TaskOutcome<R, E>>> = (0..self.len()).map(|_| None).collect();
        let mut waiting_on: Vec<usize> = (0..self.len()).map(|id| self.dependencies(id).len()).collect();
        let mut ready: BinaryHeap<(u64, Reverse<TaskId>)> =
            (0..self.len()).filter(|&id| waiting_on[id] == 0).map(|id| (level[id], Reverse(id))).collect();
        let mut running = FuturesUnordered::new();
        let mut stopped = false;
        loop {
            while running.len() < workers.max(1) && !stopped {
                let Some((_, Reverse(id))) = ready.pop() else { break };
                let started = Instant::now();
                let future = run(id, self.payload(id));
                running.push(async move { (id, future.await, started.elapsed()) });
            }
            let Some((id, result, duration)) = running.next().await else { break };
            match result {
                Ok(value) => {
                    outcomes[id] = Some(TaskOutcome::Succeeded { value, duration });
                    for next in self.dependents(id) {
                        waiting_on[next] -= 1;
                        if waiting_on[next] == 0 && outcomes[next].is_none() {
                            ready.push((level[next], Reverse(next)));
                        }
                    }
                }
                Err(error) => {
                    outcomes[id] = Some(TaskOutcome::Failed { error, duration });
                    for d in self.descendants(id) {
                        outcomes[d].get_or_insert(TaskOutcome::UpstreamFailed { failed: id });
                    }
                    stopped |= fail_fast;
                }
            }
        }
        let outcomes = outcomes.into_iter().map(|o| o.unwrap_or(TaskOutcome::Cancelled)).collect();
        Ok(ExecutionReport { outcomes })
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
}
