//! SQL views through the public API: the safe SQL policy on every entry point, laziness,
//! error locations, and user filters parsed as expressions.

use std::path::Path;

use crate::common::{failing_context, scans};
use datafusion::prelude::SessionContext;
use dfpipe_views::{SqlView, ViewError, ViewRegistry, filter, parse_filter, register_lazy};

/// Every statement kind a view may not hold, with the name the refusal gives it.
const REFUSED: [(&str, &str); 17] = [
    ("create table x as select 1", "CREATE TABLE"),
    ("create view x as select 1", "CREATE VIEW"),
    ("create external table x stored as parquet location 'x'", "CREATE EXTERNAL TABLE"),
    ("drop table t", "DROP TABLE"),
    ("drop view t", "DROP VIEW"),
    ("insert into t values (1, 'a')", "INSERT"),
    ("update t set v = 'b'", "UPDATE"),
    ("delete from t", "DELETE"),
    ("copy t to 'out.parquet'", "COPY"),
    ("copy (select 1) to 'out.csv'", "COPY"),
    ("set datafusion.execution.batch_size = 1", "SET"),
    ("explain select 1", "EXPLAIN"),
    ("explain analyze select k from t", "EXPLAIN ANALYZE"),
    ("select 1; select 2", "2 statements"),
    ("select 1; drop table t", "2 statements"),
    ("", "an empty file"),
    ("-- only a comment", "an empty file"),
];

fn parse(ctx: &SessionContext, sql: &str) -> Result<SqlView, ViewError> {
    SqlView::parse("v", Path::new("views/v.sql"), sql, &ctx.state())
}

