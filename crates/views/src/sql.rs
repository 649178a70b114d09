//! SQL views: one query per file, checked against the safe SQL policy, planned lazily.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::catalog::TableFunctionImpl;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use futures::FutureExt;

use crate::params::{ListParam, ListStrategy, PARAM_TABLE, ParamTable, ParamValue, coerce};
use crate::{LazyView, Result, ViewError, user_message};

/// A view defined by one SQL query, parsed and checked but not yet planned.
#[derive(Debug, Clone)]
pub struct SqlView {
    name: String,
    file: PathBuf,
    statement: Statement,
    references: Vec<String>,
    params: BTreeMap<String, ParamValue>,
    strategy: ListStrategy,
}

impl SqlView {
    /// Reads `file` and parses it as the view `name`.
    pub fn from_file(name: &str, file: &Path, state: &SessionState) -> Result<Self> {
        let sql = std::fs::read_to_string(file).map_err(|source| ViewError::Io {
            view: name.to_owned(),
            file: file.to_owned(),
            source,
        })?;
        Self::parse(name, file, &sql, state)
    }

    /// Parses `sql` as the view `name`, found in `file`. Anything but exactly one query is
    /// refused.
    pub fn parse(name: &str, file: &Path, sql: &str, state: &SessionState) -> Result<Self> {
        let invalid = |e: &DataFusionError| match invalid(name, file, e) {
            // The parser does not locate the end of the input: it is the end of the file.
            ViewError::Invalid { view, file, line: None, column: None, message } if message.contains("found: EOF") => {
                let (line, column) = end_of(sql);
                ViewError::Invalid { view, file, line: Some(line), column: Some(column), message }
            }
            other => other,
        };
        let refused =
            |what: &str| ViewError::Refused { view: name.to_owned(), file: file.to_owned(), what: what.to_owned() };
        let mut statements =
            DFParserBuilder::new(sql).build().and_then(|mut p| p.parse_statements()).map_err(|e| invalid(&e))?;
        let statement = match (statements.pop_front(), statements.len()) {
            (None, _) => return Err(refused("an empty file")),
            (Some(_), n) if n > 0 => return Err(refused(&format!("{} statements", n + 1))),
            (Some(statement), _) => statement,
        };
        match &statement {
            Statement::Statement(s) if matches!(**s, SqlStatement::Query(_)) => {}
            Statement::Statement(s) => return Err(refused(&statement_kind(s))),
            Statement::CreateExternalTable(_) => return Err(refused("CREATE EXTERNAL TABLE")),
            Statement::CopyTo(_) => return Err(refused("COPY")),
            Statement::Explain(e) if e.options.analyze => return Err(refused("EXPLAIN ANALYZE")),
            Statement::Explain(_) => return Err(refused("EXPLAIN")),
            Statement::Reset(_) => return Err(refused("RESET")),
        }
        let references = state
            .resolve_table_references(&statement)
            .map_err(|e| invalid(&e))?
            .iter()
            .map(|r| r.table().to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok(Self {
            name: name.to_owned(),
            file: file.to_owned(),
            statement,
            references,
            params: BTreeMap::new(),
            strategy: ListStrategy::default(),
        })
    }

    /// Binds named parameters: scalars to `$name` placeholders, lists to
    /// `param_table($name)`. Replaces any parameters bound before.
    #[must_use]
    pub fn with_params<V: Into<ParamValue>>(mut self, params: impl IntoIterator<Item = (String, V)>) -> Self {
        self.params = params.into_iter().map(|(k, v)| (k, v.into())).collect();
        self
    }

    /// How `param_table($name)` turns a list parameter into a relation (default: `VALUES`).
    #[must_use]
    pub fn with_list_strategy(mut self, strategy: ListStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The view's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file the view was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The tables and views the SQL names (CTE names excluded), sorted. Used only to order
    /// planning; dependencies proper come from the plan.
    pub fn references(&self) -> &[String] {
        &self.references
    }

    /// Plans the view into a lazy `DataFrame`. Every relation it references must already be
    /// registered in `ctx`. Nothing is executed.
    pub async fn plan(&self, ctx: &SessionContext) -> Result<DataFrame> {
        self.plan_with(ctx, self.strategy).await
    }

    pub(crate) async fn plan_with(&self, ctx: &SessionContext, strategy: ListStrategy) -> Result<DataFrame> {
        let lists: BTreeMap<String, ListParam> = self
            .params
            .iter()
            .filter_map(|(k, v)| match v {
                ParamValue::List(l) => Some((k.clone(), l.clone())),
                ParamValue::Scalar(_) => None,
            })
            .collect();
        // The session as it is, with `param_table` bound to this view's lists while it is
        // planned (a copy: the context's own function stays unbound).
        let table = Arc::new(ParamTable::bound(lists, strategy));
        let mut state = ctx.state();
        state.register_udtf(PARAM_TABLE, Arc::clone(&table) as Arc<dyn TableFunctionImpl>);
        // DataFusion's planner panics on a few malformed queries (a scalar subquery that
        // selects no column): that is an error in this view, not a crash of dfpipe.
        let planned = match AssertUnwindSafe(state.statement_to_plan(self.statement.clone())).catch_unwind().await {
            Ok(planned) => planned,
            Err(panic) => return Err(self.planner_panicked(panic.as_ref())),
        };
        let asked = table.asked();
        for name in &asked {
            match self.params.get(name) {
                Some(ParamValue::List(_)) => {}
                Some(ParamValue::Scalar(v)) => {
                    return Err(self.parameter(format!(
                        "parameter `${name}` is a {}, but {PARAM_TABLE}(${name}) reads a list",
                        v.data_type()
                    )));
                }
                None => return Err(self.parameter(missing(name))),
            }
        }
        let plan = match planned {
            Ok(plan) => plan,
            Err(e) => return Err(self.located(&state, e).await),
        };
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| ViewError::Refused {
            view: self.name.clone(),
            file: self.file.clone(),
            what: user_message(&e),
        })?;
        if let Some(operator) = unexecutable_operator(&plan) {
            return Err(ViewError::Invalid {
                view: self.name.clone(),
                file: self.file.clone(),
                line: None,
                column: None,
                message: format!(
                    "operator {operator} cannot run: DataFusion runs `@>` and `<@` on arrays only (as array_has_all), \
                     and the other operators of its kind not at all; write it with a function"
                ),
            });
        }
        let plan = self.bind(plan, &asked)?;
        Ok(DataFrame::new(state, plan))
    }

    /// The error of a view whose planning panicked in DataFusion, with the panic's message.
    fn planner_panicked(&self, panic: &(dyn std::any::Any + Send)) -> ViewError {
        let cause = (panic.downcast_ref::<&str>().copied())
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("no message");
        ViewError::Invalid {
            view: self.name.clone(),
            file: self.file.clone(),
            line: None,
            column: None,
            message: format!(
                "DataFusion's planner failed on this query ({cause}), a DataFusion bug; \
                 check the query (does every subquery select a column?) or write it another way"
            ),
        }
    }

    /// The error of a failed plan, with its line and column: planned again with spans
    /// collected (only on this error path, so successful plans are untouched).
    async fn located(&self, state: &SessionState, error: DataFusionError) -> ViewError {
        let mut spanned = state.clone();
        spanned.config_mut().options_mut().sql_parser.collect_spans = true;
        let error = match AssertUnwindSafe(spanned.statement_to_plan(self.statement.clone())).catch_unwind().await {
            Ok(Err(located)) => located,
            Ok(Ok(_)) | Err(_) => error,
        };
        invalid(&self.name, &self.file, &error)
    }

    /// The error of this view's plan failing after it left [`SqlView::plan`]: while it is
    /// optimized or physically planned (by `dfpipe-artifacts`' `capture`, say). A user's
    /// type or cast error often surfaces only there. The error names the view and its file,
    /// with the line and column where DataFusion's diagnostic gives them, and reads as
    /// [`user_message`] says.
    pub fn planning_error(&self, error: &DataFusionError) -> ViewError {
        invalid(&self.name, &self.file, error)
    }

    fn parameter(&self, message: String) -> ViewError {
        ViewError::Parameter { view: self.name.clone(), message }
    }

    /// Binds the scalars, after checking each against the type the plan expects.
    fn bind(&self, plan: LogicalPlan, lists_read: &BTreeSet<String>) -> Result<LogicalPlan> {
        let types: BTreeMap<String, _> = plan
            .get_parameter_types()
            .map_err(|e| self.parameter(user_message(&e)))?
            .into_iter()
            .map(|(id, t)| (id.trim_start_matches('$').to_owned(), t))
            .collect();
        let mut values: Vec<(String, ScalarValue)> = Vec::with_capacity(types.len());
        for (name, expected) in &types {
            match self.params.get(name) {
                None => return Err(self.parameter(missing(name))),
                Some(ParamValue::List(l)) => {
                    return Err(self.parameter(format!(
                        "parameter `${name}` is a list of {}; read it as a relation, {PARAM_TABLE}(${name})",
                        l.element_type()
                    )));
                }
                Some(ParamValue::Scalar(v)) => {
                    let v = match expected {
                        Some(expected) => coerce(name, v, expected).map_err(|m| self.parameter(m))?,
                        None => v.clone(),
                    };
                    values.push((name.clone(), v));
                }
            }
        }
        if let Some(unused) = self.params.keys().find(|p| !types.contains_key(*p) && !lists_read.contains(*p)) {
            return Err(self.parameter(format!("parameter `{unused}` is not used by the SQL; remove it")));
        }
        if values.is_empty() {
            return Ok(plan);
        }
        plan.with_param_values(values).map_err(|e| self.parameter(user_message(&e)))
    }
}

/// The first binary operator of `plan` (subqueries included) that DataFusion plans but
/// cannot evaluate: `@>` and `<@` on operands that are not arrays (on arrays the SQL planner
/// rewrote them into `array_has_all`), and the JSON-style operators no function backs.
/// DataFusion builds the physical plan for them, and fails only when a batch is evaluated.
fn unexecutable_operator(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        // The schema the node's expressions are evaluated against, when it has one input.
        let input = match node.inputs().as_slice() {
            [input] => Some(Arc::clone(input.schema())),
            _ => None,
        };
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::BinaryExpr(binary) = e
                    && matches!(
                        binary.op,
                        Operator::AtArrow
                            | Operator::ArrowAt
                            | Operator::Arrow
                            | Operator::LongArrow
                            | Operator::HashArrow
                            | Operator::HashLongArrow
                            | Operator::AtAt
                            | Operator::HashMinus
                            | Operator::AtQuestion
                            | Operator::Question
                            | Operator::QuestionAnd
                            | Operator::QuestionPipe
                            | Operator::IntegerDivide
                            | Operator::Colon
                    )
                {
                    let types = input.as_ref().and_then(|schema| {
                        Some((binary.left.get_type(schema).ok()?, binary.right.get_type(schema).ok()?))
                    });
                    found = Some(match types {
                        Some((left, right)) => format!("`{}` between {left} and {right}", binary.op),
                        None => format!("`{}`", binary.op),
                    });
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if found.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    });
    found
}

