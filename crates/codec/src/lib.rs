//! Named values <-> the exact bytes of eBPF map keys and values.
//!
//! Users write keys and values with field names, in YAML or JSON
//! ([`parse_yaml`], [`parse_json`]) into a [`Value`]. A [`Codec`], compiled
//! once from an [`ebpf_sdk_schema::MapSchema`], turns it into the bytes the
//! eBPF C program reads ([`Codec::encode_key_into`],
//! [`Codec::encode_value_into`], per-CPU aware variants), and bytes back into
//! a [`Value`] ([`Codec::decode_key`], [`Codec::decode_value`]) that is
//! itself valid input giving the same bytes. [`template`] writes a commented
//! YAML skeleton of a map's key and value; [`map_json_schema`] the JSON
//! Schema of a map's entry files, for editors; [`legacy`] converts the
//! earlier Python tool's verbose template format.
//!
//! For bulk input there are fast paths that give exactly the general path's
//! result or decline: [`Codec::encode_json_entry`] encodes a line of JSON
//! Lines straight from the text, and [`block_yaml_to_json`] rewrites YAML in
//! the block style `dump -o yaml` prints as such JSON.
//!
//! Layout comes only from the schema: member offsets, bit offsets and sizes
//! as given (packed structs are members at odd offsets), integers in the
//! target's byte order unless the type says big-endian (`__be32`).
//!
//! # What a value may say
//!
//! * Integers: `10`, `-3`, `0x1f`, `0o17`, `0b101`, or any of those as a
//!   string (needed beyond 64 bits). Out of range is an error, never a wrap;
//!   floats and booleans are not integers.
//! * Enums: a variant name or a number.
//! * `_Bool`: `true`, `false`, `0` or `1`; any other number is refused. A
//!   byte other than 0 or 1 read back from a map decodes as a hex string
//!   (`"0x02"`), which writes that byte back unchanged.
//! * Structs: a mapping; fields left out are zero; unknown fields are errors.
//!   Unions: a mapping naming exactly one member; the rest of it is zero.
//! * Arrays: a list, shorter lists are zero-filled. `char[N]` takes a
//!   string (NUL-padded, at most N bytes). Byte arrays take `0x...` hex
//!   (memory order; shorter is zero-filled), an IPv4 address (first 4 bytes),
//!   an IPv6 address (16 bytes) or a MAC address (first 6 bytes).
//! * Addresses, as a program's `memcpy` of a `struct in_addr` or
//!   `struct in6_addr` lays them, in network order whatever the field's
//!   element type or byte order: every 4-byte field takes IPv4 text (an
//!   integer, `__be16[2]`, `struct in_addr`); every 16-byte field shaped
//!   like an address takes IPv6 text, and IPv4 text into its first 4 bytes
//!   (`__u8[16]`, `__be32[4]`, `__u32[4]`, `__be16[8]`, `unsigned
//!   __int128`, a union of such views such as `union { __be32 vip; __be32
//!   vipv6[4]; }`). A struct or union whose only job is holding an address
//!   takes the text directly; `struct in6_addr` takes IPv6 text only (IPv4
//!   as `::ffff:10.0.0.1`). A CIDR is not a field value: its prefix length
//!   goes in the field beside the address (`prefixlen`), see [`parse_cidr`].
//! * `null` anywhere means zero.
//!
//! # What decode shows
//!
//! Numbers, enum variant names where one matches, `char[N]` as a string when
//! it is UTF-8 up to the first NUL and zero after, byte arrays per the
//! schema's format hint (address, MAC, hex) or else as numbers, `struct
//! in6_addr` and `struct in_addr` as address text (other address-shaped
//! fields as their numbers, which read back identical), unions as
//! their first member that is as large as the union (else the largest).
//! Trailing all-zero elements of arrays of structs are left out, so a
//! `rules[100]` with three rules shows three. Integers beyond 64 bits and
//! non-finite floats are strings. Re-encoding the output gives the same
//! bytes whenever padding and unused union bytes were zero
//! ([`Plan::significant_bits`]).
//!
//! ```
//! use ebpf_sdk_codec::{parse_yaml, Codec};
//! use ebpf_sdk_schema::MapSchema;
//!
//! let schema: MapSchema = serde_json::from_str(r#"{
//!   "name": "table", "map_type": "lpm_trie", "map_type_id": 11,
//!   "key_size": 24, "value_size": 4, "max_entries": 1024,
//!   "flags": ["no_prealloc"], "map_flags": 1, "pinning": "none",
//!   "section": ".maps", "origin": "btf", "endian": "little",
//!   "key": {"name": "struct lpm_ip_key_st", "size": 24, "kind": "struct", "members": [
//!     {"name": "prefixLen", "offset": 0, "bit_offset": 0,
//!      "type": {"name": "unsigned int", "typedefs": ["__u32"], "size": 4, "kind": "int", "signed": false}},
//!     {"name": "ingress_ifindex", "offset": 4, "bit_offset": 32,
//!      "type": {"name": "unsigned int", "typedefs": ["__u32"], "size": 4, "kind": "int", "signed": false}},
//!     {"name": "ip_data", "offset": 8, "bit_offset": 64,
//!      "type": {"name": "__u8[16]", "size": 16, "kind": "array", "len": 16, "format": "ip",
//!               "element": {"name": "unsigned char", "typedefs": ["__u8"], "size": 1, "kind": "int", "signed": false}}}
//!   ]},
//!   "value": {"name": "unsigned int", "typedefs": ["__u32"], "size": 4, "kind": "int", "signed": false}
//! }"#).unwrap();
//!
//! let codec = Codec::new(&schema).unwrap();
//! let key = parse_yaml("{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}").unwrap();
//! let bytes = codec.encode_key(&key).unwrap();
//! assert_eq!(&bytes[..12], [0x40, 0, 0, 0, 6, 0, 0, 0, 10, 10, 10, 2]);
//! assert_eq!(codec.decode_key(&bytes).unwrap(), key);
//!
//! let bad = parse_yaml("{prefixlen: 64}").unwrap();
//! assert_eq!(
//!     codec.encode_key(&bad).unwrap_err().to_string(),
//!     "key.prefixlen: unknown field; valid fields: prefixLen, ingress_ifindex, ip_data"
//! );
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod convert;
mod error;
mod fastjson;
mod fastyaml;
mod json_schema;
pub mod legacy;
mod plan;
mod sugar;
mod template;
mod value;

