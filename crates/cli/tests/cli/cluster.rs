//! `dfpipe run --cluster` end to end, on real `dfpipe worker` processes listening on free
//! ports of 127.0.0.1: the demo's outputs on two workers are those of one machine, row for
//! row, with the same fingerprints; the tasks report names both workers; a no-op rerun needs
//! no worker; a worker killed mid-run fails the views it served and keeps their previous
//! outputs, and the next run completes on the other; bad clusters are refused with exit 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Worker, dfpipe, json, rows, stderr};

/// The demo laid out under `dir` at scale factor 0.01, as a pipeline directory of its own,
/// with datafusion-distributed told to cut even its small scans into a task per worker.
fn pipeline(dir: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_dfpipe"))
        .args(["plan", "--scale-factor", "0.01"])
        .env("DFPIPE_DEMO_DIR", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let pipeline = dir.join("sf-0.01");
    let file = pipeline.join("dfpipe.toml");
    let spec = std::fs::read_to_string(&file).unwrap()
        + "\n[cluster]\nsettings = { \"distributed.file_scan_config_bytes_per_partition\" = \"4096\" }\n";
    std::fs::write(file, spec).unwrap();
    pipeline
}

/// Every row of every committed output under `<pipeline>/out`, by view, as sorted text lines.
fn outputs(pipeline: &Path) -> BTreeMap<String, Vec<String>> {
    each_output(pipeline, rows)
}

/// `read` of each view's committed output directory under `<pipeline>/out`, by view.
fn each_output<T>(pipeline: &Path, read: impl Fn(&Path) -> T) -> BTreeMap<String, T> {
    let mut views = BTreeMap::new();
    for entry in std::fs::read_dir(pipeline.join("out")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            views.insert(name, read(&path));
        }
    }
    views
}

/// The files of each view's committed output: names and sizes.
fn files(pipeline: &Path) -> BTreeMap<String, Vec<(String, u64)>> {
    each_output(pipeline, |dir| {
        let mut listed: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|f| {
                let f = f.unwrap();
                (f.file_name().to_string_lossy().into_owned(), f.metadata().unwrap().len())
            })
            .collect();
        listed.sort();
        listed
    })
}

/// Each view's `status` in a run report.
fn statuses(report: &Value) -> BTreeMap<String, String> {
    by_view(report, "status")
}

/// Each view's `fingerprint` in a run report.
fn fingerprints(report: &Value) -> BTreeMap<String, String> {
    by_view(report, "fingerprint")
}

/// How many views of a plan report are costed by measurements.
fn measured(plan: &Value) -> usize {
    plan["views"].as_array().unwrap().iter().filter(|v| v["cost_source"] == "measured").count()
}

fn by_view(report: &Value, field: &str) -> BTreeMap<String, String> {
    let views = report["views"].as_array().unwrap().iter();
    views.map(|v| (v["name"].as_str().unwrap().to_owned(), v[field].as_str().unwrap().to_owned())).collect()
}

