//! The artifact store under `<pipeline>/.dfpipe/`: bundles by fingerprint, run records, and
//! environment snapshots by content.
//!
//! ```text
//! .dfpipe/
//!   bundles/<fingerprint>.msgpack        a view's PlanBundle, under the fingerprint it sealed
//!   runs/<run id>.msgpack                a RunRecord: what one run did with every view
//!   environments/<hash>.msgpack          an Environment, under Environment::fingerprint
//!   run.lock                             the run lock: held by the one run writing (lock.rs)
//! ```
//!
//! Every file is an rmp-serde envelope `{schema_version, kind, payload}`, written atomically
//! (temporary file, fsync, rename). A file that does not decode, or that a newer dfpipe
//! wrote, is an error naming the file; it is never silently used or overwritten. Files of an
//! older schema version are migrated when read, and rewritten by [`Store::migrate`].
//!
//! A view's write report is kept in its [`ViewRecord`], inside the run record, rather than in
//! a file of its own: it is written with the run it belongs to, atomically, and
//! [`Store::last_write`] finds the last one of a view. The [`WriteRecord`] holds the figures
//! and options a diff compares, and the writer's full report as opaque bytes, so that this
//! crate knows nothing of the writer.
//!
//! Versions:
//! - 1: bundles held the plans, lineage (relations, scans, functions) and Substrait bytes.
//! - 2: bundles add the tree and verbose explains, the output schema, column lineage and
//!   inspected columns, Substrait validation, unparsed SQL, the fingerprint's ingredients
//!   and execution metrics. Run records are unchanged.
//! - 3: environment snapshots are stored (`environments/`), and a run record names the one
//!   it planned in (`environment`). A view record adds its write (`write`: target, format,
//!   files, rows, bytes, options, and the full report). Statuses are typed ([`RunStatus`],
//!   [`ViewStatus`]) with the same encoding as the strings of version 2. Bundles add the
//!   physical optimizer's rule deltas (`physical_verbose`). A version 2 file decodes as
//!   version 3 with the new fields empty. Later additions within version 3, absent from
//!   older files of that version and read as `None`: a run's `workers`, a view record's
//!   `started_ms` and `worker` (when and where it ran, for the report's Gantt chart).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{ArtifactError, Environment, Fingerprint, PlanBundle, Result};
use dfpipe_plan_walk::Lineage;

/// The version of the store's file format that this dfpipe writes.
pub const SCHEMA_VERSION: u32 = 3;

/// What one run did, written when the run ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run's id: sortable by start time.
    pub run_id: String,
    /// Whether it did everything it was asked.
    pub status: RunStatus,
    /// Every view of the pipeline, in name order.
    pub views: Vec<ViewRecord>,
    /// The environment the run planned in, as stored by [`Store::put_environment`].
    #[serde(default)]
    pub environment: Option<Fingerprint>,
    /// How many views it ran at once, at most. `None` in records of older dfpipes.
    #[serde(default)]
    pub workers: Option<usize>,
    /// The cluster its views' plans ran on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterRun>,
}

/// The cluster a run's plans ran on: its workers, and how many tasks of the run each was
/// given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRun {
    /// The workers, `HOST:PORT`.
    pub workers: Vec<String>,
    /// Tasks given to each worker, by `HOST:PORT`.
    pub tasks: BTreeMap<String, usize>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every view that had to run ran, and every contract held.
    #[default]
    Succeeded,
    /// A view or a contract failed, or the run was stopped before it did all it was asked.
    Failed,
}

impl RunStatus {
    /// The status as recorded and reported: `succeeded` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Compares with the status's name, as in JSON documents: `status == "succeeded"`.
impl PartialEq<&str> for RunStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What a run did with one view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewStatus {
    /// It ran, and its output was committed.
    Succeeded,
    /// It did not run: nothing to do, not selected, or stopped before it started.
    #[default]
    Skipped,
    /// It ran and failed, or its contract did not hold.
    Failed,
    /// It did not run because a view it reads failed.
    UpstreamFailed,
}

impl ViewStatus {
    /// The status as recorded and reported: `succeeded`, `skipped`, `failed` or
    /// `upstream_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::UpstreamFailed => "upstream_failed",
        }
    }

    /// Whether the view failed, by itself or through its upstream.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::UpstreamFailed)
    }
}

