//! The pipeline spec: `dfpipe.toml`, parsed strictly with serde.

use std::collections::BTreeMap;
use std::path::Path;

use dfpipe_contract::Contract;
use dfpipe_storage::{StoreOptions, StorePrefix};
use serde::{Deserialize, Serialize};

use crate::{EngineError, Result};

/// The file every pipeline directory holds.
pub const SPEC_FILE: &str = "dfpipe.toml";

/// A parsed `dfpipe.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// `[pipeline]`.
    pub pipeline: PipelineSection,
    /// `[profile]`: the runtime profile, recorded in every artifact.
    #[serde(default)]
    pub profile: Profile,
    /// `[sources.<name>]`.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSpec>,
    /// `[views.<name>]`: options of views whose SQL is in `views/<name>.sql`.
    #[serde(default)]
    pub views: BTreeMap<String, ViewSpec>,
    /// `[contracts.<relation>]`.
    #[serde(default)]
    pub contracts: BTreeMap<String, Contract>,
    /// `[storage."<scheme>://<bucket>"]`: object stores for the URLs under each prefix.
    /// Credentials come from the environment only.
    #[serde(default)]
    pub storage: BTreeMap<StorePrefix, StoreOptions>,
    /// `[openlineage]`: where `dfpipe run` sends OpenLineage events, and their namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openlineage: Option<OpenLineageSection>,
    /// `[cluster]`: the workers that `run` and `plan` run the views' plans on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSection>,
}

/// `[cluster]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// The workers, `HOST:PORT` each. The `--cluster` flag wins over them.
    #[serde(default)]
    pub workers: Vec<String>,
    /// datafusion-distributed's planner settings, by full key (`distributed.*`). Where a plan
    /// runs does not change what it computes: these are not part of fingerprints.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Whether local paths (sources, `output_dir`) are on a filesystem every worker mounts at
    /// the same path. Without it, workers on other machines refuse local paths.
    #[serde(default)]
    pub shared_filesystem: bool,
}

/// `[openlineage]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenLineageSection {
    /// An endpoint's base URL (events go to `URL/api/v1/lineage`) or `file:PATH`. The
    /// `--openlineage` flag wins over it.
    pub url: Option<toml::Spanned<String>>,
    /// The namespace of the jobs (default: the pipeline's name).
    pub namespace: Option<String>,
}

impl OpenLineageSection {
    /// Where events go, as the spec says it.
    pub fn target(&self) -> Option<dfpipe_openlineage::Target> {
        self.url.as_ref().and_then(|url| dfpipe_openlineage::Target::parse(url.get_ref()).ok())
    }
}

/// `[pipeline]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// The pipeline's name.
    pub name: String,
    /// Where materialized views are written: a directory relative to the pipeline directory,
    /// or an object-store URL.
    #[serde(default = "default_output_dir")]
    pub output_dir: String,
}

fn default_output_dir() -> String {
    "out".to_owned()
}

/// `[profile]`: how DataFusion plans and runs the views.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `datafusion.execution.target_partitions`.
    pub target_partitions: Option<usize>,
    /// `datafusion.execution.batch_size`.
    pub batch_size: Option<usize>,
    /// A memory limit for execution, like `"4GiB"`.
    pub memory_limit: Option<String>,
    /// `strict` or `fallback`: what to do when a plan has no Substrait form.
    #[serde(default)]
    pub substrait: dfpipe_artifacts::SubstraitMode,
    /// Capture EXPLAIN VERBOSE: the plan after each optimizer rule that changed it.
    #[serde(default)]
    pub explain_verbose: bool,
    /// Consume each view's Substrait bytes back and record whether the plan round-trips.
    #[serde(default)]
    pub validate_substrait: bool,
    /// `none`, `summary` or `dev`: the level of execution metrics kept.
    #[serde(default)]
    pub analyze_level: dfpipe_artifacts::AnalyzeLevel,
    /// `datafusion.optimizer.repartition_joins`.
    pub repartition_joins: Option<bool>,
    /// `datafusion.optimizer.repartition_aggregations`.
    pub repartition_aggregations: Option<bool>,
    /// `datafusion.optimizer.prefer_hash_join`.
    pub prefer_hash_join: Option<bool>,
    /// `datafusion.optimizer.hash_join_single_partition_threshold`.
    pub hash_join_single_partition_threshold: Option<u64>,
    /// `datafusion.optimizer.enable_round_robin_repartition`.
    pub enable_round_robin_repartition: Option<bool>,
    /// `datafusion.optimizer.enable_dynamic_filter_pushdown`.
    pub enable_dynamic_filter_pushdown: Option<bool>,
    /// Any other DataFusion setting, by its full key.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// `[profile.writer]`.
    #[serde(default)]
    pub writer: WriterProfile,
}

