//! OpenLineage run events of dfpipe runs (spec 2-0-2), typed by `openlineage-client`.
//!
//! [`Jobs`] is what a pipeline's plan says of its views: their SQL, schema, datasets and
//! column lineage. [`Jobs::run`] turns it into the events of one run: the pipeline's run
//! (START, then COMPLETE or FAIL) and a child run per executed view (START, then COMPLETE,
//! FAIL or ABORT), each with a `parent` facet. [`Jobs::static_events`] gives the same facets
//! without a run. [`Target`] says where events go (`URL/api/v1/lineage` or `file:PATH`) and
//! [`Emission`] sends them in the background, in order, giving up at the first failure: lineage
//! never slows or fails a run, it only reports why it was not delivered.

mod events;
mod send;

pub use events::{DatasetName, Jobs, Run, Statistics, ViewEnd, ViewJob, dataset_of};
pub use send::{API_KEY_ENV, Delivery, Emission, Target};

/// The typed OpenLineage model the events are made of, for readers that parse them back.
pub use openlineage_client as model;

/// Errors of the OpenLineage output: a target that cannot be used, or an event not delivered.
#[derive(Debug, thiserror::Error)]
pub enum OpenLineageError {
    /// The target is neither an `http(s)://` URL nor `file:PATH`.
    #[error("`{target}` is not an OpenLineage target: {reason}")]
    Target {
        /// The text given.
        target: String,
        /// What is wrong and what to give instead.
        reason: String,
    },
    /// The HTTP endpoint could not be reached or refused an event.
    #[error("POST {url}: {reason}")]
    Http {
        /// The endpoint.
        url: String,
        /// Why the event was not accepted.
        reason: String,
    },
    /// The event file could not be appended to.
    #[error("cannot append to {}: {source}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An event could not be serialized (a bug).
    #[error("cannot serialize an OpenLineage event: {0}")]
    Json(#[from] serde_json::Error),
}
