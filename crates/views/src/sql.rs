//! SQL views: one query per file, checked against the safe SQL policy, planned lazily.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::common::{DataFusionError, ParamValues, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, SQLOptions, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::{LazyView, Result, ViewError};

/// A view defined by one SQL query, parsed and checked but not yet planned.
#[derive(Debug, Clone)]
pub struct SqlView {
    name: String,
    file: PathBuf,
    statement: Statement,
    references: Vec<String>,
    params: BTreeMap<String, ScalarValue>,
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
        let invalid = |e: DataFusionError| ViewError::Invalid {
            view: name.to_owned(),
            file: file.to_owned(),
            message: e.strip_backtrace(),
        };
        let refused =
            |what: &str| ViewError::Refused { view: name.to_owned(), file: file.to_owned(), what: what.to_owned() };
        let mut statements =
            DFParserBuilder::new(sql).build().and_then(|mut p| p.parse_statements()).map_err(invalid)?;
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
            Statement::Explain(_) => return Err(refused("EXPLAIN")),
            Statement::Reset(_) => return Err(refused("RESET")),
        }
        let references = state
            .resolve_table_references(&statement)
            .map_err(invalid)?
            .iter()
            .map(|r| r.table().to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok(Self { name: name.to_owned(), file: file.to_owned(), statement, references, params: BTreeMap::new() })
    }

    /// Binds named parameters (`$name` in the SQL) to typed values.
    #[must_use]
    pub fn with_params(mut self, params: BTreeMap<String, ScalarValue>) -> Self {
        self.params = params;
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
        let invalid = |e: DataFusionError| ViewError::Invalid {
            view: self.name.clone(),
            file: self.file.clone(),
            message: e.strip_backtrace(),
        };
        let state = ctx.state();
        let plan = state.statement_to_plan(self.statement.clone()).await.map_err(invalid)?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| ViewError::Refused {
            view: self.name.clone(),
            file: self.file.clone(),
            what: e.strip_backtrace(),
        })?;
        let plan = self.bind(plan)?;
        Ok(DataFrame::new(state, plan))
    }

    fn bind(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        let parameter = |message: String| ViewError::Parameter { view: self.name.clone(), message };
        let used: BTreeSet<String> = plan
            .get_parameter_names()
            .map_err(|e| parameter(e.strip_backtrace()))?
            .into_iter()
            .map(|p| p.trim_start_matches('$').to_owned())
            .collect();
        if let Some(missing) = used.iter().find(|p| !self.params.contains_key(*p)) {
            return Err(parameter(format!("parameter `${missing}` has no value; set it under `params`")));
        }
        if let Some(unused) = self.params.keys().find(|p| !used.contains(*p)) {
            return Err(parameter(format!("parameter `{unused}` is not used by the SQL; remove it")));
        }
        if used.is_empty() {
            return Ok(plan);
        }
        let values: Vec<(String, ScalarValue)> = self.params.clone().into_iter().collect();
        plan.with_param_values(ParamValues::from(values)).map_err(|e| parameter(e.strip_backtrace()))
    }
}

/// Registers `df` under `name` as a [`LazyView`]: readers plan it, nothing executes here.
pub fn register_lazy(ctx: &SessionContext, name: &str, df: DataFrame) -> datafusion::error::Result<()> {
    ctx.register_table(name, Arc::new(LazyView::new(df)))?;
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
