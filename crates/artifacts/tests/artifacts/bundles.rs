//! Bundles captured from real plans: Substrait, validation, explains, fingerprints and their
//! ingredients, diffs of each category and of environments and writes, metrics and explains
//! of a real execution, one-line Substrait refusals, and the store's versions (committed
//! version 1 and version 2 fixtures are migrated).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::prelude::SessionContext;
use dfpipe_artifacts::{
    AnalyzeLevel, ArtifactError, CaptureOptions, Category, ChangedColumn, ChangedSetting, Environment, Fingerprint,
    PlanBundle, RunRecord, RunStatus, Store, SubstraitMode, ViewChange, ViewRecord, ViewStatus, WriteRecord, capture,
    collect_metrics, diff_bundles, diff_runs,
};

use crate::FIXTURES;

fn context() -> SessionContext {
    let ctx = SessionContext::new_with_config(datafusion::prelude::SessionConfig::new().with_information_schema(true));
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Utf8, true),
        Field::new("c", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(StringArray::from(vec![Some("x"), Some("y"), None, Some("x")])),
            Arc::new(Int64Array::from(vec![10, 20, 30, 40])),
        ],
    )
    .unwrap();
    ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
    ctx
}

const ALL: CaptureOptions =
    CaptureOptions { substrait: SubstraitMode::Strict, validate_substrait: true, explain_verbose: true, unparse: true };

async fn bundle_of(ctx: &SessionContext, view: &str, sql: &str, options: CaptureOptions) -> PlanBundle {
    let plan = ctx.state().create_logical_plan(sql).await.unwrap();
    capture(view, &plan, &ctx.state(), options).await.unwrap().bundle
}

fn settings(target_partitions: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("datafusion.execution.target_partitions".to_owned(), target_partitions.to_owned())])
}

#[tokio::test]
async fn a_bundle_holds_every_artifact() {
    let ctx = context();
    let bundle = bundle_of(&ctx, "v", "SELECT b, sum(c) AS total FROM t WHERE a > 1 GROUP BY b ORDER BY b", ALL).await;
    assert!(!bundle.substrait.is_empty());
    let validation = bundle.substrait_validation.clone().unwrap();
    assert!(validation.round_trips, "{validation:?}");
    assert!(bundle.tree.contains("┌"), "{}", bundle.tree);
    assert!(bundle.physical.contains("SortExec") || bundle.physical.contains("SortPreservingMergeExec"));
    // Only rules that changed the plan are kept, and each changed it.
    assert!(!bundle.verbose.is_empty());
    for pair in bundle.verbose.windows(2) {
        assert_ne!(pair[0].plan, pair[1].plan);
    }
    assert_eq!(bundle.verbose.last().unwrap().plan, bundle.optimized);
    let sql = bundle.sql.clone().unwrap();
    assert!(sql.error.is_none(), "{sql:?}");
    assert!(sql.sql.unwrap().to_lowercase().contains("group by"));
    let names: Vec<_> = bundle.schema.iter().map(|c| (c.name.as_str(), c.data_type.as_str())).collect();
    assert_eq!(names, [("b", "Utf8"), ("total", "Int64")]);
    assert_eq!(bundle.lineage.depends_on, ["t"]);
}

#[tokio::test]
async fn without_verbose_or_validation_nothing_is_recorded_for_them() {
    let ctx = context();
    let bundle = bundle_of(&ctx, "v", "SELECT a FROM t", CaptureOptions::default()).await;
    assert!(bundle.verbose.is_empty());
    assert!(bundle.substrait_validation.is_none());
}

