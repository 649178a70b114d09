//! Contracts on TPC-H data generated in memory: the demo's keys hold, each kind of violation
//! is counted and sampled exactly, bad declarations register nothing, and the constraint
//! tables of `information_schema` answer SQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, RecordBatchReader};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, TableFunctionArgs, TableFunctionImpl, TableProvider,
};
use datafusion::common::{Constraint, Constraints, ScalarValue, TableReference};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use dfpipe_contract::{
    CheckOptions, CheckReport, CheckResult, ConstraintKind, Contract, ContractError, Fusion, check_with, register,
};
use serde_json::json;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator, PartSuppGenerator,
    RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow, SupplierArrow,
};

const SCALE_FACTOR: f64 = 0.01;

/// A session with the eight TPC-H tables at `SCALE_FACTOR` as in-memory tables.
fn tpch() -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
    let sf = SCALE_FACTOR;
    let readers: Vec<(&str, Box<dyn RecordBatchReader>)> = vec![
        ("customer", Box::new(CustomerArrow::new(CustomerGenerator::new(sf, 1, 1)))),
        ("lineitem", Box::new(LineItemArrow::new(LineItemGenerator::new(sf, 1, 1)))),
        ("nation", Box::new(NationArrow::new(NationGenerator::new(sf, 1, 1)))),
        ("orders", Box::new(OrderArrow::new(OrderGenerator::new(sf, 1, 1)))),
        ("part", Box::new(PartArrow::new(PartGenerator::new(sf, 1, 1)))),
        ("partsupp", Box::new(PartSuppArrow::new(PartSuppGenerator::new(sf, 1, 1)))),
        ("region", Box::new(RegionArrow::new(RegionGenerator::new(sf, 1, 1)))),
        ("supplier", Box::new(SupplierArrow::new(SupplierGenerator::new(sf, 1, 1)))),
    ];
    for (name, reader) in readers {
        let schema = reader.schema();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![batches]).unwrap())).unwrap();
    }
    ctx
}

/// The demo's contracts, from `examples/tpch/dfpipe.toml`.
fn demo_contracts() -> Vec<Contract> {
    #[derive(serde::Deserialize)]
    struct Spec {
        contracts: BTreeMap<String, Contract>,
    }
    let spec: Spec = toml::from_str(include_str!("../../../examples/tpch/dfpipe.toml")).unwrap();
    spec.contracts
        .into_iter()
        .map(|(relation, mut contract)| {
            contract.relation = relation;
            contract
        })
        .collect()
}

/// Replaces `name` with the result of `sql`, materialized.
async fn replace(ctx: &SessionContext, name: &str, sql: &str) {
    let df = ctx.sql(sql).await.unwrap();
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.unwrap();
    ctx.deregister_table(name).unwrap();
    ctx.register_table(name, Arc::new(MemTable::try_new(Arc::new(schema), vec![batches]).unwrap())).unwrap();
}

/// Checks fused and one query at a time, asserts both agree, and returns the report.
async fn check(ctx: &SessionContext, contracts: &[Contract]) -> CheckReport {
    let fused = CheckOptions { samples: 3, fusion: Fusion::PerRelation };
    let report = check_with(ctx, contracts, &fused).await.unwrap();
    let single = check_with(ctx, contracts, &CheckOptions { fusion: Fusion::PerConstraint, ..fused }).await.unwrap();
    assert_eq!(report, single);
    report
}

/// The violated results, as (relation, constraint, columns, violations, samples).
fn failures(report: &CheckReport) -> Vec<(String, ConstraintKind, String, u64, serde_json::Value)> {
    report
        .results
        .iter()
        .filter(|r| r.violations > 0)
        .map(|r| (r.relation.clone(), r.constraint, r.columns.join(","), r.violations, json!(r.samples)))
        .collect()
}

async fn sql(ctx: &SessionContext, query: &str) -> String {
    pretty_format_batches(&ctx.sql(query).await.unwrap().collect().await.unwrap()).unwrap().to_string()
}

async fn count(ctx: &SessionContext, query: &str) -> u64 {
    ctx.sql(query).await.unwrap().count().await.unwrap() as u64
}

