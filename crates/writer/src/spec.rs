//! What a write is asked to do: target, format, options, partitioning, sort order and knobs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How to write one output.
///
/// `target` names a directory that is replaced as a whole on commit: a local path, a
/// `file://` URL, or a URL of any object store registered on the session's `RuntimeEnv`
/// (`memory://bucket/out/view`, or a cloud store the caller registered).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteSpec {
    /// The output directory: a local path or an object-store URL.
    pub target: String,
    /// The file format.
    #[serde(default)]
    pub format: OutputFormat,
    /// Format options as DataFusion's `format.*` keys without the prefix, on top of the
    /// session's defaults. For parquet, e.g. `compression = "zstd(3)"`,
    /// `max_row_group_size = "1048576"`, `data_pagesize_limit`, `dictionary_enabled`,
    /// `statistics_enabled = "none|chunk|page"`, `created_by`, and per column
    /// `bloom_filter_enabled::<column> = "true"`. For CSV, e.g. `delimiter`, `has_header`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Hive-style partition columns (`<column>=<value>/` directories).
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// The order of the rows in every written file. The plan must already produce it; it is
    /// recorded in the report (and in parquet `sorting_columns`) so that readers register the
    /// output `WITH ORDER`.
    #[serde(default)]
    pub sort_by: Vec<SortColumn>,
    /// DataFusion's output parallelism knobs; unset knobs keep the session's values.
    #[serde(default)]
    pub knobs: WriterKnobs,
}

/// The file format of an output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Apache Parquet.
    #[default]
    Parquet,
    /// CSV, with a header row unless `has_header = "false"`.
    Csv,
    /// Newline-delimited JSON.
    Json,
}

impl OutputFormat {
    /// The lowercase name, as in `dfpipe.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }
}

/// One column of a sort order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SortColumn {
    /// The output column.
    pub column: String,
    /// Descending instead of ascending.
    #[serde(default)]
    pub descending: bool,
    /// Nulls before the other values.
    #[serde(default)]
    pub nulls_first: bool,
}

impl SortColumn {
    /// Ascending, nulls last.
    pub fn asc(column: impl Into<String>) -> Self {
        Self { column: column.into(), descending: false, nulls_first: false }
    }

    /// Descending, nulls first.
    pub fn desc(column: impl Into<String>) -> Self {
        Self { column: column.into(), descending: true, nulls_first: true }
    }

    /// Parses `column [ASC|DESC] [NULLS FIRST|NULLS LAST]`, as in a view's `sort_by`. As in
    /// DataFusion, nulls sort as the largest values unless told otherwise.
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut rest = &words[..];
        let mut nulls_first = None;
        if let [head @ .., nulls, place] = rest
            && nulls.eq_ignore_ascii_case("nulls")
        {
            nulls_first = match place.to_ascii_lowercase().as_str() {
                "first" => Some(true),
                "last" => Some(false),
                _ => return Err(format!("sort key `{text}`: expected NULLS FIRST or NULLS LAST")),
            };
            rest = head;
        }
        let mut descending = false;
        if let [head @ .., direction] = rest
            && (direction.eq_ignore_ascii_case("asc") || direction.eq_ignore_ascii_case("desc"))
        {
            descending = direction.eq_ignore_ascii_case("desc");
            rest = head;
        }
        match rest {
            [column] => {
                Ok(Self { column: (*column).to_owned(), descending, nulls_first: nulls_first.unwrap_or(descending) })
            }
            _ => Err(format!("sort key `{text}` is not `column [ASC|DESC] [NULLS FIRST|LAST]`")),
        }
    }
}

impl std::fmt::Display for SortColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let direction = if self.descending { "DESC" } else { "ASC" };
        let nulls = if self.nulls_first { "FIRST" } else { "LAST" };
        write!(f, "{} {direction} NULLS {nulls}", self.column)
    }
}

/// DataFusion's output parallelism knobs, as in `[profile.writer]`. In a [`WriteSpec`] an
/// unset knob keeps the session's value; in a [`crate::WriteReport`] every knob is set to
/// the value the write used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterKnobs {
    /// `datafusion.execution.minimum_parallel_output_files`: files written in parallel from
    /// one stream (each partition directory counts on its own). A sorted write defaults to
    /// 1, so that its files do not overlap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_parallel_output_files: Option<usize>,
    /// `datafusion.execution.soft_max_rows_per_output_file`: rows after which a new file is
    /// started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_max_rows_per_output_file: Option<usize>,
    /// `datafusion.execution.parquet.maximum_parallel_row_group_writers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_parallel_row_group_writers: Option<usize>,
    /// `datafusion.execution.parquet.maximum_buffered_record_batches_per_stream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_buffered_record_batches_per_stream: Option<usize>,
    /// `datafusion.execution.parquet.allow_single_file_parallelism`: encode the columns of
    /// one parquet file in parallel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_single_file_parallelism: Option<bool>,
}

impl WriterKnobs {
    /// dfpipe's tuned knobs for writing on `cores` cores: one output file per core, each
    /// encoded by one task, rather than DataFusion's default of four files whose columns are
    /// encoded by parallel tasks. Measured in `BENCHMARKS.md` ("Writer").
    pub fn tuned(cores: usize) -> Self {
        Self {
            minimum_parallel_output_files: Some(cores.max(1)),
            soft_max_rows_per_output_file: None,
            maximum_parallel_row_group_writers: None,
            maximum_buffered_record_batches_per_stream: None,
            allow_single_file_parallelism: Some(false),
        }
    }
}
