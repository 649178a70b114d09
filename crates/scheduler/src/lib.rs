//! Task DAGs ordered by critical path.
//!
//! `dfpipe-scheduler` knows nothing about DataFusion: tasks are any payload `T`. It builds a
//! [`TaskGraph`], ranks tasks by their bottom level (the longest cost path from a task to the
//! end of the graph), simulates list scheduling on `P` workers to predict a [`Schedule`], and
//! runs async task closures with bounded concurrency through [`TaskGraph::execute`].

mod execute;
mod graph;
mod schedule;

pub use execute::{ExecutionReport, TaskOutcome};
pub use graph::{TaskGraph, TaskId};
pub use schedule::{Schedule, ScheduledTask};

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
    /// Fewer costs were given than there are tasks.
    #[error("{costs} costs given for {tasks} tasks; give one cost per task")]
    MissingCosts {
        /// Tasks in the graph.
        tasks: usize,
        /// Costs given.
        costs: usize,
    },
}