impl fmt::Display for ViewStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Compares with the status's name, as in JSON documents: `status == "succeeded"`.
impl PartialEq<&str> for ViewStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What a run did with one view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ViewRecord {
    /// The view.
    pub name: String,
    /// Its fingerprint in this run.
    pub fingerprint: Fingerprint,
    /// The fingerprint its committed output was built from, if it has one: this run's
    /// fingerprint when it ran and committed, else carried over from the previous run.
    #[serde(default)]
    pub output_fingerprint: Option<Fingerprint>,
    /// What the run did with it.
    pub status: ViewStatus,
    /// Why, for anything but `succeeded`.
    pub reason: Option<String>,
    /// Rows written, for a materialized view that ran.
    pub rows: Option<u64>,
    /// Wall time in milliseconds, for a view that ran.
    pub duration_ms: Option<u64>,
    /// When it started, in milliseconds from the start of the run's execution, for a view
    /// that ran. `None` in records of older dfpipes.
    #[serde(default)]
    pub started_ms: Option<u64>,
    /// The worker slot it ran in (`0` to `workers - 1`), for a view that ran.
    #[serde(default)]
    pub worker: Option<usize>,
    /// The cost to schedule the view by next time: its last measured wall time in
    /// milliseconds, carried over by runs that skip it.
    #[serde(default)]
    pub cost_ms: Option<u64>,
    /// Measured figures (bytes written, files, ...), by name.
    pub metrics: BTreeMap<String, u64>,
    /// Whether `cost_ms` and `metrics` were measured on a cluster: a run on one machine
    /// does not cost its views by measurements of a cluster, nor the reverse.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub measured_on_cluster: bool,
    /// What its write did, for a view whose output this run wrote.
    #[serde(default)]
    pub write: Option<WriteRecord>,
}

/// What one write of a view's output did, as the writer reported it: the figures and
/// options that diffs compare, and the full report, kept opaque.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRecord {
    /// The output location.
    pub target: String,
    /// The file format.
    pub format: String,
    /// The files written.
    pub files: u64,
    /// The rows written.
    pub rows: u64,
    /// The bytes written.
    pub bytes: u64,
    /// Every resolved format option and output knob, by key, as text.
    pub options: BTreeMap<String, String>,
    /// The writer's full report, encoded by [`WriteRecord::with_report`].
    #[serde(with = "crate::bundle::serde_bytes_compat")]
    pub report: Vec<u8>,
}

impl WriteRecord {
    /// Keeps `report`, the writer's full report, in the record.
    pub fn with_report<T: Serialize>(mut self, report: &T) -> Result<Self> {
        self.report = rmp_serde::to_vec_named(report)
            .map_err(|e| ArtifactError::WriteReport { message: format!("cannot encode: {e}") })?;
        Ok(self)
    }

    /// The full report, decoded as the type [`WriteRecord::with_report`] was given; `None`
    /// when the record holds none.
    pub fn report<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        if self.report.is_empty() {
            return Ok(None);
        }
        rmp_serde::from_slice(&self.report).map(Some).map_err(|e| ArtifactError::WriteReport {
            message: format!("cannot decode ({e}); it was written by another version of the writer"),
        })
    }
}

/// The directory of environment snapshots.
const ENVIRONMENTS: &str = "environments";

/// The reason recorded for views skipped because their fingerprint did not change.
pub const UNCHANGED: &str = "fingerprint unchanged";

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    schema_version: u32,
    kind: String,
    payload: T,
}

#[derive(Deserialize)]
struct Header {
    schema_version: u32,
    kind: String,
}

