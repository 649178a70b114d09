//! Staged writes through DataFusion's file sinks, and the commit that replaces the previous
//! output.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::config::{ConfigField, CsvOptions, JsonOptions, TableParquetOptions};
use datafusion::common::file_options::csv_writer::CsvWriterOptions;
use datafusion::common::file_options::json_writer::JsonWriterOptions;
use datafusion::common::file_options::parquet_writer::ParquetWriterOptions;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::physical_plan::{FileGroup, FileOutputMode, FileSinkConfig};
use datafusion::execution::{SessionState, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, LexRequirement, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;

use crate::location::{Location, STAGING_DIR, commit};
use crate::report::{WriteReport, WrittenFile};
use crate::{OutputFormat, Result, SortColumn, WriteError, WriteSpec, WriterKnobs};

/// A write that finished in its staging directory and waits for [`Staged::commit`].
/// Dropping it without committing removes the staging directory.
#[derive(Debug)]
pub struct Staged {
    staging: Location,
    target: Location,
    report: WriteReport,
    done: bool,
}

/// Streams `plan` through DataFusion's file sink for `spec.format` into a staging directory
/// beside `spec.target`, batch by batch: rows are never collected. The previous output is
/// untouched until [`Staged::commit`]. The spec is checked in full (target, options,
/// partition and sort columns) before anything is written.
pub async fn write(plan: Arc<dyn ExecutionPlan>, state: &SessionState, spec: &WriteSpec) -> Result<Staged> {
    let started = Instant::now();
    let spec_error = |message: String| WriteError::Spec { target: spec.target.clone(), message };
    let target = Location::parse(&spec.target, state.runtime_env()).map_err(spec_error)?;
    let (Some(name), Some(parent)) = (target.name(), target.parent()) else {
        return Err(spec_error("the target needs a parent directory and a name".to_owned()));
    };
    if name == STAGING_DIR || name.is_empty() {
        return Err(spec_error(format!("`{name}` cannot be the name of an output")));
    }
    let schema = plan.schema();
    crate::check_writable(spec.format, &schema).map_err(|e| spec_error(e.to_string()))?;
    for column in &spec.partition_by {
        if schema.field_with_name(column).is_err() {
            return Err(spec_error(format!("partition column `{column}` is not in the output schema")));
        }
    }
    if !spec.partition_by.is_empty() && spec.partition_by.len() >= schema.fields().len() {
        return Err(spec_error("every column is a partition column: nothing would be left to write".to_owned()));
    }
    let ordering = sort_ordering(&spec.sort_by, &schema).map_err(spec_error)?;
    if let Some(ordering) = &ordering
        && !plan.properties().equivalence_properties().ordering_satisfy(ordering.clone()).unwrap_or(false)
    {
        let wanted: Vec<String> = spec.sort_by.iter().map(ToString::to_string).collect();
        return Err(spec_error(format!(
            "the plan does not produce the declared sort order [{}]; sort it first (ORDER BY, or the view's sort_by)",
            wanted.join(", ")
        )));
    }
    // Sorted outputs are written one file after another, so that files do not overlap and a
    // reader can keep the order across a file group; unless the spec says otherwise.
    let mut knobs = spec.knobs.clone();
    if ordering.is_some() && knobs.minimum_parallel_output_files.is_none() {
        knobs.minimum_parallel_output_files = Some(1);
    }
    let (config, knobs) = session_with_knobs(state.config(), &knobs).map_err(spec_error)?;
    let format = resolve_format(spec.format, &spec.options, &spec.knobs, state, &schema).map_err(spec_error)?;

    let staging = parent.child(STAGING_DIR).child(&format!("{name}-{}", unique_suffix()));
    staging.create().map_err(|e| spec_error(format!("the target is not writable: {e}")))?;
    // From here on, `staged` removes the staging directory if anything fails.
    let mut staged = Staged { staging, target, report: WriteReport::default(), done: false };
    match run_sink(plan, state, config, spec, &format, ordering, &staged.staging).await {
        Ok(rows) => {
            let files = staged.staging.files().await?;
            staged.report = WriteReport {
                target: spec.target.clone(),
                format: spec.format,
                bytes: files.iter().map(|(_, size)| size).sum(),
                files: files.into_iter().map(|(path, bytes)| WrittenFile { path, bytes }).collect(),
                rows,
                duration_ms: started.elapsed().as_millis() as u64,
                columns: WriteReport::columns_of(&schema),
                partition_by: spec.partition_by.clone(),
                sort_by: spec.sort_by.clone(),
                options: format.options,
                knobs: WriterKnobs {
                    maximum_parallel_row_group_writers: Some(format.parallel.maximum_parallel_row_group_writers),
                    maximum_buffered_record_batches_per_stream: Some(
                        format.parallel.maximum_buffered_record_batches_per_stream,
                    ),
                    allow_single_file_parallelism: Some(format.parallel.allow_single_file_parallelism),
                    ..knobs
                },
            };
            Ok(staged)
        }
        Err(e) => {
            staged.discard().await?;
            Err(e)
        }
    }
}

/// Streams the plan into the sink, and returns the rows written.
async fn run_sink(
    plan: Arc<dyn ExecutionPlan>,
    state: &SessionState,
    config: SessionConfig,
    spec: &WriteSpec,
    format: &Resolved,
    ordering: Option<LexOrdering>,
    staging: &Location,
) -> Result<u64> {
    let dferr = |source| WriteError::DataFusion { target: spec.target.clone(), source };
    let url = staging.listing_url()?;
    let schema = plan.schema();
    // DataFusion's sink executes only partition 0 of its input: merge the partitions first,
    // preserving the declared order.
    let input: Arc<dyn ExecutionPlan> = match (&ordering, plan.properties().output_partitioning().partition_count()) {
        (_, 0 | 1) => plan,
        (Some(ordering), _) => Arc::new(SortPreservingMergeExec::new(ordering.clone(), plan)),
        (None, _) => Arc::new(CoalescePartitionsExec::new(plan)),
    };
    let sink_config = FileSinkConfig {
        original_url: url.to_string(),
        object_store_url: url.object_store(),
        file_group: FileGroup::default(),
        table_paths: vec![url],
        output_schema: Arc::clone(&schema),
        // As in COPY TO: the types are taken from the batches written.
        table_partition_cols: spec.partition_by.iter().map(|c| (c.clone(), DataType::Null)).collect(),
        insert_op: InsertOp::Append,
        keep_partition_by_columns: config.options().execution.keep_partition_by_columns,
        file_extension: format.extension.clone(),
        file_output_mode: FileOutputMode::Directory,
    };
    let sink = format
        .format
        .create_writer_physical_plan(input, state, sink_config, ordering.map(LexRequirement::from))
        .await
        .map_err(dferr)?;
    let context = Arc::new(TaskContext::from(state).with_session_config(config));
    let mut stream = sink.execute(0, context).map_err(dferr)?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(dferr)?;
        if let Some(counts) = batch.columns().first().and_then(|c| c.as_any().downcast_ref::<UInt64Array>()) {
            rows += (0..counts.len()).map(|i| counts.value(i)).sum::<u64>();
        }
    }
    Ok(rows)
}

