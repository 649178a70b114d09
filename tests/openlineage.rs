//! OpenLineage facts of a pipeline with a Rust template and a failing view, through the
//! engine: the template's job carries its unparsed SQL, and the run's record ends each view
//! (the template COMPLETE with its write's figures, the failing view FAIL with its error).

use std::sync::Arc;

use datafusion::prelude::{DataFrame, SessionContext, col, lit};
use dfpipe_engine::{BoundParams, Pipeline, RunOptions, ViewTemplate};
use dfpipe_openlineage::model::RunEvent;
use dfpipe_openlineage::model::event::RunEventType;
use dfpipe_openlineage::{Statistics, ViewEnd};
use dfpipe_tests::Demo;

/// A Rust template over the demo's `stg_orders`: the orders of one status.
#[derive(Debug)]
struct OpenOrders;

#[async_trait::async_trait]
impl ViewTemplate for OpenOrders {
    fn name(&self) -> &'static str {
        "open_orders_rs"
    }

    fn depends_on(&self) -> Option<Vec<String>> {
        Some(vec!["stg_orders".to_owned()])
    }

    async fn build(&self, ctx: &SessionContext, _: &BoundParams) -> datafusion::error::Result<DataFrame> {
        ctx.table("stg_orders")
            .await?
            .filter(col("o_orderstatus").eq(lit("O")))?
            .select(vec![col("o_orderkey"), (col("o_totalprice") * lit(2.0)).alias("doubled")])
    }
}

/// `event` survives a trip through JSON into the typed model.
fn round_trip(event: &RunEvent) -> RunEvent {
    let text = serde_json::to_string(event).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_and_a_failing_view_end_as_their_records_say() {
    let demo = Demo::new();
    demo.append_spec("\n[views.open_orders_rs]\nmaterialize = \"parquet\"\n\n[views.bad]\nmaterialize = \"parquet\"\n");
    demo.write_view("bad", "select cast(o_comment as int) as broken from stg_orders");
    let pipeline = Pipeline::load(demo.path()).unwrap().with_template(OpenOrders).unwrap();
    let planned = pipeline.plan(&RunOptions { workers: 2, ..RunOptions::default() }).await.unwrap();

    let jobs = planned.openlineage_with_last_writes().unwrap();
    assert_eq!((jobs.namespace.as_str(), jobs.pipeline.as_str()), ("tpch", "tpch"));
    let template = jobs.views.iter().find(|v| v.name == "open_orders_rs").unwrap();
    let unparsed = planned.bundle("open_orders_rs").unwrap().sql.as_ref().unwrap().sql.clone().unwrap();
    assert_eq!(template.sql, unparsed);
    assert!(template.sql.to_lowercase().contains("stg_orders"), "{}", template.sql);
    assert_eq!(template.last_write, None);
    let bad = jobs.views.iter().find(|v| v.name == "bad").unwrap();
    assert_eq!(bad.sql, std::fs::read_to_string(demo.view_file("bad")).unwrap());
    let orders = &jobs.datasets["orders"];
    assert_eq!(orders.namespace, "file");
    assert_eq!(orders.name, demo.path().join("data").join("orders").to_string_lossy());
    assert_eq!(jobs.datasets["open_orders_rs"].name, demo.path().join("out").join("open_orders_rs").to_string_lossy());
    assert!(!jobs.datasets.contains_key("stg_orders"), "a lazy view lives nowhere");

    let report = planned.run(Arc::new(|_| {})).await.unwrap();
    let ends = pipeline.openlineage_ends(&report.run_id).unwrap();
    let rows = report.views.iter().find(|v| v.name == "open_orders_rs").unwrap().rows.unwrap();
    match &ends["open_orders_rs"] {
        ViewEnd::Complete(Some(Statistics { rows: written, bytes, files })) => {
            assert_eq!(*written, rows);
            assert!(*bytes > 0 && *files > 0);
        }
        other => panic!("open_orders_rs ended {other:?}"),
    }
    let ViewEnd::Fail(reason) = &ends["bad"] else { panic!("bad ended {:?}", ends["bad"]) };
    assert!(reason.to_lowercase().contains("cast"), "{reason}");

    // The events of those ends, parsed back.
    let run = jobs.run();
    let fail = round_trip(&run.view_end("bad", chrono::Utc::now(), &ends["bad"]).unwrap());
    assert_eq!(fail.event_type, RunEventType::Fail);
    assert_eq!(fail.run.facets.error_message.unwrap().message, *reason);
    assert_eq!(fail.run.facets.parent.unwrap().run.run_id, run.id().to_string());
    let complete = round_trip(&run.view_end("open_orders_rs", chrono::Utc::now(), &ends["open_orders_rs"]).unwrap());
    assert_eq!(complete.event_type, RunEventType::Complete);
    assert_eq!(complete.job.facets.sql.unwrap().query, unparsed);
    let lineage = complete.outputs[0].facets.column_lineage.as_ref().unwrap();
    let doubled = &lineage.fields["doubled"].input_fields;
    let subtypes: Vec<(&str, &str)> = (doubled.iter())
        .flat_map(|f| {
            f.transformations.iter().map(move |t| (f.field.as_deref().unwrap(), t.subtype.as_deref().unwrap()))
        })
        .collect();
    assert_eq!(subtypes, [("o_orderstatus", "FILTER"), ("o_totalprice", "TRANSFORMATION")]);
    assert!(run.view_end("no_such_view", chrono::Utc::now(), &ViewEnd::Abort).is_none());
}