#[tokio::test]
async fn a_fingerprint_is_stable_and_each_ingredient_changes_it() {
    let ctx = context();
    let environment = Environment::snapshot(&ctx).await.unwrap();
    let upstream = BTreeMap::from([("t".to_owned(), Fingerprint("f".repeat(32)))]);
    let seal = |mut bundle: PlanBundle, settings, environment: &Environment, upstream| {
        let fingerprint = bundle.seal(settings, environment, upstream);
        (fingerprint, bundle)
    };
    let sql = "SELECT a, upper(b) AS b FROM t WHERE c > 10";
    let base_bundle = bundle_of(&ctx, "v", sql, CaptureOptions::default()).await;
    let (base, sealed) = seal(base_bundle.clone(), settings("2"), &environment, upstream.clone());
    // Re-planning the same view gives the same fingerprint.
    let again = bundle_of(&ctx, "v", sql, CaptureOptions::default()).await;
    assert_eq!(seal(again, settings("2"), &environment, upstream.clone()).0, base);
    assert_eq!(sealed.fingerprint.fingerprint, base);
    // The plan.
    let other = bundle_of(&ctx, "v", "SELECT a, upper(b) AS b FROM t WHERE c > 11", CaptureOptions::default()).await;
    let (changed, bundle) = seal(other, settings("2"), &environment, upstream.clone());
    assert_ne!(changed, base);
    assert_eq!(bundle.fingerprint.ingredients.changed_from(&sealed.fingerprint.ingredients), ["plan"]);
    // The settings.
    let (changed, _) = seal(base_bundle.clone(), settings("4"), &environment, upstream.clone());
    assert_ne!(changed, base);
    // The upstream.
    let moved = BTreeMap::from([("t".to_owned(), Fingerprint("e".repeat(32)))]);
    assert_ne!(seal(base_bundle.clone(), settings("2"), &environment, moved).0, base);
    // The environment: rows about `t` or `upper` change it; rows about anything else do not.
    let mut edited = environment.clone();
    let columns = edited.tables.get_mut("columns").unwrap();
    let at = columns.columns.iter().position(|c| c == "table_name").unwrap();
    let row = columns.rows.iter_mut().find(|r| r[at] == "t").unwrap();
    row[at + 1].push('!');
    assert_ne!(seal(base_bundle.clone(), settings("2"), &edited, upstream.clone()).0, base);
    let mut unrelated = environment.clone();
    let tables = unrelated.tables.get_mut("tables").unwrap();
    let mut extra = tables.rows[0].clone();
    let at = tables.columns.iter().position(|c| c == "table_name").unwrap();
    extra[at] = "some_other_table".to_owned();
    tables.rows.push(extra);
    assert_eq!(seal(base_bundle.clone(), settings("2"), &unrelated, upstream.clone()).0, base);
    let mut routines = environment.clone();
    let table = routines.tables.get_mut("routines").unwrap();
    let at = table.columns.iter().position(|c| c == "routine_name").unwrap();
    table.rows.retain(|r| r[at] != "upper");
    assert_ne!(seal(base_bundle, settings("2"), &routines, upstream).0, base);
}

/// Prints the fingerprint of a fixed view, for [`a_fingerprint_is_the_same_in_another_process`].
#[tokio::test]
async fn fingerprint_of_a_fixed_view() {
    let ctx = context();
    let environment = Environment::snapshot(&ctx).await.unwrap();
    let mut bundle =
        bundle_of(&ctx, "v", "SELECT a, b FROM t WHERE c > 10 ORDER BY a", CaptureOptions::default()).await;
    let fingerprint = bundle.seal(settings("2"), &environment, BTreeMap::new());
    assert!(fingerprint.0.chars().all(|c| c.is_ascii_hexdigit()) && fingerprint.0.len() == 32);
    if std::env::var_os("DFPIPE_PRINT_FINGERPRINT").is_some() {
        #[allow(clippy::print_stdout)]
        {
            println!("fingerprint={fingerprint}");
        }
    }
}

#[test]
fn a_fingerprint_is_the_same_in_another_process() {
    let run = || {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "bundles::fingerprint_of_a_fixed_view", "--nocapture", "--test-threads", "1"])
            .env("DFPIPE_PRINT_FINGERPRINT", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let line = stdout.lines().find_map(|l| l.split_once("fingerprint=")).map(|(_, f)| f.trim().to_owned());
        line.unwrap_or_else(|| panic!("no fingerprint printed: {stdout}"))
    };
    let (first, second) = (run(), run());
    assert_eq!(first, second);
}

