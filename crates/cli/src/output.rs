//! How results are shown: summary tables for people, one JSON document with `--json`.

use dfpipe_engine::{CheckReport, EngineError, LineageReport, PlanReport, RunReport};
use serde::Serialize;

/// Prints `value` as one JSON document on stdout.
pub(crate) fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
    }
}

/// Reports an error: `{"error": {...}}` on stdout with `--json`, a message on stderr without.
pub(crate) fn error(error: &EngineError, as_json: bool) {
    if as_json {
        json(&serde_json::json!({"error": {"kind": error.kind(), "message": error.to_string()}}));
    } else {
        eprintln!("error: {error}");
    }
}

pub(crate) fn run(report: &RunReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    println!("{:<16} {:<16} {:>10} {:>9}  {:<9} reason", "view", "status", "rows", "ms", "cost");
    for v in &report.views {
        println!(
            "{:<16} {:<16} {:>10} {:>9}  {:<9} {}",
            v.name,
            v.status,
            v.rows.map(|r| r.to_string()).unwrap_or_default(),
            v.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
            v.cost_source,
            v.reason.as_deref().unwrap_or_default()
        );
    }
    let ran = report.views.iter().filter(|v| v.duration_ms.is_some()).count();
    let s = &report.schedule;
    println!(
        "\nrun {}: {}, {ran} of {} views executed on {} workers",
        report.run_id,
        report.status,
        report.views.len(),
        s.workers
    );
    if !s.critical_path.is_empty() {
        println!("critical path: {}", s.critical_path.join(" -> "));
    }
    println!("makespan {} ms, lower bound {} ms", s.makespan_ms, s.lower_bound_ms);
}

pub(crate) fn plan(report: &PlanReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    println!("{:<16} {:<32} {:<5} {:>8} {:<9} depends on / reason", "view", "fingerprint", "run", "cost ms", "cost");
    for v in &report.views {
        println!(
            "{:<16} {:<32} {:<5} {:>8} {:<9} [{}] {}",
            v.name,
            v.fingerprint,
            if v.will_run { "yes" } else { "no" },
            v.cost_ms,
            v.cost_source,
            v.depends_on.join(", "),
            v.reason
        );
    }
    let s = &report.schedule;
    println!(
        "\npredicted on {} workers: makespan {} ms, lower bound {} ms",
        s.workers, s.makespan_ms, s.lower_bound_ms
    );
    if !s.critical_path.is_empty() {
        println!("critical path: {}", s.critical_path.join(" -> "));
    }
}

pub(crate) fn lineage_text(report: &LineageReport) {
    for v in &report.views {
        println!("{}", v.name);
        for scan in &v.scans {
            println!("  reads {} ({})", scan.relation, scan.columns.join(", "));
            for filter in &scan.filters {
                println!("    filter {filter}");
            }
        }
        if !v.functions.is_empty() {
            println!("  calls {}", v.functions.join(", "));
        }
    }
}

pub(crate) fn lineage_dot(report: &LineageReport) {
    println!("digraph lineage {{\n  rankdir=LR;");
    for v in &report.views {
        println!("  {:?} [shape=box];", v.name);
        for dep in &v.depends_on {
            println!("  {dep:?} -> {:?};", v.name);
        }
    }
    println!("}}");
}

pub(crate) fn check(report: &CheckReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    for r in &report.results {
        let mark = if r.violations == 0 { "ok  " } else { "FAIL" };
        println!(
            "{mark} {:<10} {:<12} ({}) {} violations",
            r.relation,
            r.constraint,
            r.columns.join(", "),
            r.violations
        );
        for sample in &r.samples {
            println!("       {}", serde_json::to_string(sample).unwrap_or_default());
        }
    }
    println!("\n{}", if report.passed { "all contracts hold" } else { "some contracts are violated" });
}
