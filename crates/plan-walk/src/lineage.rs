//! Lineage of one logical plan: what it reads, what flows into each output column, which
//! columns decide its rows, and which functions it calls.

use std::collections::{BTreeMap, BTreeSet};

use datafusion_common::Result;
use datafusion_common::tree_node::TreeNodeRecursion;
use datafusion_expr::LogicalPlan;
use datafusion_expr::logical_plan::TableScan;
use serde::{Deserialize, Serialize};

use crate::walk;

/// What one plan reads and computes, found by a walk of every node and every subquery.
///
/// Relations are named at the level the plan references them: a view read by name is a
/// relation of its own, not the tables below it. [`Lineage::deep`] resolves through views.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The relations read, sorted by name.
    pub depends_on: Vec<String>,
    /// For each output column, in output order, the source columns that flow into it.
    #[serde(default)]
    pub columns: Vec<ColumnLineage>,
    /// Source columns that decide which rows appear, or in which order, sorted.
    #[serde(default)]
    pub inspected: Vec<Inspected>,
    /// The scalar, aggregate and window functions called, sorted and without repeats.
    pub functions: Vec<String>,
    /// The functions of [`Lineage::functions`] that are not built-ins, once
    /// [`Lineage::mark_udfs`] has been told which are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub udfs: Vec<String>,
    /// Every scan, merged per relation and sorted by relation: what is physically read.
    pub scans: Vec<Scan>,
}

/// The sources of one output column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnLineage {
    /// The output column's name.
    pub name: String,
    /// The source columns that flow into it, sorted.
    pub sources: Vec<Source>,
    /// Why part of its lineage could not be resolved. Empty when the lineage is complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
}

/// One source column of an output column.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Source {
    /// The relation, as the plan names it.
    pub relation: String,
    /// The column of that relation.
    pub column: String,
    /// Whether the value passes unchanged or is computed from it.
    pub kind: Kind,
    /// Whether it is computed by an aggregate function over the source's rows (`sum`,
    /// `count`, ...), here or below: only ever with [`Kind::Transform`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub aggregated: bool,
}

/// How a source column's value reaches an output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The value passes unchanged (through aliases, joins, unions, grouping keys).
    Copy,
    /// The value is computed from the source (by a function, an operator, a cast, an
    /// aggregate or a window).
    Transform,
}

impl Kind {
    /// The kind of a value that passed through `self` and then through `then`.
    pub(crate) fn then(self, then: Self) -> Self {
        if self == Self::Copy && then == Self::Copy { Self::Copy } else { Self::Transform }
    }
}

/// A source column that decides which rows appear, or their order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Inspected {
    /// The relation, as the plan names it.
    pub relation: String,
    /// The column of that relation.
    pub column: String,
    /// What it is inspected for.
    pub role: Role,
}

/// Why a column is inspected.
///
/// A predicate is split into its comparisons, through `AND`, `OR` and `NOT`. A comparison
/// whose two sides read different relations (or a subquery) is a `join`, wherever it is
/// written: in `ON`, in `WHERE`, or as `IN (SELECT …)`. Any other comparison is a `filter`.
/// So the role does not depend on whether the optimizer turned a `WHERE` into a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A predicate on one relation.
    Filter,
    /// A comparison between relations.
    Join,
    /// A grouping key, or a `DISTINCT` column.
    Group,
    /// An `ORDER BY` key.
    Sort,
    /// A window's `PARTITION BY` or `ORDER BY` key.
    Window,
}

/// The reads of one relation in a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    /// The relation's name as the plan references it.
    pub relation: String,
    /// The columns read, in the relation's own order of first appearance.
    pub columns: Vec<String>,
    /// Filters pushed into the scan, as DataFusion displays them.
    pub filters: Vec<String>,
    /// A row limit pushed into the scan, when every scan of the relation has one.
    pub fetch: Option<usize>,
}

impl Lineage {
    /// Walks `plan`, its subqueries included, and collects its lineage.
    ///
    /// Nothing is dropped in silence: a node or expression the walk cannot interpret marks
    /// the affected columns [`ColumnLineage::unresolved`] with the reason.
    pub fn of(plan: &LogicalPlan) -> Result<Self> {
        let walked = walk::walk(plan)?;
        let scans = scans(plan)?;
        Ok(Self {
            depends_on: scans.iter().map(|s| s.relation.clone()).collect(),
            columns: walked.columns,
            inspected: walked.inspected,
            functions: walked.functions,
            udfs: Vec::new(),
            scans,
        })
    }

    /// Records which functions are user-defined: those that `is_builtin` does not know.
    pub fn mark_udfs(&mut self, is_builtin: impl Fn(&str) -> bool) {
        self.udfs = self.functions.iter().filter(|f| !is_builtin(f)).cloned().collect();
    }

