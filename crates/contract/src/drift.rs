//! Drift: declared columns and types against the registered schema and what
//! `information_schema.columns` says.

use std::collections::BTreeMap;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::types::NativeType;
use datafusion::common::{Column, TableReference};
use datafusion::logical_expr::{Expr, lit};
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::validate::parse_type;
use crate::{Contract, ContractError, Result};

/// How a relation's columns differ from its declared `columns`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// The relation.
    pub relation: String,
    /// Columns the relation has but the contract does not declare. Reported; not a failure.
    pub added: Vec<DriftedColumn>,
    /// Declared columns the relation no longer has.
    pub removed: Vec<DriftedColumn>,
    /// Declared columns whose logical type changed (`Utf8` and `Utf8View` are the same
    /// logical type; `Int32` and `Int64` are not).
    pub retyped: Vec<DriftedColumn>,
    /// Where `information_schema.columns` disagrees with the registered schema.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub information_schema: Vec<String>,
}

/// One drifted column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftedColumn {
    /// The column.
    pub column: String,
    /// Its declared type, if declared.
    pub declared: Option<String>,
    /// Its registered type, if it exists.
    pub actual: Option<String>,
}

impl Drift {
    /// Whether the drift breaks the contract: a declared column removed or retyped, or a
    /// catalog that contradicts itself. Added columns do not.
    pub fn fails(&self) -> bool {
        !self.removed.is_empty() || !self.retyped.is_empty() || !self.information_schema.is_empty()
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && !self.fails()
    }
}

/// Compares the declared `columns` of each contract (contracts that declare none are
/// skipped) with the registered schema, and the registered schema with
/// `information_schema.columns` when the session has one. Returns the relations that drift.
pub async fn drift(ctx: &SessionContext, contracts: &[Contract]) -> Result<Vec<Drift>> {
    let mut out = Vec::new();
    for contract in contracts.iter().filter(|c| !c.columns.is_empty()) {
        let relation = contract.relation.as_str();
        let declaration = |message: String| ContractError::Declaration { relation: relation.to_owned(), message };
        let dferr = |source| ContractError::DataFusion { relation: relation.to_owned(), source };
        let provider = ctx.table_provider(relation).await.map_err(|_| {
            declaration(format!("unknown relation `{relation}`: no source or view of that name is registered"))
        })?;
        let schema = provider.schema();
        let registered: BTreeMap<&String, &DataType> =
            schema.fields().iter().map(|f| (f.name(), f.data_type())).collect();
        let mut drift = Drift { relation: relation.to_owned(), ..Drift::default() };
        for (column, declared) in &contract.columns {
            let parsed = parse_type(declared).map_err(|m| declaration(format!("columns.{column}: {m}")))?;
            match registered.get(column) {
                None => drift.removed.push(DriftedColumn {
                    column: column.clone(),
                    declared: Some(declared.clone()),
                    actual: None,
                }),
                Some(actual) if NativeType::from(*actual) != NativeType::from(&parsed) => {
                    drift.retyped.push(DriftedColumn {
                        column: column.clone(),
                        declared: Some(declared.clone()),
                        actual: Some(actual.to_string()),
                    });
                }
                Some(_) => {}
            }
        }
        for (column, actual) in &registered {
            if !contract.columns.contains_key(*column) {
                drift.added.push(DriftedColumn {
                    column: (*column).clone(),
                    declared: None,
                    actual: Some(actual.to_string()),
                });
            }
        }
        if let Some(listed) = information_schema_columns(ctx, relation).await.map_err(dferr)? {
            for (column, actual) in &registered {
                match listed.get(*column) {
                    None => drift.information_schema.push(format!("does not list column `{column}`")),
                    Some(said) if *said != actual.to_string() => drift
                        .information_schema
                        .push(format!("says `{column}` is {said}, the registered schema says {actual}")),
                    Some(_) => {}
                }
            }
            for column in listed.keys().filter(|c| !registered.contains_key(c)) {
                drift.information_schema.push(format!("lists column `{column}`, which the registered schema lacks"));
            }
        }
        if !drift.is_empty() {
            out.push(drift);
        }
    }
    Ok(out)
}

/// `column_name → data_type` of `relation` in `information_schema.columns`, or `None` when the
/// session has no `information_schema`.
async fn information_schema_columns(
    ctx: &SessionContext,
    relation: &str,
) -> datafusion::error::Result<Option<BTreeMap<String, String>>> {
    let Ok(columns) = ctx.table("information_schema.columns").await else { return Ok(None) };
    let state = ctx.state();
    let catalog = &state.config_options().catalog;
    let resolved = TableReference::from(relation).resolve(&catalog.default_catalog, &catalog.default_schema);
    let named = |n: &str| Expr::Column(Column::from_name(n));
    let batches = columns
        .filter(
            named("table_catalog")
                .eq(lit(resolved.catalog.as_ref()))
                .and(named("table_schema").eq(lit(resolved.schema.as_ref())))
                .and(named("table_name").eq(lit(resolved.table.as_ref()))),
        )?
        .select(vec![named("column_name"), named("data_type")])?
        .collect()
        .await?;
    let mut out = BTreeMap::new();
    for batch in &batches {
        let (columns, data_types) = (batch.column(0).as_string::<i32>(), batch.column(1).as_string::<i32>());
        out.extend(columns.iter().zip(data_types.iter()).filter_map(|(c, t)| Some((c?.to_owned(), t?.to_owned()))));
    }
    Ok(Some(out))
}
