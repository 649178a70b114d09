//! How results are shown: summary tables for people, one JSON document with `--json`.

use std::fmt::Write;

use dfpipe_engine::Kind;
use dfpipe_engine::{CheckReport, Diff, EngineError, LineageReport, PlanBundle, PlanReport, RunReport, ViewChange};
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
    } else if error.is_internal() {
        eprintln!("error (internal or environment failure): {error}");
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
    if let Some(cluster) = &report.cluster {
        let tasks: Vec<String> = cluster.tasks.iter().map(|(worker, n)| format!("{worker} {n}")).collect();
        say!("cluster tasks: {}", tasks.join(", "));
    }
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
    let stages: Vec<String> = report.views.iter().filter_map(|v| v.stages.map(|n| format!("{} {n}", v.name))).collect();
    if !stages.is_empty() {
        say!("\nstages on the cluster (1: runs on the coordinator): {}", stages.join(", "));
    }
    let s = &report.schedule;
    say!("\npredicted on {} workers: makespan {} ms, lower bound {} ms", s.workers, s.makespan_ms, s.lower_bound_ms);
    if !s.critical_path.is_empty() {
        say!("critical path: {}", s.critical_path.join(" -> "));
    }
    // Views run beside others share the cores; a view running alone has them all.
    let mut shares: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    for partitions in report.views.iter().filter_map(|v| v.partitions) {
        *shares.entry(partitions).or_default() += 1;
    }
    if !shares.is_empty() {
        let shares: Vec<String> = shares.iter().map(|(p, n)| format!("{p} for {n} view(s)")).collect();
        say!("partitions: {}", shares.join(", "));
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
    for d in &report.drift {
        let mark = if d.fails() { "FAIL" } else { "ok  " };
        let [added, removed, retyped] = [&d.added, &d.removed, &d.retyped]
            .map(|cols| cols.iter().map(|c| c.column.as_str()).collect::<Vec<_>>().join(", "));
        say!("{mark} {:<10} {:<12} added ({added}) removed ({removed}) retyped ({retyped})", d.relation, "columns");
        for message in &d.information_schema {
            say!("       information_schema {message}");
        }
    }
    say!("\n{}", if report.passed { "all contracts hold" } else { "some contracts are violated" });
}

/// `explain --format verbose`: the plan after each optimizer rule that changed it.
pub(crate) fn verbose(bundle: &PlanBundle) -> String {
    let mut text = format!("-- initial plan\n{}\n", bundle.logical.trim_end());
    for delta in &bundle.verbose {
        let _ = write!(text, "\n-- after {}\n{}\n", delta.rule, delta.plan.trim_end());
    }
    if bundle.physical_verbose.is_empty() {
        let _ = write!(text, "\n-- physical plan\n{}\n", bundle.physical.trim_end());
    }
    for delta in &bundle.physical_verbose {
        let _ = write!(text, "\n-- after physical rule {}\n{}\n", delta.rule, delta.plan.trim_end());
    }
    text
}

/// `explain --format analyze`: each operator with what its last execution measured.
pub(crate) fn analyze(bundle: &PlanBundle) -> String {
    let mut text = String::new();
    for m in &bundle.metrics {
        let mut figures = vec![format!("partitions={}", m.partitions)];
        if let Some(rows) = m.output_rows {
            figures.push(format!("output_rows={rows}"));
        }
        if let Some(ns) = m.elapsed_compute_ns {
            figures.push(format!("elapsed_compute={:.3}ms", ns as f64 / 1e6));
        }
        if let Some(bytes) = m.output_bytes {
            figures.push(format!("output_bytes={bytes}"));
        }
        if let Some(spills) = m.spill_count.filter(|s| *s > 0) {
            figures.push(format!("spills={spills} spilled_bytes={}", m.spilled_bytes.unwrap_or_default()));
        }
        figures.extend(m.other.iter().map(|(k, v)| format!("{k}={v}")));
        let _ = writeln!(text, "{}{}, metrics=[{}]", "  ".repeat(m.depth), m.operator, figures.join(", "));
    }
    text
}

pub(crate) fn diff(diff: &Diff, as_json: bool) {
    if as_json {
        return json(diff);
    }
    say!("diff of run {} -> run {}", diff.from, diff.to);
    let mut unchanged = 0;
    for v in &diff.views {
        if v.change == ViewChange::Unchanged {
            unchanged += 1;
            continue;
        }
        let category = v.category.map(|c| format!("{c:?}").to_lowercase()).unwrap_or_default();
        let how = if v.indirect { format!("{category} (indirect)") } else { category };
        say!("\n{} {:?}: {how}; changed: {}", v.name, v.change, v.ingredients.join(", "));
        for c in &v.schema.added {
            say!("  + column {} {}", c.name, c.data_type);
        }
        for c in &v.schema.removed {
            say!("  - column {} {}", c.name, c.data_type);
        }
        for r in &v.schema.retyped {
            say!("  ~ column {} {} -> {}", r.name, r.from.data_type, r.to.data_type);
        }
        for s in &v.settings {
            say!("  setting {}: {} -> {}", s.key, s.from.as_deref().unwrap_or("-"), s.to.as_deref().unwrap_or("-"));
        }
        for s in &v.write_options {
            let (from, to) = (s.from.as_deref().unwrap_or("-"), s.to.as_deref().unwrap_or("-"));
            say!("  writer option {}: {from} -> {to}", s.key);
        }
        for line in v.plan_diff.lines() {
            say!("  {line}");
        }
    }
    if let Some(environment) = diff.environment.as_ref().filter(|e| !e.is_empty()) {
        say!("\nenvironment (information_schema) changed: {}", environment.tables.join(", "));
        for s in &environment.settings {
            say!("  setting {}: {} -> {}", s.key, s.from.as_deref().unwrap_or("-"), s.to.as_deref().unwrap_or("-"));
        }
        for c in &environment.columns {
            let (from, to) = (c.from.as_deref().unwrap_or("-"), c.to.as_deref().unwrap_or("-"));
            say!("  column {}.{}: {from} -> {to}", c.relation, c.column);
        }
        for f in &environment.functions_added {
            say!("  + function {f}");
        }
        for f in &environment.functions_removed {
            say!("  - function {f}");
        }
    }
    say!("\n{unchanged} view(s) unchanged");
}
