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

/// The shape of a generated pipeline for the planning-scale bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Each view joins 0 to 3 of the 50 views before it (none: it reads the source); every
    /// `n`th view is materialized, none when `n` is 0.
    Random {
        /// Materialize every `n`th view (0: all lazy).
        materialize_every: usize,
    },
    /// dbt's layers: lazy staging views over the source, lazy intermediate views joining 1 to
    /// 3 staging views, materialized marts joining 1 to 3 intermediate views, and materialized
    /// reports over 1 to 3 marts (depth 4), in proportions 4:3:2:1.
    Layered,
}

/// Writes a pipeline of `views` SQL views of `shape` into `dir`, over one CSV source `t(k,
/// x)`. Deterministic for a seed.
pub fn planning_pipeline(dir: &std::path::Path, views: usize, shape: Shape, seed: u64) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move |below: usize| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % below.max(1)
    };
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("views"))?;
    std::fs::create_dir_all(dir.join("data"))?;
    let mut csv = String::from("k,x\n");
    for i in 0..100 {
        let _ = writeln!(csv, "{i},{}", i * 7 % 13);
    }
    std::fs::write(dir.join("data/t.csv"), csv)?;
    let mut toml = String::from(
        "[pipeline]\nname = \"planning\"\noutput_dir = \"out\"\n\n[sources.t]\npath = \"data/t.csv\"\nformat = \"csv\"\n",
    );
    // Which earlier views each view may read, and whether it is materialized.
    let layer_of = |i: usize| match i * 10 / views.max(1) {
        0..=3 => 0,
        4..=6 => 1,
        7..=8 => 2,
        _ => 3,
    };
    let first_of = |layer: usize| (0..views).find(|&i| layer_of(i) == layer).unwrap_or(0);
    for i in 0..views {
        let (reads, materialized): (Vec<usize>, bool) = match shape {
            Shape::Random { materialize_every } => {
                let start = i.saturating_sub(50);
                let reads = if i == 0 { Vec::new() } else { (0..next(4)).map(|_| start + next(i - start)).collect() };
                (reads, materialize_every > 0 && i % materialize_every == materialize_every - 1)
            }
            Shape::Layered => {
                let layer = layer_of(i);
                if layer == 0 {
                    (Vec::new(), false)
                } else {
                    let (from, to) = (first_of(layer - 1), first_of(layer));
                    ((0..=next(3)).map(|_| from + next(to - from)).collect(), layer >= 2)
                }
            }
        };
        let mut reads = reads;
        reads.sort_unstable();
        reads.dedup();
        let sql = match reads.as_slice() {
            [] => format!("select k, x + {i} as x from t where k % 10 <> {}\n", i % 10),
            [only] => format!("select k, x + 1 as x from v{only:05} where x > {}\n", i % 5),
            [first, rest @ ..] => {
                let mut sql = String::from("select a0.k, a0.x");
                for (j, _) in rest.iter().enumerate() {
                    let _ = write!(sql, " + a{}.x", j + 1);
                }
                let _ = write!(sql, " as x from v{first:05} a0");
                for (j, r) in rest.iter().enumerate() {
                    let _ = write!(sql, " join v{r:05} a{} on a0.k = a{}.k", j + 1, j + 1);
                }
                sql.push('\n');
                sql
            }
        };
        std::fs::write(dir.join("views").join(format!("v{i:05}.sql")), sql)?;
        if materialized {
            let _ = write!(toml, "\n[views.v{i:05}]\nmaterialize = \"parquet\"\n");
        }
    }
    std::fs::write(dir.join("dfpipe.toml"), toml)
}
