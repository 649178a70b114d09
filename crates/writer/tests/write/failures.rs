//! Commits, failures injected mid-write, cancellation, crash leftovers and bad specs, on a
//! local directory and on `memory://`.

use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use datafusion::prelude::SessionContext;
use dfpipe_writer::{SortColumn, WriteError, clean_staging, register_output, write};
use futures::TryStreamExt;

use crate::common::{context, count, plan, register_faulty, spec};

fn memory_store(ctx: &SessionContext) -> Arc<dyn ObjectStore> {
    ctx.runtime_env().object_store(ObjectStoreUrl::parse("memory://bucket").unwrap()).unwrap()
}

/// The files below `dir` (a local path or a `memory://bucket/` URL), relative to it, sorted.
async fn files(ctx: &SessionContext, dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(prefix) = dir.strip_prefix("memory://bucket/") {
        let prefix = ObjectPath::from(prefix);
        let metas: Vec<_> = memory_store(ctx).list(Some(&prefix)).try_collect().await.unwrap();
        for meta in metas {
            let parts: Vec<String> =
                meta.location.prefix_match(&prefix).unwrap().map(|p| p.as_ref().to_owned()).collect();
            out.push(parts.join("/"));
        }
    } else {
        let mut pending = vec![std::path::PathBuf::from(dir)];
        while let Some(current) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&current) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    out.push(path.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    out.sort();
    out
}

/// Two local output directories' worth of scenarios share one body.
/// Writes all of `t` to `target` and commits it: the previous output of the tests.
async fn commit_all(ctx: &SessionContext, target: &str) -> dfpipe_writer::WriteReport {
    write(plan(ctx, "select * from t").await, &ctx.state(), &spec(target, &[])).await.unwrap().commit().await.unwrap()
}

fn out_dirs(local: &tempfile::TempDir) -> [String; 2] {
    [local.path().join("out").to_string_lossy().into_owned(), "memory://bucket/out".to_owned()]
}

#[tokio::test]
async fn a_write_is_invisible_until_committed_then_replaces_the_output_whole() {
    let dir = tempfile::tempdir().unwrap();
    for out in out_dirs(&dir) {
        let ctx = context(6);
        let target = format!("{out}/t");
        let first =
            write(plan(&ctx, "select * from t where k < 300").await, &ctx.state(), &spec(&target, &[])).await.unwrap();
        assert!(files(&ctx, &target).await.is_empty(), "{out}: nothing is visible before the commit");
        assert_eq!(first.report().rows, 300);
        first.commit().await.unwrap();
        let second = write(plan(&ctx, "select * from t").await, &ctx.state(), &spec(&target, &[])).await.unwrap();
        let report = second.commit().await.unwrap();
        assert_eq!(report.rows, 600);
        let listed = files(&ctx, &target).await;
        let reported: Vec<String> = report.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(listed, reported, "{out}: exactly the new files, none of the old");
        register_output(&ctx, "back", &report).unwrap();
        assert_eq!(count(&ctx, "select * from back").await, 600, "{out}");
        assert!(files(&ctx, &format!("{out}/.staging")).await.is_empty(), "{out}: staging is empty");
    }
}

#[tokio::test]
async fn a_failure_mid_write_leaves_the_previous_output_whole_and_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    for out in out_dirs(&dir) {
        let ctx = context(4);
        let target = format!("{out}/t");
        let previous = commit_all(&ctx, &target).await;
        let before = files(&ctx, &target).await;

        // 30 batches reach the sink (and its files) before the source fails.
        register_faulty(&ctx, 30, false);
        let error =
            write(plan(&ctx, "select * from faulty").await, &ctx.state(), &spec(&target, &[])).await.unwrap_err();
        assert!(matches!(error, WriteError::DataFusion { .. }), "{out}: {error}");
        assert!(error.to_string().contains("injected failure after 30 batches"), "{error}");

        assert_eq!(files(&ctx, &target).await, before, "{out}: the previous output is untouched");
        register_output(&ctx, "back", &previous).unwrap();
        assert_eq!(count(&ctx, "select * from back").await, 400, "{out}: and readable");
        assert!(files(&ctx, &format!("{out}/.staging")).await.is_empty(), "{out}: no partial file is left");
    }
}

#[tokio::test]
async fn a_cancelled_write_leaves_the_previous_output_whole() {
    let dir = tempfile::tempdir().unwrap();
    for out in out_dirs(&dir) {
        let ctx = context(4);
        let target = format!("{out}/t");
        commit_all(&ctx, &target).await;
        let before = files(&ctx, &target).await;
        register_faulty(&ctx, 10, true);
        let faulty = plan(&ctx, "select * from faulty").await;
        let state = ctx.state();
        let stalled =
            tokio::time::timeout(Duration::from_millis(300), write(faulty, &state, &spec(&target, &[]))).await;
        assert!(stalled.is_err(), "{out}: the write stalls and is dropped");
        assert_eq!(files(&ctx, &target).await, before, "{out}");
        // Whatever the dropped write left in staging is found and removed by the next run.
        clean_staging(&ctx.runtime_env(), &out).await.unwrap();
        assert!(files(&ctx, &format!("{out}/.staging")).await.is_empty(), "{out}");
        assert_eq!(files(&ctx, &target).await, before, "{out}");
    }
}

