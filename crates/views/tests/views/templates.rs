//! Templates through the public API: TPC-H-style views built with the DataFrame API, which
//! compose and stay lazy, typed template parameters, and declared against inferred
//! dependencies.

use std::collections::BTreeMap;

use crate::common::{failing_context, scans};
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{JoinType, ScalarValue};
use datafusion::error::Result;
use datafusion::functions_aggregate::expr_fn::{count, sum};
use datafusion::logical_expr::{col, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use dfpipe_views::{
    BoundParams, DependencyMismatch, ListParam, ParamSpec, ParamValue, SqlView, ViewError, ViewRegistry, ViewTemplate,
};

/// Staging: orders from a date on, with a net price.
#[derive(Debug)]
struct StgOrders;

#[async_trait]
impl ViewTemplate for StgOrders {
    fn name(&self) -> &'static str {
        "stg_orders"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec::scalar("min_date", DataType::Date32)]
    }
    fn depends_on(&self) -> Option<Vec<String>> {
        Some(vec!["orders".to_owned()])
    }
    async fn build(&self, ctx: &SessionContext, params: &BoundParams) -> Result<DataFrame> {
        ctx.table("orders").await?.filter(col("o_orderdate").gt_eq(params.lit("min_date")?))?.select(vec![
            col("o_orderkey"),
            col("o_custkey"),
            col("o_totalprice"),
            col("o_orderdate"),
        ])
    }
}

/// A join view: orders with their customer, optionally for some segments only.
#[derive(Debug)]
struct CustomerOrders;

#[async_trait]
impl ViewTemplate for CustomerOrders {
    fn name(&self) -> &'static str {
        "customer_orders"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec::list("segments", DataType::Utf8)]
    }
    fn depends_on(&self) -> Option<Vec<String>> {
        Some(vec!["customer".to_owned(), "stg_orders".to_owned()])
    }
    async fn build(&self, ctx: &SessionContext, params: &BoundParams) -> Result<DataFrame> {
        let customers = ctx.table("customer").await?.join(
            params.relation(ctx, "segments")?,
            JoinType::LeftSemi,
            &["c_mktsegment"],
            &["value"],
            None,
        )?;
        ctx.table("stg_orders").await?.join(customers, JoinType::Inner, &["o_custkey"], &["c_custkey"], None)?.select(
            vec![col("o_orderkey"), col("o_totalprice"), col("o_orderdate"), col("c_name"), col("c_mktsegment")],
        )
    }
}

/// An aggregate over a view: revenue per segment.
#[derive(Debug)]
struct RevenueBySegment {
    declares: Option<Vec<&'static str>>,
}

#[async_trait]
impl ViewTemplate for RevenueBySegment {
    fn name(&self) -> &'static str {
        "revenue_by_segment"
    }
    fn depends_on(&self) -> Option<Vec<String>> {
        self.declares.as_ref().map(|d| d.iter().map(|s| (*s).to_owned()).collect())
    }
    async fn build(&self, ctx: &SessionContext, _: &BoundParams) -> Result<DataFrame> {
        ctx.table("customer_orders").await?.aggregate(
            vec![col("c_mktsegment")],
            vec![sum(col("o_totalprice")).alias("revenue"), count(lit(1)).alias("orders")],
        )
    }
}

/// A template that declares a parameter and never reads it.
#[derive(Debug)]
struct Forgetful;
#[async_trait]
impl ViewTemplate for Forgetful {
    fn name(&self) -> &'static str {
        "forgetful"
    }
    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec::scalar("limit", DataType::Int64).with_default(ScalarValue::Int64(Some(10)))]
    }
    async fn build(&self, ctx: &SessionContext, _: &BoundParams) -> Result<DataFrame> {
        ctx.table("t").await
    }
}

fn date(text: &str) -> ParamValue {
    ScalarValue::Utf8(Some(text.to_owned())).into()
}

fn segments() -> ParamValue {
    ListParam::new(DataType::Utf8, vec![ScalarValue::Utf8(Some("BUILDING".to_owned()))]).unwrap().into()
}

fn tpch_registry(declares: Option<Vec<&'static str>>) -> ViewRegistry {
    let mut registry = ViewRegistry::new();
    // Added in reverse: declared dependencies order the planning.
    registry.add_template(RevenueBySegment { declares }, BTreeMap::<String, ParamValue>::new()).unwrap();
    registry.add_template(CustomerOrders, [("segments".to_owned(), segments())]).unwrap();
    registry.add_template(StgOrders, [("min_date".to_owned(), date("1994-01-01"))]).unwrap();
    registry
}

#[tokio::test]
async fn tpch_templates_compose_and_stay_lazy() {
    let (ctx, scanned) = failing_context();
    let registered = tpch_registry(Some(vec!["customer_orders"])).register(&ctx).await.unwrap();
    let order: Vec<&str> = registered.views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(order, ["stg_orders", "customer_orders", "revenue_by_segment"]);
    assert_eq!(registered.get("stg_orders").unwrap().depends_on, ["orders"]);
    assert_eq!(registered.get("customer_orders").unwrap().depends_on, ["customer", "stg_orders"]);
    assert_eq!(registered.get("revenue_by_segment").unwrap().depends_on, ["customer_orders"]);
    assert!(registered.mismatches().is_empty(), "{:?}", registered.mismatches());
    registered.check_dependencies().unwrap();

    // The parameters are literals in the plans; each reader scans the view below by name.
    let plan = |name: &str| registered.get(name).unwrap().dataframe.logical_plan().display_indent().to_string();
    assert!(plan("stg_orders").contains("orders.o_orderdate >= Date32(\"1994-01-01\")"), "{}", plan("stg_orders"));
    assert!(plan("customer_orders").contains("TableScan: stg_orders"), "{}", plan("customer_orders"));
    assert!(plan("customer_orders").contains("Utf8(\"BUILDING\")"), "{}", plan("customer_orders"));
    assert!(plan("revenue_by_segment").contains("TableScan: customer_orders"), "{}", plan("revenue_by_segment"));

    // Registered, planned, read back by a SQL view, optimized: nothing was scanned.
    let reader = SqlView::parse(
        "report",
        std::path::Path::new("views/report.sql"),
        "select c_mktsegment, revenue from revenue_by_segment order by revenue desc",
        &ctx.state(),
    )
    .unwrap();
    let df = reader.plan(&ctx).await.unwrap();
    ctx.state().optimize(df.logical_plan()).unwrap();
    assert_eq!(scans(&scanned), 0);
    // Executing is what scans: the counter sees it.
    assert!(df.collect().await.is_err());
    assert!(scans(&scanned) > 0);
}

