//! Program eBPF maps from the BTF in the eBPF object.
//!
//! This crate joins the stages of the data path behind one API:
//! ELF -> [schema] -> [value <-> bytes](codec) -> [kernel map](backend).
//! The `ebpf-sdk` command is one client of it; any Rust program can do the
//! same with its own types:
//!
//! ```no_run
//! use ebpf_sdk::{Object, UpdateFlags};
//! use serde::{Deserialize, Serialize};
//!
//! /// The firewall's `struct lpm_ip_key_st`.
//! #[derive(Serialize)]
//! struct Key {
//!     #[serde(rename = "prefixLen")]
//!     prefix_len: u32,
//!     ingress_ifindex: u32,
//!     ip_data: std::net::IpAddr,
//! }
//!
//! /// Only the fields this program reads of the firewall's statistics.
//! #[derive(Deserialize, Debug)]
//! struct Stats {
//!     deny_stats: Counters,
//! }
//! #[derive(Deserialize, Debug)]
//! struct Counters {
//!     packets: u64,
//! }
//!
//! let obj = Object::from_elf("firewall-ebpf/firewall.bpf.o")?;
//! let table = obj.open("ingress_node_firewall_table_map")?; // checks the live map matches
//! let key = Key { prefix_len: 64, ingress_ifindex: 6, ip_data: "10.10.10.2".parse().unwrap() };
//! let rules = serde_json::json!({"rules": [{"ruleId": 1, "protocol": 1, "icmpType": 8, "action": 1}]});
//! table.update_as(&key, &rules, UpdateFlags::Any)?;
//!
//! let stats = obj.open("ingress_node_firewall_statistics_map")?;
//! let rule1: Option<Stats> = stats.lookup_total_as(&1u32)?; // summed over CPUs
//! println!("{rule1:?}");
//! # Ok::<(), ebpf_sdk::SdkError>(())
//! ```
//!
//! # Where things are
//!
//! - [`Object`]: the maps of an object ([`Object::from_elf`],
//!   [`Object::from_schema_file`], [`Object::from_pinned`]), where they are
//!   pinned, opening them, decoding any BTF type, events, state files.
//! - [`MapHandle`]: one open map: [`Value`] and typed (`_as`) lookup,
//!   update, delete and iteration, dump, [`apply`](MapHandle::apply) with
//!   diff, prune and backup.
//! - [`to_value`] / [`from_value`]: any serde type <-> [`Value`].
//! - [`EntryReader`], [`parse_entries`]: entry files in every shape users
//!   write them; [`entries_from_value`]: the same shapes already parsed
//!   (built by a program, or a binding's native values).
//! - [`scan_pinned`]: what is pinned under a bpffs directory.
//! - [`SdkError`]: every failure, with [`InputError`] saying where in the
//!   input.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod apply;
mod backup;
pub mod entries;
mod entry_codec;
mod error;
pub mod events;
mod handle;
mod object;
mod scan;
mod spool;
mod typed;

pub use ebpf_sdk_backend as backend;
pub use ebpf_sdk_backend::UpdateFlags;
pub use ebpf_sdk_btf as btf;
pub use ebpf_sdk_codec as codec;
pub use ebpf_sdk_codec::{from_value, sum_per_cpu, to_value, Value};
pub use ebpf_sdk_schema as schema;
pub use ebpf_sdk_schema::{MapFlags, MapSchema, MapType};

pub use apply::{
    ApplyEvent, ApplyFailure, ApplyOptions, ApplyRecord, ApplyReport, Backup, Diff, DiffKind,
};
pub use entries::{entries_from_value, parse_entries, parse_inline, Entry, EntryReader};
pub use entry_codec::EntryCodec;
pub use error::{ErrorClass, InputError, InputErrorKind, IoOp, Location, SdkError};
pub use events::EventReader;
pub use handle::{Decoded, EntryCursor, Iter, MapHandle};
pub use object::{default_pin_path, Object, DEFAULT_PIN_DIR, IPROUTE2_PINNING};
pub use scan::{candidates, scan_pinned, Pinned, PinnedKind, MAX_SCAN_DEPTH};
pub use typed::TypedIter;

// Handles, objects and errors cross threads (a server, a Python binding).
const _: () = {
    const fn is<T: Send + Sync>() {}
    is::<MapHandle>();
    is::<Object>();
    is::<SdkError>();
    is::<EntryCodec>();
};
