//! The `dfpipe` binary against a real S3 server: `s3s-fs` (an S3 server over a directory,
//! from crates.io), started by each test on 127.0.0.1 on a free port, and a pipeline whose
//! sources and outputs live in its bucket, configured by nothing but `dfpipe.toml` and the
//! `AWS_*` environment variables. `.ci/run` installs the server when it is missing; by hand:
//! `cargo install s3s-fs --version 0.14.1 --features binary --locked`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::support::{Worker, rows};

const ACCESS_KEY: &str = "dfpipe-test-key";
const SECRET_KEY: &str = "dfpipe-test-secret";
const BUCKET: &str = "lake";
const INSTALL: &str = "cargo install s3s-fs --version 0.14.1 --features binary --locked";

/// An `s3s-fs` server on 127.0.0.1 serving a temporary directory, one bucket in it.
struct S3Server {
    root: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl S3Server {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { root, port, child: None };
        server.restart();
        server
    }

    /// The `s3s-fs` binary: `$S3S_FS`, else on `PATH`, else in Cargo's bin directory.
    fn binary() -> PathBuf {
        let cargo_bin = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
            .map(|home| home.join("bin").join("s3s-fs"));
        let candidates = std::env::var_os("S3S_FS").map(PathBuf::from).into_iter().chain([PathBuf::from("s3s-fs")]);
        for candidate in candidates.chain(cargo_bin) {
            let found = Command::new(&candidate).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
            if found.is_ok_and(|status| status.success()) {
                return candidate;
            }
        }
        panic!(
            "the S3 tests need the `s3s-fs` server, which is not installed: install it with `{INSTALL}` \
             (.ci/run does), or point $S3S_FS at the binary"
        );
    }

