//! What the artifact store remembers of earlier runs: diffs between two recorded runs.

use dfpipe_artifacts::{Diff, Store, diff_runs};

use crate::pipeline::Pipeline;
use crate::{EngineError, Result};

impl Pipeline {
    /// What changed from run `from` to run `to`. `to` defaults to the latest run, and `from`
    /// to the run before `to`.
    pub fn diff(&self, from: Option<&str>, to: Option<&str>) -> Result<Diff> {
        let store = Store::open(self.dir().join(".dfpipe"))?;
        let ids = store.run_ids()?;
        let unknown = |flag: &str, id: &str| EngineError::Usage {
            flag: flag.to_owned(),
            message: format!("no run `{id}`; the recorded runs are: {}", ids.join(", ")),
        };
        let to = match to {
            Some(id) => ids.iter().find(|r| *r == id).ok_or_else(|| unknown("--to", id))?,
            None => ids.last().ok_or_else(|| too_few(&ids))?,
        };
        let from = if let Some(id) = from {
            ids.iter().find(|r| *r == id).ok_or_else(|| unknown("--from", id))?
        } else {
            let at = ids.iter().position(|r| r == to).unwrap_or_default();
            ids[..at].last().ok_or_else(|| too_few(&ids))?
        };
        Ok(diff_runs(&store, &store.run(from)?, &store.run(to)?)?)
    }
}

fn too_few(ids: &[String]) -> EngineError {
    EngineError::Usage {
        flag: "dfpipe diff".to_owned(),
        message: format!(
            "{} run(s) recorded; a diff needs two. Run the pipeline (`dfpipe run`), change it, and run it again",
            ids.len()
        ),
    }
}
