//! Planning scale: `Pipeline::load` and `plan` (everything `dfpipe plan` does but printing)
//! on generated pipelines of growing size, per shape (see [`Shape`]). Prints the median of
//! three plans per size and the growth against the size before; linear planning grows like
//! the pipeline.
//!
//! `cargo bench --workspace --bench planning` (release). `DFPIPE_PLANNING_SIZES` overrides the
//! sizes (comma separated), `DFPIPE_PLANNING_SHAPES` the shapes (`lazy`, `every4`, `layered`).
//! The pipelines stay in `target/dfpipe-planning/` so `dfpipe plan DIR` can be timed on them.

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use dfpipe_benches::{Shape, planning_pipeline};
use dfpipe_engine::{Pipeline, RunOptions};

fn main() {
    let sizes: Vec<usize> = std::env::var("DFPIPE_PLANNING_SIZES")
        .unwrap_or_else(|_| "100,200,400,1600,10000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let shapes = std::env::var("DFPIPE_PLANNING_SHAPES").unwrap_or_else(|_| "lazy,every4,layered".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/dfpipe-planning");
    println!("| shape | views | plan (median of 3) | time growth | size growth |");
    println!("|---|---:|---:|---:|---:|");
    for name in shapes.split(',') {
        let shape = match name.trim() {
            "lazy" => Shape::Random { materialize_every: 0 },
            "every4" => Shape::Random { materialize_every: 4 },
            "layered" => Shape::Layered,
            other => panic!("unknown shape `{other}`: use lazy, every4 or layered"),
        };
        let mut last: Option<(usize, Duration)> = None;
        for &views in &sizes {
            let dir = root.join(format!("{}-{views}", name.trim()));
            planning_pipeline(&dir, views, shape, 7).expect("the generated pipeline");
            let mut times: Vec<Duration> = (0..3)
                .map(|_| {
                    let started = Instant::now();
                    runtime
                        .block_on(async { Pipeline::load(&dir)?.plan(&RunOptions::default()).await })
                        .expect("the generated pipeline plans");
                    started.elapsed()
                })
                .collect();
            times.sort();
            let median = times[1];
            let growth = last.map_or(String::new(), |(v, t)| {
                format!("{:.2}× | {:.2}×", median.as_secs_f64() / t.as_secs_f64(), views as f64 / v as f64)
            });
            let growth = if growth.is_empty() { " | ".to_owned() } else { growth };
            println!("| {} | {views} | {:.3} s | {growth} |", name.trim(), median.as_secs_f64());
            last = Some((views, median));
        }
    }
}
