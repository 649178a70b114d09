//! Execution metrics per operator, read from the physical plan that actually ran: the
//! figures `EXPLAIN ANALYZE` shows, without running the query a second time.

use std::collections::BTreeMap;

use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, displayable};
use serde::{Deserialize, Serialize};

/// How much of what DataFusion measures is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalyzeLevel {
    /// Nothing.
    None,
    /// Output rows, elapsed compute, spills and bytes per operator.
    #[default]
    Summary,
    /// Every metric DataFusion records, by name, summed over partitions.
    Dev,
}

/// The measured figures of one operator of the executed plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorMetrics {
    /// The operator's one-line display, as in `EXPLAIN`.
    pub operator: String,
    /// Its depth in the plan: 0 for the root.
    pub depth: usize,
    /// Its output partitions.
    pub partitions: usize,
    /// Rows produced, over all partitions.
    pub output_rows: Option<u64>,
    /// CPU time spent, in nanoseconds, over all partitions.
    pub elapsed_compute_ns: Option<u64>,
    /// How many times it spilled to disk.
    pub spill_count: Option<u64>,
    /// Bytes spilled to disk.
    pub spilled_bytes: Option<u64>,
    /// Bytes produced, where the operator measures them.
    pub output_bytes: Option<u64>,
    /// Every other metric, by name, at the `dev` level.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, u64>,
}

/// The metrics of every operator of `plan`, root first, after it has executed.
pub fn collect(plan: &dyn ExecutionPlan, level: AnalyzeLevel) -> Vec<OperatorMetrics> {
    let mut out = Vec::new();
    if level != AnalyzeLevel::None {
        visit(plan, 0, level, &mut out);
    }
    out
}

fn visit(plan: &dyn ExecutionPlan, depth: usize, level: AnalyzeLevel, out: &mut Vec<OperatorMetrics>) {
    let display = displayable(plan).one_line().to_string();
    let mut entry = OperatorMetrics {
        operator: display.trim_end().to_owned(),
        depth,
        partitions: plan.output_partitioning().partition_count(),
        ..OperatorMetrics::default()
    };
    if let Some(metrics) = plan.metrics() {
        let metrics = metrics.aggregate_by_name();
        let as_u64 = |v: Option<usize>| v.map(|v| v as u64);
        entry.output_rows = as_u64(metrics.output_rows());
        entry.elapsed_compute_ns = as_u64(metrics.elapsed_compute());
        entry.spill_count = as_u64(metrics.spill_count());
        entry.spilled_bytes = as_u64(metrics.spilled_bytes());
        entry.output_bytes = as_u64(metrics.sum_by_name("output_bytes").map(|v| v.as_usize()));
        if level == AnalyzeLevel::Dev {
            const SUMMARY: [&str; 5] =
                ["output_rows", "elapsed_compute", "spill_count", "spilled_bytes", "output_bytes"];
            for metric in metrics.iter() {
                let name = metric.value().name();
                if !SUMMARY.contains(&name) {
                    entry.other.insert(name.to_owned(), metric.value().as_usize() as u64);
                }
            }
        }
    }
    out.push(entry);
    for child in plan.children() {
        visit(child.as_ref(), depth + 1, level, out);
    }
}
