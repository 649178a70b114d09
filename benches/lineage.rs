//! Criterion bench: lineage of the 22 TPC-H query plans, beside the logical planning of the
//! same queries. The ratio lineage ÷ planning goes in `BENCHMARKS.md` (goal: at most 0.1).

use criterion::{Criterion, criterion_group, criterion_main};
use dfpipe_benches::TpchDemo;
use dfpipe_engine::Lineage;

fn lineage(c: &mut Criterion) {
    let demo = TpchDemo::new();
    let queries = demo.queries();
    assert_eq!(queries.len(), 22);
    let state = demo.planned.context().state();
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let plan_all = || {
        runtime.block_on(async {
            let mut plans = Vec::with_capacity(queries.len());
            for sql in &queries {
                plans.push(state.create_logical_plan(sql).await.expect("a TPC-H plan"));
            }
            plans
        })
    };
    let plans = plan_all();

    let mut group = c.benchmark_group("tpch_22");
    group.bench_function("logical_planning", |b| b.iter(plan_all));
    group.bench_function("lineage", |b| {
        b.iter(|| plans.iter().map(|p| Lineage::of(p).expect("lineage")).collect::<Vec<_>>());
    });
    group.finish();
}

criterion_group!(benches, lineage);
criterion_main!(benches);
