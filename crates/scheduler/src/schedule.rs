//! Bottom levels, the critical path, and list scheduling simulated on `P` workers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;

use crate::graph::Dag;
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
    /// The summed cost of the tasks on `critical_path`.
    pub critical_path_length: u64,
}

impl Schedule {
    /// For each task, indexed by [`TaskId`], how many tasks run on average during its run,
    /// itself included: how many share the machine with it, weighted by how long. A task of
    /// cost 0 is never running, and shares with no one (1).
    pub fn concurrency(&self) -> Vec<f64> {
        let n = self.tasks.iter().map(|t| t.task + 1).max().unwrap_or(0);
        let runs: Vec<&ScheduledTask> = self.tasks.iter().filter(|t| t.finish > t.start).collect();
        // How many run changes only at starts and finishes.
        let mut times: Vec<u64> = runs.iter().flat_map(|t| [t.start, t.finish]).collect();
        times.sort_unstable();
        times.dedup();
        let at = |time: u64| times.partition_point(|&t| t < time);
        let mut change = vec![0i64; times.len()];
        for run in &runs {
            change[at(run.start)] += 1;
            change[at(run.finish)] -= 1;
        }
        // `area[k]`: the number running, integrated from the first time to `times[k]`.
        let mut area = vec![0u128; times.len()];
        let mut running = 0i64;
        for k in 1..times.len() {
            running += change[k - 1];
            area[k] = area[k - 1] + u128::from(running.unsigned_abs()) * u128::from(times[k] - times[k - 1]);
        }
        let mut out = vec![1.0; n];
        for run in &runs {
            let shared = area[at(run.finish)] - area[at(run.start)];
            out[run.task] = shared as f64 / (run.finish - run.start) as f64;
        }
        out
    }
}

/// Which ready task a free worker takes next, in [`TaskGraph::schedule_with`]. Ties always
/// go to the lowest task id, so every rule is deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Highest bottom level first: the task with the most expensive chain still ahead of it.
    /// What dfpipe uses.
    #[default]
    CriticalPath,
    /// Shallowest first, where a task's depth is the number of edges on the longest path from
    /// a task without dependencies to it: dbt's order. A baseline.
    Depth,
    /// First ready, first run: the order tasks became ready (Dagster and Hamilton without
    /// manual priorities). A baseline.
    Fifo,
}

impl<T> TaskGraph<T> {
    /// The bottom level of every task: its own cost plus the most expensive chain of
    /// dependents after it. Indexed by [`TaskId`].
    pub fn bottom_levels(&self, costs: &[u64]) -> Result<Vec<u64>, SchedulerError> {
        self.bottom_levels_with_edges(costs, |_, _| 0)
    }

    /// The bottom level (upward rank) with a cost per edge as well: `edge_cost(a, b)` is
    /// paid between the end of `a` and the start of `b`, for example to move `a`'s output.
    /// A task's level is its cost plus the maximum, over its dependents `d`, of
    /// `edge_cost(task, d) + level(d)`. Indexed by [`TaskId`].
    pub fn bottom_levels_with_edges(
        &self,
        costs: &[u64],
        edge_cost: impl Fn(TaskId, TaskId) -> u64,
    ) -> Result<Vec<u64>, SchedulerError> {
        self.check_costs(costs)?;
        let dag = self.dag()?;
        Ok(levels(&dag, costs, edge_cost))
    }

    /// The longest cost path through the graph, first task to last (ties: lowest ids).
    pub fn critical_path(&self, costs: &[u64]) -> Result<Vec<TaskId>, SchedulerError> {
        self.check_costs(costs)?;
        let dag = self.dag()?;
        let level = levels(&dag, costs, |_, _| 0);
        Ok(path(&dag, &level))
    }

    /// Simulates list scheduling on `workers` workers: whenever a worker is free, it takes
    /// the ready task with the highest bottom level (ties: lowest id). `costs` is indexed by
    /// [`TaskId`].
    pub fn schedule(&self, costs: &[u64], workers: usize) -> Result<Schedule, SchedulerError> {
        self.schedule_with(costs, workers, Priority::CriticalPath)
    }

