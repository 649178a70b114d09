//! Typed parameters: scalars bound to `$name` placeholders, and lists served as relations.
//!
//! A scalar is bound with DataFusion's `param_values`, after its type has been checked
//! against the type the plan infers for its placeholder. A list never becomes SQL text: it
//! becomes a relation with one column, `value`, built in one of three ways
//! ([`ListStrategy`]). In a SQL view the relation is written `param_table($name)`, a table
//! function registered on the session ([`register_param_table`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::arrow::array::{ArrayRef, RecordBatch, new_empty_array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DFSchema, ScalarValue, plan_err};
use datafusion::datasource::{MemTable, ViewTable};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit};
use datafusion::prelude::{DataFrame, SessionContext};

/// The name of the table function that serves list parameters in SQL views.
pub const PARAM_TABLE: &str = "param_table";

/// The name of the one column of a list parameter's relation.
pub const LIST_COLUMN: &str = "value";

/// A parameter's value: a scalar bound to `$name`, or a list served as a relation.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A typed scalar, bound to a `$name` placeholder.
    Scalar(ScalarValue),
    /// A typed list, read as the relation `param_table($name)` (column `value`).
    List(ListParam),
}

impl ParamValue {
    /// The value's type, for messages: `Int64`, or `List(Int64)`.
    pub fn type_name(&self) -> String {
        match self {
            Self::Scalar(s) => s.data_type().to_string(),
            Self::List(l) => format!("List({})", l.element_type),
        }
    }
}

impl From<ScalarValue> for ParamValue {
    fn from(value: ScalarValue) -> Self {
        Self::Scalar(value)
    }
}

impl From<ListParam> for ParamValue {
    fn from(value: ListParam) -> Self {
        Self::List(value)
    }
}

/// A list parameter: values that all have one type.
#[derive(Debug, Clone, PartialEq)]
pub struct ListParam {
    element_type: DataType,
    values: Vec<ScalarValue>,
}

impl ListParam {
    /// A list of `values`, each of type `element_type` (nulls of any type are accepted and
    /// cast). A value of another type is an error naming its position.
    pub fn new(element_type: DataType, values: Vec<ScalarValue>) -> Result<Self, String> {
        let values = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                if v.data_type() == element_type {
                    Ok(v)
                } else if v.is_null() {
                    ScalarValue::try_from(&element_type).map_err(|e| e.strip_backtrace())
                } else {
                    Err(format!("element {i} is a {}, but the list holds {element_type}", v.data_type()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { element_type, values })
    }

    /// A list whose element type is that of its first value (`Null` when empty).
    pub fn infer(values: Vec<ScalarValue>) -> Result<Self, String> {
        let element_type = values.iter().find(|v| !v.is_null()).map_or(DataType::Null, ScalarValue::data_type);
        Self::new(element_type, values)
    }

    /// The type of the elements.
    pub fn element_type(&self) -> &DataType {
        &self.element_type
    }

    /// The elements.
    pub fn values(&self) -> &[ScalarValue] {
        &self.values
    }

    /// The list as a logical plan with one column, `value`, one row per element.
    pub fn plan(&self, strategy: ListStrategy) -> DfResult<LogicalPlan> {
        match strategy {
            ListStrategy::Values if self.values.is_empty() => {
                let schema = DFSchema::try_from(self.schema())?;
                Ok(LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
                    produce_one_row: false,
                    schema: Arc::new(schema),
                }))
            }
            ListStrategy::Values => {
                let rows = self.values.iter().map(|v| vec![lit(v.clone())]).collect();
                let builder = LogicalPlanBuilder::values(rows)?;
                let first = builder.schema().field(0).name().clone();
                builder.project([Expr::Column(first.into()).alias(LIST_COLUMN)])?.build()
            }
            ListStrategy::Unnest => {
                let array = ScalarValue::List(ScalarValue::new_list(&self.values, &self.element_type, true));
                LogicalPlanBuilder::empty(true)
                    .project([lit(array).alias(LIST_COLUMN)])?
                    .unnest_column(LIST_COLUMN)?
                    .build()
            }
            ListStrategy::ParamTable => {
                let provider = self.table()?;
                LogicalPlanBuilder::scan(PARAM_TABLE, datafusion::datasource::provider_as_source(provider), None)?
                    .build()
            }
        }
    }

    /// The list as a lazy `DataFrame` on `ctx` (column `value`).
    pub fn to_dataframe(&self, ctx: &SessionContext, strategy: ListStrategy) -> DfResult<DataFrame> {
        Ok(DataFrame::new(ctx.state(), self.plan(strategy)?))
    }

