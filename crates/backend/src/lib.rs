//! Kernel eBPF map access over the `bpf()` syscall.
//!
//! This crate is the bottom of the ebpf-sdk data path
//! (ELF -> schema -> value <-> bytes -> **kernel map**): it moves already
//! encoded key and value bytes in and out of kernel maps, and nothing else.
//! It speaks `bpf()` directly (no libbpf, no C library) and keeps every
//! `unsafe` block in one private module.
//!
//! - [`Map`] opens a pinned map ([`Map::open_pinned`] refuses programs,
//!   links, plain files, directories and paths outside bpffs with distinct
//!   errors), or a map by id, and offers element, iteration, batch, per-CPU,
//!   queue/stack/bloom, map-in-map and program-array operations.
//! - [`MapInfo`] is what the kernel reports about a map; [`Map::btf`] returns
//!   the raw BTF bytes and the key/value type ids for the schema layer.
//! - [`PerfEventArray`] reads a perf event array: one `mmap()`ed perf ring
//!   per CPU, records walked with bounds checks, lost counts reported;
//!   [`Program::test_run`] runs a program once on a given packet.
//! - [`MapBackend`] is the small object-safe trait the higher layers program
//!   against; [`FakeMap`] implements it in memory for tests without root.
//! - [`BackendError`] is the one error type: every variant names the map
//!   (name, id, pin path) and the operation, and the common errnos are
//!   translated into what the user needs to do.
//!
//! ```no_run
//! use ebpf_sdk_backend::{Map, MapBackend, UpdateFlags};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let map = Map::open_pinned("/sys/fs/bpf/ingress_node_firewall_table_map")?;
//! let info = map.info();
//! println!("{} {} key {}B value {}B", info.name, info.type_name(), info.key_size, info.value_size);
//!
//! let key = vec![0u8; info.key_size as usize];
//! let value = vec![0u8; map.value_buf_size()];
//! match map.update(&key, &value, UpdateFlags::NoExist) {
//!     Ok(()) => {}
//!     // e.g. "update on map `ingress_node_fi` at /sys/fs/bpf/...: key exists (...)"
//!     Err(e) => eprintln!("{e}"),
//! }
//! for entry in map.entries() {
//!     let (key, value) = entry?;
//!     println!("{key:02x?} => {} bytes", value.len());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Batches report exactly how much the kernel applied when they fail:
//!
//! ```no_run
//! use ebpf_sdk_backend::{Map, MapBackend, UpdateFlags};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let map = Map::open_pinned("/sys/fs/bpf/counters")?;
//! let (keys, values): (Vec<u8>, Vec<u8>) = (0u32..10_000)
//!     .map(|i| (i.to_ne_bytes(), u64::from(i).to_ne_bytes()))
//!     .fold((vec![], vec![]), |(mut k, mut v), (a, b)| {
//!         k.extend(a);
//!         v.extend(b);
//!         (k, v)
//!     });
//! match map.update_batch(&keys, &values, 10_000, UpdateFlags::Any) {
//!     Ok(n) => println!("wrote {n} entries"),
//!     Err(e) => println!("{e}: only {} entries are in the map", e.applied),
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod backend;
mod batch;
mod error;
mod fake;
mod info;
mod map;
pub mod percpu;
mod perf;
mod pin;
mod program;
mod sys;

pub use backend::{BatchSink, Entries, Keys, MapBackend, UpdateFlags};
pub use batch::{BatchEntries, DEFAULT_BATCH_BYTES, DEFAULT_BATCH_ENTRIES};
pub use error::{
    BackendError, BatchError, FsKind, MapContext, ObjectKind, Op, ReadOnlyReason, Target,
};
pub use fake::FakeMap;
pub use info::{MapInfo, ProgInfo, RawBtf};
pub use map::{Map, MapCreate, ObjectRef};
pub use percpu::{num_possible_cpus, possible_cpus};
pub use perf::{Event, PerfEventArray, PerfOptions, ReadStats, TestRun, DEFAULT_PAGES_PER_CPU};
pub use pin::{is_on_bpffs, pinned_object_kind, BPF_FS_MAGIC};
pub use program::Program;