fn declaration_error(result: Result<(), ContractError>) -> String {
    match result {
        Err(e @ ContractError::Declaration { .. }) => e.to_string(),
        other => panic!("expected a declaration error, got {other:?}"),
    }
}

#[tokio::test]
async fn tpch_keys_hold_on_generated_data() {
    let ctx = tpch();
    let contracts = demo_contracts();
    register(&ctx, &contracts).await.unwrap();
    let report = check(&ctx, &contracts).await;
    assert!(report.passed, "{report:#?}");
    let kinds = |kind: ConstraintKind| report.results.iter().filter(|r| r.constraint == kind).count();
    assert_eq!(
        (kinds(ConstraintKind::PrimaryKey), kinds(ConstraintKind::ForeignKey), kinds(ConstraintKind::NotNull)),
        (8, 8, 10)
    );
    assert!(report.drift.is_empty());
}

#[tokio::test]
async fn keys_are_provider_constraints_the_planner_uses() {
    let ctx = tpch();
    register(&ctx, &demo_contracts()).await.unwrap();
    let lineitem = ctx.table_provider("lineitem").await.unwrap();
    assert_eq!(lineitem.constraints(), Some(&Constraints::new_unverified(vec![Constraint::PrimaryKey(vec![0, 3])])));
    // Selecting a column that is not grouped is only allowed through the key's functional
    // dependency.
    let query = "SELECT o_orderkey, o_custkey FROM orders WHERE o_orderkey < 4 GROUP BY o_orderkey ORDER BY 1";
    assert!(sql(&ctx, query).await.contains("| 1          | 370       |"));
    assert!(tpch().sql(query).await.is_err());
}

#[tokio::test]
async fn duplicate_key() {
    let ctx = tpch();
    replace(&ctx, "orders", "SELECT * FROM orders UNION ALL SELECT * FROM orders WHERE o_orderkey IN (7, 32)").await;
    let contracts = demo_contracts();
    register(&ctx, &contracts).await.unwrap();
    let report = check(&ctx, &contracts).await;
    assert!(!report.passed);
    assert_eq!(
        failures(&report),
        vec![(
            "orders".to_owned(),
            ConstraintKind::PrimaryKey,
            "o_orderkey".to_owned(),
            2,
            json!([{"o_orderkey": 7, "rows": 2}, {"o_orderkey": 32, "rows": 2}])
        )]
    );
}

#[tokio::test]
async fn composite_key_duplicate() {
    let ctx = tpch();
    replace(
        &ctx,
        "lineitem",
        "SELECT * FROM lineitem UNION ALL SELECT * FROM lineitem WHERE l_orderkey = 1 AND l_linenumber = 1 \
         UNION ALL SELECT * FROM lineitem WHERE l_orderkey = 1 AND l_linenumber = 1 \
         UNION ALL SELECT * FROM lineitem WHERE l_orderkey = 3 AND l_linenumber = 2",
    )
    .await;
    let contracts = demo_contracts();
    register(&ctx, &contracts).await.unwrap();
    let report = check(&ctx, &contracts).await;
    assert_eq!(
        failures(&report),
        vec![(
            "lineitem".to_owned(),
            ConstraintKind::PrimaryKey,
            "l_orderkey,l_linenumber".to_owned(),
            2,
            json!([{"l_orderkey": 1, "l_linenumber": 1, "rows": 3}, {"l_orderkey": 3, "l_linenumber": 2, "rows": 2}])
        )]
    );
}

