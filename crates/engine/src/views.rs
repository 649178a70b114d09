//! Stage "plan views": the pipeline's views (the SQL files of `views/` and the Rust
//! templates, each with its parameters) in one `ViewRegistry`, which plans each view once in
//! dependency order; each is registered for its readers as it is planned: lazily, or as its
//! committed output when it is materialized.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::{DataFrame, SessionContext};
use dfpipe_views::{ListParam, ParamValue, SqlView, ViewRegistry, ViewSource, register_lazy};
use dfpipe_writer::WriteSpec;

use crate::output::{Outputs, register_output, sort_keys};
use crate::pipeline::Pipeline;
use crate::spec::{Materialize, PipelineSpec, ViewSpec};
use crate::{EngineError, Result};

/// A view planned logically, in planning order: what every later stage starts from.
pub(crate) struct LogicalView {
    pub(crate) name: String,
    pub(crate) spec: ViewSpec,
    /// The unoptimized plan of its output, with `sort_by` applied.
    pub(crate) plan: LogicalPlan,
    /// How it is written, when it is materialized.
    pub(crate) write: Option<WriteSpec>,
    /// The relations it reads (views and sources), from its lineage.
    pub(crate) depends_on: Vec<String>,
}

/// Plans every view of `registry` once, in dependency order, and registers each in `ctx`
/// for its readers before they are planned.
pub(crate) async fn plan_views(
    ctx: &SessionContext,
    registry: &ViewRegistry,
    spec: &PipelineSpec,
    outputs: &Outputs,
    spec_file: &Path,
) -> Result<Vec<LogicalView>> {
    let mut planned = Vec::with_capacity(registry.len());
    let registered = registry
        .register_with(ctx, |view: &ViewSource, df: DataFrame| {
            let name = view.name();
            let view_spec = spec.views.get(name).cloned().unwrap_or_default();
            let output = sort(df.clone(), name, &view_spec, spec_file)?;
            let write = match view_spec.materialize {
                // Readers plan a lazy view inline, unsorted: the order is the output's alone.
                Materialize::Lazy => {
                    register_lazy(ctx, name, df)?;
                    None
                }
                // Readers of a materialized view scan its committed output.
                Materialize::Parquet => {
                    let schema = output.schema().as_arrow();
                    let write = outputs.write_spec(name, &view_spec, &spec.profile, schema, spec_file)?;
                    register_output(ctx, name, &write, schema)?;
                    Some(write)
                }
            };
            let plan = output.clone().into_unoptimized_plan();
            planned.push(LogicalView { name: name.to_owned(), spec: view_spec, plan, write, depends_on: Vec::new() });
            Ok::<_, EngineError>(output)
        })
        .await?;
    // A template's declared dependencies must be what its plan reads.
    registered.check_dependencies()?;
    for (view, registered) in planned.iter_mut().zip(registered.views) {
        view.depends_on = registered.depends_on;
    }
    Ok(planned)
}

/// The view's output in its `sort_by` order.
fn sort(df: DataFrame, view: &str, spec: &ViewSpec, spec_file: &Path) -> Result<DataFrame> {
    if spec.sort_by.is_empty() {
        return Ok(df);
    }
    let keys = sort_keys(view, spec, df.schema().as_arrow(), spec_file)?;
    let sorts = keys
        .iter()
        .map(|key| Expr::Column(Column::new_unqualified(&key.column)).sort(!key.descending, key.nulls_first))
        .collect();
    Ok(df.sort(sorts)?)
}

impl Pipeline {
    /// Every view of the pipeline in one registry: each `views/*.sql` file, parsed under the
    /// safe SQL policy, in name order, then the templates; each with its parameters, from
    /// `[views.NAME] params` overridden by `overrides` (`VIEW.NAME=VALUE`). Every
    /// `[views.NAME]` must name one of them.
    pub(crate) fn registry(&self, ctx: &SessionContext, overrides: &[String]) -> Result<ViewRegistry> {
        let files = self.sql_files()?;
        let spec_error = |message: String| EngineError::Spec { file: self.spec_file(), message };
        let is_view = |name: &str| {
            files.iter().any(|f| f.file_stem().is_some_and(|s| s == name)) || self.templates().any(|t| t.name() == name)
        };
        for name in self.spec().views.keys() {
            if !is_view(name) {
                let file = self.dir().join("views").join(format!("{name}.sql"));
                return Err(spec_error(format!(
                    "[views.{name}] has no SQL file and no template; create {}",
                    file.display()
                )));
            }
        }
        let overridden = param_overrides(overrides, &is_view)?;
        let params_of = |name: &str| {
            let mut declared = self.spec().views.get(name).map(|v| v.params.clone()).unwrap_or_default();
            declared.extend(overridden.get(name).cloned().unwrap_or_default());
            view_params(&declared).map_err(|message| spec_error(format!("[views.{name}] params: {message}")))
        };
        let state = ctx.state();
        let mut registry = ViewRegistry::new();
        for file in &files {
            let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let view = SqlView::from_file(name, file, &state)?.with_params(params_of(name)?);
            registry.add(ViewSource::Sql(Box::new(view)))?;
        }
        for template in self.templates() {
            let params = params_of(template.name())?;
            registry.add(ViewSource::Template { template: Arc::clone(template), params })?;
        }
        Ok(registry)
    }

