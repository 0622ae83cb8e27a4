//! Reading events a program sends through a perf event array, decoded with
//! the record header's BTF type.
//!
//! Programs commonly emit `bpf_perf_event_output(ctx, &events,
//! BPF_F_CURRENT_CPU | (len << 32), &hdr, sizeof hdr)`: a fixed header
//! struct followed by `len` bytes of the packet. [`EventReader`] opens the
//! pinned perf event array (one ring per CPU, see [`PerfEventArray`]),
//! decodes the header with the codec and returns the rest as hex:
//!
//! ```text
//! {ifId: 1, ruleId: 7, action: 1, pad: 0, pktLength: 98,
//!  payload: "0x0200000000010200...", payload_len: 100}
//! ```
//!
//! ```no_run
//! use std::time::Duration;
//! use ebpf_sdk::events::{header_type, EventReader};
//!
//! let (header, endian) =
//!     header_type("firewall-ebpf/firewall.bpf.o".as_ref(), "struct event_hdr_st")?;
//! let mut reader = EventReader::open(
//!     "/sys/fs/bpf/ingress_node_firewall_events_map",
//!     header,
//!     endian,
//! )?;
//! loop {
//!     for (cpu, event) in reader.next_batch(Duration::from_secs(1), 64)? {
//!         println!("cpu {cpu}: {event}");
//!     }
//! }
//! # Ok::<(), ebpf_sdk::SdkError>(())
//! ```

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ebpf_sdk_backend::{Event, Map, PerfEventArray, PerfOptions};
use ebpf_sdk_codec::{CodecOptions, Map as ValueMap, Plan, Value};
use ebpf_sdk_schema::{ByteOrder, TypeNode};

use crate::SdkError;

/// The field holding the bytes after the header, as a `0x...` hex string.
pub const PAYLOAD_FIELD: &str = "payload";
/// The field holding the number of bytes in [`PAYLOAD_FIELD`].
pub const PAYLOAD_LEN_FIELD: &str = "payload_len";
/// The field the header goes under when it cannot be merged (see [`EventReader::decode`]).
pub const HEADER_FIELD: &str = "header";

/// Reads a BTF type and the target byte order from an eBPF object, for
/// [`EventReader::open`]: e.g. `header_type(elf, "struct event_hdr_st")`.
pub fn header_type(elf: &Path, type_name: &str) -> Result<(TypeNode, ByteOrder), SdkError> {
    let data = std::fs::read(elf).map_err(|e| SdkError::read(elf, e))?;
    let shown = elf.display().to_string();
    let node = ebpf_sdk_btf::extract_type(&data, &shown, type_name)?;
    // extract_type parsed the ELF, so e_ident is there: EI_DATA 2 = big endian.
    let endian = match data.get(5) {
        Some(2) => ByteOrder::Big,
        _ => ByteOrder::Little,
    };
    Ok((node, endian))
}

