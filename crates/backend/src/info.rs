//! What the kernel reports about maps, programs and BTF.

use ebpf_sdk_schema::{MapFlags, MapType};

use crate::sys::{RawLinkInfo, RawMapInfo, RawProgInfo};

/// A map's kernel attributes (`struct bpf_map_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapInfo {
    /// The map type.
    pub map_type: MapType,
    /// Kernel id (0 for a fake).
    pub id: u32,
    /// Key size in bytes (0 for queues, stacks and bloom filters).
    pub key_size: u32,
    /// Value size in bytes, per CPU for per-CPU maps.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `map_flags`.
    pub map_flags: MapFlags,
    /// Kernel name, at most 15 bytes (longer names are truncated by the kernel).
    pub name: String,
    /// Offload device ifindex, 0 if none.
    pub ifindex: u32,
    /// Id of the BTF object describing key and value, 0 if none.
    pub btf_id: u32,
    /// BTF type id of the key, 0 if none.
    pub btf_key_type_id: u32,
    /// BTF type id of the value, 0 if none.
    pub btf_value_type_id: u32,
    /// Value type id in vmlinux BTF (struct_ops maps), 0 if none.
    pub btf_vmlinux_value_type_id: u32,
    /// Id of the vmlinux/module BTF of `btf_vmlinux_value_type_id`, 0 if none.
    pub btf_vmlinux_id: u32,
    /// Type-specific extra (bloom filter: number of hash functions).
    pub map_extra: u64,
}

impl MapInfo {
    /// Info for a map that exists only in memory (see [`FakeMap`](crate::FakeMap)).
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> MapInfo {
        MapInfo {
            map_type,
            id: 0,
            key_size,
            value_size,
            max_entries,
            map_flags: MapFlags::NONE,
            name: String::new(),
            ifindex: 0,
            btf_id: 0,
            btf_key_type_id: 0,
            btf_value_type_id: 0,
            btf_vmlinux_value_type_id: 0,
            btf_vmlinux_id: 0,
            map_extra: 0,
        }
    }

    /// The value buffer length of one element as user space passes it
    /// (see [`MapType::value_buf_len`]). `None` on overflow.
    pub fn value_buf_len(&self, ncpus: usize) -> Option<usize> {
        self.map_type.value_buf_len(self.value_size, ncpus)
    }

    /// For an LPM trie, the longest valid prefix: `(key_size - 4) * 8`.
    pub fn max_prefix_len(&self) -> Option<u32> {
        (self.map_type == MapType::LpmTrie)
            .then(|| self.key_size.saturating_sub(4).saturating_mul(8))
    }

    pub(crate) fn from_raw(raw: &RawMapInfo) -> MapInfo {
        MapInfo {
            map_type: MapType::from_id(raw.map_type),
            id: raw.id,
            key_size: raw.key_size,
            value_size: raw.value_size,
            max_entries: raw.max_entries,
            map_flags: MapFlags::from_bits(raw.map_flags),
            name: c_name(&raw.name),
            ifindex: raw.ifindex,
            btf_id: raw.btf_id,
            btf_key_type_id: raw.btf_key_type_id,
            btf_value_type_id: raw.btf_value_type_id,
            btf_vmlinux_value_type_id: raw.btf_vmlinux_value_type_id,
            btf_vmlinux_id: raw.btf_vmlinux_id,
            map_extra: raw.map_extra,
        }
    }
}

/// A program's kernel attributes (`struct bpf_prog_info`, the parts needed to
/// recognise a program and store it in a program array).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProgInfo {
    /// `enum bpf_prog_type` (e.g. 6 = XDP).
    pub prog_type: u32,
    /// Kernel id.
    pub id: u32,
    /// Program tag (hash of the instructions).
    pub tag: [u8; 8],
    /// Kernel name, at most 15 bytes.
    pub name: String,
    /// Ids of the maps the program uses.
    pub map_ids: Vec<u32>,
}

