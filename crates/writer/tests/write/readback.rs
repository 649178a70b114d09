//! Outputs read back through `register_output`: rows, hive partitions, CSV and JSON, and a
//! sort order that spares an `ORDER BY` its sort.

use datafusion::physical_plan::displayable;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use dfpipe_writer::{OutputFormat, SortColumn, WriteSpec, WriterKnobs, register_output, write};

use crate::common::{context, plan, rows, spec};

async fn physical(ctx: &SessionContext, sql: &str) -> String {
    displayable(plan(ctx, sql).await.as_ref()).indent(true).to_string()
}

#[tokio::test]
async fn a_sorted_output_reads_back_whole_and_in_order_without_a_sort() {
    let dir = tempfile::tempdir().unwrap();
    for target in [dir.path().join("t").to_string_lossy().into_owned(), "memory://bucket/out/t".to_owned()] {
        let ctx = context(40);
        let knobs = WriterKnobs { soft_max_rows_per_output_file: Some(1000), ..WriterKnobs::default() };
        let sorted =
            WriteSpec { sort_by: vec![SortColumn::asc("k")], knobs, ..spec(&target, &[("max_row_group_size", "500")]) };
        let report = write(plan(&ctx, "select * from t order by k").await, &ctx.state(), &sorted)
            .await
            .unwrap()
            .commit()
            .await
            .unwrap();
        assert_eq!(report.files.len(), 4, "several sorted files, one after another");
        assert_eq!(report.knobs.minimum_parallel_output_files, Some(1));
        register_output(&ctx, "back", &report).unwrap();
        assert_eq!(rows(&ctx, "select * from back order by k").await, rows(&ctx, "select * from t order by k").await);

        let sorted = physical(&ctx, "select * from back order by k").await;
        assert!(!sorted.contains("SortExec"), "{target}: WITH ORDER needs no sort:\n{sorted}");
        assert!(sorted.contains("SortPreservingMergeExec"), "{sorted}");
        // DataFusion also reads the order from the parquet `sorting_columns` the writer set.
        if !target.starts_with("memory://") {
            ctx.register_parquet("plain", &target, ParquetReadOptions::default()).await.unwrap();
            let plain = physical(&ctx, "select * from plain order by k").await;
            assert!(!plain.contains("SortExec"), "{plain}");
        }
        // Control: the same sorted rows written without a declared order do need a sort.
        let unordered =
            write(plan(&ctx, "select * from t order by k").await, &ctx.state(), &spec(&format!("{target}-u"), &[]))
                .await
                .unwrap()
                .commit()
                .await
                .unwrap();
        register_output(&ctx, "unordered", &unordered).unwrap();
        let unsorted = physical(&ctx, "select * from unordered order by k").await;
        assert!(unsorted.contains("SortExec"), "{unsorted}");
    }
}

#[tokio::test]
async fn a_partitioned_output_is_laid_out_hive_style_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    for target in [dir.path().join("t").to_string_lossy().into_owned(), "memory://bucket/out/t".to_owned()] {
        let ctx = context(30);
        let spec = WriteSpec { partition_by: vec!["g".to_owned()], ..spec(&target, &[]) };
        let report =
            write(plan(&ctx, "select * from t").await, &ctx.state(), &spec).await.unwrap().commit().await.unwrap();
        assert_eq!(report.rows, 3000);
        for file in &report.files {
            let top = file.path.split('/').next().unwrap();
            assert!(["g=0", "g=1", "g=2"].contains(&top), "{}", file.path);
        }
        register_output(&ctx, "back", &report).unwrap();
        let back = rows(&ctx, "select k, v, g from back order by k").await;
        assert_eq!(back, rows(&ctx, "select * from t order by k").await, "{target}");
        let per_group = rows(&ctx, "select count(*) as n from back where g = 1").await;
        assert_eq!(format!("{:?}", per_group.column(0)).matches("1000").count(), 1, "{per_group:?}");
    }
}

#[tokio::test]
async fn csv_and_json_go_through_the_same_path() {
    let dir = tempfile::tempdir().unwrap();
    for (format, options, extension) in [
        (OutputFormat::Csv, vec![("delimiter", "|")], ".csv"),
        (OutputFormat::Csv, vec![("has_header", "false")], ".csv"),
        (OutputFormat::Json, vec![], ".json"),
    ] {
        let ctx = context(10);
        let target = dir.path().join(format!("{}-{}", format.name(), options.len())).to_string_lossy().into_owned();
        let spec = WriteSpec { format, ..spec(&target, &options) };
        let report =
            write(plan(&ctx, "select * from t").await, &ctx.state(), &spec).await.unwrap().commit().await.unwrap();
        assert_eq!(report.rows, 1000);
        assert!(report.files.iter().all(|f| f.path.ends_with(extension)), "{:?}", report.files);
        if let [(key, value)] = options[..] {
            assert_eq!(report.options[&format!("format.{key}")], if key == "delimiter" { "124" } else { value });
            let first = std::fs::read_to_string(std::path::Path::new(&target).join(&report.files[0].path)).unwrap();
            assert_eq!(first.starts_with('k'), key != "has_header", "{first:.40}");
        }
        register_output(&ctx, "back", &report).unwrap();
        assert_eq!(rows(&ctx, "select * from back order by k").await, rows(&ctx, "select * from t order by k").await);
    }
}
