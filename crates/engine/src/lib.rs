//! The thin composition of dfpipe's crates: pipeline spec → plan → schedule → run.
//!
//! [`Pipeline::load`] reads a pipeline directory. [`Pipeline::plan`] plans every view once
//! (views → plan-walk → artifacts), derives the DAG and the fingerprints from the plans,
//! decides what runs, and predicts the schedule (scheduler). [`Planned::run`] executes what
//! must run through the writer, and records the bundles and the run in the store.
//! [`Planned::stream`] streams one view's rows instead, writing and recording nothing.

mod history;
mod materialized;
mod pipeline;
mod profile;
mod report;
mod run;
mod show;
mod spec;

pub use materialized::OutputDir;
pub use pipeline::{Pipeline, Planned, RunOptions};
pub use report::{LineageReport, PlanReport, RunReport, ScheduleReport, ViewLineage, ViewPlanReport, ViewRunReport};
pub use run::Event;
pub use spec::{Materialize, PipelineSpec, Profile, SPEC_FILE, SourceFormat, SourceSpec, ViewSpec};

pub use dfpipe_artifacts::{Category, Diff, Environment, PlanBundle, ViewChange, ViewDiff};
pub use dfpipe_contract::CheckReport;
pub use dfpipe_plan_walk::{ColumnLineage, Inspected, Kind, Lineage, Role, Source};
pub use dfpipe_scheduler::CancelToken;
pub use dfpipe_views::{BoundParams, ParamSpec, ViewTemplate};

use std::path::PathBuf;

/// Errors raised by the engine. All but [`EngineError::Io`] are errors in the user's pipeline.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `dfpipe.toml` is missing, malformed or inconsistent.
    #[error("{}: {message}", file.display())]
    Spec {
        /// The file at fault.
        file: PathBuf,
        /// What is wrong, with the line and key where known.
        message: String,
    },
    /// A source cannot be registered.
    #[error("source `{name}`: {message}")]
    Source {
        /// The source.
        name: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A name given as a view is none of the pipeline's views.
    #[error("no view named `{view}`; {}", show::unknown_view_hint(.close, .views))]
    UnknownView {
        /// The name given.
        view: String,
        /// The views with a name close to it, closest first.
        close: Vec<String>,
        /// Every view, in name order.
        views: Vec<String>,
    },
    /// A view is refused or does not plan.
    #[error(transparent)]
    View(#[from] dfpipe_views::ViewError),
    /// The views reference each other in a cycle.
    #[error("views read each other in a cycle: {}. Each view reads the next; change one of them to break the cycle.", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// The schedule could not be built.
    #[error(transparent)]
    Schedule(dfpipe_scheduler::SchedulerError),
    /// A plan cannot be captured, or the store is unreadable.
    #[error(transparent)]
    Artifact(#[from] dfpipe_artifacts::ArtifactError),
    /// A contract declaration is invalid, or a check did not run.
    #[error(transparent)]
    Contract(#[from] dfpipe_contract::ContractError),
    /// A write failed before it could start.
    #[error(transparent)]
    Write(#[from] dfpipe_writer::WriteError),
    /// An unexpected DataFusion failure.
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl EngineError {
    /// A short machine-readable name of the error's class, for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Spec { .. } | Self::UnknownView { .. } => "spec",
            Self::Source { .. } => "source",
            Self::View(_) => "view",
            Self::Cycle(_) => "cycle",
            Self::Schedule(_) => "schedule",
            Self::Artifact(_) => "artifact",
            Self::Contract(_) => "contract",
            Self::Write(_) => "write",
            Self::DataFusion(_) => "datafusion",
            Self::Io { .. } => "io",
        }
    }
}

impl From<dfpipe_scheduler::SchedulerError> for EngineError {
    fn from(error: dfpipe_scheduler::SchedulerError) -> Self {
        match error {
            // The scheduler lists a cycle along its edges (a view before its readers);
            // users read it the other way: each view reads the next.
            dfpipe_scheduler::SchedulerError::Cycle(mut views) => {
                views.reverse();
                Self::Cycle(views)
            }
            other => Self::Schedule(other),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
