//! `dfpipe report` in a real browser: Debian's Chromium, headless, opens the page of a demo
//! run and of a pipeline with a template and a failing view, from `file://`. The page must
//! load with no console message at all (errors, and fetches refused by its policy, are
//! console messages), draw every view in its DAG, and draw its Gantt chart; a screenshot of
//! each is kept under `target/report/` (a CI artefact).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::prelude::{DataFrame, SessionContext, col, lit};
use dfpipe_engine::{BoundParams, ParamSpec, Pipeline, RunOptions, ViewTemplate};
use dfpipe_tests::Demo;

/// Where Debian's `chromium` package installs the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one page may take to load before the browser is stopped.
const LOAD_TIMEOUT: Duration = Duration::from_mins(2);

/// What the browser saw of a page.
struct Loaded {
    /// The DOM after the page's scripts ran.
    dom: String,
    /// Every console message, as Chromium logs them (`...:CONSOLE:<line>] "message", source: ...`).
    console: Vec<String>,
}

/// Runs headless Chromium on `page` (and `fragment`, its address's `#...`) with `args`, in a
/// fresh profile; returns its stdout and stderr.
fn chromium(page: &Path, fragment: &str, args: &[&str]) -> (String, String) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "the report's browser tests need Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` \
         (.ci/run installs it when it is missing)"
    );
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}{fragment}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let (stdout, stderr) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > LOAD_TIMEOUT {
            let _ = child.kill();
            panic!("chromium did not finish with {} within {LOAD_TIMEOUT:?}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (stdout.join().unwrap(), stderr.join().unwrap())
}

/// Loads `page` and returns its DOM and console.
fn load(page: &Path) -> Loaded {
    load_at(page, "")
}

/// Loads `page` at `fragment` (`#view=q06&tab=diff`) and returns its DOM and console.
fn load_at(page: &Path, fragment: &str) -> Loaded {
    let (dom, log) = chromium(page, fragment, &["--dump-dom"]);
    assert!(dom.contains("</html>"), "chromium printed no DOM for {}; its log ends: {}", page.display(), tail(&log));
    let console = log.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_owned).collect();
    Loaded { dom, console }
}

/// Takes a screenshot of `page` into `target/report/<name>.png` and returns its path.
fn screenshot(page: &Path, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
    let dir = target.join("report");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&png);
    let (_, log) = chromium(page, "", &[&format!("--screenshot={}", png.display()), "--window-size=1400,1100"]);
    let bytes =
        std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {} ({e}): {}", png.display(), tail(&log)));
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{} is not a screenshot", png.display());
    png
}

fn tail(log: &str) -> String {
    log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// The JSON document a page embeds, parsed back.
fn embedded_data(page: &str) -> serde_json::Value {
    let open = "<script type=\"application/json\" id=\"dfpipe-data\">";
    let start = page.find(open).expect("the data element") + open.len();
    serde_json::from_str(&page[start..start + page[start..].find("</script>").unwrap()]).unwrap()
}

/// The text of every `<text>` element inside the SVG element with `id`.
fn svg_texts(dom: &str, id: &str) -> Vec<String> {
    let start = dom.find(&format!("<svg id=\"{id}\"")).unwrap_or_else(|| panic!("no svg#{id} in the DOM"));
    let svg = &dom[start..start + dom[start..].find("</svg>").expect("the svg's end")];
    svg.split("<text").skip(1).filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].to_owned())).collect()
}

/// Checks a loaded report: no console message, rendered whole, every view and source a node
/// of the DAG, and one Gantt bar per view that ran and per view predicted.
fn check_page(page: &Path, views: &[&str], sources: &[&str], ran: usize) -> Loaded {
    let loaded = load(page);
    assert!(loaded.console.is_empty(), "console messages: {:#?}", loaded.console);
    assert!(loaded.dom.contains("data-rendered=\"ok\""), "the page did not finish drawing");
    assert!(loaded.dom.contains("<div id=\"errors\"></div>"), "the page reported an error");
    let nodes = svg_texts(&loaded.dom, "dag-svg");
    for name in views.iter().chain(sources) {
        assert!(nodes.iter().any(|n| n == name), "`{name}` is not a node of the DAG: {nodes:?}");
    }
    assert_eq!(nodes.len(), views.len() + sources.len(), "{nodes:?}");
    let gantt = &loaded.dom[loaded.dom.find("<svg id=\"gantt-svg\"").expect("the Gantt chart")..];
    let bars = |class: &str| gantt.matches(&format!("class=\"bar {class}")).count();
    assert_eq!(bars("succeeded") + bars("failed"), ran, "bars of the last run");
    assert!(bars("predicted") > 0, "no predicted bar");
    if ran > 0 {
        assert!(gantt.contains("bar succeeded critical") || gantt.contains("bar failed critical"), "no critical path");
    }
    assert!(gantt.contains("bar predicted critical"), "no predicted critical path");
    loaded
}