/// The line and column just after the last character of `text`.
fn end_of(text: &str) -> (u64, u64) {
    let line = text.split('\n').count();
    let last = text.rsplit('\n').next().unwrap_or_default();
    (line as u64, last.chars().count() as u64 + 1)
}

fn missing(name: &str) -> String {
    format!("parameter `${name}` has no value; set it under `params`")
}

/// A parse or planning error, with the line and column DataFusion's diagnostic or the
/// parser's message gives.
pub(crate) fn invalid(view: &str, file: &Path, error: &DataFusionError) -> ViewError {
    let mut message = user_message(error);
    let from_diagnostic =
        error.diagnostic().and_then(|d| d.span).filter(|s| s.start.line > 0).map(|s| (s.start.line, s.start.column));
    let from_text = strip_location(&mut message);
    let (line, column) = from_diagnostic.or(from_text).map_or((None, None), |(l, c)| (Some(l), Some(c)));
    ViewError::Invalid { view: view.to_owned(), file: file.to_owned(), line, column, message }
}

/// Removes sqlparser's ` at Line: x, Column: y` from `message`, returning `(x, y)`.
fn strip_location(message: &mut String) -> Option<(u64, u64)> {
    const MARK: &str = " at Line: ";
    let start = message.find(MARK)?;
    let rest = &message[start + MARK.len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let location = (line.parse().ok()?, rest[..digits].parse().ok()?);
    let end = message.len() - rest.len() + digits;
    message.replace_range(start..end, "");
    Some(location)
}

/// Registers `df` under `name` as a [`LazyView`]: readers plan it, nothing executes here.
pub fn register_lazy(ctx: &SessionContext, name: &str, df: DataFrame) -> datafusion::error::Result<()> {
    ctx.register_table(name, Arc::new(LazyView::new(name, df)))?;
    Ok(())
}

/// A short name for a refused statement, like `CREATE TABLE` or `INSERT`.
fn statement_kind(statement: &SqlStatement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second] if ["CREATE", "DROP", "ALTER"].contains(&first.to_uppercase().as_str()) => {
            format!("{} {}", first.to_uppercase(), second.to_uppercase())
        }
        [first, ..] => first.to_uppercase(),
        [] => "an empty statement".to_owned(),
    }
}
