//! Which column types each format's DataFusion writer can write, decided from the schema
//! alone: at plan time, before anything runs.
//!
//! Found by writing every Arrow type through DataFusion 55's sinks (`tests/write/types.rs`
//! keeps this table honest against them):
//! - parquet cannot write `Interval(MonthDayNano)` (`NYI` from the parquet crate) nor a
//!   union (the parquet crate panics), at any depth;
//! - CSV cannot write a nested column (list, struct, map, union);
//! - JSON cannot write a union, at any depth, nor a map whose keys are not text.

use datafusion::arrow::datatypes::{DataType, IntervalUnit, Schema};

use crate::{OutputFormat, Result, WriteError};

/// Checks that DataFusion's `format` writer can write every column of `schema`, so that an
/// output that cannot be written is refused at plan time rather than failing mid-run. The
/// error names the first such column, its type, why, and what to do (cast it in the view).
/// [`crate::write`] checks this too, before anything is written.
pub fn check_writable(format: OutputFormat, schema: &Schema) -> Result<()> {
    for field in schema.fields() {
        if let Some(unwritable) = unwritable(format, field.data_type()) {
            return Err(WriteError::Unwritable {
                format,
                column: field.name().clone(),
                data_type: field.data_type().clone(),
                reason: unwritable.reason(format, field.data_type()),
                fix: unwritable.fix(format, field.name()),
            });
        }
    }
    Ok(())
}

/// What makes a type unwritable in a format.
enum Unwritable<'a> {
    /// `Interval(MonthDayNano)`, in parquet.
    Nanointerval(&'a DataType),
    /// A union, in parquet or JSON.
    Union(&'a DataType),
    /// A nested type, in CSV.
    Nested,
    /// A map whose keys are not text, in JSON.
    MapKeys(&'a DataType),
}

fn unwritable(format: OutputFormat, data_type: &DataType) -> Option<Unwritable<'_>> {
    match format {
        OutputFormat::Parquet => find(data_type, &|t| match t {
            DataType::Interval(IntervalUnit::MonthDayNano) => Some(Unwritable::Nanointerval(t)),
            DataType::Union(..) => Some(Unwritable::Union(t)),
            _ => None,
        }),
        OutputFormat::Csv => data_type.is_nested().then_some(Unwritable::Nested),
        OutputFormat::Json => find(data_type, &|t| match t {
            DataType::Union(..) => Some(Unwritable::Union(t)),
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(fields) => fields
                    .first()
                    .map(|key| key.data_type())
                    .filter(|key| !matches!(key, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
                    .map(Unwritable::MapKeys),
                _ => None,
            },
            _ => None,
        }),
    }
}

/// The first type, `data_type` itself or one nested in it, that `check` says is unwritable.
fn find<'a>(data_type: &'a DataType, check: &dyn Fn(&'a DataType) -> Option<Unwritable<'a>>) -> Option<Unwritable<'a>> {
    if let Some(found) = check(data_type) {
        return Some(found);
    }
    match data_type {
        DataType::List(child)
        | DataType::LargeList(child)
        | DataType::FixedSizeList(child, _)
        | DataType::ListView(child)
        | DataType::LargeListView(child)
        | DataType::Map(child, _) => find(child.data_type(), check),
        DataType::Struct(fields) => fields.iter().find_map(|f| find(f.data_type(), check)),
        DataType::Union(fields, _) => fields.iter().find_map(|(_, f)| find(f.data_type(), check)),
        DataType::Dictionary(_, values) => find(values, check),
        DataType::RunEndEncoded(_, values) => find(values.data_type(), check),
        _ => None,
    }
}

impl Unwritable<'_> {
    fn reason(&self, format: OutputFormat, column_type: &DataType) -> String {
        let within = |inner: &DataType| {
            if inner == column_type { String::new() } else { format!("it holds {inner}, and ") }
        };
        match self {
            Self::Nanointerval(inner) => {
                format!("{}parquet has no interval type with nanoseconds", within(inner))
            }
            Self::Union(inner) => format!("{}{} has no union type", within(inner), format.name()),
            Self::Nested => "CSV has no nested values (lists, structs, maps, unions)".to_owned(),
            Self::MapKeys(key) => format!("JSON object keys are text, and this map's keys are {key}"),
        }
    }

    fn fix(&self, format: OutputFormat, column: &str) -> String {
        match self {
            Self::Nanointerval(_) => format!(
                "cast it in the view, e.g. `CAST({column} AS VARCHAR)`, or write csv or json; parquet takes \
                 Interval(YearMonth) and Interval(DayTime)"
            ),
            Self::Union(_) => {
                "cast it in the view to one type, or select each variant as a column of its own".to_owned()
            }
            Self::Nested => format!(
                "cast it in the view to text, e.g. `array_to_string({column}, ',')` for a list, select its fields \
                 as columns of their own, or write {}",
                if format == OutputFormat::Csv { "parquet or json" } else { "parquet" }
            ),
            Self::MapKeys(_) => "cast its keys to text in the view, or write parquet".to_owned(),
        }
    }
}
