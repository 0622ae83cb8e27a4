//! The kernel boundary: every `unsafe` block of this crate lives here.
//!
//! All `bpf()` calls go through [`sys_bpf`], with one typed wrapper per
//! command below it. Attribute structs are `#[repr(C)]`, made only of
//! integer fields with explicit padding fields (so no byte the kernel reads
//! is uninitialised or non-zero by accident), and their layout is checked
//! against `include/uapi/linux/bpf.h` at compile time.
//!
//! Element operations take a [`MapFd`], which can only be built here from a
//! map info the kernel returned for that very fd. Its key and value sizes
//! bound every buffer the kernel writes to, so the wrappers stay sound even
//! when the caller passes a wrong length: they refuse with `EINVAL` before
//! the syscall (the safe layer validates earlier and reports a typed error).
//!
//! The perf side lives here too: `perf_event_open()` for the
//! `PERF_COUNT_SW_BPF_OUTPUT` events of perf event arrays, `ioctl` to enable
//! them, `poll()`, and [`PerfRing`], the `mmap()`ed ring whose bounds and
//! `data_head`/`data_tail` ordering are enforced here so the record walker
//! in `perf.rs` is safe code. `BPF_PROG_TEST_RUN` runs a program once on a
//! given packet.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

// enum bpf_cmd
const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_MAP_UPDATE_ELEM: u32 = 2;
const BPF_MAP_DELETE_ELEM: u32 = 3;
const BPF_MAP_GET_NEXT_KEY: u32 = 4;
const BPF_OBJ_PIN: u32 = 6;
const BPF_OBJ_GET: u32 = 7;
const BPF_PROG_TEST_RUN: u32 = 10;
const BPF_PROG_GET_FD_BY_ID: u32 = 13;
const BPF_MAP_GET_FD_BY_ID: u32 = 14;
const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
const BPF_BTF_GET_FD_BY_ID: u32 = 19;
const BPF_MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
const BPF_MAP_FREEZE: u32 = 22;
const BPF_MAP_LOOKUP_BATCH: u32 = 24;
const BPF_MAP_LOOKUP_AND_DELETE_BATCH: u32 = 25;
const BPF_MAP_UPDATE_BATCH: u32 = 26;
const BPF_MAP_DELETE_BATCH: u32 = 27;

/// `BPF_OBJ_NAME_LEN`.
pub(crate) const OBJ_NAME_LEN: usize = 16;

/// Marker for structs handed to the kernel by pointer.
///
/// # Safety
///
/// Implementors are `#[repr(C)]`, consist only of integer fields and
/// integer arrays with no implicit padding, and the all-zero value is valid.
/// Any field the kernel treats as a user pointer must be zero unless a
/// wrapper in this module set it from a live buffer of checked length.
unsafe trait Attr: Default {}

// SAFETY (for the impls below): each struct is #[repr(C)], has only u32/u64
// fields and u8 arrays, declares its padding explicitly, and the const
// assertions next to it pin its size and the offsets the kernel reads.
unsafe impl Attr for MapCreateAttr {}
unsafe impl Attr for ElemAttr {}
unsafe impl Attr for BatchAttr {}
unsafe impl Attr for ObjAttr {}
unsafe impl Attr for GetIdAttr {}
unsafe impl Attr for InfoAttr {}
unsafe impl Attr for RawMapInfo {}
unsafe impl Attr for RawProgInfo {}
unsafe impl Attr for RawBtfInfo {}
unsafe impl Attr for RawLinkInfo {}

/// `BPF_MAP_CREATE` attributes (the first 72 bytes of `union bpf_attr`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MapCreateAttr {
    pub(crate) map_type: u32,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    pub(crate) max_entries: u32,
    pub(crate) map_flags: u32,
    pub(crate) inner_map_fd: u32,
    pub(crate) numa_node: u32,
    pub(crate) map_name: [u8; OBJ_NAME_LEN],
    pub(crate) map_ifindex: u32,
    pub(crate) btf_fd: u32,
    pub(crate) btf_key_type_id: u32,
    pub(crate) btf_value_type_id: u32,
    pub(crate) btf_vmlinux_value_type_id: u32,
    pub(crate) map_extra: u64,
}
const _: () = assert!(size_of::<MapCreateAttr>() == 72);
const _: () = assert!(offset_of!(MapCreateAttr, map_name) == 28);
const _: () = assert!(offset_of!(MapCreateAttr, map_ifindex) == 44);
const _: () = assert!(offset_of!(MapCreateAttr, map_extra) == 64);

