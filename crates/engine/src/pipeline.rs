//! Loading a pipeline and planning it: sources, views, lineage, fingerprints, decisions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::datasource::file_format::options::{ArrowReadOptions, JsonReadOptions};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::logical_expr::{Expr, LogicalPlan, Partitioning, SortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::prelude::{CsvReadOptions, DataFrame, ParquetReadOptions, SessionContext};
use dfpipe_artifacts::{CaptureOptions, Environment, Fingerprint, PlanBundle, RunRecord, Store, capture};
use dfpipe_plan_walk::Lineage;
use dfpipe_scheduler::{CancelToken, CostModel, CostSource, Metrics, Schedule, Selector, TaskEvidence, TaskGraph};
use dfpipe_views::{
    ListParam, ListStrategy, ParamValue, RegisteredView, SqlView, ViewError, ViewSource, ViewTemplate, register_lazy,
};
use futures::TryStreamExt;

use crate::materialized::{CommittedOutput, OutputDir};
use crate::report::{LineageReport, PlanReport, ScheduleReport, ViewLineage, ViewPlanReport};
use crate::spec::{Materialize, PipelineSpec, SourceFormat, ViewSpec};
use crate::{EngineError, Result};
use object_store::ObjectStore;

/// A pipeline directory, loaded and checked but not planned.
#[derive(Debug, Clone)]
pub struct Pipeline {
    dir: PathBuf,
    spec: PipelineSpec,
    /// Views written in Rust, beside the SQL files.
    templates: Vec<Arc<dyn ViewTemplate>>,
    /// Where materialized views are written.
    output: OutputDir,
    /// Object stores to register on the session, for sources and outputs.
    object_stores: Vec<(url::Url, Arc<dyn ObjectStore>)>,
}

/// Plans `view`. A template's declared dependencies must be what its plan reads; `views`
/// are the names of the pipeline's views.
async fn plan_view(view: &ViewSource, ctx: &SessionContext, views: &BTreeSet<String>) -> Result<DataFrame> {
    let df = view.plan(ctx, ListStrategy::default()).await?;
    let Some(declared) = view.declared() else { return Ok(df) };
    let inferred = Lineage::of(df.logical_plan())
        .map_err(|e| ViewError::Lineage { view: view.name().to_owned(), message: e.to_string() })?;
    let planned = RegisteredView {
        name: view.name().to_owned(),
        dataframe: df,
        depends_on: inferred.depends_on,
        declared: Some(declared),
    };
    match planned.mismatch(views) {
        Some(mismatch) => Err(ViewError::Dependencies(mismatch).into()),
        None => Ok(planned.dataframe),
    }
}

/// What to run.
// Independent flags, each a command-line switch: no state machine hides among them.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run every selected view, changed or not.
    pub full: bool,
    /// Run only these views (all when empty).
    pub select: Vec<String>,
    /// How many views run at once (at least 1).
    pub workers: usize,
    /// Capture the plan after each optimizer rule, whatever the profile says.
    pub explain_verbose: bool,
    /// Parameter values as `VIEW.NAME=VALUE`, over those of `dfpipe.toml`.
    pub params: Vec<String>,
    /// Start nothing new after the first failure.
    pub fail_fast: bool,
    /// Re-rank the views still to run as measured durations come in (the scheduler's
    /// dynamic mode), rather than by the costs known before the run.
    pub dynamic: bool,
    /// Stops the run once cancelled: no view starts after that, and a running view stops
    /// before its commit, so its previous output stays.
    pub cancel: CancelToken,
}

/// One view, planned once.
pub(crate) struct PlannedView {
    pub(crate) name: String,
    pub(crate) spec: ViewSpec,
    pub(crate) bundle: PlanBundle,
    /// The optimized plan: what the physical plan was built from.
    pub(crate) optimized: LogicalPlan,
    /// Whether it reads a materialized view's committed output, directly or through lazy
    /// views: then its physical plan is built again at execution, from `optimized`.
    pub(crate) reads_outputs: bool,
    pub(crate) physical: Arc<dyn ExecutionPlan>,
    pub(crate) fingerprint: Fingerprint,
    /// The views (not sources) it reads, from its lineage.
    pub(crate) depends_on: Vec<String>,
    pub(crate) will_run: bool,
    pub(crate) reason: String,
    pub(crate) cost_ms: u64,
    pub(crate) cost_source: &'static str,
    /// The fingerprint its committed output was built from, per the last run.
    pub(crate) output_fingerprint: Option<Fingerprint>,
}

