//! Operating eBPF maps on many machines: Prometheus metrics from any map,
//! and a reconciler that keeps maps holding a state file.
//!
//! Both need only the BTF of the eBPF object (or of the pinned map), like
//! the rest of ebpf-sdk, and are built on its library:
//!
//! - [`metrics`]: every numeric field of a map's value as a Prometheus
//!   metric, the key as labels; [`metrics::Exporter`] reads maps at their
//!   pins with the batch lookup path at every scrape and reopens a map a
//!   program reload replaced.
//! - [`watch`]: [`watch::Reconciler`] applies a state file at start, on every
//!   change of the file (editors, Kubernetes ConfigMap updates), when a map
//!   is replaced at its pin, and every resync interval, with the library's
//!   apply engine; a bad file is reported and the maps keep the last good
//!   state.
//! - [`http`]: the endpoint that serves them (GET and HEAD; **no
//!   authentication**: bind it to localhost unless something in front of it
//!   decides who may read it).
//!
//! This crate exists apart from `ebpf-sdk` because of what it depends on:
//! an HTTP server (`tiny_http`) and inotify, which a program that only
//! programs maps should not pull in (see `docs/dependencies.md`).
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use ebpf_sdk::Object;
//! use ebpf_sdk_ops::http::{serve_metrics, Endpoint};
//! use ebpf_sdk_ops::metrics::{Exporter, MetricsOptions};
//!
//! let obj = Object::from_elf("firewall-ebpf/firewall.bpf.o")?;
//! let stats = "ingress_node_firewall_statistics_map";
//! let mut exporter = Exporter::new(
//!     vec![(obj.map(stats)?.clone(), obj.pin_path(stats)?)],
//!     &MetricsOptions::default(),
//! )?;
//! let endpoint = Endpoint::bind("127.0.0.1:9435")?;
//! let stop = AtomicBool::new(false);
//! serve_metrics(&endpoint, &mut exporter, &stop, &mut |event| eprintln!("{event:?}"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod http;
pub mod metrics;
pub mod watch;

pub use error::OpsError;
