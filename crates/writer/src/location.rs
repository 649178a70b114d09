//! Where outputs live: a local directory or a prefix in a registered object store, and the
//! few operations a staged write and its commit need on either.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use futures::{StreamExt, TryStreamExt};

use crate::{Result, WriteError};

/// The directory, beside every output, where writes are staged.
pub(crate) const STAGING_DIR: &str = ".staging";
/// The suffix of a previous output moved aside during a commit.
pub(crate) const RETIRED: &str = "retired";
/// In an object store, written into a retired output once it is a complete copy of the
/// previous output: only then may a crashed commit restore it.
const RETIRED_COMPLETE: &str = "_dfpipe_retired_complete";

/// Where an output or a directory of outputs lives: a local directory, or a prefix in an
/// object store registered on the session. The one parsed form of a write target.
#[derive(Clone)]
pub enum Location {
    /// A local directory, absolute.
    Local(PathBuf),
    /// A prefix (without trailing slash) in an object store.
    Store { url: ObjectStoreUrl, store: Arc<dyn ObjectStore>, prefix: ObjectPath },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl Location {
    /// Parses a local path, a `file://` URL or the URL of an object store registered on
    /// `runtime`. The message of an error says what is wrong with `text`.
    pub fn parse(text: &str, runtime: &RuntimeEnv) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("the target is empty".to_owned());
        }
        if !text.contains("://") {
            return std::path::absolute(text)
                .map(Self::Local)
                .map_err(|e| format!("cannot resolve the local path `{text}`: {e}"));
        }
        let url = ListingTableUrl::parse(text)
            .map_err(|e| format!("`{text}` is not a valid URL: {}", e.strip_backtrace()))?;
        if url.scheme() == "file" {
            return url
                .get_url()
                .to_file_path()
                .map(Self::Local)
                .map_err(|()| format!("`{text}` is not a local file URL"));
        }
        let store_url = url.object_store();
        let store = runtime.object_store(&store_url).map_err(|_| {
            format!("no object store is registered for `{store_url}`; register one on the session's RuntimeEnv")
        })?;
        Ok(Self::Store { url: store_url, store, prefix: url.prefix().clone() })
    }

    /// The location as a user would write it.
    pub fn display(&self) -> String {
        match self {
            Self::Local(path) => path.display().to_string(),
            Self::Store { url, prefix, .. } => format!("{}{prefix}", url.as_str()),
        }
    }

    /// The last path segment, the output's name.
    pub(crate) fn name(&self) -> Option<String> {
        match self {
            Self::Local(path) => path.file_name().and_then(|n| n.to_str()).map(str::to_owned),
            Self::Store { prefix, .. } => prefix.filename().map(str::to_owned),
        }
    }

    /// The directory holding this one.
    pub(crate) fn parent(&self) -> Option<Self> {
        match self {
            Self::Local(path) => path.parent().map(|p| Self::Local(p.to_owned())),
            Self::Store { url, store, prefix } => {
                Some(Self::Store { url: url.clone(), store: Arc::clone(store), prefix: prefix.parent()? })
            }
        }
    }

    /// A directory inside this one.
    #[must_use]
    pub fn child(&self, name: &str) -> Self {
        match self {
            Self::Local(path) => Self::Local(path.join(name)),
            Self::Store { url, store, prefix } => {
                Self::Store { url: url.clone(), store: Arc::clone(store), prefix: prefix.clone().join(name) }
            }
        }
    }

    /// The URL of the directory (with a trailing slash) as DataFusion's sinks and listing
    /// tables take it.
    pub(crate) fn listing_url(&self) -> Result<ListingTableUrl> {
        let text = match self {
            Self::Local(path) => format!("{}/", path.display()),
            Self::Store { url, prefix, .. } if prefix.as_ref().is_empty() => url.as_str().to_owned(),
            Self::Store { url, prefix, .. } => format!("{}{prefix}/", url.as_str()),
        };
        ListingTableUrl::parse(&text).map_err(|source| WriteError::DataFusion { target: self.display(), source })
    }

    /// Creates the directory (local only: object stores have no directories).
    pub(crate) fn create(&self) -> Result<()> {
        if let Self::Local(path) = self {
            std::fs::create_dir_all(path).map_err(io("cannot create", path))?;
        }
        Ok(())
    }

    /// Whether the directory exists (holds any object, in a store).
    pub async fn exists(&self) -> Result<bool> {
        match self {
            Self::Local(path) => Ok(path.exists()),
            Self::Store { store, prefix, .. } => match store.list(Some(prefix)).next().await {
                None => Ok(false),
                Some(Ok(_)) => Ok(true),
                Some(Err(e)) => Err(self.store_error("cannot list", prefix, e)),
            },
        }
    }

    /// Every file below the directory, relative to it, with its size in bytes, sorted.
    pub(crate) async fn files(&self) -> Result<Vec<(String, u64)>> {
        match self {
            Self::Local(dir) => list_local(dir),
            Self::Store { prefix, .. } => {
                let mut files: Vec<(String, u64)> = self
                    .objects()
                    .await?
                    .into_iter()
                    .filter_map(|(path, size)| relative(prefix, &path).map(|r| (r, size)))
                    .collect();
                files.sort();
                Ok(files)
            }
        }
    }

    /// Removes the directory and everything below it; a missing directory is fine.
    pub(crate) async fn remove_all(&self) -> Result<()> {
        match self {
            Self::Local(path) => match std::fs::remove_dir_all(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("cannot remove", path)(e)),
                _ => Ok(()),
            },
            Self::Store { store, .. } => {
                for (path, _) in self.objects().await? {
                    match store.delete(&path).await {
                        // Removed meanwhile (by a dropped write's cleanup, say): fine.
                        Ok(()) | Err(datafusion::object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(self.store_error("cannot delete", &path, e)),
                    }
                }
                Ok(())
            }
        }
    }

    /// Copies every object below this store prefix to the same relative path below `to`,
    /// skipping internal markers.
    async fn copy_all(&self, to: &Self) -> Result<()> {
        let (Self::Store { store, prefix, .. }, Self::Store { prefix: to_prefix, .. }) = (self, to) else {
            return Ok(());
        };
        for (path, _) in self.objects().await? {
            let Some(rel) = path.prefix_match(prefix) else { continue };
            let rel: Vec<_> = rel.collect();
            if rel.is_empty() || rel.len() == 1 && rel[0].as_ref() == RETIRED_COMPLETE {
                continue;
            }
            let destination: ObjectPath = to_prefix.parts().chain(rel).collect();
            store.copy(&path, &destination).await.map_err(|e| self.store_error("cannot copy", &path, e))?;
        }
        Ok(())
    }

    async fn objects(&self) -> Result<Vec<(ObjectPath, u64)>> {
        let Self::Store { store, prefix, .. } = self else { return Ok(Vec::new()) };
        store
            .list(Some(prefix))
            .map_ok(|meta| (meta.location, meta.size))
            .try_collect()
            .await
            .map_err(|e| self.store_error("cannot list", prefix, e))
    }

    async fn put_marker(&self, name: &str) -> Result<()> {
        if let Self::Store { store, prefix, .. } = self {
            let path = prefix.clone().join(name);
            store.put(&path, PutPayload::new()).await.map_err(|e| self.store_error("cannot write", &path, e))?;
        }
        Ok(())
    }

    async fn has_marker(&self, name: &str) -> Result<bool> {
        let Self::Store { prefix, .. } = self else { return Ok(false) };
        let marker = prefix.clone().join(name);
        Ok(self.objects().await?.iter().any(|(path, _)| *path == marker))
    }

    async fn delete_marker(&self, name: &str) -> Result<()> {
        if let Self::Store { store, prefix, .. } = self {
            let path = prefix.clone().join(name);
            match store.delete(&path).await {
                Ok(()) | Err(datafusion::object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.store_error("cannot delete", &path, e)),
            }
        }
        Ok(())
    }

    fn store_error(
        &self,
        action: &'static str,
        path: &ObjectPath,
        source: datafusion::object_store::Error,
    ) -> WriteError {
        let url = match self {
            Self::Store { url, .. } => url.as_str(),
            Self::Local(_) => "",
        };
        WriteError::ObjectStore { action, path: format!("{url}{path}"), source: Box::new(source) }
    }
}

