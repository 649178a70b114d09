//! Reading a written output back: a listing table with the written schema, partition
//! columns and sort order.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::Column;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::logical_expr::{Expr, SortExpr};
use datafusion::prelude::SessionContext;

use crate::location::Location;
use crate::write::resolve_format;
use crate::{Result, WriteError, WriteReport, WriterKnobs};

/// Registers the committed output described by `report` as table `name` on `ctx`: a listing
/// table with the written schema, the hive partition columns (appended last, as DataFusion
/// reads them) and the sort order as `file_sort_order`, so that an `ORDER BY` on the sort
/// key needs no sort.
pub fn register_output(ctx: &SessionContext, name: &str, report: &WriteReport) -> Result<()> {
    let location = Location::parse(&report.target, &ctx.runtime_env())
        .map_err(|message| WriteError::Spec { target: report.target.clone(), message })?;
    register_at(ctx, name, &location, report)
}

pub(crate) fn register_at(ctx: &SessionContext, name: &str, location: &Location, report: &WriteReport) -> Result<()> {
    let schema = report.schema()?;
    let report_error = |message: String| WriteError::Report { target: report.target.clone(), message };
    let dferr = |source| WriteError::DataFusion { target: report.target.clone(), source };
    let state = ctx.state();
    // Re-apply the recorded options (CSV headers and delimiters matter on read); parquet
    // reads with the session's options.
    let options = if report.format == crate::OutputFormat::Parquet {
        BTreeMap::new()
    } else {
        report
            .options
            .iter()
            .filter(|(_, value)| value.as_str() != "null")
            .filter_map(|(key, value)| key.strip_prefix("format.").map(|k| (k.to_owned(), value.clone())))
            .collect()
    };
    let resolved =
        resolve_format(report.format, &options, &WriterKnobs::default(), &state, &schema).map_err(report_error)?;
    let mut partition_cols = Vec::with_capacity(report.partition_by.len());
    for column in &report.partition_by {
        let field = schema.field_with_name(column).map_err(|e| report_error(e.to_string()))?;
        partition_cols.push((column.clone(), field.data_type().clone()));
    }
    let file_schema = Schema::new(
        schema.fields().iter().filter(|f| !report.partition_by.contains(f.name())).cloned().collect::<Vec<_>>(),
    );
    let sort: Vec<SortExpr> = report
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
    let table = ListingTable::try_new(config).map_err(dferr)?;
    ctx.register_table(name, Arc::new(table)).map_err(dferr)?;
    Ok(())
}
