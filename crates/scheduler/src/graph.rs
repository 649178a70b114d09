//! The task graph: tasks, dependency edges, cycles, topological order and selection.

use std::collections::{BTreeSet, VecDeque};

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, Reversed};

use crate::SchedulerError;

/// Identifies a task in its [`TaskGraph`]: tasks are numbered in the order they were added.
pub type TaskId = usize;

/// A DAG of named tasks carrying payloads of type `T`. An edge `a -> b` means `b` needs `a`.
#[derive(Debug, Clone)]
pub struct TaskGraph<T> {
    graph: DiGraph<(String, T), ()>,
}

impl<T> Default for TaskGraph<T> {
    fn default() -> Self {
        Self { graph: DiGraph::new() }
    }
}

impl<T> TaskGraph<T> {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a task and returns its id.
    pub fn add_task(&mut self, name: impl Into<String>, payload: T) -> TaskId {
        self.graph.add_node((name.into(), payload)).index()
    }

    /// Records that `after` cannot start before `before` has finished.
    pub fn add_dependency(&mut self, before: TaskId, after: TaskId) -> Result<(), SchedulerError> {
        for id in [before, after] {
            if id >= self.len() {
                return Err(SchedulerError::UnknownTask(id));
            }
        }
        self.graph.update_edge(NodeIndex::new(before), NodeIndex::new(after), ());
        Ok(())
    }

    /// The number of tasks.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no task.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name of a task.
    pub fn name(&self, id: TaskId) -> &str {
        &self.graph[NodeIndex::new(id)].0
    }

    /// The payload of a task.
    pub fn payload(&self, id: TaskId) -> &T {
        &self.graph[NodeIndex::new(id)].1
    }

    /// The id of the task with this name, if any.
    pub fn find(&self, name: &str) -> Option<TaskId> {
        self.graph.node_indices().find(|&n| self.graph[n].0 == name).map(NodeIndex::index)
    }

    /// The tasks `id` depends on directly, in ascending id order.
    pub fn dependencies(&self, id: TaskId) -> Vec<TaskId> {
        self.neighbors(id, Direction::Incoming)
    }

    /// The tasks that depend directly on `id`, in ascending id order.
    pub fn dependents(&self, id: TaskId) -> Vec<TaskId> {
        self.neighbors(id, Direction::Outgoing)
    }

    fn neighbors(&self, id: TaskId, direction: Direction) -> Vec<TaskId> {
        let set: BTreeSet<TaskId> =
            self.graph.neighbors_directed(NodeIndex::new(id), direction).map(NodeIndex::index).collect();
        set.into_iter().collect()
    }

    /// Every task reachable from `id` along dependency edges (its descendants), without `id`.
    pub fn descendants(&self, id: TaskId) -> BTreeSet<TaskId> {
        let mut bfs = Bfs::new(&self.graph, NodeIndex::new(id));
        let mut out = BTreeSet::new();
        while let Some(n) = bfs.next(&self.graph) {
            out.insert(n.index());
        }
        out.remove(&id);
        out
    }

    /// Every task `id` needs, directly or not (its ancestors), without `id`.
    pub fn ancestors(&self, id: TaskId) -> BTreeSet<TaskId> {
        let reversed = Reversed(&self.graph);
        let mut bfs = Bfs::new(reversed, NodeIndex::new(id));
        let mut out = BTreeSet::new();
        while let Some(n) = bfs.next(reversed) {
            out.insert(n.index());
        }
        out.remove(&id);
        out
    }

    /// A topological order (dependencies first, ties broken by ascending id), or the first
    /// cycle found, listed in full.
    pub fn topological_order(&self) -> Result<Vec<TaskId>, SchedulerError> {
        if let Some(cycle) = self.find_cycle() {
            return Err(SchedulerError::Cycle(cycle.iter().map(|&id| self.name(id).to_owned()).collect()));
        }
        let mut indegree: Vec<usize> = (0..self.len()).map(|id| self.dependencies(id).len()).collect();
        let mut ready: BTreeSet<TaskId> = (0..self.len()).filter(|&id| indegree[id] == 0).collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(id) = ready.pop_first() {
            order.push(id);
            for next in self.dependents(id) {
                indegree[next] -= 1;
                if indegree[next] == 0 {
                    ready.insert(next);
                }
            }
        }
        Ok(order)
    }

