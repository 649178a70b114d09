//! Shared inputs for the criterion benches: deterministic random DAGs, and the planned TPC-H
//! demo.

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

/// The TPC-H demo pipeline, planned over a tiny generated data set in a temporary directory.
pub struct TpchDemo {
    /// Removed on drop.
    pub dir: tempfile::TempDir,
    /// The planned pipeline: its context has the sources and views registered.
    pub planned: dfpipe_engine::Planned,
}

impl TpchDemo {
    /// Generates the demo at scale factor 0.001 and plans it.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        dfpipe_demo::prepare_demo(dir.path(), 0.001).expect("the demo pipeline");
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
        let planned = runtime
            .block_on(async {
                dfpipe_engine::Pipeline::load(dir.path())?.plan(&dfpipe_engine::RunOptions::default()).await
            })
            .expect("the demo plans");
        Self { dir, planned }
    }

    /// The SQL of the 22 TPC-H query views, `q01` to `q22`.
    pub fn queries(&self) -> Vec<String> {
        (1..=22)
            .map(|q| {
                let file = self.dir.path().join("views").join(format!("q{q:02}.sql"));
                std::fs::read_to_string(file).expect("a query view")
            })
            .collect()
    }
}

impl Default for TpchDemo {
    fn default() -> Self {
        Self::new()
    }
}
