//! Every parquet option, as the `parquet` crate reads it back from the written files; the
//! output knobs; the report's serialization.

use std::fs::File;
use std::path::Path;

use dfpipe_writer::{OutputFormat, SortColumn, WriteReport, WriteSpec, WriterKnobs, write};
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::{ParquetMetaData, SortingColumn};
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};

use crate::common::{context, plan, spec};

/// The metadata of every parquet file below `dir`, with page indexes.
fn metadata(dir: &Path, report: &WriteReport) -> Vec<ParquetMetaData> {
    report
        .files
        .iter()
        .map(|f| {
            let file = File::open(dir.join(&f.path)).unwrap();
            let options = ReadOptionsBuilder::new().with_page_index().build();
            SerializedFileReader::new_with_options(file, options).unwrap().metadata().clone()
        })
        .collect()
}

async fn write_with(options: &[(&str, &str)], knobs: WriterKnobs, sql: &str) -> (tempfile::TempDir, WriteReport) {
    write_sorted(options, knobs, sql, vec![SortColumn::asc("k")]).await
}

async fn write_sorted(
    options: &[(&str, &str)],
    knobs: WriterKnobs,
    sql: &str,
    sort_by: Vec<SortColumn>,
) -> (tempfile::TempDir, WriteReport) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(200);
    let target = dir.path().join("out").join("t").to_string_lossy().into_owned();
    let spec = WriteSpec { knobs, sort_by, ..spec(&target, options) };
    let report = write(plan(&ctx, sql).await, &ctx.state(), &spec).await.unwrap().commit().await.unwrap();
    (dir, report)
}

fn one_file() -> WriterKnobs {
    WriterKnobs { minimum_parallel_output_files: Some(1), ..WriterKnobs::default() }
}

#[tokio::test]
async fn every_parquet_option_is_visible_in_the_written_file() {
    let options = [
        ("compression", "zstd(7)"),
        ("max_row_group_size", "5000"),
        ("data_pagesize_limit", "1024"),
        ("dictionary_enabled", "false"),
        ("statistics_enabled", "chunk"),
        ("bloom_filter_enabled::v", "true"),
        ("created_by", "dfpipe writer test"),
    ];
    let (dir, report) = write_with(&options, one_file(), "select * from t order by k").await;
    assert_eq!(report.rows, 20_000);
    assert_eq!(report.options["format.compression"], "zstd(7)", "the level is recorded, the file has only the codec");
    assert_eq!(report.options["format.created_by"], "dfpipe writer test");
    let files = metadata(&dir.path().join("out").join("t"), &report);
    assert_eq!(files.len(), 1);
    let meta = &files[0];
    assert_eq!(meta.file_metadata().created_by(), Some("dfpipe writer test"));
    assert_eq!(meta.file_metadata().num_rows(), 20_000);
    assert_eq!(meta.num_row_groups(), 4, "row groups of at most 5000 rows");
    let offsets = meta.offset_index().expect("an offset index");
    for (rg_index, rg) in meta.row_groups().iter().enumerate() {
        assert_eq!(rg.num_rows(), 5000);
        assert_eq!(
            rg.sorting_columns().map(Vec::as_slice),
            Some(&[SortingColumn { column_idx: 0, descending: false, nulls_first: false }][..]),
            "the sort order is in the file"
        );
        for (i, column) in rg.columns().iter().enumerate() {
            let name = column.column_descr().name();
            assert!(matches!(column.compression(), Compression::ZSTD(_)), "{name}: {:?}", column.compression());
            assert!(column.dictionary_page_offset().is_none(), "{name}: no dictionary");
            assert!(!column.encodings().any(|e| e == Encoding::RLE_DICTIONARY), "{name}: no dictionary encoding");
            assert!(column.statistics().is_some(), "{name}: chunk statistics");
            assert_eq!(column.bloom_filter_offset().is_some(), name == "v", "{name}: bloom filter only on v");
            let pages = offsets[rg_index][i].page_locations().len();
            assert!(pages >= 10, "{name}: 1 KiB data pages make many pages per chunk, got {pages}");
        }
    }
    // Chunk statistics only: no page-level column index.
    assert!(meta.column_index().is_none_or(|rgs| {
        rgs.iter().flatten().all(|c| matches!(c, parquet::file::page_index::column_index::ColumnIndexMetaData::NONE))
    }));
}

