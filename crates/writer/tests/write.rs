//! Parquet writes through the public API: commit, failure injection, bad specs, leftovers.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use dfpipe_writer::{WriteError, WriteSpec, clean_staging, write_parquet};
use parquet::file::reader::{FileReader, SerializedFileReader};

/// A context with table `t(k, v)` of `batches` batches of 100 rows; `v` is numeric text
/// except in the last batch when `poison_last` is set.
fn context(batches: usize, poison_last: bool) -> SessionContext {
    let schema =
        Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new("v", DataType::Utf8, false)]));
    let data: Vec<RecordBatch> = (0..batches)
        .map(|b| {
            let keys: Vec<i64> = (0..100).map(|i| (b * 100 + i) as i64).collect();
            let values: Vec<String> = keys
                .iter()
                .map(|k| if poison_last && b == batches - 1 { format!("x{k}") } else { k.to_string() })
                .collect();
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(Int64Array::from(keys)), Arc::new(StringArray::from(values))],
            )
            .unwrap()
        })
        .collect();
    let ctx = SessionContext::new();
    ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![data]).unwrap())).unwrap();
    ctx
}

async fn plan(ctx: &SessionContext, sql: &str) -> Arc<dyn ExecutionPlan> {
    ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap()
}

fn spec(target: &Path, options: &[(&str, &str)]) -> WriteSpec {
    WriteSpec {
        target: target.to_owned(),
        parquet: options.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        partition_by: Vec::new(),
    }
}

fn parquet_rows(dir: &Path) -> (i64, Vec<String>) {
    let mut rows = 0;
    let mut codecs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let reader = SerializedFileReader::new(File::open(entry.unwrap().path()).unwrap()).unwrap();
        rows += reader.metadata().file_metadata().num_rows();
        for rg in reader.metadata().row_groups() {
            codecs.push(format!("{:?}", rg.column(0).compression()));
        }
    }
    (rows, codecs)
}

#[tokio::test]
async fn a_write_commits_whole_with_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out").join("t");
    let ctx = context(5, false);
    let staged = write_parquet(
        plan(&ctx, "select k, cast(v as bigint) as n from t").await,
        &ctx.state(),
        &spec(&target, &[("compression", "zstd(3)")]),
    )
    .await
    .unwrap();
    assert!(!target.exists(), "nothing is visible before the commit");
    let report = staged.commit().unwrap();
    assert_eq!(report.rows, 500);
    assert_eq!(report.options["format.compression"], "zstd(3)");
    assert!(report.bytes > 0 && !report.files.is_empty());
    let (rows, codecs) = parquet_rows(&target);
    assert_eq!(rows, 500);
    assert!(codecs.iter().all(|c| c.starts_with("ZSTD")), "{codecs:?}");
}

#[tokio::test]
async fn a_failing_write_leaves_the_previous_output_intact() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out").join("t");
    let good = context(3, false);
    let sql = "select k, cast(v as bigint) as n from t";
    write_parquet(plan(&good, sql).await, &good.state(), &spec(&target, &[])).await.unwrap().commit().unwrap();
    let before = parquet_rows(&target).0;

    // The last of 20 batches fails to cast, after earlier batches were written.
    let bad = context(20, true);
    let error = write_parquet(plan(&bad, sql).await, &bad.state(), &spec(&target, &[])).await.unwrap_err();
    assert!(matches!(error, WriteError::DataFusion { .. }), "{error}");
    assert_eq!(parquet_rows(&target).0, before);
    let staging = dir.path().join("out").join(".staging");
    assert_eq!(std::fs::read_dir(staging).unwrap().count(), 0, "no partial file is left behind");
}

#[tokio::test]
async fn bad_specs_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out").join("t");
    let ctx = context(1, false);
    let error =
        write_parquet(plan(&ctx, "select * from t").await, &ctx.state(), &spec(&target, &[("compression", "zip(9)")]))
            .await
            .unwrap_err();
    assert!(matches!(error, WriteError::Spec { .. }) && error.to_string().contains("zip"), "{error}");
    let mut partitioned = spec(&target, &[]);
    partitioned.partition_by = vec!["nope".to_owned()];
    let error = write_parquet(plan(&ctx, "select * from t").await, &ctx.state(), &partitioned).await.unwrap_err();
    assert!(error.to_string().contains("partition column `nope`"), "{error}");
    assert!(
        !dir.path().join("out").join(".staging").exists()
            || std::fs::read_dir(dir.path().join("out").join(".staging")).unwrap().count() == 0
    );
    assert!(!target.exists());
}

#[test]
fn crash_leftovers_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let leftover = dir.path().join(".staging").join("t-123-456");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("part-0.parquet"), b"half a file").unwrap();
    assert_eq!(clean_staging(dir.path()).unwrap(), 1);
    assert!(!leftover.exists());
    assert_eq!(clean_staging(dir.path()).unwrap(), 0);
}

#[tokio::test]
async fn a_commit_interrupted_between_its_renames_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let target = out.join("t");
    let ctx = context(2, false);
    write_parquet(plan(&ctx, "select * from t").await, &ctx.state(), &spec(&target, &[]))
        .await
        .unwrap()
        .commit()
        .unwrap();
    // What a crash right after the first rename of the next commit leaves behind.
    std::fs::rename(&target, out.join(".staging").join("t.retired")).unwrap();
    std::fs::create_dir_all(out.join(".staging").join("t-1-2")).unwrap();
    assert_eq!(clean_staging(&out).unwrap(), 2);
    assert_eq!(parquet_rows(&target).0, 200, "the previous output is back");
    assert_eq!(std::fs::read_dir(out.join(".staging")).unwrap().count(), 0);
}