/// The artifact store of one pipeline.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, usually `<pipeline>/.dfpipe`. Nothing is created until
    /// the first write, so commands that only read (`plan`, `explain`, `show`) leave a
    /// pipeline without a store as it was.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        Ok(Self { root: root.into() })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the store's run lock (`<root>/run.lock`), waiting up to `wait` for another run
    /// to release it; [`ArtifactError::Locked`] names the holder when it does not. The lock
    /// is held until the returned guard is dropped, or its process ends. Only runs lock:
    /// readers need not, as every store file is replaced by an atomic rename.
    pub fn lock_run(&self, wait: std::time::Duration) -> Result<crate::RunLock> {
        crate::RunLock::acquire(&self.root, wait)
    }

    /// Saves a bundle under its fingerprint.
    pub fn put_bundle(&self, fingerprint: &Fingerprint, bundle: &PlanBundle) -> Result<PathBuf> {
        let path = self.root.join("bundles").join(format!("{fingerprint}.msgpack"));
        write_atomic(&path, bundle)?;
        Ok(path)
    }

    /// Loads the bundle saved under `fingerprint`, if any.
    pub fn bundle(&self, fingerprint: &Fingerprint) -> Result<Option<PlanBundle>> {
        let path = self.root.join("bundles").join(format!("{fingerprint}.msgpack"));
        if !path.exists() {
            return Ok(None);
        }
        read(&path).map(Some)
    }

    /// Saves a run record.
    pub fn put_run(&self, run: &RunRecord) -> Result<PathBuf> {
        let path = self.root.join("runs").join(format!("{}.msgpack", run.run_id));
        write_atomic(&path, run)?;
        Ok(path)
    }

    /// Saves an environment snapshot under its [`Environment::fingerprint`], unless one with
    /// that content is stored already, and returns the fingerprint for a [`RunRecord`].
    pub fn put_environment(&self, environment: &Environment) -> Result<Fingerprint> {
        let fingerprint = environment.fingerprint();
        let path = self.root.join(ENVIRONMENTS).join(format!("{fingerprint}.msgpack"));
        if !path.exists() {
            write_atomic(&path, environment)?;
        }
        Ok(fingerprint)
    }

    /// Loads the environment snapshot stored under `fingerprint`, if any.
    pub fn environment(&self, fingerprint: &Fingerprint) -> Result<Option<Environment>> {
        let path = self.root.join(ENVIRONMENTS).join(format!("{fingerprint}.msgpack"));
        if !path.exists() {
            return Ok(None);
        }
        read(&path).map(Some)
    }

    /// The last write of `view`: the id of the most recent run that wrote its output, and
    /// that write's record.
    pub fn last_write(&self, view: &str) -> Result<Option<(String, WriteRecord)>> {
        for id in self.run_ids()?.iter().rev() {
            let mut run = self.run(id)?;
            if let Some(write) = run.views.iter_mut().find(|v| v.name == view).and_then(|v| v.write.take()) {
                return Ok(Some((run.run_id, write)));
            }
        }
        Ok(None)
    }

    /// The ids of all recorded runs, oldest first.
    pub fn run_ids(&self) -> Result<Vec<String>> {
        let Some(entries) = list(&self.root.join("runs"))? else { return Ok(Vec::new()) };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".msgpack")).map(str::to_owned))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The run record with this id.
    pub fn run(&self, run_id: &str) -> Result<RunRecord> {
        read(&self.root.join("runs").join(format!("{run_id}.msgpack")))
    }

    /// Rewrites every file of an older schema version in the current one. Returns how many
    /// files it rewrote.
    pub fn migrate(&self) -> Result<usize> {
        Ok(self.migrate_dir::<PlanBundle>("bundles")?
            + self.migrate_dir::<RunRecord>("runs")?
            + self.migrate_dir::<Environment>(ENVIRONMENTS)?)
    }

    /// Rewrites the files of an older schema version in `dir`, all of kind `T`.
    fn migrate_dir<T: Stored>(&self, dir: &str) -> Result<usize> {
        let Some(entries) = list(&self.root.join(dir))? else { return Ok(0) };
        let mut rewritten = 0;
        for path in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "msgpack")) {
            if version_of(&path)? < SCHEMA_VERSION {
                write_atomic(&path, &read::<T>(&path)?)?;
                rewritten += 1;
            }
        }
        Ok(rewritten)
    }

    /// The most recent run record, if any.
    pub fn latest_run(&self) -> Result<Option<RunRecord>> {
        match self.run_ids()?.last() {
            Some(id) => self.run(id).map(Some),
            None => Ok(None),
        }
    }
}

/// The entries of the store directory `dir`, or `None` when nothing was written there yet.
fn list(dir: &Path) -> Result<Option<std::fs::ReadDir>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ArtifactError::Io { action: "cannot list", path: dir.to_owned(), source }),
    }
}

