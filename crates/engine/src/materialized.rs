//! How readers see a materialized view: its committed output, not its plan.
//!
//! A reader of a materialized view scans the parquet files the last successful run committed
//! under `<output_dir>/<view>/`; it never re-runs the view's plan inline. The files are
//! listed when a reader's physical plan is built, so a reader that runs after its upstream
//! in the same run has its physical plan built again at execution, once the upstream output
//! is committed (see `run.rs`). Before any output exists, the scan is empty.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;

/// The committed output of a materialized view, as a table.
#[derive(Debug)]
pub(crate) struct CommittedOutput {
    schema: SchemaRef,
    dir: PathBuf,
    partition_by: Vec<String>,
}

impl CommittedOutput {
    /// The output of a view with `schema`, committed under `dir`, hive-partitioned by
    /// `partition_by`. Partition columns come last, as DataFusion reads them from paths.
    pub(crate) fn new(schema: &Schema, dir: PathBuf, partition_by: Vec<String>) -> Self {
        let (partitions, files): (Vec<_>, Vec<_>) =
            schema.fields().iter().cloned().partition(|f| partition_by.contains(f.name()));
        let schema = Arc::new(Schema::new(files.into_iter().chain(partitions).collect::<Vec<_>>()));
        Self { schema, dir, partition_by }
    }

    fn listing(&self) -> Result<ListingTable> {
        let mut partition_cols = Vec::with_capacity(self.partition_by.len());
        for column in &self.partition_by {
            partition_cols.push((column.clone(), self.schema.field_with_name(column)?.data_type().clone()));
        }
        let file_schema = Schema::new(
            self.schema.fields().iter().filter(|f| !self.partition_by.contains(f.name())).cloned().collect::<Vec<_>>(),
        );
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partition_cols);
        let url = ListingTableUrl::parse(self.dir.to_string_lossy())?;
        ListingTable::try_new(
            ListingTableConfig::new(url).with_listing_options(options).with_schema(Arc::new(file_schema)),
        )
    }
}

#[async_trait]
impl TableProvider for CommittedOutput {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !self.dir.is_dir() {
            let schema = match projection {
                Some(indices) => Arc::new(self.schema.project(indices)?),
                None => Arc::clone(&self.schema),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        self.listing()?.scan(state, projection, filters, limit).await
    }
}