/// `BPF_MAP_*_ELEM`, `BPF_MAP_GET_NEXT_KEY` and `BPF_MAP_FREEZE` attributes.
#[repr(C)]
#[derive(Debug, Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    /// `value` or `next_key`.
    value: u64,
    flags: u64,
}
const _: () = assert!(size_of::<ElemAttr>() == 32);
const _: () = assert!(offset_of!(ElemAttr, key) == 8);
const _: () = assert!(offset_of!(ElemAttr, flags) == 24);

/// `BPF_MAP_*_BATCH` attributes.
#[repr(C)]
#[derive(Debug, Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}
const _: () = assert!(size_of::<BatchAttr>() == 56);
const _: () = assert!(offset_of!(BatchAttr, count) == 32);
const _: () = assert!(offset_of!(BatchAttr, elem_flags) == 40);

/// `BPF_OBJ_PIN` / `BPF_OBJ_GET` attributes.
#[repr(C)]
#[derive(Debug, Default)]
struct ObjAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
    path_fd: i32,
    _pad: u32,
}
const _: () = assert!(size_of::<ObjAttr>() == 24);
const _: () = assert!(offset_of!(ObjAttr, file_flags) == 12);

/// `BPF_*_GET_FD_BY_ID` attributes.
#[repr(C)]
#[derive(Debug, Default)]
struct GetIdAttr {
    id: u32,
    next_id: u32,
    open_flags: u32,
    _pad: u32,
}
const _: () = assert!(size_of::<GetIdAttr>() == 16);

/// `BPF_OBJ_GET_INFO_BY_FD` attributes.
#[repr(C)]
#[derive(Debug, Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}
const _: () = assert!(size_of::<InfoAttr>() == 16);

/// `struct bpf_map_info`, up to `map_extra`.
#[repr(C)]
#[derive(Debug, Default, Clone)]
pub(crate) struct RawMapInfo {
    pub(crate) map_type: u32,
    pub(crate) id: u32,
    pub(crate) key_size: u32,
    pub(crate) value_size: u32,
    pub(crate) max_entries: u32,
    pub(crate) map_flags: u32,
    pub(crate) name: [u8; OBJ_NAME_LEN],
    pub(crate) ifindex: u32,
    pub(crate) btf_vmlinux_value_type_id: u32,
    pub(crate) netns_dev: u64,
    pub(crate) netns_ino: u64,
    pub(crate) btf_id: u32,
    pub(crate) btf_key_type_id: u32,
    pub(crate) btf_value_type_id: u32,
    pub(crate) btf_vmlinux_id: u32,
    pub(crate) map_extra: u64,
}
const _: () = assert!(size_of::<RawMapInfo>() == 88);
const _: () = assert!(offset_of!(RawMapInfo, name) == 24);
const _: () = assert!(offset_of!(RawMapInfo, btf_id) == 64);
const _: () = assert!(offset_of!(RawMapInfo, map_extra) == 80);

/// `struct bpf_prog_info`, up to `name`.
#[repr(C)]
#[derive(Debug, Default, Clone)]
pub(crate) struct RawProgInfo {
    pub(crate) prog_type: u32,
    pub(crate) id: u32,
    pub(crate) tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    pub(crate) nr_map_ids: u32,
    map_ids: u64,
    pub(crate) name: [u8; OBJ_NAME_LEN],
}
const _: () = assert!(size_of::<RawProgInfo>() == 80);
const _: () = assert!(offset_of!(RawProgInfo, nr_map_ids) == 52);
const _: () = assert!(offset_of!(RawProgInfo, map_ids) == 56);
const _: () = assert!(offset_of!(RawProgInfo, name) == 64);

/// `struct bpf_btf_info`.
#[repr(C)]
#[derive(Debug, Default, Clone)]
pub(crate) struct RawBtfInfo {
    btf: u64,
    pub(crate) btf_size: u32,
    pub(crate) id: u32,
    name: u64,
    name_len: u32,
    pub(crate) kernel_btf: u32,
}
const _: () = assert!(size_of::<RawBtfInfo>() == 32);

/// `struct bpf_link_info`, up to `prog_id` (the kernel fills no more than
/// the length given).
#[repr(C)]
#[derive(Debug, Default, Clone)]
pub(crate) struct RawLinkInfo {
    pub(crate) link_type: u32,
    pub(crate) id: u32,
    pub(crate) prog_id: u32,
}
const _: () = assert!(size_of::<RawLinkInfo>() == 12);
const _: () = assert!(offset_of!(RawLinkInfo, prog_id) == 8);