fn check_refused(entry: &str, sql: &str, what: &str, file: &Path, result: Result<SqlView, ViewError>) {
    match result {
        Err(ViewError::Refused { view, file: at, what: refused }) => {
            assert_eq!((view.as_str(), at.as_path()), ("v", file), "{entry}: {sql}");
            assert!(refused.contains(what), "{entry}: {sql}: {refused}");
            let message = ViewError::Refused { view, file: at, what: refused }.to_string();
            assert!(message.starts_with(&format!("view `v` ({})", file.display())), "{message}");
        }
        other => panic!("{entry}: {sql}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn every_refused_statement_is_refused_by_parse() {
    let (ctx, _) = failing_context();
    for (sql, what) in REFUSED {
        check_refused("parse", sql, what, Path::new("views/v.sql"), parse(&ctx, sql));
    }
}

#[test]
fn every_refused_statement_is_refused_by_from_file() {
    let (ctx, _) = failing_context();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.sql");
    for (sql, what) in REFUSED {
        std::fs::write(&file, sql).unwrap();
        check_refused("from_file", sql, what, &file, SqlView::from_file("v", &file, &ctx.state()));
    }
    let missing = SqlView::from_file("v", &dir.path().join("nope.sql"), &ctx.state()).unwrap_err();
    assert!(matches!(missing, ViewError::Io { .. }), "{missing}");
}

#[tokio::test]
async fn every_refused_statement_is_refused_as_a_filter() {
    let (ctx, _) = failing_context();
    let df = ctx.table("t").await.unwrap();
    for (sql, _) in REFUSED {
        let fragment = if sql.is_empty() { "k > 1; drop table t".to_owned() } else { sql.to_owned() };
        match parse_filter("v", &df, &fragment) {
            Err(ViewError::Fragment { view, fragment: f, .. }) => {
                assert_eq!((view.as_str(), f.as_str()), ("v", fragment.as_str()));
            }
            other => panic!("filter {fragment}: expected an error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn queries_are_accepted_and_registered_without_scanning() {
    let (ctx, scanned) = failing_context();
    let base = parse(&ctx, "with x as (select k, v from t) select k, upper(v) as v from x where k > 1").unwrap();
    assert_eq!(base.references(), ["t"]);
    register_lazy(&ctx, "v", base.plan(&ctx).await.unwrap()).unwrap();
    let reader = SqlView::parse("w", Path::new("views/w.sql"), "select count(*) as n from v", &ctx.state()).unwrap();
    let df = reader.plan(&ctx).await.unwrap();
    assert_eq!(df.schema().fields().len(), 1);
    // The reader scans the view by name: the view is not inlined.
    let plan = df.logical_plan().display_indent().to_string();
    assert!(plan.contains("TableScan: v"), "{plan}");
    assert_eq!(scans(&scanned), 0);
}

#[tokio::test]
async fn the_registry_plans_sql_views_after_the_views_they_name() {
    let (ctx, scanned) = failing_context();
    let mut registry = ViewRegistry::new();
    // Added readers first: the registry orders them.
    for (name, sql) in [
        ("c", "select a.k from a join b on a.k = b.k"),
        ("b", "select k from a where k > 2"),
        ("a", "select k, v from t"),
    ] {
        registry.add_sql(SqlView::parse(name, Path::new("views/x.sql"), sql, &ctx.state()).unwrap()).unwrap();
    }
    let duplicate = SqlView::parse("a", Path::new("views/a.sql"), "select 1", &ctx.state()).unwrap();
    assert!(matches!(registry.add_sql(duplicate), Err(ViewError::Duplicate { .. })));
    let registered = registry.register(&ctx).await.unwrap();
    let order: Vec<&str> = registered.views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(order, ["a", "b", "c"]);
    assert_eq!(registered.get("c").unwrap().depends_on, ["a", "b"]);
    assert!(registered.mismatches().is_empty(), "SQL views declare nothing");
    assert_eq!(scans(&scanned), 0);

    let mut cyclic = ViewRegistry::new();
    for (name, sql) in [("p", "select * from q"), ("q", "select * from p")] {
        cyclic.add_sql(SqlView::parse(name, Path::new("views/x.sql"), sql, &ctx.state()).unwrap()).unwrap();
    }
    let message = cyclic.register(&ctx).await.unwrap_err().to_string();
    assert!(message.contains("cycle") && message.contains('p') && message.contains('q'), "{message}");
}

#[tokio::test]
async fn errors_carry_the_file_line_and_column() {
    let (ctx, _) = failing_context();
    let check = |e: ViewError, line: u64, column: u64| match e {
        ViewError::Invalid { line: l, column: c, ref file, .. } => {
            assert_eq!((l, c), (Some(line), Some(column)), "{e}");
            let shown = e.to_string();
            assert!(shown.contains(&format!("{}:{line}:{column}", file.display())), "{shown}");
        }
        other => panic!("expected an invalid view, got {other:?}"),
    };
    check(parse(&ctx, "select k\nfrom t\nwhere )").unwrap_err(), 3, 7);
    check(parse(&ctx, "select k\n  from t\n  where k >").unwrap_err(), 3, 12);
    check(parse(&ctx, "select k\nfrom nope").unwrap().plan(&ctx).await.unwrap_err(), 2, 6);
    check(parse(&ctx, "select k,\n  nope\nfrom t").unwrap().plan(&ctx).await.unwrap_err(), 2, 3);
}

#[tokio::test]
async fn filters_are_parsed_as_expressions_over_the_view() {
    let (ctx, scanned) = failing_context();
    let df = ctx.table("t").await.unwrap();
    let filtered = filter("t", df.clone(), "k > 3 and v = 'x'' or ''1''=''1'").unwrap();
    let plan = filtered.logical_plan().display_indent().to_string();
    // The quote stays inside one string literal: the filter has two conjuncts, no OR.
    assert!(plan.contains("Filter: t.k > Int64(3) AND t.v = Utf8(\"x' or '1'='1\")"), "{plan}");
    for (fragment, expected) in [
        ("k > 1) or (1 = 1", "k > 1) or (1 = 1"),
        ("nope > 1", "nope"),
        ("k + 1", "boolean"),
        ("k in (select k from t)", "k in (select k from t)"),
        ("k > 1; select 1", "k > 1; select 1"),
    ] {
        let message = parse_filter("t", &df, fragment).unwrap_err().to_string();
        assert!(message.starts_with("view `t`: filter `") && message.contains(expected), "{fragment}: {message}");
    }
    assert_eq!(scans(&scanned), 0);
}

/// `@>` on operands that are not arrays: DataFusion plans it, optimizes it and builds its
/// physical plan, and fails only when a batch is evaluated ("Binary operator … is not
/// supported in the physical expr"). A view is refused when it is planned instead, naming
/// its file; `@>` on arrays (rewritten to `array_has_all` by the SQL planner) still runs.
#[tokio::test]
async fn contains_operator_on_non_arrays_is_refused_at_plan_time() {
    let ctx = SessionContext::new();
    ctx.sql("CREATE TABLE n (a BIGINT, b BIGINT, s VARCHAR, t VARCHAR) AS VALUES (1, 2, 'ab', 'a')")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    for sql in ["select a @> b as x from n", "select s <@ t as x from n", "select 1 @> 2 as x"] {
        // DataFusion alone: the physical plan builds; execution fails.
        let physical = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let executed = datafusion::physical_plan::collect(physical, ctx.task_ctx()).await.unwrap_err();
        assert!(executed.to_string().contains("is not supported in the physical expr"), "{sql}: {executed}");
        // As a view: refused when planned.
        let view = SqlView::parse("v", Path::new("views/v.sql"), sql, &ctx.state()).unwrap();
        let refused = view.plan(&ctx).await.unwrap_err().to_string();
        assert!(refused.starts_with("view `v` (views/v.sql): operator `"), "{sql}: {refused}");
        assert!(refused.contains(" cannot run: DataFusion runs `@>` and `<@` on arrays only"), "{sql}: {refused}");
    }
    let arrays = "select make_array(a) @> make_array(b) as x from n";
    let view = SqlView::parse("v", Path::new("views/v.sql"), arrays, &ctx.state()).unwrap();
    let rows = view.plan(&ctx).await.unwrap().collect().await.unwrap();
    assert_eq!(rows[0].num_rows(), 1);
}
