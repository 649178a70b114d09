//! Golden plan snapshots of the TPC-H demo, one per view: the optimized plan, the physical
//! plan as a tree, and the lineage; and one of the environment (`information_schema`).
//!
//! Regenerate with `cargo xtask golden`, then review `git diff golden/`.

use std::fmt::Write;

use dfpipe_engine::{Pipeline, RunOptions};
use dfpipe_tests::{Demo, assert_golden};

#[tokio::test]
async fn golden_demo_plans() {
    let demo = Demo::new();
    let planned = Pipeline::load(demo.path()).unwrap().plan(&RunOptions::default()).await.unwrap();
    let lineage = planned.lineage(false);
    for view in &lineage.views {
        let bundle = planned.bundle(&view.name).unwrap();
        let lineage = serde_json::to_string_pretty(view).unwrap();
        assert_golden(
            &format!("tpch__{}", view.name),
            &format!(
                "-- optimized logical plan\n{}\n\n-- physical plan (tree)\n{}\n\n-- lineage\n{lineage}\n",
                bundle.optimized.trim_end(),
                bundle.tree.trim_end()
            ),
        );
    }
    // The environment: each information_schema table with its columns, row count and hash.
    // df_settings holds machine-dependent values (thread counts, paths): its hash is redacted.
    let mut environment = String::new();
    for (name, table) in &planned.environment().tables {
        let hash = if name == "df_settings" { "[machine-dependent]".to_owned() } else { table.hash.to_string() };
        let _ = writeln!(
            environment,
            "{name}: {} rows, hash {hash}\n  columns: {}",
            table.rows.len(),
            table.columns.join(", ")
        );
    }
    assert_golden("tpch__environment", &environment);
}
