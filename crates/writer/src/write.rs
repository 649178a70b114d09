//! Staged parquet writes, their reports, and the commit that replaces the previous output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Array, UInt64Array};
use datafusion::common::config::{ConfigField, TableParquetOptions};
use datafusion::common::file_options::parquet_writer::ParquetWriterOptions;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::datasource::physical_plan::{FileGroup, FileOutputMode, FileSinkConfig};
use datafusion::execution::SessionState;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_plan::{ExecutionPlan, collect};
use serde::{Deserialize, Serialize};

use crate::{Result, WriteError};

/// The directory under an output directory where writes are staged.
const STAGING_DIR: &str = ".staging";

/// How to write one output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSpec {
    /// The output directory, replaced as a whole on commit.
    pub target: PathBuf,
    /// Parquet options as DataFusion's `format.*` keys without the prefix, e.g.
    /// `compression = "zstd(3)"` or `max_row_group_size = "1048576"`.
    pub parquet: BTreeMap<String, String>,
    /// Hive-style partition columns.
    pub partition_by: Vec<String>,
}

/// What a write did: files, rows, bytes, time, and the exact options it used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReport {
    /// The committed output directory.
    pub target: PathBuf,
    /// The files written, relative to `target`, with their sizes in bytes.
    pub files: Vec<(String, u64)>,
    /// The rows written.
    pub rows: u64,
    /// The bytes written.
    pub bytes: u64,
    /// Wall time of the write, in milliseconds.
    pub duration_ms: u64,
    /// Every parquet writer option in force, as `key = value`.
    pub options: BTreeMap<String, String>,
}

/// A write that finished in its staging directory and waits for [`Staged::commit`].
/// Dropping it without committing removes the staging directory.
#[derive(Debug)]
pub struct Staged {
    staging: PathBuf,
    report: WriteReport,
}

/// Streams `plan` into a staging directory next to `spec.target`. The previous output is
/// untouched until [`Staged::commit`].
pub async fn write_parquet(plan: Arc<dyn ExecutionPlan>, state: &SessionState, spec: &WriteSpec) -> Result<Staged> {
    let started = Instant::now();
    let target = spec.target.clone();
    let spec_error = |message: String| WriteError::Spec { target: target.clone(), message };
    let mut options: TableParquetOptions = state.default_table_options().parquet;
    for (key, value) in &spec.parquet {
        options
            .set(key, value)
            .map_err(|e| spec_error(format!("parquet option `{key} = {value}`: {}", e.strip_backtrace())))?;
    }
    let schema = plan.schema();
    // Resolve every option (compression names and levels among them) before writing.
    let mut resolved = options.clone();
    resolved.arrow_schema(&schema);
    ParquetWriterOptions::try_from(&resolved).map_err(|e| spec_error(e.strip_backtrace()))?;
    for column in &spec.partition_by {
        if schema.field_with_name(column).is_err() {
            return Err(spec_error(format!("partition column `{column}` is not in the output schema")));
        }
    }

    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| spec_error("the target needs a parent directory".to_owned()))?;
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| spec_error("the target needs a UTF-8 directory name".to_owned()))?;
    let staging_root = parent.join(STAGING_DIR);
    let staging = staging_root.join(format!("{name}-{}", unique_suffix()));
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| WriteError::Io { action, path, source }
    };
    std::fs::create_dir_all(&staging).map_err(io("cannot create staging directory", &staging))?;
    // From here on, `staged` removes the staging directory if anything fails.
    let mut staged = Staged { staging, report: WriteReport::default() };

    let dferr = |source| WriteError::DataFusion { target: target.clone(), source };
    let url = ListingTableUrl::parse(format!("{}/", absolute(&staged.staging)?.display())).map_err(dferr)?;
    let config = FileSinkConfig {
        original_url: url.to_string(),
        object_store_url: url.object_store(),
        file_group: FileGroup::default(),
        table_paths: vec![url],
        output_schema: Arc::clone(&schema),
        table_partition_cols: spec
            .partition_by
            .iter()
            .map(|c| (c.clone(), datafusion::arrow::datatypes::DataType::Null))
            .collect(),
        insert_op: InsertOp::Append,
        keep_partition_by_columns: state.config().options().execution.keep_partition_by_columns,
        file_extension: "parquet".to_owned(),
        file_output_mode: FileOutputMode::Directory,
    };
    let ordering = plan.properties().output_ordering().cloned();
    let sink = ParquetFormat::new()
        .with_options(options.clone())
        .create_writer_physical_plan(plan, state, config, ordering.map(Into::into))
        .await
        .map_err(dferr)?;
    let batches = collect(sink, state.task_ctx()).await.map_err(dferr)?;
    let rows = batches
        .iter()
        .filter_map(|b| {
            b.column(0).as_any().downcast_ref::<UInt64Array>().map(|a| (0..a.len()).map(|i| a.value(i)).sum::<u64>())
        })
        .sum();

    let files = list_files(&staged.staging)?;
    staged.report = WriteReport {
        target: target.clone(),
        bytes: files.iter().map(|(_, size)| size).sum(),
        files,
        rows,
        duration_ms: started.elapsed().as_millis() as u64,
        options: option_entries(&options),
    };
    Ok(staged)
}