#[tokio::test]
async fn the_defaults_differ_so_the_option_checks_can_fail() {
    let (dir, report) = write_with(&[("statistics_enabled", "none")], one_file(), "select * from t order by k").await;
    let meta = &metadata(&dir.path().join("out").join("t"), &report)[0];
    assert_eq!(meta.num_row_groups(), 1, "one row group by default");
    let created_by = meta.file_metadata().created_by().unwrap_or_default();
    assert!(created_by.starts_with("datafusion"), "{created_by}");
    let offsets = meta.offset_index().expect("an offset index");
    for (i, column) in meta.row_group(0).columns().iter().enumerate() {
        let name = column.column_descr().name();
        assert!(column.statistics().is_none(), "{name}: statistics disabled");
        assert!(column.bloom_filter_offset().is_none(), "{name}");
        assert!(offsets[0][i].page_locations().len() < 10, "{name}");
    }
    let v = meta.row_group(0).column(1);
    assert!(v.dictionary_page_offset().is_some(), "dictionary on by default");
}

#[tokio::test]
async fn the_output_knobs_shape_the_files_and_are_reported() {
    let knobs = WriterKnobs {
        minimum_parallel_output_files: Some(3),
        soft_max_rows_per_output_file: Some(2_500),
        maximum_parallel_row_group_writers: Some(2),
        maximum_buffered_record_batches_per_stream: Some(4),
        allow_single_file_parallelism: Some(false),
    };
    let (_dir, report) = write_with(&[], knobs.clone(), "select * from t order by k").await;
    assert_eq!(report.knobs, knobs, "every knob is reported as used");
    assert_eq!(report.options["format.allow_single_file_parallelism"], "false");
    assert_eq!(report.options["format.maximum_parallel_row_group_writers"], "2");
    // 20 000 rows over 3 parallel files, each rolled over after ~2 500 rows.
    assert!(report.files.len() >= 6, "{:?}", report.files);
    assert_eq!(report.bytes, report.files.iter().map(|f| f.bytes).sum::<u64>());

    let (_dir, report) = write_with(&[], WriterKnobs::default(), "select * from t order by k").await;
    assert_eq!(report.knobs.minimum_parallel_output_files, Some(1), "a sorted write: one file at a time");
    let (_dir, report) = write_sorted(&[], WriterKnobs::default(), "select * from t", Vec::new()).await;
    assert_eq!(report.knobs.minimum_parallel_output_files, Some(4), "DataFusion's default, reported");
    assert_eq!(report.knobs.allow_single_file_parallelism, Some(true));
    assert_eq!(report.files.len(), 4);
}

#[tokio::test]
async fn the_report_round_trips_through_serde() {
    let (_dir, report) = write_with(&[("compression", "snappy")], one_file(), "select * from t order by k").await;
    assert_eq!(report.format, OutputFormat::Parquet);
    assert_eq!(report.sort_by, vec![SortColumn::asc("k")]);
    assert_eq!(report.schema().unwrap().as_ref(), crate::common::schema().as_ref());
    let json = serde_json::to_string(&report).unwrap();
    let back: WriteReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    assert!(json.contains("\"minimum_parallel_output_files\":1"), "{json}");
}

#[test]
fn sort_keys_parse_like_a_views_sort_by() {
    assert_eq!(SortColumn::parse("revenue").unwrap(), SortColumn::asc("revenue"));
    assert_eq!(SortColumn::parse("revenue DESC").unwrap(), SortColumn::desc("revenue"));
    let key = SortColumn::parse("revenue desc nulls last").unwrap();
    assert!(key.descending && !key.nulls_first);
    assert_eq!(key.to_string(), "revenue DESC NULLS LAST");
    assert!(SortColumn::parse("a + b").is_err());
    assert!(SortColumn::parse("a NULLS sometimes").is_err());
}
