//! `dfpipe report`: one self-contained HTML page of a pipeline, for a person to open.
//!
//! [`Report`] is the page's data, typed: the DAG of sources and views with each view's last
//! status, each view's columns and lineage (as declared and `--deep`), its tree explain, last
//! write, contract results and diff against the previous run, and the last run's timeline
//! beside the predicted schedule. [`render`] embeds it as one JSON document in a page whose
//! script and style are inline (the layered DAG layout is the vendored `@dagrejs/dagre`,
//! `vendor/dagre/`), so viewing it fetches nothing: its Content-Security-Policy forbids it.
//!
//! This crate renders what it is given: it reads no store, plans nothing and executes
//! nothing. The engine fills a [`Report`] from a plan and the store.

use dfpipe_artifacts::{Column, RunStatus, ViewDiff, ViewStatus};
use dfpipe_contract::CheckResult;
use dfpipe_plan_walk::Lineage;
use dfpipe_writer::WriteReport;
use serde::Serialize;

/// Everything the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The pipeline's name.
    pub pipeline: String,
    /// The last recorded run, if any.
    pub run: Option<RunSummary>,
    /// The sources the views read, in name order.
    pub sources: Vec<SourceNode>,
    /// Every view, in name order.
    pub views: Vec<ViewPage>,
    /// The last run's timeline and the predicted schedule.
    pub schedule: Schedules,
    /// The contract results of sources and views, as `dfpipe check` reports them.
    pub contracts: Vec<CheckResult>,
}

/// The last recorded run.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Its id in the store.
    pub run_id: String,
    /// `succeeded` or `failed`.
    pub status: RunStatus,
    /// The run it is compared with in each view's diff, if one is recorded before it.
    pub previous_run_id: Option<String>,
}

/// A source of the pipeline: a node of the DAG without lineage of its own.
#[derive(Debug, Clone, Serialize)]
pub struct SourceNode {
    /// Its name, as views read it.
    pub name: String,
    /// Where it is read from: a path or an object-store URL.
    pub location: String,
    /// Its format: `parquet`, `csv`, `json` or `arrow`.
    pub format: String,
}

/// One view and what the store knows of it.
#[derive(Debug, Clone, Serialize)]
pub struct ViewPage {
    /// The view.
    pub name: String,
    /// `sql` (a file of `views/`) or `template` (built from Rust).
    pub kind: String,
    /// `lazy` or `parquet`.
    pub materialize: String,
    /// Its fingerprint now.
    pub fingerprint: String,
    /// Whether `dfpipe run` would execute it now, and why.
    pub will_run: bool,
    /// Why it would run, or not.
    pub reason: String,
    /// What the last run did with it, and why; `None` before the first run.
    pub last: Option<LastStatus>,
    /// Its output columns, in order.
    pub columns: Vec<Column>,
    /// Its lineage at the level it is declared: views name views.
    pub lineage: Lineage,
    /// Its lineage resolved through views down to the sources (`lineage --deep`).
    pub deep: Lineage,
    /// The physical plan drawn as a tree (`explain --format tree`).
    pub tree: String,
    /// Its SQL: the file's query, or the template's plan unparsed.
    pub sql: Option<String>,
    /// Its last write, with the id of the run that wrote it.
    pub write: Option<LastWrite>,
    /// What changed between the previous run and the last one, if it changed.
    pub diff: Option<ViewDiff>,
}

/// What the last run did with a view.
#[derive(Debug, Clone, Serialize)]
pub struct LastStatus {
    /// `succeeded`, `skipped`, `failed` or `upstream_failed`.
    pub status: ViewStatus,
    /// Why, for anything but `succeeded`.
    pub reason: Option<String>,
    /// Wall time, for a view that ran.
    pub duration_ms: Option<u64>,
    /// Rows written, for a materialized view that ran.
    pub rows: Option<u64>,
}

/// The last write of a view's output.
#[derive(Debug, Clone, Serialize)]
pub struct LastWrite {
    /// The run that wrote it.
    pub run_id: String,
    /// The writer's report: files, rows, bytes, options and knobs.
    pub report: WriteReport,
}

/// The two timelines of the Gantt chart.
#[derive(Debug, Clone, Serialize)]
pub struct Schedules {
    /// The last run as it went, if a run executed views and recorded when.
    pub actual: Option<Timeline>,
    /// The schedule predicted for the same views, from the cost model.
    pub predicted: Timeline,
}

/// Views placed on worker slots over time.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// Worker slots.
    pub workers: usize,
    /// When the last view ends, in milliseconds.
    pub makespan_ms: u64,
    /// `max(critical path, total work / workers)` in milliseconds: no schedule beats it.
    pub lower_bound_ms: u64,
    /// The views of the critical path, first to last.
    pub critical_path: Vec<String>,
    /// One bar per view that ran (or would), in start order.
    pub bars: Vec<Bar>,
}

/// One view on a worker slot.
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    /// The view.
    pub view: String,
    /// The worker slot, from `0`.
    pub worker: usize,
    /// Start, in milliseconds from the start of the run.
    pub start_ms: u64,
    /// End, in milliseconds from the start of the run.
    pub end_ms: u64,
    /// How it ended, for a run that happened.
    pub status: Option<ViewStatus>,
}

/// The page's style, script and the vendored layout library, inlined by [`render`].
const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");
const DAGRE: &str = include_str!("../vendor/dagre/dagre.min.js");

/// The page's frame, which the script fills.
const BODY: &str = r#"<div id="errors"></div>
<main>
<section id="dag-section"><h2>Views and sources</h2>
<div class="toolbar"><input id="search" list="names" placeholder="find a view or source"><datalist id="names"></datalist><button id="fit" type="button">fit to width</button></div>
<div class="scroll" id="dag-scroll"><svg id="dag-svg" role="img" aria-label="the DAG of views and sources"></svg></div></section>
<section id="detail"></section>
<section id="gantt-section"><h2>Schedule</h2><div class="scroll"><svg id="gantt-svg" role="img" aria-label="the Gantt chart of the last run and the predicted schedule"></svg></div></section>
</main>
"#;

/// Nothing is fetched at view time: no script, style, font, image or request from anywhere.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

/// The page of `report`: one HTML document with everything inline. The report's data is
/// only in its JSON element: the markup around it is the same for every pipeline.
pub fn render(report: &Report) -> Result<String, serde_json::Error> {
    let data = embed(&serde_json::to_string(report)?);
    let mut page = String::with_capacity(DAGRE.len() + SCRIPT.len() + STYLE.len() + data.len() + 1024);
    for part in [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        &format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"),
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
        &format!("<title>dfpipe report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n"),
        BODY,
        &format!("<script type=\"application/json\" id=\"dfpipe-data\">{data}</script>\n"),
        "<script>\n/* @dagrejs/dagre 3.1.3 with @dagrejs/graphlib 4.0.6, MIT license, (c) 2012-2014 Chris Pettitt */\n",
        DAGRE,
        "\n</script>\n<script>\n",
        SCRIPT,
        "</script>\n</body>\n</html>\n",
    ] {
        page.push_str(part);
    }
    Ok(page)
}

/// JSON made safe inside a `<script>` element: every `<` (which JSON has only inside
/// strings) as `\u003c`, so no `</script>` or `<!--` in the data can end the element.
fn embed(json: &str) -> String {
    json.replace('<', "\\u003c")
}

#[cfg(test)]
mod tests;