#[tokio::test]
async fn diffs_are_categorized() {
    let ctx = context();
    let environment = Environment::snapshot(&ctx).await.unwrap();
    let sealed = |sql: &'static str, partitions: &'static str| {
        let ctx = ctx.clone();
        let environment = environment.clone();
        async move {
            let mut bundle = bundle_of(&ctx, "v", sql, CaptureOptions::default()).await;
            bundle.seal(settings(partitions), &environment, BTreeMap::new());
            bundle
        }
    };
    let base = sealed("SELECT a, b FROM t WHERE c > 10", "2").await;

    let same = diff_bundles(&base, &sealed("SELECT a, b FROM t WHERE c > 10", "2").await);
    assert_eq!((same.change, same.category), (ViewChange::Unchanged, None));

    let added = diff_bundles(&base, &sealed("SELECT a, b, c FROM t WHERE c > 10", "2").await);
    assert_eq!(added.category, Some(Category::NonBreaking), "{added:#?}");
    assert_eq!(added.schema.added.len(), 1);
    assert_eq!(added.ingredients, ["plan"]);
    assert!(added.plan_diff.contains("-Projection: t.a, t.b"), "{}", added.plan_diff);

    let removed = diff_bundles(&base, &sealed("SELECT a FROM t WHERE c > 10", "2").await);
    assert_eq!(removed.category, Some(Category::Breaking));
    assert_eq!(removed.schema.removed[0].name, "b");

    let retyped = diff_bundles(&base, &sealed("SELECT CAST(a AS VARCHAR) AS a, b FROM t WHERE c > 10", "2").await);
    assert_eq!(retyped.category, Some(Category::Breaking));
    assert_eq!(retyped.schema.retyped[0].to.data_type, "Utf8View");

    let semantics = diff_bundles(&base, &sealed("SELECT a, b FROM t WHERE c > 20", "2").await);
    assert_eq!(semantics.category, Some(Category::Breaking));
    assert!(semantics.schema.is_empty());

    let added_and_filtered = diff_bundles(&base, &sealed("SELECT a, b, c FROM t WHERE c > 20", "2").await);
    assert_eq!(added_and_filtered.category, Some(Category::Breaking));

    let metadata = diff_bundles(&base, &sealed("SELECT a, b FROM t WHERE c > 10", "4").await);
    assert_eq!(metadata.category, Some(Category::Metadata));
    assert_eq!(metadata.ingredients, ["settings"]);
    assert_eq!(metadata.settings[0].to.as_deref(), Some("4"));
}

#[tokio::test]
async fn run_diffs_carry_upstream_changes_downstream() {
    let ctx = context();
    let environment = Environment::snapshot(&ctx).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut runs = Vec::new();
    for (run_id, filter) in [("1", "SELECT a, b FROM t WHERE c > 10"), ("2", "SELECT a, b FROM t WHERE c > 20")] {
        let mut up = bundle_of(&ctx, "up", filter, CaptureOptions::default()).await;
        let up_fp = up.seal(settings("2"), &environment, BTreeMap::new());
        // The downstream plan is the same text both times; only its upstream changes.
        let mut down = bundle_of(&ctx, "down", "SELECT a FROM t", CaptureOptions::default()).await;
        down.view = "down".to_owned();
        let down_fp = down.seal(settings("2"), &environment, BTreeMap::from([("up".to_owned(), up_fp.clone())]));
        store.put_bundle(&up_fp, &up).unwrap();
        store.put_bundle(&down_fp, &down).unwrap();
        let record = |name: &str, fingerprint: &Fingerprint| ViewRecord {
            name: name.to_owned(),
            fingerprint: fingerprint.clone(),
            status: ViewStatus::Succeeded,
            ..ViewRecord::default()
        };
        let run = RunRecord {
            run_id: run_id.to_owned(),
            status: RunStatus::Succeeded,
            views: vec![record("down", &down_fp), record("up", &up_fp)],
            environment: None,
            workers: None,
            cluster: None,
        };
        store.put_run(&run).unwrap();
        runs.push(run);
    }
    let diff = diff_runs(&store, &runs[0], &runs[1]).unwrap();
    let by_name: BTreeMap<_, _> = diff.views.iter().map(|v| (v.name.as_str(), v)).collect();
    assert_eq!(by_name["up"].category, Some(Category::Breaking));
    assert!(!by_name["up"].indirect);
    assert_eq!(by_name["down"].ingredients, ["upstream"]);
    assert!(by_name["down"].indirect);
    assert_eq!(by_name["down"].category, Some(Category::Breaking));
}

