//! [`LazyViewExec`]: the physical leaf by which a plan reads a lazy view without planning it
//! inline, because the view is computed once per run for all its readers, or because the
//! plan is that of a lazy view by itself.

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::common::runtime::JoinSet;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Statistics, internal_err};
use datafusion::error::Result;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SessionState, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
    SendableRecordBatchStream, StatisticsArgs, StatisticsContext,
};
use futures::future::{BoxFuture, FutureExt, Shared as SharedFuture};
use futures::{StreamExt, TryStreamExt, stream};

/// What a shared view computes once: its batches, spread over the partitions its readers
/// see, and the memory they hold in the run's pool.
struct Batches {
    partitions: Vec<Vec<RecordBatch>>,
    _reservations: Vec<MemoryReservation>,
}

type Computing = SharedFuture<BoxFuture<'static, Result<Arc<Batches>, Arc<DataFusionError>>>>;

/// One lazy view computed once for every reader of a run (see [`crate::LazyView::share`]).
pub(crate) struct Shared {
    pub(crate) view: String,
    pub(crate) readers: usize,
    /// The shared columns, by index into the view's schema.
    pub(crate) columns: Vec<usize>,
    /// The plan of those columns, and the session to plan it with.
    plan: LogicalPlan,
    state: SessionState,
    /// Whether to plan it again when it is computed, for it reads outputs that the run may
    /// commit first.
    replan: bool,
    /// Its physical plan and statistics, planned by the first reader's planning.
    planned: futures::lock::Mutex<Option<Planned>>,
    computing: Mutex<Option<Computing>>,
}

#[derive(Clone)]
pub(crate) struct Planned {
    pub(crate) plan: Arc<dyn ExecutionPlan>,
    pub(crate) statistics: Arc<Statistics>,
}

impl Planned {
    /// The partitions its readers see.
    fn partitions(&self) -> usize {
        self.plan.output_partitioning().partition_count().max(1)
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("view", &self.view).field("columns", &self.columns).finish_non_exhaustive()
    }
}

impl Shared {
    /// `plan`, the view's columns `columns`, to plan and compute once for all its readers.
    pub(crate) fn new(
        view: &str,
        plan: LogicalPlan,
        columns: Vec<usize>,
        readers: usize,
        replan: bool,
        state: &SessionState,
    ) -> Self {
        Self {
            view: view.to_owned(),
            readers,
            columns,
            plan,
            state: state.clone(),
            replan,
            planned: futures::lock::Mutex::new(None),
            computing: Mutex::new(None),
        }
    }

    /// Its physical plan: planned by the first caller, once.
    pub(crate) async fn planned(&self) -> Result<Planned> {
        let mut planned = self.planned.lock().await;
        if let Some(planned) = planned.as_ref() {
            return Ok(planned.clone());
        }
        let plan = self.state.create_physical_plan(&self.plan).await?;
        let statistics = StatisticsContext::new().compute(plan.as_ref(), &StatisticsArgs::new())?;
        Ok(planned.insert(Planned { plan, statistics }).clone())
    }

    /// The view's batches: computed by the first caller, awaited by the others.
    fn batches(self: &Arc<Self>, context: Arc<TaskContext>) -> Computing {
        let mut computing = self.computing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        computing
            .get_or_insert_with(|| {
                let this = Arc::clone(self);
                async move { this.compute(context).await.map(Arc::new).map_err(Arc::new) }.boxed().shared()
            })
            .clone()
    }

    /// Every batch of the view, spread round-robin over the partitions its readers see (a
    /// plan made again may have another number of its own).
    async fn compute(&self, context: Arc<TaskContext>) -> Result<Batches> {
        let planned = self.planned().await?;
        let outputs = planned.partitions();
        let plan = if self.replan { self.state.create_physical_plan(&self.plan).await? } else { planned.plan };
        let mut tasks = JoinSet::new();
        for partition in 0..plan.output_partitioning().partition_count() {
            let mut stream = plan.execute(partition, Arc::clone(&context))?;
            let reservation =
                MemoryConsumer::new(format!("LazyViewExec[{}]", self.view)).register(context.memory_pool());
            tasks.spawn(async move {
                let mut batches = Vec::new();
                while let Some(batch) = stream.try_next().await? {
                    reservation.try_grow(batch.get_array_memory_size())?;
                    batches.push(batch);
                }
                Ok::<_, DataFusionError>((batches, reservation))
            });
        }
        let mut partitions = vec![Vec::new(); outputs];
        let (mut reservations, mut next) = (Vec::new(), 0);
        while let Some(joined) = tasks.join_next().await {
            let joined = joined.map_err(|e| DataFusionError::External(Box::new(e)))?;
            let (batches, reservation) = joined.map_err(|e| self.explain(e))?;
            for batch in batches {
                partitions[next % outputs].push(batch);
                next += 1;
            }
            reservations.push(reservation);
        }
        Ok(Batches { partitions, _reservations: reservations })
    }

