//! `LazyView`: a view that readers scan by name, planned only when a reader is planned.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::DataFrame;

/// A view registered as a table provider. Unlike DataFusion's `ViewTable`, it does not
/// offer its plan for inlining, so a reader's logical plan keeps a `TableScan` named after
/// the view: lineage, Substrait and fingerprints see the view, not the tables below it.
/// Scanning plans the view with the reader's projection and filters pushed into it.
#[derive(Debug)]
pub struct LazyView {
    inner: ViewTable,
}

impl LazyView {
    /// Wraps a lazy `DataFrame`. Nothing is executed.
    pub fn new(df: DataFrame) -> Self {
        Self { inner: ViewTable::new(df.into_unoptimized_plan(), None) }
    }

    /// The view's logical plan.
    pub fn plan(&self) -> &LogicalPlan {
        self.inner.logical_plan()
    }
}

#[async_trait]
impl TableProvider for LazyView {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        None
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        None
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.scan(state, projection, filters, limit).await
    }
}