/// Decoded events from a pinned perf event array.
///
/// Opening sets up a perf ring on every online CPU and stores the rings in
/// the map; dropping the reader removes them. One reader per map: a second
/// reader on the same map takes the events away from the first.
pub struct EventReader {
    perf: PerfEventArray,
    plan: Plan,
    pin: PathBuf,
    /// Read from the rings but not yet returned (at most what the rings held).
    pending: VecDeque<Event>,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReader")
            .field("pin", &self.pin)
            .field("perf", &self.perf)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl EventReader {
    /// Opens the perf event array pinned at `pin` with default
    /// [`PerfOptions`]; records start with a `header` laid out for a target
    /// of byte order `endian` (both from [`header_type`]).
    pub fn open(
        pin: impl AsRef<Path>,
        header: TypeNode,
        endian: ByteOrder,
    ) -> Result<EventReader, SdkError> {
        EventReader::with_options(pin, header, endian, PerfOptions::default())
    }

    /// [`EventReader::open`] with ring size and CPUs chosen by `options`.
    pub fn with_options(
        pin: impl AsRef<Path>,
        header: TypeNode,
        endian: ByteOrder,
        options: PerfOptions,
    ) -> Result<EventReader, SdkError> {
        let pin = pin.as_ref();
        let plan =
            Plan::new("value", &header, endian, &CodecOptions::default()).map_err(|source| {
                SdkError::Layout {
                    what: format!("event header type `{}`", header.display_name()),
                    source: Box::new(source),
                }
            })?;
        let map = Map::open_pinned(pin)?;
        let perf = PerfEventArray::open(&map, options)?;
        Ok(EventReader {
            perf,
            plan,
            pin: pin.to_path_buf(),
            pending: VecDeque::new(),
        })
    }

    /// Up to `max` events (at least 1) as `(cpu, value)`, waiting at most
    /// `timeout` when none are ready. Empty when the time is up, and
    /// sometimes earlier (a signal, or a wakeup that brought only lost
    /// counts): callers loop.
    ///
    /// An event shorter than the header fails with [`SdkError::Decode`]
    /// naming the CPU; events before it are returned first, events after it
    /// by the next call. Lost events are counted in [`EventReader::lost`].
    pub fn next_batch(
        &mut self,
        timeout: Duration,
        max: usize,
    ) -> Result<Vec<(u32, Value)>, SdkError> {
        if self.pending.is_empty() {
            let pending = &mut self.pending;
            self.perf.read_events(timeout, |e| pending.push_back(e))?;
        }
        let mut out = Vec::new();
        while out.len() < max.max(1) {
            let Some(event) = self.pending.pop_front() else {
                break;
            };
            match self.decode_event(&event) {
                Ok(v) => out.push((event.cpu, v)),
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => {
                    // Report it on the next call, after these.
                    self.pending.push_front(event);
                    break;
                }
            }
        }
        Ok(out)
    }

    fn decode_event(&self, event: &Event) -> Result<Value, SdkError> {
        self.decode(&event.data).map_err(|source| SdkError::Decode {
            what: format!("{}: event from CPU {}", self.pin.display(), event.cpu),
            source: Box::new(source),
        })
    }

    /// Decodes one raw record: the header's fields, then [`PAYLOAD_FIELD`]
    /// (the remaining bytes as `0x...`, including the 0..=7 zero bytes of
    /// alignment padding the kernel appends) and [`PAYLOAD_LEN_FIELD`]. A
    /// header that is not a struct, or that has a field of either name,
    /// goes under [`HEADER_FIELD`] instead.
    pub fn decode(&self, data: &[u8]) -> Result<Value, ebpf_sdk_codec::CodecError> {
        decode_record(&self.plan, data)
    }

    /// Events lost since open because a ring was full (read more often, or
    /// use a larger [`PerfOptions::pages_per_cpu`]).
    pub fn lost(&self) -> u64 {
        self.perf.lost()
    }

    /// The CPUs being read.
    pub fn cpus(&self) -> Vec<u32> {
        self.perf.cpus()
    }

    /// The pin path of the perf event array.
    pub fn pin(&self) -> &Path {
        &self.pin
    }
}

fn decode_record(plan: &Plan, data: &[u8]) -> Result<Value, ebpf_sdk_codec::CodecError> {
    let n = plan.size();
    // A short record gives the codec's size error (expected vs actual).
    let header = plan.decode(data.get(..n).unwrap_or(data))?;
    let payload = data.get(n..).unwrap_or_default();
    let mut out = match header {
        Value::Map(m) if m.get(PAYLOAD_FIELD).is_none() && m.get(PAYLOAD_LEN_FIELD).is_none() => m,
        other => {
            let mut m = ValueMap::new();
            m.insert(HEADER_FIELD, other);
            m
        }
    };
    out.insert(PAYLOAD_FIELD, Value::String(hex(payload)));
    out.insert(PAYLOAD_LEN_FIELD, Value::from(payload.len() as u64));
    Ok(Value::Map(out))
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    s.push_str("0x");
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebpf_sdk_schema::{Member, TypeKind};

    fn int(name: &str, size: u32) -> TypeNode {
        TypeNode {
            name: name.into(),
            typedefs: vec![],
            size,
            kind: TypeKind::Int {
                signed: false,
                char: false,
                byte_order: None,
                format: None,
            },
        }
    }

    fn member(name: &str, offset: u32, ty: TypeNode) -> Member {
        Member {
            name: name.into(),
            offset,
            bit_offset: offset * 8,
            bit_size: None,
            ty,
        }
    }

    /// `struct event_hdr_st` as extracted from firewall.bpf.o.
    fn event_hdr() -> TypeNode {
        TypeNode {
            name: "struct event_hdr_st".into(),
            typedefs: vec![],
            size: 8,
            kind: TypeKind::Struct {
                members: vec![
                    member("ifId", 0, int("unsigned short", 2)),
                    member("ruleId", 2, int("unsigned short", 2)),
                    member("action", 4, int("unsigned char", 1)),
                    member("pad", 5, int("unsigned char", 1)),
                    member("pktLength", 6, int("unsigned short", 2)),
                ],
            },
        }
    }

    fn plan(t: &TypeNode) -> Plan {
        Plan::new("value", t, ByteOrder::Little, &CodecOptions::default()).unwrap()
    }

    #[test]
    fn header_fields_then_payload() {
        let mut data = vec![6, 0, 7, 0, 1, 0, 98, 0];
        data.extend([0xde, 0xad, 0xbe, 0xef, 0, 0]);
        let v = decode_record(&plan(&event_hdr()), &data).unwrap();
        assert_eq!(v.get("ifId"), Some(&Value::Int(6)));
        assert_eq!(v.get("ruleId"), Some(&Value::Int(7)));
        assert_eq!(v.get("action"), Some(&Value::Int(1)));
        assert_eq!(v.get("pktLength"), Some(&Value::Int(98)));
        assert_eq!(v.get(PAYLOAD_FIELD), Some(&Value::from("0xdeadbeef0000")));
        assert_eq!(v.get(PAYLOAD_LEN_FIELD), Some(&Value::Int(6)));
        let keys: Vec<&str> = v.as_map().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "ifId",
                "ruleId",
                "action",
                "pad",
                "pktLength",
                "payload",
                "payload_len"
            ]
        );
    }

    #[test]
    fn header_only_has_empty_payload() {
        let v = decode_record(&plan(&event_hdr()), &[0; 8]).unwrap();
        assert_eq!(v.get(PAYLOAD_FIELD), Some(&Value::from("0x")));
        assert_eq!(v.get(PAYLOAD_LEN_FIELD), Some(&Value::Int(0)));
    }

    #[test]
    fn short_records_are_a_size_error() {
        let e = decode_record(&plan(&event_hdr()), &[1, 2, 3]).unwrap_err();
        assert!(
            matches!(
                e,
                ebpf_sdk_codec::CodecError::BufferSize {
                    expected: 8,
                    actual: 3,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn non_struct_and_clashing_headers_are_nested() {
        let v = decode_record(&plan(&int("unsigned int", 4)), &[5, 0, 0, 0, 0xff]).unwrap();
        assert_eq!(v.get(HEADER_FIELD), Some(&Value::Int(5)));
        assert_eq!(v.get(PAYLOAD_FIELD), Some(&Value::from("0xff")));

        let clash = TypeNode {
            name: "struct clash".into(),
            typedefs: vec![],
            size: 2,
            kind: TypeKind::Struct {
                members: vec![
                    member("payload", 0, int("unsigned char", 1)),
                    member("x", 1, int("unsigned char", 1)),
                ],
            },
        };
        let v = decode_record(&plan(&clash), &[1, 2]).unwrap();
        assert_eq!(
            v.get(HEADER_FIELD).and_then(|h| h.get("payload")),
            Some(&Value::Int(1))
        );
        assert_eq!(v.get(PAYLOAD_FIELD), Some(&Value::from("0x")));
    }

    #[test]
    fn header_type_reads_the_bundled_object() {
        let elf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firewall-ebpf/firewall.bpf.o");
        // A checked-in fixture: missing is a failure, not a skip.
        assert!(
            elf.is_file(),
            "{} is missing (rebuild it with `make -C firewall-ebpf`)",
            elf.display()
        );
        let (t, endian) = header_type(&elf, "struct event_hdr_st").unwrap();
        assert_eq!(t.size, 8);
        assert_eq!(endian, ByteOrder::Little);
        // The extracted type decodes like the hand-written one.
        let data = [1, 0, 2, 0, 1, 0, 60, 0, 0xaa];
        assert_eq!(
            decode_record(&plan(&t), &data).unwrap(),
            decode_record(&plan(&event_hdr()), &data).unwrap()
        );
        let e = header_type(&elf, "struct no_such_type").unwrap_err();
        assert!(matches!(e, SdkError::Extract(_)), "{e}");
        let e = header_type(Path::new("/nonexistent.o"), "x").unwrap_err();
        assert!(matches!(e, SdkError::Io { .. }), "{e}");
    }
}