/// The box of every node of the DAG: `(x, y, width, height)`, from its group's translation
/// and its rectangle.
fn node_boxes(dom: &str) -> Vec<(f64, f64, f64, f64)> {
    let number = |text: &str, after: &str, until: char| -> f64 {
        let start = text.find(after).unwrap() + after.len();
        text[start..start + text[start..].find(until).unwrap()].parse().unwrap()
    };
    dom.split("<g class=\"node ")
        .skip(1)
        .map(|g| {
            let translate = &g[g.find("translate(").unwrap()..];
            (
                number(translate, "translate(", ','),
                number(translate, ",", ')'),
                number(g, "width=\"", '"'),
                number(g, "height=\"", '"'),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_a_demo_run_loads_in_chromium_with_every_view_drawn() {
    let demo = Demo::new();
    demo.run(RunOptions::default()).await.unwrap();
    // A second run with one view changed, so the report has a diff to show.
    demo.write_view("q06", &std::fs::read_to_string(demo.view_file("q06")).unwrap().replace("0.06", "0.07"));
    let second = demo.run(RunOptions::default()).await.unwrap();
    let ran = second.views.iter().filter(|v| v.duration_ms.is_some()).count();
    assert_eq!(ran, 1, "{:?}", second.views);

    let pipeline = Pipeline::load(demo.path()).unwrap();
    let page = demo.path().join("report.html");
    std::fs::write(&page, pipeline.html_report(&RunOptions { workers: 2, ..RunOptions::default() }).await.unwrap())
        .unwrap();
    let planned = pipeline.plan(&RunOptions::default()).await.unwrap();
    let views = planned.view_names();
    assert_eq!(views.len(), 30);
    let sources: Vec<&str> = pipeline.spec().sources.keys().map(String::as_str).collect();
    let loaded = check_page(&page, &views, &sources, ran);
    // With no failure, the view ending the last run's critical path (q06, the one view that
    // ran) is drawn in detail, its first column traced down to the sources; its diff is there.
    assert!(loaded.dom.contains("<section id=\"detail\"><h2>q06 "), "q06 is not shown in detail");
    assert!(loaded.dom.contains("revenue, step by step through views"), "no lineage trace");
    assert!(loaded.dom.contains("<span class=\"badge transform\">transform</span>stg_lineitem.l_extendedprice"));
    assert!(loaded.dom.contains("<span class=\"badge transform\">transform</span>lineitem.l_extendedprice"));
    assert!(loaded.dom.contains("\"change\":\"changed\""), "q06's diff is not in the page");
    screenshot(&page, "demo");

    // Every tab draws without a console message, for a view and for a source.
    for (fragment, shows) in [
        ("#view=q06&tab=explain", "LazyViewExec"),
        ("#view=q06&tab=write", "Format options"),
        ("#view=q06&tab=contracts", "no contract declared"),
        ("#view=q06&tab=diff", "<h3>Plan</h3>"),
        ("#view=q06&tab=sql", "l_discount between 0.07 - 0.01"),
        ("#view=lineitem", "primary_key"),
        ("#view=stg_orders&tab=write", "a lazy view is never written"),
    ] {
        let loaded = load_at(&page, fragment);
        assert!(loaded.console.is_empty(), "{fragment}: {:#?}", loaded.console);
        let detail = &loaded.dom[loaded.dom.find("<section id=\"detail\">").unwrap()..];
        let detail = &detail[..detail.find("</section>").unwrap()];
        assert!(detail.contains(shows), "{fragment} does not show `{shows}`: {detail:.2000}");
    }
}

/// A Rust template over the demo's `stg_orders`.
#[derive(Debug)]
struct BigOrders;

#[async_trait::async_trait]
impl ViewTemplate for BigOrders {
    fn name(&self) -> &'static str {
        "big_orders_rs"
    }

    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec::scalar("min_total", datafusion::arrow::datatypes::DataType::Float64)]
    }

    fn depends_on(&self) -> Option<Vec<String>> {
        Some(vec!["stg_orders".to_owned()])
    }

    async fn build(&self, ctx: &SessionContext, params: &BoundParams) -> datafusion::error::Result<DataFrame> {
        ctx.table("stg_orders").await?.filter(col("o_totalprice").gt(params.lit("min_total")?))?.select(vec![
            col("o_orderkey"),
            col("o_custkey"),
            (col("o_totalprice") * lit(2.0)).alias("doubled"),
        ])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_a_run_with_a_template_and_a_failing_view_loads_in_chromium() {
    let demo = Demo::new();
    demo.append_spec(
        "\n[views.big_orders_rs]\nmaterialize = \"parquet\"\nparams = { min_total = 300000.0 }\n\n\
         [views.bad]\nmaterialize = \"parquet\"\n\n[views.after_bad]\nmaterialize = \"parquet\"\n",
    );
    demo.write_view(
        "bad",
        "select o_orderkey, cast(o_comment as int) as broken from big_orders_rs join stg_orders using (o_orderkey)",
    );
    demo.write_view("after_bad", "select count(*) as n from bad");
    let pipeline = Pipeline::load(demo.path()).unwrap().with_template(BigOrders).unwrap();
    let options = RunOptions { workers: 2, ..RunOptions::default() };
    let report = pipeline.plan(&options).await.unwrap().run(Arc::new(|_| {})).await.unwrap();
    assert_eq!(report.status, "failed");
    let ran = report.views.iter().filter(|v| v.duration_ms.is_some()).count();

    let page = demo.path().join("report.html");
    let html = pipeline.html_report(&options).await.unwrap();
    std::fs::write(&page, &html).unwrap();
    // The run recorded when and where each view ran: every view that ran (the failed one
    // too) is a bar on one of the 2 slots, and a slot runs one view at a time.
    let data = embedded_data(&html);
    let actual = &data["schedule"]["actual"];
    assert_eq!(actual["workers"], 2);
    let bars = actual["bars"].as_array().unwrap();
    let mut ran_names: Vec<&str> =
        report.views.iter().filter(|v| v.duration_ms.is_some()).map(|v| v.name.as_str()).collect();
    let mut bar_names: Vec<&str> = bars.iter().map(|b| b["view"].as_str().unwrap()).collect();
    ran_names.sort_unstable();
    bar_names.sort_unstable();
    assert_eq!(bar_names, ran_names);
    let span = |b: &serde_json::Value| {
        (b["worker"].as_u64().unwrap(), b["start_ms"].as_u64().unwrap(), b["end_ms"].as_u64().unwrap())
    };
    for (i, a) in bars.iter().map(span).enumerate() {
        assert!(a.0 < 2, "{a:?}");
        for b in bars[i + 1..].iter().map(span).filter(|b| b.0 == a.0) {
            assert!(a.2 <= b.1 || b.2 <= a.1, "two views at once on slot {}: {a:?} {b:?}", a.0);
        }
    }
    assert!(bars.iter().any(|b| b["view"] == "bad" && b["status"] == "failed"), "{bars:?}");
    let planned = pipeline.plan(&options).await.unwrap();
    let views = planned.view_names();
    assert!(views.contains(&"big_orders_rs") && views.contains(&"bad"), "{views:?}");
    let sources: Vec<&str> = pipeline.spec().sources.keys().map(String::as_str).collect();
    let loaded = check_page(&page, &views, &sources, ran);
    // The failed view is the one shown first, with its error; its reader is upstream_failed.
    assert!(loaded.dom.contains("class=\"node failed selected\""), "the failed view is not selected");
    assert!(loaded.dom.contains("class=\"node upstream_failed"), "after_bad is not drawn as upstream_failed");
    assert!(loaded.dom.contains("<pre class=\"error\">"), "the failure's reason is not shown");
    assert!(loaded.dom.contains("\"kind\":\"template\""), "the template is not told apart");
    screenshot(&page, "template-and-failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_views_are_laid_out_without_overlaps() {
    // One small source and 100 views, each reading one or two earlier views: 8 layers.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("views")).unwrap();
    std::fs::write(dir.path().join("t.csv"), "a,b\n1,2\n3,4\n").unwrap();
    let mut spec = "[pipeline]\nname = \"wide\"\n\n[sources.t]\npath = \"t.csv\"\nformat = \"csv\"\n".to_owned();
    let names: Vec<String> = (0..100).map(|i| format!("view_{i:03}")).collect();
    for (i, name) in names.iter().enumerate() {
        let sql = match i {
            0 => "select a, b from t".to_owned(),
            _ if i % 7 == 0 => {
                format!("select x.a, x.b + y.b as b from {} x join {} y on x.a = y.a", names[(i - 1) / 2], names[i / 3])
            }
            _ => format!("select a, b + 1 as b from {}", names[(i - 1) / 2]),
        };
        std::fs::write(dir.path().join("views").join(format!("{name}.sql")), sql).unwrap();
        writeln!(spec, "\n[views.{name}]\nmaterialize = \"parquet\"").unwrap();
    }
    std::fs::write(dir.path().join("dfpipe.toml"), spec).unwrap();
    let pipeline = Pipeline::load(dir.path()).unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, pipeline.html_report(&RunOptions { workers: 4, ..RunOptions::default() }).await.unwrap())
        .unwrap();

    let views: Vec<&str> = names.iter().map(String::as_str).collect();
    let loaded = check_page(&page, &views, &["t"], 0);
    let boxes = node_boxes(&loaded.dom);
    assert_eq!(boxes.len(), 101);
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart = a.0 + a.2 <= b.0 || b.0 + b.2 <= a.0 || a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1;
            assert!(apart, "nodes overlap: {a:?} and {b:?}");
        }
    }
    screenshot(&page, "hundred-views");
}

#[test]
fn the_browser_check_sees_errors_and_refused_fetches() {
    // A page that throws and tries the network: the harness must see both, or it proves nothing.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         script-src 'unsafe-inline'\"></head><body><script>fetch('https://example.invalid/x').catch(() => {}); \
         null.boom;</script></body></html>",
    )
    .unwrap();
    let loaded = load(&page);
    let console = loaded.console.join("\n");
    assert!(console.contains("Uncaught TypeError"), "{console}");
    assert!(console.contains("Content Security Policy"), "{console}");
}
