//! Pinned paths: checks before the kernel sees a path, and what an fd is.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{BackendError, FsKind, ObjectKind, Op, Target};
use crate::sys;

/// `BPF_FS_MAGIC`, the `statfs` magic of bpffs.
pub const BPF_FS_MAGIC: u64 = 0xcafe_4a11;

/// `BPF_F_RDONLY` as `file_flags`/`open_flags`.
pub(crate) const OPEN_RDONLY: u32 = 1 << 3;

fn c_path(path: &Path) -> Result<CString, BackendError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| BackendError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })
}

/// The filesystem `path` is on.
pub(crate) fn fs_kind(path: &Path) -> Result<FsKind, BackendError> {
    let c = c_path(path)?;
    sys::statfs_magic(&c)
        .map(FsKind)
        .map_err(|source| BackendError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Whether `path` (which must exist) is on a bpffs mount.
pub fn is_on_bpffs(path: impl AsRef<Path>) -> Result<bool, BackendError> {
    Ok(fs_kind(path.as_ref())?.0 == BPF_FS_MAGIC)
}

/// Whether the nearest existing ancestor of `path` is on bpffs.
fn ancestor_on_bpffs(path: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .find(|p| p.exists())
        .is_some_and(|p| is_on_bpffs(p).unwrap_or(false))
}

/// Checks `path` names something on bpffs that could be a pin: it exists, is
/// not a directory or regular file, and is on bpffs.
pub(crate) fn check_pin_path(path: &Path) -> Result<CString, BackendError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BackendError::PinNotFound {
                path: path.to_path_buf(),
                bpffs_mounted: ancestor_on_bpffs(path),
            })
        }
        Err(source) => {
            return Err(BackendError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if meta.is_dir() {
        return Err(BackendError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let fs = fs_kind(path)?;
    if fs.0 != BPF_FS_MAGIC {
        return Err(if meta.is_file() {
            BackendError::RegularFile {
                path: path.to_path_buf(),
                fs,
            }
        } else {
            BackendError::NotOnBpffs {
                path: path.to_path_buf(),
                fs,
            }
        });
    }
    c_path(path)
}

/// Checks that a new pin at `path` would land on bpffs and returns it as C string.
pub(crate) fn check_new_pin(path: &Path) -> Result<CString, BackendError> {
    if path.exists() {
        return Err(BackendError::PinExists {
            path: path.to_path_buf(),
        });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    check_bpffs_dir(dir)?;
    c_path(path)
}

/// Checks that `dir` is a directory on a bpffs mount, where objects are
/// pinned (and can be listed).
pub fn check_bpffs_dir(dir: impl AsRef<Path>) -> Result<(), BackendError> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(BackendError::PinNotFound {
            path: dir.to_path_buf(),
            bpffs_mounted: ancestor_on_bpffs(dir),
        });
    }
    let fs = fs_kind(dir)?;
    if fs.0 != BPF_FS_MAGIC {
        return Err(BackendError::NotOnBpffs {
            path: dir.to_path_buf(),
            fs,
        });
    }
    Ok(())
}

/// The kind of BPF object behind `fd`, from its anon-inode name.
pub(crate) fn fd_kind(fd: BorrowedFd<'_>) -> Result<ObjectKind, BackendError> {
    let link = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let target =
        std::fs::read_link(&link).map_err(|source| BackendError::Io { path: link, source })?;
    Ok(kind_from_link(&target.to_string_lossy()))
}

pub(crate) fn kind_from_link(target: &str) -> ObjectKind {
    match target.strip_prefix("anon_inode:").unwrap_or(target) {
        "bpf-map" => ObjectKind::Map,
        "bpf-prog" => ObjectKind::Program,
        "bpf-link" | "bpf_link" => ObjectKind::Link,
        "btf" => ObjectKind::Btf,
        other => ObjectKind::Other(other.to_string()),
    }
}

/// Whether the map behind `fd` is frozen, from `/proc/self/fdinfo`.
pub(crate) fn fd_frozen(fd: BorrowedFd<'_>) -> bool {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .map(|s| {
            s.lines()
                .any(|l| l.strip_prefix("frozen:").is_some_and(|v| v.trim() == "1"))
        })
        .unwrap_or(false)
}

