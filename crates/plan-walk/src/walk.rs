//! The walk: a bottom-up [`TreeNodeVisitor`] over a plan and its subqueries that derives, for
//! every node, where each of its output columns comes from.
//!
//! [`LogicalPlan::visit_with_subqueries`] visits a node's subqueries, then its inputs, then
//! calls `f_up` on the node. The visitor keeps one [`Node`] per finished subtree on a stack,
//! so `f_up` pops the results of the node's subqueries and inputs and pushes its own.
//!
//! Two kinds of reference cannot be resolved where they are met, and travel upwards as
//! placeholders until they can:
//! - a correlated column (`OuterReferenceColumn`) resolves at the node that owns the subquery,
//!   against that node's inputs;
//! - a recursive CTE's work table resolves at its `RecursiveQuery`, as a fixpoint over the
//!   static and recursive terms.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion_common::tree_node::{TreeNode, TreeNodeRecursion, TreeNodeVisitor};
use datafusion_common::{Column, DFSchema, Result};
use datafusion_expr::expr::{
    AggregateFunction, AggregateFunctionParams, Alias, InSubquery, ScalarFunction, SetComparison,
    WindowFunctionDefinition,
};
use datafusion_expr::logical_plan::{
    Aggregate, Distinct, DistinctOn, Filter, Join, JoinType, Projection, RecursiveQuery, Sort, Subquery, TableScan,
    Unnest, Window,
};
use datafusion_expr::utils::{grouping_set_to_exprlist, split_conjunction};
use datafusion_expr::{BinaryExpr, Expr, LogicalPlan, Operator, TableType};

use crate::lineage::{ColumnLineage, Inspected, Kind, Role, Source};

/// Aggregate and window functions whose value is one of their first argument's values,
/// unchanged: a `copy`.
const SELECTING: [&str; 5] = ["first_value", "last_value", "nth_value", "lag", "lead"];

/// What the walk found for a whole plan.
pub(crate) struct Walked {
    pub(crate) columns: Vec<ColumnLineage>,
    pub(crate) inspected: Vec<Inspected>,
    pub(crate) functions: Vec<String>,
}

/// Walks `plan` and resolves every placeholder that can be resolved.
pub(crate) fn walk(plan: &LogicalPlan) -> Result<Walked> {
    let mut visitor = Visitor::default();
    plan.visit_with_subqueries(&mut visitor)?;
    let Some(root) = visitor.stack.pop() else {
        return Ok(Walked { columns: Vec::new(), inspected: Vec::new(), functions: Vec::new() });
    };
    let columns = plan
        .schema()
        .fields()
        .iter()
        .zip(root.columns)
        .map(|(field, origin)| {
            let mut unresolved = origin.unresolved;
            let mut sources = BTreeSet::new();
            for (src, kind) in origin.srcs {
                let aggregated = origin.aggregated.contains(&src);
                match src {
                    Src::Column(relation, column) => {
                        sources.insert(Source { relation, column, kind, aggregated });
                    }
                    other => {
                        unresolved.insert(other.unresolved_reason());
                    }
                }
            }
            ColumnLineage {
                name: field.name().clone(),
                sources: sources.into_iter().collect(),
                unresolved: unresolved.into_iter().collect(),
            }
        })
        .collect();
    let inspected = root
        .inspected
        .into_iter()
        .filter_map(|(src, role)| match src {
            Src::Column(relation, column) => Some(Inspected { relation, column, role }),
            _ => None,
        })
        .collect();
    Ok(Walked { columns, inspected, functions: visitor.functions.into_iter().collect() })
}

/// Whether a scan reads a recursive CTE's work table rather than a relation.
pub(crate) fn is_work_table(scan: &TableScan) -> bool {
    scan.source.table_type() == TableType::Temporary
}

