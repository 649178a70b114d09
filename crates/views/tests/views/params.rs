//! Parameters through the public API: scalars of each type, lists of 0, 1 and 10,000
//! elements under the three list strategies, and missing, unused and mistyped values.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use dfpipe_views::{ListParam, ListStrategy, ParamValue, SqlView, ViewError, register_param_table};

const STRATEGIES: [ListStrategy; 3] = [ListStrategy::Values, ListStrategy::Unnest, ListStrategy::ParamTable];

/// `typed`: one row of every supported type; `keys`: k = 0..20,000.
fn context() -> SessionContext {
    let ctx = SessionContext::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, false),
        Field::new("small", DataType::Int32, false),
        Field::new("f", DataType::Float64, false),
        Field::new("b", DataType::Boolean, false),
        Field::new("s", DataType::Utf8, false),
        Field::new("d", DataType::Date32, false),
        Field::new("m", DataType::Decimal128(15, 2), false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from(vec![7])),
            Arc::new(Int32Array::from(vec![3])),
            Arc::new(Float64Array::from(vec![2.5])),
            Arc::new(BooleanArray::from(vec![true])),
            Arc::new(StringArray::from(vec!["x' or '1'='1"])),
            Arc::new(Date32Array::from(vec![9131])), // 1995-01-01
            Arc::new(Decimal128Array::from(vec![12_345]).with_precision_and_scale(15, 2).unwrap()),
        ],
    )
    .unwrap();
    ctx.register_table("typed", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from_iter_values(0..20_000))]).unwrap();
    ctx.register_table("keys", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
    register_param_table(&ctx);
    ctx
}

fn view(ctx: &SessionContext, sql: &str) -> SqlView {
    SqlView::parse("v", Path::new("views/v.sql"), sql, &ctx.state()).unwrap()
}

