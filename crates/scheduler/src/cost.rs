//! The cost model: what earlier runs measured, turned into one cost per task.
//!
//! Costs are milliseconds of wall time on one worker. Each task's cost comes from the best
//! evidence there is, and says which:
//!
//! | source | evidence | cost |
//! |---|---|---|
//! | `measured` | [`Metrics`] of an earlier run | `compute / partitions + bytes / write rate + repartitions × exchange` |
//! | `estimated` | an estimated output row count, for example from plan statistics | `rows / rows per ms` |
//! | `default` | nothing | [`CostModel::default_cost`] |
//!
//! The rows-per-millisecond rate for estimates is calibrated on the measured tasks of the same
//! batch (their output rows over their costs) when any of them reported rows, so estimates
//! are in the same units as the measurements beside them. Every cost is at least 1, so no task
//! looks free to the scheduler.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a task's cost came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CostSource {
    /// From the metrics of an earlier run of the task.
    Measured,
    /// From an estimate made before the task ever ran, such as a plan's row count.
    Estimated,
    /// Nothing was known: [`CostModel::default_cost`].
    Default,
}

impl CostSource {
    /// The lowercase name, as in JSON documents.
    pub fn name(self) -> &'static str {
        match self {
            Self::Measured => "measured",
            Self::Estimated => "estimated",
            Self::Default => "default",
        }
    }
}

impl std::fmt::Display for CostSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// A task's cost in milliseconds, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Milliseconds of wall time on one worker; at least 1.
    pub value: u64,
    /// The evidence the value rests on.
    pub source: CostSource,
}

/// What one earlier run of a task measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Compute time summed over the task's partitions (DataFusion's `elapsed_compute`). When
    /// only a wall time is known, give it here with `partitions` at 1.
    pub elapsed_compute: Duration,
    /// Rows the task produced.
    pub output_rows: u64,
    /// Bytes the task wrote.
    pub output_bytes: u64,
    /// The partitions its compute ran on in parallel; 0 counts as 1.
    pub partitions: u64,
    /// Repartitions (exchanges) in its plan.
    pub repartitions: u64,
}

/// What is known of one task when costs are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskEvidence {
    /// It ran before, and this is what that run measured.
    Measured(Metrics),
    /// It never ran, but is expected to produce about this many rows.
    EstimatedRows(u64),
    /// Nothing is known.
    Unknown,
}

/// Turns [`TaskEvidence`] into [`Cost`]s. The fields are the model's few constants; the
/// [`Default`] values suit a laptop writing parquet to a local disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostModel {
    /// The cost of a task nothing is known about, in milliseconds. Default: 1000.
    pub default_cost: u64,
    /// Output bytes written per millisecond. Default: 200,000 (200 MB/s).
    pub write_bytes_per_ms: u64,
    /// Milliseconds each repartition adds beyond its operators' compute. Default: 2.
    pub repartition_ms: u64,
    /// Rows per millisecond for estimates, when no measured task of the batch reported rows
    /// to calibrate on. Default: 1,000 (a million rows a second).
    pub rows_per_ms: u64,
}

impl Default for CostModel {
    fn default() -> Self {
        Self { default_cost: 1000, write_bytes_per_ms: 200_000, repartition_ms: 2, rows_per_ms: 1000 }
    }
}

impl CostModel {
    /// The cost of a task that ran before: its compute divided over its partitions, plus the
    /// time to write its output, plus a fixed price per repartition.
    pub fn measured(&self, metrics: &Metrics) -> Cost {
        let compute_us = metrics.elapsed_compute.as_micros().min(u128::from(u64::MAX)) as u64;
        let parallel_us = compute_us.div_ceil(metrics.partitions.max(1));
        let write_us = metrics.output_bytes.saturating_mul(1000) / self.write_bytes_per_ms.max(1);
        let exchange_us = metrics.repartitions.saturating_mul(self.repartition_ms).saturating_mul(1000);
        let total_us = parallel_us.saturating_add(write_us).saturating_add(exchange_us);
        Cost { value: total_us.div_ceil(1000).max(1), source: CostSource::Measured }
    }

    /// The cost of a task that never ran but should produce about `rows` rows, at
    /// `rows_per_ms` rows a millisecond.
    pub fn estimated(&self, rows: u64, rows_per_ms: f64) -> Cost {
        let value = (rows as f64 / rows_per_ms.max(f64::MIN_POSITIVE)).ceil();
        // `as` saturates: an absurd estimate becomes u64::MAX, not a wrap.
        Cost { value: (value as u64).max(1), source: CostSource::Estimated }
    }

    /// The cost of a task nothing is known about.
    pub fn default_cost(&self) -> Cost {
        Cost { value: self.default_cost.max(1), source: CostSource::Default }
    }

    /// The rows per millisecond that estimates use for this batch: the measured tasks' output
    /// rows over their costs, or [`CostModel::rows_per_ms`] when none reported rows.
    pub fn calibrated_rows_per_ms(&self, evidence: &[TaskEvidence]) -> f64 {
        let (rows, ms) = evidence
            .iter()
            .filter_map(|e| match e {
                TaskEvidence::Measured(m) if m.output_rows > 0 => Some((m.output_rows, self.measured(m).value)),
                _ => None,
            })
            .fold((0u64, 0u64), |(r, c), (rows, ms)| (r.saturating_add(rows), c.saturating_add(ms)));
        if rows == 0 { self.rows_per_ms.max(1) as f64 } else { rows as f64 / ms as f64 }
    }

