//! The map description every ebpf-sdk stage shares.
//!
//! `ebpf-sdk extract` turns an eBPF object (or a pinned map's kernel BTF) into a
//! [`Document`]: one [`MapSchema`] per map with its kernel attributes and a
//! self-contained [`TypeNode`] tree for the key and the value. The tree carries
//! everything an encoder needs — sizes, byte offsets, bitfields, signedness,
//! enum variants, array lengths, typedef names, byte order — so the codec never
//! needs the ELF again. The JSON form of [`Document`] is versioned by
//! [`SCHEMA_VERSION`] and described by `schemas/ebpf-sdk-schema.v2.json`;
//! documents of version 1 (`schemas/ebpf-sdk-schema.v1.json`, a subset of
//! version 2) are read too.
//!
//! ```
//! use ebpf_sdk_schema::{Document, TypeKind};
//!
//! let json = r#"{
//!   "schema_version": 2,
//!   "source": {"kind": "elf", "path": "fw.o"},
//!   "maps": [{
//!     "name": "counters", "map_type": "array", "map_type_id": 2,
//!     "key_size": 4, "value_size": 8, "max_entries": 16,
//!     "flags": [], "map_flags": 0, "pinning": "none",
//!     "section": ".maps", "origin": "btf", "endian": "little",
//!     "key": {"name": "unsigned int", "typedefs": ["__u32"], "size": 4,
//!             "kind": "int", "signed": false},
//!     "value": {"name": "long long", "size": 8, "kind": "int", "signed": true}
//!   }]
//! }"#;
//! let doc = Document::from_json(json).unwrap();
//! let map = doc.map("counters").unwrap();
//! assert!(matches!(map.value.as_ref().unwrap().kind, TypeKind::Int { signed: true, .. }));
//! assert!(doc.map("nope").unwrap_err().to_string().contains("counters"));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;

use serde::{Deserialize, Serialize};

mod maptype;
pub use maptype::{FdKind, MapFlags, MapType};

/// Version of the JSON document this crate writes. Bumped whenever a document
/// may hold something an older reader would refuse.
///
/// Version 2 added iproute2's pinning modes (`global_ns`, `object_ns`,
/// `custom`) and a perf event array's declared `record` type; every
/// version 1 document is also a version 2 document, and is read as one.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest document version this crate reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// Errors about a schema document itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The document is not valid JSON for this schema.
    #[error("schema document is not valid: {source}")]
    Parse {
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The document was written by an incompatible version.
    #[error("schema document has schema_version {found}, this ebpf-sdk reads versions {oldest} to {expected}")]
    Version {
        /// Version in the document.
        found: u64,
        /// Newest version this crate reads (the one it writes).
        expected: u32,
        /// Oldest version this crate reads.
        oldest: u32,
    },
    /// No map of that name.
    #[error("no map named `{name}` in the schema; maps: {}", available.join(", "))]
    NoSuchMap {
        /// The name asked for.
        name: String,
        /// The names present.
        available: Vec<String>,
    },
}

/// A whole extraction: every map of one object (or one pinned map).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Always [`SCHEMA_VERSION`] when written by this crate (documents of
    /// older versions are upgraded when read).
    pub schema_version: u32,
    /// Where the description came from.
    pub source: Source,
    /// The maps, in section order.
    pub maps: Vec<MapSchema>,
}

impl Document {
    /// Parses a document, checking its version first so an old or newer file
    /// gets a version message rather than a confusing field error. A
    /// document of an older version this crate reads is upgraded: its
    /// `schema_version` becomes [`SCHEMA_VERSION`].
    pub fn from_json(text: &str) -> Result<Self, SchemaError> {
        let raw: serde_json::Value =
            serde_json::from_str(text).map_err(|source| SchemaError::Parse { source })?;
        if let Some(v) = raw.get("schema_version").and_then(|v| v.as_u64()) {
            if !(u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&v) {
                return Err(SchemaError::Version {
                    found: v,
                    expected: SCHEMA_VERSION,
                    oldest: OLDEST_SCHEMA_VERSION,
                });
            }
        }
        // From the text, not `raw`: `serde_json::Value` cannot hold the i128
        // enum values that 64-bit enums need.
        let mut doc: Document =
            serde_json::from_str(text).map_err(|source| SchemaError::Parse { source })?;
        doc.schema_version = SCHEMA_VERSION;
        Ok(doc)
    }