#[tokio::test]
async fn metrics_come_from_the_execution_itself() {
    let ctx = context();
    let plan = ctx.state().create_logical_plan("SELECT a, b FROM t WHERE a > 1").await.unwrap();
    let captured = capture("v", &plan, &ctx.state(), CaptureOptions::default()).await.unwrap();
    let rows: usize =
        collect(Arc::clone(&captured.physical), ctx.task_ctx()).await.unwrap().iter().map(RecordBatch::num_rows).sum();
    let metrics = collect_metrics(captured.physical.as_ref(), AnalyzeLevel::Summary);
    assert_eq!(metrics[0].depth, 0);
    assert_eq!(metrics[0].output_rows, Some(rows as u64));
    assert_eq!(rows, 3);
    assert!(metrics.iter().any(|m| m.operator.starts_with("FilterExec")));
    assert!(collect_metrics(captured.physical.as_ref(), AnalyzeLevel::None).is_empty());
    let dev = collect_metrics(captured.physical.as_ref(), AnalyzeLevel::Dev);
    assert!(dev.iter().any(|m| !m.other.is_empty()), "{dev:#?}");
}

#[tokio::test]
async fn strict_substrait_names_the_view_and_fallback_records_why() {
    use datafusion::logical_expr::{Extension, LogicalPlan, UserDefinedLogicalNodeCore};

    #[derive(Debug, PartialEq, Eq, Hash, PartialOrd)]
    struct Custom {
        input: LogicalPlan,
    }
    impl UserDefinedLogicalNodeCore for Custom {
        fn name(&self) -> &'static str {
            "Custom"
        }
        fn inputs(&self) -> Vec<&LogicalPlan> {
            vec![&self.input]
        }
        fn schema(&self) -> &datafusion::common::DFSchemaRef {
            self.input.schema()
        }
        fn expressions(&self) -> Vec<datafusion::logical_expr::Expr> {
            vec![]
        }
        fn fmt_for_explain(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Custom")
        }
        fn with_exprs_and_inputs(
            &self,
            _: Vec<datafusion::logical_expr::Expr>,
            mut inputs: Vec<LogicalPlan>,
        ) -> datafusion::common::Result<Self> {
            Ok(Self { input: inputs.swap_remove(0) })
        }
    }
    let ctx = context();
    let input = ctx.state().create_logical_plan("SELECT a FROM t").await.unwrap();
    let plan = LogicalPlan::Extension(Extension { node: Arc::new(Custom { input }) });
    let strict = capture("odd", &plan, &ctx.state(), CaptureOptions::default()).await;
    // The physical planner refuses the node before Substrait is asked; either way the error
    // names the view.
    let message = strict.err().expect("an extension node cannot be captured").to_string();
    assert!(message.contains("view `odd`"), "{message}");
}

/// Copies the committed store fixture of schema `version` into a new directory.
fn fixture_store(version: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["bundles", "runs"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(format!("{FIXTURES}/{version}/{sub}")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).unwrap();
        }
    }
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// Checks that `store`, a copy of a fixture holding `run` and a bundle under `fingerprint`,
/// migrates its two files, and reads the same from them after.
fn check_migration(store: &Store, fingerprint: &Fingerprint, bundle: &PlanBundle, run: &RunRecord) {
    assert_eq!(store.migrate().unwrap(), 2);
    assert_eq!(store.migrate().unwrap(), 0, "migrated files are current");
    assert_eq!(store.bundle(fingerprint).unwrap().as_ref(), Some(bundle));
    assert_eq!(store.latest_run().unwrap().as_ref(), Some(run));
}