impl Staged {
    /// The report of the staged write.
    pub fn report(&self) -> &WriteReport {
        &self.report
    }

    /// The staging directory, a local path or URL: the new output, readable before it is
    /// committed (see [`Staged::register`]).
    pub fn location(&self) -> String {
        self.staging.display()
    }

    /// Registers the staged output as table `name` on `ctx`, exactly as
    /// [`crate::register_output`] registers a committed one: to check it before the commit.
    pub fn register(&self, ctx: &SessionContext, name: &str) -> Result<()> {
        crate::read::register_at(ctx, name, self.staging.clone(), &self.report)
    }

    /// Replaces the previous output with the staged one and returns the report. Locally the
    /// swap is two renames; in an object store, copies and deletes. Either way a crash in
    /// between is repaired by the next [`clean_staging`].
    pub async fn commit(mut self) -> Result<WriteReport> {
        commit(&self.staging, &self.target).await?;
        self.done = true;
        Ok(std::mem::take(&mut self.report))
    }

    /// Removes the staged output without committing it.
    pub async fn discard(mut self) -> Result<()> {
        self.done = true;
        self.staging.remove_all().await
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match &self.staging {
            Location::Local(path) => {
                let _ = std::fs::remove_dir_all(path);
            }
            // Object stores are async: remove in the background when a runtime is at hand;
            // otherwise the next `clean_staging` does.
            staging @ Location::Store { .. } => {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    let staging = staging.clone();
                    handle.spawn(async move { staging.remove_all().await });
                }
            }
        }
    }
}