#[tokio::test]
async fn leftovers_of_a_crashed_write_are_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    for out in out_dirs(&dir) {
        let ctx = context(2);
        let target = format!("{out}/t");
        commit_all(&ctx, &target).await;
        let before = files(&ctx, &target).await;
        put(&ctx, &format!("{out}/.staging/t-123-456/part-0.parquet"), b"half a file").await;
        put(&ctx, &format!("{out}/.staging/u-123-456/a/b.parquet"), b"half a file").await;
        assert_eq!(clean_staging(&ctx.runtime_env(), &out).await.unwrap(), 2, "{out}");
        assert!(files(&ctx, &format!("{out}/.staging")).await.is_empty(), "{out}");
        assert_eq!(files(&ctx, &target).await, before, "{out}");
        assert_eq!(clean_staging(&ctx.runtime_env(), &out).await.unwrap(), 0, "{out}");
    }
}

#[tokio::test]
async fn a_commit_that_crashed_half_way_is_rolled_back_to_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    for out in out_dirs(&dir) {
        let ctx = context(2);
        let target = format!("{out}/t");
        let report = commit_all(&ctx, &target).await;
        let before = files(&ctx, &target).await;
        let retired = format!("{out}/.staging/t.retired");
        if out.starts_with("memory://") {
            // The previous output was copied aside and marked complete, then the new output
            // was half copied into place when the process died.
            let store = memory_store(&ctx);
            for file in &before {
                let from = ObjectPath::from(format!("out/t/{file}"));
                store.copy(&from, &ObjectPath::from(format!("out/.staging/t.retired/{file}"))).await.unwrap();
                store.delete(&from).await.unwrap();
            }
            put(&ctx, &format!("{retired}/_dfpipe_retired_complete"), b"").await;
            put(&ctx, &format!("{target}/new-half.parquet"), b"half").await;
        } else {
            // The previous output was renamed aside; the new one never arrived.
            std::fs::rename(&target, &retired).unwrap();
        }
        put(&ctx, &format!("{out}/.staging/t-1-2/new.parquet"), b"new").await;
        assert_eq!(clean_staging(&ctx.runtime_env(), &out).await.unwrap(), 2, "{out}");
        assert_eq!(files(&ctx, &target).await, before, "{out}: the previous output is back");
        register_output(&ctx, "back", &report).unwrap();
        assert_eq!(count(&ctx, "select * from back").await, 200, "{out}");
        assert!(files(&ctx, &format!("{out}/.staging")).await.is_empty(), "{out}");
    }
}

#[tokio::test]
async fn an_incomplete_retired_copy_is_discarded_and_the_output_kept() {
    // A crash while the previous output was still being copied aside: the target is whole.
    let ctx = context(2);
    let target = "memory://bucket/out/t";
    write(plan(&ctx, "select * from t").await, &ctx.state(), &spec(target, &[])).await.unwrap().commit().await.unwrap();
    let before = files(&ctx, target).await;
    put(&ctx, "memory://bucket/out/.staging/t.retired/some.parquet", b"partial copy").await;
    assert_eq!(clean_staging(&ctx.runtime_env(), "memory://bucket/out").await.unwrap(), 1);
    assert_eq!(files(&ctx, target).await, before);
    assert!(files(&ctx, "memory://bucket/out/.staging").await.is_empty());
}

async fn put(ctx: &SessionContext, path: &str, bytes: &'static [u8]) {
    if let Some(key) = path.strip_prefix("memory://bucket/") {
        memory_store(ctx).put(&ObjectPath::from(key), PutPayload::from_static(bytes)).await.unwrap();
    } else {
        let path = std::path::Path::new(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[tokio::test]
async fn bad_specs_are_clear_errors_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    for out in out_dirs(&dir) {
        let ctx = context(2);
        let target = format!("{out}/t");
        let cases: Vec<(dfpipe_writer::WriteSpec, &str, &str)> = vec![
            (spec(&target, &[("compression", "zip(9)")]), "select * from t", "zip"),
            (spec(&target, &[("compression", "zstd(99)")]), "select * from t", "zstd"),
            (spec(&target, &[("no_such_option", "1")]), "select * from t", "no_such_option"),
            (spec(&target, &[("bloom_filter_enabled::nope", "true")]), "select * from t", "`nope`"),
            (
                dfpipe_writer::WriteSpec { partition_by: vec!["nope".to_owned()], ..spec(&target, &[]) },
                "select * from t",
                "partition column `nope` is not in the output schema",
            ),
            (
                dfpipe_writer::WriteSpec { sort_by: vec![SortColumn::asc("nope")], ..spec(&target, &[]) },
                "select * from t",
                "sort column `nope`",
            ),
            (
                dfpipe_writer::WriteSpec { sort_by: vec![SortColumn::desc("k")], ..spec(&target, &[]) },
                "select * from t order by k",
                "does not produce the declared sort order [k DESC NULLS FIRST]",
            ),
            (
                dfpipe_writer::WriteSpec {
                    knobs: dfpipe_writer::WriterKnobs { minimum_parallel_output_files: Some(0), ..Default::default() },
                    ..spec(&target, &[])
                },
                "select * from t",
                "minimum_parallel_output_files",
            ),
            (spec(&format!("{}/out/t", blocker.display()), &[]), "select * from t", "not writable"),
            (spec("s3://nowhere/out/t", &[]), "select * from t", "no object store is registered for `s3://nowhere/`"),
            (spec("", &[]), "select * from t", "empty"),
        ];
        for (bad, sql, expected) in cases {
            let error = write(plan(&ctx, sql).await, &ctx.state(), &bad).await.unwrap_err();
            assert!(matches!(error, WriteError::Spec { .. }), "{out}: {error}");
            assert!(error.to_string().contains(expected), "{out}: `{error}` should mention `{expected}`");
        }
        assert!(files(&ctx, &out).await.is_empty(), "{out}: nothing was written");
    }
}