/// A pipeline with every view planned, and the decision of what runs.
pub struct Planned {
    pub(crate) spec: PipelineSpec,
    pub(crate) output: OutputDir,
    pub(crate) ctx: SessionContext,
    pub(crate) store: Store,
    /// Indexed like the tasks of `graph`.
    pub(crate) views: Vec<PlannedView>,
    pub(crate) graph: TaskGraph<()>,
    pub(crate) workers: usize,
    /// How the run executes: `fail_fast`, `dynamic` and `cancel` of [`RunOptions`].
    pub(crate) execution: RunOptions,
    /// `information_schema` as it was when planning began.
    pub(crate) environment: Environment,
}

impl Pipeline {
    /// Reads and checks `<dir>/dfpipe.toml`.
    pub fn load(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let spec = PipelineSpec::load(&dir)?;
        let output = OutputDir::new(&dir, &spec.pipeline.output_dir).map_err(|message| EngineError::Spec {
            file: dir.join(crate::SPEC_FILE),
            message: format!("[pipeline] output_dir: {message}"),
        })?;
        Ok(Self { dir, spec, templates: Vec::new(), output, object_stores: Vec::new() })
    }

    /// Registers `store` for URLs starting with `url` (like `s3://bucket`), so that sources
    /// and `output_dir` may live there. `file://` needs none.
    #[must_use]
    pub fn with_object_store(mut self, url: url::Url, store: Arc<dyn ObjectStore>) -> Self {
        self.object_stores.push((url, store));
        self
    }

