//! A pipeline directory, loaded, and planned through the stages of a run: register sources
//! and contracts, plan views, capture, fingerprint, build the DAG, decide, cost.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};
use datafusion::prelude::SessionContext;
use dfpipe_artifacts::{Captured, Environment, Fingerprint, RunRecord, Store};
use dfpipe_cluster::{Cluster, ClusterError};
use dfpipe_scheduler::{CancelToken, Selector, TaskGraph};
use dfpipe_views::{ViewRegistry, ViewTemplate};
use object_store::ObjectStore;

use crate::capture::capture_all;
use crate::dag::{dag, reads_outputs};
use crate::decide::{Facts, costs, decide, is_selected, last_records};
use crate::fingerprint::fingerprint_all;
use crate::output::{Outputs, output_dir_text};
use crate::planned::{Planned, PlannedView};
use crate::share::{share_all, shared_views};
use crate::spec::PipelineSpec;
use crate::views::{LogicalView, plan_views};
use crate::{EngineError, Result};

/// A pipeline directory, loaded and checked but not planned.
#[derive(Debug, Clone)]
pub struct Pipeline {
    dir: PathBuf,
    spec: PipelineSpec,
    /// Views written in Rust, beside the SQL files.
    templates: Vec<Arc<dyn ViewTemplate>>,
    /// `output_dir`: a local path resolved against `dir`, or a URL.
    output_dir: String,
    /// Object stores to register on the session, for sources and outputs.
    object_stores: Vec<(url::Url, Arc<dyn ObjectStore>)>,
    /// The workers executing views' plans, when not on this machine alone.
    cluster: Option<Cluster>,
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
    /// For a run: take the store's run lock before planning, waiting up to this long for
    /// another run of the pipeline to end ([`EngineError::Locked`] when it does not). The
    /// [`Planned`] holds it until its run ends. `None` (what `plan`, `explain` and `show`
    /// use) takes no lock; [`Planned::run`] then takes it itself, without waiting.
    pub lock_timeout: Option<std::time::Duration>,
}

impl Pipeline {
    /// Reads and checks `<dir>/dfpipe.toml`.
    pub fn load(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let spec = PipelineSpec::load(&dir)?;
        let output_dir = output_dir_text(&dir, &spec.pipeline.output_dir);
        let mut pipeline =
            Self { dir, spec, templates: Vec::new(), output_dir, object_stores: Vec::new(), cluster: None };
        let workers = pipeline.spec.cluster.as_ref().map(|c| c.workers.clone()).unwrap_or_default();
        if !workers.is_empty() {
            let spec_error =
                |e: ClusterError| EngineError::Spec { file: pipeline.spec_file(), message: format!("[cluster] {e}") };
            pipeline.cluster = Some(pipeline.cluster_of(&workers).map_err(spec_error)?);
        }
        Ok(pipeline)
    }

    /// Runs the views' plans on the workers at `workers` (`HOST:PORT` each), over those of
    /// `[cluster]` in `dfpipe.toml`, with its settings. Nothing is contacted until a run.
    pub fn with_cluster(mut self, workers: &[String]) -> Result<Self> {
        let cluster = Cluster::new(workers)
            .map_err(|e| EngineError::Usage { flag: "--cluster".to_owned(), message: e.to_string() })?;
        let cluster = self
            .configured(cluster)
            .map_err(|e| EngineError::Spec { file: self.spec_file(), message: format!("[cluster] {e}") })?;
        self.cluster = Some(cluster);
        Ok(self)
    }