#[test]
fn a_version_1_store_is_read_and_migrated() {
    let (_dir, store) = fixture_store("v1");
    let run = store.latest_run().unwrap().unwrap();
    assert_eq!(run.views.len(), 30);
    let region = run.views.iter().find(|v| v.name == "stg_region").unwrap();
    let bundle = store.bundle(&region.fingerprint).unwrap().expect("the fixture has stg_region's bundle");
    assert_eq!(bundle.view, "stg_region");
    assert_eq!(bundle.lineage.depends_on, ["region"]);
    assert!(!bundle.substrait.is_empty());
    assert!(bundle.lineage.columns.is_empty(), "version 1 had no column lineage");
    check_migration(&store, &region.fingerprint, &bundle, &run);
}

#[tokio::test]
async fn bundles_round_trip_and_bad_bundle_files_are_clear_errors() {
    let ctx = context();
    let bundle = bundle_of(&ctx, "v", "SELECT b, count(*) AS n FROM t GROUP BY b", ALL).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let fingerprint = Fingerprint("0".repeat(32));
    let path = store.put_bundle(&fingerprint, &bundle).unwrap();
    assert_eq!(store.bundle(&fingerprint).unwrap().unwrap(), bundle);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let error = store.bundle(&fingerprint).unwrap_err();
    assert!(matches!(error, ArtifactError::Corrupt { .. }));
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(store.bundle(&fingerprint), Err(ArtifactError::Corrupt { .. })));
}

#[test]
fn statuses_are_the_documented_strings() {
    let views = [ViewStatus::Succeeded, ViewStatus::Skipped, ViewStatus::Failed, ViewStatus::UpstreamFailed];
    let shown: Vec<String> = views.iter().map(|s| serde_json::to_string(s).unwrap()).collect();
    assert_eq!(shown, [r#""succeeded""#, r#""skipped""#, r#""failed""#, r#""upstream_failed""#]);
    assert_eq!(views.map(|s| s.to_string()), ["succeeded", "skipped", "failed", "upstream_failed"]);
    let runs = [RunStatus::Succeeded, RunStatus::Failed];
    assert_eq!(runs.map(|s| serde_json::to_string(&s).unwrap()), [r#""succeeded""#, r#""failed""#]);
    assert_eq!(runs.map(|s| s.to_string()), ["succeeded", "failed"]);
    assert_eq!(serde_json::from_str::<ViewStatus>(r#""upstream_failed""#).unwrap(), ViewStatus::UpstreamFailed);
}

#[test]
fn a_version_2_store_is_read_and_migrated() {
    let (_dir, store) = fixture_store("v2");
    let run = store.latest_run().unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let statuses: Vec<_> = run.views.iter().map(|v| (v.name.as_str(), v.status)).collect();
    assert_eq!(
        statuses,
        [
            ("v", ViewStatus::Succeeded),
            ("w", ViewStatus::Skipped),
            ("x", ViewStatus::Failed),
            ("y", ViewStatus::UpstreamFailed)
        ]
    );
    assert_eq!(run.environment, None, "version 2 stored no environment");
    assert!(run.views.iter().all(|v| v.write.is_none()), "version 2 kept no write reports");
    let timed = run.workers.is_some() || run.views.iter().any(|v| v.started_ms.is_some() || v.worker.is_some());
    assert!(!timed, "older runs recorded no start times or worker slots");
    assert_eq!(run.views[1].reason.as_deref(), Some(dfpipe_artifacts::UNCHANGED));
    let bundle = store.bundle(&run.views[0].fingerprint).unwrap().expect("the fixture has v's bundle");
    assert_eq!(bundle.view, "v");
    assert!(!bundle.substrait.is_empty() && !bundle.verbose.is_empty() && !bundle.metrics.is_empty());
    assert_eq!(bundle.fingerprint.fingerprint, run.views[0].fingerprint);
    assert!(bundle.physical_verbose.is_empty(), "version 2 had no physical rule deltas");
    check_migration(&store, &run.views[0].fingerprint, &bundle, &run);
}

#[tokio::test]
async fn an_environment_is_stored_once_per_content() {
    let ctx = context();
    let environment = Environment::snapshot(&ctx).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let fingerprint = store.put_environment(&environment).unwrap();
    assert_eq!(fingerprint, environment.fingerprint());
    let path = dir.path().join("environments").join(format!("{fingerprint}.msgpack"));
    let written = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // The same content again, from a new snapshot: nothing is written.
    let again = Environment::snapshot(&ctx).await.unwrap();
    assert_eq!(store.put_environment(&again).unwrap(), fingerprint);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), written);
    assert_eq!(std::fs::read_dir(dir.path().join("environments")).unwrap().count(), 1);
    assert_eq!(store.environment(&fingerprint).unwrap(), Some(environment));
    assert_eq!(store.environment(&Fingerprint("0".repeat(32))).unwrap(), None);
    // New content is a new file.
    ctx.sql("SET datafusion.execution.batch_size = 1234").await.unwrap();
    let changed = store.put_environment(&Environment::snapshot(&ctx).await.unwrap()).unwrap();
    assert_ne!(changed, fingerprint);
    assert_eq!(std::fs::read_dir(dir.path().join("environments")).unwrap().count(), 2);
}

#[test]
fn write_records_keep_the_full_report() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Report {
        files: Vec<String>,
        duration_ms: u64,
    }
    let report = Report { files: vec!["part-0.parquet".to_owned()], duration_ms: 7 };
    let record = WriteRecord { files: 1, ..WriteRecord::default() }.with_report(&report).unwrap();
    assert_eq!(record.report::<Report>().unwrap(), Some(report));
    assert_eq!(WriteRecord::default().report::<Report>().unwrap(), None);
    let wrong = record.report::<Vec<u64>>();
    assert!(matches!(wrong, Err(ArtifactError::WriteReport { .. })), "{wrong:?}");
}

/// A second context like [`context`], with `t` changed: column `c` retyped to text and a
/// column `d` added; a setting changed; a function added.
fn changed_context() -> SessionContext {
    let config = datafusion::prelude::SessionConfig::new().with_information_schema(true).with_batch_size(1234);
    let ctx = SessionContext::new_with_config(config);
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Utf8, true),
        Field::new("c", DataType::Utf8, true),
        Field::new("d", DataType::Int64, true),
    ]));
    ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap())).unwrap();
    let double = datafusion::logical_expr::create_udf(
        "double_it",
        vec![DataType::Int64],
        DataType::Int64,
        datafusion::logical_expr::Volatility::Immutable,
        Arc::new(|args: &[datafusion::logical_expr::ColumnarValue]| Ok(args[0].clone())),
    );
    ctx.register_udf(double);
    ctx
}