pub use convert::{from_value, to_value};
pub use error::CodecError;
pub use fastyaml::block_yaml_to_json;
pub use json_schema::{
    map_json_schema, state_json_schema, yaml_modeline, JsonSchemaOptions, JSON_SCHEMA_DRAFT,
};
pub use plan::{CodecOptions, LeafKind, Number, NumericLeaf, PathStep, Plan, MAX_TYPE_DEPTH};
pub use sugar::parse_cidr;
pub use template::template;
pub use value::{
    parse_json, parse_json_bytes, parse_yaml, parse_yaml_bytes, parse_yaml_documents, Map, Value,
    MAX_DEPTH,
};

use ebpf_sdk_schema::MapSchema;

use error::{Fault, FaultKind};

/// One map's key and value plans. Build it once per map (compiling walks the
/// schema); encoding and decoding then only walk the value.
#[derive(Debug, Clone)]
pub struct Codec {
    map: String,
    key: Option<Plan>,
    value: Option<Plan>,
    per_cpu: bool,
    /// Whether [`Codec::encode_json_entry`] can take entries straight from text.
    fast_json: bool,
}

fn side_plan(
    root: &'static str,
    node: Option<&ebpf_sdk_schema::TypeNode>,
    size: u32,
    schema: &MapSchema,
    options: &CodecOptions,
) -> Result<Option<Plan>, CodecError> {
    match node {
        Some(t) => {
            if t.size != size {
                return Err(CodecError::InvalidSchema {
                    path: root.to_string(),
                    reason: format!(
                        "{} is {} B but the map's {root} size is {size} B",
                        t.display_name(),
                        t.size
                    ),
                });
            }
            Plan::new(root, t, schema.endian, options).map(Some)
        }
        // Sizes without types (legacy `bpf_map_def`): hex or byte lists.
        None if size > 0 => Ok(Some(Plan::opaque(root, size as usize))),
        None => Ok(None),
    }
}

