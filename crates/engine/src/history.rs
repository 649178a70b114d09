//! What the artifact store remembers of earlier runs: diffs between two runs, and the
//! bundles (with their execution metrics) of the plans that ran.

use dfpipe_artifacts::{Diff, PlanBundle, Store, diff_runs};

use crate::pipeline::{Pipeline, Planned};
use crate::{EngineError, Result};

impl Pipeline {
    /// What changed from run `from` to run `to`. `to` defaults to the latest run, and `from`
    /// to the run before `to`.
    pub fn diff(&self, from: Option<&str>, to: Option<&str>) -> Result<Diff> {
        let store = Store::open(self.dir().join(".dfpipe"))?;
        let ids = store.run_ids()?;
        let unknown = |id: &str| EngineError::Spec {
            file: store.root().join("runs"),
            message: format!("no run `{id}`; the recorded runs are: {}", ids.join(", ")),
        };
        let to = match to {
            Some(id) => ids.iter().find(|r| *r == id).ok_or_else(|| unknown(id))?,
            None => ids.last().ok_or_else(|| too_few(&store, &ids))?,
        };
        let from = if let Some(id) = from {
            ids.iter().find(|r| *r == id).ok_or_else(|| unknown(id))?
        } else {
            let at = ids.iter().position(|r| r == to).unwrap_or_default();
            ids[..at].last().ok_or_else(|| too_few(&store, &ids))?
        };
        Ok(diff_runs(&store, &store.run(from)?, &store.run(to)?)?)
    }
}

fn too_few(store: &Store, ids: &[String]) -> EngineError {
    EngineError::Spec {
        file: store.root().join("runs"),
        message: format!(
            "{} run(s) recorded; a diff needs two. Run the pipeline (`dfpipe run`), change it, and run it again",
            ids.len()
        ),
    }
}

impl Planned {
    /// The stored bundle of `view`'s current plan: the one captured when that plan last ran,
    /// with the metrics of that execution. `None` if this plan never ran.
    pub fn executed_bundle(&self, view: &str) -> Result<Option<PlanBundle>> {
        let Some(planned) = self.views.iter().find(|v| v.name == view) else { return Ok(None) };
        Ok(self.store.bundle(&planned.fingerprint)?.filter(|b| !b.metrics.is_empty()))
    }
}