/// Where a value comes from, before every placeholder is resolved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Src {
    /// A column of a relation.
    Column(String, String),
    /// A column of a recursive CTE's work table.
    Work(String, String),
    /// A correlated column of an enclosing query.
    Outer(Column),
}

impl Src {
    fn unresolved_reason(&self) -> String {
        match self {
            Self::Column(relation, column) => format!("{relation}.{column}"),
            Self::Work(name, column) => format!("work table column `{name}.{column}` outside its recursive query"),
            Self::Outer(column) => format!("outer reference `{column}` not found in any enclosing query"),
        }
    }
}

/// The lineage of one value: its sources, and what could not be resolved.
#[derive(Debug, Clone, Default)]
struct Origin {
    srcs: BTreeMap<Src, Kind>,
    /// The sources of `srcs` that reach the value through an aggregate function.
    aggregated: BTreeSet<Src>,
    unresolved: BTreeSet<String>,
}

impl Origin {
    fn of(src: Src) -> Self {
        Self { srcs: BTreeMap::from([(src, Kind::Copy)]), ..Self::default() }
    }

    fn unresolved(reason: String) -> Self {
        Self { unresolved: BTreeSet::from([reason]), ..Self::default() }
    }

    /// Adds `other`, passed through `kind`. A source reached both ways is a transform.
    fn absorb(&mut self, other: &Self, kind: Kind) {
        self.absorb_through(other, kind, false);
    }

    /// Adds `other`, passed through `kind`, and through an aggregate function if `aggregated`.
    fn absorb_through(&mut self, other: &Self, kind: Kind, aggregated: bool) {
        for (src, k) in &other.srcs {
            let k = k.then(kind);
            self.srcs.entry(src.clone()).and_modify(|e| *e = e.then(k)).or_insert(k);
            if aggregated {
                self.aggregated.insert(src.clone());
            }
        }
        self.aggregated.extend(other.aggregated.iter().cloned());
        self.unresolved.extend(other.unresolved.iter().cloned());
    }

    fn transformed(mut self) -> Self {
        self.srcs.values_mut().for_each(|k| *k = Kind::Transform);
        self
    }

    /// Replaces placeholders for which `lookup` has an origin.
    fn substitute(&mut self, lookup: &impl Fn(&Src) -> Option<Origin>) {
        for (src, kind) in std::mem::take(&mut self.srcs) {
            match lookup(&src) {
                Some(replacement) => {
                    let aggregated = self.aggregated.remove(&src);
                    self.absorb_through(&replacement, kind, aggregated);
                }
                None => {
                    self.srcs.entry(src).and_modify(|e| *e = e.then(kind)).or_insert(kind);
                }
            }
        }
    }
}

/// The result of one finished subtree.
#[derive(Debug, Default)]
struct Node {
    /// One origin per output field.
    columns: Vec<Origin>,
    /// Every inspected source in the subtree, with its roles.
    inspected: BTreeSet<(Src, Role)>,
    /// Columns compared with a correlated column of an enclosing query, below this node.
    /// An aggregate above them computes one value per correlation key, so they are its
    /// grouping keys too (this is also what decorrelation makes of them).
    correlated: BTreeSet<Src>,
}

impl Node {
    fn substitute(&mut self, lookup: &impl Fn(&Src) -> Option<Origin>) {
        for column in &mut self.columns {
            column.substitute(lookup);
        }
        let inspected = std::mem::take(&mut self.inspected);
        for (src, role) in inspected {
            match lookup(&src) {
                Some(origin) => self.inspected.extend(origin.srcs.into_keys().map(|s| (s, role))),
                None => {
                    self.inspected.insert((src, role));
                }
            }
        }
    }
}

/// The schemas and origins that a node's expressions can reference.
struct Scope<'a> {
    parts: Vec<(&'a DFSchema, &'a [Origin])>,
}

impl Scope<'_> {
    fn resolve(&self, column: &Column) -> Option<&Origin> {
        self.parts
            .iter()
            .find_map(|(schema, origins)| schema.maybe_index_of_column(column).and_then(|i| origins.get(i)))
    }
}