    /// Pretty JSON, as `extract` writes it (ends with a newline).
    pub fn to_json_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("schema serializes");
        s.push('\n');
        s
    }

    /// The map of that name, or an error listing the names there are.
    pub fn map(&self, name: &str) -> Result<&MapSchema, SchemaError> {
        self.maps
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| SchemaError::NoSuchMap {
                name: name.to_string(),
                available: self.maps.iter().map(|m| m.name.clone()).collect(),
            })
    }

    /// Mutable access to the map of that name.
    pub fn map_mut(&mut self, name: &str) -> Result<&mut MapSchema, SchemaError> {
        let available: Vec<String> = self.maps.iter().map(|m| m.name.clone()).collect();
        self.maps
            .iter_mut()
            .find(|m| m.name == name)
            .ok_or_else(|| SchemaError::NoSuchMap {
                name: name.to_string(),
                available,
            })
    }
}

/// Provenance of a [`Document`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// `elf` for an object file, `kernel` for a pinned map's BTF.
    pub kind: SourceKind,
    /// The file or pin path it was read from, as given.
    pub path: String,
}

/// What a [`Document`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// An eBPF ELF object.
    Elf,
    /// The kernel, through a pinned map.
    Kernel,
}

/// How a map was declared in its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapOrigin {
    /// BTF-defined map in `.maps`.
    Btf,
    /// Legacy `struct bpf_map_def` in the `maps` section: sizes only, no types.
    Legacy,
    /// Global data (`.data`, `.bss`, `.rodata`, ...) as the kernel's single-entry array.
    GlobalData,
    /// Described from a live map in the kernel.
    Kernel,
}

/// Pinning requested by the object: libbpf's `__uint(pinning, ...)` in a
/// BTF map definition, or the `pinning` field of iproute2's legacy
/// `struct bpf_elf_map` (what `tc` and `ip link ... xdp obj` load).
///
/// In JSON the modes without data are strings (`"by_name"`), the others
/// objects: `{"object_ns": "<40 hex digits>"}`, `{"custom": 5}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pinning {
    /// Not pinned by the loader.
    None,
    /// `LIBBPF_PIN_BY_NAME`: pinned as `<pin dir>/<map name>`.
    ByName,
    /// iproute2's `PIN_GLOBAL_NS` (2): pinned as
    /// `<bpffs>/tc/globals/<map name>`, shared by every object.
    GlobalNs,
    /// iproute2's `PIN_OBJECT_NS` (1): pinned as
    /// `<bpffs>/tc/<object id>/<map name>`, where the object id is the
    /// SHA-1 of the object file in lower-case hex (iproute2's `obj_uid`).
    ObjectNs(String),
    /// Another iproute2 pinning value: pinned as `<bpffs>/<sub dir>/<map
    /// name>`, where `/etc/iproute2/bpf_pinning` maps the value to the
    /// sub directory.
    Custom(u32),
}

impl Pinning {
    /// The mode's name as `extract --summary` shows it: `none`, `by_name`,
    /// `global_ns`, `object_ns`, `custom_<N>`.
    pub fn name(&self) -> String {
        match self {
            Pinning::None => "none".into(),
            Pinning::ByName => "by_name".into(),
            Pinning::GlobalNs => "global_ns".into(),
            Pinning::ObjectNs(_) => "object_ns".into(),
            Pinning::Custom(n) => format!("custom_{n}"),
        }
    }
}

/// Byte order of an integer in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteOrder {
    /// Least significant byte first (bpfel, x86, arm64).
    Little,
    /// Most significant byte first: network order, `__be16`/`__be32`/`__be64`.
    Big,
}

impl ByteOrder {
    /// The byte order of the machine this code runs on.
    pub const fn native() -> Self {
        if cfg!(target_endian = "big") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        }
    }
}

