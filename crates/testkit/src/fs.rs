//! Unique names, bpffs directories and cross-process locks.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::TestkitError;

/// Where bpffs is mounted.
pub const BPFFS_ROOT: &str = "/sys/fs/bpf";

/// The longest name accepted for a map or network interface (16 bytes with NUL).
const MAX_NAME: usize = 15;

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A name unique across processes and calls, at most 15 bytes of
/// `[a-z0-9_]`: valid as a BPF map name, a network interface name and a
/// network namespace name.
///
/// It is the prefix (truncated as needed, non-alphanumerics replaced by
/// `_`), then pid, a per-process counter and two characters of the time,
/// in base 36.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut suffix = format!(
        "{}{}",
        base36(u64::from(std::process::id())),
        base36(u64::from(n))
    );
    suffix.push_str(&base36(secs % (36 * 36) + 36 * 36)[1..]);
    let keep = MAX_NAME.saturating_sub(suffix.len() + 1);
    let prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(keep)
        .collect();
    let name = format!("{prefix}_{suffix}");
    name.chars()
        .skip(name.len().saturating_sub(MAX_NAME))
        .collect()
}

/// A fresh directory under `/sys/fs/bpf`, removed with every pin in it
/// (recursively) on drop.
#[derive(Debug)]
pub struct BpffsDir {
    path: PathBuf,
}

impl BpffsDir {
    /// Creates `/sys/fs/bpf/<unique_name(prefix)>`.
    pub fn new(prefix: &str) -> Result<BpffsDir, TestkitError> {
        BpffsDir::new_in(Path::new(BPFFS_ROOT), prefix)
    }

    /// Creates `<root>/<unique_name(prefix)>` (root must be on bpffs for pins).
    pub fn new_in(root: &Path, prefix: &str) -> Result<BpffsDir, TestkitError> {
        let path = root.join(unique_name(prefix));
        std::fs::create_dir(&path).map_err(|source| TestkitError::Io {
            what: "cannot create",
            path: path.clone(),
            source,
        })?;
        Ok(BpffsDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for BpffsDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                eprintln!("warning: cannot remove {}: {e}", self.path.display());
            }
        }
    }
}

/// An exclusive `flock` on `/tmp/ebpf-sdk-<name>.lock`, held until drop.
///
/// Serializes tests across processes (cargo-nextest runs each test in its
/// own process) that share a global resource: the firewall object's
/// by-name pins, an interface, XDP attachment.
#[derive(Debug)]
pub struct TestLock {
    path: PathBuf,
    _file: File,
}

impl TestLock {
    /// Blocks until the lock named `name` is ours.
    pub fn acquire(name: &str) -> Result<TestLock, TestkitError> {
        TestLock::acquire_path(&std::env::temp_dir().join(format!("ebpf-sdk-{name}.lock")))
    }

    /// Blocks until the lock file at `path` is ours.
    pub fn acquire_path(path: &Path) -> Result<TestLock, TestkitError> {
        let io = |source| TestkitError::Io {
            what: "cannot lock",
            path: path.to_path_buf(),
            source,
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(TestLock {
            path: path.to_path_buf(),
            _file: file,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_short_unique_and_valid() {
        let names: HashSet<String> = (0..2000).map(|_| unique_name("firewall-test")).collect();
        assert_eq!(names.len(), 2000);
        for n in &names {
            assert!(n.len() <= 15, "{n}");
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{n}"
            );
        }
        assert!(unique_name("fw").starts_with("fw_"));
        assert!(unique_name("").len() <= 15);
    }

    #[test]
    fn lock_excludes_other_holders() {
        let dir = std::env::temp_dir().join(unique_name("lk"));
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("x.lock");
        let held = TestLock::acquire_path(&path).unwrap();
        // A second open file description cannot take the flock while held.
        let other = File::options().write(true).open(&path).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().unwrap();
        drop(other);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
