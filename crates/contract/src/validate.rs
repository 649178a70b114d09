//! Validating declarations against the registered relations, before anything is registered
//! or checked.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::types::NativeType;
use datafusion::common::{Constraint, Constraints};
use datafusion::prelude::SessionContext;

use crate::{ConstraintKind, Contract, ContractError, Result};

/// A contract whose relation and columns exist, with the provider it is declared on.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    /// The registered provider of the relation, as found.
    pub(crate) provider: Arc<dyn TableProvider>,
    /// Its schema.
    pub(crate) schema: SchemaRef,
}

impl Contract {
    /// Checks the declaration against `ctx`: the relation and every column named exist, no
    /// key is empty or repeats a column, declared column types are Arrow types, and each
    /// foreign key references the primary key or a unique key of an existing relation,
    /// column for column with comparable types.
    pub async fn validate(&self, ctx: &SessionContext) -> Result<()> {
        validate_all(ctx, std::slice::from_ref(self)).await.map(drop)
    }
}

/// Validates every contract of `contracts`, as a set: a foreign key may reference a key
/// declared by another contract of the set, or one the referenced provider already has.
pub(crate) async fn validate_all(ctx: &SessionContext, contracts: &[Contract]) -> Result<Vec<Validated>> {
    let mut out = Vec::with_capacity(contracts.len());
    let mut seen = BTreeSet::new();
    for contract in contracts {
        let error = |message: String| ContractError::Declaration { relation: contract.relation.clone(), message };
        if !seen.insert(contract.relation.as_str()) {
            return Err(error("declared twice; merge the two declarations".to_owned()));
        }
        let provider = ctx.table_provider(contract.relation.as_str()).await.map_err(|_| {
            error(format!("unknown relation `{}`: no source or view of that name is registered", contract.relation))
        })?;
        let schema = provider.schema();
        let has = |column: &String, role: &str| {
            if schema.field_with_name(column).is_ok() {
                Ok(())
            } else {
                Err(error(format!(
                    "unknown column `{column}` in {role}; `{}` has columns {}",
                    contract.relation,
                    column_list(&schema)
                )))
            }
        };
        for (kind, key) in contract.keys() {
            check_key(key, kind.name()).map_err(&error)?;
            for column in key {
                has(column, kind.name())?;
            }
        }
        for column in &contract.not_null {
            has(column, ConstraintKind::NotNull.name())?;
        }
        for (name, declared) in &contract.columns {
            parse_type(declared).map_err(|message| error(format!("columns.{name}: {message}")))?;
        }
        for fk in &contract.foreign_keys {
            let role = format!("foreign key to `{}`", fk.references);
            check_key(&fk.columns, &role).map_err(&error)?;
            if fk.columns.len() != fk.referenced_columns.len() {
                return Err(error(format!(
                    "{role} has {} column(s) referencing {}; they must pair up one to one",
                    fk.columns.len(),
                    fk.referenced_columns.len()
                )));
            }
            for column in &fk.columns {
                has(column, &role)?;
            }
            let referenced = if fk.references == contract.relation {
                Arc::clone(&provider)
            } else {
                ctx.table_provider(fk.references.as_str()).await.map_err(|_| {
                    error(format!(
                        "{role}: unknown relation `{}`: no source or view of that name is registered",
                        fk.references
                    ))
                })?
            };
            let parent = referenced.schema();
            for (child, column) in fk.columns.iter().zip(&fk.referenced_columns) {
                let Ok(parent_field) = parent.field_with_name(column) else {
                    return Err(error(format!(
                        "{role}: unknown column `{}.{column}`; `{}` has columns {}",
                        fk.references,
                        fk.references,
                        column_list(&parent)
                    )));
                };
                let child_type = schema.field_with_name(child).map_or(DataType::Null, |f| f.data_type().clone());
                if !comparable(&child_type, parent_field.data_type()) {
                    return Err(error(format!(
                        "{role}: `{child}` ({child_type}) cannot be compared with `{}.{column}` ({}); cast one of them in a view",
                        fk.references,
                        parent_field.data_type()
                    )));
                }
            }
            let wanted: BTreeSet<&String> = fk.referenced_columns.iter().collect();
            let declared = contracts.iter().find(|c| c.relation == fk.references);
            let mut keys: Vec<BTreeSet<String>> =
                declared.map(|c| c.keys().map(|(_, k)| k.iter().cloned().collect()).collect()).unwrap_or_default();
            keys.extend(provider_keys(referenced.constraints(), &parent));
            if !keys.iter().any(|k| k.len() == wanted.len() && wanted.iter().all(|c| k.contains(*c))) {
                return Err(error(format!(
                    "{role}: ({}) is not a key of `{}`; declare it as the primary key or a unique key of `{}`",
                    fk.referenced_columns.join(", "),
                    fk.references,
                    fk.references
                )));
            }
        }
        out.push(Validated { provider, schema });
    }
    Ok(out)
}

fn check_key(columns: &[String], role: &str) -> Result<(), String> {
    if columns.is_empty() {
        return Err(format!("{role} is empty; a key needs at least one column"));
    }
    let mut seen = BTreeSet::new();
    if let Some(repeated) = columns.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(format!("{role} names column `{repeated}` twice"));
    }
    Ok(())
}

/// The column sets of the primary and unique keys a provider declares.
fn provider_keys(constraints: Option<&Constraints>, schema: &SchemaRef) -> Vec<BTreeSet<String>> {
    let Some(constraints) = constraints else { return Vec::new() };
    constraints
        .iter()
        .map(|c| match c {
            Constraint::PrimaryKey(indices) | Constraint::Unique(indices) => {
                indices.iter().filter_map(|&i| schema.fields().get(i).map(|f| f.name().clone())).collect()
            }
        })
        .collect()
}

/// Whether values of the two types can be compared for equality in a join: the same
/// logical type (`Utf8` and `Utf8View` are both strings), or two numeric types.
pub(crate) fn comparable(a: &DataType, b: &DataType) -> bool {
    let (a, b) = (NativeType::from(a), NativeType::from(b));
    a == b || (a.is_numeric() && b.is_numeric())
}

/// Parses a declared column type, as `SHOW COLUMNS` prints it.
pub(crate) fn parse_type(text: &str) -> Result<DataType, String> {
    DataType::from_str(text).map_err(|_| {
        format!(
            "`{text}` is not an Arrow type; write it as `SHOW COLUMNS` prints it, like \"Int64\", \"Utf8\", \"Decimal128(15, 2)\" or \"Date32\""
        )
    })
}

fn column_list(schema: &SchemaRef) -> String {
    schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}