    /// Adds a view written in Rust, beside the SQL files. Its `[views.NAME]` table in
    /// `dfpipe.toml`, when there is one, sets its parameter values and how it materializes,
    /// as for a SQL view. A template that reads other views should declare them
    /// ([`ViewTemplate::depends_on`]) so that they are planned first; what it declares must
    /// be what its plan reads.
    pub fn with_template(mut self, template: impl ViewTemplate + 'static) -> Result<Self> {
        let name = template.name().to_owned();
        let clash = |message: String| EngineError::Spec { file: self.dir.join(crate::SPEC_FILE), message };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(clash(format!(
                "template name `{name}` is not a plain identifier; use letters, digits and `_` (it names the output)"
            )));
        }
        if self.templates.iter().any(|t| t.name() == name) {
            return Err(clash(format!("two templates are named `{name}`; view names are unique")));
        }
        if self.spec.sources.contains_key(&name) {
            return Err(clash(format!(
                "template `{name}` has the name of source [sources.{name}]; rename one of them"
            )));
        }
        let file = self.dir.join("views").join(format!("{name}.sql"));
        if file.exists() {
            return Err(clash(format!(
                "template `{name}` has the name of the SQL view {}; rename one of them",
                file.display()
            )));
        }
        self.templates.push(Arc::new(template));
        Ok(self)
    }

    /// The pipeline directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The parsed spec.
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// Where materialized views are written.
    pub fn output_dir(&self) -> &OutputDir {
        &self.output
    }

    /// A session with the profile applied and every source registered. Returns the source
    /// fingerprints by name.
    pub async fn session(&self) -> Result<(SessionContext, BTreeMap<String, Fingerprint>)> {
        let ctx = self.spec.profile.session(&self.dir.join(crate::SPEC_FILE))?;
        for (url, store) in &self.object_stores {
            ctx.register_object_store(url, Arc::clone(store));
        }
        if let OutputDir::Store(url) = &self.output {
            let listing = ListingTableUrl::parse(format!("{url}/"))?;
            if ctx.runtime_env().object_store(listing.object_store()).is_err() {
                return Err(EngineError::Spec {
                    file: self.dir.join(crate::SPEC_FILE),
                    message: format!(
                        "[pipeline] output_dir: no object store is registered for `{url}`; the command line knows \
                         local paths and file:// URLs, and Rust code registers others with Pipeline::with_object_store"
                    ),
                });
            }
        }
        let mut fingerprints = BTreeMap::new();
        for (name, source) in &self.spec.sources {
            let fail = |message: String| EngineError::Source { name: name.clone(), message };
            let local = !source.path.contains("://");
            let path =
                if local { self.dir.join(&source.path).to_string_lossy().into_owned() } else { source.path.clone() };
            if local {
                let base = glob_base(Path::new(&path));
                if !base.exists() {
                    return Err(fail(format!(
                        "{} does not exist; check `path` under [sources.{name}] in {}",
                        base.display(),
                        crate::SPEC_FILE
                    )));
                }
                fingerprints.insert(name.clone(), Fingerprint::of_files(&list_files(&base)));
            } else {
                let files = list_remote(&ctx, &path).await.map_err(|e| fail(format!("cannot list {path}: {e}")))?;
                if files.is_empty() {
                    return Err(fail(format!(
                        "no files at {path}; check `path` under [sources.{name}] in {}",
                        crate::SPEC_FILE
                    )));
                }
                fingerprints.insert(name.clone(), Fingerprint::of_files(&files));
            }
            let registered = match source.format {
                SourceFormat::Parquet => ctx.register_parquet(name, &path, ParquetReadOptions::default()).await,
                SourceFormat::Csv => ctx.register_csv(name, &path, CsvReadOptions::default()).await,
                SourceFormat::Json => ctx.register_json(name, &path, JsonReadOptions::default()).await,
                SourceFormat::Arrow => ctx.register_arrow(name, &path, ArrowReadOptions::default()).await,
            };
            registered.map_err(|e| fail(e.strip_backtrace()))?;
        }
        // Contracts on sources: keys become provider constraints and information_schema rows.
        let on_sources: Vec<_> =
            self.spec.contracts.values().filter(|c| self.spec.sources.contains_key(&c.relation)).cloned().collect();
        dfpipe_contract::register(&ctx, &on_sources).await?;
        Ok((ctx, fingerprints))
    }

    /// Checks every contract: on sources, and on the committed outputs of materialized
    /// views. Up to `samples` violating rows are reported per constraint.
    pub async fn check(&self, samples: usize) -> Result<dfpipe_contract::CheckReport> {
        let (ctx, _) = self.session().await?;
        for (name, view) in &self.spec.views {
            if view.materialize == Materialize::Parquet && self.output.has_output(&ctx, name).await? {
                let url = self.output.listing_url(name)?;
                ctx.register_parquet(name, url.as_str(), ParquetReadOptions::default()).await?;
            }
        }
        let contracts: Vec<_> = self.spec.contracts.values().cloned().collect();
        let on_views: Vec<_> =
            contracts.iter().filter(|c| !self.spec.sources.contains_key(&c.relation)).cloned().collect();
        dfpipe_contract::register(&ctx, &on_views).await?;
        Ok(dfpipe_contract::check(&ctx, &contracts, samples).await?)
    }

    /// Plans every view once, derives the DAG and fingerprints from the plans, and decides
    /// what `run` would execute.
    pub async fn plan(&self, options: &RunOptions) -> Result<Planned> {
        let (ctx, source_fingerprints) = self.session().await?;
        let views = self.view_sources(&ctx, &options.params)?;
        let names: BTreeSet<&str> = views.iter().map(ViewSource::name).collect();
        let view_names: BTreeSet<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let selectors = options
            .select
            .iter()
            .map(|text| {
                let selector: Selector =
                    text.parse().map_err(|e: dfpipe_scheduler::SchedulerError| EngineError::Spec {
                        file: self.dir.join(crate::SPEC_FILE),
                        message: format!("--select `{text}`: {e}"),
                    })?;
                if names.contains(selector.name.as_str()) {
                    Ok(selector)
                } else {
                    Err(EngineError::Spec {
                        file: self.dir.join(crate::SPEC_FILE),
                        message: format!("--select names `{}`, which is not a view of this pipeline", selector.name),
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;

        // Planning order: a view is planned after the views its SQL names. Only the order
        // comes from the SQL; the dependencies proper come from the plans below.
        let mut order_graph = TaskGraph::new();
        for view in &views {
            order_graph.add_task(view.name(), ());
        }
        for (id, view) in views.iter().enumerate() {
            for reference in view.references() {
                if let Some(dep) = order_graph.find(&reference) {
                    order_graph.add_dependency(dep, id)?;
                }
            }
        }
        let order = order_graph.topological_order()?;

        let store = Store::open(self.dir.join(".dfpipe"))?;
        let last_run = store.latest_run()?;
        // What information_schema says before any view is registered: the part of it that
        // concerns a view's sources and functions goes into its fingerprint.
        let environment = Environment::snapshot(&ctx).await?;
        let state_settings = self.spec.profile.settings();
        let capture_options = CaptureOptions {
            substrait: self.spec.profile.substrait,
            validate_substrait: self.spec.profile.validate_substrait,
            explain_verbose: self.spec.profile.explain_verbose || options.explain_verbose,
        };

        // 1. Logical plans, in dependency order: each view is registered before its readers
        //    are planned. This part is cheap and must be sequential.
        let mut logical = Vec::with_capacity(views.len());
        for &id in &order {
            let view = &views[id];
            let spec = self.spec.views.get(view.name()).cloned().unwrap_or_default();
            let df = plan_view(view, &ctx, &view_names).await?;
            let output = shape_output(df.clone(), &spec, &ctx, view.name(), &self.dir)?;
            // Readers of a lazy view plan it inline; readers of a materialized view read its
            // committed output.
            if spec.materialize == Materialize::Lazy {
                register_lazy(&ctx, view.name(), df)?;
            } else {
                let schema = output.schema().as_arrow().clone();
                let table = CommittedOutput::new(&schema, &self.output, view.name(), spec.partition_by.clone())?;
                ctx.register_table(view.name(), Arc::new(table))?;
            }
            logical.push((view.name().to_owned(), spec, output.into_unoptimized_plan()));
        }

        // 2. Optimization, physical planning and Substrait: the CPU-bound part, independent
        //    per view once every view is registered, so the views are captured in parallel.
        let tasks: Vec<_> = logical
            .iter()
            .map(|(name, _, plan)| {
                let (name, plan, state) = (name.clone(), plan.clone(), ctx.state());
                tokio::spawn(async move { capture(&name, &plan, &state, capture_options).await })
            })
            .collect();

        // 3. Fingerprints, in dependency order: each takes its upstream fingerprints.
        let mut planned: Vec<PlannedView> = Vec::with_capacity(views.len());
        let mut fingerprints: BTreeMap<String, Fingerprint> = source_fingerprints;
        for ((name, spec, _), task) in logical.into_iter().zip(tasks) {
            let mut captured = task.await.map_err(|e| EngineError::Io {
                action: "planning was interrupted for",
                path: self.dir.join("views").join(format!("{name}.sql")),
                source: std::io::Error::other(e.to_string()),
            })??;
            let lineage = &captured.bundle.lineage;
            let upstream: BTreeMap<String, Fingerprint> =
                lineage.depends_on.iter().filter_map(|r| fingerprints.get(r).map(|f| (r.clone(), f.clone()))).collect();
            let mut settings = state_settings.clone();
            settings.insert("dfpipe.materialize".to_owned(), format!("{:?}", spec.materialize));
            settings.insert("dfpipe.partition_by".to_owned(), spec.partition_by.join(","));
            if spec.materialize == Materialize::Parquet {
                for (key, value) in self.spec.profile.parquet_options() {
                    settings.insert(format!("format.{key}"), value);
                }
            }
            let depends_on = lineage.depends_on.iter().filter(|r| names.contains(r.as_str())).cloned().collect();
            let fingerprint = captured.bundle.seal(settings, &environment, upstream);
            fingerprints.insert(name.clone(), fingerprint.clone());
            planned.push(PlannedView {
                name,
                spec,
                physical: captured.physical,
                optimized: captured.optimized,
                reads_outputs: false,
                bundle: captured.bundle,
                fingerprint,
                depends_on,
                will_run: false,
                reason: String::new(),
                cost_ms: CostModel::default().default_cost,
                cost_source: "default",
                output_fingerprint: None,
            });
        }
        // Contracts on views (those on sources were registered with the sources).
        let on_views: Vec<_> =
            self.spec.contracts.values().filter(|c| !self.spec.sources.contains_key(&c.relation)).cloned().collect();
        dfpipe_contract::register(&ctx, &on_views).await?;
        planned.sort_by(|a, b| a.name.cmp(&b.name));

        // The DAG, from lineage alone.
        let mut graph = TaskGraph::new();
        for view in &planned {
            graph.add_task(&view.name, ());
        }
        for (id, view) in planned.iter().enumerate() {
            for dep in &view.depends_on {
                if let Some(dep) = graph.find(dep) {
                    graph.add_dependency(dep, id)?;
                }
            }
        }
        // A view that reads a committed output, directly or through lazy views, has its
        // physical plan built again when it executes: its upstream may commit new files first.
        for id in graph.topological_order()? {
            let reads = graph.dependencies(id).into_iter().any(|dep| {
                let upstream = &planned[dep];
                upstream.spec.materialize != Materialize::Lazy || upstream.reads_outputs
            });
            planned[id].reads_outputs = reads;
        }

        let selected: Option<BTreeSet<String>> = if selectors.is_empty() {
            None
        } else {
            Some(graph.select(&selectors)?.into_iter().map(|id| graph.name(id).to_owned()).collect())
        };
        let mut committed = BTreeSet::new();
        for view in planned.iter().filter(|v| v.spec.materialize != Materialize::Lazy) {
            if self.output.has_output(&ctx, &view.name).await? {
                committed.insert(view.name.clone());
            }
        }
        for view in &mut planned {
            decide(view, last_run.as_ref(), options.full, selected.as_ref(), &committed);
        }
        // Costs: measured on the last run, else estimated from the plan's statistics.
        let evidence: Vec<TaskEvidence> = planned.iter().map(|v| evidence(v, last_run.as_ref())).collect();
        for (view, cost) in planned.iter_mut().zip(CostModel::default().costs(&evidence)) {
            view.cost_ms = cost.value;
            view.cost_source = match cost.source {
                CostSource::Measured => "measured",
                CostSource::Estimated => "estimated",
                CostSource::Default => "default",
            };
        }
        Ok(Planned {
            spec: self.spec.clone(),
            output: self.output.clone(),
            ctx,
            store,
            views: planned,
            graph,
            workers: options.workers.max(1),
            execution: options.clone(),
            environment,
        })
    }

    /// Every `views/*.sql` file, parsed under the safe SQL policy, in name order, then the
    /// templates; each with its parameter values. Every `[views.NAME]` must be one of them.
    fn view_sources(&self, ctx: &SessionContext, overrides: &[String]) -> Result<Vec<ViewSource>> {
        let dir = self.dir.join("views");
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
        if let Some(clash) = files.iter().find_map(|f| {
            let name = f.file_stem()?.to_str()?;
            self.spec.sources.contains_key(name).then(|| name.to_owned())
        }) {
            return Err(EngineError::Spec {
                file: self.dir.join(crate::SPEC_FILE),
                message: format!(
                    "view `{clash}` (views/{clash}.sql) has the name of source [sources.{clash}]; rename one of them"
                ),
            });
        }
        // `--param VIEW.NAME=VALUE` overrides `[views.VIEW] params`; VALUE is a TOML value
        // (`10`, `"text"`, `[1, 2]`, `1994-01-01`), or else a string.
        let mut overridden: BTreeMap<String, BTreeMap<String, toml::Value>> = BTreeMap::new();
        for text in overrides {
            let bad = |message: &str| EngineError::Spec {
                file: self.dir.join(crate::SPEC_FILE),
                message: format!("--param `{text}`: {message}; write it as VIEW.NAME=VALUE"),
            };
            let (key, value) = text.split_once('=').ok_or_else(|| bad("no `=`"))?;
            let (view, name) = key.trim().split_once('.').ok_or_else(|| bad("no view before the parameter name"))?;
            if !files.iter().any(|f| f.file_stem().is_some_and(|s| s == view))
                && !self.templates.iter().any(|t| t.name() == view)
            {
                return Err(bad(&format!("there is no view `{view}`")));
            }
            let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut table| table.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.to_owned()));
            overridden.entry(view.to_owned()).or_default().insert(name.trim().to_owned(), value);
        }
        if let Some(template) = self.templates.iter().find(|t| dir.join(format!("{}.sql", t.name())).exists()) {
            return Err(EngineError::Spec {
                file: self.dir.join(crate::SPEC_FILE),
                message: format!(
                    "template `{0}` has the name of the SQL view views/{0}.sql; rename one of them",
                    template.name()
                ),
            });
        }
        for name in self.spec.views.keys() {
            let file = dir.join(format!("{name}.sql"));
            if !file.is_file() && !self.templates.iter().any(|t| t.name() == name) {
                return Err(EngineError::Spec {
                    file: self.dir.join(crate::SPEC_FILE),
                    message: format!("[views.{name}] has no SQL file; create {}", file.display()),
                });
            }
        }
        let params_of = |name: &str| {
            let mut declared = self.spec.views.get(name).map(|v| v.params.clone()).unwrap_or_default();
            declared.extend(overridden.get(name).cloned().unwrap_or_default());
            view_params(&declared).map_err(|message| EngineError::Spec {
                file: self.dir.join(crate::SPEC_FILE),
                message: format!("[views.{name}] params: {message}"),
            })
        };
        let state = ctx.state();
        let mut views = files
            .iter()
            .map(|file| {
                let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                Ok(ViewSource::Sql(Box::new(SqlView::from_file(name, file, &state)?.with_params(params_of(name)?))))
            })
            .collect::<Result<Vec<_>>>()?;
        for template in &self.templates {
            let params = params_of(template.name())?;
            views.push(ViewSource::Template { template: Arc::clone(template), params });
        }
        Ok(views)
    }
}

/// Applies a view's output options (`repartition_by`, `sort_by`) to its plan.
fn shape_output(df: DataFrame, spec: &ViewSpec, ctx: &SessionContext, view: &str, dir: &Path) -> Result<DataFrame> {
    let mut df = df;
    let invalid = |what: &str, e: datafusion::error::DataFusionError| EngineError::Spec {
        file: dir.join(crate::SPEC_FILE),
        message: format!("[views.{view}] {what}: {}", e.strip_backtrace()),
    };
    if !spec.repartition_by.is_empty() {
        let exprs = spec
            .repartition_by
            .iter()
            .map(|c| df.parse_sql_expr(c))
            .collect::<datafusion::error::Result<Vec<Expr>>>()
            .map_err(|e| invalid("repartition_by", e))?;
        let partitions = ctx.state().config().target_partitions();
        df = df.repartition(Partitioning::Hash(exprs, partitions)).map_err(|e| invalid("repartition_by", e))?;
    }
    if !spec.sort_by.is_empty() {
        let mut sorts = Vec::new();
        for item in &spec.sort_by {
            let (column, descending) = match item.trim().rsplit_once(char::is_whitespace) {
                Some((c, dir)) if dir.eq_ignore_ascii_case("desc") => (c, true),
                Some((c, dir)) if dir.eq_ignore_ascii_case("asc") => (c, false),
                _ => (item.trim(), false),
            };
            let expr = df.parse_sql_expr(column).map_err(|e| invalid("sort_by", e))?;
            sorts.push(SortExpr::new(expr, !descending, descending));
        }
        df = df.sort(sorts).map_err(|e| invalid("sort_by", e))?;
    }
    Ok(df)
}

/// Decides whether `run` executes `view`, and why.
fn decide(
    view: &mut PlannedView,
    last_run: Option<&RunRecord>,
    full: bool,
    selected: Option<&BTreeSet<String>>,
    committed: &BTreeSet<String>,
) {
    let last = last_run.and_then(|r| r.views.iter().find(|v| v.name == view.name));
    view.output_fingerprint = last.and_then(|l| l.output_fingerprint.clone());
    let (will_run, reason) = if view.spec.materialize == Materialize::Lazy {
        (false, "lazy view: planned inline by the views that read it".to_owned())
    } else if selected.is_some_and(|s| !s.contains(&view.name)) {
        (false, "not selected".to_owned())
    } else if full {
        (true, "--full".to_owned())
    } else {
        match &view.output_fingerprint {
            None => (true, "no previous run".to_owned()),
            Some(_) if !committed.contains(&view.name) => (true, "output missing".to_owned()),
            Some(built) if *built != view.fingerprint => (true, "fingerprint changed".to_owned()),
            Some(_) => (false, dfpipe_artifacts::UNCHANGED.to_owned()),
        }
    };
    view.will_run = will_run;
    view.reason = reason;
}

/// What is known of a view's cost: the wall time and rows its last execution measured, or
/// the row count its physical plan's statistics estimate.
fn evidence(view: &PlannedView, last_run: Option<&RunRecord>) -> TaskEvidence {
    let last = last_run.and_then(|r| r.views.iter().find(|v| v.name == view.name));
    if let Some(ms) = last.and_then(|l| l.cost_ms) {
        return TaskEvidence::Measured(Metrics {
            elapsed_compute: std::time::Duration::from_millis(ms),
            output_rows: last.and_then(|l| l.rows).unwrap_or_default(),
            partitions: 1,
            ..Metrics::default()
        });
    }
    let statistics = StatisticsContext::new().compute(view.physical.as_ref(), &StatisticsArgs::new());
    match statistics.ok().and_then(|s| s.num_rows.get_value().copied()) {
        Some(rows) => TaskEvidence::EstimatedRows(rows as u64),
        None => TaskEvidence::Unknown,
    }
}

impl Planned {
    /// The planned views' names, in name order.
    pub fn view_names(&self) -> Vec<&str> {
        self.views.iter().map(|v| v.name.as_str()).collect()
    }

    /// `information_schema` as it was when planning began: what fingerprints take their
    /// environment hashes from.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// The bundle captured for `view`.
    pub fn bundle(&self, view: &str) -> Option<&PlanBundle> {
        self.views.iter().find(|v| v.name == view).map(|v| &v.bundle)
    }

    /// The session every view was planned in.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The predicted schedule of the views that will run, with costs from the last run.
    pub fn predicted_schedule(&self) -> Result<Schedule> {
        Ok(self.graph.schedule(&self.costs(), self.workers)?)
    }

    /// The cost of each view, indexed like the tasks: its cost if it will run, else 0.
    pub(crate) fn costs(&self) -> Vec<u64> {
        self.views.iter().map(|v| if v.will_run { v.cost_ms } else { 0 }).collect()
    }

    /// `dfpipe plan --json`.
    pub fn report(&self) -> Result<PlanReport> {
        let schedule = self.predicted_schedule()?;
        Ok(PlanReport {
            views: self
                .views
                .iter()
                .map(|v| ViewPlanReport {
                    name: v.name.clone(),
                    fingerprint: v.fingerprint.to_string(),
                    depends_on: v.depends_on.clone(),
                    will_run: v.will_run,
                    reason: v.reason.clone(),
                    cost_ms: v.cost_ms,
                    cost_source: v.cost_source.to_owned(),
                })
                .collect(),
            schedule: self.schedule_report(&schedule),
        })
    }

    /// `dfpipe lineage --format json`. With `deep`, lineage resolves through views down to
    /// the sources.
    pub fn lineage(&self, deep: bool) -> LineageReport {
        let of = |name: &str| self.views.iter().find(|v| v.name == name).map(|v| &v.bundle.lineage);
        LineageReport {
            views: self
                .views
                .iter()
                .map(|v| ViewLineage {
                    name: v.name.clone(),
                    lineage: if deep { v.bundle.lineage.deep(&of) } else { v.bundle.lineage.clone() },
                })
                .collect(),
        }
    }

    pub(crate) fn schedule_report(&self, schedule: &Schedule) -> ScheduleReport {
        ScheduleReport {
            workers: schedule.workers,
            makespan_ms: schedule.makespan,
            lower_bound_ms: schedule.lower_bound,
            critical_path: schedule
                .critical_path
                .iter()
                .filter(|&&id| self.views[id].will_run)
                .map(|&id| self.views[id].name.clone())
                .collect(),
        }
    }
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

/// The directory part of a path before any glob character.
fn glob_base(path: &Path) -> PathBuf {
    let mut base = PathBuf::new();
    for component in path.components() {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[']) {
            break;
        }
        base.push(component);
    }
    base
}

/// `(path, size, modified nanoseconds)` of every file under `path`.
/// The files of an object-store source (a URL, globs allowed) as `(location and ETag, size,
/// modified)` triples: what its fingerprint hashes.
async fn list_remote(ctx: &SessionContext, url: &str) -> datafusion::error::Result<Vec<(String, u64, u128)>> {
    let url = ListingTableUrl::parse(url)?;
    let store = ctx.runtime_env().object_store(&url)?;
    let state = ctx.state();
    let mut listing = url.list_all_files(&state, store.as_ref(), "").await?;
    let mut files = Vec::new();
    while let Some(meta) = listing.try_next().await? {
        let modified = meta.last_modified.timestamp_nanos_opt().unwrap_or_default();
        let location = match &meta.e_tag {
            Some(tag) => format!("{}#{tag}", meta.location),
            None => meta.location.to_string(),
        };
        files.push((location, meta.size, u128::try_from(modified).unwrap_or_default()));
    }
    Ok(files)
}

fn list_files(path: &Path) -> Vec<(String, u64, u128)> {
    let mut out = Vec::new();
    let mut pending = vec![path.to_owned()];
    while let Some(current) = pending.pop() {
        let Ok(meta) = std::fs::metadata(&current) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&current) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else {
            let modified = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let relative = current.strip_prefix(path).unwrap_or(&current);
            out.push((relative.to_string_lossy().into_owned(), meta.len(), modified));
        }
    }
    out
}
