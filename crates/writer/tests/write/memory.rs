//! Writes stream: an output several times larger than the session's memory limit is written
//! whole, under that limit.

use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use dfpipe_writer::write;

use crate::common::{plan, spec};

const LIMIT: usize = 24 << 20;

#[tokio::test]
async fn an_output_several_times_the_memory_limit_is_written_under_it() {
    let runtime = RuntimeEnvBuilder::new().with_memory_limit(LIMIT, 1.0).build_arc().unwrap();
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(2), runtime);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("big").to_string_lossy().into_owned();
    // 4M generated rows of a key and a 32-character hash: ~175 MB of parquet, uncompressed.
    let sql = "select value as k, md5(cast(value as varchar)) as h from generate_series(1, 4000000)";
    let options = [("compression", "uncompressed"), ("dictionary_enabled", "false"), ("max_row_group_size", "65536")];
    let staged = write(plan(&ctx, sql).await, &ctx.state(), &spec(&target, &options)).await.unwrap();
    let report = staged.commit().await.unwrap();
    assert_eq!(report.rows, 4_000_000);
    assert!(report.bytes > 6 * LIMIT as u64, "{} bytes written under a {LIMIT}-byte limit", report.bytes);
    assert_eq!(ctx.runtime_env().memory_pool.reserved(), 0, "every reservation is released");
}

#[tokio::test]
async fn the_limit_is_enforced_so_the_streaming_test_can_fail() {
    // The same kind of write with a row group larger than the limit: the writer's own
    // reservation exceeds it, and DataFusion refuses.
    let runtime = RuntimeEnvBuilder::new().with_memory_limit(LIMIT, 1.0).build_arc().unwrap();
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), Arc::clone(&runtime));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("big").to_string_lossy().into_owned();
    let sql = "select value as k, md5(cast(value as varchar)) as h from generate_series(1, 1500000)";
    let options = [("compression", "uncompressed"), ("dictionary_enabled", "false"), ("max_row_group_size", "2000000")];
    let error = write(plan(&ctx, sql).await, &ctx.state(), &spec(&target, &options)).await.unwrap_err();
    assert!(error.to_string().contains("Resources exhausted"), "{error}");
}