impl Codec {
    /// Compiles the map's key and value layouts.
    pub fn new(schema: &MapSchema) -> Result<Codec, CodecError> {
        Codec::with_options(schema, &CodecOptions::default())
    }

    /// [`Codec::new`] with options, e.g. the byte order a legacy template asks for.
    pub fn with_options(schema: &MapSchema, options: &CodecOptions) -> Result<Codec, CodecError> {
        let key = side_plan("key", schema.key.as_ref(), schema.key_size, schema, options)?;
        let value = side_plan(
            "value",
            schema.value.as_ref(),
            schema.value_size,
            schema,
            options,
        )?;
        let per_cpu = schema.map_type.per_cpu();
        let fast_json = !per_cpu
            && key.as_ref().is_some_and(fastjson::fast_root)
            && value.as_ref().is_some_and(fastjson::fast_root);
        Ok(Codec {
            map: schema.name.clone(),
            key,
            value,
            per_cpu,
            fast_json,
        })
    }

    /// Encodes one entry written as JSON, `{"key": ..., "value": ...}`
    /// (one line of JSON Lines), straight from the text into `kbuf` and
    /// `vbuf` (exactly [`Codec::key_size`] and [`Codec::value_size`] bytes),
    /// without building a [`Value`]: several times faster than
    /// [`parse_json`] followed by [`Codec::encode_key_into`] and
    /// [`Codec::encode_value_into`], with the same result.
    ///
    /// Returns `false`, leaving the buffers in no particular state, when the
    /// text is not in that plain form (escapes in strings, fractions,
    /// exponents, integers beyond 64 bits, unions, per-CPU maps, maps without
    /// a key or value) or when anything is wrong with it. Such text must go
    /// through the general path, which also produces the error message.
    pub fn encode_json_entry(&self, text: &[u8], kbuf: &mut [u8], vbuf: &mut [u8]) -> bool {
        let (Some(key), Some(value)) = (&self.key, &self.value) else {
            return false;
        };
        self.fast_json
            && kbuf.len() == key.size()
            && vbuf.len() == value.size()
            && fastjson::encode_entry(key, value, text, kbuf, vbuf)
    }

    /// The key plan; `None` for maps without keys.
    pub fn key_plan(&self) -> Option<&Plan> {
        self.key.as_ref()
    }

    /// The value plan (one CPU's value for per-CPU maps); `None` without values.
    pub fn value_plan(&self) -> Option<&Plan> {
        self.value.as_ref()
    }

    fn key_or_err(&self) -> Result<&Plan, CodecError> {
        self.key.as_ref().ok_or_else(|| CodecError::Absent {
            map: self.map.clone(),
            what: "key",
        })
    }

    fn value_or_err(&self) -> Result<&Plan, CodecError> {
        self.value.as_ref().ok_or_else(|| CodecError::Absent {
            map: self.map.clone(),
            what: "value",
        })
    }

    /// Key size in bytes (0 without a key).
    pub fn key_size(&self) -> usize {
        self.key.as_ref().map_or(0, Plan::size)
    }

    /// Value size in bytes; for per-CPU maps, of one CPU's value.
    pub fn value_size(&self) -> usize {
        self.value.as_ref().map_or(0, Plan::size)
    }

    /// Whether the map stores one value per possible CPU.
    pub fn per_cpu(&self) -> bool {
        self.per_cpu
    }

