//! The `dfpipe` binary end to end: JSON documents, exit codes, help text.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{dfpipe, json};

/// The demo pipeline of `examples/tpch` in `dir`, with data at scale factor 0.001.
fn pipeline(dir: &Path) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tpch");
    std::fs::copy(examples.join("dfpipe.toml"), dir.join("dfpipe.toml")).unwrap();
    std::fs::create_dir_all(dir.join("views")).unwrap();
    for entry in std::fs::read_dir(examples.join("views")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join("views").join(path.file_name().unwrap())).unwrap();
    }
    let data = dir.join("data");
    let out = dfpipe(&["gen", "tpch", "--scale-factor", "0.001", "--out", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn run_then_plan_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path());
    let path = dir.path().to_str().unwrap();

    // Two views at a time share the profile's 2 partitions; one at a time, each has both.
    let shared = String::from_utf8(dfpipe(&["plan", path, "--workers", "2"]).stdout).unwrap();
    assert!(shared.contains("partitions: 1 for"), "{shared}");
    let alone = json(&dfpipe(&["plan", path, "--workers", "1", "--json"]));
    let running: Vec<&serde_json::Value> =
        alone["views"].as_array().unwrap().iter().filter(|v| v["will_run"] == true).collect();
    assert_eq!(running.len(), 22);
    assert!(running.iter().all(|v| v["partitions"] == 2), "{alone}");

    let run = dfpipe(&["run", path, "--json"]);
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let run = json(&run);
    assert_eq!(run["status"], "succeeded");
    let views = run["views"].as_array().unwrap();
    assert_eq!(views.iter().filter(|v| v["status"] == "succeeded").count(), 22);
    assert!(run["schedule"]["makespan_ms"].as_u64().unwrap() >= run["schedule"]["lower_bound_ms"].as_u64().unwrap());

    let plan = json(&dfpipe(&["plan", path, "--json"]));
    let views = plan["views"].as_array().unwrap();
    assert_eq!(views.len(), 30);
    assert!(views.iter().all(|v| v["will_run"] == false), "{plan}");
    let q01 = views.iter().find(|v| v["name"] == "q01").unwrap();
    assert_eq!(q01["depends_on"], serde_json::json!(["stg_lineitem"]));
    assert_eq!(q01["reason"], "fingerprint unchanged");
    assert_eq!(q01["cost_source"], "measured");
    assert!(q01.get("partitions").is_none(), "a view that does not run has no partitions: {q01}");

    let lineage = json(&dfpipe(&["lineage", path, "--view", "q06", "--format", "json"]));
    assert_eq!(lineage["views"][0]["depends_on"], serde_json::json!(["stg_lineitem"]));
}

