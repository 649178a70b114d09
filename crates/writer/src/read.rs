//! Reading an output back: the one way to see an output as a table, with the written
//! schema, partition columns and sort order. It serves readers of a committed output, the
//! check of a staged output before its commit, and readers planned before any output exists.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Column;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, SortExpr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::prelude::SessionContext;

use crate::location::Location;
use crate::write::resolve_format;
use crate::{OutputFormat, Result, WriteError, WriteReport, WriteSpec, WriterKnobs};

/// An output as a table: its files are listed each time a scan is planned, so a reader
/// planned again after a commit sees the new files; before any output exists it is empty.
/// Partition columns come last, as DataFusion reads them from paths, and the sort order is
/// the listing's `file_sort_order`, so an `ORDER BY` on the sort key needs no sort.
#[derive(Debug)]
pub struct OutputTable {
    listing: ListingTable,
    location: Location,
}

impl OutputTable {
    /// The table of what `spec` writes (or wrote) for a plan with output `schema`.
    pub fn new(state: &SessionState, spec: &WriteSpec, schema: &Schema) -> Result<Self> {
        let location = Location::parse(&spec.target, state.runtime_env())
            .map_err(|message| WriteError::Spec { target: spec.target.clone(), message })?;
        Self::at(state, location, spec, schema)
    }

    pub(crate) fn at(state: &SessionState, location: Location, spec: &WriteSpec, schema: &Schema) -> Result<Self> {
        let target = location.display();
        let report_error = |message: String| WriteError::Spec { target: target.clone(), message };
        // Parquet reads with the session's options; CSV and JSON need the written ones
        // (headers, delimiters) back.
        let options = if spec.format == OutputFormat::Parquet { BTreeMap::new() } else { spec.options.clone() };
        let schema = Arc::new(schema.clone());
        let resolved =
            resolve_format(spec.format, &options, &WriterKnobs::default(), state, &schema).map_err(report_error)?;
        let mut partition_cols = Vec::with_capacity(spec.partition_by.len());
        for column in &spec.partition_by {
            let field = schema.field_with_name(column).map_err(|e| report_error(e.to_string()))?;
            partition_cols.push((column.clone(), field.data_type().clone()));
        }
        let file_schema = Schema::new(
            schema.fields().iter().filter(|f| !spec.partition_by.contains(f.name())).cloned().collect::<Vec<_>>(),
        );
        let sort: Vec<SortExpr> = spec
            .sort_by
            .iter()
            .map(|key| Expr::Column(Column::new_unqualified(&key.column)).sort(!key.descending, key.nulls_first))
            .collect();
        let listing = ListingOptions::new(resolved.format)
            .with_file_extension(format!(".{}", resolved.extension))
            .with_table_partition_cols(partition_cols)
            .with_file_sort_order(if sort.is_empty() { Vec::new() } else { vec![sort] });
        let config = ListingTableConfig::new(location.listing_url()?)
            .with_listing_options(listing)
            .with_schema(Arc::new(file_schema));
        let listing = ListingTable::try_new(config).map_err(|source| WriteError::DataFusion { target, source })?;
        Ok(Self { listing, location })
    }
}

#[async_trait]
impl TableProvider for OutputTable {
    fn schema(&self) -> SchemaRef {
        self.listing.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        self.listing.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        if let Location::Local(dir) = &self.location
            && !dir.is_dir()
        {
            let schema = self.schema();
            let schema = match projection {
                Some(indices) => Arc::new(schema.project(indices)?),
                None => schema,
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        self.listing.scan(state, projection, filters, limit).await
    }
}

impl WriteReport {
    /// The spec that reads this output back as it was written.
    fn read_spec(&self) -> WriteSpec {
        WriteSpec {
            target: self.target.clone(),
            format: self.format,
            options: self
                .options
                .iter()
                .filter(|(_, value)| value.as_str() != "null")
                .filter_map(|(key, value)| key.strip_prefix("format.").map(|k| (k.to_owned(), value.clone())))
                .collect(),
            partition_by: self.partition_by.clone(),
            sort_by: self.sort_by.clone(),
            ..WriteSpec::default()
        }
    }
}

/// Registers the committed output described by `report` as table `name` on `ctx`, as an
/// [`OutputTable`].
pub fn register_output(ctx: &SessionContext, name: &str, report: &WriteReport) -> Result<()> {
    let location = Location::parse(&report.target, &ctx.runtime_env())
        .map_err(|message| WriteError::Spec { target: report.target.clone(), message })?;
    register_at(ctx, name, location, report)
}

pub(crate) fn register_at(ctx: &SessionContext, name: &str, location: Location, report: &WriteReport) -> Result<()> {
    let schema = report.schema()?;
    let target = location.display();
    let table = OutputTable::at(&ctx.state(), location, &report.read_spec(), &schema)?;
    ctx.register_table(name, Arc::new(table)).map_err(|source| WriteError::DataFusion { target, source })?;
    Ok(())
}
