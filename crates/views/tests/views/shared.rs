//! Shared lazy views: planned and computed once however many paths reach them, with the
//! results of inline planning; a view planned alone stops at the lazy views it reads.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::{SessionConfig, SessionContext};
use dfpipe_views::{LazyView, plan_alone, register_lazy};

/// `t(k, x)` with `rows` rows, `x = k % 7`.
fn context(rows: i64, memory_limit: Option<usize>) -> SessionContext {
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(limit) = memory_limit {
        runtime = runtime.with_memory_limit(limit, 1.0);
    }
    let config = SessionConfig::new().with_target_partitions(2);
    let ctx = SessionContext::new_with_config_rt(config, runtime.build_arc().unwrap());
    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new("x", DataType::Int64, false)]));
    let k = Int64Array::from_iter_values(0..rows);
    let x = Int64Array::from_iter_values((0..rows).map(|k| k % 7));
    ctx.register_batch("t", RecordBatch::try_new(schema, vec![Arc::new(k), Arc::new(x)]).unwrap()).unwrap();
    ctx
}

/// Lazy views `l0 = t` and `l{i} = l{i-1} joined with itself` up to `levels`: the plan of
/// `l{levels}` inline reaches `l0` by 2^levels paths.
async fn diamonds(ctx: &SessionContext, levels: usize) {
    register_lazy(ctx, "l0", ctx.sql("select k, x from t").await.unwrap()).unwrap();
    for i in 1..=levels {
        let sql = format!("select a.k, a.x + b.x as x from l{p} a join l{p} b on a.k = b.k", p = i - 1);
        register_lazy(ctx, &format!("l{i}"), ctx.sql(&sql).await.unwrap()).unwrap();
    }
}

async fn lazy_view(ctx: &SessionContext, name: &str) -> Arc<dyn datafusion::catalog::TableProvider> {
    ctx.table_provider(name).await.unwrap()
}

fn nodes(plan: &Arc<dyn ExecutionPlan>) -> usize {
    1 + plan.children().into_iter().map(nodes).sum::<usize>()
}

fn sum_of_x(batches: &[RecordBatch]) -> (usize, i64) {
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let sum = (batches.iter())
        .map(|b| {
            b.column_by_name("x").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().iter().flatten().sum::<i64>()
        })
        .sum();
    (rows, sum)
}

#[tokio::test]
async fn shared_diamonds_plan_in_linear_size_and_compute_what_inline_plans_do() {
    let ctx = context(1000, None);
    diamonds(&ctx, 30).await;
    for i in 0..30 {
        let provider = lazy_view(&ctx, &format!("l{i}")).await;
        provider.downcast_ref::<LazyView>().unwrap().share(&ctx.state(), vec![0, 1], 2, false).unwrap();
    }
    let plan = ctx.sql("select k, x from l30").await.unwrap().create_physical_plan().await.unwrap();
    // Inline, the plan would hold 2^30 scans of `t`; shared, one scan of `l29`.
    assert!(nodes(&plan) < 20, "{}", displayable(plan.as_ref()).indent(true));
    assert!(
        displayable(plan.as_ref()).indent(true).to_string().contains("LazyViewExec: view=l29, shared by 2 readers")
    );
    let batches = collect(plan, ctx.task_ctx()).await.unwrap();
    let expected: i64 = (0..1000).map(|k| (k % 7) << 30).sum();
    assert_eq!(sum_of_x(&batches), (1000, expected));

    // The same few levels inline give the same rows.
    let inline = context(1000, None);
    diamonds(&inline, 6).await;
    let shared = context(1000, None);
    diamonds(&shared, 6).await;
    for i in 0..6 {
        let provider = lazy_view(&shared, &format!("l{i}")).await;
        provider.downcast_ref::<LazyView>().unwrap().share(&shared.state(), vec![0, 1], 2, false).unwrap();
    }
    let query = "select k, x from l6 where k % 3 = 1";
    let inline_rows = inline.sql(query).await.unwrap().collect().await.unwrap();
    let shared_rows = shared.sql(query).await.unwrap().collect().await.unwrap();
    assert_eq!(sum_of_x(&inline_rows), sum_of_x(&shared_rows));
    assert_eq!(sum_of_x(&shared_rows).0, 333);
}

#[tokio::test]
async fn a_reader_of_an_unshared_column_plans_the_view_inline() {
    let ctx = context(100, None);
    diamonds(&ctx, 1).await;
    let provider = lazy_view(&ctx, "l0").await;
    // Only `k` is shared: a reader of `x` cannot read it from there.
    provider.downcast_ref::<LazyView>().unwrap().share(&ctx.state(), vec![0], 2, false).unwrap();
    let df = ctx.sql("select count(*) as n, sum(x) as x from l0").await.unwrap();
    let plan = df.clone().create_physical_plan().await.unwrap();
    assert!(!displayable(plan.as_ref()).indent(true).to_string().contains("LazyViewExec"));
    let batches = df.collect().await.unwrap();
    assert_eq!(sum_of_x(&batches), (1, (0..100).map(|k| k % 7).sum()));
    // Sharing twice is refused.
    let again = provider.downcast_ref::<LazyView>().unwrap().share(&ctx.state(), vec![0, 1], 2, false);
    assert!(again.unwrap_err().to_string().contains("view `l0` is shared already"));
}

#[tokio::test]
async fn a_shared_view_over_the_memory_limit_says_what_to_do() {
    let ctx = context(100_000, Some(64 * 1024));
    diamonds(&ctx, 1).await;
    let provider = lazy_view(&ctx, "l0").await;
    provider.downcast_ref::<LazyView>().unwrap().share(&ctx.state(), vec![0, 1], 2, false).unwrap();
    let error = ctx.sql("select * from l1").await.unwrap().collect().await.unwrap_err().to_string();
    assert!(error.contains("view `l0` is read by 2 plans of this run"), "{error}");
    assert!(error.contains("raise [profile] memory_limit, or materialize the view"), "{error}");
}

#[tokio::test]
async fn a_lazy_view_planned_alone_stops_at_the_lazy_views_it_reads() {
    let ctx = context(10, None);
    diamonds(&ctx, 3).await;
    let alone = plan_alone(&ctx.state());
    let logical = ctx.sql("select * from l3").await.unwrap().into_optimized_plan().unwrap();
    let plan = alone.create_physical_plan(&logical).await.unwrap();
    let shown = displayable(plan.as_ref()).indent(true).to_string();
    assert!(shown.contains("LazyViewExec: view=l3, planned by its readers, projection=[k, x]"), "{shown}");
    assert!(!shown.contains("l2"), "{shown}");
    let error = collect(plan, ctx.task_ctx()).await.unwrap_err().to_string();
    assert!(error.contains("the plan of lazy view `l3` by itself is for display"), "{error}");
}