    /// A cycle as a path of task ids whose first id is repeated at the end, or `None`.
    fn find_cycle(&self) -> Option<Vec<TaskId>> {
        let mut components = tarjan_scc(&self.graph);
        // Report the component holding the smallest task id, so errors are deterministic.
        components.sort_by_key(|c| c.iter().map(|n| n.index()).min());
        for component in components {
            let start = *component.iter().min()?;
            let is_cycle = component.len() > 1 || self.graph.contains_edge(start, start);
            if !is_cycle {
                continue;
            }
            let inside: BTreeSet<NodeIndex> = component.iter().copied().collect();
            return Some(self.shortest_cycle_through(start, &inside));
        }
        None
    }

    /// The shortest path `start -> ... -> start` inside one strongly connected component.
    fn shortest_cycle_through(&self, start: NodeIndex, inside: &BTreeSet<NodeIndex>) -> Vec<TaskId> {
        let mut parent: Vec<Option<NodeIndex>> = vec![None; self.len()];
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let mut next: Vec<NodeIndex> = self.graph.neighbors(n).filter(|m| inside.contains(m)).collect();
            next.sort();
            for m in next {
                if m == start {
                    // Walk back from `n` to `start`, then read the path forwards.
                    let mut path = vec![n.index()];
                    let mut cursor = n;
                    while let Some(p) = parent[cursor.index()] {
                        path.push(p.index());
                        cursor = p;
                    }
                    if cursor != start {
                        path.push(start.index());
                    }
                    path.reverse();
                    path.push(start.index());
                    return path;
                }
                if parent[m.index()].is_none() {
                    parent[m.index()] = Some(n);
                    queue.push_back(m);
                }
            }
        }
        vec![start.index(), start.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(names: &[&str], edges: &[(usize, usize)]) -> TaskGraph<()> {
        let mut g = TaskGraph::new();
        for n in names {
            g.add_task(*n, ());
        }
        for &(a, b) in edges {
            g.add_dependency(a, b).unwrap();
        }
        g
    }

    fn cycle_of(g: &TaskGraph<()>) -> Vec<String> {
        match g.topological_order() {
            Err(SchedulerError::Cycle(names)) => names,
            other => panic!("expected a cycle, got {other:?}"),
        }
    }

    #[test]
    fn topological_order_puts_dependencies_first() {
        let g = graph(&["a", "b", "c", "d"], &[(2, 1), (1, 0), (3, 0)]);
        assert_eq!(g.topological_order().unwrap(), vec![2, 1, 3, 0]);
    }

    #[test]
    fn cycles_of_every_length_are_listed_in_full() {
        assert_eq!(cycle_of(&graph(&["a"], &[(0, 0)])), ["a", "a"]);
        assert_eq!(cycle_of(&graph(&["a", "b"], &[(0, 1), (1, 0)])), ["a", "b", "a"]);
        let long = graph(&["x", "a", "b", "c", "d"], &[(0, 1), (1, 2), (2, 3), (3, 4), (4, 1)]);
        assert_eq!(cycle_of(&long), ["a", "b", "c", "d", "a"]);
    }

    #[test]
    fn ancestors_and_descendants() {
        let g = graph(&["a", "b", "c", "d"], &[(0, 1), (1, 2), (3, 2)]);
        assert_eq!(g.ancestors(2), BTreeSet::from([0, 1, 3]));
        assert_eq!(g.descendants(0), BTreeSet::from([1, 2]));
        assert!(g.descendants(2).is_empty());
    }

    #[test]
    fn unknown_ids_are_rejected() {
        let mut g = graph(&["a"], &[]);
        assert_eq!(g.add_dependency(0, 5), Err(SchedulerError::UnknownTask(5)));
    }
}
