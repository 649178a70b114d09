//! The task graph: tasks, dependency edges, cycles, topological order and selection.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::str::FromStr;

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
        // `add_dependency` never adds an edge twice, so sorting is enough to list each once.
        let mut ids: Vec<TaskId> =
            self.graph.neighbors_directed(NodeIndex::new(id), direction).map(NodeIndex::index).collect();
        ids.sort_unstable();
        ids
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

    /// The tasks chosen by `--select` terms: the union, over every selector, of the named
    /// task plus its ancestors and/or descendants as the selector asks.
    pub fn select(&self, selectors: &[Selector]) -> Result<BTreeSet<TaskId>, SchedulerError> {
        let mut out = BTreeSet::new();
        for selector in selectors {
            let id = self.find(&selector.name).ok_or_else(|| SchedulerError::UnknownName(selector.name.clone()))?;
            out.insert(id);
            if selector.ancestors {
                out.extend(self.ancestors(id));
            }
            if selector.descendants {
                out.extend(self.descendants(id));
            }
        }
        Ok(out)
    }

    /// A topological order (dependencies first, ties broken by ascending id), or the first
    /// cycle found, listed in full.
    pub fn topological_order(&self) -> Result<Vec<TaskId>, SchedulerError> {
        Ok(self.dag()?.order)
    }

    /// The graph as flat adjacency lists plus a topological order, or the first cycle found.
    /// Every ranking and scheduling pass starts here, so it allocates a fixed number of
    /// vectors whatever the size of the graph.
    pub(crate) fn dag(&self) -> Result<Dag, SchedulerError> {
        let adjacency = Adjacency::of(&self.graph);
        let n = self.len();
        let mut indegree: Vec<usize> = (0..n).map(|id| adjacency.dependencies(id).len()).collect();
        let mut ready: BinaryHeap<Reverse<TaskId>> = (0..n).filter(|&id| indegree[id] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(id)) = ready.pop() {
            order.push(id);
            for &next in adjacency.dependents(id) {
                indegree[next] -= 1;
                if indegree[next] == 0 {
                    ready.push(Reverse(next));
                }
            }
        }
        if order.len() < n {
            let cycle = self.find_cycle().unwrap_or_default();
            return Err(SchedulerError::Cycle(cycle.iter().map(|&id| self.name(id).to_owned()).collect()));
        }
        Ok(Dag { adjacency, order })
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

/// A `--select` term, written as dbt does: `name` selects one task, `+name` adds its
/// ancestors, `name+` its descendants, and `+name+` both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The task's name.
    pub name: String,
    /// Whether the task's ancestors (everything it needs) are selected too.
    pub ancestors: bool,
    /// Whether the task's descendants (everything that needs it) are selected too.
    pub descendants: bool,
}

impl FromStr for Selector {
    type Err = SchedulerError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let (ancestors, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (descendants, name) = match rest.strip_suffix('+') {
            Some(name) => (true, name),
            None => (false, rest),
        };
        if name.is_empty() || name.contains('+') {
            return Err(SchedulerError::InvalidSelector(text.to_owned()));
        }
        Ok(Self { name: name.to_owned(), ancestors, descendants })
    }
}

/// A task graph checked to be acyclic: both adjacency lists and a topological order.
#[derive(Debug)]
pub(crate) struct Dag {
    pub(crate) adjacency: Adjacency,
    /// Dependencies first, ties broken by ascending id.
    pub(crate) order: Vec<TaskId>,
}

/// Both directions of the edges in compressed sparse row form: the neighbours of task `i`
/// are `targets[start[i]..start[i + 1]]`, in ascending id order.
#[derive(Debug)]
pub(crate) struct Adjacency {
    dependents_start: Vec<usize>,
    dependents: Vec<TaskId>,
    dependencies_start: Vec<usize>,
    dependencies: Vec<TaskId>,
}

