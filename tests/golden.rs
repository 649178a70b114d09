//! Golden plan snapshots of the TPC-H demo: optimized plans and lineage, one per view.
//!
//! Regenerate with `cargo xtask golden`, then review `git diff golden/`.

use dfpipe_engine::{Pipeline, RunOptions};
use dfpipe_tests::Demo;

#[tokio::test]
async fn golden_demo_plans() {
    let demo = Demo::new();
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    let lineage = planned.lineage(false);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../golden"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description("regenerate with `cargo xtask golden`");
    settings.bind(|| {
        for view in &lineage.views {
            let bundle = planned.bundle(&view.name).unwrap();
            let lineage = serde_json::to_string_pretty(view).unwrap();
            insta::assert_snapshot!(
                format!("tpch__{}", view.name),
                format!("-- optimized logical plan\n{}\n\n-- lineage\n{lineage}\n", bundle.optimized.trim_end())
            );
        }
    });
}
