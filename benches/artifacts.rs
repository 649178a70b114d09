//! Criterion bench: capturing the bundles of the 22 TPC-H views (without ANALYZE and without
//! VERBOSE) beside `create_physical_plan` alone on the same plans; the fingerprint alone; and
//! store writes and reads of 1,000 bundles. Ratios go in `BENCHMARKS.md` (goal: capture at
//! most 2.0 × `create_physical_plan`).

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
use dfpipe_artifacts::{CaptureOptions, Environment, Fingerprint, Store, capture};
use dfpipe_benches::TpchDemo;

fn artifacts(c: &mut Criterion) {
    let demo = TpchDemo::new();
    let state = demo.planned.context().state();
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let plans: Vec<_> = runtime.block_on(async {
        let mut plans = Vec::new();
        for sql in demo.queries() {
            plans.push(state.create_logical_plan(&sql).await.expect("a TPC-H plan"));
        }
        plans
    });

    let mut group = c.benchmark_group("tpch_22");
    group.bench_function("create_physical_plan", |b| {
        b.iter(|| {
            runtime.block_on(async {
                for plan in &plans {
                    state.create_physical_plan(plan).await.expect("a physical plan");
                }
            });
        });
    });
    group.bench_function("capture", |b| {
        b.iter(|| {
            runtime.block_on(async {
                for plan in &plans {
                    capture("q", plan, &state, CaptureOptions::default()).await.expect("a bundle");
                }
            });
        });
    });
    group.finish();

    let environment = runtime.block_on(Environment::snapshot(demo.planned.context())).expect("a snapshot");
    let bundles: Vec<_> = runtime.block_on(async {
        let mut bundles = Vec::new();
        for plan in &plans {
            bundles.push(capture("q", plan, &state, CaptureOptions::default()).await.expect("a bundle").bundle);
        }
        bundles
    });
    let settings = BTreeMap::from([("datafusion.execution.target_partitions".to_owned(), "2".to_owned())]);
    let upstream = BTreeMap::from([("stg_lineitem".to_owned(), Fingerprint("0".repeat(32)))]);
    c.bench_function("fingerprint_22_bundles", |b| {
        b.iter(|| {
            bundles
                .iter()
                .map(|bundle| bundle.clone().seal(settings.clone(), &environment, upstream.clone()))
                .collect::<Vec<_>>()
        });
    });

    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path()).expect("a store");
    let keys: Vec<Fingerprint> = (0..1000).map(|i| Fingerprint(format!("{i:032x}"))).collect();
    let mut group = c.benchmark_group("store_1000_bundles");
    group.sample_size(10);
    group.bench_function("write", |b| {
        b.iter(|| {
            for (i, key) in keys.iter().enumerate() {
                store.put_bundle(key, &bundles[i % bundles.len()]).expect("a write");
            }
        });
    });
    group.bench_function("read", |b| {
        b.iter(|| keys.iter().map(|key| store.bundle(key).expect("a read").is_some()).filter(|found| *found).count());
    });
    group.finish();
}

criterion_group!(benches, artifacts);
criterion_main!(benches);