impl Adjacency {
    /// Builds both lists in `O(tasks + edges)` by two counting-sort passes, which also leave
    /// every list sorted.
    fn of<N>(graph: &DiGraph<N, ()>) -> Self {
        let n = graph.node_count();
        let edges = graph.raw_edges();
        let mut dependencies_start = vec![0usize; n + 1];
        let mut dependents_start = vec![0usize; n + 1];
        for edge in edges {
            dependencies_start[edge.target().index() + 1] += 1;
            dependents_start[edge.source().index() + 1] += 1;
        }
        for i in 0..n {
            dependencies_start[i + 1] += dependencies_start[i];
            dependents_start[i + 1] += dependents_start[i];
        }
        // Pass 1: dependencies in edge order.
        let mut unsorted = vec![0; edges.len()];
        let mut cursor = dependencies_start.clone();
        for edge in edges {
            let slot = &mut cursor[edge.target().index()];
            unsorted[*slot] = edge.source().index();
            *slot += 1;
        }
        // Pass 2: visiting targets in ascending order sorts each task's dependents.
        let mut dependents = vec![0; edges.len()];
        let mut cursor = dependents_start.clone();
        for target in 0..n {
            for &source in &unsorted[dependencies_start[target]..dependencies_start[target + 1]] {
                dependents[cursor[source]] = target;
                cursor[source] += 1;
            }
        }
        // Pass 3: visiting sources in ascending order sorts each task's dependencies.
        let mut dependencies = unsorted;
        let mut cursor = dependencies_start.clone();
        for source in 0..n {
            for &target in &dependents[dependents_start[source]..dependents_start[source + 1]] {
                dependencies[cursor[target]] = source;
                cursor[target] += 1;
            }
        }
        Self { dependents_start, dependents, dependencies_start, dependencies }
    }

    /// The tasks that depend directly on `id`, ascending.
    pub(crate) fn dependents(&self, id: TaskId) -> &[TaskId] {
        &self.dependents[self.dependents_start[id]..self.dependents_start[id + 1]]
    }

    /// The tasks `id` depends on directly, ascending.
    pub(crate) fn dependencies(&self, id: TaskId) -> &[TaskId] {
        &self.dependencies[self.dependencies_start[id]..self.dependencies_start[id + 1]]
    }