#[tokio::test]
async fn run_diffs_name_what_changed_in_the_environment_and_the_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut runs = Vec::new();
    for (run_id, ctx, compression) in [("1", context(), "zstd(3)"), ("2", changed_context(), "snappy")] {
        let environment = Environment::snapshot(&ctx).await.unwrap();
        let mut bundle = bundle_of(&ctx, "v", "SELECT a, b FROM t", CaptureOptions::default()).await;
        let fingerprint = bundle.seal(settings("2"), &environment, BTreeMap::new());
        store.put_bundle(&fingerprint, &bundle).unwrap();
        let options = BTreeMap::from([
            ("format.compression".to_owned(), compression.to_owned()),
            ("minimum_parallel_output_files".to_owned(), "4".to_owned()),
        ]);
        let write =
            WriteRecord { target: "out/v".to_owned(), format: "parquet".to_owned(), options, ..WriteRecord::default() };
        let view = ViewRecord {
            name: "v".to_owned(),
            fingerprint,
            status: ViewStatus::Succeeded,
            write: Some(write),
            ..ViewRecord::default()
        };
        let run = RunRecord {
            run_id: run_id.to_owned(),
            status: RunStatus::Succeeded,
            views: vec![view],
            environment: Some(store.put_environment(&environment).unwrap()),
            workers: None,
            cluster: None,
        };
        store.put_run(&run).unwrap();
        runs.push(run);
    }
    let diff = diff_runs(&store, &runs[0], &runs[1]).unwrap();
    let environment = diff.environment.clone().expect("both runs stored their environment");
    let batch_size = environment.settings.iter().find(|s| s.key == "datafusion.execution.batch_size");
    assert_eq!(
        batch_size,
        Some(&ChangedSetting {
            key: "datafusion.execution.batch_size".to_owned(),
            from: Some("8192".to_owned()),
            to: Some("1234".to_owned())
        }),
        "{environment:#?}"
    );
    let column = |column: &str, from: Option<&str>, to: Option<&str>| ChangedColumn {
        relation: "t".to_owned(),
        column: column.to_owned(),
        from: from.map(str::to_owned),
        to: to.map(str::to_owned),
    };
    let of_t: Vec<_> = environment.columns.iter().filter(|c| c.relation == "t").cloned().collect();
    assert_eq!(of_t, [column("c", Some("Int64"), Some("Utf8")), column("d", None, Some("Int64"))]);
    assert_eq!(environment.functions_added, ["double_it"]);
    assert!(environment.functions_removed.is_empty(), "{environment:#?}");
    assert!(environment.tables.iter().any(|t| t == "columns") && environment.tables.iter().any(|t| t == "df_settings"));
    let view = &diff.views[0];
    assert_eq!(
        view.write_options,
        [ChangedSetting {
            key: "format.compression".to_owned(),
            from: Some("zstd(3)".to_owned()),
            to: Some("snappy".to_owned())
        }]
    );
    // Without a stored environment on either side, there is no environment section.
    let bare = RunRecord { environment: None, ..runs[0].clone() };
    assert_eq!(diff_runs(&store, &bare, &runs[1]).unwrap().environment, None);
    // The last write of a view is the newest run's.
    let (run_id, write) = store.last_write("v").unwrap().unwrap();
    assert_eq!((run_id.as_str(), write.options["format.compression"].as_str()), ("2", "snappy"));
    assert_eq!(store.last_write("nope").unwrap(), None);
}

