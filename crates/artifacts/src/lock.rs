//! One run at a time: the store's run lock, `<store>/run.lock`.
//!
//! The lock is an exclusive OS file lock (`flock` or `LockFileEx`, through `fs4`) on that
//! file, held by the [`RunLock`] guard and released when it is dropped or when its process
//! dies. The OS lock is the truth; the file's content (the holder's pid, host and start time)
//! only says who holds it, for the message of a run that finds it taken. The file itself is
//! never deleted (a waiter could otherwise lock a file that is no longer the lock): the guard
//! empties it on release, so content found by the next holder names a process that died
//! holding the lock, and the takeover is logged.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{ArtifactError, Result};

/// The name of the lock file in the store's directory.
pub const LOCK_FILE: &str = "run.lock";

/// How often a run waiting for the lock tries again.
const POLL: Duration = Duration::from_millis(50);

/// Who holds, or held, a store's run lock, as its lock file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// The holder's process id.
    pub pid: u32,
    /// The host it runs on.
    pub host: String,
    /// When it took the lock, in seconds since the Unix epoch.
    pub since: u64,
}

impl LockHolder {
    /// This process, now.
    fn current() -> Self {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        Self { pid: std::process::id(), host: host_name(), since }
    }

    /// The lock file's text: `key=value` lines.
    fn to_text(&self) -> String {
        format!("pid={}\nhost={}\nsince={}\n", self.pid, self.host, self.since)
    }

    /// Reads a lock file's text; `None` when it is empty or not what [`LockHolder::to_text`]
    /// writes (the file is only a message: anything else in it is ignored).
    fn parse(text: &str) -> Option<Self> {
        let (mut pid, mut host, mut since) = (None, None, None);
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => pid = v.trim().parse().ok(),
                Some(("host", v)) => host = Some(v.trim().to_owned()),
                Some(("since", v)) => since = v.trim().parse().ok(),
                _ => {}
            }
        }
        Some(Self { pid: pid?, host: host?, since: since? })
    }

    /// Whether the holder is a process of this host that is no longer running. `false` when
    /// that cannot be known (another host, or no `/proc`).
    pub fn is_dead(&self) -> bool {
        self.host == host_name()
            && Path::new("/proc/self").exists()
            && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} on host {} since {}", self.pid, self.host, utc(self.since))
    }
}

/// The exclusive run lock of a store, held until dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    took_over: Option<LockHolder>,
}

impl RunLock {
    /// Takes the lock of the store at `root`, waiting up to `wait` for its holder to release
    /// it. Creates the store's directory and lock file if needed.
    pub(crate) fn acquire(root: &Path, wait: Duration) -> Result<Self> {
        let path = root.join(LOCK_FILE);
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| ArtifactError::Io { action, path, source }
        };
        std::fs::create_dir_all(root).map_err(io("cannot create", root))?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("cannot open", &path))?;
        let started = Instant::now();
        loop {
            match fs4::FileExt::try_lock(&file) {
                Ok(()) => break,
                Err(fs4::TryLockError::WouldBlock) => {
                    if started.elapsed() >= wait {
                        let holder = std::fs::read_to_string(&path).ok().as_deref().and_then(LockHolder::parse);
                        return Err(ArtifactError::Locked { path, holder, waited: started.elapsed() });
                    }
                    std::thread::sleep(POLL.min(wait.saturating_sub(started.elapsed())).max(Duration::from_millis(1)));
                }
                Err(fs4::TryLockError::Error(source)) => return Err(io("cannot lock", &path)(source)),
            }
        }
        // Content left by a holder that did not release the lock: it died holding it.
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        let took_over = LockHolder::parse(&previous);
        if let Some(stale) = &took_over {
            tracing::info!(
                lock = %path.display(),
                pid = stale.pid,
                host = %stale.host,
                since = %utc(stale.since),
                running = !stale.is_dead(),
                "took over the run lock left by a run that ended without releasing it"
            );
        }
        file.set_len(0).map_err(io("cannot write", &path))?;
        file.rewind().map_err(io("cannot write", &path))?;
        file.write_all(LockHolder::current().to_text().as_bytes()).map_err(io("cannot write", &path))?;
        file.sync_data().map_err(io("cannot sync", &path))?;
        Ok(Self { file, path, took_over })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The holder named by the lock file when this lock was taken: a process that ended
    /// without releasing it (the lock is logged as taken over). `None` after a clean release.
    pub fn took_over(&self) -> Option<&LockHolder> {
        self.took_over.as_ref()
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Emptied while still held, so that the next holder finds no stale holder; closing
        // the file releases the OS lock.
        let _ = self.file.set_len(0);
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

/// This host's name, as far as the OS tells it without a system call of our own.
fn host_name() -> String {
    let from_file = |path: &str| std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned());
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Seconds since the Unix epoch as a UTC time, `2026-12-01T09:30:00Z`.
fn utc(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_764_581_400), "2025-12-01T09:30:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn a_held_lock_refuses_or_waits_then_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = RunLock::acquire(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(held.took_over(), None);
        let error = RunLock::acquire(dir.path(), Duration::ZERO).unwrap_err();
        let ArtifactError::Locked { holder: Some(holder), .. } = &error else { panic!("{error:?}") };
        assert_eq!(holder.pid, std::process::id());
        assert!(error.to_string().contains(&format!("pid {}", std::process::id())), "{error}");
        let started = Instant::now();
        assert!(RunLock::acquire(dir.path(), Duration::from_millis(200)).is_err());
        assert!(started.elapsed() >= Duration::from_millis(200));
        // Released by a thread while another waits for it.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(held);
        });
        let next = RunLock::acquire(dir.path(), Duration::from_secs(10)).unwrap();
        releaser.join().unwrap();
        assert_eq!(next.took_over(), None, "a released lock leaves no holder behind");
    }

    #[test]
    fn a_stale_lock_of_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // A process that has exited: its pid names no running process (for a while).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = LockHolder { pid, host: host_name(), since: 1_764_581_400 };
        std::fs::write(dir.path().join(LOCK_FILE), dead.to_text()).unwrap();
        assert!(dead.is_dead() || !Path::new("/proc/self").exists());
        let lock = RunLock::acquire(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(lock.took_over(), Some(&dead));
        let text = std::fs::read_to_string(lock.path()).unwrap();
        assert_eq!(LockHolder::parse(&text).map(|h| h.pid), Some(std::process::id()));
        drop(lock);
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(), "");
    }

    #[test]
    fn lock_files_of_any_content_are_read_without_panic() {
        for text in ["", "pid=", "pid=x\nhost=h\nsince=1", "pid=1\nhost=h", "\u{0}\u{ff}=="] {
            assert_eq!(LockHolder::parse(text), None, "{text:?}");
        }
        assert_eq!(
            LockHolder::parse("pid=7\nhost=h\nsince=3\nextra=1\n"),
            Some(LockHolder { pid: 7, host: "h".to_owned(), since: 3 })
        );
    }
}
