//! Stage "decide": which views run and why, and what each is expected to cost.

use std::collections::{BTreeSet, HashMap};

use dfpipe_artifacts::{Fingerprint, RunRecord, ViewRecord};
use dfpipe_scheduler::{Cost, CostModel, Metrics, TaskEvidence};

use crate::spec::Materialize;

/// Whether a run executes a view, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) will_run: bool,
    pub(crate) reason: String,
}

/// What is known of a view when deciding.
pub(crate) struct Facts<'a> {
    pub(crate) materialize: Materialize,
    pub(crate) fingerprint: &'a Fingerprint,
    /// Its record in the last run.
    pub(crate) last: Option<&'a ViewRecord>,
    /// Whether it is selected (`--select`; every view when nothing is selected).
    pub(crate) selected: bool,
    /// Whether its output exists.
    pub(crate) committed: bool,
}

/// Decides whether a run executes a view: a materialized view runs when `--full` says so,
/// when it never ran, when its output is missing, or when the fingerprint its output was
/// built from differs from its fingerprint now.
pub(crate) fn decide(facts: &Facts<'_>, full: bool) -> Decision {
    let (will_run, reason) = if facts.materialize == Materialize::Lazy {
        (false, "lazy view: planned inline by the views that read it")
    } else if !facts.selected {
        (false, "not selected")
    } else if full {
        (true, "--full")
    } else {
        match facts.last.and_then(|l| l.output_fingerprint.as_ref()) {
            None => (true, "no previous run"),
            Some(_) if !facts.committed => (true, "output missing"),
            Some(built) if built != facts.fingerprint => (true, "fingerprint changed"),
            Some(_) => (false, dfpipe_artifacts::UNCHANGED),
        }
    };
    Decision { will_run, reason: reason.to_owned() }
}

/// What the last run measured of a view: the metrics of the plan that executed (compute,
/// rows, bytes, partitions, repartitions) when it recorded them, else its wall time.
pub(crate) fn measured(last: &ViewRecord) -> Option<Metrics> {
    let metric = |name: &str| last.metrics.get(name).copied();
    if let Some(compute_us) = metric(ELAPSED_COMPUTE_US) {
        return Some(Metrics {
            elapsed_compute: std::time::Duration::from_micros(compute_us),
            output_rows: metric(ROWS).or(last.rows).unwrap_or_default(),
            output_bytes: metric(BYTES).unwrap_or_default(),
            partitions: metric(PARTITIONS).unwrap_or(1),
            repartitions: metric(REPARTITIONS).unwrap_or_default(),
        });
    }
    last.cost_ms.map(|ms| Metrics {
        elapsed_compute: std::time::Duration::from_millis(ms),
        output_rows: last.rows.unwrap_or_default(),
        partitions: 1,
        ..Metrics::default()
    })
}

/// The cost of each view through the scheduler's cost model, from the best evidence for
/// each: the metrics of the plan the last run executed, calibrated against the wall times
/// that run measured, else `estimated_rows` (from the plan's statistics), else the default.
pub(crate) fn costs(last: &[Option<&ViewRecord>], estimated_rows: &[Option<u64>]) -> Vec<Cost> {
    let evidence: Vec<TaskEvidence> = last
        .iter()
        .zip(estimated_rows)
        .map(|(last, rows)| match (last.and_then(measured), rows) {
            (Some(metrics), _) => TaskEvidence::Measured(metrics),
            (None, Some(rows)) => TaskEvidence::EstimatedRows(*rows),
            (None, None) => TaskEvidence::Unknown,
        })
        .collect();
    let model = CostModel::default();
    let mut costs = model.costs(&evidence);
    // The wall time each view took last is what its cost must predict.
    let wall: Vec<Option<u64>> = last.iter().map(|l| l.and_then(|l| l.cost_ms)).collect();
    model.calibrate(&mut costs, &wall);
    costs
}