/// How a value is best shown to a person. Input accepts every form whatever
/// the hint; output (`decode`, `dump`) uses the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// An IP address: 4 bytes as IPv4; 16 bytes as IPv4 when the last 12 are zero, else IPv6.
    Ip,
    /// A MAC address (6 bytes), `aa:bb:cc:dd:ee:ff`.
    Mac,
    /// A NUL-padded string (`char[N]`).
    String,
    /// A `0x...` hex string.
    Hex,
}

/// One map.
///
/// In JSON the map type and flags appear both by name and as numbers
/// (`map_type` and `map_type_id`, `flags` and `map_flags`), for people and
/// for tools; reading a document refuses the two when they disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "raw::MapSchemaJson", into = "raw::MapSchemaJson")]
pub struct MapSchema {
    /// Map name as in the object (the kernel truncates to 15 bytes).
    pub name: String,
    /// Map type, e.g. [`MapType::LpmTrie`].
    pub map_type: MapType,
    /// Key size in bytes (0 for queues, stacks, bloom filters, ring buffers).
    pub key_size: u32,
    /// Value size in bytes, per CPU for per-CPU maps.
    pub value_size: u32,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags`.
    pub flags: MapFlags,
    /// Pinning the object asks for.
    pub pinning: Pinning,
    /// Pin path recorded by `ebpf-sdk enrich`, if any.
    pub pin_path: Option<String>,
    /// ELF section it was declared in (`.maps`, `maps`, `.rodata`, ...), or `kernel`.
    pub section: String,
    /// How it was declared.
    pub origin: MapOrigin,
    /// Byte order of the target the object was built for.
    pub endian: ByteOrder,
    /// BTF type id of the key in the source BTF.
    pub btf_key_type_id: Option<u32>,
    /// BTF type id of the value in the source BTF.
    pub btf_value_type_id: Option<u32>,
    /// Key layout; `None` when the map has no key (`key_size == 0`).
    pub key: Option<TypeNode>,
    /// Value layout (per CPU for per-CPU maps); `None` when `value_size == 0`.
    pub value: Option<TypeNode>,
    /// For map-in-map (`array_of_maps`, `hash_of_maps`): the inner map's template.
    pub inner_map: Option<Box<MapSchema>>,
    /// For a perf event array declared with `__type(value, T)`: `T`, the
    /// record the program sends with `bpf_perf_event_output`. The map's own
    /// value is the 4-byte perf event fd the kernel stores, so `T` is kept
    /// here, for reading events, rather than as [`MapSchema::value`].
    pub record: Option<TypeNode>,
}

impl MapSchema {
    /// One line for messages: `lpm_trie ingress_node_firewall_table_map (key 24 B, value 1200 B, max 1024)`.
    pub fn summary(&self) -> String {
        format!(
            "{} {} (key {} B, value {} B, max {})",
            self.map_type, self.name, self.key_size, self.value_size, self.max_entries
        )
    }
}

/// The JSON form of [`MapSchema`], with the redundant numeric fields.
mod raw {
    use super::*;

    #[derive(Clone, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct MapSchemaJson {
        name: String,
        map_type: MapType,
        map_type_id: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        flags: MapFlags,
        map_flags: u32,
        pinning: Pinning,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin_path: Option<String>,
        section: String,
        origin: MapOrigin,
        endian: ByteOrder,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        btf_key_type_id: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        btf_value_type_id: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<TypeNode>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<TypeNode>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inner_map: Option<Box<MapSchema>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<TypeNode>,
    }

    impl TryFrom<MapSchemaJson> for MapSchema {
        type Error = String;

        fn try_from(j: MapSchemaJson) -> Result<MapSchema, String> {
            if j.map_type.id() != j.map_type_id {
                return Err(format!(
                    "map `{}`: map_type `{}` is id {}, but map_type_id is {}",
                    j.name,
                    j.map_type,
                    j.map_type.id(),
                    j.map_type_id
                ));
            }
            if j.flags.bits() != j.map_flags {
                return Err(format!(
                    "map `{}`: flags {:?} are {:#x}, but map_flags is {:#x}",
                    j.name,
                    j.flags.names(),
                    j.flags.bits(),
                    j.map_flags
                ));
            }
            Ok(MapSchema {
                name: j.name,
                map_type: j.map_type,
                key_size: j.key_size,
                value_size: j.value_size,
                max_entries: j.max_entries,
                flags: j.flags,
                pinning: j.pinning,
                pin_path: j.pin_path,
                section: j.section,
                origin: j.origin,
                endian: j.endian,
                btf_key_type_id: j.btf_key_type_id,
                btf_value_type_id: j.btf_value_type_id,
                key: j.key,
                value: j.value,
                inner_map: j.inner_map,
                record: j.record,
            })
        }
    }

    impl From<MapSchema> for MapSchemaJson {
        fn from(m: MapSchema) -> MapSchemaJson {
            MapSchemaJson {
                name: m.name,
                map_type_id: m.map_type.id(),
                map_type: m.map_type,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                map_flags: m.flags.bits(),
                flags: m.flags,
                pinning: m.pinning,
                pin_path: m.pin_path,
                section: m.section,
                origin: m.origin,
                endian: m.endian,
                btf_key_type_id: m.btf_key_type_id,
                btf_value_type_id: m.btf_value_type_id,
                key: m.key,
                value: m.value,
                inner_map: m.inner_map,
                record: m.record,
            }
        }
    }
}

/// A type, fully resolved: no type ids to follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeNode {
    /// C spelling without typedefs: `unsigned int`, `struct lpm_ip_key_st`,
    /// `union <anon>`, `__u8[16]`.
    pub name: String,
    /// Typedef chain from the outermost name inwards, e.g. `["__be32", "__u32"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub typedefs: Vec<String>,
    /// Size in bytes.
    pub size: u32,
    /// What it is.
    #[serde(flatten)]
    pub kind: TypeKind,
}

impl TypeNode {
    /// The name a person reads: the outermost typedef, else the C name.
    pub fn display_name(&self) -> &str {
        self.typedefs
            .first()
            .map(String::as_str)
            .unwrap_or(&self.name)
    }

