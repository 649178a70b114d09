//! View templates: Rust code that builds a view's `DataFrame` from typed parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use datafusion::common::{ScalarValue, plan_datafusion_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, lit};
use datafusion::prelude::{DataFrame, SessionContext};

use crate::params::{ListParam, ListStrategy, ParamType, ParamValue, coerce};
use crate::{Result, ViewError, user_message};

/// A view written in Rust: a name, typed parameters, and a function that builds a lazy
/// `DataFrame` with the DataFrame/Expr API. A template builds on other views by reading them
/// by name (`ctx.table("stg_orders")`); a registry registers those first.
#[async_trait]
pub trait ViewTemplate: Send + Sync + fmt::Debug {
    /// The view's name, unique in a pipeline.
    fn name(&self) -> &str;

    /// The parameters the template takes. Values are checked against these types before
    /// [`ViewTemplate::build`] runs.
    fn params(&self) -> Vec<ParamSpec> {
        Vec::new()
    }

    /// The views (or sources) the template expects to read, when it declares them. The
    /// registry plans those first, and reports any difference with what the plan reads.
    fn depends_on(&self) -> Option<Vec<String>> {
        None
    }

    /// Builds the view. It must stay lazy: never `collect`, `show` or anything that executes.
    async fn build(&self, ctx: &SessionContext, params: &BoundParams) -> DfResult<DataFrame>;
}

/// Builds `template`'s `DataFrame` with `params` checked against its declared parameters,
/// and lists read through `strategy`. A declared parameter the template never reads is an
/// error, as is a value for an undeclared one. Nothing executes.
pub async fn build_template(
    template: &dyn ViewTemplate,
    ctx: &SessionContext,
    params: &BTreeMap<String, ParamValue>,
    strategy: ListStrategy,
) -> Result<DataFrame> {
    let name = template.name();
    let bound = BoundParams::bind(name, &template.params(), params, strategy)?;
    let df = template
        .build(ctx, &bound)
        .await
        .map_err(|e| ViewError::Template { view: name.to_owned(), message: user_message(&e) })?;
    if let Some(unread) = bound.unread() {
        return Err(ViewError::Parameter {
            view: name.to_owned(),
            message: format!("parameter `{unread}` is declared but the template never reads it"),
        });
    }
    Ok(df)
}

/// A declared parameter of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Its name.
    pub name: String,
    /// Its type.
    pub param_type: ParamType,
    /// The value used when none is given.
    pub default: Option<ParamValue>,
}

impl ParamSpec {
    /// A scalar parameter of type `data_type`, with no default.
    pub fn scalar(name: &str, data_type: datafusion::arrow::datatypes::DataType) -> Self {
        Self { name: name.to_owned(), param_type: ParamType::Scalar(data_type), default: None }
    }

    /// A list parameter of elements of type `element_type`, with no default.
    pub fn list(name: &str, element_type: datafusion::arrow::datatypes::DataType) -> Self {
        Self { name: name.to_owned(), param_type: ParamType::List(element_type), default: None }
    }

    /// The same parameter with a default value.
    #[must_use]
    pub fn with_default(mut self, default: impl Into<ParamValue>) -> Self {
        self.default = Some(default.into());
        self
    }
}

/// A template's parameters, checked against their declared types. Reading one records it:
/// a declared parameter the template never reads is reported as unused.
#[derive(Debug)]
pub struct BoundParams {
    values: BTreeMap<String, ParamValue>,
    strategy: ListStrategy,
    read: Mutex<BTreeSet<String>>,
}

impl BoundParams {
    /// Checks `given` against `specs`: every declared parameter has a value (given or its
    /// default) of its type, and every given value is declared.
    pub(crate) fn bind(
        view: &str,
        specs: &[ParamSpec],
        given: &BTreeMap<String, ParamValue>,
        strategy: ListStrategy,
    ) -> Result<Self> {
        let error = |message: String| ViewError::Parameter { view: view.to_owned(), message };
        if let Some(unused) = given.keys().find(|k| !specs.iter().any(|s| &s.name == *k)) {
            return Err(error(format!("parameter `{unused}` is not declared by the template; remove it")));
        }
        let mut values = BTreeMap::new();
        for spec in specs {
            let name = &spec.name;
            let Some(value) = given.get(name).or(spec.default.as_ref()) else {
                return Err(error(format!(
                    "parameter `${name}` ({}) has no value; set it under `params`",
                    spec.param_type
                )));
            };
            let value = match (&spec.param_type, value) {
                (ParamType::Scalar(t), ParamValue::Scalar(v)) => ParamValue::Scalar(coerce(name, v, t).map_err(error)?),
                (ParamType::List(t), ParamValue::List(l)) => {
                    let values = l.values().iter().map(|v| coerce(name, v, t)).collect::<Result<Vec<_>, _>>();
                    ParamValue::List(ListParam::new(t.clone(), values.map_err(error)?).map_err(error)?)
                }
                (expected, given) => {
                    return Err(error(format!(
                        "parameter `${name}` is a {}, but the template declares it as a {expected}",
                        given.type_name()
                    )));
                }
            };
            values.insert(name.clone(), value);
        }
        Ok(Self { values, strategy, read: Mutex::default() })
    }

    /// The scalar parameter `name`.
    pub fn scalar(&self, name: &str) -> DfResult<ScalarValue> {
        match self.get(name)? {
            ParamValue::Scalar(v) => Ok(v.clone()),
            ParamValue::List(_) => Err(plan_datafusion_err!("parameter `{name}` is a list, not a scalar")),
        }
    }

    /// The scalar parameter `name` as a literal expression.
    pub fn lit(&self, name: &str) -> DfResult<Expr> {
        self.scalar(name).map(lit)
    }

    /// The list parameter `name`.
    pub fn list(&self, name: &str) -> DfResult<&ListParam> {
        match self.get(name)? {
            ParamValue::List(l) => Ok(l),
            ParamValue::Scalar(_) => Err(plan_datafusion_err!("parameter `{name}` is a scalar, not a list")),
        }
    }

    /// The list parameter `name` as a relation with one column, `value`, built with the
    /// registry's [`ListStrategy`].
    pub fn relation(&self, ctx: &SessionContext, name: &str) -> DfResult<DataFrame> {
        self.list(name)?.to_dataframe(ctx, self.strategy)
    }

    /// How lists become relations.
    pub fn strategy(&self) -> ListStrategy {
        self.strategy
    }

    fn get(&self, name: &str) -> DfResult<&ParamValue> {
        let value = self
            .values
            .get(name)
            .ok_or_else(|| plan_datafusion_err!("parameter `{name}` is not declared by the template"))?;
        self.read.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned());
        Ok(value)
    }

    /// The first declared parameter the template did not read.
    pub(crate) fn unread(&self) -> Option<String> {
        let read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        self.values.keys().find(|k| !read.contains(*k)).cloned()
    }
}
