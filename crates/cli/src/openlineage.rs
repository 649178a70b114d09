//! `dfpipe run --openlineage`: the run's OpenLineage events, sent as the run goes. The
//! pipeline's START and each view's START leave when they happen; each view's end and the
//! pipeline's end are built from the run's record once it is written. Nothing here changes
//! how the run ends: a failure to deliver is a warning.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dfpipe_engine::{EngineError, Event, Pipeline, Planned, RunReport, ViewStatus};
use dfpipe_openlineage::{Emission, Run, Target, ViewEnd};

/// How long the end of a run waits for its events to be delivered.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

/// The events of one run on their way to a target.
pub(crate) struct Events {
    target: Target,
    run: Run,
    emission: Emission,
    /// Each view that started: when, and when and how it finished.
    views: Mutex<BTreeMap<String, Started>>,
}

struct Started {
    at: DateTime<Utc>,
    finished: Option<(DateTime<Utc>, ViewStatus)>,
}

impl Events {
    /// Starts the pipeline's run: its START event leaves now. `None`, with a warning, when
    /// the events cannot be sent: the run goes on without them.
    pub(crate) fn start(target: Target, planned: &Planned) -> Option<Arc<Self>> {
        match Emission::start(target.clone()) {
            Ok(emission) => {
                let run = planned.openlineage().run();
                emission.emit(run.start(Utc::now()));
                Some(Arc::new(Self { target, run, emission, views: Mutex::new(BTreeMap::new()) }))
            }
            Err(error) => {
                eprintln!("warning: no OpenLineage events for this run ({target}): {error}");
                None
            }
        }
    }

    /// Follows the run's progress: a view's START leaves when it starts.
    pub(crate) fn on(&self, event: &Event) {
        let now = Utc::now();
        let mut views = self.views.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            Event::ViewStarted { view } => {
                views.insert(view.clone(), Started { at: now, finished: None });
                if let Some(event) = self.run.view_start(view, now) {
                    self.emission.emit(event);
                }
            }
            Event::ViewFinished { view, status } => {
                if let Some(started) = views.get_mut(view) {
                    started.finished = Some((now, *status));
                }
            }
            Event::Started { .. } => {}
        }
    }

    /// Ends the run's events from its record (or from its error), waits for them to be
    /// delivered, and warns on stderr if they were not.
    pub(crate) async fn finish(self: Arc<Self>, pipeline: &Pipeline, outcome: Result<&RunReport, &EngineError>) {
        let Ok(this) = Arc::try_unwrap(self) else {
            eprintln!("warning: OpenLineage events left unfinished: the run still holds them");
            return;
        };
        let now = Utc::now();
        let recorded = match outcome {
            Ok(report) => pipeline.openlineage_ends(&report.run_id).unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        let views = this.views.into_inner().unwrap_or_else(PoisonError::into_inner);
        for (view, started) in &views {
            let (at, status) = started.finished.unwrap_or((now, ViewStatus::Skipped));
            let end = recorded.get(view).cloned().unwrap_or(match status {
                ViewStatus::Succeeded => ViewEnd::Complete(None),
                ViewStatus::Failed => ViewEnd::Fail(reason(outcome, view)),
                ViewStatus::Skipped | ViewStatus::UpstreamFailed => ViewEnd::Abort,
            });
            if let Some(event) = this.run.view_end(view, at.max(started.at), &end) {
                this.emission.emit(event);
            }
        }
        let error = match outcome {
            Ok(report) => failures(report),
            Err(error) => Some(error.to_string()),
        };
        this.emission.emit(this.run.end(now, error.as_deref()));
        let delivery = this.emission.finish(DELIVERY_WAIT).await;
        if let Some(error) = delivery.error {
            eprintln!(
                "warning: OpenLineage events not delivered to {}: {error} ({} of {} events dropped); the run itself is unaffected",
                this.target,
                delivery.dropped,
                delivery.sent + delivery.dropped,
            );
        }
    }
}

/// Why `view` failed, as the run's report says.
fn reason(outcome: Result<&RunReport, &EngineError>, view: &str) -> String {
    let reported = outcome.ok().and_then(|r| r.views.iter().find(|v| v.name == view)).and_then(|v| v.reason.clone());
    reported.unwrap_or_else(|| "failed".to_owned())
}

/// The pipeline run's error: the views that failed, with why.
fn failures(report: &RunReport) -> Option<String> {
    let failed: Vec<String> = (report.views.iter())
        .filter(|v| v.status.is_failure())
        .map(|v| format!("view `{}` {}: {}", v.name, v.status, v.reason.as_deref().unwrap_or("failed")))
        .collect();
    match (failed.is_empty(), report.status) {
        (true, dfpipe_engine::RunStatus::Succeeded) => None,
        (true, _) => Some("the run stopped before it did all it was asked (cancelled)".to_owned()),
        (false, _) => Some(failed.join("; ")),
    }
}