/// The one entry into the kernel: `syscall(SYS_bpf, cmd, attr, sizeof(attr))`.
#[allow(clippy::useless_conversion)] // `c_long` is i32 on 32-bit targets.
fn sys_bpf<T: Attr>(cmd: u32, attr: &mut T) -> io::Result<i64> {
    let size = libc::c_uint::try_from(size_of::<T>()).map_err(|_| einval())?;
    // SAFETY: `attr` is a live, exclusively borrowed `T: Attr`: #[repr(C)],
    // fully initialised with no implicit padding, `size` bytes long. The
    // kernel reads at most `size` bytes and writes back only into fields of
    // that struct (e.g. `batch.count`, `info.info_len`). Every user pointer
    // inside it was set by a wrapper below from a live buffer whose length
    // the wrapper checked against what the kernel will access.
    let ret =
        unsafe { libc::syscall(libc::SYS_bpf, libc::c_long::from(cmd), attr as *mut T, size) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i64::from(ret))
    }
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

/// Wraps a file descriptor the kernel just returned.
fn owned_fd(ret: i64) -> io::Result<OwnedFd> {
    let raw = RawFd::try_from(ret).map_err(|_| einval())?;
    // SAFETY: `raw` was just returned by a successful bpf() call that creates
    // a new file descriptor; nothing else owns it, so we take ownership.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // A live fd is never negative.
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

fn ptr(buf: &[u8]) -> u64 {
    buf.as_ptr() as u64
}

fn ptr_mut(buf: &mut [u8]) -> u64 {
    buf.as_mut_ptr() as u64
}

fn opt_ptr(buf: Option<&[u8]>) -> u64 {
    buf.map_or(0, ptr)
}

/// `BPF_OBJ_GET`: opens the object pinned at `path`.
pub(crate) fn obj_get(path: &CStr, file_flags: u32) -> io::Result<OwnedFd> {
    let mut attr = ObjAttr {
        pathname: path.as_ptr() as u64,
        file_flags,
        ..Default::default()
    };
    owned_fd(sys_bpf(BPF_OBJ_GET, &mut attr)?)
}

/// `BPF_OBJ_PIN`: pins `fd` at `path`.
pub(crate) fn obj_pin(fd: BorrowedFd<'_>, path: &CStr) -> io::Result<()> {
    let mut attr = ObjAttr {
        pathname: path.as_ptr() as u64,
        bpf_fd: fd_u32(fd),
        ..Default::default()
    };
    sys_bpf(BPF_OBJ_PIN, &mut attr).map(drop)
}

fn get_fd_by_id(cmd: u32, id: u32, open_flags: u32) -> io::Result<OwnedFd> {
    let mut attr = GetIdAttr {
        id,
        open_flags,
        ..Default::default()
    };
    owned_fd(sys_bpf(cmd, &mut attr)?)
}

/// `BPF_MAP_GET_FD_BY_ID`.
pub(crate) fn map_get_fd_by_id(id: u32, open_flags: u32) -> io::Result<OwnedFd> {
    get_fd_by_id(BPF_MAP_GET_FD_BY_ID, id, open_flags)
}

/// `BPF_PROG_GET_FD_BY_ID`.
pub(crate) fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    get_fd_by_id(BPF_PROG_GET_FD_BY_ID, id, 0)
}

/// `BPF_BTF_GET_FD_BY_ID`.
pub(crate) fn btf_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    get_fd_by_id(BPF_BTF_GET_FD_BY_ID, id, 0)
}

/// `BPF_OBJ_GET_INFO_BY_FD` into `info`; returns the length the kernel filled.
fn obj_info<T: Attr>(fd: BorrowedFd<'_>, info: &mut T) -> io::Result<u32> {
    let mut attr = InfoAttr {
        bpf_fd: fd_u32(fd),
        info_len: u32::try_from(size_of::<T>()).map_err(|_| einval())?,
        info: info as *mut T as u64,
    };
    sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(attr.info_len)
}

/// Map info of `fd` (which the caller checked is a map).
pub(crate) fn map_info(fd: BorrowedFd<'_>) -> io::Result<RawMapInfo> {
    let mut info = RawMapInfo::default();
    obj_info(fd, &mut info)?;
    Ok(info)
}

/// Program info of `fd`; fills `map_ids` with up to `map_ids.len()` ids of
/// the maps the program uses (`nr_map_ids` in the result is the total).
pub(crate) fn prog_info(fd: BorrowedFd<'_>, map_ids: &mut [u32]) -> io::Result<RawProgInfo> {
    let mut info = RawProgInfo {
        nr_map_ids: u32::try_from(map_ids.len()).map_err(|_| einval())?,
        map_ids: if map_ids.is_empty() {
            0
        } else {
            map_ids.as_mut_ptr() as u64
        },
        ..Default::default()
    };
    obj_info(fd, &mut info)?;
    Ok(info)
}

