//! Table providers that wrap another: one that sets DataFusion `Constraints`, and a union of
//! tables with one schema.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;

/// Delegates everything to `inner`, except `constraints()`, which returns the declared
/// primary and unique keys. Reading through it is exactly reading `inner`.
#[derive(Debug)]
pub(crate) struct ConstrainedTable {
    inner: Arc<dyn TableProvider>,
    constraints: Constraints,
}

impl ConstrainedTable {
    /// Wraps `inner`, unwrapping it first if it is already a `ConstrainedTable`, so
    /// registering twice replaces the constraints instead of stacking wrappers.
    pub(crate) fn new(inner: Arc<dyn TableProvider>, constraints: Constraints) -> Self {
        Self { inner: Self::unwrap(inner), constraints }
    }

    /// The provider below any `ConstrainedTable` wrapper.
    pub(crate) fn unwrap(provider: Arc<dyn TableProvider>) -> Arc<dyn TableProvider> {
        match provider.downcast_ref::<Self>() {
            Some(wrapped) => Arc::clone(&wrapped.inner),
            None => provider,
        }
    }
}

#[async_trait]
impl TableProvider for ConstrainedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        Some(&self.constraints)
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.inner.get_table_definition()
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.inner.get_logical_plan()
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.inner.get_column_default(column)
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

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: datafusion::catalog::ScanArgs<'a>,
    ) -> Result<datafusion::catalog::ScanResult> {
        self.inner.scan_with_args(state, args).await
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.insert_into(state, input, insert_op).await
    }
}

/// The rows of several tables with one schema, one after the other: DataFusion's
/// `information_schema.tables` followed by the contract tables.
#[derive(Debug)]
pub(crate) struct UnionTable {
    schema: SchemaRef,
    inputs: Vec<Arc<dyn TableProvider>>,
}

impl UnionTable {
    /// The union of `inputs`, which all have `schema`.
    pub(crate) fn new(schema: SchemaRef, inputs: Vec<Arc<dyn TableProvider>>) -> Self {
        Self { schema, inputs }
    }
}

#[async_trait]
impl TableProvider for UnionTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut plans = Vec::with_capacity(self.inputs.len());
        for input in &self.inputs {
            plans.push(input.scan(state, projection, filters, limit).await?);
        }
        UnionExec::try_new(plans)
    }
}
