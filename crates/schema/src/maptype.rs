//! What kind of map a map is ([`MapType`], `enum bpf_map_type`) and its
//! `map_flags` ([`MapFlags`]), with the behaviour every stage asks about.
//!
//! This is the one place that knows which map types are per-CPU, keyless,
//! indexed or hold file descriptors; the extractor, the codec, the kernel
//! backend and the library all ask these types instead of comparing names
//! or numbers.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! map_types {
    ($($variant:ident = $id:literal, $name:literal, $c:literal;)*) => {
        /// A map type: `enum bpf_map_type` of include/uapi/linux/bpf.h.
        ///
        /// Serialized by name, lower case without the `BPF_MAP_TYPE_` prefix
        /// (`lpm_trie`); a type this crate does not know is
        /// [`MapType::Other`], named `type_<id>`.
        ///
        /// ```
        /// use ebpf_sdk_schema::MapType;
        ///
        /// let t = MapType::from_id(11);
        /// assert_eq!(t, MapType::LpmTrie);
        /// assert_eq!(t.name(), "lpm_trie");
        /// assert_eq!(MapType::from_name("percpu_array"), Some(MapType::PercpuArray));
        /// assert!(MapType::PercpuArray.per_cpu() && MapType::PercpuArray.indexed());
        /// assert_eq!(MapType::from_id(99).name(), "type_99");
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum MapType {
            $(
                #[doc = concat!("`", $c, "`")]
                $variant,
            )*
            /// A type id this crate has no name for.
            Other(u32),
        }

        impl MapType {
            /// Every named type, in id order.
            pub const ALL: &'static [MapType] = &[$(MapType::$variant),*];

            /// The type of a kernel id.
            pub const fn from_id(id: u32) -> MapType {
                match id {
                    $($id => MapType::$variant,)*
                    other => MapType::Other(other),
                }
            }

            /// The kernel's id of this type.
            pub const fn id(self) -> u32 {
                match self {
                    $(MapType::$variant => $id,)*
                    MapType::Other(id) => id,
                }
            }

            /// The name without `type_<id>` for unknown types.
            const fn known_name(self) -> Option<&'static str> {
                match self {
                    $(MapType::$variant => Some($name),)*
                    MapType::Other(_) => None,
                }
            }
        }
    };
}

