//! Criterion bench: every contract check on TPC-H `lineitem` and `orders` at scale factor 1,
//! fused into one query per relation, against one query per constraint and the bare
//! `GROUP BY` over the primary key.
//!
//! The data is generated in memory by the demo (tpchgen-arrow) and registered as `MemTable`s with
//! one partition per core. Set `DFPIPE_BENCH_SF` to change the scale factor.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::arrow::array::{RecordBatch, RecordBatchReader};
use datafusion::datasource::MemTable;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::prelude::{SessionConfig, SessionContext, col, lit};
use dfpipe_contract::{CheckOptions, Contract, Fusion, check_with, register};

fn reader(table: &str, sf: f64, part: i32, parts: i32) -> Box<dyn RecordBatchReader + Send> {
    dfpipe_demo::batches(table, sf, part, parts).expect("a TPC-H table")
}

/// The TPC-H tables the checks read, generated in parallel, one partition per core, with the
/// demo's contracts registered.
fn session(sf: f64) -> (SessionContext, Vec<Contract>) {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(cores));
    for table in ["customer", "lineitem", "orders", "part", "partsupp", "supplier"] {
        let partitions: Vec<Vec<RecordBatch>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..=cores as i32)
                .map(|part| {
                    scope.spawn(move || {
                        reader(table, sf, part, cores as i32).map(|b| b.expect("a TPC-H batch")).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("the generator")).collect()
        });
        let schema = reader(table, sf, 1, 1).schema();
        ctx.register_table(table, Arc::new(MemTable::try_new(schema, partitions).expect("a table")))
            .expect("registered");
    }
    let contracts = vec![
        Contract::new("customer").primary_key(["c_custkey"]),
        Contract::new("part").primary_key(["p_partkey"]),
        Contract::new("supplier").primary_key(["s_suppkey"]),
        Contract::new("partsupp").primary_key(["ps_partkey", "ps_suppkey"]),
        Contract::new("orders").primary_key(["o_orderkey"]).foreign_key(["o_custkey"], "customer", ["c_custkey"]),
        Contract::new("lineitem")
            .primary_key(["l_orderkey", "l_linenumber"])
            .foreign_key(["l_orderkey"], "orders", ["o_orderkey"])
            .foreign_key(["l_partkey", "l_suppkey"], "partsupp", ["ps_partkey", "ps_suppkey"]),
    ];
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(register(&ctx, &contracts)).expect("valid contracts");
    (ctx, contracts)
}

fn contracts(c: &mut Criterion) {
    let sf: f64 = std::env::var("DFPIPE_BENCH_SF").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let (ctx, contracts) = session(sf);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    for relation in ["orders", "lineitem"] {
        let contract = contracts.iter().find(|c| c.relation == relation).expect("declared").clone();
        let mut group = c.benchmark_group(format!("contract_{relation}_sf{sf}"));
        group.sample_size(10);
        group.bench_function("bare_group_by_pk", |b| {
            b.iter(|| {
                runtime
                    .block_on(async {
                        let key = contract.key_columns().iter().map(|k| col(k.as_str())).collect();
                        let groups = ctx
                            .table(relation)
                            .await?
                            .aggregate(key, vec![count(lit(1i64)).alias("rows")])?
                            .filter(col("rows").gt(lit(1i64)))?;
                        groups.count().await
                    })
                    .expect("the GROUP BY")
            });
        });
        for (name, fusion) in [("fused", Fusion::PerRelation), ("one_query_per_constraint", Fusion::PerConstraint)] {
            let options = CheckOptions { samples: 3, fusion };
            group.bench_function(name, |b| {
                b.iter(|| {
                    let report = runtime
                        .block_on(check_with(&ctx, std::slice::from_ref(&contract), &options))
                        .expect("the checks");
                    assert!(report.passed, "{report:?}");
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, contracts);
criterion_main!(benches);