/// Link info of `fd` (which the caller checked is a link): type, id and
/// the program's id.
pub(crate) fn link_info(fd: BorrowedFd<'_>) -> io::Result<RawLinkInfo> {
    let mut info = RawLinkInfo::default();
    obj_info(fd, &mut info)?;
    Ok(info)
}

/// BTF info of `fd`; copies up to `buf.len()` bytes of raw BTF into `buf`
/// (`btf_size` in the result is the full size).
pub(crate) fn btf_info(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<RawBtfInfo> {
    let mut info = RawBtfInfo {
        btf: if buf.is_empty() { 0 } else { ptr_mut(buf) },
        btf_size: u32::try_from(buf.len()).map_err(|_| einval())?,
        ..Default::default()
    };
    obj_info(fd, &mut info)?;
    Ok(info)
}

/// `BPF_MAP_CREATE`.
pub(crate) fn map_create(attr: &MapCreateAttr) -> io::Result<OwnedFd> {
    let mut attr = *attr;
    owned_fd(sys_bpf(BPF_MAP_CREATE, &mut attr)?)
}

/// A map fd together with the element sizes the kernel copies for it.
#[derive(Debug)]
pub(crate) struct MapFd {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

impl MapFd {
    /// Queries `fd` (which the caller checked is a map) and records its sizes.
    ///
    /// `ncpus` must be the kernel's `num_possible_cpus()` (the number of CPUs
    /// listed in `/sys/devices/system/cpu/possible`); per-CPU value buffers are
    /// `round_up(value_size, 8) * ncpus` bytes, as in `bpf_map_value_size()`.
    pub(crate) fn new(fd: OwnedFd, ncpus: usize) -> io::Result<(MapFd, RawMapInfo)> {
        let info = map_info(fd.as_fd())?;
        let key_size = usize::try_from(info.key_size).map_err(|_| einval())?;
        let value_size =
            // `bpf_map_value_size()` in kernel/bpf/syscall.c.
            ebpf_sdk_schema::MapType::from_id(info.map_type)
                .value_buf_len(info.value_size, ncpus)
                .ok_or_else(einval)?;
        Ok((
            MapFd {
                fd,
                key_size,
                value_size,
            },
            info,
        ))
    }

    pub(crate) fn into_owned(self) -> OwnedFd {
        self.fd
    }

    fn raw(&self) -> u32 {
        fd_u32(self.fd.as_fd())
    }

    fn check_key(&self, key: Option<&[u8]>) -> io::Result<()> {
        match key {
            Some(k) if k.len() >= self.key_size => Ok(()),
            None => Ok(()),
            Some(_) => Err(einval()),
        }
    }

    fn check_value(&self, len: usize) -> io::Result<()> {
        if len >= self.value_size {
            Ok(())
        } else {
            Err(einval())
        }
    }

    /// Size of a batch token: a bucket id (u32) for hashes, a key otherwise.
    fn check_token(&self, len: usize) -> io::Result<()> {
        if len >= self.key_size.max(4) {
            Ok(())
        } else {
            Err(einval())
        }
    }

    fn check_batch(&self, keys: usize, values: Option<usize>, count: u32) -> io::Result<()> {
        let n = usize::try_from(count).map_err(|_| einval())?;
        let need_keys = n.checked_mul(self.key_size).ok_or_else(einval)?;
        let need_values = n.checked_mul(self.value_size).ok_or_else(einval)?;
        if keys < need_keys || values.is_some_and(|v| v < need_values) {
            return Err(einval());
        }
        Ok(())
    }

    /// `BPF_MAP_LOOKUP_ELEM`. A `None` key is NULL (queue/stack/bloom). For a
    /// bloom filter the kernel reads `value` as the value to test.
    pub(crate) fn lookup(
        &self,
        key: Option<&[u8]>,
        value: &mut [u8],
        flags: u64,
    ) -> io::Result<()> {
        self.check_key(key)?;
        self.check_value(value.len())?;
        let mut attr = ElemAttr {
            map_fd: self.raw(),
            key: opt_ptr(key),
            value: ptr_mut(value),
            flags,
            ..Default::default()
        };
        sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr).map(drop)
    }

    /// `BPF_MAP_UPDATE_ELEM`. A `None` key is NULL (push).
    pub(crate) fn update(&self, key: Option<&[u8]>, value: &[u8], flags: u64) -> io::Result<()> {
        self.check_key(key)?;
        self.check_value(value.len())?;
        let mut attr = ElemAttr {
            map_fd: self.raw(),
            key: opt_ptr(key),
            value: ptr(value),
            flags,
            ..Default::default()
        };
        sys_bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
    }

    /// `BPF_MAP_DELETE_ELEM`.
    pub(crate) fn delete(&self, key: Option<&[u8]>) -> io::Result<()> {
        self.check_key(key)?;
        let mut attr = ElemAttr {
            map_fd: self.raw(),
            key: opt_ptr(key),
            ..Default::default()
        };
        sys_bpf(BPF_MAP_DELETE_ELEM, &mut attr).map(drop)
    }

    /// `BPF_MAP_GET_NEXT_KEY`; `None` asks for the first key.
    pub(crate) fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<()> {
        self.check_key(key)?;
        if next.len() < self.key_size {
            return Err(einval());
        }
        let mut attr = ElemAttr {
            map_fd: self.raw(),
            key: opt_ptr(key),
            value: ptr_mut(next),
            ..Default::default()
        };
        sys_bpf(BPF_MAP_GET_NEXT_KEY, &mut attr).map(drop)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (pop with a `None` key).
    pub(crate) fn lookup_and_delete(
        &self,
        key: Option<&[u8]>,
        value: &mut [u8],
        flags: u64,
    ) -> io::Result<()> {
        self.check_key(key)?;
        self.check_value(value.len())?;
        let mut attr = ElemAttr {
            map_fd: self.raw(),
            key: opt_ptr(key),
            value: ptr_mut(value),
            flags,
            ..Default::default()
        };
        sys_bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM, &mut attr).map(drop)
    }

    /// `BPF_MAP_FREEZE`.
    pub(crate) fn freeze(&self) -> io::Result<()> {
        let mut attr = ElemAttr {
            map_fd: self.raw(),
            ..Default::default()
        };
        sys_bpf(BPF_MAP_FREEZE, &mut attr).map(drop)
    }

    /// `BPF_MAP_LOOKUP_BATCH` (or `..._AND_DELETE_BATCH` with `delete`).
    ///
    /// `count` is the capacity in entries on input and the number of entries
    /// the kernel copied on output, also when the call fails (`ENOENT` marks
    /// the end of the map and still carries the last entries).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lookup_batch(
        &self,
        delete: bool,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        count: &mut u32,
        elem_flags: u64,
    ) -> io::Result<()> {
        if let Some(t) = in_batch {
            self.check_token(t.len())?;
        }
        self.check_token(out_batch.len())?;
        self.check_batch(keys.len(), Some(values.len()), *count)?;
        let mut attr = BatchAttr {
            in_batch: opt_ptr(in_batch),
            out_batch: ptr_mut(out_batch),
            keys: ptr_mut(keys),
            values: ptr_mut(values),
            count: *count,
            map_fd: self.raw(),
            elem_flags,
            flags: 0,
        };
        let cmd = if delete {
            BPF_MAP_LOOKUP_AND_DELETE_BATCH
        } else {
            BPF_MAP_LOOKUP_BATCH
        };
        let res = sys_bpf(cmd, &mut attr);
        *count = attr.count;
        res.map(drop)
    }

    /// `BPF_MAP_UPDATE_BATCH`; `count` in: entries, out: entries applied.
    pub(crate) fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: &mut u32,
        elem_flags: u64,
    ) -> io::Result<()> {
        self.check_batch(keys.len(), Some(values.len()), *count)?;
        let mut attr = BatchAttr {
            keys: ptr(keys),
            values: ptr(values),
            count: *count,
            map_fd: self.raw(),
            elem_flags,
            ..Default::default()
        };
        let res = sys_bpf(BPF_MAP_UPDATE_BATCH, &mut attr);
        *count = attr.count;
        res.map(drop)
    }

    /// `BPF_MAP_DELETE_BATCH`; `count` in: entries, out: entries deleted.
    pub(crate) fn delete_batch(&self, keys: &[u8], count: &mut u32) -> io::Result<()> {
        self.check_batch(keys.len(), None, *count)?;
        let mut attr = BatchAttr {
            keys: ptr(keys),
            count: *count,
            map_fd: self.raw(),
            ..Default::default()
        };
        let res = sys_bpf(BPF_MAP_DELETE_BATCH, &mut attr);
        *count = attr.count;
        res.map(drop)
    }
}

