//! Where materialized views are written, and how readers see them: their committed output,
//! not their plans.
//!
//! A reader of a materialized view scans the parquet files the last successful run committed
//! under `<output_dir>/<view>/`; it never re-runs the view's plan inline. The files are
//! listed when a reader's physical plan is built, so a reader that runs after its upstream
//! in the same run has its physical plan built again at execution, once the upstream output
//! is committed (see `run.rs`). Before any output exists, the scan is empty.

use std::path::{Path, PathBuf};
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
use datafusion::prelude::SessionContext;
use futures::StreamExt;

/// Where materialized views are written: `output_dir` of `dfpipe.toml`, a local directory
/// (relative to the pipeline, or a `file://` URL) or the URL of an object store registered
/// on the session (`Pipeline::with_object_store`). View `v` goes to `<output_dir>/v/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputDir {
    /// A local directory.
    Local(PathBuf),
    /// An object-store URL, without a trailing `/`.
    Store(String),
}

impl OutputDir {
    /// `output_dir` as written in the spec of the pipeline in `pipeline_dir`.
    pub(crate) fn new(pipeline_dir: &Path, output_dir: &str) -> Result<Self, String> {
        if !output_dir.contains("://") {
            return Ok(Self::Local(pipeline_dir.join(output_dir)));
        }
        let url = url::Url::parse(output_dir).map_err(|e| format!("`{output_dir}` is not a valid URL: {e}"))?;
        if url.scheme() == "file" {
            return url.to_file_path().map(Self::Local).map_err(|()| format!("`{output_dir}` is not a local file URL"));
        }
        Ok(Self::Store(output_dir.trim_end_matches('/').to_owned()))
    }

    /// The output of `view`: a path or a URL, as the writer takes it.
    pub fn target(&self, view: &str) -> String {
        match self {
            Self::Local(dir) => dir.join(view).to_string_lossy().into_owned(),
            Self::Store(url) => format!("{url}/{view}"),
        }
    }

    /// The directory itself: a path or a URL.
    pub fn location(&self) -> String {
        match self {
            Self::Local(dir) => dir.to_string_lossy().into_owned(),
            Self::Store(url) => url.clone(),
        }
    }

    /// The output of `view` as a listing location (a directory).
    pub(crate) fn listing_url(&self, view: &str) -> Result<ListingTableUrl> {
        match self {
            // The trailing `/` makes it a directory, whether or not it exists yet.
            Self::Local(dir) => ListingTableUrl::parse(format!("{}/", dir.join(view).to_string_lossy())),
            Self::Store(url) => ListingTableUrl::parse(format!("{url}/{view}/")),
        }
    }

    /// Whether `view` has a committed output: a local directory, or any object under the
    /// view's prefix.
    pub(crate) async fn has_output(&self, ctx: &SessionContext, view: &str) -> Result<bool> {
        match self {
            Self::Local(dir) => Ok(dir.join(view).is_dir()),
            Self::Store(_) => {
                let url = self.listing_url(view)?;
                let store = ctx.runtime_env().object_store(url.object_store())?;
                Ok(store.list(Some(url.prefix())).next().await.transpose()?.is_some())
            }
        }
    }
}

/// The committed output of a materialized view, as a table.
#[derive(Debug)]
pub(crate) struct CommittedOutput {
    schema: SchemaRef,
    url: ListingTableUrl,
    /// The local directory, when the output is local: before it exists, the scan is empty.
    local: Option<PathBuf>,
    partition_by: Vec<String>,
}

impl CommittedOutput {
    /// The output of `view` with `schema`, committed under `output`, hive-partitioned by
    /// `partition_by`. Partition columns come last, as DataFusion reads them from paths.
    pub(crate) fn new(schema: &Schema, output: &OutputDir, view: &str, partition_by: Vec<String>) -> Result<Self> {
        let (partitions, files): (Vec<_>, Vec<_>) =
            schema.fields().iter().cloned().partition(|f| partition_by.contains(f.name()));
        let schema = Arc::new(Schema::new(files.into_iter().chain(partitions).collect::<Vec<_>>()));
        let local = match output {
            OutputDir::Local(dir) => Some(dir.join(view)),
            OutputDir::Store(_) => None,
        };
        Ok(Self { schema, url: output.listing_url(view)?, local, partition_by })
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
        ListingTable::try_new(
            ListingTableConfig::new(self.url.clone()).with_listing_options(options).with_schema(Arc::new(file_schema)),
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
        if self.local.as_ref().is_some_and(|dir| !dir.is_dir()) {
            let schema = match projection {
                Some(indices) => Arc::new(self.schema.project(indices)?),
                None => Arc::clone(&self.schema),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        self.listing()?.scan(state, projection, filters, limit).await
    }
}
