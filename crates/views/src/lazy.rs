//! `LazyView`: a view that readers scan by name, planned only when a reader is planned.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, plan_err};
use datafusion::datasource::ViewTable;
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::expressions::Column as PhysicalColumn;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::prelude::DataFrame;

use crate::shared::{LazyViewExec, Shared};

/// A view registered as a table provider. Unlike DataFusion's `ViewTable`, it does not
/// offer its plan for inlining, so a reader's logical plan keeps a `TableScan` named after
/// the view: lineage, Substrait and fingerprints see the view, not the tables below it.
///
/// How a reader's physical plan reads it:
/// - by default, inline: scanning plans the view with the reader's projection and filters
///   pushed into it;
/// - once [`LazyView::share`]d, through a shared [`LazyViewExec`]: the view is computed once
///   per run for all its readers, whatever the number of paths by which plans reach it;
/// - under [`plan_alone`], as a [`LazyViewExec`] that never executes: the plan of a lazy
///   view by itself stops at the lazy views it reads, which its readers plan.
#[derive(Debug)]
pub struct LazyView {
    name: String,
    inner: ViewTable,
    shared: OnceLock<Arc<Shared>>,
}

/// A session extension: with it, lazy views are planned alone (see [`plan_alone`]).
#[derive(Debug)]
struct PlanAlone;

/// `state` for planning a lazy view by itself: the lazy views it reads (unless shared)
/// become [`LazyViewExec`] leaves instead of being planned inline, so planning one view costs
/// its own size, not that of everything below it.
pub fn plan_alone(state: &SessionState) -> SessionState {
    let mut state = state.clone();
    state.config_mut().set_extension(Arc::new(PlanAlone));
    state
}

impl LazyView {
    /// Wraps a lazy `DataFrame` as view `name`. Nothing is executed.
    pub fn new(name: &str, df: DataFrame) -> Self {
        Self { name: name.to_owned(), inner: ViewTable::new(df.into_unoptimized_plan(), None), shared: OnceLock::new() }
    }

    /// The view's logical plan.
    pub fn plan(&self) -> &LogicalPlan {
        self.inner.logical_plan()
    }

    /// From now on, readers' physical plans read the view through a shared [`LazyViewExec`]:
    /// planned (with `state`) when the first of them is planned, computed once (columns
    /// `columns` of the view, by index) the first time any of them executes; `readers` is how many plans read it, for its display and errors. With
    /// `replan`, the view is planned again when it is computed, for it reads outputs that the
    /// run may commit first. A second call is an error.
    pub fn share(&self, state: &SessionState, columns: Vec<usize>, readers: usize, replan: bool) -> Result<()> {
        let fields = self.plan().schema().columns();
        let exprs: Vec<Expr> = columns.iter().map(|&i| Expr::Column(fields[i].clone())).collect();
        let plan = LogicalPlanBuilder::from(self.plan().clone()).project(exprs)?.build()?;
        let shared = Shared::new(&self.name, plan, columns, readers, replan, state);
        if self.shared.set(Arc::new(shared)).is_err() {
            return plan_err!("view `{}` is shared already", self.name);
        }
        Ok(())
    }
}

impl LazyView {
    /// A reader's scan of the shared view: its `filters` applied to the shared rows, then its
    /// `projection`; `None` when it reads a column the view does not share. A limit on a scan
    /// is a hint the reader's own limit enforces.
    async fn scan_shared(
        &self,
        shared: &Arc<Shared>,
        state: &dyn Session,
        projection: &[usize],
        filters: &[Expr],
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let schema = self.schema();
        // The filters' columns, after those of the projection.
        let mut read = projection.to_vec();
        for filter in filters {
            for column in filter.column_refs() {
                let index = schema.index_of(&column.name)?;
                if !read.contains(&index) {
                    read.push(index);
                }
            }
        }
        let Some(exec) = LazyViewExec::shared(shared, &read).await? else { return Ok(None) };
        let mut plan: Arc<dyn ExecutionPlan> = Arc::new(exec);
        if let Some(predicate) = conjunction(filters.iter().cloned()) {
            // Pushed filters name the scan's relation; the shared rows have plain columns.
            let predicate = predicate
                .transform(|e| match e {
                    Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))),
                    other => Ok(Transformed::no(other)),
                })?
                .data;
            let df_schema = DFSchema::try_from(plan.schema().as_ref().clone())?;
            let predicate = state.create_physical_expr(predicate, &df_schema)?;
            plan = Arc::new(FilterExec::try_new(predicate, plan)?);
        }
        if read.len() > projection.len() {
            let schema = plan.schema();
            let columns: Vec<ProjectionExpr> = (0..projection.len())
                .map(|i| {
                    let name = schema.field(i).name();
                    ProjectionExpr { expr: Arc::new(PhysicalColumn::new(name, i)), alias: name.clone() }
                })
                .collect();
            plan = Arc::new(ProjectionExec::try_new(columns, plan)?);
        }
        Ok(Some(plan))
    }
}

#[async_trait]
impl TableProvider for LazyView {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        None
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        None
    }

    /// The same whether the view is shared or not, so that readers' logical plans (and so
    /// their Substrait and fingerprints) do not depend on it: a shared view applies a reader's
    /// filters to the rows it computed once.
    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let all: Vec<usize>;
        let projection = if let Some(projection) = projection {
            projection
        } else {
            all = (0..self.schema().fields().len()).collect();
            &all
        };
        if let Some(shared) = self.shared.get()
            && let Some(plan) = self.scan_shared(shared, state, projection, filters).await?
        {
            return Ok(plan);
        }
        if state.config().get_extension::<PlanAlone>().is_some() {
            return Ok(Arc::new(LazyViewExec::alone(&self.name, self.schema().project(projection)?, filters)));
        }
        self.inner.scan(state, Some(projection), filters, limit).await
    }
}
