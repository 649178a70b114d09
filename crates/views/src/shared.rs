//! [`LazyViewExec`]: the physical leaf by which a plan reads a lazy view without planning it
//! inline, because the view is computed once per run for all its readers, or because the
//! plan is that of a lazy view by itself.

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
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
    view: String,
    readers: usize,
    /// The shared columns, by index into the view's schema.
    columns: Vec<usize>,
    /// The plan of those columns, planned when the view was shared.
    planned: Arc<dyn ExecutionPlan>,
    statistics: Arc<Statistics>,
    /// The projected logical plan and the session to plan it with at execution, when the
    /// view reads outputs the run may commit first.
    replan: Option<(LogicalPlan, SessionState)>,
    computing: Mutex<Option<Computing>>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("view", &self.view).field("columns", &self.columns).finish_non_exhaustive()
    }
}

impl Shared {
    /// Plans `plan`, the view's columns `columns`, once for all its readers.
    pub(crate) async fn plan(
        view: &str,
        plan: LogicalPlan,
        columns: Vec<usize>,
        readers: usize,
        replan: bool,
        state: &SessionState,
    ) -> Result<Self> {
        let planned = state.create_physical_plan(&plan).await?;
        let statistics = StatisticsContext::new().compute(planned.as_ref(), &StatisticsArgs::new())?;
        Ok(Self {
            view: view.to_owned(),
            readers,
            columns,
            planned,
            statistics,
            replan: replan.then(|| (plan, state.clone())),
            computing: Mutex::new(None),
        })
    }

    fn schema(&self) -> SchemaRef {
        self.planned.schema()
    }

    fn partitions(&self) -> usize {
        self.planned.output_partitioning().partition_count().max(1)
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

    async fn compute(&self, context: Arc<TaskContext>) -> Result<Batches> {
        let plan = match &self.replan {
            Some((plan, state)) => state.create_physical_plan(plan).await?,
            None => Arc::clone(&self.planned),
        };
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
        let count = self.partitions();
        let mut partitions = vec![Vec::new(); count];
        let (mut reservations, mut next) = (Vec::new(), 0);
        while let Some(joined) = tasks.join_next().await {
            let joined = joined.map_err(|e| DataFusionError::External(Box::new(e)))?;
            let (batches, reservation) = joined.map_err(|e| self.explain(e))?;
            for batch in batches {
                partitions[next % count].push(batch);
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
    pub(crate) fn shared(shared: Arc<Shared>, projection: &[usize]) -> Option<Self> {
        let projection: Vec<usize> =
            (projection.iter()).map(|column| shared.columns.iter().position(|c| c == column)).collect::<Option<_>>()?;
        let schema = shared.schema().project(&projection).ok()?;
        let (view, partitions) = (shared.view.clone(), shared.partitions());
        Some(Self::new(view, schema, partitions, EmissionType::Final, Read::Shared { shared, projection }))
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
        let Read::Shared { shared, projection } = &self.read else {
            return internal_err!(
                "the plan of lazy view `{}` by itself is for display; plan its readers to execute it",
                self.view
            );
        };
        if partition >= shared.partitions() {
            return internal_err!("LazyViewExec has {} partitions, not {}", shared.partitions(), partition + 1);
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
            (Read::Shared { shared, projection }, None) => shared.statistics.as_ref().clone().project(Some(projection)),
            _ => Statistics::new_unknown(&self.schema()),
        };
        Ok(Arc::new(statistics))
    }
}
