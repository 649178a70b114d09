//! Lineage through the public API, on plans DataFusion builds from SQL.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use dfpipe_plan_walk::Lineage;

async fn lineage(sql: &str) -> Lineage {
    let ctx = SessionContext::new();
    for (table, columns) in [("orders", ["o_orderkey", "o_custkey"]), ("customer", ["c_custkey", "c_name"])] {
        let fields: Vec<Field> = columns.iter().map(|c| Field::new(*c, DataType::Int64, true)).collect();
        let provider = MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]]).unwrap();
        ctx.register_table(table, Arc::new(provider)).unwrap();
    }
    let plan = ctx.state().create_logical_plan(sql).await.unwrap();
    let optimized = ctx.state().optimize(&plan).unwrap();
    let lineage = Lineage::of(&plan).unwrap();
    // Dependencies do not depend on optimization; scans are read from the optimized plan,
    // where projections are pushed into them.
    let optimized = Lineage::of(&optimized).unwrap();
    assert_eq!(lineage.depends_on, optimized.depends_on);
    optimized
}

#[tokio::test]
async fn relations_inside_subqueries_are_found() {
    let l =
        lineage("SELECT c_name FROM customer WHERE EXISTS (SELECT 1 FROM orders WHERE o_custkey = c_custkey)").await;
    assert_eq!(l.depends_on, ["customer", "orders"]);
}

#[tokio::test]
async fn scalar_subqueries_and_functions_are_found() {
    let l = lineage("SELECT abs(c_name), (SELECT max(o_orderkey) FROM orders) AS m FROM customer").await;
    assert_eq!(l.depends_on, ["customer", "orders"]);
    assert_eq!(l.functions, ["abs", "max"]);
    let customer = &l.scans[0];
    assert_eq!(customer.relation, "customer");
    assert_eq!(customer.columns, ["c_name"]);
}
