//! The thin composition of dfpipe's crates: pipeline spec → plan → schedule → run.
//!
//! [`Pipeline::load`] reads a pipeline directory. [`Pipeline::plan`] plans every view once
//! (views → plan-walk → artifacts), derives the DAG and the fingerprints from the plans,
//! decides what runs, and predicts the schedule (scheduler). [`Planned::run`] executes what
//! must run through the writer, and records the bundles and the run in the store.
//! [`Planned::stream`] streams one view's rows instead, writing and recording nothing.
//! [`Pipeline::html_report`] draws the plan and the store as one HTML page (report).

mod capture;
mod dag;
mod decide;
mod fingerprint;
mod history;
mod openlineage;
mod output;
mod page;
mod pipeline;
mod planned;
mod profile;
mod record;
mod report;
mod run;
mod share;
mod show;
mod sources;
mod spec;
mod views;

pub use pipeline::{Pipeline, RunOptions};
pub use planned::Planned;
pub use report::{LineageReport, PlanReport, RunReport, ScheduleReport, ViewLineage, ViewPlanReport, ViewRunReport};
pub use run::Event;
pub use spec::{
    ClusterSection, Materialize, OpenLineageSection, PipelineSpec, Profile, SPEC_FILE, SourceFormat, SourceSpec,
    ViewSpec,
};

pub use dfpipe_cluster::{Cluster, ClusterError};
pub use dfpipe_storage::{Provider, StoreOptions, StorePrefix};

pub use dfpipe_artifacts::{
    Category, Diff, Environment, PlanBundle, RunStatus, Unparsed, ViewChange, ViewDiff, ViewStatus,
};
pub use dfpipe_contract::{CheckReport, ConstraintKind};
pub use dfpipe_plan_walk::{ColumnLineage, Inspected, Kind, Lineage, Role, Source};
pub use dfpipe_scheduler::{CancelToken, CostSource};
pub use dfpipe_views::{BoundParams, ParamSpec, ViewTemplate};
pub use dfpipe_writer::WriteReport;

use std::path::PathBuf;

/// Errors raised by the engine, in two classes ([`EngineError::is_internal`]): errors in
/// the user's pipeline or command line, and failures of the environment (IO, the store) or
/// of dfpipe and DataFusion themselves.
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
    /// A command-line flag or an argument of a Rust call is wrong.
    #[error("{flag}: {message}")]
    Usage {
        /// The flag or argument, like `--select`.
        flag: String,
        /// What is wrong and what to do.
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
    #[error("{}", .0.strip_backtrace())]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// An object store failed or refused a request: its server, the network, or the
    /// credentials taken from the environment.
    #[error("{message}")]
    Storage {
        /// The URL being read or written.
        url: String,
        /// What was being done and what went wrong, naming the bucket.
        message: String,
    },
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
    /// A worker of the cluster is unreachable or refused, or a cluster setting is wrong.
    #[error(transparent)]
    Cluster(#[from] dfpipe_cluster::ClusterError),
    /// Another run of the pipeline holds its store's run lock.
    #[error(
        "another run of this pipeline is going on: {source}. Run again once it has ended, or wait for it with `--lock-timeout SECONDS`"
    )]
    Locked {
        /// The store's refusal, naming the lock file and its holder.
        source: dfpipe_artifacts::ArtifactError,
    },
    /// A bug: something dfpipe assumes did not hold.
    #[error("internal error: {0}. This is a bug in dfpipe; please report it with the command that failed")]
    Internal(String),
}

impl EngineError {
    /// A short machine-readable name of the error's class, for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Spec { .. } => "spec",
            Self::Usage { .. } | Self::UnknownView { .. } => "usage",
            Self::Source { .. } => "source",
            Self::View(dfpipe_views::ViewError::Cycle { .. }) => "cycle",
            Self::View(_) => "view",
            Self::Schedule(_) => "schedule",
            Self::Artifact(_) => "artifact",
            Self::Contract(_) => "contract",
            Self::Write(_) => "write",
            Self::DataFusion(_) => "datafusion",
            Self::Storage { .. } => "storage",
            Self::Io { .. } => "io",
            Self::Cluster(_) => "cluster",
            Self::Locked { .. } => "locked",
            Self::Internal(_) => "internal",
        }
    }

    /// Whether the error is a failure of the environment (IO, the store, an object store) or
    /// a bug, rather than an error in the user's pipeline or command line. The CLI exits
    /// with 3 for these, and 2 for the others.
    pub fn is_internal(&self) -> bool {
        use dfpipe_artifacts::ArtifactError;
        use dfpipe_writer::WriteError;
        match self {
            Self::View(dfpipe_views::ViewError::Io { .. })
            | Self::Io { .. }
            | Self::Storage { .. }
            | Self::Internal(_)
            | Self::Schedule(_)
            | Self::Artifact(
                ArtifactError::Corrupt { .. } | ArtifactError::Io { .. } | ArtifactError::WriteReport { .. },
            )
            | Self::Write(WriteError::Io { .. } | WriteError::ObjectStore { .. } | WriteError::Report { .. }) => true,
            Self::DataFusion(source)
            | Self::Contract(dfpipe_contract::ContractError::DataFusion { source, .. })
            | Self::Write(WriteError::DataFusion { source, .. }) => is_internal_datafusion(source),
            _ => false,
        }
    }
}

/// Whether a DataFusion error is a failure of the environment or of DataFusion itself.
fn is_internal_datafusion(error: &datafusion::error::DataFusionError) -> bool {
    use datafusion::error::DataFusionError as E;
    matches!(error.find_root(), E::Internal(_) | E::IoError(_) | E::ObjectStore(_) | E::ResourcesExhausted(_))
}

impl From<dfpipe_scheduler::SchedulerError> for EngineError {
    fn from(error: dfpipe_scheduler::SchedulerError) -> Self {
        match error {
            // The scheduler lists a cycle along its edges (a view before its readers);
            // users read it the other way: each view reads the next.
            dfpipe_scheduler::SchedulerError::Cycle(mut views) => {
                views.reverse();
                Self::View(dfpipe_views::ViewError::Cycle { views })
            }
            other => Self::Schedule(other),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
