//! Error messages users read, snapshotted under `golden/views__<case>.snap`: a syntax error,
//! an unknown table and an unknown column, each with `file:line:column`.
//!
//! Regenerate with `cargo xtask golden`, then review `git diff golden/`.

mod common;

use std::path::Path;

use common::failing_context;
use dfpipe_views::SqlView;

async fn message(sql: &str) -> String {
    let (ctx, _) = failing_context();
    let error = match SqlView::parse("revenue", Path::new("views/revenue.sql"), sql, &ctx.state()) {
        Err(e) => e,
        Ok(view) => view.plan(&ctx).await.expect_err("the view must not plan"),
    };
    format!("{sql}\n---\n{error}")
}

#[tokio::test]
async fn golden_error_messages() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../golden"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    for (name, sql) in [
        ("views__syntax_error", "select o_orderkey,\n       sum(o_totalprice\nfrom orders\ngroup by o_orderkey"),
        ("views__unknown_table", "select o_orderkey\nfrom orders\n  join nations on o_custkey = n_nationkey"),
        ("views__unknown_column", "select o_orderkey,\n       o_revenue\nfrom orders"),
    ] {
        let shown = message(sql).await;
        settings.bind(|| insta::assert_snapshot!(name, shown));
    }
}