/// Replaces `target` by `staged`. Locally: the previous output is renamed to
/// `.staging/<name>.retired`, the staging directory renamed into place, the retired one
/// deleted. In an object store, which has no rename: the previous output is copied to the
/// retired prefix, marked complete and deleted; the staged objects are copied into place;
/// then the marker, the retired copy and the staged objects are deleted. A crash in between
/// is repaired by [`clean`].
pub(crate) async fn commit(staged: &Location, target: &Location) -> Result<()> {
    let Some(retired) = retired_of(target) else { return Ok(()) };
    if let (Location::Local(staged), Location::Local(target), Location::Local(retired)) = (staged, target, &retired) {
        commit_local(staged, target, retired)
    } else {
        commit_store(staged, target, &retired).await
    }
}

fn commit_local(staged: &Path, target: &Path, retired: &Path) -> Result<()> {
    let had_previous = target.exists();
    if had_previous {
        if retired.exists() {
            std::fs::remove_dir_all(retired).map_err(io("cannot remove an old retired output", retired))?;
        }
        std::fs::rename(target, retired).map_err(io("cannot move the previous output aside", target))?;
    }
    if let Err(e) = std::fs::rename(staged, target) {
        if had_previous {
            // Put the previous output back: it must stay readable.
            let _ = std::fs::rename(retired, target);
        }
        return Err(io("cannot move the new output into place", target)(e));
    }
    if had_previous {
        // The new output is live; a leftover here is removed by the next `clean`.
        let _ = std::fs::remove_dir_all(retired);
    }
    Ok(())
}

