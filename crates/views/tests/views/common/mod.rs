//! Shared fixtures of the views tests: tables whose scans are counted and refused, and
//! in-memory tables for the tests that do execute.

#![allow(dead_code, unreachable_pub)]

pub mod edits;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

/// A table whose scans are counted and refused: registering and planning views must never
/// scan it.
#[derive(Debug)]
pub struct FailingTable {
    schema: SchemaRef,
    pub scans: Arc<AtomicUsize>,
}

#[async_trait]
impl TableProvider for FailingTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
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
        datafusion::common::exec_err!("a FailingTable must not be scanned while views are registered")
    }
}

pub fn int(name: &str) -> Field {
    Field::new(name, DataType::Int64, false)
}

pub fn text(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

pub fn money(name: &str) -> Field {
    Field::new(name, DataType::Decimal128(15, 2), true)
}

pub fn date(name: &str) -> Field {
    Field::new(name, DataType::Date32, true)
}

/// A context with TPC-H-like `customer`, `orders`, `lineitem` and the small table `t`, all
/// failing on scan. Returns the scan counter they share.
pub fn failing_context() -> (SessionContext, Arc<AtomicUsize>) {
    let ctx = SessionContext::new();
    let scans = Arc::new(AtomicUsize::new(0));
    for (name, fields) in [
        ("customer", vec![int("c_custkey"), text("c_name"), int("c_nationkey"), text("c_mktsegment")]),
        ("orders", vec![int("o_orderkey"), int("o_custkey"), money("o_totalprice"), date("o_orderdate")]),
        ("lineitem", vec![int("l_orderkey"), money("l_extendedprice"), money("l_discount"), date("l_shipdate")]),
        ("t", vec![int("k"), text("v")]),
    ] {
        let table = FailingTable { schema: Arc::new(Schema::new(fields)), scans: Arc::clone(&scans) };
        ctx.register_table(name, Arc::new(table)).unwrap();
    }
    (ctx, scans)
}

pub fn scans(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::SeqCst)
}
