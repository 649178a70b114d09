//! Plan bundles, Substrait fingerprints and the versioned artifact store.
//!
//! A [`PlanBundle`] captures everything one view's planning produced: the logical, optimized
//! and physical plans, its lineage and its Substrait bytes. Its [`Fingerprint`] identifies the
//! plan across runs, processes and machines. The [`Store`] keeps bundles and run records
//! under `<pipeline>/.dfpipe/`. `dfpipe-artifacts` knows nothing about `dfpipe-contract`.

mod bundle;
mod fingerprint;
mod store;

pub use bundle::{Captured, PlanBundle, SubstraitMode, capture};
pub use fingerprint::{Fingerprint, FingerprintInputs};
pub use store::{RunRecord, SCHEMA_VERSION, Store, UNCHANGED, ViewRecord};

use std::path::PathBuf;

/// Errors raised while capturing, fingerprinting or storing artifacts.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The optimized plan of a view has no Substrait form under `substrait = "strict"`.
    #[error(
        "view `{view}`: no Substrait plan: {message}. Set `substrait = \"fallback\"` in [profile] to fingerprint the plan text instead."
    )]
    Substrait {
        /// The view.
        view: String,
        /// DataFusion's message, naming the unsupported node.
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