    /// Compares two layouts for the write-time safety check. Returns the
    /// first difference as `path: what differs`, ignoring display hints.
    pub fn layout_difference(&self, other: &TypeNode, path: &str) -> Option<String> {
        if self.size != other.size {
            return Some(format!("{path}: size {} vs {}", self.size, other.size));
        }
        if self.name != other.name {
            return Some(format!("{path}: type `{}` vs `{}`", self.name, other.name));
        }
        match (&self.kind, &other.kind) {
            (TypeKind::Struct { members: a }, TypeKind::Struct { members: b })
            | (TypeKind::Union { members: a }, TypeKind::Union { members: b }) => {
                if a.len() != b.len() {
                    return Some(format!("{path}: {} members vs {}", a.len(), b.len()));
                }
                for (ma, mb) in a.iter().zip(b) {
                    let p = format!("{path}.{}", ma.name);
                    if ma.name != mb.name {
                        return Some(format!("{p}: member `{}` vs `{}`", ma.name, mb.name));
                    }
                    if ma.bit_offset != mb.bit_offset || ma.bit_size != mb.bit_size {
                        return Some(format!(
                            "{p}: at bit {} (size {:?}) vs bit {} (size {:?})",
                            ma.bit_offset, ma.bit_size, mb.bit_offset, mb.bit_size
                        ));
                    }
                    if let Some(d) = ma.ty.layout_difference(&mb.ty, &p) {
                        return Some(d);
                    }
                }
                None
            }
            (
                TypeKind::Array {
                    len: la,
                    element: ea,
                    ..
                },
                TypeKind::Array {
                    len: lb,
                    element: eb,
                    ..
                },
            ) => {
                if la != lb {
                    return Some(format!("{path}: {la} elements vs {lb}"));
                }
                ea.layout_difference(eb, &format!("{path}[]"))
            }
            (TypeKind::Int { signed: sa, .. }, TypeKind::Int { signed: sb, .. })
            | (TypeKind::Enum { signed: sa, .. }, TypeKind::Enum { signed: sb, .. }) => {
                (sa != sb).then(|| format!("{path}: signed {sa} vs {sb}"))
            }
            (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => None,
            (a, b) => Some(format!("{path}: {} vs {}", a.name(), b.name())),
        }
    }
}

impl fmt::Display for TypeNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.typedefs.is_empty() {
            write!(f, "{} ({} B)", self.name, self.size)
        } else {
            write!(f, "{} = {} ({} B)", self.typedefs[0], self.name, self.size)
        }
    }
}

