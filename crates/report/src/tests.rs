//! The page alone: nothing it loads comes from the network, and no data can break out of
//! the JSON it embeds.

use dfpipe_artifacts::{Column, RunStatus, ViewStatus};
use dfpipe_plan_walk::{ColumnLineage, Kind, Lineage, Source};
use dfpipe_writer::WriteReport;

use super::*;

/// Text a pipeline could hold that looks like markup and network addresses.
const HOSTILE: &str = "</script><script src=\"https://evil.example/x.js\"></script><!-- @import url(http://x) -->";

fn report() -> Report {
    let lineage = Lineage {
        depends_on: vec!["orders".to_owned()],
        columns: vec![ColumnLineage {
            name: "o_orderkey".to_owned(),
            sources: vec![Source {
                relation: "orders".to_owned(),
                column: "o_orderkey".to_owned(),
                kind: Kind::Copy,
                aggregated: false,
            }],
            unresolved: Vec::new(),
        }],
        ..Lineage::default()
    };
    let view = ViewPage {
        name: "big_orders".to_owned(),
        kind: "sql".to_owned(),
        materialize: "parquet".to_owned(),
        fingerprint: "ab".repeat(16),
        will_run: false,
        reason: "fingerprint unchanged".to_owned(),
        last: Some(LastStatus {
            status: ViewStatus::Failed,
            reason: Some(HOSTILE.to_owned()),
            duration_ms: Some(3),
            rows: None,
        }),
        columns: vec![Column { name: "o_orderkey".to_owned(), data_type: "Int64".to_owned(), nullable: false }],
        deep: lineage.clone(),
        lineage,
        tree: "DataSourceExec".to_owned(),
        sql: Some(["select o_orderkey from orders -- ", HOSTILE].concat()),
        write: Some(LastWrite {
            run_id: "1".to_owned(),
            report: WriteReport { target: "s3://shop-data/out/big_orders/".to_owned(), ..WriteReport::default() },
        }),
        diff: None,
    };
    let bar =
        Bar { view: "big_orders".to_owned(), worker: 0, start_ms: 0, end_ms: 3, status: Some(ViewStatus::Failed) };
    let timeline = Timeline {
        workers: 1,
        makespan_ms: 3,
        lower_bound_ms: 3,
        critical_path: vec!["big_orders".to_owned()],
        bars: vec![bar],
    };
    Report {
        pipeline: format!("shop {HOSTILE}"),
        run: Some(RunSummary { run_id: "1".to_owned(), status: RunStatus::Failed, previous_run_id: None }),
        sources: vec![SourceNode {
            name: "orders".to_owned(),
            location: "https://shop-data.s3.amazonaws.com/raw/orders/".to_owned(),
            format: "parquet".to_owned(),
        }],
        views: vec![view],
        schedule: Schedules { actual: Some(timeline.clone()), predicted: timeline },
        contracts: Vec::new(),
    }
}

/// The page split at its data element: the markup and code around it, and the data.
fn split(page: &str) -> (String, String) {
    let open = "<script type=\"application/json\" id=\"dfpipe-data\">";
    let start = page.find(open).expect("the data element") + open.len();
    let end = start + page[start..].find("</script>").expect("the data element's end");
    (format!("{}{}", &page[..start], &page[end..]), page[start..end].to_owned())
}

#[test]
fn nothing_outside_the_data_reaches_the_network() {
    let page = render(&report()).unwrap();
    let (code, _) = split(&page);
    let lower = code.to_lowercase();
    for banned in [
        "http://",
        "https://",
        "src=",
        "href=",
        "@import",
        "fetch(",
        "xmlhttprequest",
        "websocket",
        "eventsource",
        "sendbeacon",
        "import(",
        "<link",
        "<img",
        "<iframe",
        "sourcemappingurl",
    ] {
        assert!(!lower.contains(banned), "the page's own markup or code holds `{banned}`");
    }
    // `url(` only ever names a fragment of the page itself (the SVG arrow marker).
    for (at, _) in lower.match_indices("url(") {
        assert!(lower[at + 4..].starts_with('#'), "a `url(` that is not a fragment: {}", &code[at..at + 40]);
    }
    // And the browser is told to refuse any fetch at all.
    assert!(code.contains("http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"), "{code:.400}");
}

#[test]
fn data_cannot_close_its_element_and_reads_back_whole() {
    let report = report();
    let page = render(&report).unwrap();
    // Three script elements, each closed once: the data, dagre and the report's own code.
    assert_eq!(page.matches("<script").count(), 3);
    assert_eq!(page.matches("</script>").count(), 3);
    let (_, data) = split(&page);
    assert!(!data.contains('<'), "{data}");
    let back: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(back, serde_json::to_value(&report).unwrap());
    assert_eq!(back["views"][0]["last"]["reason"], HOSTILE);
    assert_eq!(back["sources"][0]["location"], "https://shop-data.s3.amazonaws.com/raw/orders/");
    // The markup around it is the same whatever the pipeline holds.
    let (code, _) = split(&page);
    let (plain, _) = split(&render(&Report { pipeline: "shop".to_owned(), views: Vec::new(), ..report }).unwrap());
    assert_eq!(code, plain);
}
