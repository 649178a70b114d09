//! What a write did, serializable for the artifact store.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::{OutputFormat, Result, SortColumn, WriteError, WriterKnobs};

/// What a write did: files, rows, bytes, time, and exactly how it wrote them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReport {
    /// The output directory, as the spec named it.
    pub target: String,
    /// The file format.
    pub format: OutputFormat,
    /// The files written, relative to `target`, with their sizes.
    pub files: Vec<WrittenFile>,
    /// The rows written.
    pub rows: u64,
    /// The bytes written: the sum of the file sizes.
    pub bytes: u64,
    /// Wall time of the write (not of the commit), in milliseconds.
    pub duration_ms: u64,
    /// The schema of the rows written, partition columns included, in plan order.
    pub columns: Vec<OutputColumn>,
    /// Hive-style partition columns.
    pub partition_by: Vec<String>,
    /// The order of the rows within every file; readers register it as `file_sort_order`.
    pub sort_by: Vec<SortColumn>,
    /// Every format option in force, as DataFusion `format.*` keys (`null` when unset).
    pub options: BTreeMap<String, String>,
    /// Every output parallelism knob, as used.
    pub knobs: WriterKnobs,
}

/// One written file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenFile {
    /// The path relative to the output directory, with `/` separators.
    pub path: String,
    /// The size in bytes.
    pub bytes: u64,
}

/// One column of the written schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputColumn {
    /// The column name.
    pub name: String,
    /// The Arrow data type, as Arrow displays (and parses) it, e.g. `Decimal128(15, 2)`.
    pub data_type: String,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

impl WriteReport {
    /// The schema of the rows written, partition columns included.
    pub fn schema(&self) -> Result<SchemaRef> {
        let fields = self
            .columns
            .iter()
            .map(|c| {
                DataType::from_str(&c.data_type).map(|t| Field::new(&c.name, t, c.nullable)).map_err(|e| {
                    WriteError::Report {
                        target: self.target.clone(),
                        message: format!("column `{}` has an unreadable type `{}`: {e}", c.name, c.data_type),
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Schema::new(fields)))
    }

    pub(crate) fn columns_of(schema: &Schema) -> Vec<OutputColumn> {
        schema
            .fields()
            .iter()
            .map(|f| OutputColumn {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect()
    }
}