#[tokio::test]
async fn null_key() {
    let ctx = tpch();
    let lines_of_7 = count(&ctx, "SELECT 1 FROM lineitem WHERE l_orderkey = 7").await;
    assert!(lines_of_7 > 0);
    replace(
        &ctx,
        "orders",
        "SELECT CASE WHEN o_orderkey = 7 THEN NULL ELSE o_orderkey END AS o_orderkey, \
         o_custkey, o_orderstatus, o_totalprice, o_orderdate, o_orderpriority, o_clerk, o_shippriority, o_comment \
         FROM orders",
    )
    .await;
    let contracts = demo_contracts();
    register(&ctx, &contracts).await.unwrap();
    let report = check(&ctx, &contracts).await;
    let failed = failures(&report);
    assert_eq!(failed.len(), 2, "{failed:#?}");
    // Order 7 lost its key: one null key, and its line items became orphans.
    assert_eq!(&failed[0].0, "lineitem");
    assert_eq!(
        (failed[0].1, failed[0].2.as_str(), failed[0].3),
        (ConstraintKind::ForeignKey, "l_orderkey", lines_of_7)
    );
    assert_eq!(failed[0].4[0], json!({"l_orderkey": 7, "l_linenumber": 1}));
    assert_eq!(
        (failed[1].0.as_str(), failed[1].1, failed[1].2.as_str(), failed[1].3),
        ("orders", ConstraintKind::NotNull, "o_orderkey", 1)
    );
    let sample = &failed[1].4[0];
    assert_eq!((&sample["o_orderkey"], &sample["o_custkey"]), (&json!(null), &json!(392)));
    // A null is not a duplicate.
    let pk =
        report.results.iter().find(|r| r.relation == "orders" && r.constraint == ConstraintKind::PrimaryKey).unwrap();
    assert_eq!(pk.violations, 0);
}

#[tokio::test]
async fn orphan_foreign_key() {
    let ctx = tpch();
    replace(
        &ctx,
        "orders",
        "SELECT o_orderkey, CASE WHEN o_orderkey IN (1, 2) THEN 999999 ELSE o_custkey END AS o_custkey, \
         o_orderstatus, o_totalprice, o_orderdate, o_orderpriority, o_clerk, o_shippriority, o_comment FROM orders",
    )
    .await;
    let contracts = demo_contracts();
    register(&ctx, &contracts).await.unwrap();
    let report = check(&ctx, &contracts).await;
    assert_eq!(
        failures(&report),
        vec![(
            "orders".to_owned(),
            ConstraintKind::ForeignKey,
            "o_custkey".to_owned(),
            2,
            json!([{"o_orderkey": 1, "o_custkey": 999_999}, {"o_orderkey": 2, "o_custkey": 999_999}])
        )]
    );
}

/// Two-column integer keys are joined on one packed value inside `0..2^31` and on both
/// columns outside it: negative and large values, and a pair whose packed value would
/// collide with an in-range one, count exactly as SQL says.
#[tokio::test]
async fn packed_two_column_foreign_key_is_exact_at_the_range_edges() {
    let ctx = SessionContext::new();
    replace(
        &ctx,
        "p",
        "SELECT arrow_cast(a, 'Int64') AS a, arrow_cast(b, 'Int64') AS b FROM (VALUES (1, 2), (-1, 5), (3000000000, 1), \
         (2147483647, 2147483647), (0, 0)) AS v(a, b)",
    )
    .await;
    replace(
        &ctx,
        "c",
        "SELECT arrow_cast(x, 'Int64') AS x, arrow_cast(y, 'Int64') AS y FROM (VALUES (1, 2), (-1, 5), (3000000000, 1), \
         (2147483647, 2147483647), (0, 0), (1, 2), (2, 1), (-1, 2), (3000000000, 2), (0, 4294967298), \
         (2147483648, 0), (0, NULL)) AS v(x, y)",
    )
    .await;
    let contracts =
        vec![Contract::new("p").primary_key(["a", "b"]), Contract::new("c").foreign_key(["x", "y"], "p", ["a", "b"])];
    register(&ctx, &contracts).await.unwrap();
    let report = check(&ctx, &contracts).await;
    assert_eq!(
        failures(&report),
        vec![(
            "c".to_owned(),
            ConstraintKind::ForeignKey,
            "x,y".to_owned(),
            5,
            json!([{"x": -1, "y": 2}, {"x": 0, "y": 4_294_967_298_i64}, {"x": 2, "y": 1}])
        )]
    );
}

