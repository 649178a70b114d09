//! End-to-end runs of the TPC-H demo: incremental runs, failures, and bad input.

use std::collections::BTreeMap;

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext, col};
use dfpipe_engine::{
    BoundParams, CancelToken, ConstraintKind, EngineError, Event, ParamSpec, Pipeline, RunOptions, RunReport,
    ViewTemplate,
};
use dfpipe_tests::Demo;

fn statuses(report: &RunReport) -> BTreeMap<String, String> {
    report.views.iter().map(|v| (v.name.clone(), v.status.to_string())).collect()
}

fn executed(report: &RunReport) -> Vec<String> {
    report.views.iter().filter(|v| v.duration_ms.is_some()).map(|v| v.name.clone()).collect()
}

/// Rows in the committed parquet output of `view`, read back through DataFusion.
async fn output_rows(demo: &Demo, view: &str) -> usize {
    let ctx = datafusion::prelude::SessionContext::new();
    let path = demo.path().join("out").join(view);
    let df = ctx
        .read_parquet(path.to_string_lossy().as_ref(), datafusion::prelude::ParquetReadOptions::default())
        .await
        .unwrap();
    df.count().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_executes_every_query_and_second_run_nothing() {
    let demo = Demo::new();
    let first = demo.run(RunOptions::default()).await.unwrap();
    assert_eq!(first.status, "succeeded", "{first:#?}");
    let ran = executed(&first);
    assert_eq!(ran.len(), 22, "{ran:?}");
    for v in &first.views {
        if v.name.starts_with("stg_") {
            assert_eq!(v.status, "skipped");
        } else {
            assert_eq!(v.status, "succeeded", "{v:?}");
            let rows = v.rows.unwrap();
            assert_eq!(output_rows(&demo, &v.name).await as u64, rows, "{}", v.name);
        }
    }
    // Q1 at any scale factor has 4 groups; Q6 has one row.
    assert_eq!(first.views.iter().find(|v| v.name == "q01").unwrap().rows, Some(4));
    assert_eq!(first.views.iter().find(|v| v.name == "q06").unwrap().rows, Some(1));

    // Twice: the costs measured by the first run carry over runs that skip the views.
    for _ in 0..2 {
        let again = demo.run(RunOptions::default()).await.unwrap();
        assert!(executed(&again).is_empty(), "{again:#?}");
        for v in again.views.iter().filter(|v| v.name.starts_with('q')) {
            assert_eq!(v.reason.as_deref(), Some("fingerprint unchanged"), "{v:?}");
            assert_eq!(v.cost_source, dfpipe_engine::CostSource::Measured);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_view_reruns_it_and_its_descendants_only() {
    let demo = Demo::new();
    demo.run(RunOptions::default()).await.unwrap();
    let q06 = std::fs::read_to_string(demo.view_file("q06")).unwrap();
    demo.write_view("q06", &q06.replace("l_quantity < 24", "l_quantity < 25"));
    assert_eq!(executed(&demo.run(RunOptions::default()).await.unwrap()), ["q06"]);

    // A staging view change reaches every query that reads it, through its fingerprint.
    let stg = std::fs::read_to_string(demo.view_file("stg_region")).unwrap();
    demo.write_view("stg_region", &stg.replace("from\n    region", "from\n    region\nwhere r_regionkey >= 0"));
    let rerun = executed(&demo.run(RunOptions::default()).await.unwrap());
    assert_eq!(rerun, ["q02", "q05", "q08"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_and_full_narrow_and_force_the_run() {
    let demo = Demo::new();
    let selected =
        demo.run(RunOptions { select: vec!["q01".into(), "q03".into()], ..RunOptions::default() }).await.unwrap();
    assert_eq!(executed(&selected), ["q01", "q03"]);
    let full = demo.run(RunOptions { full: true, select: vec!["q01".into()], ..RunOptions::default() }).await.unwrap();
    assert_eq!(executed(&full), ["q01"]);
    // The next plain run builds what was never selected, and only that.
    let rest = executed(&demo.run(RunOptions::default()).await.unwrap());
    assert_eq!(rest.len(), 20, "{rest:?}");
    assert!(!rest.contains(&"q01".to_owned()) && !rest.contains(&"q03".to_owned()), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_view_skips_its_descendants_and_keeps_previous_outputs() {
    let demo = Demo::new();
    demo.append_spec("\n[views.bad]\nmaterialize = \"parquet\"\n\n[views.after_bad]\nmaterialize = \"parquet\"\n");
    demo.write_view("bad", "select o_orderkey, cast(o_comment as int) as broken from stg_orders where o_orderkey > 0");
    demo.write_view("after_bad", "select count(*) as n from bad");
    let report = demo.run(RunOptions { select: vec![], ..RunOptions::default() }).await.unwrap();
    let status = statuses(&report);
    assert_eq!(report.status, "failed");
    assert_eq!(status["bad"], "failed");
    assert_eq!(status["after_bad"], "upstream_failed");
    assert_eq!(status["q01"], "succeeded");
    let reason = report.views.iter().find(|v| v.name == "bad").unwrap().reason.clone().unwrap();
    assert!(reason.contains("Cast") || reason.contains("cast"), "{reason}");
    assert!(!demo.path().join("out").join("bad").exists());

    // A contract on a view is checked on its staged output: a violation keeps the old output.
    let spec_file = demo.path().join("dfpipe.toml");
    let spec = std::fs::read_to_string(&spec_file).unwrap();
    demo.append_spec("\n[contracts.q01]\nprimary_key = [\"l_linestatus\"]\n");
    let report =
        demo.run(RunOptions { full: true, select: vec!["q01".into()], ..RunOptions::default() }).await.unwrap();
    let q01 = report.views.iter().find(|v| v.name == "q01").unwrap();
    assert_eq!(q01.status, "failed");
    assert!(q01.reason.as_deref().unwrap().contains("primary_key (l_linestatus) has 1 violation(s)"), "{q01:?}");
    assert_eq!(output_rows(&demo, "q01").await, 4);
    std::fs::write(&spec_file, spec).unwrap();

    // Now make q01 fail: its previous output stays whole and readable.
    let before = output_rows(&demo, "q01").await;
    demo.write_view("q01", "select cast(l_comment as int) as broken from stg_lineitem");
    let report = demo.run(RunOptions::default()).await.unwrap();
    assert_eq!(statuses(&report)["q01"], "failed");
    assert_eq!(output_rows(&demo, "q01").await, before);
    assert_eq!(std::fs::read_dir(demo.path().join("out").join(".staging")).unwrap().count(), 0);
}

async fn plan_error(demo: &Demo) -> EngineError {
    let loaded = Pipeline::load(demo.path());
    match loaded {
        Err(e) => e,
        Ok(p) => match p.plan(&RunOptions::default()).await {
            Err(e) => e,
            Ok(_) => panic!("expected the pipeline to be rejected"),
        },
    }
}

#[tokio::test]
async fn bad_input_is_a_clear_error() {
    // DDL, DML and other statements in a view file.
    for (sql, what) in [
        ("create table t as select 1", "CREATE TABLE"),
        ("drop table orders", "DROP TABLE"),
        ("insert into t values (1)", "INSERT"),
        ("copy (select 1) to 'x.parquet'", "COPY"),
        ("set datafusion.execution.batch_size = 1", "SET"),
        ("explain analyze select 1", "EXPLAIN"),
        ("select 1; select 2", "2 statements"),
    ] {
        let demo = Demo::new();
        demo.write_view("sneaky", sql);
        let message = plan_error(&demo).await.to_string();
        assert!(message.contains("sneaky") && message.contains("sneaky.sql"), "{message}");
        assert!(message.contains(what), "{sql}: {message}");
    }

    // A cycle is reported in full.
    let demo = Demo::new();
    demo.write_view("a", "select * from b");
    demo.write_view("b", "select * from c");
    demo.write_view("c", "select * from a");
    let message = plan_error(&demo).await.to_string();
    assert!(message.contains("a -> b -> c -> a"), "{message}");

    // A missing source names itself and the path.
    let demo = Demo::new();
    std::fs::remove_dir_all(demo.path().join("data").join("region")).unwrap();
    let message = plan_error(&demo).await.to_string();
    assert!(message.contains("source `region`") && message.contains("does not exist"), "{message}");

    // A malformed dfpipe.toml names the file, the line and the key.
    let demo = Demo::new();
    demo.append_spec("\n[views.extra]\nmaterialise = \"parquet\"\n");
    let message = plan_error(&demo).await.to_string();
    assert!(
        message.contains("dfpipe.toml") && message.contains("materialise") && message.contains("line"),
        "{message}"
    );

    // A syntax error names the view, file, line and column.
    let demo = Demo::new();
    demo.write_view("typo", "select o_orderkey\nfrom stg_orders\nwhere ) and 1");
    let message = plan_error(&demo).await.to_string();
    assert!(message.contains("typo.sql:3:7"), "{message}");

    // A view declared in dfpipe.toml without its SQL file.
    let demo = Demo::new();
    demo.append_spec("\n[views.ghost]\nmaterialize = \"parquet\"\n");
    let message = plan_error(&demo).await.to_string();
    assert!(message.contains("[views.ghost]") && message.contains("ghost.sql"), "{message}");

    // A corrupt store file is named, never silently used or overwritten.
    let demo = Demo::new();
    let runs = demo.path().join(".dfpipe").join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(runs.join("99999999999999999999.msgpack"), b"\x93garbage").unwrap();
    let message = plan_error(&demo).await.to_string();
    assert!(message.contains("99999999999999999999.msgpack") && message.contains("delete it"), "{message}");
    assert_eq!(std::fs::read(runs.join("99999999999999999999.msgpack")).unwrap(), b"\x93garbage");

    // A view named like a source.
    let demo = Demo::new();
    demo.write_view("orders", "select 1 as one");
    let message = plan_error(&demo).await.to_string();
    assert!(message.contains("orders.sql") && message.contains("[sources.orders]"), "{message}");

    // A contract on an unknown column is refused before anything runs.
    let demo = Demo::new();
    demo.append_spec("\n[contracts.stg_orders]\nprimary_key = [\"o_nokey\"]\n");
    let message = plan_error(&demo).await.to_string();
    assert!(message.contains("stg_orders") && message.contains("o_nokey"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_hold_on_generated_data_and_catch_violations() {
    let demo = Demo::new();
    let report = Pipeline::load(demo.path()).unwrap().check(3).await.unwrap();
    assert!(report.passed, "{report:#?}");
    // 8 primary keys, 8 not-null checks of their columns (10 columns), 8 foreign keys.
    assert_eq!(report.results.iter().filter(|r| r.constraint == ConstraintKind::PrimaryKey).count(), 8);
    assert_eq!(report.results.iter().filter(|r| r.constraint == ConstraintKind::ForeignKey).count(), 8);

    // A duplicate region key: one extra file repeating region 0.
    let ctx = datafusion::prelude::SessionContext::new();
    let region = demo.path().join("data").join("region");
    let df = ctx
        .read_parquet(region.to_string_lossy().as_ref(), datafusion::prelude::ParquetReadOptions::default())
        .await
        .unwrap()
        .filter(datafusion::prelude::col("r_regionkey").eq(datafusion::prelude::lit(0i64)))
        .unwrap();
    df.write_parquet(
        region.join("dup.parquet").to_string_lossy().as_ref(),
        datafusion::dataframe::DataFrameWriteOptions::new(),
        None,
    )
    .await
    .unwrap();
    let report = Pipeline::load(demo.path()).unwrap().check(3).await.unwrap();
    assert!(!report.passed);
    let failed: Vec<_> = report.results.iter().filter(|r| r.violations > 0).collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!((failed[0].relation.as_str(), failed[0].constraint), ("region", ConstraintKind::PrimaryKey));
    assert_eq!(failed[0].violations, 1);
    assert_eq!(failed[0].samples[0]["r_regionkey"], serde_json::json!(0));
    assert_eq!(failed[0].samples[0]["rows"], serde_json::json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_of_a_materialized_view_read_its_committed_output() {
    let demo = Demo::new();
    demo.append_spec(
        "\n[views.big_orders]\nmaterialize = \"parquet\"\n\n[views.big_order_total]\nmaterialize = \"parquet\"\n",
    );
    demo.write_view("big_orders", "select o_orderkey, o_totalprice from stg_orders where o_totalprice > 100000");
    demo.write_view("big_order_total", "select count(*) as n, sum(o_totalprice) as total from big_orders");
    // `+view` selects the view and everything it needs.
    let report =
        demo.run(RunOptions { select: vec!["+big_order_total".into()], ..RunOptions::default() }).await.unwrap();
    assert_eq!(executed(&report), ["big_order_total", "big_orders"]);
    let big = output_rows(&demo, "big_orders").await;
    assert!(big > 0);

    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    // The reader's plan scans the view by name, and its execution read the committed files.
    assert!(planned.bundle("big_order_total").unwrap().optimized.contains("TableScan: big_orders"));
    let executed_bundle = planned.executed_bundle("big_order_total").unwrap().unwrap();
    let scan = executed_bundle.metrics.iter().find(|m| m.operator.starts_with("DataSourceExec")).unwrap();
    assert!(scan.operator.contains("out/big_orders/"), "{}", scan.operator);
    assert_eq!(scan.output_rows, Some(big as u64));
    let ctx = datafusion::prelude::SessionContext::new();
    let path = demo.path().join("out").join("big_order_total");
    let n = ctx
        .read_parquet(path.to_string_lossy().as_ref(), datafusion::prelude::ParquetReadOptions::default())
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = n[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap().value(0);
    assert_eq!(n as usize, big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_knob_in_the_fingerprint_reruns_what_it_affects() {
    let demo = Demo::new();
    demo.run(RunOptions::default()).await.unwrap();
    // Compression is part of the fingerprint of materialized views only.
    let file = demo.path().join(dfpipe_engine::SPEC_FILE);
    let spec = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, spec.replace("compression = \"zstd(3)\"", "compression = \"zstd(1)\"")).unwrap();
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    let report = planned.report().unwrap();
    let rerun: Vec<_> = report.views.iter().filter(|v| v.will_run).map(|v| v.name.clone()).collect();
    assert_eq!(rerun.len(), 22, "{rerun:?}");
    assert!(rerun.iter().all(|v| v.starts_with('q')));
    assert!(report.views.iter().filter(|v| v.will_run).all(|v| v.reason == "fingerprint changed"));
    let ran = planned.run(std::sync::Arc::new(|_| {})).await.unwrap();
    assert_eq!(executed(&ran).len(), 22);
    assert!(executed(&demo.run(RunOptions::default()).await.unwrap()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_store_source_is_listed_and_fingerprinted() {
    let demo = Demo::new();
    let file = demo.path().join(dfpipe_engine::SPEC_FILE);
    let spec = std::fs::read_to_string(&file).unwrap();
    let url = format!("file://{}/", demo.path().join("data").join("region").display());
    std::fs::write(&file, spec.replace("path = \"data/region/\"", &format!("path = \"{url}\""))).unwrap();
    let report = demo.run(RunOptions::default()).await.unwrap();
    assert_eq!(report.status, "succeeded");
    assert!(executed(&demo.run(RunOptions::default()).await.unwrap()).is_empty());

    // New data at the URL changes the source's fingerprint, and the queries reading it rerun.
    let region = demo.path().join("data").join("region");
    let first = std::fs::read_dir(&region).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(&first, region.join("extra.parquet")).unwrap();
    let rerun = executed(&demo.run(RunOptions::default()).await.unwrap());
    assert_eq!(rerun, ["q02", "q05", "q08"]);

    // A URL with nothing behind it is a clear error before anything runs.
    let empty = demo.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let spec = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, spec.replace(&url, &format!("file://{}/", empty.display()))).unwrap();
    let message = plan_error(&demo).await.to_string();
    assert!(message.contains("source `region`") && message.contains("no files at"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_from_the_command_line_override_the_spec() {
    let demo = Demo::new();
    demo.append_spec("\n[views.small_orders]\nmaterialize = \"parquet\"\nparams = { max_key = 10 }\n");
    demo.write_view("small_orders", "select o_orderkey from stg_orders where o_orderkey < $max_key");
    demo.run(RunOptions { select: vec!["small_orders".into()], ..RunOptions::default() }).await.unwrap();
    let from_spec = output_rows(&demo, "small_orders").await;

    let options = |param: &str| RunOptions {
        select: vec!["small_orders".into()],
        params: vec![param.to_owned()],
        ..RunOptions::default()
    };
    let report = demo.run(options("small_orders.max_key=1000")).await.unwrap();
    assert_eq!(executed(&report), ["small_orders"], "a new value is a new plan, so a new fingerprint");
    assert!(output_rows(&demo, "small_orders").await > from_spec);

    for (bad, says) in [
        ("nowhere.max_key=1", "there is no view `nowhere`"),
        ("small_orders.max_key", "no `=`"),
        ("small_orders.max_key=\"ten\"", "small_orders"),
    ] {
        let error = Pipeline::load(demo.path()).unwrap().plan(&options(bad)).await.err().expect(bad).to_string();
        assert!(error.contains(says), "{bad}: {error}");
    }
}

/// A Rust template over the demo's `stg_orders`: orders above `min_total`.
#[derive(Debug)]
struct BigOrders {
    /// What it declares it reads.
    declares: &'static str,
}

#[async_trait::async_trait]
impl ViewTemplate for BigOrders {
    fn name(&self) -> &'static str {
        "big_orders_rs"
    }

    fn params(&self) -> Vec<ParamSpec> {
        vec![ParamSpec::scalar("min_total", DataType::Float64)]
    }

    fn depends_on(&self) -> Option<Vec<String>> {
        Some(vec![self.declares.to_owned()])
    }

    async fn build(&self, ctx: &SessionContext, params: &BoundParams) -> datafusion::error::Result<DataFrame> {
        ctx.table("stg_orders").await?.filter(col("o_totalprice").gt(params.lit("min_total")?))?.select(vec![
            col("o_orderkey"),
            col("o_custkey"),
            col("o_totalprice"),
        ])
    }
}

async fn run_with_template(demo: &Demo, template: BigOrders, options: RunOptions) -> Result<RunReport, EngineError> {
    let planned = Pipeline::load(demo.path())?.with_template(template)?.plan(&options).await?;
    planned.run(Arc::new(|_| {})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_templates_run_beside_sql_views() {
    let demo = Demo::new();
    demo.append_spec(
        "\n[views.big_orders_rs]\nmaterialize = \"parquet\"\nparams = { min_total = 300000.0 }\n\n\
         [views.big_rs_customers]\nmaterialize = \"parquet\"\n",
    );
    demo.write_view("big_rs_customers", "select o_custkey, count(*) as n from big_orders_rs group by o_custkey");
    let template = || BigOrders { declares: "stg_orders" };
    let first = run_with_template(&demo, template(), RunOptions::default()).await.unwrap();
    assert_eq!(first.status, "succeeded");
    let status = statuses(&first);
    assert_eq!((status["big_orders_rs"].as_str(), status["big_rs_customers"].as_str()), ("succeeded", "succeeded"));
    // The template's output holds exactly the orders its filter selects, read from the source.
    let ctx = SessionContext::new();
    let orders = demo.path().join("data").join("orders");
    ctx.register_parquet("orders", orders.to_string_lossy().as_ref(), ParquetReadOptions::default()).await.unwrap();
    let expected = ctx.sql("select * from orders where o_totalprice > 300000").await.unwrap().count().await.unwrap();
    assert!(expected > 0);
    assert_eq!(output_rows(&demo, "big_orders_rs").await, expected);

    // Planned like any view: nothing changed, nothing runs; a new parameter value re-runs the
    // template and its reader only.
    assert!(executed(&run_with_template(&demo, template(), RunOptions::default()).await.unwrap()).is_empty());
    let options = RunOptions { params: vec!["big_orders_rs.min_total=400000.0".into()], ..RunOptions::default() };
    let rerun = run_with_template(&demo, template(), options).await.unwrap();
    assert_eq!(executed(&rerun), ["big_orders_rs", "big_rs_customers"]);
    // The reader read the upstream's new files, not the listing planning saw.
    assert_eq!(rerun.status, "succeeded", "{:?}", rerun.views);
    let expected = ctx.sql("select * from orders where o_totalprice > 400000").await.unwrap().count().await.unwrap();
    assert_eq!(output_rows(&demo, "big_orders_rs").await, expected);
    let customers = ctx
        .sql("select count(distinct o_custkey) from orders where o_totalprice > 400000")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let customers = customers[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap();
    assert_eq!(output_rows(&demo, "big_rs_customers").await as i64, customers.value(0));

    // Declared dependencies must be what the plan reads.
    let wrong = run_with_template(&demo, BigOrders { declares: "stg_customer" }, RunOptions::default()).await;
    let message = wrong.unwrap_err().to_string();
    assert!(message.contains("view `big_orders_rs`"), "{message}");
    assert!(message.contains("reads but does not declare: stg_orders"), "{message}");
    assert!(message.contains("declares but does not read: stg_customer"), "{message}");
    // A template may not take the name of a SQL view or a source.
    demo.write_view("big_orders_rs", "select 1 as x");
    let clash = Pipeline::load(demo.path()).unwrap().with_template(template()).unwrap_err().to_string();
    assert!(clash.contains("has the name of the SQL view"), "{clash}");
    std::fs::remove_file(demo.view_file("big_orders_rs")).unwrap();
    // A parameter of the wrong type is refused before anything runs.
    let options = RunOptions { params: vec!["big_orders_rs.min_total=\"lots\"".into()], ..RunOptions::default() };
    let mistyped = run_with_template(&demo, template(), options).await.unwrap_err().to_string();
    assert!(mistyped.contains("min_total"), "{mistyped}");
    // Without the template, its `[views.big_orders_rs]` table names nothing.
    let missing = plan_error(&demo).await.to_string();
    assert!(missing.contains("[views.big_orders_rs] has no SQL file"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_commits_nothing_more_and_keeps_every_output() {
    let demo = Demo::new();
    demo.run(RunOptions::default()).await.unwrap();
    let q01_before = output_rows(&demo, "q01").await;
    let spec_file = demo.path().join(dfpipe_engine::SPEC_FILE);
    let spec = std::fs::read_to_string(&spec_file).unwrap();
    // q01 changes; `slow` (a nested-loop join over 225 M pairs) and its reader are new. The
    // run is cancelled as `slow` starts: with one worker, it is then the only view running,
    // and it cannot finish before the cancellation reaches it.
    demo.write_view("q01", "select l_returnflag, count(*) as n from stg_lineitem group by l_returnflag");
    demo.append_spec("\n[views.slow]\nmaterialize = \"parquet\"\n\n[views.after_slow]\nmaterialize = \"parquet\"\n");
    demo.write_view(
        "slow",
        "select a.o_orderkey from stg_orders a, stg_orders b where a.o_orderkey + b.o_orderkey < 0",
    );
    demo.write_view("after_slow", "select count(*) as n from slow");
    let cancel = CancelToken::new();
    let options = RunOptions { workers: 1, cancel: cancel.clone(), ..RunOptions::default() };
    let planned = Pipeline::load(demo.path()).unwrap().plan(&options).await.unwrap();
    let report = planned
        .run(Arc::new(move |event| {
            if matches!(&event, Event::ViewStarted { view } if view == "slow") {
                cancel.cancel();
            }
        }))
        .await
        .unwrap();
    assert_eq!(report.status, "failed");
    assert!(report.views.iter().all(|v| v.status == "succeeded" || v.status == "skipped"), "{:?}", report.views);
    let view = |name: &str| report.views.iter().find(|v| v.name == name).unwrap();
    let slow = view("slow");
    assert_eq!(slow.status, "skipped");
    assert!(slow.reason.as_deref().unwrap().starts_with("cancelled while running"), "{slow:?}");
    assert!(!demo.path().join("out").join("slow").exists());
    // Below the cancelled view: not started, rather than failed.
    assert_eq!(view("after_slow").reason.as_deref(), Some("not started: the run was cancelled"));
    // q01 ran before `slow` and committed, or never started and kept its output.
    let q01 = view("q01");
    if q01.status == "succeeded" {
        assert_eq!(output_rows(&demo, "q01").await, 3);
    } else {
        assert_eq!(q01.reason.as_deref(), Some("not started: the run was cancelled"));
        assert_eq!(output_rows(&demo, "q01").await, q01_before);
    }
    assert_eq!(std::fs::read_dir(demo.path().join("out").join(".staging")).map_or(0, Iterator::count), 0);
    // Without `slow`, the next run executes exactly what did not commit (re-ranked as
    // durations come in).
    std::fs::write(&spec_file, spec).unwrap();
    std::fs::remove_file(demo.view_file("slow")).unwrap();
    std::fs::remove_file(demo.view_file("after_slow")).unwrap();
    let next = demo.run(RunOptions { dynamic: true, ..RunOptions::default() }).await.unwrap();
    assert_eq!(next.status, "succeeded");
    let expected: Vec<&str> = if q01.status == "succeeded" { vec![] } else { vec!["q01"] };
    assert_eq!(executed(&next), expected);
    assert_eq!(output_rows(&demo, "q01").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_starts_nothing_after_the_first_failure() {
    let demo = Demo::new();
    demo.append_spec("\n[views.bad]\nmaterialize = \"parquet\"\n");
    // The largest estimated output, so the first view to start: lineitem's rows, cast.
    demo.write_view("bad", "select cast(l_comment as int) as broken, l_orderkey from stg_lineitem");
    let report = demo.run(RunOptions { workers: 1, fail_fast: true, ..RunOptions::default() }).await.unwrap();
    assert_eq!(report.status, "failed");
    let status = statuses(&report);
    assert_eq!(status["bad"], "failed");
    let stopped = report
        .views
        .iter()
        .filter(|v| v.reason.as_deref() == Some("not started: an earlier failure stopped the run (--fail-fast)"))
        .count();
    let succeeded = report.views.iter().filter(|v| v.status == "succeeded").count();
    // One worker: whatever ran before `bad` succeeded, everything after it never started.
    assert!(stopped > 0);
    assert_eq!(succeeded + stopped + 1, 23, "{:?}", report.views);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_registered_from_rust_wins_over_the_storage_table_of_its_bucket() {
    let demo = Demo::new();
    let spec_file = demo.path().join(dfpipe_engine::SPEC_FILE);
    demo.append_spec(
        "\n[views.big_orders]\nmaterialize = \"parquet\"\n\n\
         [storage.\"s3://lake\"]\nendpoint = \"http://127.0.0.1:9\"\nallow_http = true\nmax_retries = 0\n",
    );
    demo.write_view("big_orders", "select o_orderkey from stg_orders where o_totalprice > 100000");
    let spec = std::fs::read_to_string(&spec_file).unwrap();
    std::fs::write(&spec_file, spec.replace("output_dir = \"out\"", "output_dir = \"s3://lake/tpch\"")).unwrap();
    let options = RunOptions { workers: 2, select: vec!["big_orders".to_owned()], ..RunOptions::default() };

    // The table's store is used: nothing listens on its endpoint.
    let unreachable = plan_error(&demo).await;
    assert!(unreachable.is_internal() && unreachable.to_string().contains("s3://lake/tpch"), "{unreachable}");

    // A store registered from Rust for the same bucket serves instead.
    let memory: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let pipeline = Pipeline::load(demo.path())
        .unwrap()
        .with_object_store(url::Url::parse("s3://lake").unwrap(), Arc::clone(&memory));
    let report = pipeline.plan(&options).await.unwrap().run(Arc::new(|_| {})).await.unwrap();
    assert_eq!(executed(&report), ["big_orders"]);
    let listing = object_store::path::Path::from("tpch/big_orders");
    let files: Vec<_> = futures::TryStreamExt::try_collect(memory.list(Some(&listing))).await.unwrap();
    assert!(!files.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_go_to_an_object_store_or_a_file_url() {
    let demo = Demo::new();
    let spec_file = demo.path().join(dfpipe_engine::SPEC_FILE);
    let spec = std::fs::read_to_string(&spec_file).unwrap();
    demo.append_spec(
        "\n[views.big_orders]\nmaterialize = \"parquet\"\n\n[views.big_order_count]\nmaterialize = \"parquet\"\n",
    );
    demo.write_view("big_orders", "select o_orderkey, o_totalprice from stg_orders where o_totalprice > 100000");
    demo.write_view("big_order_count", "select count(*) as n from big_orders");
    let with_memory = std::fs::read_to_string(&spec_file)
        .unwrap()
        .replace("output_dir = \"out\"", "output_dir = \"memory://lake/tpch\"");
    std::fs::write(&spec_file, &with_memory).unwrap();

    // Without the store registered, the run is refused before anything executes.
    let refused = plan_error(&demo).await.to_string();
    assert!(refused.contains("no object store is registered for `memory://lake/tpch`"), "{refused}");

    let memory: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let url = url::Url::parse("memory://lake").unwrap();
    let pipeline = || Pipeline::load(demo.path()).unwrap().with_object_store(url.clone(), Arc::clone(&memory));
    let options = RunOptions { workers: 2, ..RunOptions::default() };
    let first = pipeline().plan(&options).await.unwrap().run(Arc::new(|_| {})).await.unwrap();
    assert_eq!(first.status, "succeeded");
    assert_eq!(executed(&first).len(), 24);
    assert!(!demo.path().join("out").exists());
    // The outputs are in the store, and readable from there (a new session each time: a
    // session caches the listings it reads).
    let read = |view: &str| {
        let ctx = SessionContext::new();
        ctx.register_object_store(&url, Arc::clone(&memory));
        let location = format!("memory://lake/tpch/{view}/");
        async move { ctx.read_parquet(location, ParquetReadOptions::default()).await.unwrap().collect().await.unwrap() }
    };
    let big: usize = read("big_orders").await.iter().map(datafusion::arrow::array::RecordBatch::num_rows).sum();
    assert!(big > 0);
    let count = read("big_order_count").await;
    let n = count[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap().value(0);
    assert_eq!(n as usize, big);
    // A second run finds every output in the store; one deleted is rebuilt (its reader's input
    // has the same fingerprint, so the reader stays).
    let again = pipeline().plan(&options).await.unwrap();
    assert!(again.report().unwrap().views.iter().all(|v| !v.will_run));
    let listing = object_store::path::Path::from("tpch/big_orders");
    let files: Vec<_> = futures::TryStreamExt::try_collect(memory.list(Some(&listing))).await.unwrap();
    for file in files {
        object_store::ObjectStoreExt::delete(memory.as_ref(), &file.location).await.unwrap();
    }
    let rebuilt = pipeline().plan(&options).await.unwrap();
    let report = rebuilt.report().unwrap();
    let reasons: BTreeMap<_, _> =
        report.views.iter().filter(|v| v.will_run).map(|v| (v.name.clone(), v.reason.clone())).collect();
    assert_eq!(reasons.get("big_orders").map(String::as_str), Some("output missing"), "{reasons:?}");
    let ran = rebuilt.run(Arc::new(|_| {})).await.unwrap();
    assert_eq!(executed(&ran), ["big_orders"]);
    // A changed upstream is rebuilt in the store, and its reader reads the new files.
    demo.write_view("big_orders", "select o_orderkey, o_totalprice from stg_orders where o_totalprice > 200000");
    let changed = pipeline().plan(&options).await.unwrap().run(Arc::new(|_| {})).await.unwrap();
    assert_eq!(changed.status, "succeeded", "{:?}", changed.views);
    assert_eq!(executed(&changed), ["big_order_count", "big_orders"]);
    let big: usize = read("big_orders").await.iter().map(datafusion::arrow::array::RecordBatch::num_rows).sum();
    let count = read("big_order_count").await;
    let n = count[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap().value(0);
    assert_eq!(n as usize, big);
    // `check` reads the committed outputs from the store too: a key on `big_orders` holds.
    demo.append_spec("\n[contracts.big_orders]\nprimary_key = [\"o_orderkey\"]\n");
    let checked = pipeline().check(3).await.unwrap();
    assert!(checked.passed, "{checked:?}");
    assert!(checked.results.iter().any(|r| r.relation == "big_orders" && r.constraint == ConstraintKind::PrimaryKey));

    // A file:// URL is a local directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let file_url = url::Url::from_directory_path(elsewhere.path()).unwrap();
    std::fs::write(&spec_file, with_memory.replace("memory://lake/tpch", file_url.as_str())).unwrap();
    let report = demo.run(RunOptions::default()).await.unwrap();
    assert_eq!(executed(&report).len(), 24);
    assert!(elsewhere.path().join("big_order_count").is_dir());
    std::fs::write(&spec_file, spec).unwrap();
}

/// Every row of `batches`, each as its columns' display text, sorted: a view's content
/// whatever the order and the partitioning that produced it.
fn sorted_rows(batches: &[datafusion::arrow::array::RecordBatch]) -> Vec<String> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter<'_>> = (batch.columns().iter())
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).unwrap())
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    rows.sort();
    rows
}

/// Whether a lazy view is shared is a matter of execution; fingerprints and optimized plans
/// do not depend on it. With a cluster (planned here without contacting its workers), no view
/// is shared, and every view plans as in a run on one machine, where 17 readers share
/// `stg_lineitem`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_a_view_changes_no_fingerprint() {
    let demo = Demo::new();
    let pipeline = Pipeline::load(demo.path()).unwrap();
    let shared = pipeline.plan(&RunOptions::default()).await.unwrap();
    let cluster = pipeline.with_cluster(&["127.0.0.1:1".to_owned(), "127.0.0.1:2".to_owned()]).unwrap();
    let inline = cluster.plan(&RunOptions::default()).await.unwrap();
    assert!(shared.bundle("q01").unwrap().physical.contains("shared by 17 readers"));
    assert!(!inline.bundle("q01").unwrap().physical.contains("LazyViewExec"));
    assert_eq!(shared.view_names(), inline.view_names());
    for view in shared.view_names() {
        let (a, b) = (shared.bundle(view).unwrap(), inline.bundle(view).unwrap());
        assert_eq!(a.optimized, b.optimized, "{view}");
        assert_eq!(a.fingerprint, b.fingerprint, "{view}");
    }
}

/// The shared staging views (computed once for their readers) and the cores shared by views
/// running side by side change no result: each query view's committed rows are those of
/// plain DataFusion running the demo's SQL over inline views, on all the cores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_views_and_shared_cores_give_the_rows_of_plain_datafusion() {
    let demo = Demo::new();
    let pipeline = Pipeline::load(demo.path()).unwrap();
    // One view at a time: each has the profile's 2 partitions.
    let alone = pipeline.plan(&RunOptions { workers: 1, ..RunOptions::default() }).await.unwrap();
    let partitions = |planned: &dfpipe_engine::Planned| -> Vec<Option<usize>> {
        planned.report().unwrap().views.iter().filter(|v| v.will_run).map(|v| v.partitions).collect()
    };
    assert!(partitions(&alone).iter().all(|&p| p == Some(2)), "{:?}", partitions(&alone));
    drop(alone);
    // Two at a time: a view the schedule runs beside another has 1.
    let planned = pipeline.plan(&RunOptions { workers: 2, ..RunOptions::default() }).await.unwrap();
    let shares = partitions(&planned);
    assert_eq!(shares.len(), 22);
    assert!(shares.iter().filter(|&&p| p == Some(1)).count() >= 20, "{shares:?}");
    // A view on 1 partition whose plan, as planned with 2, repartitions.
    let report = planned.report().unwrap();
    let sharing = (report.views.iter().filter(|v| v.partitions == Some(1)))
        .find(|v| planned.bundle(&v.name).unwrap().physical.contains("RepartitionExec"))
        .expect("a view on 1 partition that repartitions with 2")
        .name
        .clone();
    let physical = planned.bundle("q01").unwrap().physical.clone();
    assert!(physical.contains("LazyViewExec: view=stg_lineitem, shared by 17 readers"), "{physical}");
    let report = planned.run(Arc::new(|_| {})).await.unwrap();
    assert_eq!(report.status, "succeeded", "{report:#?}");
    // What ran is recorded: the plan with 1 partition has nothing to repartition.
    let planned = pipeline.plan(&RunOptions { workers: 2, ..RunOptions::default() }).await.unwrap();
    let executed = planned.executed_bundle(&sharing).unwrap().unwrap().physical;
    assert!(!executed.contains("RepartitionExec"), "{sharing}: {executed}");

    let plain = SessionContext::new();
    for table in dfpipe_demo::TABLES {
        let path = demo.path().join("data").join(table);
        plain.register_parquet(table, path.to_string_lossy().as_ref(), ParquetReadOptions::default()).await.unwrap();
    }
    for (name, sql) in dfpipe_demo::DEMO_VIEWS.iter().filter(|(name, _)| name.starts_with("stg_")) {
        plain.register_table(*name, plain.sql(sql).await.unwrap().into_view()).unwrap();
    }
    let mut compared = 0;
    for (name, sql) in dfpipe_demo::DEMO_VIEWS.iter().filter(|(name, _)| !name.starts_with("stg_")) {
        let expected = sorted_rows(&plain.sql(sql).await.unwrap().collect().await.unwrap());
        let path = demo.path().join("out").join(name);
        let output = plain.read_parquet(path.to_string_lossy().as_ref(), ParquetReadOptions::default()).await.unwrap();
        assert_eq!(sorted_rows(&output.collect().await.unwrap()), expected, "{name}");
        compared += 1;
    }
    assert_eq!(compared, 22);
}
