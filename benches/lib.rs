//! Shared inputs for the criterion benches: deterministic random DAGs.

use dfpipe_scheduler::TaskGraph;

/// A layered random DAG of `tasks` tasks in layers of `width`, each task depending on up to
/// three tasks of the layer before, with costs from 1 to 1000. Deterministic for a seed.
pub fn layered_dag(tasks: usize, width: usize, seed: u64) -> (TaskGraph<()>, Vec<u64>) {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut graph = TaskGraph::new();
    let mut costs = Vec::with_capacity(tasks);
    for i in 0..tasks {
        graph.add_task(format!("t{i}"), ());
        costs.push(1 + next() % 1000);
    }
    for i in width..tasks {
        let layer_start = (i / width - 1) * width;
        for _ in 0..=(next() % 3) {
            let dep = layer_start + (next() as usize % width);
            graph.add_dependency(dep, i).expect("ids are in range");
        }
    }
    (graph, costs)
}