impl AsFd for MapFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `statfs(path).f_type`, the filesystem magic.
pub(crate) fn statfs_magic(path: &CStr) -> io::Result<u64> {
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `path` is NUL-terminated and outlives the call; `buf` is valid
    // for writes of one `struct statfs`.
    let rc = unsafe { libc::statfs(path.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statfs() returned 0, so it filled `buf` (which was also zeroed).
    let st = unsafe { buf.assume_init() };
    // `f_type` is a signed word; magics are 32-bit patterns.
    Ok(st.f_type as u64 & 0xffff_ffff)
}

// ---------------------------------------------------------------------------
// BPF_PROG_TEST_RUN
// ---------------------------------------------------------------------------

// SAFETY: #[repr(C)], only u32/u64 fields with explicit padding; the const
// assertions pin its size and the offsets the kernel reads.
unsafe impl Attr for TestRunAttr {}

/// `BPF_PROG_TEST_RUN` attributes (the `test` member of `union bpf_attr`).
#[repr(C)]
#[derive(Debug, Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}
const _: () = assert!(size_of::<TestRunAttr>() == 80);
const _: () = assert!(offset_of!(TestRunAttr, data_in) == 16);
const _: () = assert!(offset_of!(TestRunAttr, repeat) == 32);
const _: () = assert!(offset_of!(TestRunAttr, ctx_in) == 48);
const _: () = assert!(offset_of!(TestRunAttr, flags) == 64);

/// What one `BPF_PROG_TEST_RUN` returned.
#[derive(Debug)]
pub(crate) struct TestRunResult {
    /// The program's return value (of the last run).
    pub(crate) retval: u32,
    /// The packet as the program left it.
    pub(crate) data_out: Vec<u8>,
    /// Average run time in nanoseconds.
    pub(crate) duration: u32,
}

/// `BPF_PROG_TEST_RUN`: runs the program `repeat` times (0 means 1) on
/// `data_in` with the optional context `ctx_in`, copying at most
/// `out_capacity` bytes of the resulting packet back.
///
/// Errors come with the `data_size_out` the kernel wrote back: on `ENOSPC`
/// (the packet grew beyond `out_capacity`) the size it needed, so the caller
/// can retry.
pub(crate) fn prog_test_run(
    prog: BorrowedFd<'_>,
    data_in: &[u8],
    ctx_in: Option<&[u8]>,
    repeat: u32,
    out_capacity: usize,
) -> Result<TestRunResult, (io::Error, u32)> {
    let len32 = |n: usize| u32::try_from(n).map_err(|_| (einval(), 0));
    let mut data_out = vec![0u8; out_capacity];
    let ctx = ctx_in.filter(|c| !c.is_empty());
    let mut attr = TestRunAttr {
        prog_fd: fd_u32(prog),
        data_size_in: len32(data_in.len())?,
        data_size_out: len32(data_out.len())?,
        data_in: ptr(data_in),
        // The kernel writes at most `data_size_out` bytes here.
        data_out: if data_out.is_empty() {
            0
        } else {
            ptr_mut(&mut data_out)
        },
        repeat,
        ctx_size_in: len32(ctx.map_or(0, <[u8]>::len))?,
        ctx_in: opt_ptr(ctx),
        ..Default::default()
    };
    match sys_bpf(BPF_PROG_TEST_RUN, &mut attr) {
        Ok(_) => {
            let n = usize::try_from(attr.data_size_out)
                .unwrap_or(usize::MAX)
                .min(data_out.len());
            data_out.truncate(n);
            Ok(TestRunResult {
                retval: attr.retval,
                data_out,
                duration: attr.duration,
            })
        }
        Err(e) => Err((e, attr.data_size_out)),
    }
}

// ---------------------------------------------------------------------------
// perf events: perf_event_open, the mmap()ed ring, poll
// ---------------------------------------------------------------------------

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_BPF_OUTPUT: u64 = 10;
const PERF_SAMPLE_RAW: u64 = 1 << 10;
/// `perf_event_attr.disabled`, bit 0 of the flag bitfield.
const PERF_ATTR_DISABLED: u64 = 1;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `_IO('$', 0)`.
const PERF_EVENT_IOC_ENABLE: libc::Ioctl = 0x2400;

/// `struct perf_event_attr` up to `config1` (`PERF_ATTR_SIZE_VER0`, 64
/// bytes): every kernel accepts this size and zero-extends the rest.
#[repr(C)]
#[derive(Debug, Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    /// `sample_period` / `sample_freq`.
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    /// The bitfield word: `disabled` is bit 0, `watermark` bit 14.
    flags: u64,
    /// `wakeup_events` / `wakeup_watermark`.
    wakeup_events: u32,
    bp_type: u32,
    /// `bp_addr` / `config1`.
    config1: u64,
}
const _: () = assert!(size_of::<PerfEventAttr>() == 64);
const _: () = assert!(offset_of!(PerfEventAttr, sample_type) == 24);
const _: () = assert!(offset_of!(PerfEventAttr, flags) == 40);
const _: () = assert!(offset_of!(PerfEventAttr, wakeup_events) == 48);

/// `perf_event_open(PERF_TYPE_SOFTWARE/PERF_COUNT_SW_BPF_OUTPUT)` on `cpu`
/// for any process (`pid -1`, no group), created disabled, sampling
/// `PERF_SAMPLE_RAW` with a wakeup after every `wakeup_events` records:
/// the event `bpf_perf_event_output()` writes to.
pub(crate) fn perf_event_open_bpf_output(cpu: u32, wakeup_events: u32) -> io::Result<OwnedFd> {
    let cpu = libc::c_int::try_from(cpu).map_err(|_| einval())?;
    let attr = PerfEventAttr {
        type_: PERF_TYPE_SOFTWARE,
        size: size_of::<PerfEventAttr>() as u32,
        config: PERF_COUNT_SW_BPF_OUTPUT,
        sample_period: 1,
        sample_type: PERF_SAMPLE_RAW,
        flags: PERF_ATTR_DISABLED,
        wakeup_events,
        ..Default::default()
    };
    let (any_pid, no_group): (libc::c_int, libc::c_int) = (-1, -1);
    // SAFETY: `attr` is a live, fully initialised #[repr(C)] struct of
    // `attr.size` bytes (integer fields only, no implicit padding) that the
    // kernel only reads; the other arguments are plain integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            any_pid,
            cpu,
            no_group,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let raw = RawFd::try_from(ret).map_err(|_| einval())?;
    // SAFETY: `raw` was just returned by a successful perf_event_open(),
    // which creates a new file descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `PERF_EVENT_IOC_ENABLE`.
pub(crate) fn perf_event_enable(fd: BorrowedFd<'_>) -> io::Result<()> {
    let this_event_only: libc::c_ulong = 0;
    // SAFETY: `fd` is a live descriptor; PERF_EVENT_IOC_ENABLE takes an
    // integer argument (0: this event only) and touches no user memory.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), PERF_EVENT_IOC_ENABLE, this_event_only) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf() reads a configuration value and touches no memory.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// `poll()` for readability (`POLLIN`) on `fds`, waiting at most
/// `timeout_ms` milliseconds (0: do not wait). Returns each fd's `revents`.
/// `EINTR` is an error like any other; the caller decides.
pub(crate) fn poll(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<libc::c_short>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let n = libc::nfds_t::try_from(pfds.len()).map_err(|_| einval())?;
    // SAFETY: `pfds` is a live, initialised array of exactly `n` pollfd
    // structs, which the kernel reads and writes (`revents`) in place; the
    // descriptors are borrowed, so they stay open during the call.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), n, timeout_ms.max(0)) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pfds.iter().map(|p| p.revents).collect())
}

/// The words of `struct perf_event_mmap_page` this module uses.
#[derive(Debug, Clone, Copy)]
enum MetaWord {
    /// `data_head`
    Head,
    /// `data_tail`
    Tail,
    /// `data_offset`
    Offset,
    /// `data_size`
    Size,
}

impl MetaWord {
    /// Byte offset in the metadata page (include/uapi/linux/perf_event.h):
    /// 8-aligned and inside the first 4096 bytes.
    const fn offset(self) -> usize {
        match self {
            MetaWord::Head => 1024,
            MetaWord::Tail => 1032,
            MetaWord::Offset => 1040,
            MetaWord::Size => 1048,
        }
    }
}

/// A perf event with its ring buffer mapped: one metadata page followed by
/// a power-of-two number of data pages that the kernel fills.
///
/// The mapping is owned (unmapped on drop, before the fd is closed) and
/// every access checks its bounds here, so no argument can make it read
/// outside the data area. The data area is only ever copied out of, never
/// borrowed: the kernel writes to the free part of it concurrently.
#[derive(Debug)]
pub(crate) struct PerfRing {
    base: std::ptr::NonNull<u8>,
    map_len: usize,
    data_offset: usize,
    /// A power of two, non-zero.
    data_size: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping belongs to this value alone (nothing else holds the
// pointer), so moving it to another thread is fine. It is deliberately not
// `Sync`: two consumers advancing `data_tail` would let the kernel
// overwrite records one of them is still copying.
unsafe impl Send for PerfRing {}

impl PerfRing {
    /// Maps `1 + data_pages` pages of the perf event `fd` read-write
    /// (`data_pages` must be a power of two; the kernel refuses otherwise).
    pub(crate) fn new(fd: OwnedFd, data_pages: usize, page_size: usize) -> io::Result<PerfRing> {
        if !data_pages.is_power_of_two() || !page_size.is_power_of_two() || page_size < 4096 {
            return Err(einval());
        }
        let data_len = data_pages.checked_mul(page_size).ok_or_else(einval)?;
        let map_len = data_len.checked_add(page_size).ok_or_else(einval)?;
        // SAFETY: a fresh shared mapping at an address the kernel chooses
        // (NULL hint, no MAP_FIXED), so no existing memory is affected; `fd`
        // is a live perf event descriptor.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = std::ptr::NonNull::new(ptr.cast::<u8>()).ok_or_else(einval)?;
        let mut ring = PerfRing {
            base,
            map_len,
            data_offset: page_size,
            data_size: data_len,
            fd,
        };
        // Kernels since 4.1 publish where the data area is; trust them only
        // when it lies inside the mapping (older kernels leave zeros).
        let off = ring.meta(MetaWord::Offset).load(Ordering::Relaxed);
        let size = ring.meta(MetaWord::Size).load(Ordering::Relaxed);
        if size != 0 {
            let off = usize::try_from(off).map_err(|_| einval())?;
            let size = usize::try_from(size).map_err(|_| einval())?;
            let end = off.checked_add(size).ok_or_else(einval)?;
            if off < page_size || end > map_len || !size.is_power_of_two() {
                return Err(einval()); // `ring` is unmapped on drop.
            }
            ring.data_offset = off;
            ring.data_size = size;
        }
        Ok(ring)
    }

    fn meta(&self, word: MetaWord) -> &AtomicU64 {
        // SAFETY: `word.offset()` is 8-aligned and below 4096, so the u64
        // lies inside the first page (`new` requires pages of at least 4096
        // bytes), which is mapped for as long as `self` lives; the mapping
        // is page-aligned, so the u64 is aligned. The kernel updates these
        // words concurrently, so they are only accessed atomically, and
        // AtomicU64 has the size and alignment of u64.
        unsafe { &*self.base.as_ptr().add(word.offset()).cast::<AtomicU64>() }
    }

    /// `data_head`, read with acquire semantics: every record before it is
    /// fully written and visible.
    pub(crate) fn data_head(&self) -> u64 {
        self.meta(MetaWord::Head).load(Ordering::Acquire)
    }

    /// `data_tail` (only this process writes it).
    pub(crate) fn data_tail(&self) -> u64 {
        self.meta(MetaWord::Tail).load(Ordering::Relaxed)
    }

    /// Publishes `data_tail` with release semantics: every copy out of the
    /// records before it is complete before the kernel may reuse their space.
    pub(crate) fn set_data_tail(&self, tail: u64) {
        self.meta(MetaWord::Tail).store(tail, Ordering::Release);
    }

    /// Bytes in the data area (a power of two).
    pub(crate) fn data_size(&self) -> usize {
        self.data_size
    }

    /// Copies `dst.len()` bytes of the data area starting at ring position
    /// `pos` (taken modulo the data size), wrapping around its end. Returns
    /// `false`, copying nothing, when `dst` is longer than the data area.
    pub(crate) fn copy_data(&self, pos: u64, dst: &mut [u8]) -> bool {
        let size = self.data_size;
        if dst.len() > size {
            return false;
        }
        // `size` is a power of two, so the mask is `pos % size`.
        let start = (pos & (size as u64 - 1)) as usize;
        let first = dst.len().min(size - start);
        let (a, b) = dst.split_at_mut(first);
        // SAFETY: the data area `[data_offset, data_offset + size)` lies
        // inside the mapping (checked in `new`) and stays mapped while
        // `self` lives; `start + a.len() <= size` and `b.len() <= start`
        // (as `dst.len() <= size`), so both source ranges are inside it.
        // `dst` is ordinary memory that cannot overlap the mapping. The
        // caller copies only records between `data_tail` and the acquired
        // `data_head`, which the kernel does not write until `data_tail`
        // moves past them.
        unsafe {
            let data = self.base.as_ptr().add(self.data_offset);
            std::ptr::copy_nonoverlapping(data.add(start), a.as_mut_ptr(), a.len());
            std::ptr::copy_nonoverlapping(data, b.as_mut_ptr(), b.len());
        }
        true
    }

    /// Enables the event (`PERF_EVENT_IOC_ENABLE`).
    pub(crate) fn enable(&self) -> io::Result<()> {
        perf_event_enable(self.fd.as_fd())
    }
}

impl AsFd for PerfRing {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for PerfRing {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len` describe the mapping created in `new`,
        // which only this value refers to and which is unmapped only here.
        // No reference into it outlives `self` (`meta` borrows `self`).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.map_len);
        }
        // `fd` is closed after this, when the field drops.
    }
}