#[tokio::test]
async fn declared_and_inferred_dependencies_are_compared() {
    let (ctx, _) = failing_context();
    // Declares the source below the view it actually reads (added last, so it plans last).
    let mut registry = ViewRegistry::new();
    registry.add_template(StgOrders, [("min_date".to_owned(), date("1994-01-01"))]).unwrap();
    registry.add_template(CustomerOrders, [("segments".to_owned(), segments())]).unwrap();
    registry
        .add_template(RevenueBySegment { declares: Some(vec!["orders"]) }, BTreeMap::<String, ParamValue>::new())
        .unwrap();
    let registered = registry.register(&ctx).await.unwrap();
    let expected = DependencyMismatch {
        view: "revenue_by_segment".to_owned(),
        undeclared: vec!["customer_orders".to_owned()],
        unread: vec!["orders".to_owned()],
    };
    assert_eq!(registered.mismatches(), std::slice::from_ref(&expected));
    match registered.check_dependencies() {
        Err(ViewError::Dependencies(m)) => assert_eq!(m, expected),
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert_eq!(
        expected.to_string(),
        "view `revenue_by_segment`: declared dependencies differ from the plan's; reads but does not declare: \
         customer_orders; declares but does not read: orders"
    );
}

#[tokio::test]
async fn an_undeclared_template_is_planned_in_the_order_it_was_added() {
    let (ctx, _) = failing_context();
    let mut registry = ViewRegistry::new();
    registry.add_template(StgOrders, [("min_date".to_owned(), date("1994-01-01"))]).unwrap();
    registry.add_template(CustomerOrders, [("segments".to_owned(), segments())]).unwrap();
    registry.add_template(RevenueBySegment { declares: None }, BTreeMap::<String, ParamValue>::new()).unwrap();
    let registered = registry.register(&ctx).await.unwrap();
    assert!(registered.mismatches().is_empty(), "nothing declared, nothing to compare");

    // Added before the view it reads, with nothing declared: the error says what is missing.
    let (ctx, _) = failing_context();
    let mut registry = ViewRegistry::new();
    registry.add_template(RevenueBySegment { declares: None }, BTreeMap::<String, ParamValue>::new()).unwrap();
    let message = registry.register(&ctx).await.unwrap_err().to_string();
    assert!(
        message.starts_with("view `revenue_by_segment` (template)") && message.contains("customer_orders"),
        "{message}"
    );
}

#[tokio::test]
async fn template_parameters_are_checked_against_their_declarations() {
    let cases: [(Vec<(String, ParamValue)>, &str); 5] = [
        (vec![], "parameter `$min_date` (Date32) has no value"),
        (
            vec![("min_date".to_owned(), date("1994-01-01")), ("max_date".to_owned(), date("1995-01-01"))],
            "parameter `max_date` is not declared by the template",
        ),
        (
            vec![("min_date".to_owned(), ScalarValue::Boolean(Some(true)).into())],
            "is a Boolean, but the query uses it as a Date32",
        ),
        (vec![("min_date".to_owned(), date("someday"))], "does not fit a Date32"),
        (vec![("min_date".to_owned(), segments())], "is a List(Utf8), but the template declares it as a Date32"),
    ];
    for (params, expected) in cases {
        let (ctx, _) = failing_context();
        let mut registry = ViewRegistry::new();
        registry.add_template(StgOrders, params).unwrap();
        match registry.register(&ctx).await {
            Err(e @ ViewError::Parameter { .. }) => {
                let message = e.to_string();
                assert!(message.starts_with("view `stg_orders`: ") && message.contains(expected), "{message}");
            }
            other => panic!("{expected}: expected a parameter error, got {other:?}"),
        }
    }

    // A list of the wrong element type, and a declared parameter the template never reads.
    let (ctx, _) = failing_context();
    let mut registry = ViewRegistry::new();
    registry.add_template(StgOrders, [("min_date".to_owned(), date("1994-01-01"))]).unwrap();
    let numbers = ListParam::infer(vec![ScalarValue::Int64(Some(1))]).unwrap();
    registry.add_template(CustomerOrders, [("segments".to_owned(), ParamValue::List(numbers))]).unwrap();
    let message = registry.register(&ctx).await.unwrap_err().to_string();
    assert!(message.contains("`$segments` is a Int64, but the query uses it as a Utf8"), "{message}");

    let (ctx, _) = failing_context();
    let mut registry = ViewRegistry::new();
    registry.add_template(Forgetful, BTreeMap::<String, ParamValue>::new()).unwrap();
    let message = registry.register(&ctx).await.unwrap_err().to_string();
    assert!(message.contains("`limit` is declared but the template never reads it"), "{message}");
}
