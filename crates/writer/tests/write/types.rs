//! Which column types each format can be written with: `check_writable` refuses exactly the
//! types DataFusion's own writers (`DataFrame::write_*`, the sinks behind `COPY TO`) fail
//! on, names the column and what to do, and passes every TPC-H type.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int32Array, IntervalDayTimeArray, IntervalYearMonthArray, RecordBatch, StringArray, UnionArray,
};
use datafusion::arrow::buffer::ScalarBuffer;
use datafusion::arrow::datatypes::{DataType, Field, IntervalDayTime, Schema, UnionFields};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::MemTable;
use datafusion::prelude::{DataFrame, SessionContext};
use dfpipe_writer::{OutputFormat, WriteError, check_writable, write};

use crate::common::spec;

const FORMATS: [OutputFormat; 3] = [OutputFormat::Parquet, OutputFormat::Csv, OutputFormat::Json];

/// One column of every type a view can produce in SQL, and a few more.
const SQL_SAMPLES: &[(&str, &str)] = &[
    ("Int64", "arrow_cast(1, 'Int64')"),
    ("Int32", "arrow_cast(1, 'Int32')"),
    ("UInt64", "arrow_cast(1, 'UInt64')"),
    ("Float16", "arrow_cast(1.5, 'Float16')"),
    ("Float64", "1.5"),
    ("Decimal32", "arrow_cast(1.5, 'Decimal32(5, 2)')"),
    ("Decimal64", "arrow_cast(1.5, 'Decimal64(15, 2)')"),
    ("Decimal128", "arrow_cast(1.5, 'Decimal128(15, 2)')"),
    ("Decimal256", "arrow_cast(1.5, 'Decimal256(40, 2)')"),
    ("Boolean", "true"),
    ("Utf8", "arrow_cast('a', 'Utf8')"),
    ("LargeUtf8", "arrow_cast('a', 'LargeUtf8')"),
    ("Utf8View", "arrow_cast('a', 'Utf8View')"),
    ("Binary", "arrow_cast('ab', 'Binary')"),
    ("LargeBinary", "arrow_cast('ab', 'LargeBinary')"),
    ("BinaryView", "arrow_cast('ab', 'BinaryView')"),
    ("FixedSizeBinary", "arrow_cast(arrow_cast('ab', 'Binary'), 'FixedSizeBinary(2)')"),
    ("Date32", "DATE '2020-01-01'"),
    ("Date64", "arrow_cast(DATE '2020-01-01', 'Date64')"),
    ("Time32", "arrow_cast(arrow_cast('10:00:00', 'Time64(Nanosecond)'), 'Time32(Second)')"),
    ("Time64", "arrow_cast('10:00:00', 'Time64(Nanosecond)')"),
    ("Timestamp", "TIMESTAMP '2020-01-01 10:00:00'"),
    ("TimestampTz", "arrow_cast(TIMESTAMP '2020-01-01 10:00:00', 'Timestamp(Nanosecond, Some(\"UTC\"))')"),
    ("IntervalMonthDayNano", "INTERVAL '1 month 2 days'"),
    ("Duration", "arrow_cast(1, 'Duration(Second)')"),
    ("Null", "NULL"),
    ("List", "make_array(1, 2)"),
    ("LargeList", "arrow_cast(make_array(1, 2), 'LargeList(Int64)')"),
    ("FixedSizeList", "arrow_cast(make_array(1, 2), 'FixedSizeList(2, Int64)')"),
    ("ListView", "arrow_cast(make_array(1, 2), 'ListView(Int64)')"),
    ("Struct", "named_struct('a', 1, 'b', 'x')"),
    ("Map", "map(['a'], [1])"),
    ("MapOfIntegerKeys", "map([1], ['a'])"),
    ("Dictionary", "arrow_cast('a', 'Dictionary(Int32, Utf8)')"),
    ("RunEndEncoded", "arrow_cast(1, 'RunEndEncoded(\"run_ends\": Int32, \"values\": Int64)')"),
    ("StructOfInterval", "named_struct('a', INTERVAL '1 month')"),
    ("ListOfInterval", "make_array(INTERVAL '1 month')"),
    ("ListOfDuration", "make_array(arrow_cast(1, 'Duration(Second)'))"),
];

/// Columns that SQL cannot cast to: the other interval units, and unions.
fn built_samples() -> Vec<(&'static str, ArrayRef)> {
    let fields = UnionFields::try_new(
        vec![0, 1],
        vec![Field::new("i", DataType::Int32, true), Field::new("s", DataType::Utf8, true)],
    )
    .unwrap();
    let union = UnionArray::try_new(
        fields,
        ScalarBuffer::from(vec![0i8, 1]),
        None,
        vec![Arc::new(Int32Array::from(vec![Some(1), None])), Arc::new(StringArray::from(vec![None, Some("a")]))],
    )
    .unwrap();
    vec![
        ("IntervalYearMonth", Arc::new(IntervalYearMonthArray::from(vec![14])) as ArrayRef),
        ("IntervalDayTime", Arc::new(IntervalDayTimeArray::from(vec![IntervalDayTime::new(2, 1000)]))),
        ("Union", Arc::new(union)),
    ]
}