/// Repairs what crashed writes left in `output_dir` (a local path or an object-store URL
/// registered on `runtime`): a previous output moved aside by a commit that did not finish
/// is restored; everything else in the staging area (half-written outputs, retired outputs
/// already replaced) is removed. Run it before writing; returns how many leftovers were found.
pub async fn clean_staging(
    runtime: &datafusion::execution::runtime_env::RuntimeEnv,
    output_dir: &str,
) -> Result<usize> {
    let dir = Location::parse(output_dir, runtime)
        .map_err(|message| WriteError::Spec { target: output_dir.to_owned(), message })?;
    crate::location::clean(&dir).await
}

/// A file format with its options resolved and checked.
pub(crate) struct Resolved {
    pub(crate) format: Arc<dyn FileFormat>,
    pub(crate) extension: String,
    /// Every option in force, as `format.*` keys.
    pub(crate) options: BTreeMap<String, String>,
    /// The parquet parallelism options in force (the session's, for other formats).
    parallel: ParallelOptions,
}

struct ParallelOptions {
    maximum_parallel_row_group_writers: usize,
    maximum_buffered_record_batches_per_stream: usize,
    allow_single_file_parallelism: bool,
}

/// Session defaults, then `options`, then the parquet knobs: checked, as DataFusion will
/// use them.
pub(crate) fn resolve_format(
    format: OutputFormat,
    options: &BTreeMap<String, String>,
    knobs: &WriterKnobs,
    state: &SessionState,
    schema: &SchemaRef,
) -> Result<Resolved, String> {
    let defaults = state.default_table_options();
    let set_error = |key: &str, value: &str, e: datafusion::error::DataFusionError| {
        format!("{} option `{key} = {value}`: {}", format.name(), e.strip_backtrace())
    };
    let mut parquet: TableParquetOptions = defaults.parquet;
    let (file_format, options): (Arc<dyn FileFormat>, BTreeMap<String, String>) = match format {
        OutputFormat::Parquet => {
            for (key, value) in options {
                parquet.set(key, value).map_err(|e| set_error(key, value, e))?;
            }
            let global = &mut parquet.global;
            if let Some(n) = knobs.maximum_parallel_row_group_writers {
                global.maximum_parallel_row_group_writers = n.max(1);
            }
            if let Some(n) = knobs.maximum_buffered_record_batches_per_stream {
                global.maximum_buffered_record_batches_per_stream = n.max(1);
            }
            if let Some(b) = knobs.allow_single_file_parallelism {
                global.allow_single_file_parallelism = b;
            }
            for column in parquet.column_specific_options.keys() {
                if schema.field_with_name(column).is_err() {
                    return Err(format!("parquet column option for `{column}`: no such column in the output schema"));
                }
            }
            // Resolve every option (compression names and levels among them) before writing.
            let mut resolved = parquet.clone();
            resolved.arrow_schema(schema);
            ParquetWriterOptions::try_from(&resolved).map_err(|e| given_error(options, &e))?;
            let entries = option_entries(&parquet);
            (Arc::new(ParquetFormat::new().with_options(parquet.clone())), entries)
        }
        OutputFormat::Csv => {
            let mut csv: CsvOptions = defaults.csv;
            for (key, value) in options {
                csv.set(key, value).map_err(|e| set_error(key, value, e))?;
            }
            csv.has_header = Some(csv.has_header.unwrap_or(state.config_options().catalog.has_header));
            CsvWriterOptions::try_from(&csv).map_err(|e| given_error(options, &e))?;
            let entries = option_entries(&csv);
            (Arc::new(CsvFormat::default().with_options(csv)), entries)
        }
        OutputFormat::Json => {
            let mut json: JsonOptions = defaults.json;
            for (key, value) in options {
                json.set(key, value).map_err(|e| set_error(key, value, e))?;
            }
            JsonWriterOptions::try_from(&json).map_err(|e| given_error(options, &e))?;
            let entries = option_entries(&json);
            (Arc::new(JsonFormat::default().with_options(json)), entries)
        }
    };
    let extension = match file_format.compression_type() {
        Some(compression) => file_format.get_ext_with_compression(&compression).map_err(|e| e.strip_backtrace())?,
        None => file_format.get_ext(),
    };
    let global = &parquet.global;
    Ok(Resolved {
        format: file_format,
        extension,
        options,
        parallel: ParallelOptions {
            maximum_parallel_row_group_writers: global.maximum_parallel_row_group_writers,
            maximum_buffered_record_batches_per_stream: global.maximum_buffered_record_batches_per_stream,
            allow_single_file_parallelism: global.allow_single_file_parallelism,
        },
    })
}

