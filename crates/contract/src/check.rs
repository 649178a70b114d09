//! Checking data against contracts with DataFusion queries.
//!
//! Counting is fused: per relation, one query computes every violation count. Each primary
//! or unique key is one `GROUP BY` over the key; the null counts of primary-key columns come
//! from the same `GROUP BY` (null keys are groups of their own), the other not-null columns
//! share one ungrouped aggregate, and each foreign key is an anti join. The single-row
//! results run side by side under one `UNION ALL` and are gathered into one row. Sample rows are fetched afterwards, only for the
//! constraints that are violated, so valid data costs exactly one query per relation.
//!
//! Checks read the relation with its constraints stripped, so the optimizer never assumes
//! the very key it is asked to verify. Anti joins broadcast the referenced keys when they
//! are small enough (see `checking_session`), which keeps a foreign-key check on a large
//! relation a fraction of its key's `GROUP BY`.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Column, Constraints, JoinType, ScalarValue};
use datafusion::functions_aggregate::expr_fn::{count, max, sum};
use datafusion::logical_expr::{Expr, ExprFunctionExt, cast, col, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use serde::Serialize;

use crate::table::ConstrainedTable;
use crate::validate::{Validated, validate_all};
use crate::{ConstraintKind, Contract, ContractError, Drift, ForeignKey, Result};

/// The outcome of one constraint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    /// The relation checked.
    pub relation: String,
    /// The kind of constraint; `primary_key`, `unique`, `not_null` or `foreign_key` in JSON.
    pub constraint: ConstraintKind,
    /// The constrained columns.
    pub columns: Vec<String>,
    /// Duplicated key values (for keys), null rows (for not-null) or orphan rows (for
    /// foreign keys).
    pub violations: u64,
    /// Up to the requested number of violations: the key values and their `rows`, the rows
    /// with a null, or the orphans' key and foreign-key columns. Ordered by those columns.
    pub samples: Vec<BTreeMap<String, serde_json::Value>>,
}

/// The outcome of checking contracts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckReport {
    /// Whether no constraint is violated and no declared column was removed or retyped.
    pub passed: bool,
    /// One result per constraint.
    pub results: Vec<CheckResult>,
    /// Relations whose declared `columns` differ from their registered schema.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
}

/// How many queries the counting runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fusion {
    /// One query per relation, counting every constraint at once.
    #[default]
    PerRelation,
    /// One query per constraint: for comparison, and to isolate a failing query.
    PerConstraint,
}

/// Options of [`check_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// The most sample rows reported per constraint.
    pub samples: usize,
    /// How the counting queries are fused.
    pub fusion: Fusion,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self { samples: 3, fusion: Fusion::PerRelation }
    }
}

/// Validates `contracts`, then checks every constraint with queries and reports violations,
/// with up to `samples` sample rows each, and the drift of declared columns.
pub async fn check(ctx: &SessionContext, contracts: &[Contract], samples: usize) -> Result<CheckReport> {
    check_with(ctx, contracts, &CheckOptions { samples, fusion: Fusion::PerRelation }).await
}

/// [`check`], with the fusion of the counting queries chosen.
pub async fn check_with(ctx: &SessionContext, contracts: &[Contract], options: &CheckOptions) -> Result<CheckReport> {
    let validated = validate_all(ctx, contracts).await?;
    let ctx = &checking_session(ctx);
    let mut results = Vec::new();
    for (contract, validated) in contracts.iter().zip(&validated) {
        let dferr = |source| ContractError::DataFusion { relation: contract.relation.clone(), source };
        results.extend(check_relation(ctx, contract, validated, options).await.map_err(dferr)?);
    }
    let drift = crate::drift::drift(ctx, contracts).await?;
    let passed = results.iter().all(|r| r.violations == 0) && drift.iter().all(|d| !d.fails());
    Ok(CheckReport { passed, results, drift })
}

/// The largest referenced key, in bytes and rows, that an anti join broadcasts to every
/// partition instead of repartitioning both sides.
const BROADCAST_BYTES: usize = 256 << 20;
const BROADCAST_ROWS: usize = 32 << 20;