map_types! {
    Unspec = 0, "unspec", "BPF_MAP_TYPE_UNSPEC";
    Hash = 1, "hash", "BPF_MAP_TYPE_HASH";
    Array = 2, "array", "BPF_MAP_TYPE_ARRAY";
    ProgArray = 3, "prog_array", "BPF_MAP_TYPE_PROG_ARRAY";
    PerfEventArray = 4, "perf_event_array", "BPF_MAP_TYPE_PERF_EVENT_ARRAY";
    PercpuHash = 5, "percpu_hash", "BPF_MAP_TYPE_PERCPU_HASH";
    PercpuArray = 6, "percpu_array", "BPF_MAP_TYPE_PERCPU_ARRAY";
    StackTrace = 7, "stack_trace", "BPF_MAP_TYPE_STACK_TRACE";
    CgroupArray = 8, "cgroup_array", "BPF_MAP_TYPE_CGROUP_ARRAY";
    LruHash = 9, "lru_hash", "BPF_MAP_TYPE_LRU_HASH";
    LruPercpuHash = 10, "lru_percpu_hash", "BPF_MAP_TYPE_LRU_PERCPU_HASH";
    LpmTrie = 11, "lpm_trie", "BPF_MAP_TYPE_LPM_TRIE";
    ArrayOfMaps = 12, "array_of_maps", "BPF_MAP_TYPE_ARRAY_OF_MAPS";
    HashOfMaps = 13, "hash_of_maps", "BPF_MAP_TYPE_HASH_OF_MAPS";
    Devmap = 14, "devmap", "BPF_MAP_TYPE_DEVMAP";
    Sockmap = 15, "sockmap", "BPF_MAP_TYPE_SOCKMAP";
    Cpumap = 16, "cpumap", "BPF_MAP_TYPE_CPUMAP";
    Xskmap = 17, "xskmap", "BPF_MAP_TYPE_XSKMAP";
    Sockhash = 18, "sockhash", "BPF_MAP_TYPE_SOCKHASH";
    CgroupStorage = 19, "cgroup_storage", "BPF_MAP_TYPE_CGROUP_STORAGE";
    ReuseportSockarray = 20, "reuseport_sockarray", "BPF_MAP_TYPE_REUSEPORT_SOCKARRAY";
    PercpuCgroupStorage = 21, "percpu_cgroup_storage", "BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE";
    Queue = 22, "queue", "BPF_MAP_TYPE_QUEUE";
    Stack = 23, "stack", "BPF_MAP_TYPE_STACK";
    SkStorage = 24, "sk_storage", "BPF_MAP_TYPE_SK_STORAGE";
    DevmapHash = 25, "devmap_hash", "BPF_MAP_TYPE_DEVMAP_HASH";
    StructOps = 26, "struct_ops", "BPF_MAP_TYPE_STRUCT_OPS";
    Ringbuf = 27, "ringbuf", "BPF_MAP_TYPE_RINGBUF";
    InodeStorage = 28, "inode_storage", "BPF_MAP_TYPE_INODE_STORAGE";
    TaskStorage = 29, "task_storage", "BPF_MAP_TYPE_TASK_STORAGE";
    BloomFilter = 30, "bloom_filter", "BPF_MAP_TYPE_BLOOM_FILTER";
    UserRingbuf = 31, "user_ringbuf", "BPF_MAP_TYPE_USER_RINGBUF";
    CgrpStorage = 32, "cgrp_storage", "BPF_MAP_TYPE_CGRP_STORAGE";
    Arena = 33, "arena", "BPF_MAP_TYPE_ARENA";
}

/// What the values of a map that [`MapType::holds_fds`] refer to. User space
/// writes a file descriptor; the kernel stores the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FdKind {
    /// Another map (`array_of_maps`, `hash_of_maps`); lookups return its id.
    Map,
    /// A program (`prog_array`); lookups return its id.
    Program,
    /// A perf event (`perf_event_array`).
    PerfEvent,
    /// A cgroup (`cgroup_array`).
    Cgroup,
}

impl MapType {
    /// The type of a name as [`MapType::name`] gives it (`type_<id>` too).
    pub fn from_name(name: &str) -> Option<MapType> {
        if let Some(t) = MapType::ALL.iter().find(|t| t.known_name() == Some(name)) {
            return Some(*t);
        }
        let id: u32 = name.strip_prefix("type_")?.parse().ok()?;
        // `type_2` is `array`: one spelling per type.
        Some(MapType::from_id(id)).filter(|t| matches!(t, MapType::Other(_)))
    }

