//! Fuzzing of the store's decoder: files under `.dfpipe/runs`, `.dfpipe/bundles` and
//! `.dfpipe/environments` made of random bytes, or of real envelopes of every schema version
//! (the committed fixtures, and files this version writes) truncated, bit-flipped, spliced or
//! cut into. Reading them never panics; an error names the file.
//!
//! `DFPIPE_FUZZ_CASES` sets the number of inputs per strategy (`cargo xtask fuzz`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use dfpipe_artifacts::{
    CaptureOptions, Environment, Fingerprint, RunRecord, RunStatus, Store, SubstraitMode, ViewRecord, ViewStatus,
    WriteRecord, capture,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::FIXTURES;

const RUN_ID: &str = "00000000000000000009";
const FINGERPRINT: &str = "0123456789abcdef0123456789abcdef";

/// Which kind of store file a case is read as.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Run,
    Bundle,
    Environment,
}

impl Kind {
    fn path(self, store: &Path) -> PathBuf {
        match self {
            Self::Run => store.join("runs").join(format!("{RUN_ID}.msgpack")),
            Self::Bundle => store.join("bundles").join(format!("{FINGERPRINT}.msgpack")),
            Self::Environment => store.join("environments").join(format!("{FINGERPRINT}.msgpack")),
        }
    }
}

/// Real store files of every version, each with the kind it is read as.
fn seeds() -> Vec<(Kind, Vec<u8>)> {
    let mut seeds = Vec::new();
    for version in ["v1", "v2"] {
        for (dir, kind) in [("runs", Kind::Run), ("bundles", Kind::Bundle)] {
            for entry in std::fs::read_dir(Path::new(FIXTURES).join(version).join(dir)).unwrap() {
                seeds.push((kind, std::fs::read(entry.unwrap().path()).unwrap()));
            }
        }
    }
    // Files this version writes: a run with a write record, a captured bundle, an environment.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let write = WriteRecord {
        target: "out/v".to_owned(),
        format: "parquet".to_owned(),
        files: 2,
        rows: 4,
        options: BTreeMap::from([("compression".to_owned(), "zstd(3)".to_owned())]),
        ..WriteRecord::default()
    };
    let run = RunRecord {
        run_id: RUN_ID.to_owned(),
        status: RunStatus::Failed,
        views: vec![ViewRecord {
            name: "v".to_owned(),
            fingerprint: Fingerprint(FINGERPRINT.to_owned()),
            output_fingerprint: Some(Fingerprint(FINGERPRINT.to_owned())),
            status: ViewStatus::Succeeded,
            reason: Some("why".to_owned()),
            rows: Some(4),
            duration_ms: Some(3),
            started_ms: Some(1),
            worker: Some(0),
            cost_ms: Some(3),
            metrics: BTreeMap::from([("bytes".to_owned(), 10)]),
            measured_on_cluster: true,
            write: Some(write.with_report(&BTreeMap::from([("a", 1)])).unwrap()),
        }],
        environment: Some(Fingerprint(FINGERPRINT.to_owned())),
        workers: Some(2),
        cluster: None,
    };
    seeds.push((Kind::Run, std::fs::read(store.put_run(&run).unwrap()).unwrap()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ctx = SessionContext::new_with_config(datafusion::prelude::SessionConfig::new().with_information_schema(true));
    let schema =
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false), Field::new("b", DataType::Utf8, true)]));
    ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![vec![]]).unwrap())).unwrap();
    let bundle = runtime.block_on(async {
        let plan = ctx.state().create_logical_plan("SELECT b, count(a) AS n FROM t WHERE a > 1 GROUP BY b").await?;
        let options = CaptureOptions {
            substrait: SubstraitMode::Strict,
            validate_substrait: true,
            explain_verbose: true,
            unparse: true,
        };
        Ok::<_, Box<dyn std::error::Error>>(capture("v", &plan, &ctx.state(), options).await?.bundle)
    });
    let bundle = bundle.unwrap();
    let fingerprint = Fingerprint(FINGERPRINT.to_owned());
    seeds.push((Kind::Bundle, std::fs::read(store.put_bundle(&fingerprint, &bundle).unwrap()).unwrap()));
    let environment = runtime.block_on(Environment::snapshot(&ctx)).unwrap();
    store.put_environment(&environment).unwrap();
    let environment_file = Kind::Environment.path(dir.path());
    let stored = std::fs::read_dir(dir.path().join("environments")).unwrap().next().unwrap().unwrap().path();
    std::fs::create_dir_all(environment_file.parent().unwrap()).unwrap();
    seeds.push((Kind::Environment, std::fs::read(stored).unwrap()));
    seeds
}

