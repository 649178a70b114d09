//! Stage "register sources and contracts": a session with the profile applied, the object
//! stores registered, every source registered and fingerprinted from its files, and the
//! contracts on sources turned into constraints and `information_schema` rows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::datasource::file_format::options::{ArrowReadOptions, JsonReadOptions};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};
use dfpipe_artifacts::Fingerprint;
use futures::TryStreamExt;

use crate::pipeline::Pipeline;
use crate::spec::{SourceFormat, SourceSpec};
use crate::{EngineError, Result};

impl Pipeline {
    /// A session with the profile applied, the object stores registered, and every source
    /// and its contract registered. Returns the source fingerprints by name.
    pub(crate) async fn session(&self) -> Result<(SessionContext, BTreeMap<String, Fingerprint>)> {
        let mut ctx = self.spec().profile.session(&self.spec_file())?;
        if let Some(cluster) = self.cluster() {
            ctx = SessionContext::new_with_state(cluster.configure(ctx.state())?);
        }
        self.register_stores(&ctx)?;
        let mut fingerprints = BTreeMap::new();
        for (name, source) in &self.spec().sources {
            fingerprints.insert(name.clone(), self.register_source(&ctx, name, source).await?);
        }
        let on_sources: Vec<_> =
            self.spec().contracts.values().filter(|c| self.spec().sources.contains_key(&c.relation)).cloned().collect();
        dfpipe_contract::register(&ctx, &on_sources).await?;
        Ok((ctx, fingerprints))
    }

    /// Registers the object stores on `ctx`: those of `[storage]` tables, then those
    /// registered from Rust, which win for their bucket.
    pub(crate) fn register_stores(&self, ctx: &SessionContext) -> Result<()> {
        let from_rust: Vec<String> = self.object_stores().map(|(url, _)| bucket_of(url)).collect();
        for (prefix, options) in &self.spec().storage {
            if !from_rust.contains(&bucket_of(prefix.url())) {
                let store = dfpipe_storage::build(prefix, options)
                    .map_err(|e| EngineError::Spec { file: self.spec_file(), message: e.to_string() })?;
                ctx.register_object_store(prefix.url(), store);
            }
        }
        for (url, store) in self.object_stores() {
            ctx.register_object_store(url, Arc::clone(store));
        }
        Ok(())
    }

    /// Registers source `name` and returns its fingerprint: of its files' names, sizes and
    /// times, or of an object store's listing (locations with ETags, sizes, times).
    async fn register_source(&self, ctx: &SessionContext, name: &str, source: &SourceSpec) -> Result<Fingerprint> {
        let fail = |message: String| EngineError::Source { name: name.to_owned(), message };
        let local = !source.path.contains("://");
        let path = source_location(self.dir(), &source.path);
        let files = if local {
            let base = glob_base(Path::new(&path));
            if !base.exists() {
                return Err(fail(format!(
                    "{} does not exist; check `path` under [sources.{name}] in {}",
                    base.display(),
                    crate::SPEC_FILE
                )));
            }
            list_files(&base)
        } else {
            let registered = ListingTableUrl::parse(&path)
                .is_ok_and(|url| ctx.runtime_env().object_store(url.object_store()).is_ok());
            if !registered {
                return Err(fail(format!(
                    "no object store is registered for `{path}`; add a [storage.\"<scheme>://<bucket>\"] table \
                     for its bucket to {}",
                    crate::SPEC_FILE
                )));
            }
            let files = list_remote(ctx, &path).await.map_err(|e| match e.find_root() {
                DataFusionError::ObjectStore(error) => {
                    storage_failure(&format!("source `{name}`: cannot list {path}"), &path, error)
                }
                _ => fail(format!("cannot list {path}: {}", e.strip_backtrace())),
            })?;
            if files.is_empty() {
                return Err(fail(format!(
                    "no files at {path}; check `path` under [sources.{name}] in {}",
                    crate::SPEC_FILE
                )));
            }
            files
        };
        let registered = match source.format {
            SourceFormat::Parquet => ctx.register_parquet(name, &path, ParquetReadOptions::default()).await,
            SourceFormat::Csv => ctx.register_csv(name, &path, CsvReadOptions::default()).await,
            SourceFormat::Json => ctx.register_json(name, &path, JsonReadOptions::default()).await,
            SourceFormat::Arrow => ctx.register_arrow(name, &path, ArrowReadOptions::default()).await,
        };
        registered.map_err(|e| fail(e.strip_backtrace()))?;
        Ok(Fingerprint::of_files(&files))
    }
}

/// Where a source's `path` points: resolved against the pipeline directory `dir` when local,
/// else the URL as written.
pub(crate) fn source_location(dir: &Path, path: &str) -> String {
    if path.contains("://") { path.to_owned() } else { dir.join(path).to_string_lossy().into_owned() }
}

/// `scheme://host` of a URL: the key object-store registries look stores up by.
fn bucket_of(url: &url::Url) -> String {
    format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default())
}

/// A request to the object store of `url` failed while doing `what`: a failure of the
/// environment (the server, the network, the credentials), naming the bucket and, when the
/// credentials were refused, where they come from.
pub(crate) fn storage_failure(what: &str, url: &str, error: &object_store::Error) -> EngineError {
    let hint = url::Url::parse(url).ok().and_then(|url| dfpipe_storage::credentials_hint(&url, error));
    let message = match hint {
        Some(hint) => format!("{what}: {hint} ({error})"),
        None => format!("{what}: {error}"),
    };
    EngineError::Storage { url: url.to_owned(), message }
}

/// The directory part of a path before any glob character.
fn glob_base(path: &Path) -> PathBuf {
    let mut base = PathBuf::new();
    for component in path.components() {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[']) {
            break;
        }
        base.push(component);
    }
    base
}

/// The files of an object-store source (a URL, globs allowed) as `(location and ETag, size,
/// modified)` triples: what its fingerprint hashes.
async fn list_remote(ctx: &SessionContext, url: &str) -> datafusion::error::Result<Vec<(String, u64, u128)>> {
    let url = ListingTableUrl::parse(url)?;
    let store = ctx.runtime_env().object_store(&url)?;
    let state = ctx.state();
    let mut listing = url.list_all_files(&state, store.as_ref(), "").await?;
    let mut files = Vec::new();
    while let Some(meta) = listing.try_next().await? {
        let modified = meta.last_modified.timestamp_nanos_opt().unwrap_or_default();
        let location = match &meta.e_tag {
            Some(tag) => format!("{}#{tag}", meta.location),
            None => meta.location.to_string(),
        };
        files.push((location, meta.size, u128::try_from(modified).unwrap_or_default()));
    }
    Ok(files)
}

/// `(path, size, modified nanoseconds)` of every file under `path`.
fn list_files(path: &Path) -> Vec<(String, u64, u128)> {
    let mut out = Vec::new();
    let mut pending = vec![path.to_owned()];
    while let Some(current) = pending.pop() {
        let Ok(meta) = std::fs::metadata(&current) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&current) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else {
            let modified = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let relative = current.strip_prefix(path).unwrap_or(&current);
            out.push((relative.to_string_lossy().into_owned(), meta.len(), modified));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::glob_base;

    #[test]
    fn a_glob_is_listed_from_its_directory() {
        assert_eq!(glob_base(Path::new("/data/orders/*.parquet")), Path::new("/data/orders"));
        assert_eq!(glob_base(Path::new("/data/orders")), Path::new("/data/orders"));
    }
}
