//! A pipeline's views run across machines on `datafusion-distributed`.
//!
//! The coordinator plans as on one machine; [`Cluster::distribute`] makes its session cut
//! every physical plan into stages, run on [`serve`]d workers over Arrow Flight, with the head
//! stage (and so every write) on the coordinator. Nothing else changes: logical plans,
//! Substrait and fingerprints are those of a single machine.
//!
//! Every network wait has a timeout: [`CONNECT_TIMEOUT`] to open a connection,
//! [`PROBE_TIMEOUT`] for a worker to answer [`Cluster::probe`], [`METRICS_TIMEOUT`] for the
//! metrics of a finished plan, and HTTP/2 keep-alive pings every [`KEEPALIVE_INTERVAL`] that
//! fail a connection (and the streams on it) whose peer has not answered within
//! [`KEEPALIVE_TIMEOUT`].

mod channels;
mod coordinator;
mod stores;
mod worker;

use std::time::Duration;

pub use coordinator::{Cluster, display_distributed, stage_count, with_worker_metrics};
pub use worker::serve;

/// How long opening a connection to a worker may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a worker may take to answer the probe before a run.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the metrics of a finished plan's stages may take to come back from the workers.
pub const METRICS_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an open connection is pinged, both ways.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// How long a ping may go unanswered before the connection is dropped as dead.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The version workers report, and the coordinator requires: plans cross the network in
/// DataFusion's protobuf form, which only the same build reads back reliably.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What is wrong with a cluster or a worker.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A worker address is not `HOST:PORT`.
    #[error("worker address `{address}`: {message}")]
    Address {
        /// The address given.
        address: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A `[cluster.settings]` key or value is refused.
    #[error("cluster setting `{key}`: {message}")]
    Setting {
        /// The key.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A worker did not answer, or is of another version.
    #[error("worker {worker}: {message}")]
    Unreachable {
        /// The worker, `HOST:PORT`.
        worker: String,
        /// What happened and what to do.
        message: String,
    },
    /// A worker cannot listen or serve.
    #[error("worker on {listen}: {message}")]
    Serve {
        /// The address it was to listen on.
        listen: String,
        /// What went wrong.
        message: String,
    },
}