/// A session sharing `ctx`'s catalogs and settings, except that the anti joins of foreign
/// keys build their hash table once from the referenced key columns (DataFusion's
/// `CollectLeft`) when those fit `BROADCAST_BYTES`: then the checked relation, usually the
/// larger side, is probed where it lies instead of being hash-repartitioned.
fn checking_session(ctx: &SessionContext) -> SessionContext {
    let mut state = ctx.state();
    let optimizer = &mut state.config_mut().options_mut().optimizer;
    optimizer.hash_join_single_partition_threshold =
        optimizer.hash_join_single_partition_threshold.max(BROADCAST_BYTES);
    optimizer.hash_join_single_partition_threshold_rows =
        optimizer.hash_join_single_partition_threshold_rows.max(BROADCAST_ROWS);
    SessionContext::new_with_state(state)
}

/// One constraint to count, and how.
enum Item<'a> {
    /// A primary or unique key: duplicated values.
    Key { constraint: ConstraintKind, columns: &'a [String] },
    /// A not-null column. `from_key` when its count comes from the primary key's `GROUP BY`.
    NotNull { column: &'a String, from_key: bool },
    /// A foreign key: orphan rows.
    Foreign(&'a ForeignKey),
}

/// The name of the row-count column of a key's `GROUP BY`: `rows`, unless a key column is
/// called that.
fn rows_name(key: &[String]) -> &'static str {
    if key.iter().any(|c| c == "rows") { "__dfpipe_rows" } else { "rows" }
}

async fn check_relation(
    ctx: &SessionContext,
    contract: &Contract,
    validated: &Validated,
    options: &CheckOptions,
) -> datafusion::error::Result<Vec<CheckResult>> {
    let base = ctx.read_table(unconstrained(&validated.provider))?;
    let pk = contract.key_columns();
    let mut items: Vec<Item> = contract.keys().map(|(constraint, columns)| Item::Key { constraint, columns }).collect();
    items.extend(
        contract.not_null_columns().into_iter().map(|column| Item::NotNull { column, from_key: pk.contains(column) }),
    );
    items.extend(contract.foreign_keys.iter().map(Item::Foreign));

    let counts = match options.fusion {
        Fusion::PerRelation => count_fused(ctx, &base, &items).await?,
        Fusion::PerConstraint => {
            let mut counts = Vec::with_capacity(items.len());
            for item in &items {
                let violating = match item {
                    Item::Key { columns, .. } => duplicates(&base, columns)?,
                    Item::NotNull { column, .. } => base.clone().filter(named(column).is_null())?,
                    Item::Foreign(fk) => orphans(ctx, &base, fk, &[]).await?,
                };
                counts.push(violating.count().await? as u64);
            }
            counts
        }
    };

    let mut results = Vec::with_capacity(items.len());
    for (item, violations) in items.iter().zip(counts) {
        let (constraint, columns) = match item {
            Item::Key { constraint, columns } => (*constraint, columns.to_vec()),
            Item::NotNull { column, .. } => (ConstraintKind::NotNull, vec![(*column).clone()]),
            Item::Foreign(fk) => (ConstraintKind::ForeignKey, fk.columns.clone()),
        };
        let samples = if violations == 0 || options.samples == 0 {
            Vec::new()
        } else {
            let (violating, order) = match item {
                Item::Key { columns, .. } => (duplicates(&base, columns)?, columns.to_vec()),
                Item::NotNull { column, .. } => {
                    let order = sortable_columns(&base);
                    (base.clone().filter(named(column).is_null())?, order)
                }
                Item::Foreign(fk) => {
                    let violating = orphans(ctx, &base, fk, pk).await?;
                    let order = violating.schema().fields().iter().map(|f| f.name().clone()).collect();
                    (violating, order)
                }
            };
            let sort = order.iter().map(|c| named(c).sort(true, true)).collect();
            to_json_rows(&violating.sort(sort)?.limit(0, Some(options.samples))?.collect().await?)?
        };
        results.push(CheckResult { relation: contract.relation.clone(), constraint, columns, violations, samples });
    }
    Ok(results)
}

/// Every count of `items` in one query: one single-row aggregate per key, one for the other
/// not-null columns, one per foreign key (see [`orphans`]), under one `UNION ALL`.
async fn count_fused(
    ctx: &SessionContext,
    base: &DataFrame,
    items: &[Item<'_>],
) -> datafusion::error::Result<Vec<u64>> {
    let alias = |i: usize| format!("__dfpipe_count_{i}");
    let mut parts: Vec<DataFrame> = Vec::new();
    // Keys: duplicates, and (for the primary key) the nulls of each key column.
    for (i, item) in items.iter().enumerate() {
        let Item::Key { constraint, columns } = item else { continue };
        let rows = rows_name(columns);
        let grouped =
            base.clone().aggregate(columns.iter().map(|c| named(c)).collect(), vec![count_rows().alias(rows)])?;
        let mut aggregates = vec![count_rows().filter(duplicated(columns, rows)).build()?.alias(alias(i))];
        if *constraint == ConstraintKind::PrimaryKey {
            for (j, other) in items.iter().enumerate() {
                if let Item::NotNull { column, from_key: true } = other {
                    aggregates.push(sum(col(rows)).filter(named(column).is_null()).build()?.alias(alias(j)));
                }
            }
        }
        parts.push(grouped.aggregate(vec![], aggregates)?);
    }
    // The other not-null columns: one ungrouped pass.
    let nulls: Vec<Expr> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item {
            Item::NotNull { column, from_key: false } => {
                Some(count_rows().filter(named(column).is_null()).build().map(|e| e.alias(alias(i))))
            }
            _ => None,
        })
        .collect::<datafusion::error::Result<_>>()?;
    if !nulls.is_empty() {
        parts.push(base.clone().aggregate(vec![], nulls)?);
    }
    // Foreign keys: an anti join each.
    for (i, item) in items.iter().enumerate() {
        if let Item::Foreign(fk) = item {
            parts.push(orphans(ctx, base, fk, &[]).await?.aggregate(vec![], vec![count_rows().alias(alias(i))])?);
        }
    }
    // Each part fills its own columns and leaves the others null; `UNION ALL` runs the
    // parts side by side, so one part's single-threaded hash-table build overlaps another's
    // scan, and one `max` per column gathers the row.
    let aligned = parts.into_iter().map(|part| {
        let own: Vec<String> = part.schema().fields().iter().map(|f| f.name().clone()).collect();
        let columns = (0..items.len()).map(|i| {
            let name = alias(i);
            let value =
                if own.contains(&name) { cast(col(&name), DataType::Int64) } else { lit(ScalarValue::Int64(None)) };
            value.alias(name)
        });
        part.select(columns.collect::<Vec<_>>())
    });
    let Some(all) = aligned.reduce(|a, b| a?.union(b?)) else { return Ok(Vec::new()) };
    let row = all?.aggregate(vec![], (0..items.len()).map(|i| max(col(alias(i))).alias(alias(i))).collect())?;
    let row = row.collect().await?;
    let batch = row.iter().find(|b| b.num_rows() > 0);
    Ok((0..items.len())
        .map(|i| {
            batch.map_or(0, |b| {
                let counts = b.column(i).as_primitive::<Int64Type>();
                if counts.is_null(0) { 0 } else { counts.value(0).max(0) as u64 }
            })
        })
        .collect())
}

/// Groups of `key` that repeat: non-null key values with more than one row.
fn duplicates(base: &DataFrame, key: &[String]) -> datafusion::error::Result<DataFrame> {
    let rows = rows_name(key);
    base.clone()
        .aggregate(key.iter().map(|c| named(c)).collect(), vec![count_rows().alias(rows)])?
        .filter(duplicated(key, rows))
}

/// `rows > 1` and no key column null: in SQL, null keys are distinct.
fn duplicated(key: &[String], rows: &str) -> Expr {
    key.iter().fold(col(rows).gt(lit(1i64)), |e, c| e.and(named(c).is_not_null()))
}

/// Rows whose foreign-key values are all non-null and have no match in the referenced
/// relation (SQL's MATCH SIMPLE), projected on `extra` then the foreign-key columns.
///
/// A two-column key of integers is joined on one packed 64-bit value where both values lie
/// in `0..2^31` (DataFusion hashes and compares one column much faster than two); rows
/// with a value outside that range can only match each other, and take the plain join.
async fn orphans(
    ctx: &SessionContext,
    base: &DataFrame,
    fk: &ForeignKey,
    extra: &[String],
) -> datafusion::error::Result<DataFrame> {
    let parent = ctx.read_table(unconstrained(&ctx.table_provider(fk.references.as_str()).await?))?;
    let parent = parent.select(fk.referenced_columns.iter().map(|c| named(c)).collect::<Vec<_>>())?;
    let mut columns: Vec<&String> = extra.iter().collect();
    columns.extend(fk.columns.iter().filter(|c| !extra.contains(c)));
    let present = fk.columns.iter().map(|c| named(c).is_not_null()).reduce(Expr::and).unwrap_or(lit(true));
    let child = base.clone().filter(present)?;
    let on: Vec<(&str, &str)> =
        fk.columns.iter().map(String::as_str).zip(fk.referenced_columns.iter().map(String::as_str)).collect();
    let packable = |df: &DataFrame, names: &[String]| {
        names.iter().all(|n| df.schema().field_with_unqualified_name(n).is_ok_and(|f| fits_i64(f.data_type())))
    };
    if on.len() != 2 || !packable(&child, &fk.columns) || !packable(&parent, &fk.referenced_columns) {
        return anti_join(child, parent, &on, &columns);
    }
    let (in_child, in_parent) = (in_range(&fk.columns), in_range(&fk.referenced_columns));
    let packed = child
        .clone()
        .filter(in_child.clone())?
        .with_column(PACKED, pack(&fk.columns))?
        .alias(CHILD)?
        .join_on(
            parent
                .clone()
                .filter(in_parent.clone())?
                .select(vec![pack(&fk.referenced_columns).alias(PACKED)])?
                .alias(PARENT)?,
            JoinType::LeftAnti,
            [Expr::Column(Column::new(Some(CHILD), PACKED)).eq(Expr::Column(Column::new(Some(PARENT), PACKED)))],
        )?
        .select(columns.iter().map(|c| Expr::Column(Column::new(Some(CHILD), c.as_str()))).collect::<Vec<_>>())?;
    let rest = anti_join(child.filter(!in_child)?, parent.filter(!in_parent)?, &on, &columns)?;
    packed.union(rest)
}

const CHILD: &str = "__dfpipe_child";
const PARENT: &str = "__dfpipe_parent";
const PACKED: &str = "__dfpipe_packed";

/// `child` rows without a match in `parent` on the column pairs `on`, projected on `columns`.
fn anti_join(
    child: DataFrame,
    parent: DataFrame,
    on: &[(&str, &str)],
    columns: &[&String],
) -> datafusion::error::Result<DataFrame> {
    let on = on
        .iter()
        .map(|(c, p)| Expr::Column(Column::new(Some(CHILD), *c)).eq(Expr::Column(Column::new(Some(PARENT), *p))));
    child
        .select(columns.iter().map(|c| named(c)).collect::<Vec<_>>())?
        .alias(CHILD)?
        .join_on(parent.alias(PARENT)?, JoinType::LeftAnti, on)?
        .select(columns.iter().map(|c| Expr::Column(Column::new(Some(CHILD), c.as_str()))).collect::<Vec<_>>())
}

/// Whether every value of `data_type` is exactly an `Int64`.
fn fits_i64(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

/// Both columns lie in `0..2^31`, where [`pack`] is exact.
fn in_range(columns: &[String]) -> Expr {
    columns
        .iter()
        .map(|c| cast(named(c), DataType::Int64).between(lit(0i64), lit(i64::from(i32::MAX))))
        .reduce(Expr::and)
        .unwrap_or(lit(true))
}

/// The two columns as one `Int64`: `first * 2^32 + second`, one-to-one on [`in_range`] pairs.
fn pack(columns: &[String]) -> Expr {
    let value = |c: &String| cast(named(c), DataType::Int64);
    value(&columns[0]) * lit(1i64 << 32) + value(&columns[1])
}

/// `provider` read without any declared constraint.
fn unconstrained(
    provider: &Arc<dyn datafusion::catalog::TableProvider>,
) -> Arc<dyn datafusion::catalog::TableProvider> {
    Arc::new(ConstrainedTable::new(Arc::clone(provider), Constraints::default()))
}

/// The columns that order sample rows deterministically: every column of a flat type.
fn sortable_columns(df: &DataFrame) -> Vec<String> {
    df.schema().fields().iter().filter(|f| !f.data_type().is_nested()).map(|f| f.name().clone()).collect()
}

/// `count(*)`, as an aggregate call that a `FILTER` can be attached to.
fn count_rows() -> Expr {
    count(lit(1i64))
}

fn named(name: &str) -> Expr {
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