#[tokio::test]
async fn not_null_and_unique_on_a_nullable_table() {
    let ctx = SessionContext::new();
    replace(
        &ctx,
        "t",
        "SELECT * FROM (VALUES (1, 'a', 10), (2, 'a', NULL), (3, NULL, NULL), (4, NULL, 40), (5, 'b', 50)) AS v(id, code, amount)",
    )
    .await;
    let contracts = vec![Contract::new("t").primary_key(["id"]).unique(["code"]).not_null(["amount"])];
    register(&ctx, &contracts).await.unwrap();
    let report = check(&ctx, &contracts).await;
    // Nulls are distinct in a unique key; 'a' repeats.
    assert_eq!(
        failures(&report),
        vec![
            ("t".to_owned(), ConstraintKind::Unique, "code".to_owned(), 1, json!([{"code": "a", "rows": 2}])),
            (
                "t".to_owned(),
                ConstraintKind::NotNull,
                "amount".to_owned(),
                2,
                json!([{"id": 2, "code": "a", "amount": null}, {"id": 3, "code": null, "amount": null}])
            ),
        ]
    );
}

#[tokio::test]
async fn bad_declarations_register_nothing() {
    let ctx = tpch();
    let customer = || Contract::new("customer").primary_key(["c_custkey"]);
    register(&ctx, &[Contract::new("region").primary_key(["r_regionkey"])]).await.unwrap();
    let cases: Vec<(Contract, &str)> = vec![
        (
            Contract::new("orders").primary_key(["o_nokey"]),
            "contract on `orders`: unknown column `o_nokey` in primary_key",
        ),
        (Contract::new("nowhere").primary_key(["id"]), "contract on `nowhere`: unknown relation `nowhere`"),
        (
            Contract::new("orders").foreign_key(["o_custkey"], "nowhere", ["id"]),
            "foreign key to `nowhere`: unknown relation `nowhere`",
        ),
        (
            Contract::new("orders").foreign_key(["o_custkey"], "customer", ["c_nationkey"]),
            "foreign key to `customer`: (c_nationkey) is not a key of `customer`",
        ),
        (
            Contract::new("orders").foreign_key(["o_orderstatus"], "customer", ["c_custkey"]),
            "`o_orderstatus` (Utf8View) cannot be compared with `customer.c_custkey` (Int64)",
        ),
        (Contract::new("orders").primary_key(Vec::<String>::new()), "primary_key is empty"),
        (Contract::new("orders").unique(Vec::<String>::new()), "unique is empty"),
        (Contract::new("orders").foreign_key(Vec::<String>::new(), "customer", ["c_custkey"]), "is empty"),
        (
            Contract::new("orders").foreign_key(["o_custkey"], "customer", ["c_custkey", "c_nationkey"]),
            "1 column(s) referencing 2",
        ),
        (Contract::new("orders").column("o_orderkey", "BIGINT"), "columns.o_orderkey: `BIGINT` is not an Arrow type"),
    ];
    for (bad, expected) in cases {
        let message = declaration_error(register(&ctx, &[customer(), bad]).await);
        assert!(message.contains(expected), "{message}\n  does not contain: {expected}");
        // Nothing of the batch was registered: customer has no constraints, and only region's
        // key is listed.
        let constraints = ctx.table_provider("customer").await.unwrap().constraints().cloned().unwrap_or_default();
        assert_eq!(constraints, Constraints::default());
        let listed = sql(&ctx, "SELECT constraint_name FROM information_schema.table_constraints").await;
        assert!(listed.contains("region_pkey") && !listed.contains("customer"), "{listed}");
    }
}

