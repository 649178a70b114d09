//! Views as lazy DataFusion plans.
//!
//! A view is one SQL query file (`views/<name>.sql`) or a Rust template. SQL views are
//! parsed under a safe SQL policy: exactly one `SELECT`/`WITH` query, never DDL, DML,
//! `COPY`, `SET`, `EXPLAIN` or several statements. Parameters are bound as typed values,
//! never spliced into SQL text. Registration is lazy: nothing here executes a plan.

mod lazy;
mod sql;

pub use lazy::LazyView;
pub use sql::{SqlView, register_lazy};

use std::path::PathBuf;

/// Errors raised while loading, checking or planning a view.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The view's file could not be read.
    #[error("view `{view}`: cannot read {}: {source}", file.display())]
    Io {
        /// The view.
        view: String,
        /// Its file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The SQL holds something other than one query.
    #[error("view `{view}` ({}): {what} is not allowed; a view file holds exactly one SELECT or WITH query", file.display())]
    Refused {
        /// The view.
        view: String,
        /// Its file.
        file: PathBuf,
        /// What was refused, e.g. `CREATE TABLE`.
        what: String,
    },
    /// The SQL does not parse or does not plan.
    #[error("view `{view}` ({}): {message}", file.display())]
    Invalid {
        /// The view.
        view: String,
        /// Its file.
        file: PathBuf,
        /// DataFusion's message, which carries the line and column where it has them.
        message: String,
    },
    /// A parameter is missing, unused or of the wrong type.
    #[error("view `{view}`: {message}")]
    Parameter {
        /// The view.
        view: String,
        /// What is wrong.
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = ViewError> = std::result::Result<T, E>;