    /// The name: `lpm_trie`, or `type_<id>` for a type without one.
    pub fn name(self) -> Cow<'static, str> {
        match self.known_name() {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(format!("type_{}", self.id())),
        }
    }

    /// Values hold one slot per possible CPU (`percpu_hash`,
    /// `percpu_array`, `lru_percpu_hash`, `percpu_cgroup_storage`).
    pub const fn per_cpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuHash
                | MapType::PercpuArray
                | MapType::LruPercpuHash
                | MapType::PercpuCgroupStorage
        )
    }

    /// No keys: values are pushed, and popped or tested (`queue`, `stack`,
    /// `bloom_filter`).
    pub const fn keyless(self) -> bool {
        matches!(self, MapType::Queue | MapType::Stack | MapType::BloomFilter)
    }

    /// Keys are `u32` indices `0..max_entries` (arrays, program, perf event
    /// and cgroup arrays, array-of-maps).
    pub const fn indexed(self) -> bool {
        matches!(
            self,
            MapType::Array
                | MapType::PercpuArray
                | MapType::ProgArray
                | MapType::PerfEventArray
                | MapType::CgroupArray
                | MapType::ArrayOfMaps
        )
    }

    /// Every index always holds a value and none can be deleted
    /// (`array`, `percpu_array`): a value is reset by writing zeros.
    pub const fn fixed_entries(self) -> bool {
        matches!(self, MapType::Array | MapType::PercpuArray)
    }

    /// For map types whose entries user space never writes: what the map is
    /// for and what reads it, as a sentence. `None` for every map that holds
    /// entries to write.
    ///
    /// ```
    /// use ebpf_sdk_schema::MapType;
    ///
    /// assert!(MapType::Ringbuf.nothing_to_write().unwrap().contains("ring buffer"));
    /// assert!(MapType::PerfEventArray.nothing_to_write().unwrap().contains("ebpf-sdk events"));
    /// assert_eq!(MapType::Hash.nothing_to_write(), None);
    /// ```
    pub const fn nothing_to_write(self) -> Option<&'static str> {
        match self {
            MapType::Ringbuf => Some(
                "a ring buffer carries the records the program submits \
                 (bpf_ringbuf_output, bpf_ringbuf_submit) to a consumer that maps the ring \
                 (libbpf's ring_buffer__new and ring_buffer__poll); \
                 it has no entries to write or list",
            ),
            MapType::UserRingbuf => Some(
                "a user ring buffer carries records from user space to the program: \
                 user space fills the mapped ring (libbpf's user_ring_buffer__reserve \
                 and user_ring_buffer__submit) and the program drains it \
                 (bpf_user_ringbuf_drain); it has no entries to write or list",
            ),
            MapType::Arena => Some(
                "an arena is memory the program and user space share through mmap; \
                 it has no keys or values to write",
            ),
            MapType::PerfEventArray => Some(
                "a perf event array holds one perf event per CPU, which the program's \
                 loader installs; the records the program sends through it \
                 (bpf_perf_event_output) are read with `ebpf-sdk events`",
            ),
            _ => None,
        }
    }

    /// Values written from user space are file descriptors of this kind.
    pub const fn holds_fds(self) -> Option<FdKind> {
        match self {
            MapType::ProgArray => Some(FdKind::Program),
            MapType::ArrayOfMaps | MapType::HashOfMaps => Some(FdKind::Map),
            MapType::PerfEventArray => Some(FdKind::PerfEvent),
            MapType::CgroupArray => Some(FdKind::Cgroup),
            _ => None,
        }
    }

    /// Values name another kernel object by pinned path or id: a map
    /// (map-in-map) or a program (program array). Lookups return its id.
    pub const fn holds_object_refs(self) -> bool {
        matches!(self.holds_fds(), Some(FdKind::Map | FdKind::Program))
    }

    /// The length of one element's value buffer as user space passes it to
    /// `bpf()`: `round_up(value_size, 8) * ncpus` for per-CPU maps, 4 (a
    /// file descriptor or id) for maps that [hold fds](MapType::holds_fds),
    /// else `value_size`. `None` on overflow.
    pub fn value_buf_len(self, value_size: u32, ncpus: usize) -> Option<usize> {
        let vs = usize::try_from(value_size).ok()?;
        if self.per_cpu() {
            vs.checked_next_multiple_of(8)?.checked_mul(ncpus)
        } else if self.holds_fds().is_some() {
            Some(4)
        } else {
            Some(vs)
        }
    }
}

impl Default for MapType {
    /// [`MapType::Unspec`] (id 0).
    fn default() -> MapType {
        MapType::Unspec
    }
}

impl fmt::Display for MapType {
    /// The name; honours width and alignment (`{:17}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.name())
    }
}

impl Serialize for MapType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for MapType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MapType, D::Error> {
        let name = Cow::<'de, str>::deserialize(d)?;
        MapType::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown map type `{name}` (expected a name such as `hash` or `type_<id>`)"
            ))
        })
    }
}

