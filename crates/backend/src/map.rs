//! Kernel maps.

use std::fmt;
use std::io;
use std::ops::ControlFlow;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::backend::{
    check, BatchCursor, BatchSink, CursorState, Entries, Keys, MapBackend, UpdateFlags,
};
use crate::batch::{
    batch_unsupported, chunked_write, default_batch_size, BatchEntries, WriteFailure,
};
use crate::error::{
    from_errno, BackendError, BatchError, ErrnoCtx, MapContext, ObjectKind, Op, ReadOnlyReason,
    Target,
};
use crate::info::{MapInfo, RawBtf};
use crate::percpu::num_possible_cpus;
use crate::pin::{self, OPEN_RDONLY};
use crate::program::Program;
use crate::sys::{self, MapCreateAttr, MapFd};
use ebpf_sdk_schema::{MapFlags, MapType};

/// A BPF object given by pin, id or open file descriptor.
#[derive(Debug, Clone, Copy)]
pub enum ObjectRef<'a> {
    /// A pinned path on bpffs.
    Pinned(&'a Path),
    /// A kernel id.
    Id(u32),
    /// An open file descriptor.
    Fd(BorrowedFd<'a>),
}

/// An open kernel map.
///
/// Cheap operations take `&self`; a `Map` can be shared between threads.
/// The file descriptor is closed on drop (a pinned map stays alive).
pub struct Map {
    fd: MapFd,
    info: MapInfo,
    ctx: MapContext,
    ncpus: usize,
    opened_read_only: bool,
    fd_read_only: bool,
    frozen: AtomicBool,
    batch_size: usize,
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("fd", &self.fd.as_fd().as_raw_fd())
            .field("info", &self.info)
            .field("path", &self.ctx.path)
            .field("read_only", &self.read_only_reason())
            .finish()
    }
}

fn is_perm(e: &BackendError) -> bool {
    matches!(e, BackendError::PermissionDenied { .. })
}