    /// [`TaskGraph::schedule`] with another rule for choosing among ready tasks. The schedule
    /// still reports the graph's critical path and lower bound, so rules compare directly.
    pub fn schedule_with(&self, costs: &[u64], workers: usize, priority: Priority) -> Result<Schedule, SchedulerError> {
        self.check_costs(costs)?;
        let workers = workers.max(1);
        let dag = self.dag()?;
        let n = self.len();
        let level = levels(&dag, costs, |_, _| 0);
        let critical_path = path(&dag, &level);
        // Larger ranks run first. Depth and FIFO want the smallest value first, so they rank
        // by its complement.
        let depth = if priority == Priority::Depth { depths(&dag) } else { Vec::new() };
        let mut sequence = 0u64;
        let mut rank = |id: TaskId| match priority {
            Priority::CriticalPath => level[id],
            Priority::Depth => u64::MAX - depth[id],
            Priority::Fifo => {
                sequence += 1;
                u64::MAX - sequence
            }
        };
        let mut waiting_on: Vec<usize> = (0..n).map(|id| dag.adjacency.dependencies(id).len()).collect();
        let mut ready: BinaryHeap<(u64, Reverse<TaskId>)> = BinaryHeap::with_capacity(n.min(1024));
        for (id, &waiting) in waiting_on.iter().enumerate() {
            if waiting == 0 {
                ready.push((rank(id), Reverse(id)));
            }
        }
        // Running tasks as (finish, task, worker), earliest finish first.
        let mut running: BinaryHeap<Reverse<(u64, TaskId, usize)>> = BinaryHeap::with_capacity(workers.min(n));
        let mut idle: BinaryHeap<Reverse<usize>> = (0..workers.min(n.max(1))).map(Reverse).collect();
        let mut tasks = Vec::with_capacity(n);
        let mut now = 0u64;
        loop {
            while !idle.is_empty() {
                let Some((_, Reverse(task))) = ready.pop() else { break };
                let Some(Reverse(worker)) = idle.pop() else { break };
                let finish = now.saturating_add(costs[task]);
                tasks.push(ScheduledTask { task, worker, start: now, finish });
                running.push(Reverse((finish, task, worker)));
            }
            let Some(&Reverse((finish, ..))) = running.peek() else { break };
            now = finish;
            // Retire every task that finishes now before any worker picks again, so a task
            // made ready at `now` competes with the others on its rank.
            while let Some(&Reverse((finish, task, worker))) = running.peek() {
                if finish != now {
                    break;
                }
                running.pop();
                idle.push(Reverse(worker));
                for &next in dag.adjacency.dependents(task) {
                    waiting_on[next] -= 1;
                    if waiting_on[next] == 0 {
                        ready.push((rank(next), Reverse(next)));
                    }
                }
            }
        }
        let makespan = tasks.iter().map(|t| t.finish).max().unwrap_or(0);
        let total: u64 = costs.iter().take(n).fold(0, |sum, &c| sum.saturating_add(c));
        let critical_path_length: u64 = critical_path.iter().fold(0, |sum, &id| sum.saturating_add(costs[id]));
        let lower_bound = critical_path_length.max(total.div_ceil(workers as u64));
        Ok(Schedule { workers, tasks, makespan, lower_bound, critical_path, critical_path_length })
    }

    pub(crate) fn check_costs(&self, costs: &[u64]) -> Result<(), SchedulerError> {
        if costs.len() < self.len() {
            return Err(SchedulerError::MissingCosts { tasks: self.len(), costs: costs.len() });
        }
        Ok(())
    }
}

/// Bottom levels over a checked DAG, in one pass in reverse topological order.
pub(crate) fn levels(dag: &Dag, costs: &[u64], edge_cost: impl Fn(TaskId, TaskId) -> u64) -> Vec<u64> {
    let mut level = vec![0u64; dag.order.len()];
    for &id in dag.order.iter().rev() {
        let below =
            dag.adjacency.dependents(id).iter().map(|&d| edge_cost(id, d).saturating_add(level[d])).max().unwrap_or(0);
        level[id] = costs[id].saturating_add(below);
    }
    level
}

/// The path that follows the highest level from the best entry task (ties: lowest ids).
fn path(dag: &Dag, level: &[u64]) -> Vec<TaskId> {
    let n = level.len();
    let mut path = Vec::new();
    let mut cursor =
        (0..n).filter(|&id| dag.adjacency.dependencies(id).is_empty()).max_by_key(|&id| (level[id], Reverse(id)));
    while let Some(id) = cursor {
        path.push(id);
        cursor = dag.adjacency.dependents(id).iter().copied().max_by_key(|&d| (level[d], Reverse(d)));
    }
    path
}

