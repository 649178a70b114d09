//! How results are shown: summary tables for people, one JSON document with `--json`.

use dfpipe_engine::Kind;
use dfpipe_engine::{CheckReport, EngineError, LineageReport, PlanReport, RunReport};
use serde::Serialize;

/// Prints a line on stdout. A closed pipe (`dfpipe lineage | head`) is not an error.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
pub(crate) use say;

/// Prints `value` as one JSON document on stdout.
pub(crate) fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => say!("{text}"),
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
    say!("{:<16} {:<16} {:>10} {:>9}  {:<9} reason", "view", "status", "rows", "ms", "cost");
    for v in &report.views {
        say!(
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
    say!(
        "\nrun {}: {}, {ran} of {} views executed on {} workers",
        report.run_id,
        report.status,
        report.views.len(),
        s.workers
    );
    if !s.critical_path.is_empty() {
        say!("critical path: {}", s.critical_path.join(" -> "));
    }
    say!("makespan {} ms, lower bound {} ms", s.makespan_ms, s.lower_bound_ms);
}

pub(crate) fn plan(report: &PlanReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    say!("{:<16} {:<32} {:<5} {:>8} {:<9} depends on / reason", "view", "fingerprint", "run", "cost ms", "cost");
    for v in &report.views {
        say!(
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
    say!("\npredicted on {} workers: makespan {} ms, lower bound {} ms", s.workers, s.makespan_ms, s.lower_bound_ms);
    if !s.critical_path.is_empty() {
        say!("critical path: {}", s.critical_path.join(" -> "));
    }
}

pub(crate) fn lineage_text(report: &LineageReport) {
    for v in &report.views {
        let l = &v.lineage;
        say!("{}", v.name);
        for scan in &l.scans {
            say!("  reads {} ({})", scan.relation, scan.columns.join(", "));
        }
        for column in &l.columns {
            let sources: Vec<String> = column
                .sources
                .iter()
                .map(|s| match s.kind {
                    Kind::Copy => format!("{}.{}", s.relation, s.column),
                    Kind::Transform => format!("f({}.{})", s.relation, s.column),
                })
                .collect();
            say!(
                "  {} <- {}",
                column.name,
                if sources.is_empty() { "constant".to_owned() } else { sources.join(", ") }
            );
            for reason in &column.unresolved {
                say!("    unresolved: {reason}");
            }
        }
        if !l.inspected.is_empty() {
            let inspected: Vec<String> = l
                .inspected
                .iter()
                .map(|i| format!("{}.{} ({:?})", i.relation, i.column, i.role).to_lowercase())
                .collect();
            say!("  inspects {}", inspected.join(", "));
        }
        if !l.functions.is_empty() {
            say!("  calls {}", l.functions.join(", "));
        }
    }
}

pub(crate) fn lineage_dot(report: &LineageReport) {
    say!("digraph lineage {{\n  rankdir=LR;");
    for v in &report.views {
        say!("  {:?} [shape=box];", v.name);
        for dep in &v.lineage.depends_on {
            say!("  {dep:?} -> {:?};", v.name);
        }
    }
    say!("}}");
}

pub(crate) fn check(report: &CheckReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    for r in &report.results {
        let mark = if r.violations == 0 { "ok  " } else { "FAIL" };
        say!("{mark} {:<10} {:<12} ({}) {} violations", r.relation, r.constraint, r.columns.join(", "), r.violations);
        for sample in &r.samples {
            say!("       {}", serde_json::to_string(sample).unwrap_or_default());
        }
    }
    say!("\n{}", if report.passed { "all contracts hold" } else { "some contracts are violated" });
}
