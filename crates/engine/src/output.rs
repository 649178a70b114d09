//! Where materialized views are written, and how their readers see them: `output_dir` is one
//! writer [`Location`], each materialized view has one [`WriteSpec`], and readers scan the
//! writer's [`OutputTable`] of that spec (the committed files, never the view's plan).

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::prelude::SessionContext;
use dfpipe_writer::{Location, OutputTable, SortColumn, WriteError, WriteSpec, check_writable, clean_staging};

use crate::spec::{Profile, ViewSpec};
use crate::{EngineError, Result};

/// `output_dir` as the writer takes it: a local path resolved against the pipeline
/// directory, or a URL as written.
pub(crate) fn output_dir_text(pipeline_dir: &Path, output_dir: &str) -> String {
    if output_dir.contains("://") {
        output_dir.trim_end_matches('/').to_owned()
    } else {
        pipeline_dir.join(output_dir).to_string_lossy().into_owned()
    }
}

/// The output directory of a pipeline: view `v` is written to `<output_dir>/v/`.
#[derive(Debug, Clone)]
pub(crate) struct Outputs {
    root: Location,
}

impl Outputs {
    /// Parses `output_dir` (see [`output_dir_text`]) against the object stores registered on
    /// `ctx`. Errors name `spec_file`.
    pub(crate) fn new(ctx: &SessionContext, output_dir: &str, spec_file: &Path) -> Result<Self> {
        let spec_error = |message: String| EngineError::Spec {
            file: spec_file.to_owned(),
            message: format!("[pipeline] output_dir: {message}"),
        };
        let registered = ListingTableUrl::parse(output_dir)
            .is_ok_and(|url| url.scheme() == "file" || ctx.runtime_env().object_store(url.object_store()).is_ok());
        if !registered {
            return Err(spec_error(format!(
                "no object store is registered for `{output_dir}`; the command line knows local paths and file:// \
                 URLs; add a [storage.\"<scheme>://<bucket>\"] table for an object store (Rust code may also \
                 register one with Pipeline::with_object_store)"
            )));
        }
        let root = Location::parse(output_dir, &ctx.runtime_env()).map_err(spec_error)?;
        Ok(Self { root })
    }

    /// The directory itself, as the writer takes it.
    pub(crate) fn root(&self) -> String {
        self.root.display()
    }

    /// The output of `view`, as the writer takes it.
    pub(crate) fn target(&self, view: &str) -> String {
        self.root.child(view).display()
    }

    /// Creates the directory when it is local (object stores have no directories).
    pub(crate) fn create(&self) -> Result<()> {
        if let Location::Local(dir) = &self.root {
            std::fs::create_dir_all(dir).map_err(|source| EngineError::Io {
                action: "cannot create output directory",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Checks that the object store of an `output_dir` in one answers (one listing), so
    /// that a refused credential or an unreachable server is reported first, naming the
    /// bucket, rather than as the failure of a view that reads an output.
    pub(crate) async fn probe(&self) -> Result<()> {
        if let Location::Store { store, prefix, .. } = &self.root {
            let root = self.root();
            store
                .list_with_delimiter(Some(prefix))
                .await
                .map_err(|e| crate::sources::storage_failure(&format!("cannot list {root}"), &root, &e))?;
        }
        Ok(())
    }

    /// Repairs what an interrupted run left in the directory's staging area (a previous
    /// output moved aside by a commit that did not finish is restored; other leftovers are
    /// removed), and says so in the log.
    pub(crate) async fn repair(&self, ctx: &SessionContext) -> Result<()> {
        let leftovers = clean_staging(&ctx.runtime_env(), &self.root()).await.map_err(from_write)?;
        if leftovers > 0 {
            tracing::info!(leftovers, "repaired or removed staging leftovers of an interrupted run");
        }
        Ok(())
    }

    /// Whether `view` has a committed output.
    pub(crate) async fn has_output(&self, view: &str) -> Result<bool> {
        self.root.child(view).exists().await.map_err(from_write)
    }

    /// How materialized view `view`, whose plan has output `schema`, is written: its target,
    /// the profile's parquet options and knobs, its partition columns and its order.
    /// `sort_by` keys must be output columns.
    pub(crate) fn write_spec(
        &self,
        view: &str,
        spec: &ViewSpec,
        profile: &Profile,
        schema: &Schema,
        spec_file: &Path,
    ) -> Result<WriteSpec> {
        let write = WriteSpec {
            target: self.target(view),
            options: profile.parquet_options(),
            partition_by: spec.partition_by.clone(),
            sort_by: sort_keys(view, spec, schema, spec_file)?,
            knobs: profile.writer_knobs(),
            ..WriteSpec::default()
        };
        // A column the format cannot write is refused now, not halfway through a run.
        check_writable(write.format, schema).map_err(|e| EngineError::Spec {
            file: spec_file.to_owned(),
            message: format!("[views.{view}] materialize = \"{}\": {e}", write.format.name()),
        })?;
        Ok(write)
    }
}

/// A writer's error, with the failures of an object store as environment failures that
/// name the bucket (and where credentials come from, when they were refused).
pub(crate) fn from_write(error: WriteError) -> EngineError {
    match error {
        WriteError::ObjectStore { action, path, source } => {
            crate::sources::storage_failure(&format!("{action} {path}"), &path, &source)
        }
        other => EngineError::Write(other),
    }
}

/// A view's `sort_by`, parsed by the writer's one parser and checked against `schema`. Names
/// are read as in SQL: unquoted ones in lower case, `"Quoted"` ones as written.
pub(crate) fn sort_keys(view: &str, spec: &ViewSpec, schema: &Schema, spec_file: &Path) -> Result<Vec<SortColumn>> {
    let invalid = |message: String| EngineError::Spec {
        file: spec_file.to_owned(),
        message: format!("[views.{view}] sort_by: {message}"),
    };
    spec.sort_by
        .iter()
        .map(|text| {
            let mut key = SortColumn::parse(text).map_err(&invalid)?;
            key.column = match key.column.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
                Some(quoted) => quoted.to_owned(),
                None => key.column.to_lowercase(),
            };
            if schema.index_of(&key.column).is_err() {
                let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(invalid(format!(
                    "`{}` is not an output column of the view; its columns are: {}",
                    key.column,
                    columns.join(", ")
                )));
            }
            Ok(key)
        })
        .collect()
}

/// Registers the output `write` describes as table `view`, for readers of the view.
pub(crate) fn register_output(ctx: &SessionContext, view: &str, write: &WriteSpec, schema: &Schema) -> Result<()> {
    let table = OutputTable::new(&ctx.state(), write, schema)?;
    ctx.register_table(view, Arc::new(table))?;
    Ok(())
}