/// The number of edges on the longest path from a task without dependencies to each task.
fn depths(dag: &Dag) -> Vec<u64> {
    let mut depth = vec![0u64; dag.order.len()];
    for &id in &dag.order {
        depth[id] = dag.adjacency.dependencies(id).iter().map(|&d| depth[d] + 1).max().unwrap_or(0);
    }
    depth
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

    fn tasks(n: usize) -> TaskGraph<()> {
        let mut g = TaskGraph::new();
        for i in 0..n {
            g.add_task(format!("t{i}"), ());
        }
        g
    }

    /// Checks what every list schedule must satisfy, whatever its priority rule.
    fn check_valid(g: &TaskGraph<()>, costs: &[u64], s: &Schedule) -> Result<(), TestCaseError> {
        prop_assert_eq!(s.tasks.len(), g.len());
        let mut finish = vec![None; g.len()];
        for t in &s.tasks {
            prop_assert_eq!(t.finish, t.start + costs[t.task]);
            prop_assert!(finish[t.task].replace(t.finish).is_none(), "{} scheduled twice", t.task);
        }
        for t in &s.tasks {
            for d in g.dependencies(t.task) {
                prop_assert!(finish[d].unwrap() <= t.start, "{} starts before {} ends", t.task, d);
            }
        }
        for w in 0..s.workers {
            let mut on: Vec<_> = s.tasks.iter().filter(|t| t.worker == w).collect();
            on.sort_by_key(|t| t.start);
            for pair in on.windows(2) {
                prop_assert!(pair[0].finish <= pair[1].start, "worker {} overlaps", w);
            }
        }
        prop_assert!(s.tasks.iter().all(|t| t.worker < s.workers));
        prop_assert_eq!(s.makespan, s.tasks.iter().map(|t| t.finish).max().unwrap_or(0));
        prop_assert!(s.makespan >= s.lower_bound);
        // Graham: any list schedule is within (2 - 1/P) of the optimum, hence of the bound.
        let p = s.workers as u64;
        prop_assert!(s.makespan * p <= (2 * p - 1) * s.lower_bound, "{} > (2 - 1/{p}) x {}", s.makespan, s.lower_bound);
        Ok(())
    }

    /// The optimal makespan of independent tasks on `workers` workers, by trying every
    /// assignment. Only for a handful of tasks.
    fn optimum_independent(costs: &[u64], workers: usize) -> u64 {
        fn go(costs: &[u64], loads: &mut Vec<u64>, best: &mut u64) {
            let Some((&first, rest)) = costs.split_first() else {
                *best = (*best).min(loads.iter().copied().max().unwrap_or(0));
                return;
            };
            for w in 0..loads.len() {
                loads[w] += first;
                if loads[w] < *best {
                    go(rest, loads, best);
                }
                loads[w] -= first;
            }
        }
        let mut best = u64::MAX;
        go(costs, &mut vec![0; workers], &mut best);
        best
    }

    proptest! {
        #[test]
        fn every_priority_respects_dependencies_and_bounds(
            (g, costs) in dag(),
            workers in 1usize..9,
            priority in prop::sample::select(vec![Priority::CriticalPath, Priority::Depth, Priority::Fifo]),
        ) {
            let s = g.schedule_with(&costs, workers, priority).unwrap();
            check_valid(&g, &costs, &s)?;
            prop_assert_eq!(s.critical_path_length, s.critical_path.iter().map(|&id| costs[id]).sum::<u64>());
            prop_assert_eq!(g.schedule(&costs, workers).unwrap(), g.schedule_with(&costs, workers, Priority::CriticalPath).unwrap());
        }

        #[test]
        fn bottom_levels_follow_their_definition((g, costs) in dag(), edge in 0u64..20) {
            let edge_cost = |a: TaskId, b: TaskId| (a as u64 * 7 + b as u64) % (edge + 1);
            let plain = g.bottom_levels(&costs).unwrap();
            let with_edges = g.bottom_levels_with_edges(&costs, edge_cost).unwrap();
            for id in 0..g.len() {
                let below = g.dependents(id).into_iter().map(|d| plain[d]).max().unwrap_or(0);
                prop_assert_eq!(plain[id], costs[id] + below);
                let below = g.dependents(id).into_iter().map(|d| edge_cost(id, d) + with_edges[d]).max().unwrap_or(0);
                prop_assert_eq!(with_edges[id], costs[id] + below);
            }
            // The critical path is a path, and as long as the largest bottom level.
            let path = g.critical_path(&costs).unwrap();
            prop_assert!(path.windows(2).all(|w| g.dependents(w[0]).contains(&w[1])));
            prop_assert_eq!(path.iter().map(|&id| costs[id]).sum::<u64>(), plain.iter().copied().max().unwrap_or(0));
        }

        #[test]
        fn chains_are_scheduled_optimally(costs in prop::collection::vec(0u64..100, 1..30), workers in 1usize..9) {
            let mut g = tasks(costs.len());
            for i in 1..costs.len() {
                g.add_dependency(i - 1, i).unwrap();
            }
            let s = g.schedule(&costs, workers).unwrap();
            check_valid(&g, &costs, &s)?;
            prop_assert_eq!(s.makespan, costs.iter().sum::<u64>());
            prop_assert_eq!(s.makespan, s.lower_bound);
        }

        #[test]
        fn independent_tasks_that_fit_are_scheduled_optimally(costs in prop::collection::vec(1u64..100, 1..20), spare in 0usize..4) {
            // At least as many workers as tasks: the optimum is the longest task.
            let workers = costs.len() + spare;
            let g = tasks(costs.len());
            let s = g.schedule(&costs, workers).unwrap();
            check_valid(&g, &costs, &s)?;
            prop_assert_eq!(s.makespan, *costs.iter().max().unwrap());
            prop_assert_eq!(s.makespan, s.lower_bound);
        }

        #[test]
        fn equal_independent_tasks_are_scheduled_optimally(n in 1usize..60, cost in 1u64..50, workers in 1usize..9) {
            let g = tasks(n);
            let s = g.schedule(&vec![cost; n], workers).unwrap();
            // The optimum: full rounds of `workers` tasks, the last one perhaps partial.
            prop_assert_eq!(s.makespan, n.div_ceil(workers) as u64 * cost);
        }

        #[test]
        fn independent_tasks_are_within_the_lpt_bound_of_the_optimum(costs in prop::collection::vec(1u64..50, 1..9), workers in 1usize..4) {
            // Without edges, critical-path first is longest processing time first, which is
            // within (4/3 - 1/(3P)) of the optimum (Graham 1969). Optimal scheduling of
            // independent tasks is NP-hard, so no list rule can promise more.
            let g = tasks(costs.len());
            let s = g.schedule(&costs, workers).unwrap();
            let optimum = optimum_independent(&costs, workers);
            let p = workers as u64;
            prop_assert!(s.makespan * 3 * p <= (4 * p - 1) * optimum, "{} vs optimum {}", s.makespan, optimum);
        }
    }

    proptest! {
        #[test]
        fn concurrency_is_the_mean_of_running_tasks((g, costs) in dag(), workers in 1usize..5) {
            // Some tasks cost nothing, as lazy and skipped views do.
            let costs: Vec<u64> = costs.iter().map(|&c| if c % 5 == 0 { 0 } else { c }).collect();
            let s = g.schedule(&costs, workers).unwrap();
            let concurrency = s.concurrency();
            for t in &s.tasks {
                let expected = if t.finish == t.start {
                    1.0
                } else {
                    let shared: u64 = (s.tasks.iter())
                        .map(|u| u.finish.min(t.finish).saturating_sub(u.start.max(t.start)))
                        .sum();
                    shared as f64 / (t.finish - t.start) as f64
                };
                prop_assert!((concurrency[t.task] - expected).abs() < 1e-9, "{}: {} != {expected}", t.task, concurrency[t.task]);
                prop_assert!(concurrency[t.task] >= 1.0 - 1e-9 && concurrency[t.task] <= workers as f64 + 1e-9);
            }
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

#[cfg(test)]
mod more_tests {
    use super::*;

    fn graph(n: usize, edges: &[(usize, usize)]) -> TaskGraph<()> {
        let mut g = TaskGraph::new();
        for i in 0..n {
            g.add_task(format!("t{i}"), ());
        }
        for &(a, b) in edges {
            g.add_dependency(a, b).unwrap();
        }
        g
    }

    fn order(s: &Schedule) -> Vec<TaskId> {
        s.tasks.iter().map(|t| t.task).collect()
    }

    #[test]
    fn edge_costs_can_change_the_critical_branch() {
        // 0 -> 1 (cost 5) and 0 -> 2 (cost 3); moving 0's output to 2 costs 4.
        let g = graph(3, &[(0, 1), (0, 2)]);
        let costs = [1, 5, 3];
        assert_eq!(g.bottom_levels(&costs).unwrap(), [6, 5, 3]);
        let edge = |a, b| if (a, b) == (0, 2) { 4 } else { 0 };
        assert_eq!(g.bottom_levels_with_edges(&costs, edge).unwrap(), [8, 5, 3]);
    }

    #[test]
    fn the_priority_rules_differ_as_documented() {
        // 0 -> 1 -> 2 is a long chain (costs 1, 10, 10); 3, 4 and 5 are short independent
        // tasks (cost 2). 0 and 3..5 are ready at once; 1 becomes ready at time 1.
        let g = graph(6, &[(0, 1), (1, 2)]);
        let costs = [1, 10, 10, 2, 2, 2];
        // Critical path: the chain first, the short tasks beside it.
        let cp = g.schedule_with(&costs, 2, Priority::CriticalPath).unwrap();
        assert_eq!(order(&cp), [0, 3, 1, 4, 5, 2]);
        assert_eq!(cp.makespan, 21);
        // Depth: every depth-0 task before the depth-1 task 1, so the chain waits.
        let depth = g.schedule_with(&costs, 2, Priority::Depth).unwrap();
        assert_eq!(order(&depth), [0, 3, 4, 5, 1, 2]);
        assert_eq!(depth.makespan, 23);
        // FIFO: tasks in the order they became ready; 1 became ready after 3, 4 and 5.
        let fifo = g.schedule_with(&costs, 2, Priority::Fifo).unwrap();
        assert_eq!(order(&fifo), [0, 3, 4, 5, 1, 2]);
        assert_eq!(cp.lower_bound, 21);
    }

    #[test]
    fn tasks_finishing_together_are_all_retired_before_the_next_pick() {
        // 0 and 1 (cost 1) run first and finish together at time 1. 1's dependents 2 and 3
        // (cost 5) have the longest tails, so both must start then, ahead of 4 (ready from
        // the start) and 5 (after 0), whatever order 0 and 1 are retired in.
        let g = graph(6, &[(0, 5), (1, 2), (1, 3)]);
        let costs = [1, 1, 5, 5, 3, 3];
        let s = g.schedule(&costs, 2).unwrap();
        assert_eq!(order(&s), [1, 0, 2, 3, 4, 5]);
        assert_eq!(s.makespan, 9);
        assert_eq!(s.lower_bound, 9);
    }

    #[test]
    fn concurrency_weighs_the_tasks_running_beside_each_by_time() {
        // t0 (cost 10) and t1 (cost 4) start together; t2 follows t1 on its worker, and t0
        // runs its last 2 units alone; t3, after all three, runs alone; t4 costs nothing.
        let g = graph(5, &[(1, 2), (0, 3), (2, 3)]);
        let s = g.schedule(&[10, 4, 4, 5, 0], 2).unwrap();
        assert_eq!(s.concurrency(), [1.8, 2.0, 2.0, 1.0, 1.0]);
        // A long task beside a short one shares the machine for a hundredth of its run.
        let s = graph(2, &[]).schedule(&[100, 1], 2).unwrap();
        assert_eq!(s.concurrency(), [1.01, 2.0]);
    }

    #[test]
    fn an_empty_graph_has_an_empty_schedule() {
        let s = graph(0, &[]).schedule(&[], 4).unwrap();
        assert_eq!((s.makespan, s.lower_bound, s.tasks.len()), (0, 0, 0));
        assert!(s.critical_path.is_empty());
    }

    #[test]
    fn a_cycle_is_reported_by_every_pass() {
        let g = graph(2, &[(0, 1), (1, 0)]);
        let cycle = SchedulerError::Cycle(vec!["t0".into(), "t1".into(), "t0".into()]);
        assert_eq!(g.schedule(&[1, 1], 2).unwrap_err(), cycle);
        assert_eq!(g.schedule_with(&[1, 1], 2, Priority::Fifo).unwrap_err(), cycle);
        assert_eq!(g.bottom_levels(&[1, 1]).unwrap_err(), cycle);
        assert_eq!(g.critical_path(&[1, 1]).unwrap_err(), cycle);
    }
}
