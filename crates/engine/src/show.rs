//! `show`: a view's rows, streamed from its plan with nothing written or recorded.
//!
//! The physical plan is built again from the optimized plan captured when the view was
//! planned (no second optimization), as `run` does for readers of committed outputs: every
//! call gets operators with fresh state, and a reader of a materialized view scans that
//! view's committed output as it is now. Nothing touches the store or the output directory.

use std::sync::Arc;

use datafusion::common::utils::datafusion_strsim::levenshtein;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{
    EmptyRecordBatchStream, ExecutionPlan, ExecutionPlanProperties, execute_stream_partitioned,
};

use crate::planned::Planned;
use crate::{EngineError, Result};

impl Planned {
    /// The rows of `view`, parameters bound, as one stream per output partition of its
    /// physical plan (at least one): what `run` would compute for it, without writing,
    /// checking or recording anything. A materialized view upstream is read from its
    /// committed output (empty before its first run). Each stream yields batches of at most
    /// the profile's `batch_size` rows as it is polled; dropping the streams stops the work.
    pub async fn stream(&self, view: &str) -> Result<Vec<SendableRecordBatchStream>> {
        let planned = self.views.iter().find(|v| v.name == view).ok_or_else(|| self.unknown_view(view))?;
        let state = self.context().state();
        let plan = physical_plan(&planned.optimized, &state).await?;
        if plan.output_partitioning().partition_count() == 0 {
            return Ok(vec![Box::pin(EmptyRecordBatchStream::new(plan.schema()))]);
        }
        Ok(execute_stream_partitioned(plan, self.context().task_ctx())?)
    }

    /// The error for `view` when it is none of the planned views: it names the views with a
    /// close name, or lists them all when none is close.
    pub fn unknown_view(&self, view: &str) -> EngineError {
        let names = self.view_names();
        let mut close: Vec<(usize, &str)> = names
            .iter()
            .filter_map(|name| {
                let (wanted, name_lower) = (view.to_lowercase(), name.to_lowercase());
                let distance = levenshtein(&wanted, &name_lower);
                let contains = !wanted.is_empty() && (name_lower.contains(&wanted) || wanted.contains(&name_lower));
                (distance <= (view.chars().count() / 3).max(1) || contains).then_some((distance, *name))
            })
            .collect();
        close.sort_unstable();
        EngineError::UnknownView {
            view: view.to_owned(),
            close: close.into_iter().take(5).map(|(_, name)| name.to_owned()).collect(),
            views: names.into_iter().map(str::to_owned).collect(),
        }
    }
}

/// The physical plan of an optimized logical plan, through the session's query planner and
/// without optimizing it again: what `capture` built at planning, built anew.
pub(crate) async fn physical_plan(
    optimized: &LogicalPlan,
    state: &SessionState,
) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    state.query_planner().create_physical_plan(optimized, state).await
}

/// What [`EngineError::UnknownView`] suggests: the close names, else every view.
pub(crate) fn unknown_view_hint(close: &[String], views: &[String]) -> String {
    let quoted = |names: &[String]| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    match (close, views) {
        ([], []) => "the pipeline has no views".to_owned(),
        ([], views) => format!("the views are: {}", quoted(views)),
        ([one], _) => format!("did you mean {}?", quoted(std::slice::from_ref(one))),
        (close, _) => format!("did you mean one of {}?", quoted(close)),
    }
}
