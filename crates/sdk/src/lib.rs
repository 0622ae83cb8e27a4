//! Program eBPF maps from the BTF in the eBPF object.
//!
//! This crate joins the stages of the data path behind one API:
//! ELF -> [schema] -> [value <-> bytes](codec) ->
//! [kernel map](backend). The `ebpf-sdk` command is a thin layer
//! over it, and any other Rust tool can do the same:
//!
//! ```no_run
//! use ebpf_sdk::{parse_inline, source, MapHandle, UpdateFlags};
//!
//! let doc = ebpf_sdk::load_document(Some("firewall-ebpf/firewall.bpf.o".as_ref()), None)?;
//! let table = doc.map("ingress_node_firewall_table_map")?;
//! let pin = source::pin_path(table, None, None); // /sys/fs/bpf/<name>
//! let map = MapHandle::open(table, &pin)?;       // checks the live map matches
//! let key = parse_inline("{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}", "key")?;
//! let value = parse_inline("{rules: [{ruleId: 1, protocol: 1, icmpType: 8, action: 1}]}", "value")?;
//! map.update(&key, &value, UpdateFlags::Any)?;
//! println!("{:?}", map.lookup(&key)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod entries;
mod entry_codec;
mod error;
pub mod events;
mod handle;
pub mod source;
mod spool;

pub use ebpf_sdk_backend as backend;
pub use ebpf_sdk_backend::UpdateFlags;
pub use ebpf_sdk_btf as btf;
pub use ebpf_sdk_codec as codec;
pub use ebpf_sdk_codec::Value;
pub use ebpf_sdk_schema as schema;
pub use entries::{parse_entries, parse_inline, Entry, EntryReader};
pub use entry_codec::EntryCodec;
pub use error::{ErrorClass, SdkError};
pub use handle::{ApplyEvent, ApplyOptions, ApplyReport, Decoded, DiffKind, MapHandle};
pub use source::{describe_pinned, load_document, pin_path};