    /// Bytes per CPU in a per-CPU value buffer: the value size rounded up to 8.
    pub fn per_cpu_stride(&self) -> usize {
        self.value_size().div_ceil(8) * 8
    }

    /// Length of a per-CPU value buffer for `ncpus` possible CPUs.
    pub fn per_cpu_value_len(&self, ncpus: usize) -> usize {
        self.per_cpu_stride().saturating_mul(ncpus)
    }

    /// Encodes a key into `buf` (exactly [`Codec::key_size`] bytes; all zero on error).
    pub fn encode_key_into(&self, key: &Value, buf: &mut [u8]) -> Result<(), CodecError> {
        self.key_or_err()?.encode_into(key, buf)
    }

    /// Encodes a key into a new buffer.
    pub fn encode_key(&self, key: &Value) -> Result<Vec<u8>, CodecError> {
        self.key_or_err()?.encode(key)
    }

    /// Encodes one value into `buf` (exactly [`Codec::value_size`] bytes; all
    /// zero on error). For per-CPU maps this is one CPU's value; see
    /// [`Codec::encode_per_cpu_value_into`] for the whole buffer.
    pub fn encode_value_into(&self, value: &Value, buf: &mut [u8]) -> Result<(), CodecError> {
        self.value_or_err()?.encode_into(value, buf)
    }

    /// Encodes one value into a new buffer.
    pub fn encode_value(&self, value: &Value) -> Result<Vec<u8>, CodecError> {
        self.value_or_err()?.encode(value)
    }

    /// Encodes a per-CPU value: `ncpus` slots of [`Codec::per_cpu_stride`]
    /// bytes. `value` is either a list with one value per possible CPU, or a
    /// single value that every CPU gets. (When the value type is itself an
    /// array, a list counts as per-CPU when its first element is shaped like
    /// a whole array: a list, or a string for byte and `char` arrays.)
    /// `buf` is left all zero on error.
    pub fn encode_per_cpu_value_into(
        &self,
        value: &Value,
        ncpus: usize,
        buf: &mut [u8],
    ) -> Result<(), CodecError> {
        let plan = self.value_or_err()?;
        let stride = self.per_cpu_stride();
        let expected = stride.checked_mul(ncpus).ok_or(CodecError::BufferSize {
            what: "value",
            expected: usize::MAX,
            actual: buf.len(),
        })?;
        if buf.len() != expected {
            return Err(CodecError::BufferSize {
                what: "value",
                expected,
                actual: buf.len(),
            });
        }
        buf.fill(0);
        let size = plan.size();
        let result = if plan::is_percpu_list(plan.node(), value) {
            let Value::List(items) = value else {
                unreachable!("checked by is_percpu_list")
            };
            if items.len() != ncpus {
                Err(Fault::new(FaultKind::PerCpuCount {
                    ncpus,
                    given: items.len(),
                })
                .into_error(plan.root()))
            } else {
                // By index: a zero-sized value's items are checked too.
                items.iter().enumerate().try_for_each(|(cpu, item)| {
                    let at = cpu * stride;
                    plan::encode(plan.node(), item, &mut buf[at..at + size])
                        .map_err(|f| f.into_error(&format!("{}[cpu {cpu}]", plan.root())))
                })
            }
        } else if ncpus == 0 {
            Err(Fault::new(FaultKind::PerCpuCount { ncpus, given: 1 }).into_error(plan.root()))
        } else {
            let (first, rest) = buf.split_at_mut(stride);
            plan::encode(plan.node(), value, &mut first[..size])
                .map(|()| {
                    for slot in rest.chunks_exact_mut(stride.max(1)) {
                        slot.copy_from_slice(first);
                    }
                })
                .map_err(|f| f.into_error(plan.root()))
        };
        if result.is_err() {
            buf.fill(0);
        }
        result
    }