    /// A table provider for the relation: inlined as a plan for `Values` and `Unnest`, an
    /// in-memory table for `ParamTable`.
    fn provider(&self, strategy: ListStrategy) -> DfResult<Arc<dyn TableProvider>> {
        match strategy {
            ListStrategy::ParamTable => self.table(),
            ListStrategy::Values | ListStrategy::Unnest => Ok(Arc::new(ViewTable::new(self.plan(strategy)?, None))),
        }
    }

    fn schema(&self) -> Schema {
        Schema::new(vec![Field::new(LIST_COLUMN, self.element_type.clone(), true)])
    }

    fn table(&self) -> DfResult<Arc<dyn TableProvider>> {
        let schema = Arc::new(self.schema());
        let column: ArrayRef = if self.values.is_empty() {
            new_empty_array(&self.element_type)
        } else {
            ScalarValue::iter_to_array(self.values.iter().cloned())?
        };
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![column])?;
        Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
    }
}

/// How a list parameter becomes a relation. All three give the same rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ListStrategy {
    /// A `VALUES` relation, one row per element (an empty relation for an empty list).
    #[default]
    Values,
    /// `unnest` of one array literal.
    Unnest,
    /// A scan of the in-memory table served by the `param_table` table function.
    ParamTable,
}

impl fmt::Display for ListStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Values => "values",
            Self::Unnest => "unnest",
            Self::ParamTable => "param_table",
        })
    }
}

/// The declared type of a template's parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamType {
    /// A scalar of this type.
    Scalar(DataType),
    /// A list of elements of this type.
    List(DataType),
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Scalar(t) => write!(f, "{t}"),
            Self::List(t) => write!(f, "List({t})"),
        }
    }
}

/// Checks `value` (the parameter `name`) against the type `expected`, converting it where
/// nothing can be lost: an integer to a wider integer, a float or a decimal; a float to a
/// float or a decimal; a string to another string type or, parsed, to a date, time or
/// timestamp. Anything else is a type mismatch.
pub(crate) fn coerce(name: &str, value: &ScalarValue, expected: &DataType) -> Result<ScalarValue, String> {
    let given = value.data_type();
    if &given == expected {
        return Ok(value.clone());
    }
    if value.is_null() {
        return ScalarValue::try_from(expected).map_err(|e| e.strip_backtrace());
    }
    let allowed = (given.is_integer() && (expected.is_numeric()))
        || (given.is_floating() && (expected.is_floating() || expected.is_decimal()))
        || (given.is_decimal() && expected.is_decimal())
        || (matches!(given, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            && (matches!(expected, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
                || expected.is_temporal()));
    if !allowed {
        return Err(format!("parameter `${name}` is a {given}, but the query uses it as a {expected}"));
    }
    value
        .cast_to(expected)
        .map_err(|e| format!("parameter `${name}` = {value} does not fit a {expected}: {}", e.strip_backtrace()))
}

/// Registers the `param_table` table function on `ctx`. Outside a view that binds list
/// parameters it refuses every call; views bind it to their own lists while they are planned.
pub fn register_param_table(ctx: &SessionContext) {
    ctx.register_udtf(PARAM_TABLE, Arc::new(ParamTable::unbound()));
}

/// The `param_table($name)` table function: the relation of a list parameter.
#[derive(Debug)]
pub(crate) struct ParamTable {
    lists: BTreeMap<String, ListParam>,
    strategy: ListStrategy,
    /// The names asked for while planning, found or not.
    asked: Mutex<BTreeSet<String>>,
    bound: bool,
}

impl ParamTable {
    fn unbound() -> Self {
        Self { lists: BTreeMap::new(), strategy: ListStrategy::default(), asked: Mutex::default(), bound: false }
    }

    /// Serves `lists` with `strategy` while one view is planned.
    pub(crate) fn bound(lists: BTreeMap<String, ListParam>, strategy: ListStrategy) -> Self {
        Self { lists, strategy, asked: Mutex::default(), bound: true }
    }

    /// The names asked for so far.
    pub(crate) fn asked(&self) -> BTreeSet<String> {
        self.asked.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl TableFunctionImpl for ParamTable {
    fn call_with_args(&self, args: TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        let name = match args.exprs() {
            [Expr::Placeholder(p)] => p.id.trim_start_matches('$').to_owned(),
            [Expr::Literal(ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name)), _)] => name.clone(),
            _ => return plan_err!("{PARAM_TABLE} takes one list parameter, like {PARAM_TABLE}($ids)"),
        };
        self.asked.lock().unwrap_or_else(PoisonError::into_inner).insert(name.clone());
        if !self.bound {
            return plan_err!("{PARAM_TABLE}(${name}) is only available in a view that binds the list `{name}`");
        }
        if let Some(list) = self.lists.get(&name) {
            list.provider(self.strategy)
        } else {
            plan_err!("{PARAM_TABLE}(${name}): the list parameter `{name}` has no value")
        }
    }
}