impl ProgInfo {
    pub(crate) fn from_raw(raw: &RawProgInfo, map_ids: Vec<u32>) -> ProgInfo {
        ProgInfo {
            prog_type: raw.prog_type,
            id: raw.id,
            tag: raw.tag,
            name: c_name(&raw.name),
            map_ids,
        }
    }

    /// The program type as bpftool names it (`xdp`, `sched_cls`, ...);
    /// `None` for a type newer than this table.
    ///
    /// ```
    /// let mut info = ebpf_sdk_backend::ProgInfo::default();
    /// info.prog_type = 6;
    /// assert_eq!(info.type_name(), Some("xdp"));
    /// ```
    pub fn type_name(&self) -> Option<&'static str> {
        PROG_TYPES.get(self.prog_type as usize).copied()
    }
}

/// `enum bpf_prog_type` in order, as bpftool names the types.
const PROG_TYPES: &[&str] = &[
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
];

/// A link's kernel attributes (the start of `struct bpf_link_info`): an
/// attachment of a program, which stays while the link is pinned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkInfo {
    /// `enum bpf_link_type` (e.g. 6 = XDP).
    pub link_type: u32,
    /// Kernel id of the link.
    pub id: u32,
    /// Kernel id of the attached program.
    pub prog_id: u32,
}

impl LinkInfo {
    pub(crate) fn from_raw(raw: &RawLinkInfo) -> LinkInfo {
        LinkInfo {
            link_type: raw.link_type,
            id: raw.id,
            prog_id: raw.prog_id,
        }
    }

    /// The link type as bpftool names it (`xdp`, `tcx`, ...); `None` for a
    /// type newer than this table.
    ///
    /// ```
    /// let mut info = ebpf_sdk_backend::LinkInfo::default();
    /// info.link_type = 11;
    /// assert_eq!(info.type_name(), Some("tcx"));
    /// ```
    pub fn type_name(&self) -> Option<&'static str> {
        LINK_TYPES.get(self.link_type as usize).copied()
    }
}

/// `enum bpf_link_type` in order, as bpftool names the types.
const LINK_TYPES: &[&str] = &[
    "unspec",
    "raw_tracepoint",
    "tracing",
    "cgroup",
    "iter",
    "netns",
    "xdp",
    "perf_event",
    "kprobe_multi",
    "struct_ops",
    "netfilter",
    "tcx",
    "uprobe_multi",
    "netkit",
    "sockmap",
];

/// A map's raw BTF as the kernel holds it, with the key and value type ids.
///
/// The bytes are a complete `.BTF` blob (header, types, strings); another
/// layer turns them into a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBtf {
    /// Kernel id of the BTF object.
    pub btf_id: u32,
    /// The raw BTF (starts with magic `0xeb9f`).
    pub bytes: Vec<u8>,
    /// Type id of the key in `bytes`, 0 if none.
    pub key_type_id: u32,
    /// Type id of the value in `bytes`, 0 if none.
    pub value_type_id: u32,
    /// Value type id in vmlinux BTF (struct_ops maps), 0 if none.
    pub vmlinux_value_type_id: u32,
    /// Whether this is kernel (vmlinux or module) BTF.
    pub kernel_btf: bool,
}

fn c_name(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_buf_lens() {
        let mut i = MapInfo::new(MapType::PercpuHash, 4, 12, 8);
        assert_eq!(i.value_buf_len(2), Some(32));
        i.map_type = MapType::Hash;
        assert_eq!(i.value_buf_len(2), Some(12));
        i.map_type = MapType::ArrayOfMaps;
        assert_eq!(i.value_buf_len(2), Some(4));
        assert_eq!(
            MapInfo::new(MapType::LpmTrie, 24, 1200, 1).max_prefix_len(),
            Some(160)
        );
    }

    #[test]
    fn names_stop_at_nul() {
        assert_eq!(c_name(b"abc\0\0\0"), "abc");
        assert_eq!(c_name(b"0123456789abcdef"), "0123456789abcdef");
    }
}