/// Every sample as a one-column `DataFrame` named `c`.
async fn samples(ctx: &SessionContext) -> Vec<(&'static str, DataFrame)> {
    let mut out = Vec::new();
    for (label, expr) in SQL_SAMPLES {
        out.push((*label, ctx.sql(&format!("SELECT {expr} AS c")).await.unwrap()));
    }
    for (label, array) in built_samples() {
        let batch = RecordBatch::try_from_iter([("c", array)]).unwrap();
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
        out.push((label, ctx.read_table(Arc::new(table)).unwrap()));
    }
    out
}

/// Whether DataFusion's own writer writes `df` as `format` (a panic counts as a failure).
async fn datafusion_writes(df: DataFrame, format: OutputFormat, dir: &std::path::Path) -> Result<(), String> {
    let path = dir.join(format.name()).to_string_lossy().into_owned();
    let task = tokio::spawn(async move {
        let options = DataFrameWriteOptions::new();
        match format {
            OutputFormat::Parquet => df.write_parquet(&path, options, None).await,
            OutputFormat::Csv => df.write_csv(&path, options, None).await,
            OutputFormat::Json => df.write_json(&path, options, None).await,
        }
        .map(|_| ())
        .map_err(|e| e.strip_backtrace())
    });
    task.await.unwrap_or_else(|e| Err(format!("the writer panicked: {e}")))
}

#[tokio::test]
async fn check_writable_refuses_exactly_what_datafusion_cannot_write() {
    let ctx = SessionContext::new();
    let mut refused = Vec::new();
    for (label, df) in samples(&ctx).await {
        let schema = df.schema().as_arrow().clone();
        for format in FORMATS {
            let dir = tempfile::tempdir().unwrap();
            let written = datafusion_writes(df.clone(), format, dir.path()).await;
            let checked = check_writable(format, &schema);
            assert_eq!(
                checked.is_ok(),
                written.is_ok(),
                "{label} as {}: check_writable says {checked:?}, DataFusion's writer says {written:?}",
                format.name()
            );
            if checked.is_err() {
                refused.push(format!("{} {label}", format.name()));
            }
        }
    }
    // What the check was written for, so that a DataFusion upgrade that lifts a limit shows.
    for expected in
        ["parquet IntervalMonthDayNano", "parquet ListOfInterval", "parquet Union", "csv Struct", "json Union"]
    {
        assert!(refused.contains(&expected.to_owned()), "{expected} not refused: {refused:?}");
    }
}

#[test]
fn the_refusal_names_the_column_its_type_and_what_to_do() {
    let message = |format, data_type: DataType| {
        let schema = Schema::new(vec![Field::new("k", DataType::Int64, false), Field::new("c", data_type, true)]);
        check_writable(format, &schema).unwrap_err().to_string()
    };
    let interval = DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano);
    assert_eq!(
        message(OutputFormat::Parquet, interval.clone()),
        "column `c` (Interval(MonthDayNano)) cannot be written as parquet: parquet has no interval type with \
         nanoseconds; cast it in the view, e.g. `CAST(c AS VARCHAR)`, or write csv or json; parquet takes \
         Interval(YearMonth) and Interval(DayTime)"
    );
    let nested = DataType::Struct(vec![Field::new("every", interval, true)].into());
    assert!(message(OutputFormat::Parquet, nested).starts_with(
        "column `c` (Struct(\"every\": Interval(MonthDayNano))) cannot be written as parquet: it holds \
             Interval(MonthDayNano), and parquet has no interval type with nanoseconds"
    ));
    let list = DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true)));
    assert_eq!(
        message(OutputFormat::Csv, list),
        "column `c` (List(Int64)) cannot be written as csv: CSV has no nested values (lists, structs, maps, \
         unions); cast it in the view to text, e.g. `array_to_string(c, ',')` for a list, select its fields as \
         columns of their own, or write parquet or json"
    );
}

/// The TPC-H types, in every format.
#[test]
fn every_tpch_type_is_writable() {
    let schema = Schema::new(vec![
        Field::new("l_orderkey", DataType::Int64, false),
        Field::new("l_linenumber", DataType::Int32, false),
        Field::new("l_quantity", DataType::Decimal128(15, 2), false),
        Field::new("l_returnflag", DataType::Utf8View, false),
        Field::new("l_comment", DataType::Utf8, false),
        Field::new("l_shipdate", DataType::Date32, false),
        Field::new("revenue", DataType::Decimal128(38, 4), true),
        Field::new("avg_qty", DataType::Float64, true),
        Field::new("count_order", DataType::Int64, false),
    ]);
    for format in FORMATS {
        check_writable(format, &schema).unwrap();
    }
}

/// `write` itself refuses before anything is written, naming the target.
#[tokio::test]
async fn write_refuses_an_unwritable_column_before_writing() {
    let ctx = SessionContext::new();
    let plan = ctx.sql("SELECT 1 AS k, INTERVAL '1 day' AS wait").await.unwrap().create_physical_plan().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out").to_string_lossy().into_owned();
    let error = write(plan, &ctx.state(), &spec(&target, &[])).await.unwrap_err();
    assert!(matches!(error, WriteError::Spec { .. }), "{error:?}");
    assert!(
        error.to_string().contains("column `wait` (Interval(MonthDayNano)) cannot be written as parquet"),
        "{error}"
    );
    assert!(!dir.path().join("out").exists() && !dir.path().join(".staging").exists());
}