    /// `error`, with a word on why this view was being computed whole.
    fn explain(&self, error: DataFusionError) -> DataFusionError {
        let why = format!(
            "view `{}` is read by {} plans of this run, so it is computed once, in memory, for all of them",
            self.view, self.readers
        );
        match error {
            DataFusionError::ResourcesExhausted(_) => error.context(format!(
                "{why}; it does not fit in the memory limit: raise [profile] memory_limit, or materialize the view"
            )),
            error => error.context(why),
        }
    }
}

/// Where a physical plan reads a lazy view that it does not plan inline: either the view is
/// shared, computed once per run for all its readers by the first of them to execute (in
/// memory, held in the run's memory pool so that `memory_limit` bounds it), and every reader
/// streams its columns from there; or the plan is that of a lazy view by itself (see
/// [`crate::plan_alone`]), which never executes: its readers plan the view inline.
#[derive(Debug)]
pub struct LazyViewExec {
    view: String,
    read: Read,
    properties: Arc<PlanProperties>,
}

#[derive(Debug)]
enum Read {
    Shared {
        shared: Arc<Shared>,
        /// The shared view's statistics.
        statistics: Arc<Statistics>,
        /// The reader's columns, by index into the shared columns.
        projection: Vec<usize>,
    },
    Alone {
        filters: Vec<String>,
    },
}

impl LazyViewExec {
    /// The scan of `projection` (indices into the view's schema) of a shared view, or `None`
    /// when it reads a column the view does not share.
    pub(crate) async fn shared(shared: &Arc<Shared>, projection: &[usize]) -> Result<Option<Self>> {
        let Some(projection) = (projection.iter())
            .map(|column| shared.columns.iter().position(|c| c == column))
            .collect::<Option<Vec<usize>>>()
        else {
            return Ok(None);
        };
        let planned = shared.planned().await?;
        let schema = planned.plan.schema().project(&projection)?;
        let (partitions, statistics) = (planned.partitions(), planned.statistics);
        let read = Read::Shared { shared: Arc::clone(shared), statistics, projection };
        Ok(Some(Self::new(shared.view.clone(), schema, partitions, EmissionType::Final, read)))
    }

    /// The scan of view `view` in the plan of a lazy view by itself.
    pub(crate) fn alone(view: &str, schema: Schema, filters: &[Expr]) -> Self {
        let filters = filters.iter().map(ToString::to_string).collect();
        Self::new(view.to_owned(), schema, 1, EmissionType::Incremental, Read::Alone { filters })
    }

    fn new(view: String, schema: Schema, partitions: usize, emission: EmissionType, read: Read) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::new(schema)),
            Partitioning::UnknownPartitioning(partitions),
            emission,
            Boundedness::Bounded,
        );
        Self { view, read, properties: Arc::new(properties) }
    }

    /// The view it reads.
    pub fn view(&self) -> &str {
        &self.view
    }

    /// Whether it reads the view computed once for the run, rather than nothing.
    pub fn is_shared(&self) -> bool {
        matches!(self.read, Read::Shared { .. })
    }
}

impl DisplayAs for LazyViewExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schema = self.schema();
        let columns: Vec<&str> = schema.fields().iter().map(|field| field.name().as_str()).collect();
        let how = match &self.read {
            Read::Shared { shared, .. } => format!("shared by {} readers", shared.readers),
            Read::Alone { .. } => "planned by its readers".to_owned(),
        };
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "LazyViewExec: view={}, {how}, projection=[{}]", self.view, columns.join(", "))?;
                match &self.read {
                    Read::Alone { filters } if !filters.is_empty() => write!(f, ", filters=[{}]", filters.join(", ")),
                    _ => Ok(()),
                }
            }
            DisplayFormatType::TreeRender => write!(f, "view={}\n{how}", self.view),
        }
    }
}

impl ExecutionPlan for LazyViewExec {
    fn name(&self) -> &'static str {
        "LazyViewExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() { Ok(self) } else { internal_err!("LazyViewExec has no children") }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let Read::Shared { shared, projection, .. } = &self.read else {
            return internal_err!(
                "the plan of lazy view `{}` by itself is for display; plan its readers to execute it",
                self.view
            );
        };
        let partitions = self.properties.partitioning.partition_count();
        if partition >= partitions {
            return internal_err!("LazyViewExec has {partitions} partitions, not {}", partition + 1);
        }
        let projection = projection.clone();
        let batches = stream::once(shared.batches(context))
            .map(move |computed| match computed {
                Ok(computed) => {
                    let projection = projection.clone();
                    let batches = computed.partitions[partition].clone();
                    stream::iter(batches.into_iter().map(move |batch| Ok(batch.project(&projection)?))).boxed()
                }
                Err(error) => stream::once(async move { Err(DataFusionError::Shared(error)) }).boxed(),
            })
            .flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), batches)))
    }

    fn statistics_from_inputs(&self, _inputs: &[Arc<Statistics>], args: &StatisticsArgs) -> Result<Arc<Statistics>> {
        let statistics = match (&self.read, args.partition()) {
            (Read::Shared { statistics, projection, .. }, None) => {
                statistics.as_ref().clone().project(Some(projection))
            }
            _ => Statistics::new_unknown(&self.schema()),
        };
        Ok(Arc::new(statistics))
    }
}
