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
    let help = String::from_utf8(dfpipe(&["--help"]).stdout).unwrap();
    for command in ["run", "plan", "lineage", "explain", "check", "gen"] {
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

    assert_eq!(dfpipe(&["run", path]).status.code(), Some(0));
    let analyze = String::from_utf8(dfpipe(&["explain", path, "--view", "q06", "--format", "analyze"]).stdout).unwrap();
    assert!(analyze.contains("output_rows=1"), "{analyze}");

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