/// The record of each view in `run`, by name.
pub(crate) fn last_records(run: Option<&RunRecord>) -> HashMap<&str, &ViewRecord> {
    run.map(|r| r.views.iter().map(|v| (v.name.as_str(), v)).collect()).unwrap_or_default()
}

/// The selected views, by name: every view when nothing is selected.
pub(crate) fn is_selected(selected: Option<&BTreeSet<String>>, view: &str) -> bool {
    selected.is_none_or(|s| s.contains(view))
}

/// Names of the per-view metrics a run records for the cost model.
pub(crate) const ELAPSED_COMPUTE_US: &str = "elapsed_compute_us";
pub(crate) const BYTES: &str = "bytes";
pub(crate) const ROWS: &str = "rows";
pub(crate) const PARTITIONS: &str = "partitions";
pub(crate) const REPARTITIONS: &str = "repartitions";

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use dfpipe_artifacts::{Fingerprint, ViewRecord};
    use dfpipe_scheduler::CostSource;

    use super::{Facts, costs, decide};
    use crate::spec::Materialize;

    fn facts<'a>(fingerprint: &'a Fingerprint, last: Option<&'a ViewRecord>, committed: bool) -> Facts<'a> {
        Facts { materialize: Materialize::Parquet, fingerprint, last, selected: true, committed }
    }

    #[test]
    fn decisions_say_why() {
        let now = Fingerprint::of_files(&[("a".to_owned(), 1, 1)]);
        let before = Fingerprint::of_files(&[("a".to_owned(), 2, 1)]);
        let built = |f: &Fingerprint| ViewRecord { output_fingerprint: Some(f.clone()), ..ViewRecord::default() };
        let (same, other) = (built(&now), built(&before));
        let reason = |facts: Facts<'_>, full| decide(&facts, full).reason;
        assert_eq!(reason(facts(&now, None, false), false), "no previous run");
        assert_eq!(reason(facts(&now, Some(&same), false), false), "output missing");
        assert_eq!(reason(facts(&now, Some(&other), true), false), "fingerprint changed");
        assert_eq!(reason(facts(&now, Some(&same), true), false), dfpipe_artifacts::UNCHANGED);
        assert_eq!(reason(facts(&now, Some(&same), true), true), "--full");
        let unselected = Facts { selected: false, ..facts(&now, None, false) };
        assert!(!decide(&unselected, true).will_run);
        let lazy = Facts { materialize: Materialize::Lazy, ..facts(&now, None, false) };
        assert!(!decide(&lazy, true).will_run);
    }

    fn record(compute_ms: u64, partitions: u64, wall_ms: u64) -> ViewRecord {
        ViewRecord {
            rows: Some(1000),
            cost_ms: Some(wall_ms),
            metrics: BTreeMap::from([
                ("elapsed_compute_us".to_owned(), compute_ms * 1000),
                ("partitions".to_owned(), partitions),
                ("bytes".to_owned(), 0),
            ]),
            ..ViewRecord::default()
        }
    }

    #[test]
    fn costs_come_from_the_executed_plan_in_wall_time_units_then_estimates() {
        // 400 ms of compute over 2 partitions against 100 ms over 1: a shape of 2 to 1, in the
        // units of the 1200 ms of wall time the two took together.
        let (heavy, light) = (record(400, 2, 900), record(100, 1, 300));
        let out = costs(&[Some(&heavy), Some(&light), None, None], &[None, None, Some(5000), None]);
        assert_eq!((out[0].value, out[0].source), (800, CostSource::Measured));
        assert_eq!((out[1].value, out[1].source), (400, CostSource::Measured));
        assert_eq!(out[2].source, CostSource::Estimated);
        assert_eq!(out[3].source, CostSource::Default);
        // A record from before metrics were kept costs its wall time.
        let wall = ViewRecord { cost_ms: Some(900), ..ViewRecord::default() };
        assert_eq!(costs(&[Some(&wall)], &[None])[0].value, 900);
    }
}
