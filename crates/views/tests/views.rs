//! SQL views through the public API: the safe SQL policy, parameters, and laziness.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use dfpipe_views::{SqlView, ViewError, register_lazy};

/// A table whose scans are counted: planning a reader's logical plan must never scan.
#[derive(Debug, Default)]
struct CountingTable {
    scans: AtomicUsize,
}

#[async_trait]
impl TableProvider for CountingTable {
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new("v", DataType::Utf8, true)]))
    }
    fn table_type(&self) -> TableType {
        TableType::Base
    }
    async fn scan(
        &self,
        _: &dyn Session,
        _: Option<&Vec<usize>>,
        _: &[Expr],
        _: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        datafusion::common::exec_err!("CountingTable must not be scanned while views are registered")
    }
}

fn context() -> (SessionContext, Arc<CountingTable>) {
    let ctx = SessionContext::new();
    let table = Arc::new(CountingTable::default());
    ctx.register_table("t", Arc::clone(&table) as Arc<dyn TableProvider>).unwrap();
    (ctx, table)
}

fn parse(ctx: &SessionContext, sql: &str) -> Result<SqlView, ViewError> {
    SqlView::parse("v", Path::new("views/v.sql"), sql, &ctx.state())
}

#[test]
fn everything_but_one_query_is_refused() {
    let (ctx, _) = context();
    for (sql, what) in [
        ("create table x as select 1", "CREATE TABLE"),
        ("create view x as select 1", "CREATE VIEW"),
        ("create external table x stored as parquet location 'x'", "CREATE EXTERNAL TABLE"),
        ("drop table t", "DROP TABLE"),
        ("insert into t values (1, 'a')", "INSERT"),
        ("update t set v = 'b'", "UPDATE"),
        ("delete from t", "DELETE"),
        ("copy t to 'out.parquet'", "COPY"),
        ("set datafusion.execution.batch_size = 1", "SET"),
        ("explain select 1", "EXPLAIN"),
        ("explain analyze select 1", "EXPLAIN"),
        ("select 1; select 2", "2 statements"),
        ("", "an empty file"),
        ("-- only a comment", "an empty file"),
    ] {
        match parse(&ctx, sql) {
            Err(ViewError::Refused { view, file, what: refused }) => {
                assert_eq!((view.as_str(), file.as_path()), ("v", Path::new("views/v.sql")));
                assert!(refused.contains(what), "{sql}: {refused}");
            }
            other => panic!("{sql}: expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn queries_are_accepted_and_registered_without_scanning() {
    let (ctx, table) = context();
    let base = parse(&ctx, "with x as (select k, v from t) select k, upper(v) as v from x where k > 1").unwrap();
    assert_eq!(base.references(), ["t"]);
    register_lazy(&ctx, "v", base.plan(&ctx).await.unwrap()).unwrap();
    let reader = SqlView::parse("w", Path::new("views/w.sql"), "select count(*) as n from v", &ctx.state()).unwrap();
    let df = reader.plan(&ctx).await.unwrap();
    assert_eq!(df.schema().fields().len(), 1);
    assert_eq!(table.scans.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn parameters_bind_as_values_and_mismatches_are_errors() {
    let (ctx, _) = context();
    let sql = "select k from t where k > $min and v = $name";
    let bound = parse(&ctx, sql).unwrap().with_params(BTreeMap::from([
        ("min".to_owned(), ScalarValue::Int64(Some(3))),
        ("name".to_owned(), ScalarValue::Utf8(Some("x' or '1'='1".to_owned()))),
    ]));
    let plan = bound.plan(&ctx).await.unwrap().into_unoptimized_plan().display_indent().to_string();
    assert!(plan.contains("Int64(3)") && plan.contains("Utf8(\"x' or '1'='1\")"), "{plan}");

    let missing =
        parse(&ctx, sql).unwrap().with_params(BTreeMap::from([("min".to_owned(), ScalarValue::Int64(Some(3)))]));
    let message = missing.plan(&ctx).await.unwrap_err().to_string();
    assert!(message.contains("$name") && message.contains("no value"), "{message}");

    let unused = parse(&ctx, "select k from t")
        .unwrap()
        .with_params(BTreeMap::from([("min".to_owned(), ScalarValue::Int64(Some(3)))]));
    let message = unused.plan(&ctx).await.unwrap_err().to_string();
    assert!(message.contains("`min`") && message.contains("not used"), "{message}");
}

#[tokio::test]
async fn planning_errors_name_the_view_and_file() {
    let (ctx, _) = context();
    let message = parse(&ctx, "select nope from t").unwrap().plan(&ctx).await.unwrap_err().to_string();
    assert!(message.starts_with("view `v` (views/v.sql)") && message.contains("nope"), "{message}");
    let message = parse(&ctx, "select k\nfrom t\nwhere )").unwrap_err().to_string();
    assert!(message.contains("views/v.sql") && message.contains("Line: 3"), "{message}");
}