async fn commit_store(staged: &Location, target: &Location, retired: &Location) -> Result<()> {
    retired.remove_all().await?;
    let had_previous = target.exists().await?;
    if had_previous {
        target.copy_all(retired).await?;
        retired.put_marker(RETIRED_COMPLETE).await?;
        target.remove_all().await?;
    }
    if let Err(e) = staged.copy_all(target).await {
        // Best effort; if this fails too, the next `clean` restores the previous output.
        if had_previous && target.remove_all().await.is_ok() && retired.copy_all(target).await.is_ok() {
            let _ = retired.delete_marker(RETIRED_COMPLETE).await;
        }
        return Err(e);
    }
    retired.delete_marker(RETIRED_COMPLETE).await?;
    retired.remove_all().await?;
    staged.remove_all().await
}

/// Where the previous output of `target` waits while a commit swaps the new one in.
fn retired_of(target: &Location) -> Option<Location> {
    Some(target.parent()?.child(STAGING_DIR).child(&format!("{}.{RETIRED}", target.name()?)))
}

/// Repairs what crashed writes left in `dir`'s staging area: a previous output moved aside
/// by a commit that did not finish is restored; everything else is removed. Returns how many
/// leftovers were found.
pub(crate) async fn clean(dir: &Location) -> Result<usize> {
    let root = dir.child(STAGING_DIR);
    let mut names: Vec<String> = match &root {
        Location::Local(path) => match std::fs::read_dir(path) {
            Ok(entries) => entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => return Ok(0),
        },
        Location::Store { prefix, .. } => root
            .objects()
            .await?
            .iter()
            .filter_map(|(path, _)| relative(prefix, path))
            .filter_map(|rel| rel.split('/').next().map(str::to_owned))
            .collect(),
    };
    names.sort();
    names.dedup();
    for name in &names {
        let entry = root.child(name);
        let target = name.strip_suffix(&format!(".{RETIRED}")).map(|t| dir.child(t));
        match (&entry, target) {
            (Location::Local(path), Some(target)) if !target.exists().await? => {
                let Location::Local(target) = target else { continue };
                std::fs::rename(path, &target).map_err(io("cannot restore the previous output", path))?;
            }
            (Location::Store { .. }, Some(target)) if entry.has_marker(RETIRED_COMPLETE).await? => {
                target.remove_all().await?;
                entry.copy_all(&target).await?;
                entry.delete_marker(RETIRED_COMPLETE).await?;
                entry.remove_all().await?;
            }
            (Location::Local(path), _) if path.is_file() => {
                std::fs::remove_file(path).map_err(io("cannot remove staging leftover", path))?;
            }
            _ => entry.remove_all().await?,
        }
    }
    Ok(names.len())
}

fn relative(prefix: &ObjectPath, path: &ObjectPath) -> Option<String> {
    let parts: Vec<String> = path.prefix_match(prefix)?.map(|p| p.as_ref().to_owned()).collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn list_local(dir: &Path) -> Result<Vec<(String, u64)>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(io("cannot list", &current))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let meta = entry.metadata().map_err(io("cannot stat", &path))?;
            if meta.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                files.push((relative.to_string_lossy().into_owned(), meta.len()));
            }
        }
    }
    files.sort();
    Ok(files)
}

pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WriteError {
    let path = path.to_owned();
    move |source| WriteError::Io { action, path, source }
}