/// `enum bpf_map_type` values (include/uapi/linux/bpf.h).
///
/// Names come from [`ebpf_sdk_schema::map_type_name`]; these constants are
/// for code that creates or matches map types.
pub mod map_type {
    /// `BPF_MAP_TYPE_HASH`
    pub const HASH: u32 = 1;
    /// `BPF_MAP_TYPE_ARRAY`
    pub const ARRAY: u32 = 2;
    /// `BPF_MAP_TYPE_PROG_ARRAY`
    pub const PROG_ARRAY: u32 = 3;
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`
    pub const PERF_EVENT_ARRAY: u32 = 4;
    /// `BPF_MAP_TYPE_PERCPU_HASH`
    pub const PERCPU_HASH: u32 = 5;
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`
    pub const PERCPU_ARRAY: u32 = 6;
    /// `BPF_MAP_TYPE_STACK_TRACE`
    pub const STACK_TRACE: u32 = 7;
    /// `BPF_MAP_TYPE_CGROUP_ARRAY`
    pub const CGROUP_ARRAY: u32 = 8;
    /// `BPF_MAP_TYPE_LRU_HASH`
    pub const LRU_HASH: u32 = 9;
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`
    pub const LRU_PERCPU_HASH: u32 = 10;
    /// `BPF_MAP_TYPE_LPM_TRIE`
    pub const LPM_TRIE: u32 = 11;
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`
    pub const ARRAY_OF_MAPS: u32 = 12;
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`
    pub const HASH_OF_MAPS: u32 = 13;
    /// `BPF_MAP_TYPE_DEVMAP`
    pub const DEVMAP: u32 = 14;
    /// `BPF_MAP_TYPE_SOCKMAP`
    pub const SOCKMAP: u32 = 15;
    /// `BPF_MAP_TYPE_CPUMAP`
    pub const CPUMAP: u32 = 16;
    /// `BPF_MAP_TYPE_XSKMAP`
    pub const XSKMAP: u32 = 17;
    /// `BPF_MAP_TYPE_SOCKHASH`
    pub const SOCKHASH: u32 = 18;
    /// `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`
    pub const PERCPU_CGROUP_STORAGE: u32 = 21;
    /// `BPF_MAP_TYPE_QUEUE`
    pub const QUEUE: u32 = 22;
    /// `BPF_MAP_TYPE_STACK`
    pub const STACK: u32 = 23;
    /// `BPF_MAP_TYPE_RINGBUF`
    pub const RINGBUF: u32 = 27;
    /// `BPF_MAP_TYPE_BLOOM_FILTER`
    pub const BLOOM_FILTER: u32 = 30;
    /// `BPF_MAP_TYPE_USER_RINGBUF`
    pub const USER_RINGBUF: u32 = 31;
}

/// `map_flags` bits used by this crate (include/uapi/linux/bpf.h).
///
/// Names for display come from [`ebpf_sdk_schema::flag_names`].
pub mod map_flags {
    /// `BPF_F_NO_PREALLOC`: allocate elements on demand (required for LPM tries).
    pub const NO_PREALLOC: u32 = 1 << 0;
    /// `BPF_F_RDONLY`: the file descriptor returned by create/open is
    /// read-only for user space (the kernel keeps this on the fd and clears
    /// it from the map's `map_flags`).
    pub const RDONLY: u32 = 1 << 3;
    /// `BPF_F_WRONLY`: the file descriptor is write-only (kept on the fd, like `RDONLY`).
    pub const WRONLY: u32 = 1 << 4;
    /// `BPF_F_RDONLY_PROG`: programs may only read the map (`.rodata`).
    pub const RDONLY_PROG: u32 = 1 << 7;
    /// `BPF_F_WRONLY_PROG`: programs may only write the map.
    pub const WRONLY_PROG: u32 = 1 << 8;
    /// `BPF_F_MMAPABLE`: the array can be mmap()ed.
    pub const MMAPABLE: u32 = 1 << 10;
}