    /// The cluster the views' plans run on, if any.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    fn cluster_of(&self, workers: &[String]) -> Result<Cluster, ClusterError> {
        self.configured(Cluster::new(workers)?)
    }

    /// `cluster` with the settings of `[cluster]` and the stores of `[storage]`.
    fn configured(&self, cluster: Cluster) -> Result<Cluster, ClusterError> {
        let settings = self.spec.cluster.as_ref().map(|c| c.settings.clone()).unwrap_or_default();
        Ok(cluster.with_settings(settings)?.with_stores(&self.spec.storage))
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
        let clash = |message: String| EngineError::Usage { flag: "Pipeline::with_template".to_owned(), message };
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
                "template `{name}` has the name of source [sources.{name}] in {}; rename one of them",
                self.spec_file().display()
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

    /// `<dir>/dfpipe.toml`, which errors in the spec name.
    pub(crate) fn spec_file(&self) -> PathBuf {
        self.dir.join(crate::SPEC_FILE)
    }

    pub(crate) fn templates(&self) -> impl Iterator<Item = &Arc<dyn ViewTemplate>> {
        self.templates.iter()
    }

    pub(crate) fn object_stores(&self) -> impl Iterator<Item = &(url::Url, Arc<dyn ObjectStore>)> {
        self.object_stores.iter()
    }

    /// Plans every view once, derives the DAG and fingerprints from the plans, and decides
    /// what `run` would execute: the stages of PRODUCT.md's "How a run flows", up to the
    /// schedule.
    pub async fn plan(&self, options: &RunOptions) -> Result<Planned> {
        // A run holds the store from before it reads it.
        let store = Store::open(self.dir.join(".dfpipe"))?;
        let lock = match options.lock_timeout {
            Some(wait) => Some(crate::run::lock_store(&store, wait).await?),
            None => None,
        };
        // Each stage's time, for `RUST_LOG=dfpipe_engine=debug`.
        let mut clock = std::time::Instant::now();
        let mut lap = |stage: &str| {
            tracing::debug!(stage, ms = clock.elapsed().as_millis() as u64, "planning stage done");
            clock = std::time::Instant::now();
        };
        // Register sources and contracts; the environment is what information_schema says
        // before any view is registered.
        self.check_reachable()?;
        let (ctx, sources) = self.session().await?;
        let outputs = Outputs::new(&ctx, &self.output_dir, &self.spec_file())?;
        outputs.probe().await?;
        // A run repairs what an interrupted run left before anything reads the outputs (in an
        // object store a commit is not one rename), and only under the lock: a staging area
        // can belong to a run still going on.
        if lock.is_some() {
            outputs.repair(&ctx).await?;
        }
        let registry = self.registry(&ctx, &options.params)?;
        let selectors = selectors(&registry, &options.select)?;
        let last_run = store.latest_run()?;
        let last_run_id = last_run.as_ref().map(|r| r.run_id.clone());
        let environment = Environment::snapshot(&ctx).await?;
        lap("register sources and contracts");
        // Plan each view once, in dependency order; capture; fingerprint.
        let logical = plan_views(&ctx, &registry, &self.spec, &outputs, &self.spec_file()).await?;
        lap("plan views");
        // A shared view is computed in this process's memory, which workers cannot read.
        if self.cluster.is_none() {
            share_all(&ctx, &logical, &shared_views(&logical)?).await?;
            lap("share");
        }
        let mut captured = capture_all(&ctx, &registry, &logical, &self.spec.profile, options.explain_verbose).await?;
        lap("capture");
        let fingerprints = fingerprint_all(&logical, &mut captured, &self.spec.profile, &environment, sources);
        dfpipe_contract::register(&ctx, &self.contracts_on_views()).await?;
        lap("fingerprint, contracts on views");
        // The DAG from lineage alone; then what runs, and what each view costs.
        let mut views = planned_views(logical, captured, fingerprints, last_run.as_ref());
        if let Some(cluster) = &self.cluster {
            distribute_all(cluster, &ctx, &mut views).await?;
        }
        let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
        let depends_on: Vec<&[String]> = views.iter().map(|v| v.depends_on.as_slice()).collect();
        let graph = dag(&names, &depends_on)?;
        let written: Vec<bool> = views.iter().map(|v| v.write.is_some()).collect();
        for (view, reads) in views.iter_mut().zip(reads_outputs(&graph, &written)?) {
            view.reads_outputs = reads;
        }
        decide_all(&mut views, &graph, &selectors, &outputs, options.full, self.cluster.is_some()).await?;
        lap("distribute, DAG, decide, cost");
        let mut planned = Planned::new(self.spec.clone(), outputs, ctx, store, views, graph, options, environment);
        planned.cluster.clone_from(&self.cluster);
        planned.lock = lock;
        planned.last_run_id = last_run_id;
        Ok(planned)
    }

    /// Checks every contract: on sources, and on views as their readers see them (the
    /// committed output of a materialized view). Up to `samples` violating rows are reported
    /// per constraint.
    pub async fn check(&self, samples: usize) -> Result<dfpipe_contract::CheckReport> {
        // The stages up to the views' registration: nothing is captured, the store is not read.
        let (ctx, _) = self.session().await?;
        let outputs = Outputs::new(&ctx, &self.output_dir, &self.spec_file())?;
        let registry = self.registry(&ctx, &[])?;
        plan_views(&ctx, &registry, &self.spec, &outputs, &self.spec_file()).await?;
        dfpipe_contract::register(&ctx, &self.contracts_on_views()).await?;
        let contracts: Vec<_> = self.spec.contracts.values().cloned().collect();
        Ok(dfpipe_contract::check(&ctx, &contracts, samples).await?)
    }

    /// Refuses local paths that workers on other machines cannot read, unless `[cluster]`
    /// says every worker mounts them at the same path.
    fn check_reachable(&self) -> Result<()> {
        let Some(cluster) = &self.cluster else { return Ok(()) };
        let remote = cluster.remote_workers();
        if remote.is_empty() || self.spec.cluster.as_ref().is_some_and(|c| c.shared_filesystem) {
            return Ok(());
        }
        let local_source = self.spec.sources.iter().find(|(_, s)| !s.path.contains("://"));
        let refused = match local_source {
            _ if !self.output_dir.contains("://") => format!("output_dir `{}`", self.spec.pipeline.output_dir),
            Some((name, source)) => format!("[sources.{name}] path `{}`", source.path),
            None => return Ok(()),
        };
        Err(EngineError::Spec {
            file: self.spec_file(),
            message: format!(
                "{refused} is a local path, and worker(s) {} run on other machines, which cannot read it: \
                 put it in an object store (like s3://bucket/path, with a [storage] table), or, if every \
                 worker mounts it at the same path, set `shared_filesystem = true` under [cluster]",
                remote.join(", ")
            ),
        })
    }

    /// The contracts on views (those on sources are registered with the sources).
    fn contracts_on_views(&self) -> Vec<dfpipe_contract::Contract> {
        self.spec.contracts.values().filter(|c| !self.spec.sources.contains_key(&c.relation)).cloned().collect()
    }
}