/// The kind of a [`TypeNode`] and what is specific to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TypeKind {
    /// An integer of 1, 2, 4, 8 or 16 bytes.
    Int {
        /// Two's complement signed.
        signed: bool,
        /// C `char` (strings are shown for arrays of it).
        #[serde(default, skip_serializing_if = "is_false")]
        char: bool,
        /// Declared byte order when it differs from the target's (`__be32`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        byte_order: Option<ByteOrder>,
        /// Display hint, e.g. `ip` for a `__be32` address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<Format>,
    },
    /// `_Bool`.
    Bool,
    /// `float` or `double` (size 4 or 8).
    Float,
    /// An enum of 1, 2, 4 or 8 bytes (8 bytes: BTF `ENUM64`).
    Enum {
        /// Whether the values are signed.
        signed: bool,
        /// Declared variants.
        variants: Vec<EnumVariant>,
    },
    /// A struct: members at their offsets, the rest is padding (zero).
    Struct {
        /// Members in declaration order.
        members: Vec<Member>,
    },
    /// A union: exactly one member is given, the rest of its bytes are zero.
    Union {
        /// Alternatives.
        members: Vec<Member>,
    },
    /// A fixed-length array.
    Array {
        /// Number of elements.
        len: u32,
        /// Element type.
        element: Box<TypeNode>,
        /// Display hint for byte arrays: `ip`, `mac`, `string`, `hex`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<Format>,
    },
    /// A pointer, held as an address-sized unsigned integer.
    Pointer,
    /// Bytes with no known structure (no BTF, or a type without layout).
    Opaque,
}

impl TypeKind {
    /// The `kind` name used in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            TypeKind::Int { .. } => "int",
            TypeKind::Bool => "bool",
            TypeKind::Float => "float",
            TypeKind::Enum { .. } => "enum",
            TypeKind::Struct { .. } => "struct",
            TypeKind::Union { .. } => "union",
            TypeKind::Array { .. } => "array",
            TypeKind::Pointer => "pointer",
            TypeKind::Opaque => "opaque",
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One struct or union member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Member name; empty for an anonymous struct/union whose members are
    /// reached as if they were the parent's.
    pub name: String,
    /// Byte offset within the parent (`bit_offset / 8`).
    pub offset: u32,
    /// Bit offset within the parent.
    pub bit_offset: u32,
    /// Width in bits, for bitfields only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bit_size: Option<u32>,
    /// The member's type.
    #[serde(rename = "type")]
    pub ty: TypeNode,
}

/// One enum variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnumVariant {
    /// Variant name.
    pub name: String,
    /// Value (covers unsigned and signed 64-bit enums).
    #[serde(with = "enum_value")]
    pub value: i128,
}