    /// Starts the server (again) on its port, over the same directory.
    fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = Command::new(Self::binary())
                .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(self.root.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    self.child = Some(child);
                    return;
                }
                // It exits when the port is not free yet (after a kill): start it again.
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "s3s-fs did not start listening on 127.0.0.1:{}", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the server at once, as a crash would.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket's objects as files, as the server stores them.
    fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET)
    }

    /// A client of the bucket, for the tests' own reads and writes.
    fn client(&self) -> Client {
        let store = AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_endpoint(self.endpoint())
            .with_region("us-east-1")
            .with_allow_http(true)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Client { store: Arc::new(store), runtime }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Blocking calls on the test's bucket through `object_store`.
struct Client {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    fn put(&self, key: &str, bytes: &str) {
        let payload = PutPayload::from(bytes.to_owned().into_bytes());
        self.runtime.block_on(self.store.put(&ObjectPath::from(key), payload)).unwrap();
    }

    /// The keys under `prefix`, sorted.
    fn list(&self, prefix: &str) -> Vec<String> {
        let prefix = ObjectPath::from(prefix);
        let mut keys: Vec<String> = self
            .runtime
            .block_on(futures::TryStreamExt::try_collect::<Vec<_>>(self.store.list(Some(&prefix))))
            .unwrap()
            .into_iter()
            .map(|meta| meta.location.to_string())
            .collect();
        keys.sort();
        keys
    }

    fn delete_all(&self, prefix: &str) -> usize {
        let keys = self.list(prefix);
        for key in &keys {
            self.runtime.block_on(self.store.delete(&ObjectPath::from(key.as_str()))).unwrap();
        }
        keys.len()
    }

    fn copy(&self, from: &str, to: &str) {
        self.runtime.block_on(self.store.copy(&ObjectPath::from(from), &ObjectPath::from(to))).unwrap();
    }
}

/// A pipeline directory whose sources and `output_dir` are in the server's bucket.
struct Lake {
    dir: tempfile::TempDir,
    server: S3Server,
}

const ORDERS_1: &str = "o_orderkey,o_custkey,o_total\n1,10,50.0\n2,10,75.5\n3,20,20.0\n";
const ORDERS_2: &str = "o_orderkey,o_custkey,o_total\n4,20,300.0\n5,30,12.5\n";
const NATIONS: &str = "n_nationkey,n_name\n0,algeria\n1,argentina\n";

impl Lake {
    /// Three materialized views: `order_totals` and `nation_names` over one source each,
    /// `top_customers` over `order_totals`.
    fn new() -> Self {
        let server = S3Server::start();
        let client = server.client();
        client.put("data/orders/part-1.csv", ORDERS_1);
        client.put("data/orders/part-2.csv", ORDERS_2);
        client.put("data/nations.csv", NATIONS);
        let lake = Self { dir: tempfile::tempdir().unwrap(), server };
        lake.write_spec("");
        lake.view("order_totals", "SELECT o_custkey, sum(o_total) AS total FROM orders GROUP BY o_custkey");
        lake.view("nation_names", "SELECT n_nationkey, upper(n_name) AS name FROM nations");
        lake.view("top_customers", "SELECT o_custkey, total FROM order_totals WHERE total > 100");
        lake
    }

    /// `dfpipe.toml`, with `extra` tables at its end.
    fn write_spec(&self, extra: &str) {
        let spec = format!(
            r#"[pipeline]
name = "lake"
output_dir = "s3://{BUCKET}/out"

[profile]
target_partitions = 1

[sources.orders]
path = "s3://{BUCKET}/data/orders/"
format = "csv"

[sources.nations]
path = "s3://{BUCKET}/data/nations.csv"
format = "csv"

[views.order_totals]
materialize = "parquet"

[views.nation_names]
materialize = "parquet"

[views.top_customers]
materialize = "parquet"

[storage."s3://{BUCKET}"]
endpoint = "{}"
region = "us-east-1"
allow_http = true
max_retries = 1
{extra}"#,
            self.server.endpoint()
        );
        std::fs::write(self.dir.path().join("dfpipe.toml"), spec).unwrap();
    }

    fn view(&self, name: &str, sql: &str) {
        std::fs::create_dir_all(self.dir.path().join("views")).unwrap();
        std::fs::write(self.dir.path().join("views").join(format!("{name}.sql")), sql).unwrap();
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// `dfpipe run --json`, which must exit with `code`: the views that executed, sorted.
    fn run(&self, code: i32) -> (Vec<String>, serde_json::Value) {
        self.run_with(&[], code)
    }

    /// `dfpipe run --json` with `flags`, which must exit with `code`.
    fn run_with(&self, flags: &[&str], code: i32) -> (Vec<String>, serde_json::Value) {
        let mut args = vec!["run", self.path(), "--json"];
        args.extend_from_slice(flags);
        let out = dfpipe(&args);
        assert_eq!(out.status.code(), Some(code), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        let mut executed: Vec<String> = report["views"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["status"] != "skipped")
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect();
        executed.sort();
        (executed, report)
    }

    /// `dfpipe show --view VIEW --format csv`: its rows as CSV lines, header first.
    fn show(&self, view: &str) -> Vec<String> {
        let out = dfpipe(&["show", self.path(), "--view", view, "--format", "csv"]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let mut lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
        lines[1..].sort();
        lines
    }
}

#[test]
fn a_pipeline_on_s3_runs_reruns_nothing_and_reruns_what_changed() {
    let lake = Lake::new();
    let client = lake.server.client();

    let (executed, report) = lake.run(0);
    assert_eq!(executed, ["nation_names", "order_totals", "top_customers"], "{report}");
    assert_eq!(report["status"], "succeeded");
    for view in &executed {
        let files = client.list(&format!("out/{view}"));
        assert!(!files.is_empty() && files.iter().all(|f| f.ends_with(".parquet")), "{view}: {files:?}");
    }
    assert!(client.list("out/.staging").is_empty(), "{:?}", client.list("out/.staging"));
    assert_eq!(lake.show("top_customers"), ["o_custkey,total", "10,125.5", "20,320.0"]);

    // A second run executes nothing: the sources' listings and the outputs are as they were.
    let (executed, report) = lake.run(0);
    assert!(executed.is_empty(), "{report}");
    assert!(report["views"].as_array().unwrap().iter().all(|v| v["reason"] == "fingerprint unchanged"), "{report}");

    // A changed source object re-runs its readers, and only them.
    client.put("data/nations.csv", "n_nationkey,n_name\n0,algeria\n1,argentina\n2,brazil\n");
    let (executed, report) = lake.run(0);
    assert_eq!(executed, ["nation_names"], "{report}");
    client.put("data/orders/part-2.csv", "o_orderkey,o_custkey,o_total\n4,20,300.0\n5,30,500.0\n");
    let (executed, report) = lake.run(0);
    assert_eq!(executed, ["order_totals", "top_customers"], "{report}");
    assert_eq!(lake.show("top_customers"), ["o_custkey,total", "10,125.5", "20,320.0", "30,500.0"]);

    // A deleted output re-runs its view.
    assert!(client.delete_all("out/nation_names") > 0);
    let plan = dfpipe(&["plan", lake.path(), "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let view = plan["views"].as_array().unwrap().iter().find(|v| v["name"] == "nation_names").unwrap().clone();
    assert_eq!((&view["will_run"], &view["reason"]), (&true.into(), &"output missing".into()), "{plan}");
    let (executed, report) = lake.run(0);
    assert_eq!(executed, ["nation_names"], "{report}");
    let view = report["views"].as_array().unwrap().iter().find(|v| v["name"] == "nation_names").unwrap().clone();
    assert_eq!(view["rows"], 3, "{report}");
    let (executed, report) = lake.run(0);
    assert!(executed.is_empty(), "{report}");
}

#[test]
fn a_commit_that_crashed_on_s3_is_repaired_by_the_next_run() {
    let lake = Lake::new();
    let client = lake.server.client();
    lake.run(0);
    let before = client.list("out/order_totals");

    // What a crash half way through a commit leaves: the previous output copied aside and
    // marked complete, then deleted, and the new output copied in only in part.
    for key in &before {
        client.copy(key, &key.replace("out/order_totals/", "out/.staging/order_totals.retired/"));
    }
    client.put("out/.staging/order_totals.retired/_dfpipe_retired_complete", "");
    client.delete_all("out/order_totals");
    client.put("out/order_totals/part-of-the-new-output.parquet", "half a file");
    client.put("out/.staging/order_totals-1-2/part-0.parquet", "the staged output");

    // `run` restores the previous output before it plans anything; since it is the output
    // the view's fingerprint was built from, nothing executes.
    let (executed, report) = lake.run(0);
    assert!(executed.is_empty(), "{report}");
    assert_eq!(client.list("out/order_totals"), before);
    assert!(client.list("out/.staging").is_empty(), "{:?}", client.list("out/.staging"));
    assert_eq!(lake.show("top_customers"), ["o_custkey,total", "10,125.5", "20,320.0"]);
}

#[test]
fn stopping_the_server_mid_write_leaves_the_previous_output_readable() {
    let lake = Lake::new();
    // A view writing many small files one after the other, for a write long enough to stop
    // the server in the middle of it; and a lazy reader of its committed output.
    lake.write_spec(
        "\n[views.series]\nmaterialize = \"parquet\"\n\n[profile.writer]\nminimum_parallel_output_files = 1\n\
         soft_max_rows_per_output_file = 20000\n",
    );
    lake.view("series", "SELECT value AS x, value * 2 AS y FROM generate_series(1, 1000000)");
    lake.view("series_summary", "SELECT count(*) AS n, sum(y) AS total FROM series");
    lake.run(0);
    let previous = lake.show("series_summary");
    assert_eq!(previous, ["n,total", "1000000,1000001000000"]);

    // The view changes; its new write is cut off when the server stops.
    lake.view("series", "SELECT value AS x, value * 3 AS y FROM generate_series(1, 1000000)");
    let mut run = dfpipe_command(&["run", lake.path(), "--json"], ACCESS_KEY, SECRET_KEY);
    let mut run = run.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let staging = lake.server.bucket_dir().join("out").join(".staging");
    let deadline = Instant::now() + Duration::from_mins(2);
    while !has_files(&staging) {
        assert!(run.try_wait().unwrap().is_none(), "the run ended before writing anything to staging");
        assert!(Instant::now() < deadline, "no staged object appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut server = lake.server;
    server.stop();
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the view fails, the run reports it: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let series = report["views"].as_array().unwrap().iter().find(|v| v["name"] == "series").unwrap();
    assert_eq!(series["status"], "failed", "{report}");

    // Once the server is back (same port, same data), the previous output is whole.
    server.restart();
    let lake = Lake { dir: lake.dir, server };
    assert_eq!(lake.show("series_summary"), previous);
    assert!(has_files(&staging), "the failed write left staged objects for the next run to remove");

    // The next run removes the leftovers and writes the new output.
    let (executed, report) = lake.run(0);
    assert_eq!(executed, ["series"], "{report}");
    assert_eq!(lake.show("series_summary"), ["n,total", "1000000,1500001500000"]);
    assert!(lake.server.client().list("out/.staging").is_empty());
}

/// Runs `dfpipe` with the test server's credentials, and no other `AWS_*` variable.
fn dfpipe(args: &[&str]) -> Output {
    dfpipe_command(args, ACCESS_KEY, SECRET_KEY).output().unwrap()
}

/// `dfpipe` with these credentials, and no other `AWS_*` variable.
fn dfpipe_command(args: &[&str], key: &str, secret: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dfpipe"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command.args(args).env("AWS_ACCESS_KEY_ID", key).env("AWS_SECRET_ACCESS_KEY", secret);
    command
}

/// Whether any file is below `dir`.
fn has_files(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() { has_files(&path) } else { !entry.file_name().to_string_lossy().starts_with('.') }
    })
}

/// A pipeline on S3 runs on two workers, each building the `[storage]` store from the
/// options the coordinator sends and the credentials of its own environment; its outputs are
/// those of a run on one machine. A worker whose environment holds wrong credentials fails
/// the views it served, naming the bucket.
#[test]
fn a_pipeline_on_s3_runs_on_workers_that_build_the_store_themselves() {
    let lake = Lake::new();
    lake.write_spec("\n[cluster]\nsettings = { \"distributed.file_scan_config_bytes_per_partition\" = \"16\" }\n");
    // Two partitions, so that plans have repartitions to cut into stages.
    let spec_file = lake.dir.path().join("dfpipe.toml");
    let spec = std::fs::read_to_string(&spec_file).unwrap().replace("target_partitions = 1", "target_partitions = 2");
    std::fs::write(&spec_file, spec).unwrap();
    let aws: Vec<String> = std::env::vars().map(|(k, _)| k).filter(|k| k.starts_with("AWS_")).collect();
    let aws: Vec<&str> = aws.iter().map(String::as_str).collect();
    let credentials = [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)];
    let workers = [Worker::start_with(&aws, &credentials), Worker::start_with(&aws, &credentials)];
    let cluster = format!("{},{}", workers[0].address, workers[1].address);

    let out = dfpipe(&["run", lake.path(), "--cluster", &cluster, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for worker in &workers {
        assert!(report["cluster"]["tasks"][&worker.address].as_u64().unwrap() > 0, "{report}");
    }
    let views = ["nation_names", "order_totals", "top_customers"];
    let out_dir = lake.server.bucket_dir().join("out");
    let on_cluster: Vec<Vec<String>> = views.iter().map(|v| rows(&out_dir.join(v))).collect();
    assert!(on_cluster.iter().all(|rows| !rows.is_empty()), "{on_cluster:?}");
    let (_, alone) = lake.run_with(&["--full"], 0);
    assert!(alone.get("cluster").is_none());
    let on_one_machine: Vec<Vec<String>> = views.iter().map(|v| rows(&out_dir.join(v))).collect();
    assert_eq!(on_cluster, on_one_machine);

    let wrong = [("AWS_ACCESS_KEY_ID", ACCESS_KEY), ("AWS_SECRET_ACCESS_KEY", "not-the-secret")];
    let (bad, good) = (Worker::start_with(&aws, &wrong), Worker::start_with(&aws, &credentials));
    let cluster = format!("{},{}", bad.address, good.address);
    let out = dfpipe(&["run", lake.path(), "--full", "--cluster", &cluster, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&serde_json::Value> =
        report["views"].as_array().unwrap().iter().filter(|v| v["status"] == "failed").collect();
    assert!(!failed.is_empty(), "{report}");
    assert!(failed.iter().all(|v| v["reason"].as_str().unwrap().contains("lake")), "{report}");
    // What failed kept its output.
    let after: Vec<Vec<String>> = views.iter().map(|v| rows(&out_dir.join(v))).collect();
    assert_eq!(after, on_one_machine);
}

#[test]
fn wrong_credentials_are_an_environment_failure_naming_the_bucket() {
    let lake = Lake::new();
    let out = dfpipe_command(&["plan", lake.path(), "--json"], ACCESS_KEY, "not-the-secret").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["error"]["kind"], "storage", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    for expected in ["s3://lake", "refused the credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(message.contains(expected), "{expected}: {message}");
    }
    assert!(!message.contains("not-the-secret"), "{message}");

    // The same on a pipeline whose sources are local and whose output is on S3.
    std::fs::create_dir_all(lake.dir.path().join("data/orders")).unwrap();
    std::fs::write(lake.dir.path().join("data/orders/part-1.csv"), ORDERS_1).unwrap();
    std::fs::write(lake.dir.path().join("data/nations.csv"), NATIONS).unwrap();
    let spec = std::fs::read_to_string(lake.dir.path().join("dfpipe.toml")).unwrap();
    std::fs::write(lake.dir.path().join("dfpipe.toml"), spec.replace("s3://lake/data/", "data/")).unwrap();
    let out = dfpipe_command(&["run", lake.path()], "nobody", SECRET_KEY).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("s3://lake/out") && stderr.contains("refused the credentials"), "{stderr}");
}

#[test]
fn secrets_in_the_storage_table_are_refused() {
    let lake = Lake::new();
    lake.write_spec("aws_secret_access_key = \"hunter2\"\n");
    let out = dfpipe(&["plan", lake.path()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in ["dfpipe.toml", "`aws_secret_access_key` looks like a credential", "AWS_SECRET_ACCESS_KEY"] {
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}
