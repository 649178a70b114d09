//! Criterion bench: ranking and list-scheduling random layered DAGs of 1k to 100k tasks.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use dfpipe_benches::layered_dag;

fn schedule(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule_layered_dag");
    group.sample_size(10);
    for tasks in [1_000, 10_000, 100_000] {
        let (graph, costs) = layered_dag(tasks, 100, 42);
        group.bench_with_input(BenchmarkId::from_parameter(tasks), &tasks, |b, _| {
            b.iter(|| graph.schedule(&costs, 8).expect("a DAG"));
        });
    }
    group.finish();
}

criterion_group!(benches, schedule);
criterion_main!(benches);
