//! The artifacts of the TPC-H demo: strict Substrait for every view, validated by a round
//! trip; metrics read from the real execution; diffs between recorded runs.

use dfpipe_engine::{Category, Pipeline, RunOptions, ViewChange};
use dfpipe_tests::Demo;

fn set_profile(demo: &Demo, line: &str) {
    let file = demo.path().join(dfpipe_engine::SPEC_FILE);
    let spec = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, spec.replacen("[profile]\n", &format!("[profile]\n{line}\n"), 1)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_demo_view_has_strict_substrait_that_round_trips() {
    let demo = Demo::new();
    set_profile(&demo, "validate_substrait = true");
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    for view in planned.view_names() {
        let bundle = planned.bundle(view).unwrap();
        assert!(bundle.substrait_fallback.is_none(), "{view}");
        assert!(!bundle.substrait.is_empty(), "{view}");
        let validation = bundle.substrait_validation.as_ref().unwrap();
        assert!(validation.round_trips, "{view}: {validation:?}");
        // A SQL view's bundle keeps no unparsed SQL (its file is its SQL); unparsed on
        // demand, it plans again.
        assert!(bundle.sql.is_none(), "{view}");
        let unparsed = planned.unparsed(view).await.unwrap();
        assert!(unparsed.sql.is_some() && unparsed.error.is_none(), "{view}: {unparsed:?}");
        assert!(!bundle.tree.is_empty(), "{view}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_in_the_bundle_are_those_of_the_write() {
    let demo = Demo::new();
    let report = demo.run(RunOptions::default()).await.unwrap();
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    let mut checked = 0;
    for view in report.views.iter().filter(|v| v.rows.is_some()) {
        let bundle = planned.executed_bundle(&view.name).unwrap().expect("a view that ran has metrics");
        assert_eq!(bundle.output_rows(), view.rows, "{}: {:#?}", view.name, bundle.metrics);
        let counted = bundle.metrics.iter().filter(|m| m.output_rows.is_some()).count();
        assert!(counted * 2 >= bundle.metrics.len(), "{}: {:#?}", view.name, bundle.metrics);
        checked += 1;
    }
    assert_eq!(checked, 22);
    // The second, no-op run executes nothing and keeps the metrics of the first.
    let noop = demo.run(RunOptions::default()).await.unwrap();
    assert!(noop.views.iter().all(|v| v.rows.is_none()));
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    assert!(planned.executed_bundle("q01").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_diff_says_what_changed_between_runs_and_how_much_it_matters() {
    let demo = Demo::new();
    demo.run(RunOptions::default()).await.unwrap();
    let pipeline = Pipeline::load(demo.path()).unwrap();
    assert!(pipeline.diff(None, None).unwrap_err().to_string().contains("a diff needs two"));

    // q06: a changed filter is breaking. stg_region: an added column is non-breaking, and the
    // queries reading stg_region change indirectly.
    let q06 = std::fs::read_to_string(demo.view_file("q06")).unwrap();
    demo.write_view("q06", &q06.replace("l_quantity < 24", "l_quantity < 25"));
    let stg = std::fs::read_to_string(demo.view_file("stg_region")).unwrap();
    demo.write_view("stg_region", &stg.replace("r_comment", "r_comment,\n    upper(r_name) as r_upper"));
    demo.run(RunOptions::default()).await.unwrap();
    let diff = pipeline.diff(None, None).unwrap();
    let view = |name: &str| diff.views.iter().find(|v| v.name == name).unwrap();
    assert_eq!(view("q06").category, Some(Category::Breaking));
    assert_eq!(view("q06").ingredients, ["plan"]);
    assert!(view("q06").plan_diff.contains("25"), "{}", view("q06").plan_diff);
    assert_eq!(view("stg_region").category, Some(Category::NonBreaking), "{:#?}", view("stg_region"));
    assert_eq!(view("stg_region").schema.added[0].name, "r_upper");
    assert!(view("q05").indirect);
    assert_eq!(view("q05").category, Some(Category::NonBreaking));
    assert_eq!(view("q01").change, ViewChange::Unchanged);

    // Explicit runs, and an unknown one.
    let ids: Vec<String> = std::fs::read_dir(demo.path().join(".dfpipe/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".msgpack").to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(pipeline.diff(Some("nope"), None).unwrap_err().to_string().contains("no run `nope`"));
}
