//! Lineage of the TPC-H demo views: the walk of each view's unoptimized plan and of its
//! optimized plan agree, nothing is left unresolved, and every column it names exists.

use dfpipe_engine::{Lineage, Pipeline, RunOptions};
use dfpipe_tests::Demo;

#[tokio::test]
async fn tpch_lineage_agrees_before_and_after_optimization() {
    let demo = Demo::new();
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    let state = planned.context().state();
    let names = planned.view_names();
    assert_eq!(names.len(), 30);
    for view in names {
        let sql = std::fs::read_to_string(demo.view_file(view)).unwrap();
        let plan = state.create_logical_plan(&sql).await.unwrap();
        let optimized = state.optimize(&plan).unwrap();
        let lineage = Lineage::of(&plan).unwrap();
        if let Err(difference) = lineage.agrees_with(&Lineage::of(&optimized).unwrap()) {
            panic!("{view}: {difference}");
        }
        assert!(lineage.is_complete(), "{view}: {:?}", lineage.columns);
        assert_eq!(lineage.columns.len(), plan.schema().fields().len(), "{view}");
        for (relation, column) in lineage
            .columns
            .iter()
            .flat_map(|c| c.sources.iter().map(|s| (&s.relation, &s.column)))
            .chain(lineage.inspected.iter().map(|i| (&i.relation, &i.column)))
        {
            let provider = planned.context().table_provider(relation.as_str()).await.unwrap();
            assert!(provider.schema().field_with_name(column).is_ok(), "{view}: {relation}.{column} does not exist");
        }
        // The lineage in the bundle is the same walk.
        let mut bundled = planned.bundle(view).unwrap().lineage.clone();
        bundled.scans.clear();
        bundled.udfs.clear();
        let mut walked = lineage;
        walked.scans.clear();
        assert_eq!(bundled, walked, "{view}");
    }
}
