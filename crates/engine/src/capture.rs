//! Stage "capture": each view's logical plan optimized and planned physically once, into its
//! bundle (artifacts). The CPU-bound part of planning, independent per view once every view
//! is registered, so the views are captured in parallel on the runtime.

use datafusion::prelude::SessionContext;
use dfpipe_artifacts::{ArtifactError, CaptureOptions, Captured, capture};
use dfpipe_views::{ViewRegistry, ViewSource, plan_alone};

use crate::spec::{Materialize, Profile};
use crate::views::LogicalView;
use crate::{EngineError, Result};

/// Captures every view of `views`, returned in the same order. `explain_verbose` records the
/// plan after every optimizer rule, whatever the profile says. An error met while optimizing
/// or planning physically names the view as `registry` knows it (its file, for SQL).
pub(crate) async fn capture_all(
    ctx: &SessionContext,
    registry: &ViewRegistry,
    views: &[LogicalView],
    profile: &Profile,
    explain_verbose: bool,
) -> Result<Vec<Captured>> {
    let tasks: Vec<_> = views
        .iter()
        .map(|view| {
            let options = CaptureOptions {
                substrait: view.spec.substrait.unwrap_or(profile.substrait),
                validate_substrait: profile.validate_substrait,
                explain_verbose: profile.explain_verbose || explain_verbose,
                // A SQL view's SQL is its file; a template's is its plan unparsed.
                unparse: matches!(registry.get(&view.name), Some(ViewSource::Template { .. })),
            };
            // A lazy view runs only inside its readers: planned alone, its plan stops at the
            // lazy views it reads, which the readers plan.
            let state = match view.spec.materialize {
                Materialize::Lazy => plan_alone(&ctx.state()),
                Materialize::Parquet => ctx.state(),
            };
            let (name, plan) = (view.name.clone(), view.plan.clone());
            tokio::spawn(async move { capture(&name, &plan, &state, options).await })
        })
        .collect();
    let mut captured = Vec::with_capacity(tasks.len());
    for (view, task) in views.iter().zip(tasks) {
        let joined = task.await.map_err(|e| EngineError::Internal(format!("capturing view `{}`: {e}", view.name)))?;
        captured.push(joined.map_err(|error| match (error, registry.get(&view.name)) {
            (ArtifactError::DataFusion { source, .. }, Some(source_view)) => source_view.planning_error(&source).into(),
            (error, _) => EngineError::from(error),
        })?);
    }
    Ok(captured)
}