impl Map {
    /// Opens the map pinned at `path`.
    ///
    /// Before asking the kernel, the path must exist, must not be a
    /// directory or regular file, and must be on bpffs; then the pinned
    /// object must be a map (not a program, link or BTF object). Each case
    /// has its own [`BackendError`] variant. If the pin cannot be opened for
    /// writing, it is opened read-only and writes report
    /// [`BackendError::ReadOnly`].
    pub fn open_pinned(path: impl AsRef<Path>) -> Result<Map, BackendError> {
        let path = path.as_ref();
        match pin::open_pinned(path, ObjectKind::Map, 0) {
            Ok(fd) => Map::from_owned(fd, Some(path.to_path_buf()), false),
            Err(e) if is_perm(&e) => match pin::open_pinned(path, ObjectKind::Map, OPEN_RDONLY) {
                Ok(fd) => Map::from_owned(fd, Some(path.to_path_buf()), true),
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Opens the map pinned at `path` read-only (`BPF_F_RDONLY`), for readers
    /// that must not need write access.
    pub fn open_pinned_read_only(path: impl AsRef<Path>) -> Result<Map, BackendError> {
        let path = path.as_ref();
        let fd = pin::open_pinned(path, ObjectKind::Map, OPEN_RDONLY)?;
        Map::from_owned(fd, Some(path.to_path_buf()), true)
    }

    /// Opens the map with kernel id `id` (falling back to read-only as
    /// [`Map::open_pinned`] does).
    pub fn from_id(id: u32) -> Result<Map, BackendError> {
        let err = |source: io::Error| match source.raw_os_error() {
            Some(libc::ENOENT) => BackendError::NoSuchId {
                kind: ObjectKind::Map,
                id,
            },
            Some(libc::EPERM | libc::EACCES) => BackendError::PermissionDenied {
                op: Op::OpenById,
                target: Target::Id {
                    kind: ObjectKind::Map,
                    id,
                },
                source,
            },
            _ => BackendError::Kernel {
                op: Op::OpenById,
                target: Target::Id {
                    kind: ObjectKind::Map,
                    id,
                },
                source,
            },
        };
        match sys::map_get_fd_by_id(id, 0) {
            Ok(fd) => Map::from_owned(fd, None, false),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
                match sys::map_get_fd_by_id(id, OPEN_RDONLY) {
                    Ok(fd) => Map::from_owned(fd, None, true),
                    Err(_) => Err(err(e)),
                }
            }
            Err(e) => Err(err(e)),
        }
    }

    /// Wraps an open map file descriptor (checked to be a map).
    pub fn from_fd(fd: OwnedFd) -> Result<Map, BackendError> {
        let found = pin::fd_kind(fd.as_fd())?;
        if found != ObjectKind::Map {
            return Err(BackendError::WrongObjectKind {
                path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
                expected: ObjectKind::Map,
                found,
            });
        }
        Map::from_owned(fd, None, false)
    }

    fn from_owned(
        fd: OwnedFd,
        path: Option<PathBuf>,
        opened_read_only: bool,
    ) -> Result<Map, BackendError> {
        let ncpus = num_possible_cpus()?;
        let target = || match &path {
            Some(p) => Target::Path(p.clone()),
            None => Target::Path(PathBuf::from("<map fd>")),
        };
        let (fd, raw) = MapFd::new(fd, ncpus).map_err(|source| BackendError::Kernel {
            op: Op::Info,
            target: target(),
            source,
        })?;
        let info = MapInfo::from_raw(&raw);
        let frozen = pin::fd_frozen(fd.as_fd());
        let fd_read_only = pin::fd_read_only(fd.as_fd());
        let batch_size = default_batch_size(
            info.key_size as usize,
            info.value_buf_len(ncpus).unwrap_or(usize::MAX),
        );
        Ok(Map {
            ctx: MapContext {
                name: info.name.clone(),
                id: info.id,
                path,
            },
            fd,
            info,
            ncpus,
            opened_read_only,
            fd_read_only,
            frozen: AtomicBool::new(frozen),
            batch_size,
        })
    }

    /// The map's attributes as read at open.
    pub fn info(&self) -> &MapInfo {
        &self.info
    }

    /// The kernel name (at most 15 bytes; a by-name pin's file name is the full name).
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The pin path this map was opened from.
    pub fn path(&self) -> Option<&Path> {
        self.ctx.path.as_deref()
    }

    /// Name, id and path, as used in errors.
    pub fn context(&self) -> &MapContext {
        &self.ctx
    }

    /// Possible CPUs (the slot count of per-CPU values).
    pub fn ncpus(&self) -> usize {
        self.ncpus
    }

    /// Bytes of one value buffer (see [`MapInfo::value_buf_len`]).
    pub fn value_buf_len(&self) -> usize {
        self.info.value_buf_len(self.ncpus).unwrap_or(usize::MAX)
    }

    /// Entries per batch syscall.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Sets the entries per batch syscall (at least 1). The default is
    /// [`DEFAULT_BATCH_ENTRIES`](crate::DEFAULT_BATCH_ENTRIES), fewer for large
    /// entries so one call moves at most [`DEFAULT_BATCH_BYTES`](crate::DEFAULT_BATCH_BYTES).
    pub fn set_batch_size(&mut self, entries: usize) {
        self.batch_size = entries.max(1);
    }

    /// Whether the map is frozen now (read from `/proc/self/fdinfo`).
    pub fn is_frozen(&self) -> bool {
        let frozen = pin::fd_frozen(self.fd.as_fd());
        if frozen {
            self.frozen.store(true, Ordering::Relaxed);
        }
        frozen
    }

    /// Why writes from user space are refused, if they are. Reads always work.
    pub fn read_only_reason(&self) -> Option<ReadOnlyReason> {
        if self.opened_read_only {
            Some(ReadOnlyReason::OpenedReadOnly)
        } else if self.fd_read_only {
            Some(ReadOnlyReason::RdonlyFlag)
        } else if self.frozen.load(Ordering::Relaxed) {
            Some(ReadOnlyReason::Frozen)
        } else {
            None
        }
    }

    fn refuse_write(&self, op: Op) -> Result<(), BackendError> {
        match self.read_only_reason() {
            Some(reason) => Err(BackendError::ReadOnly {
                op,
                map: self.ctx.clone(),
                reason,
            }),
            None => Ok(()),
        }
    }

    fn err(&self, op: Op, key: Option<&[u8]>, e: io::Error) -> BackendError {
        let mut read_only = self.read_only_reason();
        if read_only.is_none()
            && op.is_write()
            && matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES))
            && self.is_frozen()
        {
            read_only = Some(ReadOnlyReason::Frozen);
        }
        from_errno(
            ErrnoCtx {
                op,
                info: &self.info,
                map: &self.ctx,
                key,
                read_only,
            },
            e,
        )
    }

