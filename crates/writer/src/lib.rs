//! Parquet writes through DataFusion's own writers, committed atomically.
//!
//! A write streams an `ExecutionPlan` (the very plan the engine captured) into a staging
//! directory beside the target through DataFusion's parallel parquet sink, never collecting
//! rows in memory. Only when the whole write has succeeded does [`Staged::commit`] swap the
//! staging directory in for the previous output, so a failed write leaves it intact.

mod write;

pub use write::{Staged, WriteReport, WriteSpec, clean_staging, write_parquet};

use std::path::PathBuf;

/// Errors raised by a write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The spec is invalid; nothing was written.
    #[error("invalid write spec for {}: {message}", target.display())]
    Spec {
        /// The target.
        target: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// DataFusion failed while writing; the previous output is intact.
    #[error("writing {} failed: {source}", target.display())]
    DataFusion {
        /// The target.
        target: PathBuf,
        /// The cause.
        source: datafusion::error::DataFusionError,
    },
    /// A filesystem operation failed; the previous output is intact.
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

/// The crate's result type.
pub type Result<T, E = WriteError> = std::result::Result<T, E>;