/// The views of a plan, in name order, from the stages before: what the DAG and the
/// decisions start from.
fn planned_views(
    logical: Vec<LogicalView>,
    captured: Vec<Captured>,
    fingerprints: Vec<Fingerprint>,
    last_run: Option<&RunRecord>,
) -> Vec<PlannedView> {
    let names: BTreeSet<String> = logical.iter().map(|v| v.name.clone()).collect();
    let last = last_records(last_run);
    let mut views: Vec<PlannedView> = (logical.into_iter().zip(captured).zip(fingerprints))
        .map(|((view, captured), fingerprint)| {
            let depends_on =
                captured.bundle.lineage.depends_on.iter().filter(|r| names.contains(*r)).cloned().collect();
            // What the plan's statistics say it produces, for the cost of a view never run.
            let statistics = StatisticsContext::new().compute(captured.physical.as_ref(), &StatisticsArgs::new());
            let estimated_rows = statistics.ok().and_then(|s| s.num_rows.get_value().map(|n| *n as u64));
            PlannedView {
                last: last.get(view.name.as_str()).map(|&record| record.clone()),
                name: view.name,
                spec: view.spec,
                write: view.write,
                bundle: captured.bundle,
                logical: view.plan,
                optimized: captured.optimized,
                physical: captured.physical,
                fingerprint,
                depends_on,
                estimated_rows,
                reads_outputs: false,
                decision: crate::decide::Decision { will_run: false, reason: String::new() },
                cost: dfpipe_scheduler::CostModel::default().default_cost(),
                distributed: None,
            }
        })
        .collect();
    views.sort_by(|a, b| a.name.cmp(&b.name));
    views
}

/// Each materialized view's plan as `cluster` runs it: what `plan` and `explain` show, and
/// what the run executes.
async fn distribute_all(cluster: &Cluster, ctx: &SessionContext, views: &mut [PlannedView]) -> Result<()> {
    let state = ctx.state();
    for view in views.iter_mut().filter(|v| v.write.is_some()) {
        view.distributed = Some(cluster.distribute(Arc::clone(&view.physical), &state).await?);
    }
    Ok(())
}

/// Decides what runs, and costs each view.
async fn decide_all(
    views: &mut [PlannedView],
    graph: &TaskGraph<()>,
    selectors: &[Selector],
    outputs: &Outputs,
    full: bool,
    on_cluster: bool,
) -> Result<()> {
    let selected: Option<BTreeSet<String>> = if selectors.is_empty() {
        None
    } else {
        Some(graph.select(selectors)?.into_iter().map(|id| graph.name(id).to_owned()).collect())
    };
    for view in views.iter_mut() {
        let committed = view.write.is_some() && outputs.has_output(&view.name).await?;
        let facts = Facts {
            materialize: view.spec.materialize,
            fingerprint: &view.fingerprint,
            last: view.last.as_ref(),
            selected: is_selected(selected.as_ref(), &view.name),
            committed,
        };
        view.decision = decide(&facts, full);
    }
    // Costs measured on a cluster predict runs on a cluster only, and the reverse.
    let last: Vec<_> = views.iter().map(|v| v.last.as_ref().filter(|l| l.measured_on_cluster == on_cluster)).collect();
    let estimated: Vec<_> = views.iter().map(|v| v.estimated_rows).collect();
    let costs = costs(&last, &estimated);
    for (view, cost) in views.iter_mut().zip(costs) {
        view.cost = cost;
    }
    Ok(())
}

/// `--select` selectors (`view`, `+view`, `view+`), each naming a view of `registry`.
fn selectors(registry: &ViewRegistry, select: &[String]) -> Result<Vec<Selector>> {
    let names: BTreeSet<&str> = registry.names().collect();
    select
        .iter()
        .map(|text| {
            let usage = |message: String| EngineError::Usage { flag: "--select".to_owned(), message };
            let selector: Selector =
                text.parse().map_err(|e: dfpipe_scheduler::SchedulerError| usage(format!("`{text}`: {e}")))?;
            if names.contains(selector.name.as_str()) {
                Ok(selector)
            } else {
                let mut known: Vec<&str> = names.iter().copied().collect();
                known.truncate(30);
                Err(usage(format!(
                    "`{}` is not a view of this pipeline; its views are: {}",
                    selector.name,
                    known.join(", ")
                )))
            }
        })
        .collect()
}
