//! Views as lazy DataFusion plans.
//!
//! A view is one SQL query file (`views/<name>.sql`) or a Rust [`ViewTemplate`]. SQL views
//! are parsed under a safe SQL policy: exactly one `SELECT`/`WITH` query, never DDL, DML,
//! `COPY`, `SET`, `EXPLAIN` or several statements. Parameters are bound as typed values,
//! never spliced into SQL text: scalars through `param_values`, lists as relations
//! ([`ListStrategy`]). A user's filter is parsed as an expression against the view's schema
//! ([`filter`]). A [`ViewRegistry`] holds a pipeline's views and registers each lazily, as a
//! [`LazyView`]; nothing here executes a plan. A lazy view that many plans of a run read
//! can be [shared](LazyView::share): computed once, by the first reader that executes.

mod fragment;
mod lazy;
mod message;
mod params;
mod registry;
mod shared;
mod sql;
mod template;

pub use fragment::{filter, parse_filter};
pub use lazy::{LazyView, plan_alone};
pub use message::user_message;
pub use params::{LIST_COLUMN, ListParam, ListStrategy, PARAM_TABLE, ParamType, ParamValue, register_param_table};
pub use registry::{DependencyMismatch, Registered, RegisteredView, ViewRegistry, ViewSource};
pub use shared::LazyViewExec;
pub use sql::{SqlView, register_lazy};
pub use template::{BoundParams, ParamSpec, ViewTemplate, build_template};

use std::fmt;
use std::path::{Path, PathBuf};

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
    /// The SQL does not parse or does not plan: met while the view is parsed or planned
    /// here, or later while its plan is optimized or physically planned (see
    /// [`SqlView::planning_error`]).
    #[error("view `{view}` ({}): {message}", At { file, line: *line, column: *column })]
    Invalid {
        /// The view.
        view: String,
        /// Its file.
        file: PathBuf,
        /// The line (from 1) of the error, where DataFusion or the parser gives it.
        line: Option<u64>,
        /// The column (from 1) of the error, where DataFusion or the parser gives it.
        column: Option<u64>,
        /// DataFusion's message as [`user_message`] gives it, without its location.
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
    /// A template failed to build its `DataFrame`.
    #[error("view `{view}` (template): {message}")]
    Template {
        /// The view.
        view: String,
        /// DataFusion's message.
        message: String,
    },
    /// A user's expression fragment does not parse or does not fit the view's schema.
    #[error("view `{view}`: filter `{fragment}`: {message}")]
    Fragment {
        /// The view.
        view: String,
        /// The fragment as the user wrote it.
        fragment: String,
        /// What is wrong.
        message: String,
    },
    /// Two views of one registry have the same name.
    #[error("view `{view}` is defined twice; view names are unique in a pipeline")]
    Duplicate {
        /// The view.
        view: String,
    },
    /// The views a template declares differ from the views its plan reads.
    #[error("{0}")]
    Dependencies(DependencyMismatch),
    /// Views read each other in a cycle. The one cycle error of dfpipe: planning order and
    /// the DAG from lineage both report it.
    #[error("views read each other in a cycle: {}. Each view reads the next; change one of them to break the cycle.", views.join(" -> "))]
    Cycle {
        /// The cycle in reading order, its first view again last: `a -> b -> a`, `a` reads `b`.
        views: Vec<String>,
    },
    /// The plan's lineage could not be derived.
    #[error("view `{view}`: lineage: {message}")]
    Lineage {
        /// The view.
        view: String,
        /// plan-walk's message.
        message: String,
    },
}

/// The crate's result type.
pub type Result<T, E = ViewError> = std::result::Result<T, E>;

/// `file:line:column`, or `file` alone when the location is unknown.
struct At<'a> {
    file: &'a Path,
    line: Option<u64>,
    column: Option<u64>,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{}:{line}:{column}", self.file.display()),
            (Some(line), None) => write!(f, "{}:{line}", self.file.display()),
            _ => write!(f, "{}", self.file.display()),
        }
    }
}