/// An error resolving the options as a whole, naming the options given.
fn given_error(options: &BTreeMap<String, String>, e: &datafusion::error::DataFusionError) -> String {
    let given: Vec<String> = options.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("the format options [{}] are invalid: {}", given.join(", "), e.strip_backtrace())
}

/// The session config with the demultiplexer's knobs applied, and those knobs as used.
fn session_with_knobs(config: &SessionConfig, knobs: &WriterKnobs) -> Result<(SessionConfig, WriterKnobs), String> {
    let mut config = config.clone();
    let mut set = |key: &str, value: Option<usize>| match value {
        Some(value) => config
            .options_mut()
            .set(key, &value.to_string())
            .map_err(|e| format!("writer knob `{key} = {value}`: {}", e.strip_backtrace())),
        None => Ok(()),
    };
    set("datafusion.execution.minimum_parallel_output_files", knobs.minimum_parallel_output_files)?;
    set("datafusion.execution.soft_max_rows_per_output_file", knobs.soft_max_rows_per_output_file)?;
    let execution = &config.options().execution;
    let used = WriterKnobs {
        minimum_parallel_output_files: Some(execution.minimum_parallel_output_files.get()),
        soft_max_rows_per_output_file: Some(execution.soft_max_rows_per_output_file.get()),
        ..WriterKnobs::default()
    };
    Ok((config, used))
}

/// The physical sort order of `sort_by` over `schema`; `None` when empty.
fn sort_ordering(sort_by: &[SortColumn], schema: &Schema) -> Result<Option<LexOrdering>, String> {
    let mut exprs = Vec::with_capacity(sort_by.len());
    for key in sort_by {
        let index = schema
            .index_of(&key.column)
            .map_err(|_| format!("sort column `{}` is not in the output schema", key.column))?;
        let options =
            datafusion::arrow::compute::SortOptions { descending: key.descending, nulls_first: key.nulls_first };
        exprs.push(PhysicalSortExpr::new(Arc::new(Column::new(&key.column, index)), options));
    }
    Ok(LexOrdering::new(exprs))
}

/// Every option of a format's option struct, as `format.<key>` entries.
fn option_entries(options: &impl ConfigField) -> BTreeMap<String, String> {
    struct Collect(BTreeMap<String, String>);
    impl datafusion::common::config::Visit for Collect {
        fn some<V: std::fmt::Display>(&mut self, key: &str, value: V, _: &'static str) {
            self.0.insert(key.to_owned(), value.to_string());
        }
        fn none(&mut self, key: &str, _: &'static str) {
            self.0.insert(key.to_owned(), "null".to_owned());
        }
    }
    let mut visitor = Collect(BTreeMap::new());
    options.visit(&mut visitor, "format", "");
    visitor.0
}

/// A suffix unique to this process and moment, for staging directory names.
fn unique_suffix() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}