    /// Checks that `optimized`, the lineage of the optimized form of this lineage's plan,
    /// gives the same answer, and says where it does not.
    ///
    /// Relations, output columns, sources and inspected columns must be equal. Two things
    /// may differ because the optimizer legitimately changes them: the scans (projections
    /// and filters are pushed into them) and the functions (constant folding removes calls;
    /// rewrites add some). And a source the query transforms may be a `copy` in the optimized
    /// plan, where a simplification proved that the value passes unchanged
    /// (`coalesce(x, x)` on a non-null `x` is `x`); never the other way round.
    pub fn agrees_with(&self, optimized: &Self) -> std::result::Result<(), String> {
        if self.depends_on != optimized.depends_on {
            return Err(format!("relations {:?} became {:?}", self.depends_on, optimized.depends_on));
        }
        if self.inspected != optimized.inspected {
            return Err(format!("inspected {:?} became {:?}", self.inspected, optimized.inspected));
        }
        if self.columns.len() != optimized.columns.len() {
            return Err(format!("{} columns became {}", self.columns.len(), optimized.columns.len()));
        }
        for (before, after) in self.columns.iter().zip(&optimized.columns) {
            let differs = || format!("column `{}`: {before:?} became {after:?}", before.name);
            if before.name != after.name
                || before.unresolved != after.unresolved
                || before.sources.len() != after.sources.len()
            {
                return Err(differs());
            }
            for (b, a) in before.sources.iter().zip(&after.sources) {
                let refined = b.kind == Kind::Transform && a.kind == Kind::Copy;
                if b.relation != a.relation || b.column != a.column || (b.kind != a.kind && !refined) {
                    return Err(differs());
                }
            }
        }
        Ok(())
    }

    /// Whether every column's lineage was resolved.
    pub fn is_complete(&self) -> bool {
        self.columns.iter().all(|c| c.unresolved.is_empty())
    }

    /// The lineage resolved through views, down to the relations that are not views.
    ///
    /// `view` returns the lineage of a relation that is a view, and `None` for a source. A
    /// source column read through a view is replaced by that view column's own sources
    /// (`copy` only when both steps copy), and the view's inspected columns are added.
    #[must_use]
    pub fn deep<'a>(&self, view: &impl Fn(&str) -> Option<&'a Self>) -> Self {
        self.deep_within(view, &mut Vec::new())
    }

    fn deep_within<'a>(&self, view: &impl Fn(&str) -> Option<&'a Self>, path: &mut Vec<String>) -> Self {
        let mut resolved: BTreeMap<String, Self> = BTreeMap::new();
        for relation in &self.depends_on {
            if path.contains(relation) {
                continue;
            }
            if let Some(lineage) = view(relation) {
                path.push(relation.clone());
                resolved.insert(relation.clone(), lineage.deep_within(view, path));
                path.pop();
            }
        }
        if resolved.is_empty() {
            return self.clone();
        }
        let through =
            |relation: &str, column: &str| resolved.get(relation).map(|v| v.columns.iter().find(|c| c.name == column));
        let mut deep = self.clone();
        for out in &mut deep.columns {
            let mut sources = BTreeSet::new();
            for source in &out.sources {
                match through(&source.relation, &source.column) {
                    None => {
                        sources.insert(source.clone());
                    }
                    Some(Some(upstream)) => {
                        sources.extend(upstream.sources.iter().map(|s| Source {
                            kind: source.kind.then(s.kind),
                            aggregated: source.aggregated || s.aggregated,
                            ..s.clone()
                        }));
                        out.unresolved.extend(upstream.unresolved.iter().cloned());
                    }
                    Some(None) => {
                        out.unresolved.push(format!("view `{}` has no column `{}`", source.relation, source.column));
                    }
                }
            }
            out.sources = sources.into_iter().collect();
        }
        let mut inspected = BTreeSet::new();
        for entry in &self.inspected {
            match through(&entry.relation, &entry.column) {
                Some(Some(upstream)) => inspected.extend(upstream.sources.iter().map(|s| Inspected {
                    relation: s.relation.clone(),
                    column: s.column.clone(),
                    role: entry.role,
                })),
                _ => {
                    inspected.insert(entry.clone());
                }
            }
        }
        let mut depends_on: BTreeSet<String> =
            self.depends_on.iter().filter(|r| !resolved.contains_key(*r)).cloned().collect();
        let mut functions: BTreeSet<String> = self.functions.iter().cloned().collect();
        let mut udfs: BTreeSet<String> = self.udfs.iter().cloned().collect();
        for upstream in resolved.values() {
            inspected.extend(upstream.inspected.iter().cloned());
            depends_on.extend(upstream.depends_on.iter().cloned());
            functions.extend(upstream.functions.iter().cloned());
            udfs.extend(upstream.udfs.iter().cloned());
        }
        deep.inspected = inspected.into_iter().collect();
        deep.depends_on = depends_on.into_iter().collect();
        deep.functions = functions.into_iter().collect();
        deep.udfs = udfs.into_iter().collect();
        deep
    }
}

/// Every table scan of `plan`, subqueries included, merged per relation.
///
/// A recursive CTE's work table is not a relation and is left out.
pub fn scans(plan: &LogicalPlan) -> Result<Vec<Scan>> {
    let mut scans: BTreeMap<String, Scan> = BTreeMap::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && !walk::is_work_table(scan)
        {
            merge_scan(&mut scans, scan);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(scans.into_values().collect())
}

fn merge_scan(scans: &mut BTreeMap<String, Scan>, scan: &TableScan) {
    let relation = scan.table_name.to_string();
    let entry =
        scans.entry(relation.clone()).or_insert_with(|| Scan { relation, fetch: scan.fetch, ..Scan::default() });
    for field in scan.projected_schema.fields() {
        if !entry.columns.contains(field.name()) {
            entry.columns.push(field.name().clone());
        }
    }
    for filter in &scan.filters {
        let shown = filter.to_string();
        if !entry.filters.contains(&shown) {
            entry.filters.push(shown);
        }
    }
    entry.fetch = entry.fetch.zip(scan.fetch).map(|(a, b)| a.max(b));
}
