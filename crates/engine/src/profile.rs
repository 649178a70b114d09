//! The runtime profile turned into DataFusion's `SessionConfig` and `RuntimeEnv`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::spec::Profile;
use crate::{EngineError, Result};

impl Profile {
    /// Every DataFusion setting the profile sets explicitly, by full key. These are part
    /// of every view's fingerprint.
    pub fn settings(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                out.insert(key.to_owned(), value);
            }
        };
        let s = |v: Option<usize>| v.map(|v| v.to_string());
        let b = |v: Option<bool>| v.map(|v| v.to_string());
        let u = |v: Option<u64>| v.map(|v| v.to_string());
        put("datafusion.execution.target_partitions", s(self.target_partitions));
        put("datafusion.execution.batch_size", s(self.batch_size));
        put("datafusion.optimizer.repartition_joins", b(self.repartition_joins));
        put("datafusion.optimizer.repartition_aggregations", b(self.repartition_aggregations));
        put("datafusion.optimizer.prefer_hash_join", b(self.prefer_hash_join));
        put("datafusion.optimizer.hash_join_single_partition_threshold", u(self.hash_join_single_partition_threshold));
        put("datafusion.optimizer.enable_round_robin_repartition", b(self.enable_round_robin_repartition));
        put("datafusion.optimizer.enable_dynamic_filter_pushdown", b(self.enable_dynamic_filter_pushdown));
        let w = &self.writer;
        put("datafusion.execution.minimum_parallel_output_files", u(w.minimum_parallel_output_files));
        put("datafusion.execution.soft_max_rows_per_output_file", u(w.soft_max_rows_per_output_file));
        put("datafusion.execution.parquet.maximum_parallel_row_group_writers", u(w.maximum_parallel_row_group_writers));
        put(
            "datafusion.execution.parquet.maximum_buffered_record_batches_per_stream",
            u(w.maximum_buffered_record_batches_per_stream),
        );
        put("datafusion.execution.parquet.allow_single_file_parallelism", b(w.allow_single_file_parallelism));
        for (key, value) in &self.settings {
            out.insert(key.clone(), value.clone());
        }
        out
    }

    /// Parquet options for materialized outputs, as DataFusion `format.*` keys.
    pub fn parquet_options(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(c) = &self.writer.compression {
            out.insert("compression".to_owned(), c.clone());
        }
        let w = &self.writer;
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                out.insert(key.to_owned(), value);
            }
        };
        put("max_row_group_size", w.max_row_group_size.map(|n| n.to_string()));
        put("data_pagesize_limit", w.data_page_size.map(|n| n.to_string()));
        put("dictionary_enabled", w.dictionary_enabled.map(|b| b.to_string()));
        put("statistics_enabled", w.statistics_enabled.clone());
        put("created_by", w.created_by.clone());
        for column in &w.bloom_filter_columns {
            out.insert(format!("bloom_filter_enabled::{column}"), "true".to_owned());
        }
        out
    }

    /// The output parallelism knobs of `[profile.writer]`, for the writer's report.
    pub fn writer_knobs(&self) -> dfpipe_writer::WriterKnobs {
        let w = &self.writer;
        let n = |v: Option<u64>| v.map(|v| v as usize);
        dfpipe_writer::WriterKnobs {
            minimum_parallel_output_files: n(w.minimum_parallel_output_files),
            soft_max_rows_per_output_file: n(w.soft_max_rows_per_output_file),
            maximum_parallel_row_group_writers: n(w.maximum_parallel_row_group_writers),
            maximum_buffered_record_batches_per_stream: n(w.maximum_buffered_record_batches_per_stream),
            allow_single_file_parallelism: w.allow_single_file_parallelism,
        }
    }

    /// A `SessionContext` configured by this profile, with `information_schema` enabled.
    /// Errors name `file`, the `dfpipe.toml` the profile came from.
    pub fn session(&self, file: &Path) -> Result<SessionContext> {
        let spec_error = |message: String| EngineError::Spec { file: file.to_owned(), message };
        let mut config = SessionConfig::new().with_information_schema(true);
        for (key, value) in self.settings() {
            config
                .options_mut()
                .set(&key, &value)
                .map_err(|e| spec_error(format!("[profile] setting `{key} = {value}`: {}", e.strip_backtrace())))?;
        }
        // No cached file listings: a run replaces the files of a materialized view, and its
        // readers, planned again after that commit, must list the new ones.
        let mut runtime =
            RuntimeEnvBuilder::new().with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0));
        if let Some(limit) = &self.memory_limit {
            let bytes = parse_size(limit).ok_or_else(|| {
                spec_error(format!("[profile] memory_limit `{limit}` is not a size like \"4GiB\" or \"512MB\""))
            })?;
            runtime = runtime.with_memory_limit(bytes, 1.0);
        }
        let runtime = runtime.build().map_err(|e| spec_error(e.strip_backtrace()))?;
        Ok(SessionContext::new_with_config_rt(config, Arc::new(runtime)))
    }
}

/// Parses sizes like `4GiB`, `512MB`, `1024`.
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * scale) as usize)
}

#[cfg(test)]
mod tests {
    use super::parse_size;
    use crate::spec::{Profile, WriterProfile};

    #[test]
    fn the_writer_profile_becomes_parquet_options_and_knobs() {
        let profile = Profile {
            writer: WriterProfile {
                compression: Some("zstd(3)".to_owned()),
                data_page_size: Some(65536),
                bloom_filter_columns: vec!["o_orderkey".to_owned()],
                minimum_parallel_output_files: Some(2),
                allow_single_file_parallelism: Some(false),
                ..WriterProfile::default()
            },
            ..Profile::default()
        };
        let options = profile.parquet_options();
        assert_eq!(options["compression"], "zstd(3)");
        assert_eq!(options["data_pagesize_limit"], "65536");
        assert_eq!(options["bloom_filter_enabled::o_orderkey"], "true");
        let knobs = profile.writer_knobs();
        assert_eq!(knobs.minimum_parallel_output_files, Some(2));
        assert_eq!(knobs.allow_single_file_parallelism, Some(false));
        assert_eq!(knobs.maximum_parallel_row_group_writers, None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("512MB"), Some(512_000_000));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("lots"), None);
    }
}
