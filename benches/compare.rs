//! The end-to-end comparison: the TPC-H demo through dfpipe, beside the same 22 queries run
//! and written by plain DataFusion (one `SessionContext`, one query after another), in one
//! process. Also the no-op second run, and dfpipe's source contract checks timed apart.
//!
//! Run with `cargo xtask compare [SCALE_FACTOR]` (default 1). Data is generated once into
//! `target/dfpipe-compare/sf-<F>/` and reused. Each side runs twice, alternating; the second
//! (warm) round is the one compared.

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::config::TableParquetOptions;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use dfpipe_engine::{Pipeline, RunOptions};

fn main() {
    let scale_factor: f64 = std::env::var("DFPIPE_COMPARE_SF").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../target/dfpipe-compare/sf-{scale_factor}"));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let started = Instant::now();
    dfpipe_demo::prepare_demo(&dir, scale_factor).expect("the demo pipeline");
    println!("data at {} (scale factor {scale_factor}) ready in {:.1?}", dir.display(), started.elapsed());

    let mut plain = Vec::new();
    let mut full = Vec::new();
    let mut noop = Duration::ZERO;
    for round in 1..=2 {
        plain.push(runtime.block_on(plain_datafusion(&dir)));
        full.push(runtime.block_on(dfpipe(&dir, true)));
        noop = runtime.block_on(dfpipe(&dir, false));
        println!(
            "round {round}: plain DataFusion {:.2?}, dfpipe full run {:.2?}, dfpipe no-op run {:.2?}",
            plain[round - 1],
            full[round - 1],
            noop
        );
    }
    let checks = runtime.block_on(async {
        let started = Instant::now();
        let report = Pipeline::load(&dir).expect("the pipeline").check(5).await.expect("checks");
        assert!(report.passed, "generated data passes its contracts");
        started.elapsed()
    });
    let (plain, full) = (plain[1].as_secs_f64(), full[1].as_secs_f64());
    println!("\n| measure | seconds | ratio |");
    println!("|---|---:|---:|");
    println!("| plain DataFusion, 22 queries written sequentially | {plain:.2} | 1.00 |");
    println!("| dfpipe full run (plan, run, write, record) | {full:.2} | {:.3} |", full / plain);
    println!(
        "| dfpipe no-op second run | {:.2} | {:.3} of the full run |",
        noop.as_secs_f64(),
        noop.as_secs_f64() / full
    );
    println!("| dfpipe contract checks on the sources (apart) | {:.2} | |", checks.as_secs_f64());
}

/// The 22 queries over the staging views, as plain DataFusion views, each written to
/// zstd(3) parquet like the demo's profile, one after another.
async fn plain_datafusion(dir: &Path) -> Duration {
    let out = dir.join("plain-out");
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let config = SessionConfig::new().with_target_partitions(2).with_batch_size(8192);
    let ctx = SessionContext::new_with_config(config);
    for table in dfpipe_demo::TABLES {
        let path = dir.join("data").join(table);
        ctx.register_parquet(table, path.to_string_lossy().as_ref(), ParquetReadOptions::default())
            .await
            .expect("a source");
    }
    for (name, sql) in dfpipe_demo::DEMO_VIEWS.iter().filter(|(name, _)| name.starts_with("stg_")) {
        let view = ctx.sql(sql).await.expect("a staging view").into_view();
        ctx.register_table(*name, view).expect("registered");
    }
    let mut parquet = TableParquetOptions::default();
    parquet.global.compression = Some("zstd(3)".to_owned());
    parquet.global.max_row_group_size = 1_048_576;
    for (name, sql) in dfpipe_demo::DEMO_VIEWS.iter().filter(|(name, _)| name.starts_with('q')) {
        let df = ctx.sql(sql).await.expect("a query");
        let target = out.join(name);
        df.write_parquet(target.to_string_lossy().as_ref(), DataFrameWriteOptions::new(), Some(parquet.clone()))
            .await
            .expect("a write");
    }
    started.elapsed()
}

/// One dfpipe run of the demo pipeline: plan, execute, check, commit, record.
async fn dfpipe(dir: &Path, full: bool) -> Duration {
    let started = Instant::now();
    let pipeline = Pipeline::load(dir).expect("the pipeline");
    let planned = pipeline.plan(&RunOptions { full, workers: 2, ..RunOptions::default() }).await.expect("a plan");
    let report = planned.run(Arc::new(|_| {})).await.expect("a run");
    assert_eq!(report.status, "succeeded");
    started.elapsed()
}
