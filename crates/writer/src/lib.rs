//! Outputs written through DataFusion's own writers, committed atomically.
//!
//! [`write`] streams an `ExecutionPlan` (the very plan the engine captured) through
//! DataFusion's parquet, CSV or JSON sink into a staging directory beside the target, with
//! the format options and output parallelism knobs of a [`WriteSpec`], never collecting rows
//! in memory. Only when the whole write has succeeded does [`Staged::commit`] swap the
//! staging directory in for the previous output (two renames locally, copies and deletes in
//! an object store), so a failed or dropped write leaves the previous output intact, and
//! [`clean_staging`] repairs what a crash left behind. The [`WriteReport`] records the
//! files, rows, bytes, time and every option and knob used; [`register_output`] reads an
//! output back as a listing table with its schema, partitions and sort order.
//!
//! Targets are local paths, `file://` URLs, or URLs of any object store registered on the
//! session's `RuntimeEnv` (`memory://` in tests); this crate builds no cloud clients.

mod location;
mod read;
mod report;
mod spec;
mod writable;
mod write;

pub use location::Location;
pub use read::{OutputTable, register_output};
pub use report::{OutputColumn, WriteReport, WrittenFile};
pub use spec::{OutputFormat, SortColumn, WriteSpec, WriterKnobs};
pub use writable::check_writable;
pub use write::{Staged, clean_staging, write};

use std::path::PathBuf;

/// Errors raised by a write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The spec is invalid; nothing was written.
    #[error("invalid write spec for {target}: {message}")]
    Spec {
        /// The target.
        target: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The output has a column that the format's writer cannot write; nothing was written.
    #[error("column `{column}` ({data_type}) cannot be written as {}: {reason}; {fix}", format.name())]
    Unwritable {
        /// The format.
        format: OutputFormat,
        /// The column.
        column: String,
        /// Its type.
        data_type: datafusion::arrow::datatypes::DataType,
        /// Why the format cannot write it.
        reason: String,
        /// What to do.
        fix: String,
    },
    /// DataFusion failed while writing or reading back; the previous output is intact.
    #[error("writing {target} failed: {}", source.strip_backtrace())]
    DataFusion {
        /// The target.
        target: String,
        /// The cause.
        source: datafusion::error::DataFusionError,
    },
    /// A write report cannot be used to read its output back.
    #[error("the write report of {target} is unusable: {message}")]
    Report {
        /// The target.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// A filesystem operation failed; the previous output is intact or restored by the next
    /// `clean_staging`.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An object-store operation failed; the previous output is intact or restored by the
    /// next `clean_staging`.
    #[error("{action} {path}: {source}")]
    ObjectStore {
        /// What was being done.
        action: &'static str,
        /// The object's URL.
        path: String,
        /// The cause.
        source: Box<datafusion::object_store::Error>,
    },
}

/// The crate's result type.
pub type Result<T, E = WriteError> = std::result::Result<T, E>;
