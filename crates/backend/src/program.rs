//! Loaded programs and their links, as far as maps need them (program
//! arrays) and listing pins needs them.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{BackendError, ObjectKind, Op, Target};
use crate::info::{LinkInfo, ProgInfo};
use crate::pin;
use crate::sys;

/// An open kernel program (loaded elsewhere, e.g. by `bpftool prog loadall`).
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
    info: ProgInfo,
    path: Option<PathBuf>,
}

impl Program {
    /// Opens the program pinned at `path` (checked like
    /// [`Map::open_pinned`](crate::Map::open_pinned)).
    pub fn open_pinned(path: impl AsRef<Path>) -> Result<Program, BackendError> {
        let path = path.as_ref();
        let fd = pin::open_pinned(path, ObjectKind::Program, 0)?;
        let target = Target::Path(path.to_path_buf());
        let info = prog_info(fd.as_fd(), &target)?;
        Ok(Program {
            fd,
            info,
            path: Some(path.to_path_buf()),
        })
    }

    /// Opens the program with kernel id `id`.
    pub fn from_id(id: u32) -> Result<Program, BackendError> {
        let target = Target::Id {
            kind: ObjectKind::Program,
            id,
        };
        let fd = sys::prog_get_fd_by_id(id).map_err(|source| match source.raw_os_error() {
            Some(libc::ENOENT) => BackendError::NoSuchId {
                kind: ObjectKind::Program,
                id,
            },
            Some(libc::EPERM | libc::EACCES) => BackendError::PermissionDenied {
                op: Op::OpenById,
                target: target.clone(),
                source,
            },
            _ => BackendError::Kernel {
                op: Op::OpenById,
                target: target.clone(),
                source,
            },
        })?;
        let info = prog_info(fd.as_fd(), &target)?;
        Ok(Program {
            fd,
            info,
            path: None,
        })
    }

    /// The program's attributes.
    pub fn info(&self) -> &ProgInfo {
        &self.info
    }

    /// The pin path it was opened from.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Pins the program at `path` (on bpffs; the path must not exist).
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), BackendError> {
        crate::map::pin_fd(self.fd.as_fd(), path.as_ref())
    }
}

/// A pinned link: a program's attachment (to an interface, a cgroup, a
/// hook), which lasts while the link is pinned.
#[derive(Debug)]
pub struct Link {
    _fd: OwnedFd,
    info: LinkInfo,
}

impl Link {
    /// Opens the link pinned at `path` (checked like
    /// [`Map::open_pinned`](crate::Map::open_pinned)).
    pub fn open_pinned(path: impl AsRef<Path>) -> Result<Link, BackendError> {
        let path = path.as_ref();
        let fd = pin::open_pinned(path, ObjectKind::Link, 0)?;
        let raw = sys::link_info(fd.as_fd()).map_err(|source| BackendError::Kernel {
            op: Op::Info,
            target: Target::Path(path.to_path_buf()),
            source,
        })?;
        Ok(Link {
            _fd: fd,
            info: LinkInfo::from_raw(&raw),
        })
    }

    /// The link's attributes.
    pub fn info(&self) -> &LinkInfo {
        &self.info
    }
}

fn prog_info(fd: BorrowedFd<'_>, target: &Target) -> Result<ProgInfo, BackendError> {
    let err = |source: io::Error| BackendError::Kernel {
        op: Op::Info,
        target: target.clone(),
        source,
    };
    let first = sys::prog_info(fd, &mut []).map_err(err)?;
    let mut ids = vec![0u32; first.nr_map_ids as usize];
    let raw = if ids.is_empty() {
        first
    } else {
        sys::prog_info(fd, &mut ids).map_err(err)?
    };
    ids.truncate(raw.nr_map_ids as usize);
    Ok(ProgInfo::from_raw(&raw, ids))
}

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Program {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<Program> for OwnedFd {
    fn from(p: Program) -> OwnedFd {
        p.fd
    }
}
