//! The stages of a run seen from outside: how readers see materialized outputs, what the
//! spec refuses, and where costs come from.

use std::sync::Arc;

use dfpipe_engine::{CostSource, Pipeline, RunOptions};
use dfpipe_tests::Demo;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_a_sorted_view_needs_no_sort() {
    let demo = Demo::new();
    demo.append_spec(
        "\n[views.big_orders]\nmaterialize = \"parquet\"\nsort_by = [\"o_orderkey\"]\n\n\
         [views.first_big_orders]\nmaterialize = \"parquet\"\n",
    );
    demo.write_view("big_orders", "select o_orderkey, o_totalprice from stg_orders where o_totalprice > 100000");
    demo.write_view("first_big_orders", "select o_orderkey from big_orders order by o_orderkey limit 10");
    let report = demo.run(RunOptions::default()).await.unwrap();
    assert_eq!(report.status, "succeeded");

    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    let reader = planned.bundle("first_big_orders").unwrap();
    assert!(reader.physical.contains("output_ordering=[o_orderkey@0 ASC NULLS LAST]"), "{}", reader.physical);
    assert!(!reader.physical.contains("SortExec"), "{}", reader.physical);
    // Ordering by anything but the sort key sorts.
    demo.write_view("first_big_orders", "select o_orderkey from big_orders order by o_totalprice limit 10");
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    let plan = &planned.bundle("first_big_orders").unwrap().physical;
    assert!(plan.contains("SortExec"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundle_of_a_reader_holds_the_plan_that_ran() {
    let demo = Demo::new();
    demo.append_spec(
        "\n[views.big_orders]\nmaterialize = \"parquet\"\n\n[views.big_order_count]\nmaterialize = \"parquet\"\n",
    );
    demo.write_view("big_orders", "select o_orderkey from stg_orders where o_totalprice > 100000");
    demo.write_view("big_order_count", "select o_orderkey from big_orders where o_orderkey % 2 = 0");
    // On a first run the reader is planned before its upstream output exists: an empty scan.
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    let plan = &planned.bundle("big_order_count").unwrap().physical;
    assert!(plan.contains("EmptyExec"), "{plan}");
    planned.run(Arc::new(|_| {})).await.unwrap();
    // What is recorded is the plan that executed: it scanned the committed files.
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    let executed = planned.executed_bundle("big_order_count").unwrap().unwrap();
    assert!(executed.physical.contains("out/big_orders/"), "{}", executed.physical);
    assert!(!executed.physical.contains("EmptyExec"), "{}", executed.physical);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs_come_from_the_metrics_of_the_plan_that_ran() {
    let demo = Demo::new();
    let options = RunOptions { workers: 2, ..RunOptions::default() };
    let before = Pipeline::load(demo.path()).unwrap().plan(&options).await.unwrap().report().unwrap();
    assert!(before.views.iter().all(|v| v.cost_source != CostSource::Measured && v.last_duration_ms.is_none()));
    demo.run(options.clone()).await.unwrap();
    let after = Pipeline::load(demo.path()).unwrap().plan(&options).await.unwrap().report().unwrap();
    let q01 = after.views.iter().find(|v| v.name == "q01").unwrap();
    assert_eq!(q01.cost_source, CostSource::Measured);
    // The wall time the model is checked against is reported beside the model's cost.
    assert!(q01.last_duration_ms.is_some());
    let json = serde_json::to_value(&after).unwrap();
    assert_eq!(json["views"][0]["cost_source"], "measured");
}

#[test]
fn repartition_by_is_refused_with_what_to_use_instead() {
    let demo = Demo::new();
    let file = demo.path().join(dfpipe_engine::SPEC_FILE);
    let spec = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, spec.replace("[views.q01]\n", "[views.q01]\nrepartition_by = [\"l_returnflag\"]\n")).unwrap();
    let error = Pipeline::load(demo.path()).unwrap_err();
    assert_eq!(error.kind(), "spec");
    let message = error.to_string();
    assert!(message.contains("[views.q01] repartition_by") && message.contains("partition_by"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_at_fault_are_named() {
    let demo = Demo::new();
    let plan = |options: RunOptions| async move { Pipeline::load(demo.path()).unwrap().plan(&options).await };
    let error = plan(RunOptions { select: vec!["nope+".into()], ..RunOptions::default() }).await.err().unwrap();
    assert_eq!(error.kind(), "usage");
    assert!(error.to_string().starts_with("--select: `nope` is not a view of this pipeline"), "{error}");
    assert!(!error.is_internal());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_store_is_an_environment_failure() {
    let demo = Demo::new();
    let runs = demo.path().join(".dfpipe").join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(runs.join("99999999999999999999.msgpack"), b"\x93garbage").unwrap();
    let error = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.err().unwrap();
    assert!(error.is_internal(), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_names_a_changed_setting_and_a_changed_source_column() {
    let demo = Demo::new();
    demo.run(RunOptions::default()).await.unwrap();
    // A column added to a source, and a setting changed in the profile.
    let region = demo.path().join("data").join("region");
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_parquet(
        "region",
        region.to_string_lossy().as_ref(),
        datafusion::prelude::ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let batches = ctx.sql("select *, 1 as r_extra from region").await.unwrap().collect().await.unwrap();
    std::fs::remove_dir_all(&region).unwrap();
    std::fs::create_dir_all(&region).unwrap();
    let file = std::fs::File::create(region.join("part-0.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), None).unwrap();
    for batch in &batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
    let file = demo.path().join(dfpipe_engine::SPEC_FILE);
    let spec = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, spec.replace("batch_size = 8192", "batch_size = 4096")).unwrap();
    demo.run(RunOptions::default()).await.unwrap();

    let diff = Pipeline::load(demo.path()).unwrap().diff(None, None).unwrap();
    let environment = diff.environment.expect("both runs stored their environment");
    let batch = environment.settings.iter().find(|s| s.key == "datafusion.execution.batch_size").unwrap();
    assert_eq!((batch.from.as_deref(), batch.to.as_deref()), (Some("8192"), Some("4096")));
    let extra = environment.columns.iter().find(|c| c.column == "r_extra").unwrap();
    assert_eq!((extra.relation.as_str(), extra.from.as_deref()), ("region", None));
    assert!(extra.to.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_written_or_computed_is_refused_at_plan_time() {
    let demo = Demo::new();
    demo.append_spec("\n[views.waits]\nmaterialize = \"parquet\"\n");
    demo.write_view("waits", "select o_orderkey, interval '1 month' as wait from stg_orders");
    let error = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.err().unwrap();
    let message = error.to_string();
    assert_eq!(error.kind(), "spec", "{message}");
    assert!(message.contains("[views.waits]") && message.contains("`wait`"), "{message}");
    assert!(!error.is_internal());

    // A cast that fails only once the optimizer folds it names the view and its file.
    let demo = Demo::new();
    demo.write_view("bad_cast", "select cast('x' as int) as n");
    let error = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.err().unwrap();
    let message = error.to_string();
    assert_eq!(error.kind(), "view", "{message}");
    assert!(message.contains("bad_cast.sql") && !message.contains("Optimizer rule"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substrait_fallback_may_be_set_per_view() {
    let demo = Demo::new();
    demo.write_view("numbers", "select unnest([1, 2, 3]) as n");
    let error = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.err().unwrap();
    let message = error.to_string();
    assert!(message.contains("Unnest") && message.contains("[views.numbers]"), "{message}");
    assert!(message.len() < 400 && !message.contains('{'), "{message}");
    demo.append_spec("\n[views.numbers]\nsubstrait = \"fallback\"\n");
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    assert!(planned.bundle("numbers").unwrap().substrait_fallback.is_some());
    // The other views keep their Substrait plans.
    assert!(planned.bundle("q01").unwrap().substrait_fallback.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_keys_are_read_as_sql_names() {
    let demo = Demo::new();
    demo.append_spec("\n[views.big_orders]\nmaterialize = \"parquet\"\nsort_by = [\"O_TotalPrice desc\"]\n");
    demo.write_view("big_orders", "select o_orderkey, o_totalprice from stg_orders where o_totalprice > 100000");
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    assert!(planned.bundle("big_orders").unwrap().optimized.contains("Sort: stg_orders.o_totalprice DESC"));
    let file = demo.path().join(dfpipe_engine::SPEC_FILE);
    let spec = std::fs::read_to_string(&file).unwrap().replace("O_TotalPrice desc", "o_totalprice + 1");
    std::fs::write(&file, spec).unwrap();
    let error = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.err().unwrap();
    assert!(error.to_string().contains("[views.big_orders] sort_by"), "{error}");
}