#[derive(Default)]
struct Visitor {
    stack: Vec<Node>,
    functions: BTreeSet<String>,
}

impl TreeNodeVisitor<'_> for Visitor {
    type Node = LogicalPlan;

    fn f_up(&mut self, plan: &LogicalPlan) -> Result<TreeNodeRecursion> {
        let mut keys = Vec::new();
        plan.apply_subqueries(|sub| {
            if let LogicalPlan::Subquery(Subquery { subquery, .. }) = sub {
                keys.push(Arc::as_ptr(subquery));
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let inputs_at = self.stack.len().saturating_sub(plan.inputs().len());
        let inputs = self.stack.split_off(inputs_at);
        let subs_at = self.stack.len().saturating_sub(keys.len());
        let subs = self.stack.split_off(subs_at);
        plan.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Some(name) = function_name(e) {
                    self.functions.insert(name);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        let node = NodeBuilder::new(plan, inputs, keys.into_iter().zip(subs).collect()).build()?;
        self.stack.push(node);
        Ok(TreeNodeRecursion::Continue)
    }
}

/// Derives one node's [`Node`] from those of its inputs and subqueries.
struct NodeBuilder<'a> {
    plan: &'a LogicalPlan,
    inputs: Vec<Node>,
    subqueries: HashMap<*const LogicalPlan, Node>,
    inspected: BTreeSet<(Src, Role)>,
    correlated: BTreeSet<Src>,
}

impl<'a> NodeBuilder<'a> {
    fn new(plan: &'a LogicalPlan, inputs: Vec<Node>, subqueries: HashMap<*const LogicalPlan, Node>) -> Self {
        Self { plan, inputs, subqueries, inspected: BTreeSet::new(), correlated: BTreeSet::new() }
    }

    fn build(mut self) -> Result<Node> {
        self.resolve_outer_references();
        let mut inspected = BTreeSet::new();
        for node in self.inputs.iter_mut().chain(self.subqueries.values_mut()) {
            inspected.append(&mut node.inspected);
        }
        // Correlation ends at the node that owns the subquery: only inputs pass it on.
        let mut correlated = BTreeSet::new();
        for node in &mut self.inputs {
            correlated.append(&mut node.correlated);
        }
        self.inspected = inspected;
        self.correlated = correlated;
        let columns = self.columns()?;
        Ok(Node { columns, inspected: self.inspected, correlated: self.correlated })
    }

    /// Resolves the correlated columns of this node's subqueries against its inputs.
    fn resolve_outer_references(&mut self) {
        if self.subqueries.is_empty() {
            return;
        }
        let inputs = std::mem::take(&mut self.inputs);
        {
            let scope = scope_of(self.plan, &inputs);
            let lookup = |src: &Src| match src {
                Src::Outer(column) => scope.resolve(column).cloned(),
                _ => None,
            };
            for node in self.subqueries.values_mut() {
                node.substitute(&lookup);
            }
        }
        self.inputs = inputs;
    }

    fn columns(&mut self) -> Result<Vec<Origin>> {
        let plan = self.plan;
        let width = plan.schema().fields().len();
        Ok(match plan {
            LogicalPlan::TableScan(scan) => {
                let relation = scan.table_name.to_string();
                let work = is_work_table(scan);
                for filter in &scan.filters {
                    for conjunct in split_conjunction(filter) {
                        conjunct.apply(|e| {
                            if let Expr::Column(c) = e {
                                self.inspected.insert((Src::Column(relation.clone(), c.name.clone()), Role::Filter));
                            }
                            Ok(TreeNodeRecursion::Continue)
                        })?;
                    }
                }
                scan.projected_schema
                    .fields()
                    .iter()
                    .map(|f| {
                        let name = f.name().clone();
                        Origin::of(if work {
                            Src::Work(relation.clone(), name)
                        } else {
                            Src::Column(relation.clone(), name)
                        })
                    })
                    .collect()
            }
            LogicalPlan::Projection(Projection { expr, .. }) => expr.iter().map(|e| self.origin(e)).collect(),
            LogicalPlan::Filter(Filter { predicate, .. }) => {
                self.predicate(predicate);
                self.passthrough()
            }
            LogicalPlan::Window(Window { window_expr, .. }) => {
                for expr in window_expr {
                    expr.apply(|e| {
                        if let Expr::WindowFunction(w) = e {
                            for key in w.params.partition_by.iter().chain(w.params.order_by.iter().map(|s| &s.expr)) {
                                self.inspect(key, Role::Window);
                            }
                            if let Some(filter) = &w.params.filter {
                                self.inspect(filter, Role::Filter);
                            }
                        }
                        Ok(TreeNodeRecursion::Continue)
                    })?;
                }
                let computed: Vec<Origin> = window_expr.iter().map(|e| self.origin(e)).collect();
                let mut columns = self.passthrough();
                columns.extend(computed);
                columns
            }
            LogicalPlan::Aggregate(Aggregate { group_expr, aggr_expr, .. }) => {
                let keys = grouping_set_to_exprlist(group_expr)?;
                for key in &keys {
                    self.inspect(key, Role::Group);
                }
                let correlated = std::mem::take(&mut self.correlated);
                self.inspected.extend(correlated.into_iter().map(|s| (s, Role::Group)));
                for expr in aggr_expr {
                    expr.apply(|e| {
                        if let Expr::AggregateFunction(AggregateFunction { params, .. }) = e {
                            for sort in &params.order_by {
                                self.inspect(&sort.expr, Role::Sort);
                            }
                            if let Some(filter) = &params.filter {
                                self.inspect(filter, Role::Filter);
                            }
                            if params.distinct {
                                for arg in &params.args {
                                    self.inspect(arg, Role::Group);
                                }
                            }
                        }
                        Ok(TreeNodeRecursion::Continue)
                    })?;
                }
                let mut columns: Vec<Origin> = keys.iter().map(|e| self.origin(e)).collect();
                if matches!(group_expr.as_slice(), [Expr::GroupingSet(_)]) {
                    let mut id = Origin::default();
                    for key in &columns {
                        id.absorb(key, Kind::Transform);
                    }
                    columns.push(id);
                }
                columns.extend(aggr_expr.iter().map(|e| self.origin(e)));
                columns
            }
            LogicalPlan::Sort(Sort { expr, .. }) => {
                for sort in expr {
                    self.inspect(&sort.expr, Role::Sort);
                }
                self.passthrough()
            }
            LogicalPlan::Join(join) => self.join(join),
            LogicalPlan::Union(_) => {
                let mut columns = vec![Origin::default(); width];
                for input in &self.inputs {
                    for (column, origin) in columns.iter_mut().zip(&input.columns) {
                        column.absorb(origin, Kind::Copy);
                    }
                }
                columns
            }
            LogicalPlan::Distinct(Distinct::All(_)) => {
                let columns = self.passthrough();
                for origin in &columns {
                    self.inspected.extend(origin.srcs.keys().map(|s| (s.clone(), Role::Group)));
                }
                columns
            }
            LogicalPlan::Distinct(Distinct::On(DistinctOn { on_expr, select_expr, sort_expr, .. })) => {
                for key in on_expr {
                    self.inspect(key, Role::Group);
                }
                for sort in sort_expr.iter().flatten() {
                    self.inspect(&sort.expr, Role::Sort);
                }
                select_expr.iter().map(|e| self.origin(e)).collect()
            }
            LogicalPlan::Unnest(unnest) => self.unnest(unnest),
            LogicalPlan::RecursiveQuery(query) => self.recursive(query),
            LogicalPlan::Limit(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Repartition(_)
            | LogicalPlan::Subquery(_) => self.passthrough(),
            LogicalPlan::Values(values) => {
                let mut columns = vec![Origin::default(); width];
                for row in &values.values {
                    for (column, expr) in columns.iter_mut().zip(row) {
                        let origin = self.origin(expr);
                        column.absorb(&origin, Kind::Copy);
                    }
                }
                columns
            }
            LogicalPlan::Extension(extension) => {
                let reason = format!("extension node `{}` is opaque to the walk", extension.node.name());
                let mut origin = Origin::unresolved(reason);
                for input in &self.inputs {
                    for column in &input.columns {
                        origin.absorb(column, Kind::Transform);
                    }
                }
                vec![origin; width]
            }
            // Plans whose output is not computed from their input's values: the count of a
            // write, a plan's text, a description, an empty relation, a statement.
            LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::DescribeTable(_)
            | LogicalPlan::EmptyRelation(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Ddl(_) => vec![Origin::default(); width],
        })
    }

    /// The single input's columns, unchanged.
    fn passthrough(&mut self) -> Vec<Origin> {
        self.inputs.first_mut().map(|input| std::mem::take(&mut input.columns)).unwrap_or_default()
    }

    fn scope(&self) -> Scope<'_> {
        scope_of(self.plan, &self.inputs)
    }

    /// The origin of one expression's value.
    fn origin(&self, expr: &Expr) -> Origin {
        match expr {
            Expr::Alias(Alias { expr, .. }) => self.origin(expr),
            Expr::Column(column) => self.column(column),
            Expr::OuterReferenceColumn(_, column) => Origin::of(Src::Outer(column.clone())),
            Expr::ScalarSubquery(subquery) => self.subquery_output(subquery),
            Expr::AggregateFunction(AggregateFunction { func, params })
                if SELECTING.contains(&func.name()) && params.filter.is_none() && !params.args.is_empty() =>
            {
                self.origin(&params.args[0])
            }
            Expr::WindowFunction(window)
                if SELECTING.contains(&window.fun.name())
                    && window.params.filter.is_none()
                    && !window.params.args.is_empty() =>
            {
                self.origin(&window.params.args[0])
            }
            _ => self.referenced(expr).transformed(),
        }
    }

    fn column(&self, column: &Column) -> Origin {
        self.scope().resolve(column).cloned().unwrap_or_else(|| {
            Origin::unresolved(format!("column `{column}` not found in the input of {}", self.plan.display()))
        })
    }

    fn subquery_output(&self, subquery: &Subquery) -> Origin {
        match self.subqueries.get(&Arc::as_ptr(&subquery.subquery)).and_then(|n| n.columns.first()) {
            Some(origin) => origin.clone(),
            None => Origin::unresolved("a subquery that the walk did not visit".to_owned()),
        }
    }

    /// Every source that an expression reads, with the kinds they had.
    fn referenced(&self, expr: &Expr) -> Origin {
        let mut origin = Origin::default();
        let _ = expr.apply(|e| {
            match e {
                // Only arguments are sources of an aggregate or a window function. Their ORDER
                // BY, PARTITION BY and FILTER decide which input rows count and in which order:
                // those are inspected (`sort`, `window`, `filter`), not sources.
                Expr::AggregateFunction(AggregateFunction { params: AggregateFunctionParams { args, .. }, .. }) => {
                    for arg in args {
                        origin.absorb_through(&self.referenced(arg), Kind::Copy, true);
                    }
                    return Ok(TreeNodeRecursion::Jump);
                }
                Expr::WindowFunction(window) => {
                    for arg in &window.params.args {
                        origin.absorb(&self.referenced(arg), Kind::Copy);
                    }
                    return Ok(TreeNodeRecursion::Jump);
                }
                Expr::Column(column) => origin.absorb(&self.column(column), Kind::Copy),
                Expr::OuterReferenceColumn(_, column) => {
                    origin.absorb(&Origin::of(Src::Outer(column.clone())), Kind::Copy);
                }
                Expr::ScalarSubquery(subquery)
                | Expr::InSubquery(InSubquery { subquery, .. })
                | Expr::SetComparison(SetComparison { subquery, .. }) => {
                    origin.absorb(&self.subquery_output(subquery), Kind::Copy);
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
        origin
    }

    fn inspect(&mut self, expr: &Expr, role: Role) {
        let origin = self.referenced(expr);
        self.inspected.extend(origin.srcs.into_keys().map(|s| (s, role)));
    }

    /// Inspects each comparison of a predicate, through `AND`, `OR`, `NOT` and `IS [NOT]
    /// TRUE|FALSE|UNKNOWN|NULL`, as a join
    /// condition or a filter. The optimizer factors a comparison out of an `OR` into a join
    /// key, so classifying whole conjuncts would depend on the plan's shape.
    fn predicate(&mut self, predicate: &Expr) {
        match predicate {
            Expr::BinaryExpr(BinaryExpr { left, op: Operator::And | Operator::Or, right }) => {
                self.predicate(left);
                self.predicate(right);
            }
            Expr::Not(inner)
            | Expr::IsTrue(inner)
            | Expr::IsFalse(inner)
            | Expr::IsNotTrue(inner)
            | Expr::IsNotFalse(inner)
            | Expr::IsUnknown(inner)
            | Expr::IsNotUnknown(inner)
            | Expr::IsNull(inner)
            | Expr::IsNotNull(inner) => self.predicate(inner),
            comparison => {
                let role = if is_join_condition(comparison) { Role::Join } else { Role::Filter };
                if role == Role::Join && comparison.contains_outer() {
                    let inner = self.referenced(comparison).srcs.into_keys().filter(|s| !matches!(s, Src::Outer(_)));
                    self.correlated.extend(inner);
                }
                self.inspect(comparison, role);
            }
        }
    }

    fn join(&mut self, join: &Join) -> Vec<Origin> {
        let [left, right] = self.inputs.as_slice() else {
            return vec![Origin::unresolved("a join without two inputs".to_owned()); self.plan.schema().fields().len()];
        };
        let (left_scope, right_scope) = (
            Scope { parts: vec![(join.left.schema().as_ref(), left.columns.as_slice())] },
            Scope { parts: vec![(join.right.schema().as_ref(), right.columns.as_slice())] },
        );
        let mut keys = BTreeSet::new();
        for (l, r) in &join.on {
            for (expr, scope) in [(l, &left_scope), (r, &right_scope)] {
                let _ = expr.apply(|e| {
                    if let Expr::Column(c) = e
                        && let Some(origin) = scope.resolve(c)
                    {
                        keys.extend(origin.srcs.keys().map(|s| (s.clone(), Role::Join)));
                    }
                    Ok(TreeNodeRecursion::Continue)
                });
            }
        }
        self.inspected.append(&mut keys);
        if let Some(filter) = &join.filter {
            self.predicate(filter);
        }
        let [left, right] = self.inputs.as_mut_slice() else { unreachable!("checked above") };
        let (left, right) = (std::mem::take(&mut left.columns), std::mem::take(&mut right.columns));
        match join.join_type {
            JoinType::LeftSemi | JoinType::LeftAnti => left,
            JoinType::RightSemi | JoinType::RightAnti => right,
            JoinType::LeftMark => {
                let mut columns = left;
                columns.push(Origin::default());
                columns
            }
            JoinType::RightMark => {
                let mut columns = right;
                columns.push(Origin::default());
                columns
            }
            JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                left.into_iter().chain(right).collect()
            }
        }
    }

    fn unnest(&mut self, unnest: &Unnest) -> Vec<Origin> {
        let input = self.passthrough();
        unnest
            .dependency_indices
            .iter()
            .map(|&i| {
                let unnested =
                    unnest.list_type_columns.iter().any(|(j, _)| *j == i) || unnest.struct_type_columns.contains(&i);
                match input.get(i) {
                    Some(origin) if unnested => origin.clone().transformed(),
                    Some(origin) => origin.clone(),
                    None => Origin::unresolved(format!("unnest input column {i} does not exist")),
                }
            })
            .collect()
    }

    /// A recursive CTE: the static and recursive terms by position, with the work table's
    /// columns replaced by the query's own output until nothing changes.
    fn recursive(&mut self, query: &RecursiveQuery) -> Vec<Origin> {
        let names: Vec<String> = query.schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut columns = vec![Origin::default(); names.len()];
        for input in &self.inputs {
            for (column, origin) in columns.iter_mut().zip(&input.columns) {
                column.absorb(origin, Kind::Copy);
            }
        }
        let own = |src: &Src| match src {
            Src::Work(name, column) if *name == query.name => names.iter().position(|n| n == column),
            _ => None,
        };
        // Sources and kinds only grow, so the fixpoint is reached.
        loop {
            let snapshot = columns.clone();
            for column in &mut columns {
                let refs: Vec<(usize, Kind, bool)> = (column.srcs.iter())
                    .filter_map(|(s, k)| own(s).map(|i| (i, *k, column.aggregated.contains(s))))
                    .collect();
                for (i, kind, aggregated) in refs {
                    column.absorb_through(&snapshot[i], kind, aggregated);
                }
            }
            if columns
                .iter()
                .zip(&snapshot)
                .all(|(now, before)| now.srcs == before.srcs && now.aggregated == before.aggregated)
            {
                break;
            }
        }
        for column in &mut columns {
            column.srcs.retain(|src, _| own(src).is_none());
            column.aggregated.retain(|src| own(src).is_none());
        }
        let inspected = std::mem::take(&mut self.inspected);
        for (src, role) in inspected {
            match own(&src) {
                Some(i) => self.inspected.extend(columns[i].srcs.keys().map(|s| (s.clone(), role))),
                None => {
                    self.inspected.insert((src, role));
                }
            }
        }
        columns
    }
}

fn scope_of<'a>(plan: &'a LogicalPlan, inputs: &'a [Node]) -> Scope<'a> {
    Scope {
        parts: plan
            .inputs()
            .into_iter()
            .zip(inputs)
            .map(|(input, node)| (input.schema().as_ref(), node.columns.as_slice()))
            .collect(),
    }
}

/// A comparison between different relations, or a subquery: a join, wherever it is written.
fn is_join_condition(conjunct: &Expr) -> bool {
    match conjunct {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_comparison(*op) => {
            let (left, right) = (relations(left), relations(right));
            !left.is_empty() && !right.is_empty() && left.is_disjoint(&right)
        }
        Expr::InSubquery(InSubquery { expr, .. }) | Expr::SetComparison(SetComparison { expr, .. }) => {
            !relations(expr).is_empty()
        }
        _ => false,
    }
}

fn is_comparison(op: Operator) -> bool {
    use Operator::{Eq, Gt, GtEq, IsDistinctFrom, IsNotDistinctFrom, Lt, LtEq, NotEq};
    matches!(op, Eq | NotEq | Lt | LtEq | Gt | GtEq | IsDistinctFrom | IsNotDistinctFrom)
}

/// The relations (by qualifier) and subqueries an expression reads.
fn relations(expr: &Expr) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let _ = expr.apply(|e| {
        match e {
            Expr::Column(c) | Expr::OuterReferenceColumn(_, c) => {
                found.insert(c.relation.as_ref().map(ToString::to_string).unwrap_or_default());
            }
            Expr::ScalarSubquery(s) => {
                found.insert(format!("subquery {:p}", Arc::as_ptr(&s.subquery)));
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
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
