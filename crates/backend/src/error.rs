//! The crate's one error type and the errno translation shared by the kernel
//! map and the fake.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::info::MapInfo;
use crate::pin::BPF_FS_MAGIC;
use ebpf_sdk_schema::MapType;

/// `ENOTSUPP` (524): kernel-internal "operation not supported", returned by
/// `bpf()` for map operations a map type does not implement.
pub(crate) const ENOTSUPP: i32 = 524;

/// The operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Opening a pinned object (`BPF_OBJ_GET`).
    Open,
    /// Opening an object by id (`BPF_*_GET_FD_BY_ID`).
    OpenById,
    /// Pinning (`BPF_OBJ_PIN`).
    Pin,
    /// Reading object info (`BPF_OBJ_GET_INFO_BY_FD`).
    Info,
    /// Creating a map (`BPF_MAP_CREATE`).
    Create,
    /// Freezing a map (`BPF_MAP_FREEZE`).
    Freeze,
    /// Element lookup.
    Lookup,
    /// Element update.
    Update,
    /// Element delete.
    Delete,
    /// Key iteration (`BPF_MAP_GET_NEXT_KEY`).
    NextKey,
    /// Queue/stack/bloom push (update with no key).
    Push,
    /// Queue/stack pop (lookup-and-delete with no key).
    Pop,
    /// Queue/stack peek, bloom filter membership test.
    Peek,
    /// `BPF_MAP_LOOKUP_BATCH`.
    LookupBatch,
    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`.
    LookupAndDeleteBatch,
    /// `BPF_MAP_UPDATE_BATCH`.
    UpdateBatch,
    /// `BPF_MAP_DELETE_BATCH`.
    DeleteBatch,
    /// Fetching a map's BTF.
    Btf,
    /// Opening a `PERF_COUNT_SW_BPF_OUTPUT` perf event (`perf_event_open`).
    PerfEventOpen,
    /// Mapping a perf event's ring buffer (`mmap`).
    PerfMmap,
    /// Enabling a perf event (`PERF_EVENT_IOC_ENABLE`).
    PerfEnable,
    /// Waiting for perf events (`poll`).
    PerfPoll,
    /// Running a program once on given input (`BPF_PROG_TEST_RUN`).
    TestRun,
}

impl Op {
    /// Whether the operation changes the map.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Op::Update
                | Op::Delete
                | Op::Push
                | Op::Pop
                | Op::UpdateBatch
                | Op::DeleteBatch
                | Op::LookupAndDeleteBatch
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Open => "open",
            Op::OpenById => "open by id",
            Op::Pin => "pin",
            Op::Info => "get info",
            Op::Create => "create map",
            Op::Freeze => "freeze",
            Op::Lookup => "lookup",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::NextKey => "get next key",
            Op::Push => "push",
            Op::Pop => "pop",
            Op::Peek => "peek",
            Op::LookupBatch => "batch lookup",
            Op::LookupAndDeleteBatch => "batch lookup-and-delete",
            Op::UpdateBatch => "batch update",
            Op::DeleteBatch => "batch delete",
            Op::Btf => "get BTF",
            Op::PerfEventOpen => "perf_event_open",
            Op::PerfMmap => "mmap of the perf ring",
            Op::PerfEnable => "enable perf event",
            Op::PerfPoll => "poll perf events",
            Op::TestRun => "test run (BPF_PROG_TEST_RUN)",
        })
    }
}

/// Which map an error is about: its kernel name, id and pin path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapContext {
    /// Kernel name (at most 15 bytes).
    pub name: String,
    /// Kernel id; 0 for a [`FakeMap`](crate::FakeMap).
    pub id: u32,
    /// Where it was opened from, if pinned.
    pub path: Option<PathBuf>,
}

impl fmt::Display for MapContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.name)?;
        match (&self.path, self.id) {
            (Some(p), _) => write!(f, " at {}", p.display()),
            (None, 0) => Ok(()),
            (None, id) => write!(f, " (id {id})"),
        }
    }
}

/// What a non-map-specific error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// An open map.
    Map(MapContext),
    /// A path (pin or directory).
    Path(PathBuf),
    /// An object id.
    Id {
        /// Kind of object.
        kind: ObjectKind,
        /// Its id.
        id: u32,
    },
    /// A map being created.
    NewMap {
        /// Requested name.
        name: String,
        /// Requested map type.
        map_type: MapType,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Map(m) => write!(f, "map {m}"),
            Target::Path(p) => write!(f, "{}", p.display()),
            Target::Id { kind, id } => write!(f, "{kind} id {id}"),
            Target::NewMap { name, map_type } => {
                write!(f, "new {map_type} map `{name}`")
            }
        }
    }
}

/// The kind of a BPF object behind a file descriptor or pin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A map.
    Map,
    /// A program.
    Program,
    /// A link (attachment).
    Link,
    /// A BTF object.
    Btf,
    /// Something else; the anon-inode name the kernel reports.
    Other(String),
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectKind::Map => f.write_str("map"),
            ObjectKind::Program => f.write_str("program"),
            ObjectKind::Link => f.write_str("link"),
            ObjectKind::Btf => f.write_str("BTF object"),
            ObjectKind::Other(s) => write!(f, "object ({s})"),
        }
    }
}

/// Why a map refuses writes from user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOnlyReason {
    /// The map is frozen (`BPF_MAP_FREEZE`); loaders freeze `.rodata`.
    Frozen,
    /// The map was created with `BPF_F_RDONLY`, or this fd came from
    /// elsewhere opened read-only (the kernel keeps that on the fd, not the map).
    RdonlyFlag,
    /// The pin could only be opened read-only by this process.
    OpenedReadOnly,
}

impl fmt::Display for ReadOnlyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadOnlyReason::Frozen => {
                "it is frozen (BPF_MAP_FREEZE; loaders freeze .rodata after setting it, so change it in the object and reload)"
            }
            ReadOnlyReason::RdonlyFlag => "it was created with BPF_F_RDONLY (its file descriptor is read-only)",
            ReadOnlyReason::OpenedReadOnly => "this process could only open the pin read-only",
        })
    }
}

/// A filesystem type, from its `statfs` magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsKind(pub u64);

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            BPF_FS_MAGIC => "bpffs",
            0x0102_1994 => "tmpfs",
            0xef53 => "ext2/3/4",
            0x9fa0 => "procfs",
            0x6265_6572 => "sysfs",
            0x794c_7630 => "overlayfs",
            0x9123_683e => "btrfs",
            0x5846_5342 => "xfs",
            0x6e73_6673 => "nsfs",
            0x6367_7270 => "cgroup2",
            0x1cd1 => "devpts",
            _ => return write!(f, "a filesystem with magic {:#x}", self.0),
        };
        f.write_str(name)
    }
}

/// Errors of kernel map access, and of the [`FakeMap`](crate::FakeMap).
///
/// Every variant says which map or path and which operation; the ones
/// built from a kernel errno keep it (see [`BackendError::errno`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// Nothing is pinned at the path.
    #[error("no BPF object is pinned at {}: {}", .path.display(), if *.bpffs_mounted {
        "nothing with that name exists on that bpffs"
    } else {
        "the directory is not on bpffs; is bpffs mounted (mount -t bpf bpf /sys/fs/bpf)?"
    })]
    PinNotFound {
        /// The path asked for.
        path: PathBuf,
        /// Whether the nearest existing parent directory is on bpffs.
        bpffs_mounted: bool,
    },
    /// The path is a directory.
    #[error("{} is a directory, not a pinned BPF map", .path.display())]
    IsDirectory {
        /// The path asked for.
        path: PathBuf,
    },
    /// The path is a regular file (never a pin: pins live on bpffs).
    #[error("{} is a regular file on {fs}, not a BPF map pinned on bpffs", .path.display())]
    RegularFile {
        /// The path asked for.
        path: PathBuf,
        /// The filesystem it is on.
        fs: FsKind,
    },
    /// The path is not on a bpffs mount.
    #[error(
        "{} is on {fs}, not on bpffs (magic {BPF_FS_MAGIC:#x}); BPF objects are pinned under a bpffs mount such as /sys/fs/bpf",
        .path.display()
    )]
    NotOnBpffs {
        /// The path asked for (or the directory of a new pin).
        path: PathBuf,
        /// The filesystem it is on.
        fs: FsKind,
    },
    /// The pin holds another kind of BPF object.
    #[error("{} is a pinned BPF {found}, not a {expected}", .path.display())]
    WrongObjectKind {
        /// The path asked for.
        path: PathBuf,
        /// What the caller needed.
        expected: ObjectKind,
        /// What is pinned there.
        found: ObjectKind,
    },
    /// Something already exists where a pin was to be created.
    #[error("cannot pin at {}: the path already exists", .path.display())]
    PinExists {
        /// The path asked for.
        path: PathBuf,
    },
    /// No object with that id.
    #[error("no BPF {kind} with id {id} (it may have been unloaded)")]
    NoSuchId {
        /// Kind of object.
        kind: ObjectKind,
        /// The id asked for.
        id: u32,
    },
    /// `EPERM`/`EACCES` that is not explained by a read-only map.
    #[error(
        "{op} on {target}: permission denied ({source}); bpf() needs CAP_BPF (some map types also CAP_NET_ADMIN or CAP_PERFMON) or CAP_SYS_ADMIN, and access to the pin"
    )]
    PermissionDenied {
        /// The operation.
        op: Op,
        /// What it was applied to.
        target: Target,
        /// The kernel's error.
        source: io::Error,
    },
    /// The map refuses writes from user space; reads still work.
    #[error(
        "{op} on map {map}: the map is read-only for user space because {reason}; reads still work"
    )]
    ReadOnly {
        /// The operation.
        op: Op,
        /// The map.
        map: MapContext,
        /// Why.
        reason: ReadOnlyReason,
    },
    /// `EEXIST` for an update with [`UpdateFlags::NoExist`](crate::UpdateFlags::NoExist).
    #[error("{op} on map {map}: key exists (NoExist refuses to overwrite; use Any or Exist)")]
    KeyExists {
        /// The operation.
        op: Op,
        /// The map.
        map: MapContext,
    },
    /// `ENOENT` for delete, or update with [`UpdateFlags::Exist`](crate::UpdateFlags::Exist).
    #[error("{op} on map {map}: key not found")]
    KeyNotFound {
        /// The operation.
        op: Op,
        /// The map.
        map: MapContext,
    },
    /// An array index at or past `max_entries`.
    #[error("{op} on map {map}: index {index} is out of range; the array has max_entries {max_entries} (indices 0..{max_entries})")]
    IndexOutOfRange {
        /// The operation.
        op: Op,
        /// The map.
        map: MapContext,
        /// The index asked for.
        index: u32,
        /// The array's size.
        max_entries: u32,
    },
    /// `E2BIG`/`ENOSPC`: no room for another element.
    #[error("{op} on map {map}: the map is full (max_entries {max_entries}; {})", errno_name(*.errno))]
    MapFull {
        /// The operation.
        op: Op,
        /// The map.
        map: MapContext,
        /// The map's capacity.
        max_entries: u32,
        /// The errno (`E2BIG` or `ENOSPC`).
        errno: i32,
    },
    /// An LPM trie key whose prefix length exceeds the key's data bits.
    #[error(
        "{op} on LPM trie {map}: prefix length {prefix_len} is too long; it must be <= (key_size - 4) * 8 = {max_prefix_len}"
    )]
    InvalidPrefixLen {
        /// The operation.
        op: Op,
        /// The map.
        map: MapContext,
        /// The key's prefix length (its first 4 bytes, host order).
        prefix_len: u32,
        /// `(key_size - 4) * 8`.
        max_prefix_len: u32,
    },
    /// The map type does not implement the operation.
    #[error("{op} on map {map}: {map_type} maps do not support this operation ({}){}", errno_name(*.errno), .hint.map(|h| format!("; {h}")).unwrap_or_default())]
    Unsupported {
        /// The operation.
        op: Op,
        /// The map.
        map: MapContext,
        /// The map's type.
        map_type: MapType,
        /// What to do instead, when there is an alternative.
        hint: Option<&'static str>,
        /// The errno (`ENOTSUPP`, `EOPNOTSUPP` or `EINVAL`), 0 if refused before the kernel.
        errno: i32,
    },
    /// The kernel refused a value (e.g. an incompatible inner map or program).
    #[error("{op} on map {map}: the kernel rejected the value ({source}); {hint}")]
    Rejected {
        /// The operation.
        op: Op,
        /// The map.
        map: MapContext,
        /// What is probably wrong.
        hint: &'static str,
        /// The kernel's error.
        source: io::Error,
    },
    /// A key or value buffer of the wrong length; never passed to the kernel.
    #[error("{op} on map {map}: {what} is {actual} bytes but must be {expected}{}", .per_cpu.map(|(vs, n)| format!(" (per-CPU: round_up({vs}, 8) * {n} possible CPUs)")).unwrap_or_default())]
    SizeMismatch {
        /// The operation.
        op: Op,
        /// The map.
        map: MapContext,
        /// Which buffer: `key`, `value`, `keys buffer`, `values buffer`.
        what: &'static str,
        /// The length the map needs.
        expected: usize,
        /// The length given.
        actual: usize,
        /// For per-CPU maps: `(value_size, possible CPUs)`.
        per_cpu: Option<(u32, usize)>,
    },
    /// The operation needs another map type.
    #[error("{op} on map {map}: needs {expected}, but the map is {map_type}")]
    WrongMapType {
        /// The operation.
        op: Op,
        /// The map.
        map: MapContext,
        /// The map's type.
        map_type: MapType,
        /// The types that support it.
        expected: &'static str,
    },
    /// An invalid map name for [`MapCreate`](crate::MapCreate).
    #[error("invalid map name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// Any other kernel error, with its errno.
    #[error("{op} on {target} failed: {source}")]
    Kernel {
        /// The operation.
        op: Op,
        /// What it was applied to.
        target: Target,
        /// The kernel's error.
        source: io::Error,
    },
    /// A file needed to inspect a path or the system could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// `/sys/devices/system/cpu/possible` could not be parsed.
    #[error("cannot parse the possible CPU list {content:?} from {}", .path.display())]
    CpuList {
        /// The file.
        path: PathBuf,
        /// Its content.
        content: String,
    },
    /// Setting up or waiting on the perf buffer of a perf event array failed.
    #[error("{op}{} for perf event array {map}: {source}{}", .cpu.map(|c| format!(" on CPU {c}")).unwrap_or_default(), .hint.map(|h| format!("; {h}")).unwrap_or_default())]
    PerfBuffer {
        /// [`Op::PerfEventOpen`], [`Op::PerfMmap`], [`Op::PerfEnable`] or [`Op::PerfPoll`].
        op: Op,
        /// The perf event array.
        map: MapContext,
        /// The CPU whose event failed; `None` for `poll`, which covers all.
        cpu: Option<u32>,
        /// What the errno usually means here, when it has a usual meaning.
        hint: Option<&'static str>,
        /// The kernel's error.
        source: io::Error,
    },
    /// [`PerfOptions`](crate::PerfOptions) that cannot work, refused before
    /// the kernel is asked.
    #[error("perf buffer for perf event array {map}: {detail}")]
    InvalidPerfOptions {
        /// The perf event array.
        map: MapContext,
        /// Which option and why, e.g. `pages_per_cpu is 3; it must be a power of two`.
        detail: String,
    },
    /// A record header in a CPU's perf ring claims a size that cannot be
    /// right. Records carry no marker to resynchronise on, so the rest of
    /// that CPU's ring was discarded (and counted nowhere else); reading
    /// can continue, the next records arrive normally.
    #[error("perf ring of CPU {cpu} of perf event array {map} is corrupt: the record at position {position} claims {size} bytes, but {available} bytes were written (ring of {ring_size} bytes); the unread rest of this ring was discarded")]
    PerfRingCorrupt {
        /// The perf event array.
        map: MapContext,
        /// The CPU whose ring it is.
        cpu: u32,
        /// Ring position (a running byte count, not an offset) of the bad record.
        position: u64,
        /// The size its header claims (0 when not even a header was there).
        size: u64,
        /// Bytes between the record and `data_head`.
        available: u64,
        /// Size of the ring's data area.
        ring_size: usize,
    },
}

impl BackendError {
    /// The kernel errno behind this error, if it came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        match self {
            BackendError::PermissionDenied { source, .. }
            | BackendError::PerfBuffer { source, .. }
            | BackendError::Rejected { source, .. }
            | BackendError::Kernel { source, .. }
            | BackendError::Io { source, .. } => source.raw_os_error(),
            BackendError::MapFull { errno, .. } => Some(*errno),
            BackendError::Unsupported { errno, .. } if *errno != 0 => Some(*errno),
            BackendError::KeyExists { .. } => Some(libc::EEXIST),
            BackendError::KeyNotFound { .. } => Some(libc::ENOENT),
            _ => None,
        }
    }
}

/// A failed batch write: how many entries the kernel applied, and why it stopped.
///
/// Entries `0..applied` of the batch are in the map; entry `applied` failed
/// with `source`; the rest were not attempted.
#[derive(Debug, thiserror::Error)]
#[error("{op} stopped after {applied} of {requested} entries")]
pub struct BatchError {
    /// The batch operation.
    pub op: Op,
    /// Entries applied before the failure.
    pub applied: usize,
    /// Entries requested.
    pub requested: usize,
    /// Why entry `applied` failed (boxed to keep `Result`s small).
    #[source]
    pub source: Box<BackendError>,
}

impl BatchError {
    /// A batch refused before any entry was applied (e.g. bad buffer sizes).
    pub(crate) fn before_start(op: Op, requested: usize, source: BackendError) -> BatchError {
        BatchError {
            op,
            applied: 0,
            requested,
            source: Box::new(source),
        }
    }
}

/// Short errno names for messages.
pub(crate) fn errno_name(errno: i32) -> String {
    let name = match errno {
        0 => return "refused before the kernel was asked".to_string(),
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        ENOTSUPP => "ENOTSUPP",
        _ => return format!("errno {errno}"),
    };
    format!("{name}, errno {errno}")
}

/// The prefix length of an LPM trie key and its maximum, if `key` is one.
pub(crate) fn lpm_prefix(info: &MapInfo, key: &[u8]) -> Option<(u32, u32)> {
    if info.map_type != MapType::LpmTrie {
        return None;
    }
    let plen = u32::from_ne_bytes(key.get(..4)?.try_into().ok()?);
    Some((plen, info.key_size.saturating_sub(4).saturating_mul(8)))
}

/// The array index in `key`, if the map is indexed.
pub(crate) fn array_index(info: &MapInfo, key: &[u8]) -> Option<u32> {
    if !info.map_type.indexed() {
        return None;
    }
    Some(u32::from_ne_bytes(key.get(..4)?.try_into().ok()?))
}

fn unsupported_hint(map_type: MapType, op: Op) -> Option<&'static str> {
    match map_type {
        MapType::Array | MapType::PercpuArray if matches!(op, Op::Delete | Op::DeleteBatch) => Some(
            "array elements always exist and cannot be deleted; write zeros with update instead",
        ),
        MapType::Queue | MapType::Stack => {
            Some("queues and stacks have no keys; use push, pop and peek")
        }
        MapType::BloomFilter => Some("bloom filters have no keys; use push and contains (peek)"),
        MapType::PerfEventArray => {
            Some("perf event arrays are read through a perf buffer, not with lookups")
        }
        MapType::Ringbuf | MapType::UserRingbuf => {
            Some("ring buffers are read and written through mmap")
        }
        _ if matches!(op, Op::LookupAndDeleteBatch) => {
            Some("only hash maps support lookup-and-delete batches")
        }
        _ => None,
    }
}

/// Inputs of the errno translation.
pub(crate) struct ErrnoCtx<'a> {
    pub(crate) op: Op,
    pub(crate) info: &'a MapInfo,
    pub(crate) map: &'a MapContext,
    /// The key of the failing element, if any.
    pub(crate) key: Option<&'a [u8]>,
    /// Why the map is read-only, if it is.
    pub(crate) read_only: Option<ReadOnlyReason>,
}

/// Translates a kernel error of a map operation into a [`BackendError`].
///
/// The kernel map and [`FakeMap`](crate::FakeMap) both report through here,
/// so both say the same thing for the same situation.
pub(crate) fn from_errno(cx: ErrnoCtx<'_>, err: io::Error) -> BackendError {
    let errno = err.raw_os_error().unwrap_or(0);
    let op = cx.op;
    let map = || cx.map.clone();
    let write = op.is_write();
    let ty = cx.info.map_type;
    let unsupported = |errno| BackendError::Unsupported {
        op,
        map: map(),
        map_type: cx.info.map_type,
        hint: unsupported_hint(ty, op),
        errno,
    };
    match errno {
        libc::EPERM | libc::EACCES => match cx.read_only {
            Some(reason) if write => BackendError::ReadOnly {
                op,
                map: map(),
                reason,
            },
            _ => BackendError::PermissionDenied {
                op,
                target: Target::Map(map()),
                source: err,
            },
        },
        libc::EEXIST if matches!(op, Op::Update | Op::UpdateBatch | Op::Push) => {
            BackendError::KeyExists { op, map: map() }
        }
        libc::ENOENT
            if matches!(
                op,
                Op::Lookup | Op::Update | Op::Delete | Op::UpdateBatch | Op::DeleteBatch
            ) =>
        {
            BackendError::KeyNotFound { op, map: map() }
        }
        libc::E2BIG if write && ty.indexed() => {
            match cx.key.and_then(|k| array_index(cx.info, k)) {
                Some(index) => BackendError::IndexOutOfRange {
                    op,
                    map: map(),
                    index,
                    max_entries: cx.info.max_entries,
                },
                None => BackendError::Kernel {
                    op,
                    target: Target::Map(map()),
                    source: err,
                },
            }
        }
        libc::E2BIG | libc::ENOSPC if write => BackendError::MapFull {
            op,
            map: map(),
            max_entries: cx.info.max_entries,
            errno,
        },
        libc::EINVAL => {
            if let Some((prefix_len, max_prefix_len)) = cx.key.and_then(|k| lpm_prefix(cx.info, k))
            {
                if prefix_len > max_prefix_len {
                    return BackendError::InvalidPrefixLen {
                        op,
                        map: map(),
                        prefix_len,
                        max_prefix_len,
                    };
                }
            }
            let keyed_op = matches!(
                op,
                Op::Lookup | Op::Update | Op::Delete | Op::NextKey | Op::DeleteBatch
            );
            if (ty.fixed_entries() && matches!(op, Op::Delete | Op::DeleteBatch))
                || (ty.keyless() && keyed_op)
            {
                return unsupported(errno);
            }
            if ty.holds_fds().is_some() && matches!(op, Op::Update | Op::UpdateBatch) {
                return BackendError::Rejected {
                    op,
                    map: map(),
                    hint: match ty {
                        MapType::ProgArray => {
                            "a program array takes programs of one type (the type of the first program stored or of the program using the map)"
                        }
                        MapType::ArrayOfMaps | MapType::HashOfMaps => {
                            "the inner map must match the map-in-map's template (type, key and value size, max_entries and flags)"
                        }
                        _ => "the value must be a file descriptor of the right kind",
                    },
                    source: err,
                };
            }
            BackendError::Kernel {
                op,
                target: Target::Map(map()),
                source: err,
            }
        }
        libc::EOPNOTSUPP | ENOTSUPP => unsupported(errno),
        _ => BackendError::Kernel {
            op,
            target: Target::Map(map()),
            source: err,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(map_type: MapType, key_size: u32) -> MapInfo {
        let mut i = MapInfo::new(map_type, key_size, 8, 16);
        i.name = "m".into();
        i
    }

    fn ctx() -> MapContext {
        MapContext {
            name: "m".into(),
            id: 7,
            path: Some("/sys/fs/bpf/m".into()),
        }
    }

    fn map(
        op: Op,
        info: &MapInfo,
        key: Option<&[u8]>,
        ro: Option<ReadOnlyReason>,
        errno: i32,
    ) -> BackendError {
        let c = ctx();
        from_errno(
            ErrnoCtx {
                op,
                info,
                map: &c,
                key,
                read_only: ro,
            },
            io::Error::from_raw_os_error(errno),
        )
    }

    #[test]
    fn eexist_on_update_is_key_exists() {
        let e = map(
            Op::Update,
            &info(MapType::Hash, 4),
            Some(&[0; 4]),
            None,
            libc::EEXIST,
        );
        assert!(matches!(e, BackendError::KeyExists { op: Op::Update, .. }));
        assert_eq!(e.to_string(), "update on map `m` at /sys/fs/bpf/m: key exists (NoExist refuses to overwrite; use Any or Exist)");
        assert_eq!(e.errno(), Some(libc::EEXIST));
    }

    #[test]
    fn enoent_on_delete_is_key_not_found() {
        let e = map(
            Op::Delete,
            &info(MapType::Hash, 4),
            Some(&[0; 4]),
            None,
            libc::ENOENT,
        );
        assert!(
            matches!(e, BackendError::KeyNotFound { op: Op::Delete, .. }),
            "{e}"
        );
    }

    #[test]
    fn e2big_on_hash_is_full_with_max_entries() {
        let e = map(
            Op::Update,
            &info(MapType::Hash, 4),
            Some(&[0; 4]),
            None,
            libc::E2BIG,
        );
        assert!(matches!(
            e,
            BackendError::MapFull {
                max_entries: 16,
                errno: libc::E2BIG,
                ..
            }
        ));
        assert!(e.to_string().contains("max_entries 16"), "{e}");
    }

    #[test]
    fn enospc_on_lpm_is_full() {
        let e = map(
            Op::Update,
            &info(MapType::LpmTrie, 8),
            Some(&[8, 0, 0, 0, 10, 0, 0, 0]),
            None,
            libc::ENOSPC,
        );
        assert!(matches!(
            e,
            BackendError::MapFull {
                errno: libc::ENOSPC,
                ..
            }
        ));
    }

    #[test]
    fn e2big_on_array_is_index_out_of_range() {
        let e = map(
            Op::Update,
            &info(MapType::Array, 4),
            Some(&99u32.to_ne_bytes()),
            None,
            libc::E2BIG,
        );
        assert!(
            matches!(
                e,
                BackendError::IndexOutOfRange {
                    index: 99,
                    max_entries: 16,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn einval_on_lpm_computes_max_prefix() {
        let mut key = 33u32.to_ne_bytes().to_vec();
        key.extend([10, 0, 0, 1]);
        let e = map(
            Op::Update,
            &info(MapType::LpmTrie, 8),
            Some(&key),
            None,
            libc::EINVAL,
        );
        assert!(
            matches!(
                e,
                BackendError::InvalidPrefixLen {
                    prefix_len: 33,
                    max_prefix_len: 32,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("(key_size - 4) * 8 = 32"), "{e}");
        // A valid prefix with EINVAL is not blamed on the prefix.
        let mut ok = 24u32.to_ne_bytes().to_vec();
        ok.extend([10, 0, 0, 0]);
        let e = map(
            Op::Update,
            &info(MapType::LpmTrie, 8),
            Some(&ok),
            None,
            libc::EINVAL,
        );
        assert!(matches!(e, BackendError::Kernel { .. }), "{e}");
    }

    #[test]
    fn delete_on_array_is_unsupported_with_hint() {
        let e = map(
            Op::Delete,
            &info(MapType::Array, 4),
            Some(&[0; 4]),
            None,
            libc::EINVAL,
        );
        assert!(
            matches!(
                e,
                BackendError::Unsupported {
                    errno: libc::EINVAL,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("write zeros with update"), "{e}");
    }

    #[test]
    fn enotsupp_and_eopnotsupp_are_unsupported() {
        for errno in [ENOTSUPP, libc::EOPNOTSUPP] {
            let e = map(Op::Lookup, &info(MapType::Ringbuf, 0), None, None, errno);
            assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
            assert!(e.to_string().contains("ringbuf maps do not support"), "{e}");
        }
        assert!(
            map(Op::Lookup, &info(MapType::Ringbuf, 0), None, None, ENOTSUPP)
                .to_string()
                .contains("ENOTSUPP, errno 524")
        );
    }

    #[test]
    fn eperm_depends_on_read_only() {
        let i = info(MapType::Array, 4);
        let e = map(
            Op::Update,
            &i,
            Some(&[0; 4]),
            Some(ReadOnlyReason::Frozen),
            libc::EPERM,
        );
        assert!(
            matches!(
                e,
                BackendError::ReadOnly {
                    reason: ReadOnlyReason::Frozen,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("frozen"), "{e}");
        let e = map(Op::Update, &i, Some(&[0; 4]), None, libc::EPERM);
        assert!(matches!(e, BackendError::PermissionDenied { .. }), "{e}");
        assert!(e.to_string().contains("CAP_BPF"), "{e}");
        // Reads of a read-only map that fail with EPERM are a permission problem.
        let e = map(
            Op::Lookup,
            &i,
            Some(&[0; 4]),
            Some(ReadOnlyReason::Frozen),
            libc::EPERM,
        );
        assert!(matches!(e, BackendError::PermissionDenied { .. }), "{e}");
    }

    #[test]
    fn einval_on_map_in_map_update_is_rejected() {
        let e = map(
            Op::Update,
            &info(MapType::ArrayOfMaps, 4),
            Some(&[0; 4]),
            None,
            libc::EINVAL,
        );
        assert!(matches!(e, BackendError::Rejected { .. }), "{e}");
        assert!(e.to_string().contains("template"), "{e}");
    }

    #[test]
    fn other_errnos_keep_the_errno() {
        let e = map(
            Op::Lookup,
            &info(MapType::Hash, 4),
            Some(&[0; 4]),
            None,
            libc::ENOMEM,
        );
        assert_eq!(e.errno(), Some(libc::ENOMEM));
        assert!(matches!(e, BackendError::Kernel { op: Op::Lookup, .. }));
    }

    #[test]
    fn context_display() {
        let mut c = ctx();
        assert_eq!(c.to_string(), "`m` at /sys/fs/bpf/m");
        c.path = None;
        assert_eq!(c.to_string(), "`m` (id 7)");
        c.id = 0;
        assert_eq!(c.to_string(), "`m`");
        assert_eq!(FsKind(0x0102_1994).to_string(), "tmpfs");
        assert_eq!(FsKind(0x1234).to_string(), "a filesystem with magic 0x1234");
    }
}