#[tokio::test]
async fn information_schema_lists_the_constraints() {
    let ctx = tpch();
    register(&ctx, &demo_contracts()).await.unwrap();
    let keys = sql(
        &ctx,
        "SELECT table_name, constraint_name, constraint_type FROM information_schema.table_constraints \
         WHERE constraint_type <> 'CHECK' AND table_name IN ('lineitem', 'partsupp') ORDER BY 1, 2",
    )
    .await;
    assert_eq!(
        keys,
        [
            "+------------+-----------------------------------+-----------------+",
            "| table_name | constraint_name                   | constraint_type |",
            "+------------+-----------------------------------+-----------------+",
            "| lineitem   | lineitem_l_orderkey_fkey          | FOREIGN KEY     |",
            "| lineitem   | lineitem_l_partkey_l_suppkey_fkey | FOREIGN KEY     |",
            "| lineitem   | lineitem_pkey                     | PRIMARY KEY     |",
            "| partsupp   | partsupp_pkey                     | PRIMARY KEY     |",
            "| partsupp   | partsupp_ps_partkey_fkey          | FOREIGN KEY     |",
            "| partsupp   | partsupp_ps_suppkey_fkey          | FOREIGN KEY     |",
            "+------------+-----------------------------------+-----------------+",
        ]
        .join("\n")
    );
    let counts = sql(&ctx, COUNT_BY_TYPE).await;
    assert!(counts.contains("| CHECK           | 10 |"), "{counts}");
    assert!(counts.contains("| FOREIGN KEY     | 8  |"), "{counts}");
    assert!(counts.contains("| PRIMARY KEY     | 8  |"), "{counts}");

    // A composite foreign key, its columns and the key it references, by joining the three.
    let fk = sql(
        &ctx,
        "SELECT k.column_name, k.ordinal_position, k.position_in_unique_constraint, r.unique_constraint_name, \
         u.table_name AS referenced_table, u.column_name AS referenced_column \
         FROM information_schema.referential_constraints r \
         JOIN information_schema.key_column_usage k ON k.constraint_name = r.constraint_name \
         JOIN information_schema.key_column_usage u \
           ON u.constraint_name = r.unique_constraint_name AND u.ordinal_position = k.position_in_unique_constraint \
         WHERE r.constraint_name = 'lineitem_l_partkey_l_suppkey_fkey' ORDER BY k.ordinal_position",
    )
    .await;
    assert_eq!(fk, [
        "+-------------+------------------+-------------------------------+------------------------+------------------+-------------------+",
        "| column_name | ordinal_position | position_in_unique_constraint | unique_constraint_name | referenced_table | referenced_column |",
        "+-------------+------------------+-------------------------------+------------------------+------------------+-------------------+",
        "| l_partkey   | 1                | 1                             | partsupp_pkey          | partsupp         | ps_partkey        |",
        "| l_suppkey   | 2                | 2                             | partsupp_pkey          | partsupp         | ps_suppkey        |",
        "+-------------+------------------+-------------------------------+------------------------+------------------+-------------------+",
    ]
    .join("\n"));
    let checks = sql(
        &ctx,
        "SELECT constraint_name, check_clause FROM information_schema.check_constraints \
         WHERE constraint_name LIKE 'orders%'",
    )
    .await;
    assert!(checks.contains("| orders_o_orderkey_not_null | o_orderkey IS NOT NULL |"), "{checks}");

    // DataFusion's own tables and SHOW statements still work, and list the new tables.
    let tables = sql(&ctx, "SHOW TABLES").await;
    for table in
        ["table_constraints", "key_column_usage", "referential_constraints", "columns", "df_settings", "lineitem"]
    {
        assert!(tables.contains(&format!("| {table}")), "{table} missing from\n{tables}");
    }
    let columns = sql(&ctx, "SHOW COLUMNS FROM region").await;
    assert!(columns.contains("r_regionkey") && columns.contains("Int64"), "{columns}");
    assert!(sql(&ctx, "SELECT count(*) FROM information_schema.df_settings").await.contains('|'));
}

#[tokio::test]
async fn registering_again_replaces_a_contract() {
    let ctx = tpch();
    register(&ctx, &[Contract::new("nation").unique(["n_name"])]).await.unwrap();
    register(&ctx, &[Contract::new("nation").primary_key(["n_nationkey"])]).await.unwrap();
    let listed = sql(&ctx, "SELECT constraint_name FROM information_schema.table_constraints ORDER BY 1").await;
    assert!(listed.contains("nation_pkey") && !listed.contains("n_name"), "{listed}");
    let nation = ctx.table_provider("nation").await.unwrap();
    assert_eq!(nation.constraints(), Some(&Constraints::new_unverified(vec![Constraint::PrimaryKey(vec![0])])));
}

