//! Fuzzing of the view SQL entry, [`SqlView::parse`] then [`SqlView::plan`]: random soups of
//! SQL tokens, and the demo's real TPC-H queries with tokens dropped, duplicated, swapped or
//! replaced, planned over empty tables of the TPC-H schema. Nothing panics, and every error
//! names the view.
//!
//! `DFPIPE_FUZZ_CASES` sets the number of inputs per strategy (`cargo xtask fuzz`).

use std::path::Path;

use datafusion::prelude::SessionContext;
use dfpipe_views::SqlView;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::common::edits::{self, Edit};

/// The TPC-H tables, each also under its demo staging view's name, empty.
const SCHEMA: &[(&str, &str)] = &[
    ("region", "r_regionkey BIGINT, r_name VARCHAR, r_comment VARCHAR"),
    ("nation", "n_nationkey BIGINT, n_name VARCHAR, n_regionkey BIGINT, n_comment VARCHAR"),
    (
        "supplier",
        "s_suppkey BIGINT, s_name VARCHAR, s_address VARCHAR, s_nationkey BIGINT, s_phone VARCHAR, \
         s_acctbal DECIMAL(15, 2), s_comment VARCHAR",
    ),
    (
        "customer",
        "c_custkey BIGINT, c_name VARCHAR, c_address VARCHAR, c_nationkey BIGINT, c_phone VARCHAR, \
         c_acctbal DECIMAL(15, 2), c_mktsegment VARCHAR, c_comment VARCHAR",
    ),
    (
        "part",
        "p_partkey BIGINT, p_name VARCHAR, p_mfgr VARCHAR, p_brand VARCHAR, p_type VARCHAR, p_size INT, \
         p_container VARCHAR, p_retailprice DECIMAL(15, 2), p_comment VARCHAR",
    ),
    (
        "partsupp",
        "ps_partkey BIGINT, ps_suppkey BIGINT, ps_availqty INT, ps_supplycost DECIMAL(15, 2), ps_comment VARCHAR",
    ),
    (
        "orders",
        "o_orderkey BIGINT, o_custkey BIGINT, o_orderstatus VARCHAR, o_totalprice DECIMAL(15, 2), o_orderdate DATE, \
         o_orderpriority VARCHAR, o_clerk VARCHAR, o_shippriority INT, o_comment VARCHAR",
    ),
    (
        "lineitem",
        "l_orderkey BIGINT, l_partkey BIGINT, l_suppkey BIGINT, l_linenumber INT, l_quantity DECIMAL(15, 2), \
         l_extendedprice DECIMAL(15, 2), l_discount DECIMAL(15, 2), l_tax DECIMAL(15, 2), l_returnflag VARCHAR, \
         l_linestatus VARCHAR, l_shipdate DATE, l_commitdate DATE, l_receiptdate DATE, l_shipinstruct VARCHAR, \
         l_shipmode VARCHAR, l_comment VARCHAR",
    ),
];

/// Tokens of every kind the parser and planner meet, the refused statements' among them.
const TOKENS: &[&str] = &[
    "select",
    "from",
    "where",
    "group by",
    "order by",
    "having",
    "limit",
    "offset",
    "with",
    "recursive",
    "as",
    "on",
    "join",
    "left join",
    "cross join",
    "union all",
    "intersect",
    "except",
    "distinct",
    "exists",
    "in",
    "not",
    "and",
    "or",
    "is null",
    "between",
    "case",
    "when",
    "then",
    "else",
    "end",
    "over (",
    "partition by",
    "rows between",
    "unbounded preceding",
    "current row",
    "cast(",
    "try_cast(",
    "interval '3' month",
    "date '1994-01-01'",
    "extract(",
    "year from",
    "unnest(",
    "make_array(",
    "param_table($list)",
    "$1",
    "$p",
    "?",
    "(",
    ")",
    ",",
    ".",
    ";",
    "*",
    "+",
    "-",
    "/",
    "%",
    "=",
    "<>",
    "<",
    ">=",
    "||",
    "@>",
    "<@",
    "->",
    "->>",
    "::",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "--",
    "/*",
    "*/",
    "'x'",
    "''",
    "0",
    "1",
    "-1",
    "1.5",
    "1e308",
    "1e999",
    "99999999999999999999999999999999999999",
    "null",
    "true",
    "sum(",
    "count(*)",
    "avg(",
    "min(",
    "max(",
    "substring(",
    "row_number()",
    "lag(",
    "first_value(",
    "drop table",
    "create table",
    "insert into",
    "copy",
    "to",
    "set",
    "explain",
    "analyze",
    "values",
    "describe",
    "lineitem",
    "orders",
    "customer",
    "nation",
    "stg_lineitem",
    "stg_orders",
    "information_schema.tables",
    "l_orderkey",
    "l_quantity",
    "l_shipdate",
    "o_orderdate",
    "o_totalprice",
    "c_custkey",
    "n_name",
    "r_name",
    "t",
    "x",
];