    /// One cost per task, from the best evidence for each, in the order given. Use
    /// [`Cost::values`] for the plain integers [`crate::TaskGraph::schedule`] takes.
    pub fn costs(&self, evidence: &[TaskEvidence]) -> Vec<Cost> {
        let rows_per_ms = self.calibrated_rows_per_ms(evidence);
        evidence
            .iter()
            .map(|e| match e {
                TaskEvidence::Measured(metrics) => self.measured(metrics),
                TaskEvidence::EstimatedRows(rows) => self.estimated(*rows, rows_per_ms),
                TaskEvidence::Unknown => self.default_cost(),
            })
            .collect()
    }
}

impl CostModel {
    /// Scales the measured costs so that, together, they equal the wall times the same tasks
    /// took (`wall_ms[i]`, where known): the model keeps the shape its metrics give (which task
    /// is heavier than which), in the units of what a run really lasts. One factor for the
    /// whole batch, applied to the estimates too (they are priced in the measured costs'
    /// units); default costs are untouched.
    pub fn calibrate(&self, costs: &mut [Cost], wall_ms: &[Option<u64>]) {
        let (model, wall) = (costs.iter().zip(wall_ms))
            .filter_map(|(cost, wall)| Some((cost.value, (*wall)?)).filter(|_| cost.source == CostSource::Measured))
            .fold((0u64, 0u64), |(m, w), (cost, wall)| (m.saturating_add(cost), w.saturating_add(wall)));
        if model == 0 || wall == 0 {
            return;
        }
        let scale = wall as f64 / model as f64;
        for cost in costs.iter_mut().filter(|c| c.source != CostSource::Default) {
            cost.value = ((cost.value as f64 * scale).round() as u64).max(1);
        }
    }
}

impl Cost {
    /// The values of `costs`, in order: what [`crate::TaskGraph::schedule`] and
    /// [`crate::TaskGraph::execute`] take.
    pub fn values(costs: &[Cost]) -> Vec<u64> {
        costs.iter().map(|c| c.value).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(compute_ms: u64, rows: u64, bytes: u64, partitions: u64, repartitions: u64) -> Metrics {
        Metrics {
            elapsed_compute: Duration::from_millis(compute_ms),
            output_rows: rows,
            output_bytes: bytes,
            partitions,
            repartitions,
        }
    }

    #[test]
    fn calibration_keeps_the_shape_in_wall_time_units() {
        let model = CostModel::default();
        let measured = |value| Cost { value, source: CostSource::Measured };
        let estimated = model.estimated(70, 1.0);
        let mut costs = vec![measured(100), measured(300), model.default_cost(), measured(50), estimated];
        // The first two ran for 800 ms in all; the last two have no wall time but are scaled too.
        model.calibrate(&mut costs, &[Some(200), Some(600), Some(5), None, None]);
        assert_eq!(Cost::values(&costs), [200, 600, 1000, 100, 140]);
        // Nothing measured with a wall time: nothing changes.
        let mut costs = vec![measured(100)];
        model.calibrate(&mut costs, &[None]);
        assert_eq!(Cost::values(&costs), [100]);
    }

    #[test]
    fn measured_costs_divide_compute_and_add_writes_and_exchanges() {
        let model = CostModel::default();
        let check = |m: Metrics, expected: u64| {
            assert_eq!(model.measured(&m), Cost { value: expected, source: CostSource::Measured }, "{m:?}");
        };
        check(metrics(800, 0, 0, 1, 0), 800);
        check(metrics(800, 0, 0, 0, 0), 800); // zero partitions count as one
        check(metrics(800, 0, 0, 4, 0), 200);
        check(metrics(800, 0, 20_000_000, 4, 0), 300); // 20 MB at 200 MB/s is 100 ms
        check(metrics(800, 0, 0, 4, 3), 206);
        check(metrics(0, 0, 0, 1, 0), 1); // never free
        check(Metrics { elapsed_compute: Duration::from_micros(1500), ..metrics(0, 0, 0, 1, 0) }, 2);
    }

    #[test]
    fn each_cost_records_its_source() {
        let model = CostModel::default();
        let costs = model.costs(&[
            TaskEvidence::Measured(metrics(100, 50_000, 0, 1, 0)),
            TaskEvidence::EstimatedRows(1_000_000),
            TaskEvidence::Unknown,
        ]);
        // The measured task ran 500 rows a millisecond, so a million rows are 2000 ms.
        assert_eq!(
            costs,
            [
                Cost { value: 100, source: CostSource::Measured },
                Cost { value: 2000, source: CostSource::Estimated },
                Cost { value: 1000, source: CostSource::Default },
            ]
        );
        assert_eq!(Cost::values(&costs), [100, 2000, 1000]);
    }

    #[test]
    fn estimates_fall_back_to_the_configured_rate() {
        let model = CostModel { rows_per_ms: 10, ..CostModel::default() };
        let costs = model.costs(&[TaskEvidence::EstimatedRows(1234), TaskEvidence::EstimatedRows(0)]);
        assert_eq!(Cost::values(&costs), [124, 1]);
        assert!(costs.iter().all(|c| c.source == CostSource::Estimated));
    }

    #[test]
    fn sources_serialize_in_lowercase() {
        let json = |s: CostSource| serde_json::to_string(&s).unwrap();
        assert_eq!(json(CostSource::Measured), r#""measured""#);
        assert_eq!(json(CostSource::Estimated), r#""estimated""#);
        assert_eq!(json(CostSource::Default), r#""default""#);
        let back: Cost = serde_json::from_str(r#"{"value":7,"source":"estimated"}"#).unwrap();
        assert_eq!(back, Cost { value: 7, source: CostSource::Estimated });
    }
}