impl Staged {
    /// The report of the staged write.
    pub fn report(&self) -> &WriteReport {
        &self.report
    }

    /// The staging directory: the new output, readable before it is committed.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Replaces the previous output with the staged one and returns the report. The old
    /// output is first moved to `.staging/<name>.retired` and deleted only once the new one is
    /// in place; if the process dies in between, [`clean_staging`] moves it back.
    pub fn commit(mut self) -> Result<WriteReport> {
        let target = self.report.target.clone();
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| WriteError::Io { action, path, source }
        };
        let retired = retired_path(&target);
        let had_previous = target.exists();
        if had_previous {
            if retired.exists() {
                std::fs::remove_dir_all(&retired).map_err(io("cannot remove an old retired output", &retired))?;
            }
            std::fs::rename(&target, &retired).map_err(io("cannot move the previous output aside", &target))?;
        }
        if let Err(e) = std::fs::rename(&self.staging, &target) {
            if had_previous {
                // Put the previous output back: it must stay readable.
                let _ = std::fs::rename(&retired, &target);
            }
            return Err(io("cannot move the new output into place", &target)(e));
        }
        if had_previous {
            // The new output is live; a leftover here is removed by the next `clean_staging`.
            let _ = std::fs::remove_dir_all(&retired);
        }
        Ok(std::mem::take(&mut self.report))
    }
}

/// Where the previous output of `target` waits while a commit swaps the new one in.
fn retired_path(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(STAGING_DIR).join(format!("{name}.{RETIRED}"))
}

/// The extension of a previous output moved aside during a commit.
const RETIRED: &str = "retired";

impl Drop for Staged {
    fn drop(&mut self) {
        if self.staging.exists() {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Repairs what crashed writes left in `output_dir`: a previous output moved aside by a commit
/// that did not finish is moved back when its target is missing; everything else in the staging
/// area (half-written outputs, retired outputs already replaced) is removed. Returns how many
/// leftovers were found.
pub fn clean_staging(output_dir: &Path) -> Result<usize> {
    let root = output_dir.join(STAGING_DIR);
    let Ok(entries) = std::fs::read_dir(&root) else { return Ok(0) };
    let mut found = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        found += 1;
        let retired_target =
            path.extension().filter(|e| *e == RETIRED).and_then(|_| path.file_stem()).map(|name| output_dir.join(name));
        if let Some(target) = retired_target.filter(|t| !t.exists()) {
            std::fs::rename(&path, &target).map_err(|source| WriteError::Io {
                action: "cannot restore the previous output",
                path,
                source,
            })?;
            continue;
        }
        let result = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        result.map_err(|source| WriteError::Io { action: "cannot remove staging leftover", path, source })?;
    }
    Ok(found)
}

fn list_files(dir: &Path) -> Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|source| WriteError::Io {
            action: "cannot list",
            path: current.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = entry.metadata().map_err(|source| WriteError::Io {
                action: "cannot stat",
                path: path.clone(),
                source,
            })?;
            if meta.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                files.push((relative.to_string_lossy().into_owned(), meta.len()));
            }
        }
    }
    files.sort();
    Ok(files)
}

fn option_entries(options: &TableParquetOptions) -> BTreeMap<String, String> {
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

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|source| WriteError::Io {
        action: "cannot resolve",
        path: path.to_owned(),
        source,
    })
}

/// A suffix unique to this process and moment, for staging directory names.
fn unique_suffix() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}