/// The demo's view SQL.
fn demo_sql() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tpch/views");
    let mut sql: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap()).collect();
    sql.sort();
    sql
}

/// `sql` cut into tokens: runs of word characters, runs of spaces, single other characters.
fn tokens(sql: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let class = |c: char| {
        if c.is_alphanumeric() || c == '_' {
            0
        } else if c.is_whitespace() {
            1
        } else {
            2
        }
    };
    for c in sql.chars() {
        match tokens.last_mut() {
            Some(last) if class(c) < 2 && last.chars().last().map(class) == Some(class(c)) => last.push(c),
            _ => tokens.push(c.to_string()),
        }
    }
    tokens
}

fn edited(sql: &str, edits: &[Edit<&'static str>]) -> String {
    let mut tokens = tokens(sql);
    for edit in edits {
        edits::apply(&mut tokens, edit, |t| format!(" {t} "), |_, t| (*t).to_owned());
    }
    tokens.concat()
}

struct Fuzzer {
    runtime: tokio::runtime::Runtime,
    ctx: SessionContext,
}

impl Fuzzer {
    fn new() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let ctx = SessionContext::new();
        runtime.block_on(async {
            for (table, columns) in SCHEMA {
                for name in [table.to_string(), format!("stg_{table}")] {
                    ctx.sql(&format!("CREATE TABLE {name} ({columns})")).await.unwrap().collect().await.unwrap();
                }
            }
        });
        Self { runtime, ctx }
    }

    /// Parses and plans `sql` as view `v`: a plan, or an error naming the view.
    fn check(&self, sql: &str) -> Result<bool, TestCaseError> {
        let state = self.ctx.state();
        let planned = match SqlView::parse("v", Path::new("views/v.sql"), sql, &state) {
            Ok(view) => self.runtime.block_on(view.plan(&self.ctx)).map(drop),
            Err(error) => Err(error),
        };
        match planned {
            Ok(()) => Ok(true),
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.contains("view `v`"), "{message}\n--- input:\n{sql}");
                Ok(false)
            }
        }
    }

    /// Runs `strategy`'s inputs through [`Fuzzer::check`]; returns how many there were,
    /// and how many planned.
    fn fuzz(&self, cases: u32, strategy: impl Strategy<Value = String>) -> (usize, usize) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cases = std::env::var("DFPIPE_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
        let config = Config { cases, failure_persistence: None, ..Config::default() };
        let (inputs, planned) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let outcome = TestRunner::new(config).run(&strategy, |sql| {
            inputs.fetch_add(1, Ordering::Relaxed);
            if self.check(&sql)? {
                planned.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        if let Err(failure) = outcome {
            panic!("{failure}");
        }
        (inputs.into_inner(), planned.into_inner())
    }
}

#[test]
fn fuzz_sql_token_soups() {
    let soup = prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.join(" "));
    let select = soup.clone().prop_map(|s| format!("select {s}"));
    let (inputs, _) = Fuzzer::new().fuzz(5000, prop_oneof![soup, select, any::<String>()]);
    assert!(inputs >= 100, "{inputs}");
}

#[test]
fn fuzz_sql_mutated_demo_queries() {
    let sql = demo_sql();
    let strategy = (prop::sample::select(sql), prop::collection::vec(edits::edit(TOKENS), 1..5))
        .prop_map(|(sql, edits)| edited(&sql, &edits));
    let (inputs, planned) = Fuzzer::new().fuzz(4000, strategy);
    // Most mutations break the query; enough of them still plan to reach the planner.
    assert!(planned * 20 >= inputs, "{planned} of {inputs} planned");
}

#[test]
fn the_demo_queries_plan_unmutated() {
    let fuzzer = Fuzzer::new();
    for sql in demo_sql() {
        assert_eq!(edited(&sql, &[]), sql);
        assert!(fuzzer.check(&sql).unwrap(), "{sql}");
    }
}

/// Regression: inputs on which DataFusion's planner panicked, found by the fuzzers. Each is
/// now an error naming the view.
#[test]
fn fuzz_regressions_are_errors() {
    let fuzzer = Fuzzer::new();
    for sql in [
        // Q11 with the select list of its scalar subquery commented out (a scalar subquery
        // of no column, compared in HAVING): index out of bounds in `DFSchema::field`.
        "select ps_partkey, sum(ps_supplycost * ps_availqty) as value from stg_partsupp, stg_supplier, stg_nation \
         where ps_suppkey = s_suppkey and s_nationkey = n_nationkey and n_name = 'GERMANY' group by ps_partkey \
         having sum(ps_supplycost * ps_availqty) > (select--sum(ps_supplycost * ps_availqty) * 0.0001\n from \
         stg_partsupp, stg_supplier, stg_nation where ps_suppkey = s_suppkey and s_nationkey = n_nationkey \
         and n_name = 'GERMANY') order by value desc",
        "select n_name from nation group by n_name having count(*) > (select from region)",
    ] {
        assert!(!fuzzer.check(sql).unwrap(), "{sql}");
    }
}