    /// NULL for keyless maps.
    fn key_arg<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        (self.info.key_size > 0).then_some(key)
    }

    fn wrong_type(&self, op: Op, expected: &'static str) -> BackendError {
        BackendError::WrongMapType {
            op,
            map: self.ctx.clone(),
            map_type: self.info.map_type,
            expected,
        }
    }

    /// The value under `key`, `None` if absent.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        self.lookup_with_flags(key, 0)
    }

    /// [`Map::lookup`] with raw `BPF_MAP_LOOKUP_ELEM` flags (e.g. `BPF_F_LOCK` = 4).
    pub fn lookup_with_flags(
        &self,
        key: &[u8],
        flags: u64,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        let mut value = vec![0; self.value_buf_len()];
        Ok(self.lookup_into(key, &mut value, flags)?.then_some(value))
    }

    /// Looks `key` up into `value` (exactly [`Map::value_buf_len`] bytes);
    /// `false` if absent. Avoids an allocation per lookup.
    pub fn lookup_into(
        &self,
        key: &[u8],
        value: &mut [u8],
        flags: u64,
    ) -> Result<bool, BackendError> {
        let op = Op::Lookup;
        check::key(self, op, key)?;
        check::value(self, op, value)?;
        if self.info.map_type == MapType::BloomFilter {
            return Err(self.wrong_type(op, "a map with keys (use contains for bloom filters)"));
        }
        match self.fd.lookup(self.key_arg(key), value, flags) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(self.err(op, Some(key), e)),
        }
    }

    /// Stores `value` under `key`.
    pub fn update(&self, key: &[u8], value: &[u8], flags: UpdateFlags) -> Result<(), BackendError> {
        let op = Op::Update;
        check::key(self, op, key)?;
        check::value(self, op, value)?;
        check::write_key(self, op, key)?;
        self.refuse_write(op)?;
        self.fd
            .update(self.key_arg(key), value, flags.bits())
            .map_err(|e| self.err(op, Some(key), e))
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &[u8]) -> Result<(), BackendError> {
        let op = Op::Delete;
        check::key(self, op, key)?;
        check::write_key(self, op, key)?;
        self.refuse_write(op)?;
        self.fd
            .delete(self.key_arg(key))
            .map_err(|e| self.err(op, Some(key), e))
    }

    /// The key after `key` (`None`: the first key); `Ok(None)` at the end.
    ///
    /// The first call passes a NULL key, which every keyed map type accepts.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, BackendError> {
        let op = Op::NextKey;
        if let Some(k) = key {
            check::key(self, op, k)?;
        }
        let mut next = vec![0; self.info.key_size as usize];
        match self
            .fd
            .next_key(key.and_then(|k| self.key_arg(k)), &mut next)
        {
            Ok(()) => Ok(Some(next)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.err(op, key, e)),
        }
    }

    /// Iterates over the keys.
    pub fn keys(&self) -> Keys<'_> {
        Keys::new(self)
    }

    /// Iterates over `(key, value)` pairs, one lookup per key (see
    /// [`Map::lookup_batch`] for large maps).
    pub fn entries(&self) -> Entries<'_> {
        Entries::new(self)
    }

    /// Pushes onto a queue or stack, or adds to a bloom filter. With
    /// [`UpdateFlags::Exist`] a full queue/stack drops its oldest element.
    pub fn push(&self, value: &[u8], flags: UpdateFlags) -> Result<(), BackendError> {
        let op = Op::Push;
        check::keyless(self, op)?;
        check::value(self, op, value)?;
        self.refuse_write(op)?;
        self.fd
            .update(None, value, flags.bits())
            .map_err(|e| self.err(op, None, e))
    }

    /// Pops from a queue (oldest) or stack (newest); `None` when empty.
    pub fn pop(&self) -> Result<Option<Vec<u8>>, BackendError> {
        let op = Op::Pop;
        if !matches!(self.info.map_type, MapType::Queue | MapType::Stack) {
            return Err(self.wrong_type(op, "a queue or stack"));
        }
        self.refuse_write(op)?;
        let mut value = vec![0; self.value_buf_len()];
        match self.fd.lookup_and_delete(None, &mut value, 0) {
            Ok(()) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.err(op, None, e)),
        }
    }

    /// The element [`Map::pop`] would return; `None` when empty.
    pub fn peek(&self) -> Result<Option<Vec<u8>>, BackendError> {
        let op = Op::Peek;
        if !matches!(self.info.map_type, MapType::Queue | MapType::Stack) {
            return Err(self.wrong_type(op, "a queue or stack (use contains for bloom filters)"));
        }
        let mut value = vec![0; self.value_buf_len()];
        match self.fd.lookup(None, &mut value, 0) {
            Ok(()) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.err(op, None, e)),
        }
    }

    /// Bloom filter test: `false` = definitely absent, `true` = probably present.
    pub fn contains(&self, value: &[u8]) -> Result<bool, BackendError> {
        let op = Op::Peek;
        if self.info.map_type != MapType::BloomFilter {
            return Err(self.wrong_type(op, "a bloom filter"));
        }
        check::value(self, op, value)?;
        // The kernel reads the value to test from the value buffer.
        let mut buf = value.to_vec();
        match self.fd.lookup(None, &mut buf, 0) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(self.err(op, None, e)),
        }
    }

    /// Stores a program (in a program array) or an inner map (in an
    /// array/hash of maps) under `key`: the value written is the object's fd.
    pub fn update_fd(
        &self,
        key: &[u8],
        target: ObjectRef<'_>,
        flags: UpdateFlags,
    ) -> Result<(), BackendError> {
        let op = Op::Update;
        let want = match self.info.map_type {
            MapType::ProgArray => ObjectKind::Program,
            MapType::ArrayOfMaps | MapType::HashOfMaps => ObjectKind::Map,
            _ => return Err(self.wrong_type(op, "a program array or a map-in-map")),
        };
        let owned: OwnedFd;
        let fd = match target {
            ObjectRef::Fd(fd) => fd,
            ObjectRef::Pinned(path) => {
                owned = match want {
                    ObjectKind::Program => Program::open_pinned(path)?.into(),
                    _ => Map::open_pinned(path)?.fd.into_owned(),
                };
                owned.as_fd()
            }
            ObjectRef::Id(id) => {
                owned = match want {
                    ObjectKind::Program => Program::from_id(id)?.into(),
                    _ => Map::from_id(id)?.fd.into_owned(),
                };
                owned.as_fd()
            }
        };
        let raw = u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX);
        self.update(key, &raw.to_ne_bytes(), flags)
    }

    /// The id of the program or inner map stored under `key` in a program
    /// array or map-in-map; `None` if the slot is empty.
    pub fn lookup_id(&self, key: &[u8]) -> Result<Option<u32>, BackendError> {
        if !matches!(
            self.info.map_type,
            MapType::ProgArray | MapType::ArrayOfMaps | MapType::HashOfMaps
        ) {
            return Err(self.wrong_type(Op::Lookup, "a program array or a map-in-map"));
        }
        Ok(self
            .lookup(key)?
            .and_then(|v| Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?))))
    }

    /// Freezes the map: user space can no longer write it (programs still can,
    /// unless it was created with `BPF_F_RDONLY_PROG`).
    pub fn freeze(&self) -> Result<(), BackendError> {
        self.fd
            .freeze()
            .map_err(|e| self.err(Op::Freeze, None, e))?;
        self.frozen.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Pins the map at `path` (on bpffs; the path must not exist).
    pub fn pin(&mut self, path: impl AsRef<Path>) -> Result<(), BackendError> {
        let path = path.as_ref();
        pin_fd(self.fd.as_fd(), path)?;
        if self.ctx.path.is_none() {
            self.ctx.path = Some(path.to_path_buf());
        }
        Ok(())
    }

    /// The map's raw BTF and key/value type ids; `None` if it has no BTF.
    pub fn btf(&self) -> Result<Option<RawBtf>, BackendError> {
        if self.info.btf_id == 0 {
            return Ok(None);
        }
        let id = self.info.btf_id;
        let target = || Target::Id {
            kind: ObjectKind::Btf,
            id,
        };
        let fd = sys::btf_get_fd_by_id(id).map_err(|source| match source.raw_os_error() {
            Some(libc::ENOENT) => BackendError::NoSuchId {
                kind: ObjectKind::Btf,
                id,
            },
            Some(libc::EPERM | libc::EACCES) => BackendError::PermissionDenied {
                op: Op::Btf,
                target: target(),
                source,
            },
            _ => BackendError::Kernel {
                op: Op::Btf,
                target: target(),
                source,
            },
        })?;
        let kernel = |source| BackendError::Kernel {
            op: Op::Btf,
            target: target(),
            source,
        };
        let mut buf = Vec::new();
        // BTF objects are immutable, so the second call fits; loop for safety.
        for _ in 0..3 {
            let info = sys::btf_info(fd.as_fd(), &mut buf).map_err(kernel)?;
            let size = info.btf_size as usize;
            if size <= buf.len() {
                buf.truncate(size);
                return Ok(Some(RawBtf {
                    btf_id: id,
                    bytes: buf,
                    key_type_id: self.info.btf_key_type_id,
                    value_type_id: self.info.btf_value_type_id,
                    vmlinux_value_type_id: self.info.btf_vmlinux_value_type_id,
                    kernel_btf: info.kernel_btf != 0,
                }));
            }
            buf = vec![0; size];
        }
        Err(kernel(io::Error::from_raw_os_error(libc::EAGAIN)))
    }

    /// Reads every entry with `BPF_MAP_LOOKUP_BATCH`, [`Map::batch_size`]
    /// entries per call; falls back to key iteration when the kernel or map
    /// type has no batch lookup.
    pub fn lookup_batch(&self) -> Result<BatchEntries, BackendError> {
        self.lookup_batch_impl(false)
    }

    /// Reads and deletes every entry (`BPF_MAP_LOOKUP_AND_DELETE_BATCH`, hash
    /// maps only; no fallback).
    pub fn lookup_and_delete_batch(&self) -> Result<BatchEntries, BackendError> {
        self.lookup_batch_impl(true)
    }

    /// Reads every entry in batches of [`Map::batch_size`], handing each
    /// batch to `sink` as concatenated keys and values with its entry count,
    /// so a caller can stream a large map without holding all of it. `sink`
    /// returns [`ControlFlow::Break`] to stop early.
    pub fn lookup_batch_chunks(&self, sink: &mut BatchSink<'_>) -> Result<(), BackendError> {
        self.lookup_batch_stream(false, sink)
    }

    fn lookup_batch_impl(&self, delete: bool) -> Result<BatchEntries, BackendError> {
        let mut out = BatchEntries::new(self.info.key_size as usize, self.value_buf_len());
        self.lookup_batch_stream(delete, &mut |k, v, _| {
            out.keys.extend_from_slice(k);
            out.values.extend_from_slice(v);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    fn lookup_batch_stream(
        &self,
        delete: bool,
        sink: &mut BatchSink<'_>,
    ) -> Result<(), BackendError> {
        let op = if delete {
            Op::LookupAndDeleteBatch
        } else {
            Op::LookupBatch
        };
        if delete {
            self.refuse_write(op)?;
        }
        let mut cursor = BatchCursor::default();
        let mut buf = self.batch_buf();
        loop {
            match cursor.state {
                CursorState::Done => return Ok(()),
                CursorState::ByKeys(_) => return self.lookup_by_keys(op, sink),
                _ => {
                    let n = self.batch_step(delete, &mut cursor, &mut buf)?;
                    let (k, v) = buf.filled(n);
                    if n > 0 && sink(k, v, n).is_break() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The next batch of entries after `cursor` (see
    /// [`MapBackend::lookup_batch_next`]): one `BPF_MAP_LOOKUP_BATCH` of
    /// [`Map::batch_size`] entries, or key by key where the kernel has no
    /// batch lookup for the map.
    pub fn lookup_batch_next(
        &self,
        cursor: &mut BatchCursor,
    ) -> Result<Option<BatchEntries>, BackendError> {
        let mut buf = self.batch_buf();
        loop {
            match &cursor.state {
                CursorState::Done => return Ok(None),
                CursorState::ByKeys(last) => {
                    let mut out = BatchEntries::new(buf.ks, buf.vs);
                    let mut value = vec![0; buf.vs];
                    let mut last = last.clone();
                    while out.len() < self.batch_size {
                        let Some(key) = self.next_key(last.as_deref())? else {
                            cursor.state = CursorState::Done;
                            break;
                        };
                        if self.lookup_into(&key, &mut value, 0)? {
                            out.push(&key, &value);
                        }
                        last = Some(key);
                    }
                    if let (CursorState::ByKeys(slot), Some(k)) = (&mut cursor.state, last) {
                        *slot = Some(k);
                    }
                    return Ok((!out.is_empty()).then_some(out));
                }
                _ => {
                    let n = self.batch_step(false, cursor, &mut buf)?;
                    if n > 0 {
                        let (k, v) = buf.filled(n);
                        return Ok(Some(BatchEntries {
                            key_size: buf.ks,
                            value_size: buf.vs,
                            keys: k.to_vec(),
                            values: v.to_vec(),
                        }));
                    }
                }
            }
        }
    }

    fn batch_buf(&self) -> BatchBuf {
        let ks = self.info.key_size as usize;
        let vs = self.value_buf_len();
        let chunk = self.batch_size;
        BatchBuf {
            ks,
            vs,
            chunk,
            keys: vec![0; chunk * ks],
            values: vec![0; chunk * vs],
            out_token: vec![0; ks.max(8)],
        }
    }

    /// One `BPF_MAP_LOOKUP(_AND_DELETE)_BATCH` call after `cursor` into
    /// `buf`; returns the entries read and moves the cursor on (to
    /// [`CursorState::ByKeys`] when the kernel has no batch lookup for
    /// this map, which only a first non-deleting call can find out).
    fn batch_step(
        &self,
        delete: bool,
        cursor: &mut BatchCursor,
        buf: &mut BatchBuf,
    ) -> Result<usize, BackendError> {
        let op = if delete {
            Op::LookupAndDeleteBatch
        } else {
            Op::LookupBatch
        };
        let in_token = match &cursor.state {
            CursorState::Token(t) => Some(t.clone()),
            _ => None,
        };
        loop {
            let mut count = u32::try_from(buf.chunk).unwrap_or(u32::MAX);
            let res = self.fd.lookup_batch(
                delete,
                in_token.as_deref(),
                &mut buf.out_token,
                &mut buf.keys,
                &mut buf.values,
                &mut count,
                0,
            );
            let n = (count as usize).min(buf.chunk);
            let ended = match res {
                Ok(()) => false,
                // ENOENT marks the end and still carries the last entries.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
                // A hash bucket holds more entries than one batch: grow it.
                Err(e)
                    if e.raw_os_error() == Some(libc::ENOSPC)
                        && n == 0
                        && buf.chunk < (1 << 20) =>
                {
                    buf.chunk *= 2;
                    buf.keys.resize(buf.chunk * buf.ks, 0);
                    buf.values.resize(buf.chunk * buf.vs, 0);
                    continue;
                }
                Err(e) if !delete && in_token.is_none() && batch_unsupported(&e) => {
                    cursor.state = CursorState::ByKeys(None);
                    return Ok(0);
                }
                Err(e) => return Err(self.err(op, None, e)),
            };
            cursor.state = if ended || n == 0 {
                CursorState::Done
            } else {
                CursorState::Token(buf.out_token.clone())
            };
            return Ok(n);
        }
    }

    fn lookup_by_keys(&self, op: Op, sink: &mut BatchSink<'_>) -> Result<(), BackendError> {
        let mut value = vec![0; self.value_buf_len()];
        for key in self.keys() {
            let key = key.map_err(|e| match e {
                // Report the batch operation, not the fallback's iteration.
                BackendError::Unsupported {
                    map,
                    map_type,
                    hint,
                    errno,
                    ..
                } => BackendError::Unsupported {
                    op,
                    map,
                    map_type,
                    hint,
                    errno,
                },
                e => e,
            })?;
            if self.lookup_into(&key, &mut value, 0)? && sink(&key, &value, 1).is_break() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Writes `count` entries from concatenated `keys` and `values` with
    /// `BPF_MAP_UPDATE_BATCH`, [`Map::batch_size`] entries per call.
    ///
    /// Falls back to one update per entry when the first batch call is
    /// refused as unsupported. On failure, [`BatchError::applied`] is exactly
    /// the number of leading entries that were written (the kernel reports
    /// it back per call).
    pub fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: usize,
        flags: UpdateFlags,
    ) -> Result<usize, BatchError> {
        let op = Op::UpdateBatch;
        let early = |e| BatchError::before_start(op, count, e);
        check::batch(self, op, keys, Some(values), count).map_err(early)?;
        self.refuse_write(op).map_err(early)?;
        let ks = self.info.key_size as usize;
        let vs = self.value_buf_len();
        let (limit, bad) = self.first_bad_key(op, keys, count);
        let res = chunked_write(
            limit,
            self.batch_size,
            |start, n| {
                let mut c = u32::try_from(n).unwrap_or(u32::MAX);
                self.fd
                    .update_batch(
                        &keys[start * ks..(start + n) * ks],
                        &values[start * vs..(start + n) * vs],
                        &mut c,
                        flags.bits(),
                    )
                    .map_err(|e| (applied_on_error(c, n), e))
            },
            |i| {
                self.fd.update(
                    self.key_arg(&keys[i * ks..(i + 1) * ks]),
                    &values[i * vs..(i + 1) * vs],
                    flags.bits(),
                )
            },
        );
        self.finish_write(op, keys, count, res, bad)
    }

    /// Checks every key of a batch write before any is written. Entries
    /// before a bad key are still applied, as the kernel would, so the
    /// applied count means the same thing: returns how many lead the first
    /// bad key (all of them without one) and that key's index and error.
    fn first_bad_key(
        &self,
        op: Op,
        keys: &[u8],
        count: usize,
    ) -> (usize, Option<(usize, BackendError)>) {
        let ks = self.info.key_size as usize;
        let bad = (0..count).find_map(|i| {
            check::write_key(self, op, &keys[i * ks..(i + 1) * ks])
                .err()
                .map(|e| (i, e))
        });
        (bad.as_ref().map_or(count, |(i, _)| *i), bad)
    }

    /// Deletes `count` concatenated `keys` with `BPF_MAP_DELETE_BATCH`, with
    /// the fallback and applied-count semantics of [`Map::update_batch`].
    pub fn delete_batch(&self, keys: &[u8], count: usize) -> Result<usize, BatchError> {
        let op = Op::DeleteBatch;
        let early = |e| BatchError::before_start(op, count, e);
        check::batch(self, op, keys, None, count).map_err(early)?;
        self.refuse_write(op).map_err(early)?;
        let ks = self.info.key_size as usize;
        let (limit, bad) = self.first_bad_key(op, keys, count);
        let res = chunked_write(
            limit,
            self.batch_size,
            |start, n| {
                let mut c = u32::try_from(n).unwrap_or(u32::MAX);
                self.fd
                    .delete_batch(&keys[start * ks..(start + n) * ks], &mut c)
                    .map_err(|e| (applied_on_error(c, n), e))
            },
            |i| self.fd.delete(self.key_arg(&keys[i * ks..(i + 1) * ks])),
        );
        self.finish_write(op, keys, count, res, bad)
    }

    fn finish_write(
        &self,
        op: Op,
        keys: &[u8],
        count: usize,
        res: Result<usize, WriteFailure>,
        bad: Option<(usize, BackendError)>,
    ) -> Result<usize, BatchError> {
        let ks = self.info.key_size as usize;
        match (res, bad) {
            (Ok(n), None) => Ok(n),
            (Ok(n), Some((_, source))) => Err(BatchError {
                op,
                applied: n,
                requested: count,
                source: Box::new(source),
            }),
            (Err(WriteFailure { applied, error }), _) => {
                let key = keys.get(applied * ks..(applied + 1) * ks);
                Err(BatchError {
                    op,
                    applied,
                    requested: count,
                    source: Box::new(self.err(op, key, error)),
                })
            }
        }
    }
}

/// The applied count of a failed batch write: the kernel writes back how
/// many entries it processed, except on early errors where `count` is left
/// as passed in (a failed call never applied all `n`).
fn applied_on_error(count: u32, n: usize) -> usize {
    let c = count as usize;
    if c >= n {
        0
    } else {
        c
    }
}

pub(crate) fn pin_fd(fd: BorrowedFd<'_>, path: &Path) -> Result<(), BackendError> {
    let c = pin::check_new_pin(path)?;
    sys::obj_pin(fd, &c).map_err(|source| match source.raw_os_error() {
        Some(libc::EEXIST) => BackendError::PinExists {
            path: path.to_path_buf(),
        },
        Some(libc::EPERM | libc::EACCES) => BackendError::PermissionDenied {
            op: Op::Pin,
            target: Target::Path(path.to_path_buf()),
            source,
        },
        _ => BackendError::Kernel {
            op: Op::Pin,
            target: Target::Path(path.to_path_buf()),
            source,
        },
    })
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Map {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_fd().as_raw_fd()
    }
}

impl From<Map> for OwnedFd {
    fn from(map: Map) -> OwnedFd {
        map.fd.into_owned()
    }
}

impl MapBackend for Map {
    fn info(&self) -> &MapInfo {
        &self.info
    }
    fn context(&self) -> &MapContext {
        &self.ctx
    }
    fn ncpus(&self) -> usize {
        self.ncpus
    }
    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Map::lookup(self, key)
    }
    fn update(&self, key: &[u8], value: &[u8], flags: UpdateFlags) -> Result<(), BackendError> {
        Map::update(self, key, value, flags)
    }
    fn delete(&self, key: &[u8]) -> Result<(), BackendError> {
        Map::delete(self, key)
    }
    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, BackendError> {
        Map::next_key(self, key)
    }
    fn lookup_batch(&self) -> Result<BatchEntries, BackendError> {
        Map::lookup_batch(self)
    }
    fn lookup_batch_chunks(&self, sink: &mut BatchSink<'_>) -> Result<(), BackendError> {
        Map::lookup_batch_chunks(self, sink)
    }
    fn lookup_batch_next(
        &self,
        cursor: &mut BatchCursor,
    ) -> Result<Option<BatchEntries>, BackendError> {
        Map::lookup_batch_next(self, cursor)
    }
    fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: usize,
        flags: UpdateFlags,
    ) -> Result<usize, BatchError> {
        Map::update_batch(self, keys, values, count, flags)
    }
    fn delete_batch(&self, keys: &[u8], count: usize) -> Result<usize, BatchError> {
        Map::delete_batch(self, keys, count)
    }
    fn push(&self, value: &[u8], flags: UpdateFlags) -> Result<(), BackendError> {
        Map::push(self, value, flags)
    }
    fn pop(&self) -> Result<Option<Vec<u8>>, BackendError> {
        Map::pop(self)
    }
    fn peek(&self) -> Result<Option<Vec<u8>>, BackendError> {
        Map::peek(self)
    }
    fn contains(&self, value: &[u8]) -> Result<bool, BackendError> {
        Map::contains(self, value)
    }
}

/// Buffers of a batched lookup.
struct BatchBuf {
    ks: usize,
    vs: usize,
    /// Entries per call (grows when a hash bucket does not fit).
    chunk: usize,
    keys: Vec<u8>,
    values: Vec<u8>,
    out_token: Vec<u8>,
}

impl BatchBuf {
    /// The first `n` keys and values.
    fn filled(&self, n: usize) -> (&[u8], &[u8]) {
        (&self.keys[..n * self.ks], &self.values[..n * self.vs])
    }
}

/// Creates a map (`BPF_MAP_CREATE`): for tests, inner-map templates and
/// scratch maps.
///
/// ```no_run
/// use ebpf_sdk_backend::{MapCreate, MapFlags, MapType};
///
/// # fn main() -> Result<(), ebpf_sdk_backend::BackendError> {
/// let mut lpm = MapCreate::new(MapType::LpmTrie, 8, 4, 128)
///     .name("cidrs")
///     .flags(MapFlags::NO_PREALLOC)
///     .create()?;
/// lpm.pin("/sys/fs/bpf/cidrs")?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MapCreate<'a> {
    attr: MapCreateAttr,
    name: String,
    inner: Option<BorrowedFd<'a>>,
}

impl<'a> MapCreate<'a> {
    /// A map of `map_type` with these sizes.
    pub fn new(
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> MapCreate<'a> {
        MapCreate {
            attr: MapCreateAttr {
                map_type: map_type.id(),
                key_size,
                value_size,
                max_entries,
                ..Default::default()
            },
            name: String::new(),
            inner: None,
        }
    }

    /// Kernel name: at most 15 bytes of `[A-Za-z0-9_.]`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// `map_flags`.
    pub fn flags(mut self, map_flags: MapFlags) -> Self {
        self.attr.map_flags = map_flags.bits();
        self
    }

    /// `map_extra` (bloom filter: number of hash functions, 1..=15; 0 = 5).
    pub fn map_extra(mut self, map_extra: u64) -> Self {
        self.attr.map_extra = map_extra;
        self
    }

    /// The template inner map of an array/hash of maps.
    pub fn inner_map(mut self, inner: &'a Map) -> Self {
        self.inner = Some(inner.as_fd());
        self
    }

    /// Creates the map.
    pub fn create(&self) -> Result<Map, BackendError> {
        let mut attr = self.attr;
        if self.name.len() >= sys::OBJ_NAME_LEN {
            return Err(BackendError::InvalidName {
                name: self.name.clone(),
                reason: "longer than 15 bytes",
            });
        }
        if !self
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err(BackendError::InvalidName {
                name: self.name.clone(),
                reason: "only A-Z, a-z, 0-9, '_' and '.' are allowed",
            });
        }
        attr.map_name[..self.name.len()].copy_from_slice(self.name.as_bytes());
        if let Some(inner) = self.inner {
            attr.inner_map_fd = u32::try_from(inner.as_raw_fd()).unwrap_or(u32::MAX);
        }
        let target = || Target::NewMap {
            name: self.name.clone(),
            map_type: MapType::from_id(attr.map_type),
        };
        let fd = sys::map_create(&attr).map_err(|source| match source.raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => BackendError::PermissionDenied {
                op: Op::Create,
                target: target(),
                source,
            },
            _ => BackendError::Kernel {
                op: Op::Create,
                target: target(),
                source,
            },
        })?;
        Map::from_owned(fd, None, false)
    }

    /// Creates the map and pins it at `path`.
    pub fn create_pinned(&self, path: impl AsRef<Path>) -> Result<Map, BackendError> {
        let mut map = self.create()?;
        map.pin(path)?;
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_count_of_early_errors_is_zero() {
        assert_eq!(applied_on_error(3, 10), 3);
        assert_eq!(applied_on_error(10, 10), 0);
        assert_eq!(applied_on_error(0, 10), 0);
    }

    #[test]
    fn create_refuses_bad_names_before_the_kernel() {
        let e = MapCreate::new(MapType::Hash, 4, 4, 1)
            .name("much_too_long_name")
            .create()
            .unwrap_err();
        assert!(matches!(e, BackendError::InvalidName { .. }), "{e}");
        let e = MapCreate::new(MapType::Hash, 4, 4, 1)
            .name("a-b")
            .create()
            .unwrap_err();
        assert!(matches!(e, BackendError::InvalidName { .. }), "{e}");
    }
}