#[tokio::test]
async fn drift_reports_added_removed_and_retyped_columns() {
    let ctx = tpch();
    let exact = Contract::new("region")
        .primary_key(["r_regionkey"])
        .column("r_regionkey", "Int64")
        .column("r_name", "Utf8") // Utf8View is the same logical type
        .column("r_comment", "Utf8");
    register(&ctx, std::slice::from_ref(&exact)).await.unwrap();
    let report = check(&ctx, std::slice::from_ref(&exact)).await;
    assert!(report.passed && report.drift.is_empty(), "{report:#?}");

    let drifted =
        Contract::new("region").column("r_regionkey", "Int32").column("r_name", "Utf8").column("r_population", "Int64");
    let report = check(&ctx, std::slice::from_ref(&drifted)).await;
    assert!(!report.passed);
    assert_eq!(
        serde_json::to_value(&report.drift).unwrap(),
        json!([{
            "relation": "region",
            "added": [{"column": "r_comment", "declared": null, "actual": "Utf8View"}],
            "removed": [{"column": "r_population", "declared": "Int64", "actual": null}],
            "retyped": [{"column": "r_regionkey", "declared": "Int32", "actual": "Int64"}],
        }])
    );

    // An added column alone is reported, and does not fail the check.
    let added = Contract::new("region").column("r_regionkey", "Int64").column("r_name", "Utf8View");
    let report = check(&ctx, std::slice::from_ref(&added)).await;
    assert!(report.passed);
    assert_eq!(report.drift[0].added.len(), 1);
}

/// Every table `information_schema.tables` lists under `information_schema`, in every
/// catalog, read as the environment snapshot reads them (`SessionContext::table`).
async fn read_every_information_schema_table(ctx: &SessionContext) -> Vec<String> {
    let listing = ctx
        .sql(
            "SELECT table_catalog, table_name FROM information_schema.tables \
             WHERE table_schema = 'information_schema' ORDER BY 1, 2",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut read = Vec::new();
    for batch in &listing {
        let (catalogs, names) = (batch.column(0), batch.column(1));
        for row in 0..batch.num_rows() {
            let catalog = ScalarValue::try_from_array(catalogs, row).unwrap().to_string();
            let name = ScalarValue::try_from_array(names, row).unwrap().to_string();
            let table = TableReference::full(catalog.as_str(), "information_schema", name.as_str());
            let df = ctx.table(table).await.unwrap_or_else(|e| panic!("{catalog}.information_schema.{name}: {e}"));
            df.collect().await.unwrap_or_else(|e| panic!("{catalog}.information_schema.{name}: {e}"));
            read.push(format!("{catalog}.{name}"));
        }
    }
    read
}

fn primary_keys(listed: &str) -> bool {
    listed.contains("| PRIMARY KEY     | 8  |")
}

const COUNT_BY_TYPE: &str =
    "SELECT constraint_type, count(*) AS n FROM information_schema.table_constraints GROUP BY 1 ORDER BY 1";

/// A catalog registered after `register` gets its own `information_schema`: its tables are
/// listed, every listed `information_schema` table of every catalog can be read, and the
/// constraint tables still answer.
#[tokio::test]
async fn a_catalog_registered_later_gets_information_schema() {
    let ctx = tpch();
    register(&ctx, &demo_contracts()).await.unwrap();
    let catalog = Arc::new(MemoryCatalogProvider::new());
    catalog.register_schema("sales", Arc::new(MemorySchemaProvider::new())).unwrap();
    ctx.register_catalog("warehouse", catalog);
    let batch = RecordBatch::try_from_iter([("units", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)]).unwrap();
    ctx.register_batch("warehouse.sales.stock", batch).unwrap();

    let tables = sql(
        &ctx,
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = 'warehouse' ORDER BY 1, 2",
    )
    .await;
    assert!(tables.contains("| sales              | stock "), "{tables}");
    assert!(tables.contains("| information_schema | table_constraints "), "{tables}");
    let read = read_every_information_schema_table(&ctx).await;
    assert!(read.contains(&"warehouse.table_constraints".to_owned()), "{read:?}");
    assert!(read.contains(&"warehouse.columns".to_owned()), "{read:?}");
    let columns =
        sql(&ctx, "SELECT column_name FROM warehouse.information_schema.columns WHERE table_name = 'stock'").await;
    assert!(columns.contains("units"), "{columns}");
    assert!(primary_keys(&sql(&ctx, COUNT_BY_TYPE).await));
    // Contracts registered afterwards see the new catalog's relations.
    register(&ctx, &[Contract::new("warehouse.sales.stock").primary_key(["units"])]).await.unwrap();
    let keys =
        sql(&ctx, "SELECT constraint_name FROM information_schema.table_constraints WHERE table_name = 'stock'").await;
    assert!(keys.contains("stock_pkey"), "{keys}");
}

/// A table function registered after `register` is listed in `routines` (and one removed
/// is not), like DataFusion's own `information_schema` does, and the constraint tables
/// still answer.
#[tokio::test]
async fn a_table_function_registered_later_is_listed() {
    let ctx = tpch();
    register(&ctx, &demo_contracts()).await.unwrap();
    let region = ctx.table_provider("region").await.unwrap();
    ctx.register_udtf("regions_again", Arc::new(Fixed(region)));
    let routines =
        "SELECT routine_name, function_type FROM information_schema.routines WHERE routine_name = 'regions_again'";
    let listed = sql(&ctx, routines).await;
    assert!(listed.contains("| regions_again | TABLE "), "{listed}");
    assert_eq!(count(&ctx, "SELECT * FROM regions_again()").await, 5);
    assert!(primary_keys(&sql(&ctx, COUNT_BY_TYPE).await));
    read_every_information_schema_table(&ctx).await;
    ctx.deregister_udtf("regions_again");
    assert!(!sql(&ctx, routines).await.contains("regions_again"));
}

/// A table function that returns one table, whatever its arguments.
#[derive(Debug)]
struct Fixed(Arc<dyn TableProvider>);

impl TableFunctionImpl for Fixed {
    fn call_with_args(&self, _args: TableFunctionArgs) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        Ok(Arc::clone(&self.0))
    }
}