/// `[profile.writer]`: parquet options and DataFusion's output parallelism knobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterProfile {
    /// Parquet compression, like `"zstd(3)"`.
    pub compression: Option<String>,
    /// Maximum rows per row group.
    pub max_row_group_size: Option<u64>,
    /// Parquet data page size limit, in bytes (best effort).
    pub data_page_size: Option<u64>,
    /// Dictionary encoding.
    pub dictionary_enabled: Option<bool>,
    /// Statistics: `none`, `chunk` or `page`.
    pub statistics_enabled: Option<String>,
    /// Columns that get a bloom filter.
    #[serde(default)]
    pub bloom_filter_columns: Vec<String>,
    /// The `created_by` written into the parquet footer.
    pub created_by: Option<String>,
    /// `datafusion.execution.minimum_parallel_output_files`.
    pub minimum_parallel_output_files: Option<u64>,
    /// `datafusion.execution.soft_max_rows_per_output_file`.
    pub soft_max_rows_per_output_file: Option<u64>,
    /// `datafusion.execution.parquet.maximum_parallel_row_group_writers`.
    pub maximum_parallel_row_group_writers: Option<u64>,
    /// `datafusion.execution.parquet.maximum_buffered_record_batches_per_stream`.
    pub maximum_buffered_record_batches_per_stream: Option<u64>,
    /// `datafusion.execution.parquet.allow_single_file_parallelism`.
    pub allow_single_file_parallelism: Option<bool>,
}

/// `[sources.<name>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// A file, a directory or a glob, relative to the pipeline directory.
    pub path: String,
    /// The file format.
    pub format: SourceFormat,
}

/// The formats a source can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header row.
    Csv,
    /// Newline-delimited JSON.
    Json,
    /// Arrow IPC files.
    Arrow,
}

/// `[views.<name>]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewSpec {
    /// `lazy` (the default) or `parquet`.
    #[serde(default)]
    pub materialize: Materialize,
    /// Removed: it repartitioned the view's own output, which no reader ever saw. Kept
    /// only to refuse it with a message that says what to use instead.
    #[serde(default, skip_serializing)]
    pub repartition_by: Option<toml::Value>,
    /// `strict` or `fallback` for this view, over `[profile] substrait`.
    pub substrait: Option<dfpipe_artifacts::SubstraitMode>,
    /// Hive-style partition columns of the output.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// Output order, like `"revenue DESC"`.
    #[serde(default)]
    pub sort_by: Vec<String>,
    /// Values bound to `$name` placeholders.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
}

/// How a view is materialized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Materialize {
    /// Never written: readers plan it inline.
    #[default]
    Lazy,
    /// Written as parquet to `<output_dir>/<view>/`.
    Parquet,
}

impl PipelineSpec {
    /// Reads and parses `<dir>/dfpipe.toml`.
    pub fn load(dir: &Path) -> Result<Self> {
        let file = dir.join(SPEC_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| EngineError::Spec {
            file: file.clone(),
            message: format!("cannot read it ({e}); is {} a dfpipe pipeline directory?", dir.display()),
        })?;
        Self::parse(&file, &text)
    }

    /// Parses the text of a `dfpipe.toml` read from `file`.
    pub fn parse(file: &Path, text: &str) -> Result<Self> {
        let mut spec: Self =
            toml::from_str(text).map_err(|e| EngineError::Spec { file: file.to_owned(), message: e.to_string() })?;
        for (relation, contract) in &mut spec.contracts {
            contract.relation.clone_from(relation);
        }
        if let Some(url) = spec.openlineage.as_ref().and_then(|o| o.url.as_ref())
            && let Err(error) = dfpipe_openlineage::Target::parse(url.get_ref())
        {
            let line = text.get(..url.span().start).map_or(1, |before| before.lines().count().max(1));
            return Err(EngineError::Spec {
                file: file.to_owned(),
                message: format!("line {line}: [openlineage] url: {error}"),
            });
        }
        if let Some(view) = spec.views.iter().find_map(|(name, v)| v.repartition_by.as_ref().map(|_| name)) {
            return Err(EngineError::Spec {
                file: file.to_owned(),
                message: format!(
                    "[views.{view}] repartition_by is no longer supported: it repartitioned the view's own output, \
                     which its readers never saw. Remove it; use `partition_by` for hive partitions on disk \
                     (DataFusion repartitions a reader's joins and aggregates by itself)"
                ),
            });
        }
        Ok(spec)
    }
}