/// Writes `payload` to `path` atomically: a temporary file in the same directory, fsync,
/// then rename over `path`. The directory is created first if needed.
fn write_atomic<T: Stored>(path: &Path, payload: &T) -> Result<()> {
    let envelope = Envelope { schema_version: SCHEMA_VERSION, kind: T::KIND.to_owned(), payload };
    let bytes = rmp_serde::to_vec_named(&envelope)
        .map_err(|e| ArtifactError::Corrupt { path: path.to_owned(), message: format!("cannot encode: {e}") })?;
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| ArtifactError::Io { action, path, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(io("cannot create", &tmp))?;
    file.write_all(&bytes).map_err(io("cannot write", &tmp))?;
    file.sync_all().map_err(io("cannot sync", &tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io("cannot rename into place", path))?;
    if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// A kind of store file, and how its older versions are migrated.
trait Stored: Serialize + DeserializeOwned {
    const KIND: &'static str;

    /// Decodes a file of schema `version`, at most [`SCHEMA_VERSION`].
    fn decode(version: u32, bytes: &[u8]) -> std::result::Result<Self, rmp_serde::decode::Error> {
        let _ = version;
        Ok(rmp_serde::from_slice::<Envelope<Self>>(bytes)?.payload)
    }
}

impl Stored for RunRecord {
    const KIND: &'static str = "run";
}

impl Stored for Environment {
    const KIND: &'static str = "environment";
}

impl Stored for PlanBundle {
    const KIND: &'static str = "bundle";

    fn decode(version: u32, bytes: &[u8]) -> std::result::Result<Self, rmp_serde::decode::Error> {
        if version == 1 {
            return Ok(rmp_serde::from_slice::<Envelope<BundleV1>>(bytes)?.payload.into());
        }
        Ok(rmp_serde::from_slice::<Envelope<Self>>(bytes)?.payload)
    }
}

/// A bundle as schema version 1 wrote it.
#[derive(Deserialize)]
struct BundleV1 {
    view: String,
    logical: String,
    optimized: String,
    physical: String,
    /// Version 1 lineage had relations, scans and functions; the rest is left empty.
    lineage: Lineage,
    #[serde(with = "crate::bundle::serde_bytes_compat")]
    substrait: Vec<u8>,
    substrait_fallback: Option<String>,
}

impl From<BundleV1> for PlanBundle {
    fn from(v1: BundleV1) -> Self {
        Self {
            view: v1.view,
            logical: v1.logical,
            optimized: v1.optimized,
            physical: v1.physical,
            lineage: v1.lineage,
            substrait: v1.substrait,
            substrait_fallback: v1.substrait_fallback,
            ..Self::default()
        }
    }
}

fn read<T: Stored>(path: &Path) -> Result<T> {
    let kind = T::KIND;
    let corrupt = |message: String| ArtifactError::Corrupt { path: path.to_owned(), message };
    let bytes = std::fs::read(path).map_err(|source| ArtifactError::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    let header: Header = rmp_serde::from_slice(&bytes).map_err(|e| {
        corrupt(format!("not a dfpipe store file ({e}); delete it, or the whole .dfpipe directory, to start afresh"))
    })?;
    if header.schema_version > SCHEMA_VERSION {
        return Err(corrupt(format!(
            "written by a newer dfpipe (schema version {}, this one reads up to {SCHEMA_VERSION}); upgrade dfpipe",
            header.schema_version
        )));
    }
    if header.kind != kind {
        return Err(corrupt(format!("holds a {} where a {kind} was expected", header.kind)));
    }
    T::decode(header.schema_version, &bytes).map_err(|e| {
        corrupt(format!("cannot decode ({e}); delete it, or the whole .dfpipe directory, to start afresh"))
    })
}

/// The schema version of the store file at `path`.
fn version_of(path: &Path) -> Result<u32> {
    let bytes = std::fs::read(path).map_err(|source| ArtifactError::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    let header: Header = rmp_serde::from_slice(&bytes).map_err(|e| ArtifactError::Corrupt {
        path: path.to_owned(),
        message: format!("not a dfpipe store file ({e})"),
    })?;
    Ok(header.schema_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RunRecord {
        RunRecord {
            run_id: "00000000000000000001".to_owned(),
            status: RunStatus::Succeeded,
            views: vec![ViewRecord {
                name: "q01".to_owned(),
                fingerprint: Fingerprint("ab".repeat(16)),
                status: ViewStatus::Succeeded,
                rows: Some(4),
                ..ViewRecord::default()
            }],
            environment: None,
            workers: None,
            cluster: None,
        }
    }

    #[test]
    fn runs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.put_run(&record()).unwrap();
        assert_eq!(store.latest_run().unwrap(), Some(record()));
    }

    #[test]
    fn reading_an_empty_store_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join(".dfpipe")).unwrap();
        assert_eq!(store.latest_run().unwrap(), None);
        assert_eq!(store.bundle(&Fingerprint("0".repeat(32))).unwrap(), None);
        assert_eq!(store.migrate().unwrap(), 0);
        assert!(!store.root().exists());
        store.put_run(&record()).unwrap();
        assert_eq!(store.run_ids().unwrap(), [record().run_id]);
    }

    #[test]
    fn truncated_and_garbage_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let path = store.put_run(&record()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let message = store.latest_run().unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("delete it"), "{message}");
        std::fs::write(&path, b"not msgpack at all").unwrap();
        assert!(matches!(store.latest_run(), Err(ArtifactError::Corrupt { .. })));
    }

    #[test]
    fn files_from_a_newer_version_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let path = store.root().join("runs").join("00000000000000000002.msgpack");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let future = Envelope { schema_version: SCHEMA_VERSION + 1, kind: "run".to_owned(), payload: record() };
        std::fs::write(&path, rmp_serde::to_vec_named(&future).unwrap()).unwrap();
        let message = store.latest_run().unwrap_err().to_string();
        assert!(message.contains("newer dfpipe"), "{message}");
    }
}