fn params(values: Vec<(&str, ParamValue)>) -> Vec<(String, ParamValue)> {
    values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn int(i: i64) -> ParamValue {
    ScalarValue::Int64(Some(i)).into()
}

fn text(s: &str) -> ParamValue {
    ScalarValue::Utf8(Some(s.to_owned())).into()
}

async fn count(ctx: &SessionContext, view: &SqlView) -> usize {
    let batches = view.plan(ctx).await.unwrap().collect().await.unwrap();
    batches.iter().map(RecordBatch::num_rows).sum()
}

async fn parameter_error(ctx: &SessionContext, view: SqlView) -> String {
    match view.plan(ctx).await {
        Err(e @ ViewError::Parameter { .. }) => e.to_string(),
        other => panic!("expected a parameter error, got {other:?}"),
    }
}

#[tokio::test]
async fn scalars_of_each_type_bind_as_values() {
    let ctx = context();
    let sql = "select * from typed where i = $i and small = $small and f > $f and b = $b and s = $s \
               and d >= $d and m > $m";
    let bound = view(&ctx, sql).with_params(params(vec![
        ("i", int(7)),
        ("small", int(3)), // an Int64 from dfpipe.toml fits the Int32 column
        ("f", ScalarValue::Float64(Some(2.0)).into()),
        ("b", ScalarValue::Boolean(Some(true)).into()),
        ("s", text("x' or '1'='1")), // a value, never SQL text
        ("d", text("1994-12-31")),   // a date written as a string, as in dfpipe.toml
        ("m", int(100)),             // an integer against a decimal
    ]));
    let plan = bound.plan(&ctx).await.unwrap().into_unoptimized_plan().display_indent().to_string();
    for literal in
        ["Int64(7)", "Int32(3)", "Float64(2)", "Boolean(true)", "Utf8(\"x' or '1'='1\")", "Date32(\"1994-12-31\")"]
    {
        assert!(plan.contains(literal), "{literal}: {plan}");
    }
    assert_eq!(count(&ctx, &bound).await, 1);
    // A parameter the plan cannot type keeps the value's own type.
    let untyped = view(&ctx, "select $x as x").with_params(params(vec![("x", text("a"))]));
    assert_eq!(untyped.plan(&ctx).await.unwrap().schema().field(0).data_type(), &DataType::Utf8);
}

#[tokio::test]
async fn missing_unused_and_mistyped_scalars_are_errors() {
    let ctx = context();
    let sql = "select i from typed where i > $min and s = $name";
    let missing = view(&ctx, sql).with_params(params(vec![("min", int(3))]));
    let message = parameter_error(&ctx, missing).await;
    assert!(message.contains("$name") && message.contains("no value"), "{message}");

    let unused = view(&ctx, "select i from typed").with_params(params(vec![("min", int(3))]));
    let message = parameter_error(&ctx, unused).await;
    assert!(message.contains("`min`") && message.contains("not used"), "{message}");

    for (sql, value, expected) in [
        ("select i from typed where i > $p", text("3"), "is a Utf8, but the query uses it as a Int64"),
        ("select i from typed where i > $p", ScalarValue::Float64(Some(1.5)).into(), "is a Float64"),
        ("select i from typed where b = $p", int(1), "is a Int64, but the query uses it as a Boolean"),
        ("select i from typed where s = $p", int(1), "is a Int64, but the query uses it as a Utf8"),
        ("select i from typed where small = $p", int(1 << 40), "does not fit a Int32"),
        ("select i from typed where d > $p", text("not a date"), "does not fit a Date32"),
        ("select i from typed where i > $p", ParamValue::List(ListParam::infer(vec![]).unwrap()), "is a list"),
    ] {
        let message = parameter_error(&ctx, view(&ctx, sql).with_params(params(vec![("p", value)]))).await;
        assert!(message.starts_with("view `v`: parameter `$p`") && message.contains(expected), "{sql}: {message}");
    }
}

fn list(n: i64) -> ListParam {
    // Every third key from 5, some beyond the table's keys.
    ListParam::new(DataType::Int64, (0..n).map(|i| ScalarValue::Int64(Some(5 + 3 * i))).collect()).unwrap()
}

async fn sorted_keys(df: datafusion::prelude::DataFrame) -> Vec<i64> {
    let mut keys: Vec<i64> = df
        .collect()
        .await
        .unwrap()
        .iter()
        .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn the_three_list_strategies_return_the_same_rows() {
    let ctx = context();
    for n in [0, 1, 10_000] {
        let expected: Vec<i64> = (0..n).map(|i| 5 + 3 * i).filter(|k| *k < 20_000).collect();
        let relations: Vec<Vec<i64>> = {
            let mut out = Vec::new();
            for strategy in STRATEGIES {
                out.push(sorted_keys(list(n).to_dataframe(&ctx, strategy).unwrap()).await);
            }
            out
        };
        let all: Vec<i64> = (0..n).map(|i| 5 + 3 * i).collect();
        assert!(relations.iter().all(|r| r == &all), "{n}: the relations differ");
        for sql in [
            "select k from keys where k in (select value from param_table($ids))",
            "select keys.k from keys join param_table($ids) p on keys.k = p.value",
        ] {
            for strategy in STRATEGIES {
                let bound =
                    view(&ctx, sql).with_params(params(vec![("ids", list(n).into())])).with_list_strategy(strategy);
                let df = bound.plan(&ctx).await.unwrap();
                assert_eq!(sorted_keys(df).await, expected, "{n} elements, {strategy}: {sql}");
            }
        }
    }
}

#[tokio::test]
async fn list_strategies_shape_the_plan() {
    let ctx = context();
    let sql = "select value from param_table($ids)";
    for (strategy, node) in [
        (ListStrategy::Values, "Values: "),
        (ListStrategy::Unnest, "Unnest: "),
        (ListStrategy::ParamTable, "TableScan: "),
    ] {
        let bound = view(&ctx, sql).with_params(params(vec![("ids", list(2).into())])).with_list_strategy(strategy);
        let plan = bound.plan(&ctx).await.unwrap().logical_plan().display_indent().to_string();
        assert!(plan.contains(node), "{strategy}: {plan}");
    }
}

#[tokio::test]
async fn missing_unused_and_mistyped_lists_are_errors() {
    let ctx = context();
    let sql = "select k from keys where k in (select value from param_table($ids))";
    let message = parameter_error(&ctx, view(&ctx, sql)).await;
    assert!(message.contains("`$ids` has no value"), "{message}");

    let scalar = view(&ctx, sql).with_params(params(vec![("ids", int(1))]));
    let message = parameter_error(&ctx, scalar).await;
    assert!(message.contains("`$ids` is a Int64") && message.contains("reads a list"), "{message}");

    let unused = view(&ctx, "select k from keys").with_params(params(vec![("ids", list(3).into())]));
    let message = parameter_error(&ctx, unused).await;
    assert!(message.contains("`ids` is not used"), "{message}");

    let mixed = ListParam::infer(vec![ScalarValue::Int64(Some(1)), ScalarValue::Utf8(Some("a".to_owned()))]);
    assert_eq!(mixed.unwrap_err(), "element 1 is a Utf8, but the list holds Int64");

    // Outside a view, the registered function binds nothing.
    let message = ctx.sql("select * from param_table('ids')").await.unwrap_err().strip_backtrace();
    assert!(message.contains("only available in a view"), "{message}");
}
