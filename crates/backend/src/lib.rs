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
//! println!("{} {} key {}B value {}B", info.name, info.map_type, info.key_size, info.value_size);
//!
//! let key = vec![0u8; info.key_size as usize];
//! let value = vec![0u8; map.value_buf_len()];
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

pub use backend::{BatchCursor, BatchSink, Entries, Keys, MapBackend, UpdateFlags};
pub use batch::{BatchEntries, DEFAULT_BATCH_BYTES, DEFAULT_BATCH_ENTRIES};
pub use error::{
    BackendError, BatchError, FsKind, MapContext, ObjectKind, Op, ReadOnlyReason, Target,
};
pub use fake::FakeMap;
pub use info::{LinkInfo, MapInfo, ProgInfo, RawBtf};
pub use map::{Map, MapCreate, ObjectRef};
pub use percpu::{num_possible_cpus, possible_cpus};
pub use perf::{Event, PerfEventArray, PerfOptions, ReadStats, TestRun, DEFAULT_PAGES_PER_CPU};
pub use pin::{check_bpffs_dir, is_on_bpffs, pinned_object_kind, BPF_FS_MAGIC};
pub use program::{Link, Program};

pub use ebpf_sdk_schema::{FdKind, MapFlags, MapType};