/// One change to a file's bytes; positions are fractions of its length.
#[derive(Debug, Clone)]
enum Mutation {
    Truncate(f64),
    FlipBit(f64, u8),
    SetByte(f64, u8),
    Insert(f64, Vec<u8>),
    Delete(f64, usize),
    /// The bytes from here on replaced by those of another seed, from the same place.
    Splice(f64, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        at.clone().prop_map(Mutation::Truncate),
        (at.clone(), 0..8u8).prop_map(|(a, b)| Mutation::FlipBit(a, b)),
        // msgpack markers that claim lengths and types: fixmap, array32, bin32, str32, ...
        (at.clone(), prop::sample::select(&[0x80, 0x9f, 0xc0, 0xc4, 0xc6, 0xcf, 0xd3, 0xdb, 0xdd, 0xdf, 0xff][..]))
            .prop_map(|(a, b)| Mutation::SetByte(a, b)),
        (at.clone(), any::<u8>()).prop_map(|(a, b)| Mutation::SetByte(a, b)),
        (at.clone(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(a, b)| Mutation::Insert(a, b)),
        (at.clone(), 1..64usize).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (at, any::<usize>()).prop_map(|(a, s)| Mutation::Splice(a, s)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation], seeds: &[(Kind, Vec<u8>)]) -> Vec<u8> {
    for mutation in mutations {
        let at = |f: f64, len: usize| ((len as f64 * f) as usize).min(len);
        let len = bytes.len();
        match mutation {
            Mutation::Truncate(f) => bytes.truncate(at(*f, len)),
            Mutation::FlipBit(f, bit) if len > 0 => bytes[at(*f, len - 1)] ^= 1 << bit,
            Mutation::SetByte(f, byte) if len > 0 => bytes[at(*f, len - 1)] = *byte,
            Mutation::Insert(f, new) => drop(bytes.splice(at(*f, len)..at(*f, len), new.iter().copied())),
            Mutation::Delete(f, n) => drop(bytes.drain(at(*f, len)..(at(*f, len) + n).min(len))),
            Mutation::Splice(f, seed) => {
                let other = &seeds[seed % seeds.len()].1;
                let from = at(*f, len).min(other.len());
                bytes.truncate(from);
                bytes.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    bytes
}

/// Writes `bytes` as the store file of `kind` and reads the store: every reader returns a
/// value or an error naming the file.
fn read_back(store_dir: &Path, kind: Kind, bytes: &[u8]) -> Result<(), TestCaseError> {
    let _ = std::fs::remove_dir_all(store_dir);
    let path = kind.path(store_dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let store = Store::open(store_dir).unwrap();
    let fingerprint = Fingerprint(FINGERPRINT.to_owned());
    let results: Vec<Result<(), dfpipe_artifacts::ArtifactError>> = match kind {
        Kind::Run => vec![
            store.run(RUN_ID).map(drop),
            store.latest_run().map(drop),
            store.last_write("v").and_then(|w| match w {
                Some((_, write)) => write.report::<BTreeMap<String, i64>>().map(drop),
                None => Ok(()),
            }),
        ],
        Kind::Bundle => vec![store.bundle(&fingerprint).map(drop)],
        Kind::Environment => vec![store.environment(&fingerprint).map(drop)],
    };
    for result in results.into_iter().chain([store.migrate().map(drop)]) {
        if let Err(error) = result {
            let message = error.to_string();
            let named = message.contains(&path.display().to_string()) || message.starts_with("write report:");
            prop_assert!(named, "{message}");
        }
    }
    Ok(())
}

fn config(cases: u32) -> Config {
    let cases = std::env::var("DFPIPE_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
    Config { cases, failure_persistence: None, ..Config::default() }
}

#[test]
fn fuzz_store_mutated_envelopes() {
    let seeds = seeds();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join(".dfpipe");
    let strategy = (0..seeds.len(), prop::collection::vec(mutation(), 1..6));
    let outcome = TestRunner::new(config(600)).run(&strategy, |(seed, mutations)| {
        let (kind, bytes) = &seeds[seed];
        read_back(&store, *kind, &mutate(bytes.clone(), &mutations, &seeds))
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

#[test]
fn fuzz_store_random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join(".dfpipe");
    let kinds = prop::sample::select(&[Kind::Run, Kind::Bundle, Kind::Environment][..]);
    // Random bytes, and random bytes behind a valid header.
    let header = |kind: &str| {
        let mut bytes = vec![0x83, 0xae];
        bytes.extend_from_slice(b"schema_version");
        bytes.push(0x03);
        bytes.push(0xa4);
        bytes.extend_from_slice(b"kind");
        bytes.push(0xa0 | kind.len() as u8);
        bytes.extend_from_slice(kind.as_bytes());
        bytes.push(0xa7);
        bytes.extend_from_slice(b"payload");
        bytes
    };
    let strategy = (kinds, any::<bool>(), prop::collection::vec(any::<u8>(), 0..512));
    let outcome = TestRunner::new(config(600)).run(&strategy, |(kind, with_header, tail)| {
        let mut bytes = if with_header {
            header(match kind {
                Kind::Run => "run",
                Kind::Bundle => "bundle",
                Kind::Environment => "environment",
            })
        } else {
            Vec::new()
        };
        bytes.extend_from_slice(&tail);
        read_back(&store, kind, &bytes)
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

#[test]
fn the_seeds_read_back_whole() {
    let seeds = seeds();
    assert_eq!(seeds.len(), 7);
    let dir = tempfile::tempdir().unwrap();
    for (kind, bytes) in &seeds {
        read_back(&dir.path().join(".dfpipe"), *kind, bytes).unwrap();
    }
}
