//! Error messages users read, snapshotted under `golden/views__<case>.snap`: a syntax error,
//! an unknown table and an unknown column, each with `file:line:column`; a tokenizer error;
//! and a type error and a cast error that surface only when the plan is optimized, each
//! with the view, its file and the cause alone (no optimizer rule, no bug-report text); and
//! an operator DataFusion plans but cannot evaluate.
//!
//! Regenerate with `cargo xtask golden`, then review `git diff golden/`.

use std::path::Path;

use crate::common::failing_context;
use datafusion::arrow::error::ArrowError;
use datafusion::common::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;
use dfpipe_views::{SqlView, user_message};

/// The error a user reads for the view `sql`: from parsing, from planning, or else from
/// optimizing and physically planning it as the engine's capture does.
async fn message(sql: &str) -> String {
    let (ctx, _) = failing_context();
    let error = match SqlView::parse("revenue", Path::new("views/revenue.sql"), sql, &ctx.state()) {
        Err(e) => e,
        Ok(view) => match view.plan(&ctx).await {
            Err(e) => e,
            Ok(df) => view.planning_error(&df.create_physical_plan().await.expect_err("the view must not plan")),
        },
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
        ("views__tokenizer_error", "select o_orderkey\nfrom orders\nwhere o_comment = 'late"),
        ("views__type_error", "select substring('alphabet' from '3') as part"),
        ("views__cast_error", "select cast('seven' as int) as n"),
        ("views__unsupported_operator", "select o_orderkey @> o_custkey as x\nfrom orders"),
    ] {
        let shown = message(sql).await;
        settings.bind(|| insta::assert_snapshot!(name, shown));
    }
}

#[test]
fn rule_wrapping_is_dropped_and_other_context_kept() {
    let cast = DataFusionError::ArrowError(Box::new(ArrowError::CastError("Cannot cast 'x' to Int32".into())), None);
    let wrapped = cast.context("Optimizer rule 'simplify_expressions' failed");
    assert_eq!(user_message(&wrapped), "Arrow error: Cast error: Cannot cast 'x' to Int32");
    let analyzed = DataFusionError::Internal("Expect Int64 but received Utf8".into()).context("type_coercion");
    assert_eq!(user_message(&analyzed), "Expect Int64 but received Utf8");
    let read = DataFusionError::Plan("no such file".into()).context("reading orders.parquet");
    assert_eq!(user_message(&read), "reading orders.parquet: Error during planning: no such file");
    let shared = DataFusionError::Shared(std::sync::Arc::new(DataFusionError::Internal("lost".into())));
    assert_eq!(user_message(&shared), "lost");
}

#[test]
fn parser_errors_are_their_message() {
    let parser = DataFusionError::SQL(Box::new(ParserError::ParserError("Expected: ), found: from".into())), None);
    assert_eq!(user_message(&parser), "Expected: ), found: from");
}

/// Where each kind of error arises: the type error when the view is planned here, the cast
/// error only when its plan is optimized (in the engine, by artifacts' `capture`).
#[tokio::test]
async fn type_errors_arise_when_planned_and_cast_errors_when_optimized() {
    let (ctx, _) = failing_context();
    let plan = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let view = SqlView::parse("revenue", Path::new("views/revenue.sql"), sql, &ctx.state()).unwrap();
            view.plan(&ctx).await.map(|_| ())
        }
    };
    assert!(plan("select substring('alphabet' from '3') as part").await.is_err());
    assert!(plan("select cast('seven' as int) as n").await.is_ok());
}
