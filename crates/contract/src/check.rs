//! Validating declarations, and checking data against them with DataFusion queries.

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::{Column, JoinType, ScalarValue};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use serde::Serialize;

use crate::{Contract, ContractError, ForeignKey, Result};

/// The outcome of one constraint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// The relation checked.
    pub relation: String,
    /// `primary_key`, `unique`, `not_null` or `foreign_key`.
    pub constraint: &'static str,
    /// The constrained columns.
    pub columns: Vec<String>,
    /// Duplicate key values, null rows or orphan rows.
    pub violations: u64,
    /// Up to the requested number of violating rows.
    pub samples: Vec<BTreeMap<String, serde_json::Value>>,
}

/// The outcome of checking contracts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckReport {
    /// Whether no constraint is violated.
    pub passed: bool,
    /// One result per constraint.
    pub results: Vec<CheckResult>,
}

impl Contract {
    /// Checks that the relation and every column named exist in `ctx`, and that foreign keys
    /// have as many columns as they reference.
    pub async fn validate(&self, ctx: &SessionContext) -> Result<()> {
        let declaration = |message: String| ContractError::Declaration { relation: self.relation.clone(), message };
        let schema_of = |relation: &str| {
            let relation = relation.to_owned();
            async move { ctx.table(relation.as_str()).await.map(|df| df.schema().clone()) }
        };
        let schema = schema_of(&self.relation)
            .await
            .map_err(|_| declaration("no source or view of that name is registered".to_owned()))?;
        let mut columns: Vec<&String> = self.primary_key.iter().chain(&self.not_null).collect();
        columns.extend(self.unique.iter().flatten());
        columns.extend(self.foreign_keys.iter().flat_map(|f| &f.columns));
        for column in columns {
            if !schema.has_column_with_unqualified_name(column) {
                return Err(declaration(format!("column `{column}` does not exist")));
            }
        }
        if self.unique.iter().any(Vec::is_empty) {
            return Err(declaration("a unique key needs at least one column".to_owned()));
        }
        for fk in &self.foreign_keys {
            if fk.columns.is_empty() || fk.columns.len() != fk.referenced_columns.len() {
                return Err(declaration(format!(
                    "foreign key to `{}` has {} columns referencing {}; they must match and not be empty",
                    fk.references,
                    fk.columns.len(),
                    fk.referenced_columns.len()
                )));
            }
            let referenced = schema_of(&fk.references)
                .await
                .map_err(|_| declaration(format!("foreign key references unknown relation `{}`", fk.references)))?;
            if let Some(c) = fk.referenced_columns.iter().find(|c| !referenced.has_column_with_unqualified_name(c)) {
                return Err(declaration(format!("foreign key references unknown column `{}.{c}`", fk.references)));
            }
        }
        Ok(())
    }
}

/// Runs every constraint of `contracts` as a query and reports violations, with up to
/// `samples` sample rows each.
pub async fn check(ctx: &SessionContext, contracts: &[Contract], samples: usize) -> Result<CheckReport> {
    let mut results = Vec::new();
    for contract in contracts {
        let relation = contract.relation.as_str();
        let dferr = |source| ContractError::DataFusion { relation: relation.to_owned(), source };
        let table = ctx.table(relation).await.map_err(dferr)?;
        let keys = (!contract.primary_key.is_empty()).then_some(("primary_key", &contract.primary_key));
        for (constraint, columns) in keys.into_iter().chain(contract.unique.iter().map(|u| ("unique", u))) {
            let exprs: Vec<Expr> = columns.iter().map(|c| column(c)).collect();
            let duplicates = table
                .clone()
                .aggregate(exprs, vec![count(lit(1)).alias("rows")])
                .and_then(|df| df.filter(col("rows").gt(lit(1i64))))
                .map_err(dferr)?;
            results.push(outcome(relation, constraint, columns, duplicates, samples).await.map_err(dferr)?);
        }
        let mut not_null: Vec<String> = contract.primary_key.clone();
        not_null.extend(contract.not_null.iter().filter(|c| !contract.primary_key.contains(c)).cloned());
        for c in &not_null {
            let nulls = table.clone().filter(column(c).is_null()).map_err(dferr)?;
            results.push(outcome(relation, "not_null", std::slice::from_ref(c), nulls, samples).await.map_err(dferr)?);
        }
        for fk in &contract.foreign_keys {
            let orphans = orphans(ctx, table.clone(), fk).await.map_err(dferr)?;
            results.push(outcome(relation, "foreign_key", &fk.columns, orphans, samples).await.map_err(dferr)?);
        }
    }
    Ok(CheckReport { passed: results.iter().all(|r| r.violations == 0), results })
}

/// Rows whose non-null foreign-key values have no match in the referenced relation.
async fn orphans(ctx: &SessionContext, table: DataFrame, fk: &ForeignKey) -> datafusion::error::Result<DataFrame> {
    let parent = ctx.table(fk.references.as_str()).await?;
    let parent = parent.select(fk.referenced_columns.iter().map(|c| column(c)).collect::<Vec<_>>())?;
    let present = fk.columns.iter().map(|c| column(c).is_not_null()).reduce(Expr::and).unwrap_or(lit(true));
    let left: Vec<&str> = fk.columns.iter().map(String::as_str).collect();
    let right: Vec<&str> = fk.referenced_columns.iter().map(String::as_str).collect();
    table
        .filter(present)?
        .join(parent, JoinType::LeftAnti, &left, &right, None)?
        .select(fk.columns.iter().map(|c| column(c)).collect::<Vec<_>>())
}

async fn outcome(
    relation: &str,
    constraint: &'static str,
    columns: &[String],
    violating: DataFrame,
    samples: usize,
) -> datafusion::error::Result<CheckResult> {
    let violations = violating.clone().count().await? as u64;
    let rows = if violations == 0 { Vec::new() } else { violating.limit(0, Some(samples))?.collect().await? };
    Ok(CheckResult {
        relation: relation.to_owned(),
        constraint,
        columns: columns.to_vec(),
        violations,
        samples: to_json_rows(&rows)?,
    })
}

fn column(name: &str) -> Expr {
    Expr::Column(Column::from_name(name))
}

fn to_json_rows(batches: &[RecordBatch]) -> datafusion::error::Result<Vec<BTreeMap<String, serde_json::Value>>> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let mut out = BTreeMap::new();
            for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
                let value = ScalarValue::try_from_array(array, row)?;
                out.insert(field.name().clone(), json_value(&value));
            }
            rows.push(out);
        }
    }
    Ok(rows)
}

fn json_value(value: &ScalarValue) -> serde_json::Value {
    use serde_json::Value;
    if value.is_null() {
        return Value::Null;
    }
    match value {
        ScalarValue::Int8(Some(v)) => Value::from(*v),
        ScalarValue::Int16(Some(v)) => Value::from(*v),
        ScalarValue::Int32(Some(v)) => Value::from(*v),
        ScalarValue::Int64(Some(v)) => Value::from(*v),
        ScalarValue::UInt8(Some(v)) => Value::from(*v),
        ScalarValue::UInt16(Some(v)) => Value::from(*v),
        ScalarValue::UInt32(Some(v)) => Value::from(*v),
        ScalarValue::UInt64(Some(v)) => Value::from(*v),
        ScalarValue::Float32(Some(v)) => Value::from(f64::from(*v)),
        ScalarValue::Float64(Some(v)) => Value::from(*v),
        ScalarValue::Boolean(Some(v)) => Value::from(*v),
        other => Value::from(other.to_string()),
    }
}
