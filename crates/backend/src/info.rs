//! What the kernel reports about maps, programs and BTF.

use crate::error::{is_fd_map, is_indexed, is_keyless};
use crate::map_type;
use crate::sys::{self, RawMapInfo, RawProgInfo};

/// A map's kernel attributes (`struct bpf_map_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MapInfo {
    /// `enum bpf_map_type`; see [`MapInfo::type_name`] and [`crate::map_type`].
    pub map_type: u32,
    /// Kernel id (0 for a fake).
    pub id: u32,
    /// Key size in bytes (0 for queues, stacks and bloom filters).
    pub key_size: u32,
    /// Value size in bytes, per CPU for per-CPU maps.
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `map_flags`; see [`MapInfo::flag_names`] and [`crate::map_flags`].
    pub map_flags: u32,
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
    pub fn new(map_type: u32, key_size: u32, value_size: u32, max_entries: u32) -> MapInfo {
        MapInfo {
            map_type,
            id: 0,
            key_size,
            value_size,
            max_entries,
            map_flags: 0,
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

    /// The map type's name, e.g. `lpm_trie` (`type_<n>` if unknown).
    pub fn type_name(&self) -> String {
        ebpf_sdk_schema::map_type_name(self.map_type)
    }

    /// Names of the set `map_flags` bits, e.g. `["no_prealloc"]`.
    pub fn flag_names(&self) -> Vec<String> {
        ebpf_sdk_schema::flag_names(self.map_flags)
    }

    /// Whether values hold one slot per possible CPU.
    pub fn is_per_cpu(&self) -> bool {
        matches!(
            self.map_type,
            map_type::PERCPU_HASH
                | map_type::PERCPU_ARRAY
                | map_type::LRU_PERCPU_HASH
                | map_type::PERCPU_CGROUP_STORAGE
        )
    }

    /// Whether keys are u32 indices `0..max_entries` (arrays, program arrays,
    /// perf event arrays, array-of-maps).
    pub fn is_indexed(&self) -> bool {
        is_indexed(self.map_type)
    }

    /// Whether the map has no keys (queue, stack, bloom filter).
    pub fn is_keyless(&self) -> bool {
        is_keyless(self.map_type)
    }

    /// Whether values written from user space are file descriptors (program
    /// arrays, map-in-maps, perf event and cgroup arrays); lookups of program
    /// arrays and map-in-maps return object ids.
    pub fn is_fd_map(&self) -> bool {
        is_fd_map(self.map_type)
    }

    /// The value buffer size for one element as user space passes it:
    /// `round_up(value_size, 8) * ncpus` for per-CPU maps, 4 for fd maps,
    /// `value_size` otherwise. `None` on overflow.
    pub fn value_buf_size(&self, ncpus: usize) -> Option<usize> {
        sys::kernel_value_size(self.map_type, self.value_size, ncpus)
    }

    /// For an LPM trie, the longest valid prefix: `(key_size - 4) * 8`.
    pub fn max_prefix_len(&self) -> Option<u32> {
        (self.map_type == map_type::LPM_TRIE)
            .then(|| self.key_size.saturating_sub(4).saturating_mul(8))
    }

    pub(crate) fn from_raw(raw: &RawMapInfo) -> MapInfo {
        MapInfo {
            map_type: raw.map_type,
            id: raw.id,
            key_size: raw.key_size,
            value_size: raw.value_size,
            max_entries: raw.max_entries,
            map_flags: raw.map_flags,
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

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
    fn value_buf_sizes() {
        let mut i = MapInfo::new(map_type::PERCPU_HASH, 4, 12, 8);
        assert_eq!(i.value_buf_size(2), Some(32));
        assert!(i.is_per_cpu());
        i.map_type = map_type::HASH;
        assert_eq!(i.value_buf_size(2), Some(12));
        i.map_type = map_type::ARRAY_OF_MAPS;
        assert_eq!(i.value_buf_size(2), Some(4));
        assert_eq!(
            MapInfo::new(map_type::LPM_TRIE, 24, 1200, 1).max_prefix_len(),
            Some(160)
        );
        assert_eq!(i.type_name(), "array_of_maps");
    }

    #[test]
    fn names_stop_at_nul() {
        assert_eq!(c_name(b"abc\0\0\0"), "abc");
        assert_eq!(c_name(b"0123456789abcdef"), "0123456789abcdef");
    }
}
