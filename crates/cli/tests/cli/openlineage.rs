//! `dfpipe run --openlineage` end to end: the events of a demo run received by a real HTTP
//! server on 127.0.0.1, parsed back into the OpenLineage model, checked against
//! `lineage --format json`; `file:` targets and `[openlineage]` in dfpipe.toml; a failing
//! view; an endpoint that refuses connections; bad targets and keys.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use dfpipe_openlineage::model::RunEvent;
use dfpipe_openlineage::model::event::RunEventType;
use dfpipe_openlineage::model::facets::TransformationType;
use serde_json::Value;

use crate::support::{json, stderr};

fn dfpipe(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dfpipe"));
    command.args(args).env_remove("OPENLINEAGE_API_KEY");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("running dfpipe")
}

/// Every line of `text` as an OpenLineage event of the typed model.
fn events(text: &str) -> Vec<RunEvent> {
    text.lines()
        .map(|line| serde_json::from_str::<RunEvent>(line).unwrap_or_else(|e| panic!("{e}: not an event: {line}")))
        .collect()
}

/// One request the endpoint received.
struct Received {
    method: String,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

/// An OpenLineage endpoint on 127.0.0.1 that records what it receives and answers 201.
fn endpoint() -> (String, Arc<Mutex<Vec<Received>>>) {
    endpoint_answering(201)
}

/// An endpoint on 127.0.0.1 that records what it receives and answers `status`.
fn endpoint_answering(status: u16) -> (String, Arc<Mutex<Vec<Received>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("an HTTP server on 127.0.0.1");
    let url = format!("http://{}", server.server_addr().to_ip().expect("an IP address"));
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&received);
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let header = |name: &'static str| {
                request.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.as_str().to_owned())
            };
            let (authorization, content_type) = (header("Authorization"), header("Content-Type"));
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body).expect("a request body");
            kept.lock().unwrap().push(Received {
                method: request.method().to_string(),
                path: request.url().to_owned(),
                authorization,
                content_type,
                body,
            });
            let _ = request.respond(tiny_http::Response::from_string("lineage store is down").with_status_code(status));
        }
    });
    (url, received)
}