    /// The `views/*.sql` files, in name order. A view named like a source is an error.
    fn sql_files(&self) -> Result<Vec<PathBuf>> {
        let dir = self.dir().join("views");
        let io = |source| EngineError::Io { action: "cannot list views in", path: dir.clone(), source };
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(io)?
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "sql"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        files.sort();
        for file in &files {
            let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if self.spec().sources.contains_key(name) {
                return Err(EngineError::Spec {
                    file: self.spec_file(),
                    message: format!(
                        "view `{name}` ({}) has the name of source [sources.{name}]; rename one of them",
                        file.display()
                    ),
                });
            }
            if self.templates().any(|t| t.name() == name) {
                return Err(EngineError::Spec {
                    file: self.spec_file(),
                    message: format!(
                        "template `{name}` has the name of the SQL view {}; rename one of them",
                        file.display()
                    ),
                });
            }
        }
        Ok(files)
    }
}

/// `--param VIEW.NAME=VALUE` overrides of `[views.VIEW] params`, by view; VALUE is a TOML
/// value (`10`, `"text"`, `[1, 2]`, `1994-01-01`), or else a string.
fn param_overrides(
    overrides: &[String],
    is_view: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, BTreeMap<String, toml::Value>>> {
    let mut overridden: BTreeMap<String, BTreeMap<String, toml::Value>> = BTreeMap::new();
    for text in overrides {
        let bad = |message: &str| EngineError::Usage {
            flag: "--param".to_owned(),
            message: format!("`{text}`: {message}; write it as VIEW.NAME=VALUE"),
        };
        let (key, value) = text.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let (view, name) = key.trim().split_once('.').ok_or_else(|| bad("no view before the parameter name"))?;
        if !is_view(view) {
            return Err(bad(&format!("there is no view `{view}`")));
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut table| table.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_owned()));
        overridden.entry(view.to_owned()).or_default().insert(name.trim().to_owned(), value);
    }
    Ok(overridden)
}

/// Typed parameter values: a string, an integer, a float or a boolean binds to `$name`; an
/// array of one of those is a list parameter, read in the SQL as `param_table($name)`.
fn view_params(params: &BTreeMap<String, toml::Value>) -> Result<BTreeMap<String, ParamValue>, String> {
    let scalar = |name: &str, value: &toml::Value| match value {
        toml::Value::Integer(i) => Ok(ScalarValue::Int64(Some(*i))),
        toml::Value::Float(f) => Ok(ScalarValue::Float64(Some(*f))),
        toml::Value::Boolean(b) => Ok(ScalarValue::Boolean(Some(*b))),
        toml::Value::String(s) => Ok(ScalarValue::Utf8(Some(s.clone()))),
        other => Err(format!(
            "`{name}` is a {}; a parameter is a string, an integer, a float, a boolean or an array of one \
             of those (write dates as strings: they are parsed where the SQL compares them with a date)",
            other.type_str()
        )),
    };
    params
        .iter()
        .map(|(name, value)| {
            let param = match value {
                toml::Value::Array(items) => {
                    let values = items.iter().map(|v| scalar(name, v)).collect::<Result<Vec<_>, _>>()?;
                    ParamValue::List(ListParam::infer(values).map_err(|e| format!("`{name}`: {e}"))?)
                }
                other => ParamValue::Scalar(scalar(name, other)?),
            };
            Ok((name.clone(), param))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{param_overrides, view_params};

    #[test]
    fn param_overrides_name_the_flag_and_the_view() {
        let is_view = |name: &str| name == "q01";
        let parsed = param_overrides(&["q01.days=90".to_owned(), "q01.name=text".to_owned()], &is_view).unwrap();
        assert_eq!(parsed["q01"]["days"], toml::Value::Integer(90));
        assert_eq!(parsed["q01"]["name"], toml::Value::String("text".to_owned()));
        let error = param_overrides(&["q99.days=1".to_owned()], &is_view).err().unwrap().to_string();
        assert_eq!(error, "--param: `q99.days=1`: there is no view `q99`; write it as VIEW.NAME=VALUE");
        let error = param_overrides(&["days".to_owned()], &is_view).err().unwrap().to_string();
        assert!(error.contains("no `=`"), "{error}");
    }

    #[test]
    fn tables_are_not_parameters() {
        let params = toml::from_str::<toml::Table>("t = { a = 1 }").unwrap().into_iter().collect();
        let error = view_params(&params).err().unwrap();
        assert!(error.starts_with("`t` is a table"), "{error}");
    }
}
