//! The `dfpipe` binary end to end: JSON documents, exit codes, help text.

use std::path::Path;
use std::process::{Command, Output};

fn dfpipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfpipe")).args(args).output().expect("running dfpipe")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

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
    for flag in ["--full", "--select", "--workers", "--fail-fast", "--dynamic", "--json", "--scale-factor", "[DIR]"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let help = String::from_utf8(dfpipe(&["show", "--help"]).stdout).unwrap();
    for flag in ["--view", "--limit", "--format", "table", "csv", "json", "arrow", "--param", "[DIR]", "write"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let help = String::from_utf8(dfpipe(&["--help"]).stdout).unwrap();
    for command in ["run", "plan", "lineage", "explain", "check", "show", "gen"] {
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