/// The demo pipeline laid out under `dir` at scale factor 0.001 (by a `plan` of the demo),
/// to use as a pipeline directory of its own.
fn pipeline(dir: &Path) -> std::path::PathBuf {
    let out = dfpipe(&["plan", "--scale-factor", "0.001"], &[("DFPIPE_DEMO_DIR", dir.to_str().unwrap())]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir.join("sf-0.001")
}

fn append(dir: &Path, text: &str) {
    let file = dir.join("dfpipe.toml");
    let spec = std::fs::read_to_string(&file).unwrap() + text;
    std::fs::write(file, spec).unwrap();
}

/// The relation a dataset stands for: the last part of its name.
fn relation(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_owned()
}

/// `columnLineage` of `event`'s output, field by field, against the view's entry of
/// `lineage --format json`: the sources as `DIRECT` input fields (`copy` is `IDENTITY`,
/// `transform` is `AGGREGATION` when aggregated, else `TRANSFORMATION`), the inspected
/// columns as `INDIRECT` input fields of every field. Returns the subtypes seen.
fn check_column_lineage(event: &RunEvent, view: &Value) -> BTreeSet<String> {
    let name = view["name"].as_str().unwrap();
    let output = &event.outputs[0];
    let facet = output.facets.column_lineage.as_ref().unwrap_or_else(|| panic!("{name}: no columnLineage"));
    let columns = view["columns"].as_array().unwrap();
    assert_eq!(facet.fields.len(), columns.len(), "{name}");
    let inspected: BTreeSet<(String, String, String)> = (view["inspected"].as_array().unwrap().iter())
        .map(|i| {
            let role = match i["role"].as_str().unwrap() {
                "group" => "GROUP_BY".to_owned(),
                other => other.to_uppercase(),
            };
            (i["relation"].as_str().unwrap().to_owned(), i["column"].as_str().unwrap().to_owned(), role)
        })
        .collect();
    let mut subtypes = BTreeSet::new();
    for column in columns {
        let field = column["name"].as_str().unwrap();
        let expected: BTreeSet<(String, String, String)> = (column["sources"].as_array().unwrap().iter())
            .map(|s| {
                let subtype = match (s["kind"].as_str().unwrap(), s["aggregated"].as_bool().unwrap_or(false)) {
                    ("copy", _) => "IDENTITY",
                    ("transform", true) => "AGGREGATION",
                    _ => "TRANSFORMATION",
                };
                (
                    s["relation"].as_str().unwrap().to_owned(),
                    s["column"].as_str().unwrap().to_owned(),
                    subtype.to_owned(),
                )
            })
            .collect();
        let lineage = facet.fields.get(field).unwrap_or_else(|| panic!("{name}.{field}: not in columnLineage"));
        let (mut direct, mut indirect) = (BTreeSet::new(), BTreeSet::new());
        for input in &lineage.input_fields {
            for t in &input.transformations {
                let entry = (relation(&input.name), input.field.clone().unwrap(), t.subtype.clone().unwrap());
                subtypes.insert(entry.2.clone());
                match t.type_ {
                    TransformationType::Direct => direct.insert(entry),
                    TransformationType::Indirect => indirect.insert(entry),
                };
            }
        }
        assert_eq!(direct, expected, "{name}.{field}: direct input fields");
        assert_eq!(indirect, inspected, "{name}.{field}: indirect input fields");
    }
    let inputs: BTreeSet<String> = event.inputs.iter().map(|d| relation(&d.name)).collect();
    let depends_on: BTreeSet<String> =
        view["depends_on"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect();
    assert_eq!(inputs, depends_on, "{name}: input datasets");
    subtypes
}

fn facets_json(event: &RunEvent) -> (Value, Value, Value) {
    let output = &event.outputs[0];
    (
        serde_json::to_value(&output.facets).unwrap(),
        serde_json::to_value(&output.output_facets).unwrap(),
        serde_json::to_value(&event.job.facets).unwrap(),
    )
}

#[test]
fn a_demo_run_sends_its_events_to_an_http_endpoint() {
    let demo = tempfile::tempdir().unwrap();
    let demo_dir = demo.path().to_str().unwrap();
    let (url, received) = endpoint();
    let env = [("DFPIPE_DEMO_DIR", demo_dir), ("OPENLINEAGE_API_KEY", "s3cr3t")];
    let run = dfpipe(&["run", "--scale-factor", "0.01", "--openlineage", &url, "--json"], &env);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(!stderr(&run).contains("warning"), "{}", stderr(&run));
    let report = json(&run);
    let received = std::mem::take(&mut *received.lock().unwrap());
    for request in &received {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/api/v1/lineage"));
        assert_eq!(request.authorization.as_deref(), Some("Bearer s3cr3t"));
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
    }
    let sent = events(&received.iter().map(|r| r.body.as_str()).collect::<Vec<_>>().join("\n"));

    // The pipeline's run: START first, COMPLETE last.
    let (first, last) = (&sent[0], &sent[sent.len() - 1]);
    assert_eq!((first.event_type, last.event_type), (RunEventType::Start, RunEventType::Complete));
    assert_eq!((first.job.namespace.as_str(), first.job.name.as_str()), ("tpch", "tpch"));
    assert_eq!(first.run.run_id, last.run.run_id);
    let pipeline_run = first.run.run_id.to_string();

    // A child run per executed view: START then COMPLETE, under the pipeline's run.
    let executed: BTreeMap<String, u64> = (report["views"].as_array().unwrap().iter())
        .filter(|v| v["status"] == "succeeded")
        .map(|v| (v["name"].as_str().unwrap().to_owned(), v["rows"].as_u64().unwrap()))
        .collect();
    assert_eq!(executed.len(), 22);
    assert_eq!(sent.len(), 2 + 2 * executed.len());
    let lineage = dfpipe(&["lineage", "--scale-factor", "0.01", "--format", "json"], &env);
    let lineage = json(&lineage);
    let mut subtypes = BTreeSet::new();
    let mut completes = BTreeMap::new();
    for (view, rows) in &executed {
        let job = format!("tpch.{view}");
        let of_view: Vec<&RunEvent> = sent.iter().filter(|e| e.job.name == job).collect();
        let kinds: Vec<RunEventType> = of_view.iter().map(|e| e.event_type).collect();
        assert_eq!(kinds, [RunEventType::Start, RunEventType::Complete], "{view}");
        for event in &of_view {
            let parent = event.run.facets.parent.as_ref().unwrap_or_else(|| panic!("{view}: no parent facet"));
            assert_eq!((parent.run.run_id.as_str(), parent.job.name.as_str()), (pipeline_run.as_str(), "tpch"));
            assert_ne!(event.run.run_id, first.run.run_id);
            let job_type = event.job.facets.job_type.as_ref().unwrap();
            assert_eq!((job_type.processing_type.as_str(), job_type.integration.as_str()), ("BATCH", "DFPIPE"));
        }
        let complete = of_view[1];
        assert_eq!(complete.run.run_id, of_view[0].run.run_id);
        let sql = &complete.job.facets.sql.as_ref().unwrap().query;
        let file = Path::new(demo_dir).join("sf-0.01").join("views").join(format!("{view}.sql"));
        assert_eq!(sql, &std::fs::read_to_string(file).unwrap(), "{view}");
        let output = &complete.outputs[0];
        assert_eq!(output.namespace, "file");
        assert!(output.name.ends_with(&format!("/out/{view}")), "{}", output.name);
        let statistics = output.output_facets.as_ref().and_then(|f| f.output_statistics.as_ref()).unwrap();
        assert_eq!(statistics.row_count, Some(*rows as i64), "{view}");
        assert!(statistics.size.unwrap() > 0 && statistics.file_count.unwrap() > 0, "{view}");
        let schema = output.facets.schema.as_ref().unwrap();
        let entry = (lineage["views"].as_array().unwrap().iter()).find(|v| v["name"] == view.as_str()).unwrap();
        assert_eq!(schema.fields.len(), entry["columns"].as_array().unwrap().len(), "{view}");
        subtypes.extend(check_column_lineage(complete, entry));
        for input in &complete.inputs {
            let source = !input.name.starts_with("stg_");
            assert_eq!(input.namespace, if source { "file" } else { "tpch" }, "{view}: {}", input.name);
        }
        completes.insert(job, complete);
    }
    // Every mapping of dfpipe's lineage shows up in the demo.
    for subtype in ["IDENTITY", "TRANSFORMATION", "AGGREGATION", "FILTER", "JOIN", "GROUP_BY", "SORT"] {
        assert!(subtypes.contains(subtype), "no {subtype} in {subtypes:?}");
    }

    // `lineage --format openlineage` prints the same facets without running anything.
    let printed = dfpipe(&["lineage", "--scale-factor", "0.01", "--format", "openlineage"], &env);
    assert_eq!(printed.status.code(), Some(0), "{}", stderr(&printed));
    let printed = events(&String::from_utf8(printed.stdout).unwrap());
    assert_eq!(printed.len(), 30);
    for event in &printed {
        assert_eq!(event.event_type, RunEventType::Other);
        let view = event.job.name.trim_start_matches("tpch.");
        let entry = (lineage["views"].as_array().unwrap().iter()).find(|v| v["name"] == view).unwrap();
        check_column_lineage(event, entry);
        if let Some(complete) = completes.get(&event.job.name) {
            assert_eq!(facets_json(event), facets_json(complete), "{view}");
        }
    }
    // A second run executes nothing, and sends only the pipeline's START and COMPLETE.
    let (url, received) = endpoint();
    let rerun = dfpipe(&["run", "--scale-factor", "0.01", "--openlineage", &url], &env);
    assert_eq!(rerun.status.code(), Some(0), "{}", stderr(&rerun));
    let kinds: Vec<RunEventType> = received.lock().unwrap().iter().map(|r| events(&r.body)[0].event_type).collect();
    assert_eq!(kinds, [RunEventType::Start, RunEventType::Complete]);
}

#[test]
fn a_failing_view_sends_fail_with_its_error_to_the_file_of_dfpipe_toml() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = pipeline(tmp.path());
    let file = dir.join("events.jsonl");
    append(
        &dir,
        &format!(
            "\n[views.bad]\nmaterialize = \"parquet\"\n\n[views.after_bad]\nmaterialize = \"parquet\"\n\n\
             [openlineage]\nurl = \"file:{}\"\nnamespace = \"shop\"\n",
            file.display()
        ),
    );
    let views = dir.join("views");
    std::fs::write(views.join("bad.sql"), "select o_orderkey, cast(o_comment as int) as broken from stg_orders")
        .unwrap();
    std::fs::write(views.join("after_bad.sql"), "select count(*) as n from bad").unwrap();
    let path = dir.to_str().unwrap();
    let run = dfpipe(&["run", path, "--select", "bad+,q06"], &[]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let sent = events(&std::fs::read_to_string(&file).unwrap());
    let kinds =
        |job: &str| -> Vec<RunEventType> { sent.iter().filter(|e| e.job.name == job).map(|e| e.event_type).collect() };
    assert!(sent.iter().all(|e| e.job.namespace == "shop"));
    assert_eq!(kinds("tpch.bad"), [RunEventType::Start, RunEventType::Fail]);
    assert_eq!(kinds("tpch.q06"), [RunEventType::Start, RunEventType::Complete]);
    // A view that never started (its upstream failed) sends nothing.
    assert!(kinds("tpch.after_bad").is_empty());
    let fail = sent.iter().find(|e| e.job.name == "tpch.bad" && e.event_type == RunEventType::Fail).unwrap();
    let message = &fail.run.facets.error_message.as_ref().expect("an errorMessage facet").message;
    assert!(message.to_lowercase().contains("cast"), "{message}");
    let end = sent.last().unwrap();
    assert_eq!((end.job.name.as_str(), end.event_type), ("tpch", RunEventType::Fail));
    let message = &end.run.facets.error_message.as_ref().unwrap().message;
    assert!(message.contains("view `bad` failed") && message.contains("view `after_bad` upstream_failed"), "{message}");

    // The flag wins over the file of dfpipe.toml.
    let flagged = dir.join("flag.jsonl");
    let target = format!("file:{}", flagged.display());
    let run = dfpipe(&["run", path, "--select", "bad", "--openlineage", &target], &[]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert_eq!(events(&std::fs::read_to_string(&flagged).unwrap()).len(), 4);
    assert_eq!(events(&std::fs::read_to_string(&file).unwrap()).len(), sent.len());
}

#[test]
fn an_endpoint_that_refuses_connections_changes_nothing_but_a_warning() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (with, without) = (pipeline(a.path()), pipeline(b.path()));
    let run = dfpipe(&["run", with.to_str().unwrap(), "--json", "--openlineage", &url], &[]);
    let plain = dfpipe(&["run", without.to_str().unwrap(), "--json"], &[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let warning = stderr(&run);
    assert!(
        warning.contains(&format!("warning: OpenLineage events not delivered to {url}/api/v1/lineage")),
        "{warning}"
    );
    assert!(warning.to_lowercase().contains("refused"), "{warning}");
    assert!(!stderr(&plain).contains("warning"), "{}", stderr(&plain));
    let outcome = |report: &Value| -> Vec<(Value, Value, Value)> {
        (report["views"].as_array().unwrap().iter())
            .map(|v| (v["name"].clone(), v["status"].clone(), v["rows"].clone()))
            .collect()
    };
    let (run, plain) = (json(&run), json(&plain));
    assert_eq!(run["status"], plain["status"]);
    assert_eq!(outcome(&run), outcome(&plain));

    // An endpoint that answers with an error: the same warning, with its answer; sending
    // stops at the first refusal.
    let (url, received) = endpoint_answering(503);
    let rerun = dfpipe(&["run", with.to_str().unwrap(), "--openlineage", &url], &[]);
    assert_eq!(rerun.status.code(), Some(0), "{}", stderr(&rerun));
    let warning = stderr(&rerun);
    assert!(warning.contains("answered 503 Service Unavailable: lineage store is down"), "{warning}");
    assert!(warning.contains("(2 of 2 events dropped)"), "{warning}");
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[test]
fn bad_targets_and_keys_exit_2_and_say_what_is_wrong() {
    for (bad, says) in [
        ("ftp://marquez/x", "only http://, https:// and file: targets"),
        ("file:", "`file:` needs a path"),
        ("marquez:5000", "only http://, https:// and file: targets"),
        ("localhost:5000", "only http://, https:// and file: targets"),
        ("not a url", "relative URL without a base"),
    ] {
        let out = dfpipe(&["run", "/nonexistent", "--openlineage", bad], &[]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        let message = stderr(&out);
        assert!(message.contains("--openlineage") && message.contains(&format!("`{bad}`")), "{message}");
        assert!(message.contains(says), "{bad}: {message}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    for (table, says) in [
        ("[openlineage]\nurl = \"nope\"\n", "line 4: [openlineage] url: `nope` is not an OpenLineage target"),
        ("[openlineage]\nendpoint = \"http://x\"\n", "unknown field `endpoint`"),
        ("[openlineage]\nurl = 5\n", "invalid type"),
    ] {
        std::fs::write(dir.path().join("dfpipe.toml"), format!("[pipeline]\nname = \"p\"\n{table}")).unwrap();
        let out = dfpipe(&["run", path], &[]);
        assert_eq!(out.status.code(), Some(2), "{table}: {}", stderr(&out));
        let message = stderr(&out);
        assert!(message.contains("dfpipe.toml") && message.contains("line 4"), "{table}: {message}");
        assert!(message.contains(says), "{table}: {message}");
    }
    let out = dfpipe(&["lineage", path, "--deep", "--format", "openlineage"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--deep"), "{}", stderr(&out));
}