/// Whether `fd` was opened read-only (access mode `O_RDONLY` in
/// `/proc/self/fdinfo`): maps created with `BPF_F_RDONLY` and maps opened
/// with `BPF_F_RDONLY`. The kernel clears that flag from `map_flags`, so
/// the fd mode is the only place it shows.
pub(crate) fn fd_read_only(fd: BorrowedFd<'_>) -> bool {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .ok()
        .and_then(|s| {
            let v = s.lines().find_map(|l| l.strip_prefix("flags:"))?;
            u32::from_str_radix(v.trim(), 8).ok()
        })
        .is_some_and(|flags| flags & 0o3 == 0)
}

/// Opens the object pinned at `path` after [`check_pin_path`], and checks it
/// is of kind `expected`.
pub(crate) fn open_pinned(
    path: &Path,
    expected: ObjectKind,
    file_flags: u32,
) -> Result<OwnedFd, BackendError> {
    let c = check_pin_path(path)?;
    let fd = sys::obj_get(&c, file_flags).map_err(|source| open_error(path, source))?;
    let found = fd_kind(std::os::fd::AsFd::as_fd(&fd))?;
    if found != expected {
        return Err(BackendError::WrongObjectKind {
            path: path.to_path_buf(),
            expected,
            found,
        });
    }
    Ok(fd)
}

pub(crate) fn open_error(path: &Path, source: io::Error) -> BackendError {
    match source.raw_os_error() {
        Some(libc::ENOENT) => BackendError::PinNotFound {
            path: path.to_path_buf(),
            bpffs_mounted: true,
        },
        Some(libc::EPERM | libc::EACCES) => BackendError::PermissionDenied {
            op: Op::Open,
            target: Target::Path(path.to_path_buf()),
            source,
        },
        _ => BackendError::Kernel {
            op: Op::Open,
            target: Target::Path(path.to_path_buf()),
            source,
        },
    }
}

/// What kind of BPF object is pinned at `path` (checked as for
/// [`Map::open_pinned`](crate::Map::open_pinned), opened read-only).
pub fn pinned_object_kind(path: impl AsRef<Path>) -> Result<ObjectKind, BackendError> {
    let path = path.as_ref();
    let c = check_pin_path(path)?;
    let fd = sys::obj_get(&c, OPEN_RDONLY).map_err(|source| open_error(path, source))?;
    fd_kind(std::os::fd::AsFd::as_fd(&fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anon_inode_names() {
        assert_eq!(kind_from_link("anon_inode:bpf-map"), ObjectKind::Map);
        assert_eq!(kind_from_link("anon_inode:bpf-prog"), ObjectKind::Program);
        assert_eq!(kind_from_link("anon_inode:bpf_link"), ObjectKind::Link);
        assert_eq!(kind_from_link("anon_inode:btf"), ObjectKind::Btf);
        assert_eq!(
            kind_from_link("/dev/null"),
            ObjectKind::Other("/dev/null".into())
        );
    }

    #[test]
    fn plain_paths_are_refused_without_root() {
        let dir = tempfile::tempdir().unwrap();
        let e = check_pin_path(dir.path()).unwrap_err();
        assert!(matches!(e, BackendError::IsDirectory { .. }), "{e}");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let e = check_pin_path(&file).unwrap_err();
        assert!(matches!(e, BackendError::RegularFile { .. }), "{e}");
        let e = check_pin_path(&dir.path().join("missing")).unwrap_err();
        assert!(
            matches!(
                e,
                BackendError::PinNotFound {
                    bpffs_mounted: false,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("is bpffs mounted"), "{e}");
        let e = check_pin_path(Path::new("/dev/null")).unwrap_err();
        assert!(matches!(e, BackendError::NotOnBpffs { .. }), "{e}");
        let e = check_new_pin(&dir.path().join("new")).unwrap_err();
        assert!(matches!(e, BackendError::NotOnBpffs { .. }), "{e}");
    }
}
