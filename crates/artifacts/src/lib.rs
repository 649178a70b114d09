//! Plan bundles, Substrait fingerprints and the versioned artifact store.
//!
//! A [`PlanBundle`] captures everything one view's planning produced: the logical, optimized
//! and physical plans (indented and as a tree), optimizer rule deltas, its lineage, its
//! Substrait bytes (validated on request), its unparsed SQL, the ingredients of its
//! [`Fingerprint`], and after execution the plan that ran with the metrics of each operator.
//! The fingerprint identifies the plan across runs, processes and machines. An [`Environment`]
//! is a snapshot of `information_schema`. The [`Store`] keeps bundles, run records (with each
//! view's [`ViewStatus`] and [`WriteRecord`]) and environment snapshots under
//! `<pipeline>/.dfpipe/`; [`diff_runs`], [`diff_bundles`] and [`diff_environments`] say what
//! changed between two.
//! `dfpipe-artifacts` reads `information_schema` generically and knows nothing about
//! `dfpipe-contract`.

mod bundle;
mod diff;
mod environment;
pub mod fingerprint;
mod lock;
mod metrics;
mod store;

pub use bundle::{
    CaptureOptions, Captured, Column, FingerprintRecord, PlanBundle, RuleDelta, SubstraitMode, Unparsed, Validation,
    capture, unparse,
};
pub use diff::{
    Category, ChangedColumn, ChangedSetting, Diff, EnvironmentDiff, Retyped, SchemaChange, ViewChange, ViewDiff,
    diff_bundles, diff_environments, diff_runs,
};
pub use environment::{Environment, EnvironmentTable};
pub use fingerprint::{Fingerprint, FingerprintInputs, Ingredients};
pub use lock::{LOCK_FILE, LockHolder, RunLock};
pub use metrics::{AnalyzeLevel, OperatorMetrics, collect as collect_metrics};
pub use store::{
    ClusterRun, RunRecord, RunStatus, SCHEMA_VERSION, Store, UNCHANGED, ViewRecord, ViewStatus, WriteRecord,
};

use std::path::PathBuf;

/// Errors raised while capturing, fingerprinting or storing artifacts.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The optimized plan of a view has no Substrait form under `substrait = "strict"`.
    #[error(
        "view `{view}`: no Substrait plan: {message}. To fingerprint the plan text instead, set `substrait = \"fallback\"` in [profile] or under [views.{view}]"
    )]
    Substrait {
        /// The view.
        view: String,
        /// One line naming the node or expression the producer cannot encode.
        message: String,
    },
    /// DataFusion failed while planning.
    #[error("view `{view}`: {source}")]
    DataFusion {
        /// The view.
        view: String,
        /// The cause.
        source: datafusion::error::DataFusionError,
    },
    /// A store file is unreadable, corrupt, or from a newer dfpipe.
    #[error("artifact store file {}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Another run holds the store's run lock.
    #[error(
        "{} is held by another run ({}){}",
        path.display(),
        holder.as_ref().map_or_else(|| "its holder is not recorded yet".to_owned(), ToString::to_string),
        if waited.is_zero() { String::new() } else { format!(", still after waiting {:.1}s", waited.as_secs_f64()) }
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as the lock file says.
        holder: Option<LockHolder>,
        /// How long this run waited for it.
        waited: std::time::Duration,
    },
    /// A write report cannot be encoded into, or decoded from, its [`WriteRecord`].
    #[error("write report: {message}")]
    WriteReport {
        /// What went wrong.
        message: String,
    },
    /// A filesystem operation on the store failed.
    #[error("artifact store: {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;