    /// [`Codec::encode_per_cpu_value_into`] into a new buffer.
    pub fn encode_per_cpu_value(&self, value: &Value, ncpus: usize) -> Result<Vec<u8>, CodecError> {
        let mut buf = vec![0; self.per_cpu_value_len(ncpus)];
        self.encode_per_cpu_value_into(value, ncpus, &mut buf)?;
        Ok(buf)
    }

    /// Decodes a key.
    pub fn decode_key(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        self.key_or_err()?.decode(bytes)
    }

    /// Decodes one value (one CPU's, for per-CPU maps).
    pub fn decode_value(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        self.value_or_err()?.decode(bytes)
    }

    /// Decodes a per-CPU value buffer into a list with one value per CPU.
    /// [`sum_per_cpu`] totals it.
    pub fn decode_per_cpu_value(&self, bytes: &[u8], ncpus: usize) -> Result<Value, CodecError> {
        let plan = self.value_or_err()?;
        let stride = self.per_cpu_stride();
        if Some(bytes.len()) != stride.checked_mul(ncpus) {
            return Err(CodecError::BufferSize {
                what: "value",
                expected: stride.saturating_mul(ncpus),
                actual: bytes.len(),
            });
        }
        let size = plan.size();
        Ok(Value::List(
            (0..ncpus)
                .map(|cpu| plan::decode(plan.node(), &bytes[cpu * stride..cpu * stride + size]))
                .collect(),
        ))
    }
}

/// Adds up per-CPU values (as [`Codec::decode_per_cpu_value`] gives them) for
/// totals: numbers at the same place are summed (integers exactly, beyond
/// 64 bits as decimal strings), lists element by element (the longest
/// wins, as trailing zero elements may be left out), mappings field by
/// field; anything else (addresses, names, flags) is taken from the first
/// CPU. Meant for display: a sum may not fit the field's C type.
pub fn sum_per_cpu(values: &[Value]) -> Value {
    let mut iter = values.iter();
    let Some(first) = iter.next() else {
        return Value::Null;
    };
    iter.fold(first.clone(), add)
}

fn decimal(s: &str) -> Option<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A sum as decode would show it: a number within 64 bits, else a string.
fn total(x: i128) -> Value {
    if i64::try_from(x).is_ok() || u64::try_from(x).is_ok() {
        Value::Int(x)
    } else {
        Value::String(x.to_string())
    }
}

fn total_u(x: u128) -> Value {
    i128::try_from(x).map_or_else(|_| Value::String(x.to_string()), total)
}

fn add(a: Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => total(x.saturating_add(*y)),
        (Value::Float(x), Value::Float(y)) => Value::Float(x + y),
        (Value::String(x), Value::String(y)) => match (decimal(&x), decimal(y)) {
            (Some(p), Some(q)) => total_u(p.saturating_add(q)),
            _ => Value::String(x),
        },
        (Value::Int(x), Value::String(s)) => match (u128::try_from(x), decimal(s)) {
            (Ok(p), Some(q)) => total_u(p.saturating_add(q)),
            _ => Value::Int(x),
        },
        (Value::String(s), Value::Int(y)) => match (decimal(&s), u128::try_from(*y)) {
            (Some(p), Ok(q)) => total_u(p.saturating_add(q)),
            _ => Value::String(s),
        },
        (Value::List(mut xs), Value::List(ys)) => {
            for (i, y) in ys.iter().enumerate() {
                if i < xs.len() {
                    let x = std::mem::take(&mut xs[i]);
                    xs[i] = add(x, y);
                } else {
                    xs.push(y.clone());
                }
            }
            Value::List(xs)
        }
        (Value::Map(mut xm), Value::Map(ym)) => {
            for (k, y) in ym.iter() {
                match xm.get_mut(k) {
                    Some(x) => {
                        let old = std::mem::take(x);
                        *x = add(old, y);
                    }
                    None => {
                        xm.insert(k, y.clone());
                    }
                }
            }
            Value::Map(xm)
        }
        (a, _) => a,
    }
}
