//! The environment plans are made in: every table of `information_schema`, each with a
//! content hash.
//!
//! The snapshot is generic: whatever `information_schema` lists (DataFusion's own tables, and
//! any registered beside them, such as constraint tables) is read and hashed. A view's
//! fingerprint takes only the part relevant to it: the rows that name a relation it reads
//! (a `table_name` column) or a function it calls (a `routine_name` or `specific_name`
//! column). `df_settings` is left out of fingerprints: the profile's settings are their own
//! ingredient, and the rest (thread counts, paths) differ between machines.
//!
//! The hash of the whole snapshot, [`Environment::fingerprint`], is where the store keeps it,
//! once per distinct content, so that a diff of two runs can say what changed.

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::TableReference;
use datafusion::prelude::{SessionContext, col, lit};
use serde::{Deserialize, Serialize};

use crate::fingerprint::Hasher;
use crate::{ArtifactError, Fingerprint, Result};

/// The schema holding the environment's tables.
const SCHEMA: &str = "information_schema";

/// Columns that tie a row to a relation, and to a function.
const RELATION_COLUMNS: [&str; 1] = ["table_name"];
const FUNCTION_COLUMNS: [&str; 2] = ["routine_name", "specific_name"];

/// Every table of `information_schema`, read once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// The tables, by name.
    pub tables: BTreeMap<String, EnvironmentTable>,
}

/// One table of `information_schema`: its rows as text, sorted, and their hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentTable {
    /// The column names.
    pub columns: Vec<String>,
    /// The rows, each value displayed as text (`NULL` for nulls), sorted.
    pub rows: Vec<Vec<String>>,
    /// The hash of the columns and rows.
    pub hash: Fingerprint,
}

impl Environment {
    /// Reads every table that `information_schema.tables` lists in `information_schema`.
    pub async fn snapshot(ctx: &SessionContext) -> Result<Self> {
        let dferr = |source| ArtifactError::DataFusion { view: "information_schema".to_owned(), source };
        let listing = ctx
            .table(TableReference::partial(SCHEMA, "tables"))
            .await
            .map_err(dferr)?
            .filter(col("table_schema").eq(lit(SCHEMA)))
            .map_err(dferr)?
            .select_columns(&["table_name"])
            .map_err(dferr)?
            .collect()
            .await
            .map_err(dferr)?;
        let mut names: Vec<String> = text_rows(&listing).into_iter().flatten().collect();
        names.sort();
        names.dedup();
        let mut tables = BTreeMap::new();
        for name in names {
            let batches = ctx
                .table(TableReference::partial(SCHEMA, name.as_str()))
                .await
                .map_err(dferr)?
                .collect()
                .await
                .map_err(dferr)?;
            let columns: Vec<String> = match batches.first() {
                Some(batch) => batch.schema().fields().iter().map(|f| f.name().clone()).collect(),
                None => Vec::new(),
            };
            let mut rows = text_rows(&batches);
            rows.sort();
            let hash = hash_rows(&name, &columns, rows.iter());
            tables.insert(name, EnvironmentTable { columns, rows, hash });
        }
        Ok(Self { tables })
    }

    /// The hash of the whole snapshot, from the hash of each table: the address under which
    /// the [`Store`](crate::Store) keeps it, the same for the same content.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut hasher = Hasher::default();
        for (name, table) in &self.tables {
            hasher.section(b"table", name.as_bytes());
            hasher.section(b"hash", table.hash.0.as_bytes());
        }
        hasher.finish()
    }

    /// The values of `column` in each row of `table`, beside those of `key` columns: empty when
    /// the snapshot has no such table or columns.
    pub(crate) fn values<'a, const N: usize>(
        &'a self,
        table: &str,
        key: [&str; N],
        column: &str,
    ) -> Vec<([&'a str; N], &'a str)> {
        let Some(table) = self.tables.get(table) else { return Vec::new() };
        let at = |name: &str| table.columns.iter().position(|c| c == name);
        let (Some(keys), Some(value)) = (key.iter().map(|k| at(k)).collect::<Option<Vec<usize>>>(), at(column)) else {
            return Vec::new();
        };
        let cell = |row: &'a [String], i: usize| row.get(i).map_or("", String::as_str);
        table.rows.iter().map(|row| (std::array::from_fn(|i| cell(row, keys[i])), cell(row, value))).collect()
    }

    /// The hashes of the part of each table that concerns `relations` and `functions`: its
    /// rows naming one of them. Tables with no such column, and `df_settings`, are left out.
    pub fn relevant(&self, relations: &[String], functions: &[String]) -> BTreeMap<String, Fingerprint> {
        let bare = |name: &str| name.rsplit('.').next().unwrap_or(name).to_owned();
        let relations: Vec<String> = relations.iter().map(|r| bare(r)).collect();
        let mut out = BTreeMap::new();
        for (name, table) in &self.tables {
            if name == "df_settings" {
                continue;
            }
            let position = |names: &[&str]| table.columns.iter().position(|c| names.contains(&c.as_str()));
            let (relation_at, function_at) = (position(&RELATION_COLUMNS), position(&FUNCTION_COLUMNS));
            if relation_at.is_none() && function_at.is_none() {
                continue;
            }
            let rows = table.rows.iter().filter(|row| {
                relation_at.is_some_and(|i| relations.contains(&row[i]))
                    || function_at.is_some_and(|i| functions.contains(&row[i]))
            });
            out.insert(name.clone(), hash_rows(name, &table.columns, rows));
        }
        out
    }
}

fn hash_rows<'a>(table: &str, columns: &[String], rows: impl Iterator<Item = &'a Vec<String>>) -> Fingerprint {
    let mut hasher = Hasher::default();
    hasher.section(b"table", table.as_bytes());
    for column in columns {
        hasher.section(b"column", column.as_bytes());
    }
    for row in rows {
        hasher.section(b"row", &[]);
        for value in row {
            hasher.section(b"value", value.as_bytes());
        }
    }
    hasher.finish()
}

/// Every row of `batches`, each value displayed as text.
fn text_rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter<'_>> =
            batch.columns().iter().filter_map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok()).collect();
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect());
        }
    }
    rows
}