#[test]
fn specification_errors_exit_2_with_a_json_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dfpipe.toml"), "[pipeline]\nname = 3\n").unwrap();
    let out = dfpipe(&["plan", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let error = json(&out);
    assert_eq!(error["error"]["kind"], "spec");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("dfpipe.toml") && message.contains("line 2"), "{message}");

    let out = dfpipe(&["plan", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
}

#[test]
fn environment_failures_exit_3_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path());
    let runs = dir.path().join(".dfpipe").join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(runs.join("99999999999999999999.msgpack"), b"\x93garbage").unwrap();
    let out = dfpipe(&["plan", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error (internal or environment failure): artifact store file"), "{stderr}");
    let out = dfpipe(&["plan", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json(&out)["error"]["kind"], "artifact");
}

#[test]
fn help_describes_every_flag() {
    let help = String::from_utf8(dfpipe(&["run", "--help"]).stdout).unwrap();
    let flags =
        ["--full", "--select", "--workers", "--fail-fast", "--dynamic", "--lock-timeout", "--json", "--scale-factor"];
    for flag in flags.into_iter().chain(["[DIR]"]) {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let help = String::from_utf8(dfpipe(&["show", "--help"]).stdout).unwrap();
    for flag in ["--view", "--limit", "--format", "table", "csv", "json", "arrow", "--param", "[DIR]", "write"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let help = String::from_utf8(dfpipe(&["--help"]).stdout).unwrap();
    for command in ["run", "plan", "lineage", "explain", "check", "show", "report", "gen"] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}

/// What `dfpipe plan DIR` prints on stderr for a broken pipeline, with the directory redacted.
fn plan_error(dir: &Path) -> String {
    let out = dfpipe(&["plan", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8(out.stderr).unwrap();
    stderr.replace(dir.to_str().unwrap(), "[DIR]")
}

#[test]
fn golden_error_messages() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../golden"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description("regenerate with `cargo xtask golden`");
    let fresh = || {
        let dir = tempfile::tempdir().unwrap();
        pipeline(dir.path());
        dir
    };
    let mut cases = Vec::new();

    let dir = fresh();
    let spec = std::fs::read_to_string(dir.path().join("dfpipe.toml")).unwrap();
    std::fs::write(
        dir.path().join("dfpipe.toml"),
        spec.replace("target_partitions = 2", "target_partitions = \"two\""),
    )
    .unwrap();
    cases.push(("cli__error_bad_toml", plan_error(dir.path())));

    let dir = fresh();
    for (view, reads) in [("a", "b"), ("b", "c"), ("c", "a")] {
        std::fs::write(dir.path().join("views").join(format!("{view}.sql")), format!("select * from {reads}")).unwrap();
    }
    cases.push(("cli__error_cycle", plan_error(dir.path())));

    let dir = fresh();
    std::fs::write(dir.path().join("views").join("sneaky.sql"), "drop table orders").unwrap();
    cases.push(("cli__error_ddl", plan_error(dir.path())));

    let dir = fresh();
    std::fs::remove_dir_all(dir.path().join("data").join("region")).unwrap();
    cases.push(("cli__error_missing_source", plan_error(dir.path())));

    let dir = fresh();
    let out = dfpipe(&["explain", dir.path().to_str().unwrap(), "--view", "q99"]);
    assert_eq!(out.status.code(), Some(2));
    cases.push(("cli__error_unknown_view", String::from_utf8(out.stderr).unwrap()));

    settings.bind(|| {
        for (name, message) in cases {
            insta::assert_snapshot!(name, message);
        }
    });
}

#[test]
fn explain_and_diff_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path());
    let path = dir.path().to_str().unwrap();
    for format in ["tree", "verbose", "sql", "bundle", "analyze"] {
        let out = dfpipe(&["explain", path, "--view", "q06", "--format", format]);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.stdout.is_empty(), "{format}");
    }
    let before = String::from_utf8(dfpipe(&["explain", path, "--view", "q06", "--format", "analyze"]).stdout).unwrap();
    assert!(before.contains("has not run"), "{before}");
    let verbose = String::from_utf8(dfpipe(&["explain", path, "--view", "q06", "--format", "verbose"]).stdout).unwrap();
    assert!(verbose.contains("-- after "), "{verbose}");
    assert!(verbose.contains("-- after physical rule EnsureRequirements"), "{verbose}");

    let write = String::from_utf8(dfpipe(&["explain", path, "--view", "q06", "--format", "write"]).stdout).unwrap();
    assert!(write.contains("has no recorded write"), "{write}");
    assert_eq!(dfpipe(&["run", path]).status.code(), Some(0));
    let analyze = String::from_utf8(dfpipe(&["explain", path, "--view", "q06", "--format", "analyze"]).stdout).unwrap();
    assert!(analyze.contains("output_rows=1"), "{analyze}");
    // The last write report: where it went, what it wrote, with every option and knob.
    let write = String::from_utf8(dfpipe(&["explain", path, "--view", "q06", "--format", "write"]).stdout).unwrap();
    assert!(write.starts_with("-- the last write of `q06`, in run "), "{write}");
    let report: serde_json::Value = serde_json::from_str(write.split_once('\n').unwrap().1).unwrap();
    assert_eq!(report["rows"], 1);
    assert_eq!(report["options"]["format.compression"], "zstd(3)");

    let q06 = dir.path().join("views").join("q06.sql");
    let sql = std::fs::read_to_string(&q06).unwrap();
    std::fs::write(&q06, sql.replace("l_quantity < 24", "l_quantity < 25")).unwrap();
    assert_eq!(dfpipe(&["run", path]).status.code(), Some(0));
    let diff = json(&dfpipe(&["diff", path, "--json"]));
    let q06 = diff["views"].as_array().unwrap().iter().find(|v| v["name"] == "q06").unwrap().clone();
    assert_eq!(q06["category"], "breaking");
    assert_eq!(q06["ingredients"], serde_json::json!(["plan"]));
    let text = String::from_utf8(dfpipe(&["diff", path]).stdout).unwrap();
    assert!(text.contains("q06") && text.contains("breaking"), "{text}");
}

#[test]
fn report_writes_one_page_where_asked_and_names_a_bad_out() {
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path());
    let path = dir.path().to_str().unwrap();
    // Before any run: the page of the plan, beside the store by default.
    let out = dfpipe(&["report", path]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let default = dir.path().join(".dfpipe").join("report.html");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), default.to_str().unwrap());
    let page = std::fs::read_to_string(&default).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("\"run\":null"), "{page:.300}");

    let run = json(&dfpipe(&["run", path, "--json"]));
    let chosen = dir.path().join("site").join("pipeline.html");
    let out = dfpipe(&["report", path, "--out", chosen.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(&chosen).unwrap();
    assert!(
        page.contains(&format!("\"run_id\":\"{}\"", run["run_id"].as_str().unwrap())),
        "the run is not in the page"
    );

    // A directory is not a file to write: a usage error naming the flag.
    let out = dfpipe(&["report", path, "--out", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--out") && stderr.contains("is a directory"), "{stderr}");
    // A place that cannot be written: an environment failure naming the path.
    let under_a_file = chosen.join("report.html");
    let out = dfpipe(&["report", path, "--out", under_a_file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot create") && stderr.contains("pipeline.html"), "{stderr}");

    // Without DIR, the built-in demo's page, laid out in DFPIPE_DEMO_DIR.
    let demo = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dfpipe"))
        .args(["report", "--scale-factor", "0.001"])
        .env("DFPIPE_DEMO_DIR", demo.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(demo.path().join("sf-0.001").join(".dfpipe").join("report.html").is_file());
}

/// Every file under `dir` with its size and modification time; empty when `dir` is missing.
fn listing(dir: &Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else { continue };
        for entry in entries {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            }
            files.push((entry.path(), meta.len(), meta.modified().unwrap()));
        }
    }
    files.sort();
    files
}

/// The rows of an Arrow IPC stream.
fn arrow_rows(bytes: impl std::io::Read) -> usize {
    let reader = arrow::ipc::reader::StreamReader::try_new(bytes, None).expect("an Arrow IPC stream");
    reader.map(|batch| batch.expect("a record batch").num_rows()).sum()
}

#[test]
fn show_streams_rows_in_every_format_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path());
    let path = dir.path().to_str().unwrap();
    let state = || (listing(&dir.path().join(".dfpipe")), listing(&dir.path().join("out")));
    let text = |out: &Output| String::from_utf8(out.stdout.clone()).unwrap();

    // Before any run: a table of the first 20 rows, and no store or output appears.
    let before = state();
    assert_eq!(before, (vec![], vec![]));
    let table = dfpipe(&["show", path, "--view", "stg_lineitem"]);
    assert_eq!(table.status.code(), Some(0), "{}", String::from_utf8_lossy(&table.stderr));
    let rows = text(&table).lines().filter(|l| l.starts_with("| ")).count();
    assert_eq!(rows, 21, "a header and 20 rows:\n{}", text(&table));
    assert!(text(&table).contains("l_orderkey"));
    assert!(String::from_utf8_lossy(&table.stderr).contains("the first 20 rows"));
    assert_eq!(state(), before);

    let run = json(&dfpipe(&["run", path, "--json"]));
    let rows_of = |view: &str| {
        let views = run["views"].as_array().unwrap();
        views.iter().find(|v| v["name"] == view).unwrap()["rows"].as_u64().unwrap() as usize
    };
    let before = state();
    assert!(!before.0.is_empty() && !before.1.is_empty());

    let csv = dfpipe(&["show", path, "--view", "stg_orders", "--format", "csv", "--limit", "5"]);
    let csv = text(&csv);
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(csv.starts_with("o_orderkey,"), "{csv}");

    let lines = text(&dfpipe(&["show", path, "--view", "q01", "--format", "json"]));
    let objects: Vec<serde_json::Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(objects.len(), rows_of("q01"));
    assert!(objects.iter().all(|o| o.get("l_returnflag").is_some()), "{lines}");

    let arrow = dfpipe(&["show", path, "--view", "q03", "--format", "arrow"]);
    assert_eq!(arrow_rows(arrow.stdout.as_slice()), rows_of("q03"));
    let none = dfpipe(&["show", path, "--view", "q03", "--format", "arrow", "--limit", "0"]);
    assert_eq!(arrow_rows(none.stdout.as_slice()), 0, "the schema alone");
    assert_eq!(state(), before, "show writes nothing");

    let unknown = dfpipe(&["show", path, "--view", "q1"]);
    assert_eq!(unknown.status.code(), Some(2));
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(message.contains("no view named `q1`") && message.contains("`q01`"), "{message}");
}

/// A pipeline of one view, `big`, of `rows` rows of two `BIGINT`s, under a 20 MiB memory limit.
fn big_pipeline(dir: &Path, rows: u64) {
    std::fs::write(
        dir.join("dfpipe.toml"),
        "[pipeline]\nname = \"big\"\n\n[profile]\ntarget_partitions = 2\nbatch_size = 8192\n\
         memory_limit = \"20MiB\"\nsubstrait = \"fallback\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("views")).unwrap();
    std::fs::write(
        dir.join("views").join("big.sql"),
        format!("select value as n, value * 2 as doubled from generate_series(1, {rows})"),
    )
    .unwrap();
}

/// The peak resident memory of process `pid` in bytes, where `/proc` says it.
fn peak_memory(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn show_streams_a_view_larger_than_the_memory_limit_in_bounded_memory() {
    const ROWS: u64 = 20_000_000;
    let dir = tempfile::tempdir().unwrap();
    big_pipeline(dir.path(), ROWS);
    let path = dir.path().to_str().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dfpipe"))
        .args(["show", path, "--view", "big", "--format", "arrow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let reader = arrow::ipc::reader::StreamReader::try_new(child.stdout.take().unwrap(), None).unwrap();
    let (mut rows, mut peak) = (0, None);
    for batch in reader {
        rows += batch.unwrap().num_rows() as u64;
        // Halfway, the whole view has been computed once if anything held it.
        if peak.is_none() && rows >= ROWS / 2 {
            peak = peak_memory(pid);
        }
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rows, ROWS);
    // 20 million rows of two BIGINTs are 320 MB; streaming holds a few batches of 128 KiB.
    if let Some(peak) = peak {
        assert!(peak < 160 << 20, "peak memory {} MiB while streaming 320 MB", peak >> 20);
    }
    assert_eq!(listing(dir.path()).len(), 3, "dfpipe.toml, views/ and views/big.sql only");
}

#[test]
fn show_ends_cleanly_when_stdout_closes() {
    let dir = tempfile::tempdir().unwrap();
    big_pipeline(dir.path(), 20_000_000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_dfpipe"))
        .args(["show", dir.path().to_str().unwrap(), "--view", "big", "--format", "csv"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut head, &mut line).unwrap();
    assert_eq!(line, "n,doubled\n");
    drop(head);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn show_exits_1_when_the_view_fails_while_it_streams() {
    let dir = tempfile::tempdir().unwrap();
    big_pipeline(dir.path(), 10);
    std::fs::write(
        dir.path().join("views").join("bad.sql"),
        "select cast(concat(cast(value as varchar), 'x') as int) as bad from generate_series(1, 10)",
    )
    .unwrap();
    let out = dfpipe(&["show", dir.path().to_str().unwrap(), "--view", "bad", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(1));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("view `bad` failed") && message.contains("Cannot cast string '1x'"), "{message}");
}

/// The demo pipeline at scale factor `scale_factor` in `dir`, as [`pipeline`] lays it out.
fn pipeline_at(dir: &Path, scale_factor: &str) {
    pipeline(dir);
    let data = dir.join("data");
    std::fs::remove_dir_all(&data).unwrap();
    let out = dfpipe(&["gen", "tpch", "--scale-factor", scale_factor, "--out", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `dfpipe run` started in the background, its output piped.
fn spawn_run(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_dfpipe"))
        .arg("run")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The rows of every materialized view's committed output, read from the parquet footers of
/// `out/<view>/`; a view whose output is missing or unreadable panics with its name.
fn output_rows(dir: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut rows = std::collections::BTreeMap::new();
    for view in std::fs::read_dir(dir.join("out")).unwrap() {
        let view = view.unwrap().path();
        let name = view.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let total = listing(&view)
            .iter()
            .filter(|(path, ..)| path.extension().is_some_and(|e| e == "parquet"))
            .map(|(path, ..)| {
                let file = std::fs::File::open(path).unwrap();
                let reader = parquet::file::reader::SerializedFileReader::new(file)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows() as u64
            })
            .sum();
        rows.insert(name, total);
    }
    rows
}

/// The views a run report says executed, and those it skipped as unchanged.
fn executed_and_unchanged(report: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    let views = report["views"].as_array().unwrap();
    let names = |keep: &dyn Fn(&serde_json::Value) -> bool| {
        views.iter().filter(|v| keep(v)).map(|v| v["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    (names(&|v| v["status"] == "succeeded"), names(&|v| v["reason"] == "fingerprint unchanged"))
}

#[test]
fn a_second_run_refuses_or_waits_while_one_holds_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    pipeline_at(dir.path(), "0.01");
    let path = dir.path().to_str().unwrap();
    let lock = dir.path().join(".dfpipe").join("run.lock");

    let first = spawn_run(&[path, "--json", "--workers", "2"]);
    // The first run holds the lock once its pid is in the lock file.
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&format!("pid={}", first.id()))) {
        assert!(started.elapsed() < std::time::Duration::from_mins(1), "the first run never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let waiting = spawn_run(&[path, "--json", "--lock-timeout", "300"]);
    // Readers take no lock, and read a whole store while the run goes on.
    let plan = dfpipe(&["plan", path, "--json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", String::from_utf8_lossy(&plan.stderr));
    let refused = dfpipe(&["run", path]);
    let message = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{message}");
    assert!(message.contains("another run of this pipeline is going on"), "{message}");
    assert!(message.contains(&format!("pid {} on host ", first.id())) && message.contains(" since 20"), "{message}");
    assert!(message.contains("--lock-timeout"), "{message}");
    let refused = json(&dfpipe(&["run", path, "--json"]));
    assert_eq!(refused["error"]["kind"], "locked", "{refused}");

    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    let (ran, _) = executed_and_unchanged(&json(&first));
    assert_eq!(ran.len(), 22, "{ran:?}");
    // The waiting run planned once the first had ended, so it found nothing to do.
    let waited = waiting.wait_with_output().unwrap();
    assert_eq!(waited.status.code(), Some(0), "{}", String::from_utf8_lossy(&waited.stderr));
    let (ran, unchanged) = executed_and_unchanged(&json(&waited));
    assert_eq!((ran.len(), unchanged.len()), (0, 22), "{ran:?}");

    let rows = output_rows(dir.path());
    let report = json(&first);
    for view in report["views"].as_array().unwrap().iter().filter(|v| v["status"] == "succeeded") {
        assert_eq!(rows[view["name"].as_str().unwrap()], view["rows"].as_u64().unwrap(), "{view}");
    }
    let next = json(&dfpipe(&["run", path, "--json"]));
    assert_eq!(executed_and_unchanged(&next).0, Vec::<String>::new());
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "", "released");
}

/// A deterministic stream of numbers in [0, 1): a 64-bit LCG.
struct Moments(u64);

impl Iterator for Moments {
    type Item = f64;
    fn next(&mut self) -> Option<f64> {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        Some((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }
}

#[test]
// The figures of the kills, for the log of the test run.
#[allow(clippy::print_stderr)]
fn a_run_killed_at_any_moment_leaves_whole_outputs_and_the_next_run_carries_on() {
    const KILLS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    pipeline_at(dir.path(), "0.01");
    let path = dir.path().to_str().unwrap();
    let spec_file = dir.path().join("dfpipe.toml");
    let spec = std::fs::read_to_string(&spec_file).unwrap();
    let clean_run = || {
        let out = dfpipe(&["run", path, "--json", "--workers", "2"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        json(&out)
    };
    // The clean run: its row counts, and how long a run that executes every view takes.
    let started = std::time::Instant::now();
    let clean = clean_run();
    let duration = started.elapsed();
    let expected: std::collections::BTreeMap<String, u64> = (clean["views"].as_array().unwrap().iter())
        .filter(|v| v["status"] == "succeeded")
        .map(|v| (v["name"].as_str().unwrap().to_owned(), v["rows"].as_u64().unwrap()))
        .collect();
    assert_eq!(expected.len(), 22);
    assert_eq!(output_rows(dir.path()), expected);

    let mut moments = Moments(16);
    let (mut replaced_total, mut unrecorded_total) = (0, 0);
    for kill in 0..KILLS {
        // A new batch size changes every view's fingerprint (not its rows): all 22 must run.
        let batch_size = if kill % 2 == 0 { "4096" } else { "8192" };
        std::fs::write(&spec_file, spec.replace("batch_size = 8192", &format!("batch_size = {batch_size}"))).unwrap();
        // Each old output gets a marker: a committed output replaces its directory, and the
        // marker with it.
        for view in expected.keys() {
            std::fs::write(dir.path().join("out").join(view).join(".old"), "").unwrap();
        }
        let at = duration.mul_f64((kill as f64 + moments.next().unwrap()) / KILLS as f64);
        let mut child = spawn_run(&[path, "--workers", "2"]);
        std::thread::sleep(at);
        child.kill().unwrap();
        child.wait().unwrap();

        // Every output is whole, from one version: either in place, or retired by a commit
        // that the kill cut short, for the next run to restore.
        let rows = output_rows(dir.path());
        for (view, expected) in &expected {
            if let Some(rows) = rows.get(view) {
                assert_eq!(rows, expected, "kill {kill} at {at:?}: {view}");
            } else {
                let retired = dir.path().join("out").join(".staging").join(format!("{view}.retired"));
                assert!(retired.exists(), "kill {kill} at {at:?}: output of {view} missing");
            }
        }
        let replaced: Vec<&String> =
            expected.keys().filter(|v| !dir.path().join("out").join(v).join(".old").exists()).collect();
        // The store is readable, and the next run executes exactly the views whose commit it
        // does not record: every view whose output was not replaced, and a view killed
        // between its commit and its record (at most one per worker).
        let diff = dfpipe(&["diff", path]);
        let stderr = String::from_utf8_lossy(&diff.stderr);
        let too_few = diff.status.code() == Some(2) && stderr.contains("a diff needs two");
        assert!(diff.status.code() == Some(0) || too_few, "kill {kill}: {stderr}");
        let next = clean_run();
        assert_eq!(next["status"], "succeeded");
        let (ran, unchanged) = executed_and_unchanged(&next);
        assert_eq!(ran.len() + unchanged.len(), 22, "kill {kill}: {next}");
        for view in expected.keys().filter(|v| !replaced.contains(v)) {
            assert!(ran.contains(view), "kill {kill} at {at:?}: {view} did not commit, yet did not run: {next}");
        }
        let unrecorded = ran.iter().filter(|v| replaced.contains(v)).count();
        assert!(unrecorded <= 2, "kill {kill} at {at:?}: {unrecorded} committed views ran again: {next}");
        replaced_total += replaced.len();
        unrecorded_total += unrecorded;
        assert_eq!(output_rows(dir.path()), expected, "kill {kill} at {at:?}");
    }
    let last = clean_run();
    assert_eq!(executed_and_unchanged(&last).1.len(), 22, "{last}");
    // The kills are spread over the run: some before any commit, some after the last.
    assert!(replaced_total > 0 && replaced_total < KILLS * 22, "{replaced_total} commits");
    eprintln!("{KILLS} runs killed; {replaced_total} commits before the kills, {unrecorded_total} not recorded");
}