/// `map_flags` bits (`BPF_F_*` of include/uapi/linux/bpf.h), serialized as
/// their names, lower case without the `BPF_F_` prefix; unknown bits as
/// `0x<bit>`.
///
/// ```
/// use ebpf_sdk_schema::MapFlags;
///
/// let f = MapFlags::NO_PREALLOC | MapFlags::from_bits(1 << 30);
/// assert_eq!(f.names(), ["no_prealloc", "0x40000000"]);
/// assert_eq!(MapFlags::from_names(&f.names()), Ok(f));
/// assert!(f.contains(MapFlags::NO_PREALLOC));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MapFlags(u32);

impl MapFlags {
    /// No flags.
    pub const NONE: MapFlags = MapFlags(0);
    /// `BPF_F_NO_PREALLOC`: allocate elements on demand (required for LPM tries).
    pub const NO_PREALLOC: MapFlags = MapFlags(1 << 0);
    /// `BPF_F_RDONLY`: the file descriptor is read-only for user space (kept
    /// on the fd; the kernel clears it from the map's flags).
    pub const RDONLY: MapFlags = MapFlags(1 << 3);
    /// `BPF_F_WRONLY`: the file descriptor is write-only for user space.
    pub const WRONLY: MapFlags = MapFlags(1 << 4);
    /// `BPF_F_RDONLY_PROG`: programs may only read the map (`.rodata`).
    pub const RDONLY_PROG: MapFlags = MapFlags(1 << 7);
    /// `BPF_F_WRONLY_PROG`: programs may only write the map.
    pub const WRONLY_PROG: MapFlags = MapFlags(1 << 8);
    /// `BPF_F_MMAPABLE`: the array can be `mmap()`ed (global data).
    pub const MMAPABLE: MapFlags = MapFlags(1 << 10);