/// `datafusion.catalog.information_schema` set back to `true` (which makes DataFusion answer
/// `information_schema` itself) keeps the constraint tables in SQL: queried, aliased,
/// joined, and listed by `SHOW TABLES`.
#[tokio::test]
async fn information_schema_turned_on_again_keeps_the_constraint_tables() {
    let ctx = tpch();
    register(&ctx, &demo_contracts()).await.unwrap();
    ctx.sql("SET datafusion.catalog.information_schema = true").await.unwrap().collect().await.unwrap();
    assert!(ctx.state().config().information_schema());
    assert!(primary_keys(&sql(&ctx, COUNT_BY_TYPE).await));
    let region = sql(
        &ctx,
        "SELECT t.constraint_name, k.column_name FROM information_schema.table_constraints AS t \
         JOIN datafusion.information_schema.key_column_usage k ON k.constraint_name = t.constraint_name \
         WHERE t.table_name = 'region'",
    )
    .await;
    assert!(region.contains("| region_pkey     | r_regionkey "), "{region}");
    let tables = sql(&ctx, "SHOW TABLES").await;
    assert!(tables.contains("| table_constraints ") && tables.contains("| lineitem "), "{tables}");
    let columns = sql(&ctx, "SHOW COLUMNS FROM region").await;
    assert!(columns.contains("r_regionkey"), "{columns}");
    assert!(sql(&ctx, "SELECT count(*) FROM information_schema.df_settings").await.contains('|'));
}

/// Constraint kinds read as `dfpipe check --json` shows them, and display the same.
#[test]
fn constraint_kinds_serialize_in_snake_case() {
    let kinds =
        [ConstraintKind::PrimaryKey, ConstraintKind::Unique, ConstraintKind::NotNull, ConstraintKind::ForeignKey];
    assert_eq!(serde_json::to_value(kinds).unwrap(), json!(["primary_key", "unique", "not_null", "foreign_key"]));
    assert_eq!(kinds.map(|k| k.to_string()), ["primary_key", "unique", "not_null", "foreign_key"]);
    assert_eq!(format!("{:<12}|", ConstraintKind::Unique), "unique      |");
    let result = CheckResult {
        relation: "orders".to_owned(),
        constraint: ConstraintKind::PrimaryKey,
        columns: vec!["o_orderkey".to_owned()],
        violations: 3,
        samples: vec![BTreeMap::from([("o_orderkey".to_owned(), json!(7))])],
    };
    assert_eq!(
        serde_json::to_value(&result).unwrap(),
        json!({"relation": "orders", "constraint": "primary_key", "columns": ["o_orderkey"], "violations": 3,
               "samples": [{"o_orderkey": 7}]})
    );
}