#[test]
fn the_demo_on_two_workers_writes_the_rows_of_one_machine() {
    let demo = tempfile::tempdir().unwrap();
    let dir = pipeline(demo.path());
    let path = dir.to_str().unwrap();

    let alone = dfpipe(&["run", path, "--json"]);
    assert!(alone.status.success(), "{}", stderr(&alone));
    let alone = json(&alone);
    assert!(alone.get("cluster").is_none(), "{alone}");
    let expected = outputs(&dir);
    assert!(expected.len() >= 22, "{:?}", expected.keys());

    let (mut a, mut b) = (Worker::start_with(&[], &[]), Worker::start_with(&[], &[]));
    let cluster = format!("{},{}", a.address, b.address);
    // The plan shows stages; planning contacts no worker.
    let plan = dfpipe(&["plan", path, "--cluster", &cluster, "--json"]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan = json(&plan);
    let stages: Vec<u64> = plan["views"].as_array().unwrap().iter().filter_map(|v| v["stages"].as_u64()).collect();
    // Costs measured on one machine do not predict a cluster's.
    assert_eq!(measured(&plan), 0, "{plan}");
    assert!(measured(&json(&dfpipe(&["plan", path, "--json"]))) >= 22);
    assert!(stages.iter().any(|&n| n > 1), "no view is distributed: {stages:?}");
    let explain = dfpipe(&["explain", path, "--view", "q01", "--format", "physical", "--cluster", &cluster]);
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(text.contains("DistributedExec") && text.contains("Stage"), "{text}");

    let distributed = dfpipe(&["run", path, "--full", "--cluster", &cluster, "--json"]);
    assert!(distributed.status.success(), "{}", stderr(&distributed));
    let distributed = json(&distributed);
    assert!(statuses(&distributed).values().all(|s| s == "succeeded" || s == "skipped"), "{distributed}");
    // A view's fingerprint is the same on a cluster and on one machine.
    assert_eq!(fingerprints(&distributed), fingerprints(&alone));
    let tasks = &distributed["cluster"]["tasks"];
    for worker in [&a.address, &b.address] {
        assert!(tasks[worker].as_u64().unwrap_or(0) > 0, "no task on {worker}: {distributed}");
    }
    assert_eq!(distributed["cluster"]["workers"], serde_json::json!([a.address, b.address]));
    // Now the cluster's costs are measured, and one machine's are not.
    assert!(measured(&json(&dfpipe(&["plan", path, "--cluster", &cluster, "--json"]))) >= 22);
    assert_eq!(measured(&json(&dfpipe(&["plan", path, "--json"]))), 0);
    // The same rows as on one machine, view by view.
    let got = outputs(&dir);
    assert_eq!(got.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (view, rows) in &expected {
        assert_eq!(&got[view], rows, "view {view} differs on the cluster");
    }

    // Nothing changed: a rerun executes nothing, and needs no worker at all.
    a.kill();
    b.kill();
    let again = dfpipe(&["run", path, "--cluster", &cluster, "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let again = json(&again);
    assert!(again["views"].as_array().unwrap().iter().all(|v| v["duration_ms"].is_null()), "{again}");
    assert!(again["cluster"]["tasks"].as_object().unwrap().values().all(|n| n == 0), "{again}");
    // And so does one without the cluster: the fingerprints are those of one machine.
    let local = json(&dfpipe(&["run", path, "--json"]));
    assert!(local["views"].as_array().unwrap().iter().all(|v| v["duration_ms"].is_null()), "{local}");
}

#[test]
fn a_worker_killed_mid_run_fails_its_views_and_the_next_run_completes_on_the_other() {
    let demo = tempfile::tempdir().unwrap();
    let dir = pipeline(demo.path());
    let path = dir.to_str().unwrap();
    let first = dfpipe(&["run", path]);
    assert!(first.status.success(), "{}", stderr(&first));
    let before = files(&dir);

    let (mut doomed, survivor) = (Worker::start_with(&[], &[]), Worker::start_with(&[], &[]));
    let cluster = format!("{},{}", doomed.address, survivor.address);
    // One view at a time, so that the run is still going when the worker dies.
    let run = run_until_writing(&dir, &["--full", "--workers", "1", "--cluster", &cluster]);
    doomed.kill();
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let ended = statuses(&report);
    let failed: Vec<&String> = ended.iter().filter(|(_, s)| *s == "failed").map(|(v, _)| v).collect();
    assert!(!failed.is_empty(), "{report}");
    let failure = report["views"].as_array().unwrap().iter().find(|v| v["status"] == "failed").unwrap();
    assert!(failure["reason"].as_str().unwrap().contains(&doomed.address), "{failure}");
    // The dead worker is left out of the plans cut after the failure: the views that had not
    // started yet run on the other.
    assert!(ended.values().any(|s| s == "succeeded"), "{report}");
    // What did not commit kept its previous output, whole.
    let after = files(&dir);
    for (view, status) in &ended {
        if status != "succeeded" && before.contains_key(view) {
            assert_eq!(after[view], before[view], "view {view} ({status}) lost its previous output");
        }
    }

    // The next run, on the worker that remains, completes.
    let next = dfpipe(&["run", path, "--full", "--cluster", &survivor.address, "--json"]);
    assert!(next.status.success(), "{}", stderr(&next));
    let next = json(&next);
    let now = statuses(&next);
    for view in &failed {
        assert_eq!(now[*view], "succeeded", "{next}");
    }
    // With one worker, datafusion-distributed keeps every stage on the coordinator (a stage
    // of one task feeding one task needs no network boundary): the report says so.
    assert_eq!(next["cluster"]["workers"], serde_json::json!([survivor.address]), "{next}");
    assert_eq!(next["cluster"]["tasks"][&survivor.address], 0, "{next}");
}

/// `dfpipe run DIR --json` with `flags`, started and returned once a view writes into
/// staging: the run is under way.
fn run_until_writing(dir: &Path, flags: &[&str]) -> std::process::Child {
    let run = Command::new(env!("CARGO_BIN_EXE_dfpipe"))
        .arg("run")
        .arg(dir)
        .args(flags)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let staging = dir.join("out").join(".staging");
    let started = Instant::now();
    while !staging.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        assert!(started.elapsed() < Duration::from_mins(2), "no view started writing");
        std::thread::sleep(Duration::from_millis(5));
    }
    run
}

/// A worker that stops answering without closing its connections (here: stopped by
/// SIGSTOP) is found dead by the keep-alive pings: the run ends with exit 1 instead of
/// hanging.
#[test]
fn a_worker_that_stops_answering_fails_the_run_instead_of_hanging_it() {
    let demo = tempfile::tempdir().unwrap();
    let dir = pipeline(demo.path());
    let (frozen, other) = (Worker::start_with(&[], &[]), Worker::start_with(&[], &[]));
    let cluster = format!("{},{}", frozen.address, other.address);
    let run = run_until_writing(&dir, &["--workers", "1", "--fail-fast", "--cluster", &cluster]);
    let pid = frozen.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(run.wait_with_output().unwrap()));
    let out = waited.recv_timeout(Duration::from_mins(2)).expect("the run hung on a worker that stopped answering");
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    assert!(statuses(&report).values().any(|s| s == "failed"), "{report}");
}

#[test]
fn unreachable_workers_and_unreadable_paths_are_refused_before_anything_runs() {
    let demo = tempfile::tempdir().unwrap();
    let dir = pipeline(demo.path());
    let path = dir.to_str().unwrap();
    // A port nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let out = dfpipe(&["run", path, "--cluster", &free]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("worker {free}")), "{}", stderr(&out));
    assert_eq!(dfpipe_runs(&dir), 0, "a run was recorded");

    let out = dfpipe(&["run", path, "--cluster", "localhost"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("worker address `localhost`") && stderr(&out).contains("HOST:PORT"),
        "{}",
        stderr(&out)
    );

    // A worker on another machine cannot read this machine's output directory.
    let out = dfpipe(&["plan", path, "--cluster", "10.255.255.1:50051"]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("output_dir") && message.contains("10.255.255.1:50051"), "{message}");
    assert!(message.contains("shared_filesystem = true"), "{message}");

    // A setting datafusion-distributed does not have.
    let file = dir.join("dfpipe.toml");
    let spec = std::fs::read_to_string(&file).unwrap().replace("file_scan_config_bytes_per_partition", "no_such_knob");
    std::fs::write(&file, spec).unwrap();
    let out = dfpipe(&["plan", path, "--cluster", "127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("distributed.no_such_knob") && stderr(&out).contains("dfpipe.toml"),
        "{}",
        stderr(&out)
    );
}

/// Bad worker addresses and `[cluster]` tables are refused with exit 2, naming what is wrong.
#[test]
fn bad_workers_and_cluster_tables_are_refused() {
    let out = dfpipe(&["worker", "--listen", "nonsense"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("worker on nonsense: cannot listen"), "{}", stderr(&out));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = dfpipe(&["worker", "--listen", &address]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("worker on {address}: cannot listen")), "{}", stderr(&out));

    let demo = tempfile::tempdir().unwrap();
    let dir = pipeline(demo.path());
    let path = dir.to_str().unwrap();
    let file = dir.join("dfpipe.toml");
    let spec = std::fs::read_to_string(&file).unwrap();
    for (table, expected) in [
        ("workers = [\"nowhere\"]\n", "[cluster] worker address `nowhere`"),
        ("workers = [\"h:1\", \"h:1\"]\n", "given twice"),
        ("hosts = [\"h:1\"]\n", "unknown field `hosts`"),
    ] {
        std::fs::write(&file, spec.replace("[cluster]\n", &format!("[cluster]\n{table}"))).unwrap();
        let out = dfpipe(&["plan", path]);
        assert_eq!(out.status.code(), Some(2), "{table}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected) && stderr(&out).contains("dfpipe.toml"), "{table}: {}", stderr(&out));
    }
}

fn dfpipe_runs(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(".dfpipe").join("runs")).map_or(0, Iterator::count)
}

#[test]
fn a_worker_stops_cleanly_on_sigterm() {
    let worker = Worker::start_with(&[], &[]);
    let pid = worker.child.id().to_string();
    let mut worker = worker;
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the worker did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}
