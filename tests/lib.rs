//! Helpers for the end-to-end tests: a fresh copy of the TPC-H demo pipeline per test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dfpipe_engine::{Pipeline, RunOptions, RunReport};

/// The scale factor the end-to-end tests use: small enough for debug builds.
pub const SCALE_FACTOR: f64 = 0.01;

/// A demo pipeline in a temporary directory, removed on drop.
pub struct Demo {
    dir: tempfile::TempDir,
}

impl Demo {
    /// Lays out the demo pipeline with freshly generated data.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        dfpipe_demo::prepare_demo(dir.path(), SCALE_FACTOR).expect("the demo pipeline");
        Self { dir }
    }

    /// The pipeline directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The SQL file of `view`.
    pub fn view_file(&self, view: &str) -> PathBuf {
        self.path().join("views").join(format!("{view}.sql"))
    }

    /// Replaces the SQL of `view`, creating the view if needed.
    pub fn write_view(&self, view: &str, sql: &str) {
        std::fs::write(self.view_file(view), sql).expect("writing a view");
    }

    /// Appends `text` to `dfpipe.toml`.
    pub fn append_spec(&self, text: &str) {
        let file = self.path().join(dfpipe_engine::SPEC_FILE);
        let mut spec = std::fs::read_to_string(&file).expect("reading dfpipe.toml");
        spec.push_str(text);
        std::fs::write(file, spec).expect("writing dfpipe.toml");
    }

    /// Plans and runs the pipeline with `options` (2 workers unless set).
    pub async fn run(&self, options: RunOptions) -> Result<RunReport, dfpipe_engine::EngineError> {
        let options = RunOptions { workers: options.workers.max(2), ..options };
        let planned = Pipeline::load(self.path())?.plan(&options).await?;
        planned.run(Arc::new(|_| {})).await
    }
}

impl Default for Demo {
    fn default() -> Self {
        Self::new()
    }
}

/// Asserts that `content` matches the golden snapshot `golden/<name>.snap`. On drift, insta
/// shows the difference, and the failure says how to accept it.
pub fn assert_golden(name: &str, content: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../golden"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description("regenerate with `cargo xtask golden`");
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_snapshot!(name, content));
    }));
    assert!(
        checked.is_ok(),
        "golden snapshot golden/{name}.snap drifted (the difference is above). If the change is intended, \
         run `cargo xtask golden` and review `git diff golden/`"
    );
}
