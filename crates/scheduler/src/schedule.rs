//! Bottom levels, the critical path, and list scheduling simulated on `P` workers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::{SchedulerError, TaskGraph, TaskId};

/// One task placed on a worker by [`TaskGraph::schedule`]. Times are in cost units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScheduledTask {
    /// The task.
    pub task: TaskId,
    /// The worker it runs on, from `0` to `P - 1`.
    pub worker: usize,
    /// When it starts.
    pub start: u64,
    /// When it finishes: `start + cost`.
    pub finish: u64,
}

/// A predicted schedule, with the bound no schedule can beat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// The number of workers.
    pub workers: usize,
    /// Every task, in the order it was started.
    pub tasks: Vec<ScheduledTask>,
    /// When the last task finishes.
    pub makespan: u64,
    /// `max(critical path length, total work / workers)`, rounded up.
    pub lower_bound: u64,
    /// The tasks of the longest cost path, first to last.
    pub critical_path: Vec<TaskId>,
}

impl<T> TaskGraph<T> {
    /// The bottom level of every task: its own cost plus the most expensive chain of
    /// dependents after it. Indexed by [`TaskId`].
    pub fn bottom_levels(&self, costs: &[u64]) -> Result<Vec<u64>, SchedulerError> {
        if costs.len() < self.len() {
            return Err(SchedulerError::MissingCosts { tasks: self.len(), costs: costs.len() });
        }
        let order = self.topological_order()?;
        let mut level = vec![0u64; self.len()];
        for &id in order.iter().rev() {
            let below = self.dependents(id).into_iter().map(|d| level[d]).max().unwrap_or(0);
            level[id] = costs[id].saturating_add(below);
        }
        Ok(level)
    }

    /// The longest cost path through the graph, first task to last (ties: lowest ids).
    pub fn critical_path(&self, costs: &[u64]) -> Result<Vec<TaskId>, SchedulerError> {
        let level = self.bottom_levels(costs)?;
        let mut path = Vec::new();
        let entry =
            (0..self.len()).filter(|&id| self.dependencies(id).is_empty()).max_by_key(|&id| (level[id], Reverse(id)));
        let mut cursor = entry;
        while let Some(id) = cursor {
            path.push(id);
            cursor = self.dependents(id).into_iter().max_by_key(|&d| (level[d], Reverse(d)));
        }
        Ok(path)
    }