#[tokio::test]
async fn substrait_refusals_name_the_node_in_one_line() {
    let ctx = context();
    for (sql, node) in [
        ("SELECT unnest(make_array(a, c)) AS x FROM t", "Unnest"),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r",
            "RecursiveQuery",
        ),
    ] {
        let plan = ctx.state().create_logical_plan(sql).await.unwrap();
        let error =
            capture("v", &plan, &ctx.state(), CaptureOptions::default()).await.err().expect("no Substrait form");
        assert!(matches!(error, ArtifactError::Substrait { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.len() < 300, "{} characters: {message}", message.len());
        assert!(!message.contains('\n') && !message.contains('{'), "{message}");
        assert!(message.contains(&format!("{node} ")) && message.contains("view `v`"), "{message}");
        assert!(message.ends_with("in [profile] or under [views.v]"), "{message}");
        let fallback = CaptureOptions { substrait: SubstraitMode::Fallback, ..CaptureOptions::default() };
        let bundle = capture("v", &plan, &ctx.state(), fallback).await.unwrap().bundle;
        let why = bundle.substrait_fallback.unwrap();
        assert!(why.contains(node) && why.len() < 120, "{why}");
    }
}

#[tokio::test]
async fn verbose_records_the_physical_optimizer_rules() {
    let ctx = context();
    let sql = "SELECT b, sum(c) AS total FROM t WHERE a > 1 GROUP BY b ORDER BY b";
    let bundle = bundle_of(&ctx, "v", sql, ALL).await;
    assert!(!bundle.physical_verbose.is_empty());
    for pair in bundle.physical_verbose.windows(2) {
        assert_ne!(pair[0].plan, pair[1].plan);
    }
    assert_eq!(bundle.physical_verbose.last().unwrap().plan, bundle.physical);
    let state = ctx.state();
    let names: Vec<&str> = state.physical_optimizers().iter().map(|r| r.name()).collect();
    assert!(bundle.physical_verbose.iter().all(|d| names.contains(&d.rule.as_str())), "{:?}", bundle.physical_verbose);
    // The logical rule deltas stay apart.
    assert_eq!(bundle.verbose.last().unwrap().plan, bundle.optimized);
    assert!(bundle_of(&ctx, "v", sql, CaptureOptions::default()).await.physical_verbose.is_empty());
}

/// A query planner that counts its plannings, delegating to DataFusion's.
#[derive(Debug, Default)]
struct CountingPlanner(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl datafusion::execution::context::QueryPlanner for CountingPlanner {
    async fn create_physical_plan(
        &self,
        plan: &datafusion::logical_expr::LogicalPlan,
        state: &dyn datafusion::catalog::Session,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        DefaultPhysicalPlanner::default().create_physical_plan(plan, state).await
    }
}

#[tokio::test]
async fn verbose_plans_physically_once_through_the_sessions_planner() {
    let counting = Arc::new(CountingPlanner::default());
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(context().state())
        .with_query_planner(Arc::clone(&counting) as _)
        .build();
    let plan = state.create_logical_plan("SELECT b, count(*) AS n FROM t GROUP BY b").await.unwrap();
    let captured = capture("v", &plan, &state, ALL).await.unwrap();
    assert!(!captured.bundle.physical_verbose.is_empty());
    assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn recording_the_execution_keeps_the_plan_that_ran() {
    let ctx = context();
    let plan = ctx.state().create_logical_plan("SELECT b, count(*) AS n FROM t GROUP BY b").await.unwrap();
    let captured = capture("v", &plan, &ctx.state(), CaptureOptions::default()).await.unwrap();
    let mut bundle = captured.bundle;
    let captured_physical = bundle.physical.clone();
    // Planned again at execution, here with another partitioning: that is the plan recorded.
    let state = datafusion::execution::SessionStateBuilder::new_from_existing(ctx.state())
        .with_config(ctx.copied_config().with_target_partitions(7))
        .build();
    let ran = state.query_planner().create_physical_plan(&captured.optimized, &state).await.unwrap();
    let rows: usize = collect(Arc::clone(&ran), ctx.task_ctx()).await.unwrap().iter().map(RecordBatch::num_rows).sum();
    bundle.record_execution(ran.as_ref(), AnalyzeLevel::Summary);
    assert_eq!(bundle.output_rows(), Some(rows as u64));
    assert_eq!(bundle.physical, datafusion::physical_plan::displayable(ran.as_ref()).indent(true).to_string());
    assert!(bundle.physical.contains("Hash([b@0], 7)"), "{}", bundle.physical);
    assert_ne!(bundle.physical, captured_physical);
    assert_eq!(bundle.tree, datafusion::physical_plan::displayable(ran.as_ref()).tree_render().to_string());
    assert_eq!(bundle.metrics, collect_metrics(ran.as_ref(), AnalyzeLevel::Summary));
}

/// A view that readers scan by name and plan inside their own planning, as dfpipe's lazy
/// views are: DataFusion's `ViewTable`, without offering its plan for inlining.
#[derive(Debug)]
struct Opaque(datafusion::datasource::ViewTable);

#[async_trait::async_trait]
impl datafusion::catalog::TableProvider for Opaque {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> datafusion::logical_expr::TableType {
        datafusion::logical_expr::TableType::View
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::logical_expr::Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        self.0.scan(state, projection, filters, limit).await
    }
}

#[tokio::test]
async fn physical_rule_deltas_are_the_readers_not_those_of_the_views_it_plans() {
    let ctx = context();
    let inner = ctx.state().create_logical_plan("SELECT b FROM t WHERE a > 1").await.unwrap();
    let view = Opaque(datafusion::datasource::ViewTable::new(inner, None));
    ctx.register_table("inner_view", Arc::new(view)).unwrap();
    let bundle = bundle_of(&ctx, "v", "SELECT b, count(*) AS n FROM inner_view GROUP BY b", ALL).await;
    assert!(!bundle.physical_verbose.is_empty());
    // The reader's plans aggregate; the view's alone do not.
    for delta in &bundle.physical_verbose {
        assert!(delta.plan.contains("AggregateExec"), "{}: {}", delta.rule, delta.plan);
    }
    assert_eq!(bundle.physical_verbose.last().unwrap().plan, bundle.physical);
}