    /// Flags from raw bits (unknown bits are kept).
    pub const fn from_bits(bits: u32) -> MapFlags {
        MapFlags(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: MapFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Names of the set bits, lowest first; unknown bits are `0x<bit>`.
    pub fn names(self) -> Vec<String> {
        (0..32)
            .map(|b| 1u32 << b)
            .filter(|bit| self.0 & bit != 0)
            .map(|bit| {
                FLAG_NAMES
                    .iter()
                    .find(|(v, _)| *v == bit)
                    .map(|(_, n)| n.to_string())
                    .unwrap_or_else(|| format!("{bit:#x}"))
            })
            .collect()
    }

    /// The inverse of [`MapFlags::names`]; the error is the first name
    /// that is not a flag.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<MapFlags, String> {
        let mut flags = 0;
        for n in names {
            let n = n.as_ref();
            let bit = FLAG_NAMES
                .iter()
                .find(|(_, name)| *name == n)
                .map(|(v, _)| *v)
                .or_else(|| u32::from_str_radix(n.strip_prefix("0x")?, 16).ok())
                .ok_or_else(|| n.to_string())?;
            flags |= bit;
        }
        Ok(MapFlags(flags))
    }
}

impl std::ops::BitOr for MapFlags {
    type Output = MapFlags;
    fn bitor(self, rhs: MapFlags) -> MapFlags {
        MapFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for MapFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MapFlags({:#x}: {})", self.0, self.names().join("|"))
    }
}

impl fmt::Display for MapFlags {
    /// `no_prealloc,mmapable`, or `-` without flags; honours width.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.pad("-")
        } else {
            f.pad(&self.names().join(","))
        }
    }
}

impl Serialize for MapFlags {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

impl<'de> Deserialize<'de> for MapFlags {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MapFlags, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        MapFlags::from_names(&names)
            .map_err(|bad| serde::de::Error::custom(format!("unknown map flag `{bad}`")))
    }
}

/// `map_flags` bits and their names.
const FLAG_NAMES: &[(u32, &str)] = &[
    (1 << 0, "no_prealloc"),
    (1 << 1, "no_common_lru"),
    (1 << 2, "numa_node"),
    (1 << 3, "rdonly"),
    (1 << 4, "wronly"),
    (1 << 5, "stack_build_id"),
    (1 << 6, "zero_seed"),
    (1 << 7, "rdonly_prog"),
    (1 << 8, "wronly_prog"),
    (1 << 9, "clone"),
    (1 << 10, "mmapable"),
    (1 << 11, "preserve_elems"),
    (1 << 12, "inner_map"),
    (1 << 13, "link"),
    (1 << 14, "path_fd"),
    (1 << 15, "vtype_btf_obj_fd"),
    (1 << 16, "token_fd"),
    (1 << 17, "segv_on_fault"),
    (1 << 18, "no_user_conv"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_uapi_numbers() {
        assert_eq!(MapType::from_id(11).name(), "lpm_trie");
        assert_eq!(MapType::from_id(6).name(), "percpu_array");
        assert_eq!(MapType::from_id(27).name(), "ringbuf");
        assert_eq!(MapType::from_id(30).name(), "bloom_filter");
        assert_eq!(MapType::from_id(33), MapType::Arena);
        assert_eq!(MapType::from_id(99).name(), "type_99");
        assert_eq!(format!("[{:9}]", MapType::Hash), "[hash     ]");
        assert_eq!(MapType::from_name("lpm_trie"), Some(MapType::LpmTrie));
        assert_eq!(MapType::from_name("type_99"), Some(MapType::Other(99)));
        // One spelling per type.
        assert_eq!(MapType::from_name("type_2"), None);
        assert_eq!(MapType::from_name("nope"), None);
        for (i, t) in MapType::ALL.iter().enumerate() {
            assert_eq!(t.id() as usize, i);
            assert_eq!(MapType::from_name(&t.name()), Some(*t));
        }
    }

    #[test]
    fn predicates() {
        let per_cpu: Vec<_> = MapType::ALL.iter().filter(|t| t.per_cpu()).collect();
        assert_eq!(
            per_cpu,
            [
                &MapType::PercpuHash,
                &MapType::PercpuArray,
                &MapType::LruPercpuHash,
                &MapType::PercpuCgroupStorage
            ]
        );
        assert!(MapType::Queue.keyless() && !MapType::Hash.keyless());
        assert_eq!(MapType::ProgArray.holds_fds(), Some(FdKind::Program));
        assert!(MapType::HashOfMaps.holds_object_refs());
        assert!(!MapType::PerfEventArray.holds_object_refs());
        assert!(MapType::Array.fixed_entries() && !MapType::ProgArray.fixed_entries());
        assert_eq!(MapType::PercpuHash.value_buf_len(12, 3), Some(48));
        assert_eq!(MapType::ArrayOfMaps.value_buf_len(4, 3), Some(4));
        assert_eq!(MapType::Hash.value_buf_len(12, 3), Some(12));
        assert_eq!(
            MapType::PercpuHash.value_buf_len(u32::MAX, usize::MAX),
            None
        );
    }

    #[test]
    fn serialized_by_name() {
        assert_eq!(
            serde_json::to_string(&MapType::LpmTrie).unwrap(),
            "\"lpm_trie\""
        );
        assert_eq!(
            serde_json::from_str::<MapType>("\"type_40\"").unwrap(),
            MapType::Other(40)
        );
        let e = serde_json::from_str::<MapType>("\"lpm\"").unwrap_err();
        assert!(e.to_string().contains("unknown map type `lpm`"), "{e}");
    }

    #[test]
    fn flags_round_trip() {
        assert_eq!(MapFlags::from_bits(1).names(), vec!["no_prealloc"]);
        assert_eq!(
            MapFlags::from_bits(1 | (1 << 10) | (1 << 30)).names(),
            vec!["no_prealloc", "mmapable", "0x40000000"]
        );
        assert_eq!(
            MapFlags::from_names(&MapFlags::from_bits(0x4000_0401).names()),
            Ok(MapFlags::from_bits(0x4000_0401))
        );
        assert_eq!(MapFlags::from_names(&["bogus"]).unwrap_err(), "bogus");
        assert_eq!(MapFlags::NONE.to_string(), "-");
        assert_eq!(
            (MapFlags::RDONLY_PROG | MapFlags::MMAPABLE).to_string(),
            "rdonly_prog,mmapable"
        );
    }
}
