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
fn help_describes_every_flag() {
    let help = String::from_utf8(dfpipe(&["run", "--help"]).stdout).unwrap();
    for flag in ["--full", "--select", "--workers", "--json", "--scale-factor", "[DIR]"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let help = String::from_utf8(dfpipe(&["--help"]).stdout).unwrap();
    for command in ["run", "plan", "lineage", "explain", "check", "gen"] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}
