//! OpenLineage: what each view's plan says for its events (`dfpipe-openlineage`'s [`Jobs`]),
//! and how each view of a recorded run ended. The command line sends the events.

use std::collections::BTreeMap;
use std::path::Path;

use dfpipe_artifacts::{Store, ViewStatus, WriteRecord};
use dfpipe_openlineage::{Jobs, Statistics, ViewEnd, ViewJob, dataset_of};

use crate::Result;
use crate::pipeline::Pipeline;
use crate::planned::Planned;
use crate::sources::source_location;

impl Planned {
    /// What OpenLineage events say of the views, from their plans: SQL, schema, lineage, and
    /// where their sources and outputs live. The namespace is `[openlineage] namespace`, else
    /// the pipeline's name.
    pub fn openlineage(&self) -> Jobs {
        // The store is `<pipeline>/.dfpipe`.
        let dir = self.store.root().parent().unwrap_or(Path::new("."));
        let mut datasets = BTreeMap::new();
        for (name, source) in &self.spec.sources {
            datasets.insert(name.clone(), dataset_of(&source_location(dir, &source.path)));
        }
        let mut views = Vec::with_capacity(self.views.len());
        for view in &self.views {
            if view.write.is_some() {
                datasets.insert(view.name.clone(), dataset_of(&self.outputs.target(&view.name)));
            }
            let file = dir.join("views").join(format!("{}.sql", view.name));
            let unparsed = || view.bundle.sql.as_ref().and_then(|u| u.sql.clone()).unwrap_or_default();
            views.push(ViewJob {
                name: view.name.clone(),
                sql: std::fs::read_to_string(file).unwrap_or_else(|_| unparsed()),
                schema: view.bundle.schema.iter().map(|c| (c.name.clone(), c.data_type.clone())).collect(),
                lineage: view.bundle.lineage.clone(),
                last_write: None,
            });
        }
        let namespace = self.spec.openlineage.as_ref().and_then(|o| o.namespace.clone());
        let pipeline = if self.spec.pipeline.name.is_empty() { "dfpipe" } else { &self.spec.pipeline.name };
        Jobs {
            namespace: namespace.unwrap_or_else(|| pipeline.to_owned()),
            pipeline: pipeline.to_owned(),
            datasets,
            views,
        }
    }

    /// [`Planned::openlineage`] with the figures of each view's last recorded write, read in
    /// one pass over the runs, newest first.
    pub fn openlineage_with_last_writes(&self) -> Result<Jobs> {
        let mut jobs = self.openlineage();
        let mut missing: Vec<&mut ViewJob> = jobs
            .views
            .iter_mut()
            .filter(|v| self.views.iter().any(|p| p.name == v.name && p.write.is_some()))
            .collect();
        for id in self.store.run_ids()?.iter().rev() {
            if missing.is_empty() {
                break;
            }
            let run = self.store.run(id)?;
            missing.retain_mut(|view| {
                let write = run.views.iter().find(|r| r.name == view.name).and_then(|r| r.write.as_ref());
                view.last_write = write.map(statistics);
                view.last_write.is_none()
            });
        }
        Ok(jobs)
    }
}

impl Pipeline {
    /// How each view of run `run_id` ended, as its record says: committed (with its write's
    /// figures), failed (with the reason), or skipped, which for a view that had started
    /// means the run was cancelled under it. Views that failed upstream are left out.
    pub fn openlineage_ends(&self, run_id: &str) -> Result<BTreeMap<String, ViewEnd>> {
        let run = Store::open(self.dir().join(".dfpipe"))?.run(run_id)?;
        Ok((run.views.into_iter())
            .filter_map(|view| {
                let end = match view.status {
                    ViewStatus::Succeeded => ViewEnd::Complete(view.write.as_ref().map(statistics)),
                    ViewStatus::Failed => ViewEnd::Fail(view.reason.unwrap_or_default()),
                    ViewStatus::Skipped => ViewEnd::Abort,
                    ViewStatus::UpstreamFailed => return None,
                };
                Some((view.name, end))
            })
            .collect())
    }
}

fn statistics(write: &WriteRecord) -> Statistics {
    Statistics { rows: write.rows, bytes: write.bytes, files: write.files }
}