/// Enum values as plain JSON numbers (`u64` or `i64`): serde's buffering of
/// internally tagged enums cannot carry `i128`.
mod enum_value {
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &i128, s: S) -> Result<S::Ok, S::Error> {
        if let Ok(u) = u64::try_from(*v) {
            s.serialize_u64(u)
        } else if let Ok(i) = i64::try_from(*v) {
            s.serialize_i64(i)
        } else {
            Err(serde::ser::Error::custom(format!(
                "enum value {v} is outside the 64-bit range"
            )))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i128, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = i128;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a 64-bit integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
                Ok(i128::from(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
                Ok(i128::from(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_node() -> TypeNode {
        TypeNode {
            name: "unsigned int".into(),
            typedefs: vec!["__u32".into()],
            size: 4,
            kind: TypeKind::Int {
                signed: false,
                char: false,
                byte_order: None,
                format: None,
            },
        }
    }

    #[test]
    fn kind_is_flattened_into_node() {
        let v = serde_json::to_value(u32_node()).unwrap();
        assert_eq!(v["kind"], "int");
        assert_eq!(v["signed"], false);
        assert!(v.get("char").is_none());
        let back: TypeNode = serde_json::from_value(v).unwrap();
        assert_eq!(back, u32_node());
    }

    #[test]
    fn version_mismatch_is_named() {
        let e = Document::from_json(r#"{"schema_version": 7, "maps": []}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "schema document has schema_version 7, this ebpf-sdk reads versions 1 to 2"
        );
        let e = Document::from_json(r#"{"schema_version": 0, "maps": []}"#).unwrap_err();
        assert!(e.to_string().contains("schema_version 0"), "{e}");
    }

    #[test]
    fn names_and_numbers_must_agree() {
        let doc = |ty: &str, id: u32, flags: &str, bits: u32| {
            format!(
                r#"{{"schema_version": 1, "source": {{"kind": "elf", "path": "x.o"}}, "maps": [{{
                "name": "m", "map_type": "{ty}", "map_type_id": {id},
                "key_size": 4, "value_size": 4, "max_entries": 1,
                "flags": [{flags}], "map_flags": {bits}, "pinning": "none",
                "section": ".maps", "origin": "btf", "endian": "little"}}]}}"#
            )
        };
        let ok = Document::from_json(&doc("lpm_trie", 11, r#""no_prealloc""#, 1)).unwrap();
        assert_eq!(ok.maps[0].map_type, MapType::LpmTrie);
        assert_eq!(ok.maps[0].flags, MapFlags::NO_PREALLOC);
        // Written back, the document is the same.
        let again = Document::from_json(&ok.to_json_pretty()).unwrap();
        assert_eq!(again, ok);
        let e = Document::from_json(&doc("hash", 2, "", 0)).unwrap_err();
        assert!(
            e.to_string()
                .contains("map `m`: map_type `hash` is id 1, but map_type_id is 2"),
            "{e}"
        );
        let e = Document::from_json(&doc("hash", 1, r#""mmapable""#, 1)).unwrap_err();
        assert!(e.to_string().contains("but map_flags is 0x1"), "{e}");
    }

    #[test]
    fn version_1_documents_are_read_as_version_2() {
        let v1 = r#"{"schema_version": 1, "source": {"kind": "elf", "path": "x.o"}, "maps": []}"#;
        let doc = Document::from_json(v1).unwrap();
        assert_eq!(doc.schema_version, SCHEMA_VERSION);
        assert!(doc.to_json_pretty().contains("\"schema_version\": 2"));
    }

    #[test]
    fn pinning_modes_in_json() {
        let cases = [
            (Pinning::None, r#""none""#),
            (Pinning::ByName, r#""by_name""#),
            (Pinning::GlobalNs, r#""global_ns""#),
            (Pinning::ObjectNs("ab12".into()), r#"{"object_ns":"ab12"}"#),
            (Pinning::Custom(5), r#"{"custom":5}"#),
        ];
        for (p, json) in cases {
            assert_eq!(serde_json::to_string(&p).unwrap(), json);
            assert_eq!(serde_json::from_str::<Pinning>(json).unwrap(), p);
        }
        assert_eq!(Pinning::Custom(5).name(), "custom_5");
        assert_eq!(Pinning::ObjectNs("x".into()).name(), "object_ns");
    }

    #[test]
    fn layout_difference_names_the_path() {
        let mut a = u32_node();
        let st = |m: TypeNode| TypeNode {
            name: "struct k".into(),
            typedefs: vec![],
            size: 4,
            kind: TypeKind::Struct {
                members: vec![Member {
                    name: "x".into(),
                    offset: 0,
                    bit_offset: 0,
                    bit_size: None,
                    ty: m,
                }],
            },
        };
        assert_eq!(st(a.clone()).layout_difference(&st(a.clone()), "key"), None);
        a.kind = TypeKind::Int {
            signed: true,
            char: false,
            byte_order: None,
            format: None,
        };
        assert_eq!(
            st(u32_node()).layout_difference(&st(a), "key").unwrap(),
            "key.x: signed false vs true"
        );
    }
}