    /// Every task reachable from `id`, without `id`, in no particular order.
    pub(crate) fn descendants(&self, id: TaskId) -> Vec<TaskId> {
        let mut seen = vec![false; self.dependents_start.len() - 1];
        let mut stack = vec![id];
        let mut out = Vec::new();
        while let Some(task) = stack.pop() {
            for &next in self.dependents(task) {
                if !seen[next] {
                    seen[next] = true;
                    out.push(next);
                    stack.push(next);
                }
            }
        }
        out
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

    #[test]
    fn cycles_are_found_past_acyclic_parts_and_reported_the_same_way_every_time() {
        // A long cycle 1 -> 2 -> 3 -> 4 -> 5 -> 1 behind an acyclic entry 0, ids out of order.
        let g = graph(&["in", "e", "d", "c", "b", "a"], &[(0, 5), (5, 4), (4, 3), (3, 2), (2, 1), (1, 5)]);
        assert_eq!(cycle_of(&g), ["e", "a", "b", "c", "d", "e"]);
        // Two cycles: the one holding the lowest id is reported, by its shortest path.
        let g = graph(&["a", "b", "c", "d", "e"], &[(3, 4), (4, 3), (0, 1), (1, 2), (2, 0), (1, 0)]);
        assert_eq!(cycle_of(&g), ["a", "b", "a"]);
        let message = g.topological_order().unwrap_err().to_string();
        assert_eq!(message, "dependency cycle: a -> b -> a. Remove one of these references to break it.");
    }

    #[test]
    fn selectors_parse_as_dbt_writes_them() {
        let check = |text: &str, name: &str, ancestors: bool, descendants: bool| {
            let expected = Selector { name: name.to_owned(), ancestors, descendants };
            assert_eq!(text.parse::<Selector>(), Ok(expected), "{text}");
        };
        check("orders", "orders", false, false);
        check("+orders", "orders", true, false);
        check("orders+", "orders", false, true);
        check("+orders+", "orders", true, true);
        check(" +orders ", "orders", true, false);
        for bad in ["", "+", "++", "+a+b", "a++"] {
            assert_eq!(bad.parse::<Selector>(), Err(SchedulerError::InvalidSelector(bad.to_owned())), "{bad:?}");
        }
    }

    #[test]
    fn selection_takes_ancestors_and_descendants_as_asked() {
        // a -> b -> c -> d, x -> c, b -> y; z alone.
        let g = graph(&["a", "b", "c", "d", "x", "y", "z"], &[(0, 1), (1, 2), (2, 3), (4, 2), (1, 5)]);
        let select = |terms: &[&str]| -> Result<Vec<&str>, SchedulerError> {
            let selectors: Vec<Selector> = terms.iter().map(|t| t.parse().unwrap()).collect();
            Ok(g.select(&selectors)?.into_iter().map(|id| g.name(id)).collect())
        };
        assert_eq!(select(&["c"]).unwrap(), ["c"]);
        assert_eq!(select(&["+c"]).unwrap(), ["a", "b", "c", "x"]);
        assert_eq!(select(&["c+"]).unwrap(), ["c", "d"]);
        assert_eq!(select(&["+c+"]).unwrap(), ["a", "b", "c", "d", "x"]);
        assert_eq!(select(&["b+", "z"]).unwrap(), ["b", "c", "d", "y", "z"]);
        assert_eq!(select(&[]).unwrap(), Vec::<&str>::new());
        assert_eq!(select(&["c", "nope"]), Err(SchedulerError::UnknownName("nope".to_owned())));
    }

    proptest::proptest! {
        #[test]
        fn flat_adjacency_matches_the_graph(
            n in 1usize..30,
            edges in proptest::collection::vec((0usize..30, 0usize..30), 0..80),
        ) {
            let mut g = TaskGraph::new();
            for i in 0..n {
                g.add_task(format!("t{i}"), ());
            }
            for (a, b) in edges {
                if a < n && b < n {
                    g.add_dependency(a, b).unwrap();
                }
            }
            let adjacency = Adjacency::of(&g.graph);
            for id in 0..n {
                proptest::prop_assert_eq!(adjacency.dependents(id).to_vec(), g.dependents(id));
                proptest::prop_assert_eq!(adjacency.dependencies(id).to_vec(), g.dependencies(id));
                let mut reached = adjacency.descendants(id);
                reached.sort_unstable();
                reached.retain(|&d| d != id);
                proptest::prop_assert_eq!(reached, g.descendants(id).into_iter().collect::<Vec<_>>());
            }
            // A topological order exactly when there is no cycle.
            let has_cycle = petgraph::algo::is_cyclic_directed(&g.graph);
            match g.topological_order() {
                Ok(order) => {
                    proptest::prop_assert!(!has_cycle);
                    let mut position = vec![0; n];
                    for (i, &id) in order.iter().enumerate() {
                        position[id] = i;
                    }
                    for id in 0..n {
                        for d in g.dependents(id) {
                            proptest::prop_assert!(position[id] < position[d]);
                        }
                    }
                }
                Err(SchedulerError::Cycle(names)) => {
                    proptest::prop_assert!(has_cycle);
                    // The names form a closed path along the edges.
                    proptest::prop_assert!(names.len() >= 2 && names.first() == names.last());
                    for pair in names.windows(2) {
                        let (a, b) = (g.find(&pair[0]).unwrap(), g.find(&pair[1]).unwrap());
                        proptest::prop_assert!(g.dependents(a).contains(&b), "{} -> {} is not an edge", pair[0], pair[1]);
                    }
                }
                Err(other) => proptest::prop_assert!(false, "unexpected {other}"),
            }
        }
    }
}
