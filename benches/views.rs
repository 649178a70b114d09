//! Criterion bench: registering and planning layered templated views. Each view reads one or
//! two views of the layer before (a union, a parameter-bound filter, a projection), so every
//! plan stays small: a reader scans a view by name. The time per view goes in
//! `BENCHMARKS.md` (goal: flat in the number of views, i.e. linear growth in total).

use std::sync::Arc;

use async_trait::async_trait;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::logical_expr::{col, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use dfpipe_views::{BoundParams, ParamSpec, ParamValue, ViewRegistry, ViewTemplate};

/// Views per layer.
const WIDTH: usize = 10;

#[derive(Debug)]
struct Layered {
    name: String,
    reads: Vec<String>,
}

#[async_trait]
impl ViewTemplate for Layered {
    fn name(&self) -> &str {
        &self.name
    }

    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec::scalar("min", DataType::Int64)]
    }

    fn depends_on(&self) -> Option<Vec<String>> {
        Some(self.reads.clone())
    }

    async fn build(&self, ctx: &SessionContext, params: &BoundParams) -> Result<DataFrame> {
        let mut df = ctx.table(self.reads[0].as_str()).await?;
        for other in &self.reads[1..] {
            df = df.union(ctx.table(other.as_str()).await?)?;
        }
        df.filter(col("k").gt(params.lit("min")?))?.select(vec![col("k"), (col("v") + lit(1_i64)).alias("v")])
    }
}

/// `n` views in layers of `WIDTH`: layer 0 reads `base`, view `i` of a later layer reads
/// views `i` and `i + 1` (mod `WIDTH`) of the layer before.
fn registry(n: usize) -> ViewRegistry {
    let mut registry = ViewRegistry::new();
    for i in 0..n {
        let (layer, slot) = (i / WIDTH, i % WIDTH);
        let reads = if layer == 0 {
            vec!["base".to_owned()]
        } else {
            let before = (layer - 1) * WIDTH;
            vec![format!("v{}", before + slot), format!("v{}", before + (slot + 1) % WIDTH)]
        };
        let params = [("min".to_owned(), ParamValue::Scalar(ScalarValue::Int64(Some(i as i64))))];
        registry.add_template(Layered { name: format!("v{i}"), reads }, params).expect("unique names");
    }
    registry
}

fn context() -> SessionContext {
    let ctx = SessionContext::new();
    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new("v", DataType::Int64, false)]));
    ctx.register_table("base", Arc::new(MemTable::try_new(schema, vec![vec![]]).expect("a table"))).expect("base");
    ctx
}

fn views(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let mut group = c.benchmark_group("views_register_and_plan");
    group.sample_size(10);
    for n in [100, 300, 1000] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || (context(), registry(n)),
                |(ctx, registry)| {
                    let registered = runtime.block_on(registry.register(&ctx)).expect("registered");
                    assert_eq!(registered.views.len(), n);
                    assert!(registered.mismatches().is_empty());
                    registered
                },
                criterion::BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, views);
criterion_main!(benches);
