//! Lineage of one logical plan: the relations it reads and the functions it calls.

use std::collections::{BTreeMap, BTreeSet};

use datafusion_common::Result;
use datafusion_common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion_expr::expr::{AggregateFunction, ScalarFunction, WindowFunctionDefinition};
use datafusion_expr::{Expr, LogicalPlan};
use serde::{Deserialize, Serialize};

/// What one plan reads and calls, found by a walk of every node and every subquery.
///
/// Relations are named at the level the plan references them: a view read by name is a
/// relation of its own, not the tables below it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The relations read, sorted by name.
    pub depends_on: Vec<String>,
    /// Every scan, merged per relation and sorted by relation.
    pub scans: Vec<Scan>,
    /// The scalar, aggregate and window functions called, sorted and without repeats.
    pub functions: Vec<String>,
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
    pub fn of(plan: &LogicalPlan) -> Result<Self> {
        let mut scans: BTreeMap<String, Scan> = BTreeMap::new();
        let mut functions = BTreeSet::new();
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let relation = scan.table_name.table().to_owned();
                let entry = scans.entry(relation.clone()).or_insert_with(|| Scan {
                    relation,
                    fetch: scan.fetch,
                    ..Scan::default()
                });
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
            node.apply_expressions(|expr| {
                expr.apply(|e| {
                    if let Some(name) = function_name(e) {
                        functions.insert(name);
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        Ok(Self {
            depends_on: scans.keys().cloned().collect(),
            scans: scans.into_values().collect(),
            functions: functions.into_iter().collect(),
        })
    }
}

fn function_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::ScalarFunction(ScalarFunction { func, .. }) => Some(func.name().to_owned()),
        Expr::AggregateFunction(AggregateFunction { func, .. }) => Some(func.name().to_owned()),
        Expr::WindowFunction(window) => Some(match &window.fun {
            WindowFunctionDefinition::AggregateUDF(f) => f.name().to_owned(),
            WindowFunctionDefinition::WindowUDF(f) => f.name().to_owned(),
        }),
        _ => None,
    }
}
