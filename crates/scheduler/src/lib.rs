//! Task DAGs ordered by critical path.
//!
//! `dfpipe-scheduler` knows nothing about DataFusion: tasks are any payload `T`. It builds a
//! [`TaskGraph`], ranks tasks by their bottom level (the longest cost path from a task to the
//! end of the graph), simulates list scheduling on `P` workers to predict a [`Schedule`], and
//! runs async task closures with bounded concurrency through [`TaskGraph::execute`].
//!
//! - [`CostModel`] turns what earlier runs measured into a [`Cost`] per task, and says where
//!   each cost came from ([`CostSource`]).
//! - [`TaskGraph::schedule_with`] simulates other [`Priority`] rules (dbt's depth order, FIFO
//!   ready order) with the same simulator, to compare against the critical path.
//! - [`TaskGraph::execute_with`] adds dynamic re-ranking and cancellation ([`CancelToken`])
//!   through [`ExecuteOptions`].

mod cancel;
mod cost;
mod execute;
mod graph;
mod schedule;

pub use cancel::{CancelToken, Cancelled};
pub use cost::{Cost, CostModel, CostSource, Metrics, TaskEvidence};
pub use execute::{ExecuteOptions, ExecutionReport, TaskOutcome, TaskTiming};
pub use graph::{Selector, TaskGraph, TaskId};
pub use schedule::{Priority, Schedule, ScheduledTask};

/// Errors raised while building or ordering a task graph.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchedulerError {
    /// The dependencies form a cycle. The names are listed in dependency order, and the first
    /// name is repeated at the end.
    #[error("dependency cycle: {}. Remove one of these references to break it.", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A dependency named a task that is not in the graph.
    #[error("unknown task id {0}")]
    UnknownTask(usize),
    /// A `--select` term named no task.
    #[error("no task is named `{0}`; check the spelling of the selected name")]
    UnknownName(String),
    /// A `--select` term is not of the form `name`, `+name`, `name+` or `+name+`.
    #[error(
        "`{0}` is not a selector: write `name`, `+name` (with its ancestors), `name+` (with its descendants) or `+name+` (both)"
    )]
    InvalidSelector(String),
    /// Fewer costs were given than there are tasks.
    #[error("{costs} costs given for {tasks} tasks; give one cost per task")]
    MissingCosts {
        /// Tasks in the graph.
        tasks: usize,
        /// Costs given.
        costs: usize,
    },
}