    /// Simulates list scheduling on `workers` workers: whenever a worker is free, it takes
    /// the ready task with the highest bottom level (ties: lowest id). `costs` is indexed by
    /// [`TaskId`].
    pub fn schedule(&self, costs: &[u64], workers: usize) -> Result<Schedule, SchedulerError> {
        let workers = workers.max(1);
        let level = self.bottom_levels(costs)?;
        let critical_path = self.critical_path(costs)?;
        let mut waiting_on: Vec<usize> = (0..self.len()).map(|id| self.dependencies(id).len()).collect();
        let mut ready: BinaryHeap<(u64, Reverse<TaskId>)> =
            (0..self.len()).filter(|&id| waiting_on[id] == 0).map(|id| (level[id], Reverse(id))).collect();
        // Running tasks as (finish, task, worker), earliest finish first.
        let mut running: BinaryHeap<Reverse<(u64, TaskId, usize)>> = BinaryHeap::new();
        let mut idle: BinaryHeap<Reverse<usize>> = (0..workers).map(Reverse).collect();
        let mut tasks = Vec::with_capacity(self.len());
        let mut now = 0u64;
        loop {
            while let (Some(_), Some(_)) = (ready.peek(), idle.peek()) {
                let (Some((_, Reverse(task))), Some(Reverse(worker))) = (ready.pop(), idle.pop()) else {
                    break;
                };
                let finish = now.saturating_add(costs[task]);
                tasks.push(ScheduledTask { task, worker, start: now, finish });
                running.push(Reverse((finish, task, worker)));
            }
            let Some(Reverse((finish, task, worker))) = running.pop() else { break };
            now = finish;
            idle.push(Reverse(worker));
            for next in self.dependents(task) {
                waiting_on[next] -= 1;
                if waiting_on[next] == 0 {
                    ready.push((level[next], Reverse(next)));
                }
            }
        }
        let makespan = tasks.iter().map(|t| t.finish).max().unwrap_or(0);
        let total: u64 = costs.iter().take(self.len()).sum();
        let path_length: u64 = critical_path.iter().map(|&id| costs[id]).sum();
        let lower_bound = path_length.max(total.div_ceil(workers as u64));
        Ok(Schedule { workers, tasks, makespan, lower_bound, critical_path })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A random DAG: edges only go from lower to higher ids, so it is acyclic.
    fn dag() -> impl Strategy<Value = (TaskGraph<()>, Vec<u64>)> {
        (1usize..40).prop_flat_map(|n| {
            let edges = prop::collection::vec((0..n, 0..n), 0..n * 2);
            let costs = prop::collection::vec(1u64..100, n);
            (edges, costs).prop_map(move |(edges, costs)| {
                let mut g = TaskGraph::new();
                for i in 0..n {
                    g.add_task(format!("t{i}"), ());
                }
                for (a, b) in edges {
                    if a < b {
                        g.add_dependency(a, b).unwrap();
                    }
                }
                (g, costs)
            })
        })
    }

    proptest! {
        #[test]
        fn schedules_respect_dependencies_and_bounds((g, costs) in dag(), workers in 1usize..5) {
            let s = g.schedule(&costs, workers).unwrap();
            prop_assert_eq!(s.tasks.len(), g.len());
            let mut finish = vec![0; g.len()];
            for t in &s.tasks {
                finish[t.task] = t.finish;
            }
            for t in &s.tasks {
                for d in g.dependencies(t.task) {
                    prop_assert!(finish[d] <= t.start, "{} starts before {} ends", t.task, d);
                }
            }
            for w in 0..workers {
                let mut on: Vec<_> = s.tasks.iter().filter(|t| t.worker == w).collect();
                on.sort_by_key(|t| t.start);
                for pair in on.windows(2) {
                    prop_assert!(pair[0].finish <= pair[1].start, "worker {} overlaps", w);
                }
            }
            prop_assert!(s.makespan >= s.lower_bound);
            // Graham: list scheduling is within (2 - 1/P) of the optimum, hence of the bound.
            let p = workers as u64;
            prop_assert!(s.makespan * p <= (2 * p - 1) * s.lower_bound);
        }
    }

    #[test]
    fn too_few_costs_are_an_error() {
        let mut g = TaskGraph::new();
        g.add_task("a", ());
        g.add_task("b", ());
        assert_eq!(g.schedule(&[1], 2), Err(SchedulerError::MissingCosts { tasks: 2, costs: 1 }));
    }

    #[test]
    fn a_chain_runs_back_to_back() {
        let mut g = TaskGraph::new();
        for i in 0..4 {
            g.add_task(format!("t{i}"), ());
        }
        for i in 0..3 {
            g.add_dependency(i, i + 1).unwrap();
        }
        let s = g.schedule(&[5, 1, 3, 2], 3).unwrap();
        assert_eq!(s.makespan, 11);
        assert_eq!(s.lower_bound, 11);
        assert_eq!(s.critical_path, vec![0, 1, 2, 3]);
    }

    #[test]
    fn the_longest_chain_starts_first() {
        // a(1) -> b(10); c(5); d(5). On 2 workers, a must start at once for the optimum 11.
        let mut g = TaskGraph::new();
        for n in ["c", "d", "a", "b"] {
            g.add_task(n, ());
        }
        g.add_dependency(2, 3).unwrap();
        let s = g.schedule(&[5, 5, 1, 10], 2).unwrap();
        assert_eq!(s.critical_path, vec![2, 3]);
        assert_eq!(s.makespan, 11);
        assert_eq!(s.tasks[0].task, 2);
    }
}
