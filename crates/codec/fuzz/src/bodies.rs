//! Fuzz bodies shared by the cargo-fuzz targets (`fuzz_targets/*.rs`) and by
//! the stable tests (`tests/fuzz_bodies.rs`, `tests/roundtrip.rs`), which
//! include this file with `#[path]`.
//!
//! Schemas are generated from the input bytes: nested structs, unions
//! (named and anonymous), arrays (multi-dimensional, of structs, `char`,
//! bytes with format hints), bitfields (signed, straddling bytes), enums
//! (64-bit too), big-endian ints, floats, bools, opaque blobs, packed
//! offsets and padding, and the address shapes of real programs
//! (`struct in6_addr`, `struct in_addr`, unions of address views,
//! `__be32[4]`, `__be16[8]`, `unsigned __int128`). Alongside a schema, [`model_value`] builds a value
//! *and the bytes it must encode to*, by a deliberately simple second
//! implementation of the layout rules (bit by bit, byte by byte).
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use ebpf_sdk_codec::{block_yaml_to_json, parse_json, parse_yaml, Plan, Value};

/// How many modelled values were address text, and `_Bool` bytes other
/// than 0/1 as hex strings: the tests check the shapes are exercised.
pub static ADDRESS_TEXTS: AtomicUsize = AtomicUsize::new(0);
/// See [`ADDRESS_TEXTS`].
pub static BOOL_HEX: AtomicUsize = AtomicUsize::new(0);
use ebpf_sdk_schema::{ByteOrder, EnumVariant, Format, Member, TypeKind, TypeNode};

/// `count` reproducible pseudo-random inputs (xorshift64*, no dependency)
/// of `min_len` up to `min_len + 599` bytes, for the stable tests that run
/// these bodies without a fuzzer.
pub fn inputs(seed: u64, count: usize, min_len: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut state = seed;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    (0..count).map(move |_| {
        let len = min_len + (next() % 600) as usize;
        (0..len).map(|_| next() as u8).collect()
    })
}

/// Deterministic choices drawn from fuzz input; zeros once it runs out.
pub struct Src<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Src<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Src { data, pos: 0 }
    }
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub fn below(&mut self, n: u32) -> u32 {
        if n <= 1 {
            return 0;
        }
        let x = u32::from(self.byte()) | (u32::from(self.byte()) << 8);
        x % n
    }
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(den) < num
    }
    pub fn u128(&mut self) -> u128 {
        let mut v = 0u128;
        for _ in 0..16 {
            v = (v << 8) | u128::from(self.byte());
        }
        v
    }
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }
}

struct Gen<'s, 'a> {
    src: &'s mut Src<'a>,
    names: u32,
    budget: u32,
}

impl Gen<'_, '_> {
    fn name(&mut self) -> String {
        self.names += 1;
        format!("f{}", self.names)
    }

    fn int(&mut self) -> TypeNode {
        let size = [1, 2, 4, 8, 16][self.src.below(5) as usize];
        let signed = self.src.chance(1, 2);
        let big = size > 1 && size < 16 && self.src.chance(1, 5);
        let format = match self.src.below(8) {
            0 => Some(Format::Hex),
            1 if size == 4 => Some(Format::Ip),
            _ => None,
        };
        TypeNode {
            name: format!("{}int{}", if signed { "" } else { "u" }, size * 8),
            typedefs: if big {
                vec![format!("__be{}", size * 8)]
            } else {
                vec![]
            },
            size,
            kind: TypeKind::Int {
                signed,
                char: false,
                byte_order: big.then_some(ByteOrder::Big),
                format,
            },
        }
    }

    fn enum_(&mut self) -> TypeNode {
        let size = [1, 2, 4, 8][self.src.below(4) as usize];
        let signed = self.src.chance(1, 3);
        let n = self.src.below(4) + 1;
        let bits = size * 8;
        let variants = (0..n)
            .map(|i| {
                let raw = self.src.u128() & (u128::MAX >> (128 - bits));
                let value = if signed {
                    let shift = 128 - bits;
                    ((raw << shift) as i128) >> shift
                } else {
                    raw as i128
                };
                let value = if self.src.chance(1, 2) {
                    i128::from(i as u8)
                } else {
                    value
                };
                EnumVariant {
                    name: format!("V{}_{i}", self.names),
                    value,
                }
            })
            .collect();
        self.names += 1;
        TypeNode {
            name: format!("enum e{}", self.names),
            typedefs: vec![],
            size,
            kind: TypeKind::Enum { signed, variants },
        }
    }

    /// An address shape as real programs declare one.
    fn addr_type(&mut self) -> TypeNode {
        let be = |t: TypeNode, bits: u32| TypeNode {
            typedefs: vec![format!("__be{bits}")],
            kind: TypeKind::Int {
                signed: false,
                char: false,
                byte_order: Some(ByteOrder::Big),
                format: None,
            },
            ..t
        };
        let u8_t = self.int_plain(1, false);
        let u16_t = self.int_plain(2, false);
        let u32_t = self.int_plain(4, false);
        let view = |name: &str, t: TypeNode| Member {
            name: name.into(),
            offset: 0,
            bit_offset: 0,
            bit_size: None,
            ty: t,
        };
        let in6_u = TypeNode {
            name: "union <anon>".into(),
            typedefs: vec![],
            size: 16,
            kind: TypeKind::Union {
                members: vec![
                    view("u6_addr8", array_of(u8_t, 16, None)),
                    view("u6_addr16", array_of(be(u16_t.clone(), 16), 8, None)),
                    view("u6_addr32", array_of(be(u32_t.clone(), 32), 4, None)),
                ],
            },
        };
        match self.src.below(7) {
            0 => TypeNode {
                name: "struct in6_addr".into(),
                typedefs: vec![],
                size: 16,
                kind: TypeKind::Struct {
                    members: vec![view("in6_u", in6_u)],
                },
            },
            1 => TypeNode {
                name: "struct in_addr".into(),
                typedefs: vec![],
                size: 4,
                kind: TypeKind::Struct {
                    members: vec![view("s_addr", be(u32_t, 32))],
                },
            },
            2 => TypeNode {
                name: "union <anon>".into(),
                typedefs: vec![],
                size: 16,
                kind: TypeKind::Union {
                    members: vec![
                        view("vip", be(u32_t.clone(), 32)),
                        view("vipv6", array_of(be(u32_t, 32), 4, None)),
                    ],
                },
            },
            3 => array_of(be(u16_t, 16), 8, None),
            4 => array_of(u32_t, 4, None),
            5 => in6_u,
            _ => self.int_plain(16, false),
        }
    }

    fn leaf(&mut self) -> TypeNode {
        match self.src.below(11) {
            10 => self.addr_type(),
            0..=4 => self.int(),
            5 => self.enum_(),
            6 => TypeNode {
                name: "_Bool".into(),
                typedefs: vec![],
                size: 1,
                kind: TypeKind::Bool,
            },
            7 => {
                let size = if self.src.chance(1, 2) { 4 } else { 8 };
                TypeNode {
                    name: if size == 4 { "float" } else { "double" }.into(),
                    typedefs: vec![],
                    size,
                    kind: TypeKind::Float,
                }
            }
            8 => {
                let size = self.src.below(6) + 1;
                TypeNode {
                    name: format!("opaque[{size}]"),
                    typedefs: vec![],
                    size,
                    kind: TypeKind::Opaque,
                }
            }
            _ => self.byte_array(),
        }
    }

    fn byte_array(&mut self) -> TypeNode {
        let len = [4, 6, 16, 8, 3, 1][self.src.below(6) as usize];
        let is_char = self.src.chance(1, 3);
        let format = if is_char {
            Some(Format::String)
        } else {
            match self.src.below(5) {
                0 if len == 4 || len == 16 => Some(Format::Ip),
                1 if len == 6 => Some(Format::Mac),
                2 => Some(Format::Hex),
                _ => None,
            }
        };
        let elem = TypeNode {
            name: if is_char { "char" } else { "unsigned char" }.into(),
            typedefs: vec![],
            size: 1,
            kind: TypeKind::Int {
                signed: is_char,
                char: is_char,
                byte_order: None,
                format: None,
            },
        };
        array_of(elem, len, format)
    }

    fn ty(&mut self, depth: u32) -> TypeNode {
        if self.budget == 0 || depth >= 4 {
            return self.leaf();
        }
        self.budget -= 1;
        match self.src.below(10) {
            0..=3 => self.leaf(),
            4..=6 => self.struct_(depth, false),
            7 => self.union_(depth, false),
            _ => {
                let elem = self.ty(depth + 1);
                let len = self.src.below(4) + if self.src.chance(1, 6) { 0 } else { 1 };
                array_of(elem, len, None)
            }
        }
    }

    /// A struct with packed, padded offsets, bitfield runs and anonymous members.
    fn struct_(&mut self, depth: u32, anonymous: bool) -> TypeNode {
        let n = self.src.below(5) + 1;
        let mut members = Vec::new();
        let mut off: u32 = 0;
        for _ in 0..n {
            off += self.src.below(3); // padding (or none: packed)
            match self.src.below(8) {
                0 => {
                    // A run of bitfields from byte `off`.
                    let signed = self.src_bool();
                    let unit = match self.src.below(4) {
                        0 => self.int_plain(4, signed),
                        1 => self.int_plain(8, signed),
                        2 => self.enum_small(),
                        _ => TypeNode {
                            name: "_Bool".into(),
                            typedefs: vec![],
                            size: 1,
                            kind: TypeKind::Bool,
                        },
                    };
                    let max = unit.size * 8;
                    let mut bit = off * 8 + self.src.below(8);
                    for _ in 0..self.src.below(3) + 1 {
                        let w = self
                            .src
                            .below(max.min(if unit.size == 1 { 1 } else { max }))
                            + 1;
                        members.push(Member {
                            name: self.name(),
                            offset: bit / 8,
                            bit_offset: bit,
                            bit_size: Some(w),
                            ty: unit.clone(),
                        });
                        bit += w + self.src.below(2);
                    }
                    off = bit.div_ceil(8);
                }
                1 if depth < 3 => {
                    let inner = if self.src.chance(1, 2) {
                        self.struct_(depth + 1, true)
                    } else {
                        self.union_(depth + 1, true)
                    };
                    let size = inner.size;
                    members.push(Member {
                        name: String::new(),
                        offset: off,
                        bit_offset: off * 8,
                        bit_size: None,
                        ty: inner,
                    });
                    off += size;
                }
                _ => {
                    let t = self.ty(depth + 1);
                    let size = t.size;
                    members.push(Member {
                        name: self.name(),
                        offset: off,
                        bit_offset: off * 8,
                        bit_size: None,
                        ty: t,
                    });
                    off += size;
                }
            }
        }
        let size = off + self.src.below(3);
        self.names += 1;
        TypeNode {
            name: if anonymous {
                "struct <anon>".into()
            } else {
                format!("struct s{}", self.names)
            },
            typedefs: vec![],
            size,
            kind: TypeKind::Struct { members },
        }
    }

    fn src_bool(&mut self) -> bool {
        self.src.chance(1, 2)
    }

    fn int_plain(&self, size: u32, signed: bool) -> TypeNode {
        TypeNode {
            name: format!("int{}", size * 8),
            typedefs: vec![],
            size,
            kind: TypeKind::Int {
                signed,
                char: false,
                byte_order: None,
                format: None,
            },
        }
    }

    fn enum_small(&mut self) -> TypeNode {
        self.names += 1;
        TypeNode {
            name: format!("enum b{}", self.names),
            typedefs: vec![],
            size: 4,
            kind: TypeKind::Enum {
                signed: false,
                variants: vec![
                    EnumVariant {
                        name: format!("B{}_ZERO", self.names),
                        value: 0,
                    },
                    EnumVariant {
                        name: format!("B{}_ONE", self.names),
                        value: 1,
                    },
                ],
            },
        }
    }

    fn union_(&mut self, depth: u32, anonymous: bool) -> TypeNode {
        let n = self.src.below(3) + 1;
        let mut members = Vec::new();
        for _ in 0..n {
            if depth < 3 && self.src.chance(1, 5) {
                let inner = self.struct_(depth + 1, true);
                members.push(Member {
                    name: String::new(),
                    offset: 0,
                    bit_offset: 0,
                    bit_size: None,
                    ty: inner,
                });
            } else {
                let t = self.ty(depth + 1);
                members.push(Member {
                    name: self.name(),
                    offset: 0,
                    bit_offset: 0,
                    bit_size: None,
                    ty: t,
                });
            }
        }
        let size = members.iter().map(|m| m.ty.size).max().unwrap_or(0) + self.src.below(2);
        self.names += 1;
        TypeNode {
            name: if anonymous {
                "union <anon>".into()
            } else {
                format!("union u{}", self.names)
            },
            typedefs: vec![],
            size,
            kind: TypeKind::Union { members },
        }
    }
}

pub fn array_of(elem: TypeNode, len: u32, format: Option<Format>) -> TypeNode {
    TypeNode {
        name: format!("{}[{len}]", elem.name),
        typedefs: vec![],
        size: elem.size * len,
        kind: TypeKind::Array {
            len,
            element: Box::new(elem),
            format,
        },
    }
}

/// A random type and target byte order drawn from `src`.
pub fn gen_schema(src: &mut Src<'_>) -> (TypeNode, ByteOrder) {
    let order = if src.chance(1, 4) {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };
    let mut g = Gen {
        src,
        names: 0,
        budget: 12,
    };
    let t = if g.src.chance(1, 8) {
        g.leaf()
    } else {
        g.struct_(0, false)
    };
    (t, order)
}

// ---------------------------------------------------------------------------
// The model: a value and the bytes it must encode to.
// ---------------------------------------------------------------------------

fn mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

fn put_bytes(out: &mut [u8], v: u128, big: bool) {
    let n = out.len();
    for i in 0..n {
        let byte = (v >> (8 * i)) as u8;
        if big {
            out[n - 1 - i] = byte;
        } else {
            out[i] = byte;
        }
    }
}

/// Sets a bitfield one bit at a time (see the module docs).
fn put_bits(out: &mut [u8], off: u32, width: u32, v: u128, big: bool) {
    for i in 0..width {
        let bit = (v >> i) & 1 == 1;
        let (byte, b) = if big {
            let p = off + (width - 1 - i);
            (p / 8, 7 - p % 8)
        } else {
            let p = off + i;
            (p / 8, p % 8)
        };
        let byte = &mut out[byte as usize];
        if bit {
            *byte |= 1 << b;
        } else {
            *byte &= !(1 << b);
        }
    }
}

/// A number of `bits` bits: the two's complement pattern and the value.
fn number(src: &mut Src<'_>, bits: u32, signed: bool) -> (u128, String) {
    let raw = match src.below(4) {
        0 => 0,
        1 => mask(bits),
        2 => src.byte() as u128 & mask(bits),
        _ => src.u128() & mask(bits),
    };
    let text = if signed {
        let shift = 128 - bits;
        (((raw << shift) as i128) >> shift).to_string()
    } else {
        raw.to_string()
    };
    (raw, text)
}

/// The number as one of the accepted spellings.
fn spell(src: &mut Src<'_>, text: &str) -> Value {
    let as_int = text.parse::<i128>().ok();
    match (src.below(4), as_int) {
        (0 | 1, Some(i)) => Value::Int(i),
        (2, _) => {
            let (neg, mag) = match text.strip_prefix('-') {
                Some(m) => (true, m.parse::<u128>().unwrap()),
                None => (false, text.parse::<u128>().unwrap()),
            };
            Value::String(format!("{}{mag:#x}", if neg { "-" } else { "" }))
        }
        _ => Value::String(text.to_string()),
    }
}

fn scalar(src: &mut Src<'_>, t: &TypeNode, bits: u32) -> (u128, Value) {
    match &t.kind {
        TypeKind::Int { signed, .. } => {
            let (raw, text) = number(src, bits, *signed);
            (raw, spell(src, &text))
        }
        TypeKind::Enum { signed, variants } => {
            if !variants.is_empty() && src.chance(1, 2) {
                let v = &variants[src.below(variants.len() as u32) as usize];
                (
                    (v.value as u128) & mask(bits),
                    Value::String(v.name.clone()),
                )
            } else {
                let (raw, text) = number(src, bits, *signed);
                (raw, spell(src, &text))
            }
        }
        TypeKind::Bool => match src.below(6) {
            // A byte other than 0/1 as decode shows it (whole bytes only).
            0 if bits == 8 => {
                BOOL_HEX.fetch_add(1, Ordering::Relaxed);
                let b = src.byte();
                (u128::from(b), Value::String(format!("{b:#04x}")))
            }
            1 => {
                let b = src.chance(1, 2);
                (u128::from(b), Value::Int(i128::from(b)))
            }
            _ => {
                let b = src.chance(1, 2);
                (u128::from(b), Value::Bool(b))
            }
        },
        _ => unreachable!("not a bitfield type"),
    }
}

/// Which address text `t` takes, by the rule the codec documents: a 4- or
/// 16-byte integer or array of integers (not text), or a struct of one
/// such member, or a union of nothing but such views of its bytes. `Some(4)`
/// IPv4, `Some(16)` IPv6 or IPv4 first, `Some(6)` IPv6 only (`struct
/// in6_addr`).
fn address_kind(t: &TypeNode) -> Option<u32> {
    let whole = |size: u32| (size == 4 || size == 16).then_some(size);
    let k = match &t.kind {
        TypeKind::Int { .. } => whole(t.size)?,
        TypeKind::Array {
            element,
            len,
            format,
        } => match (&element.kind, format) {
            (TypeKind::Int { char: false, .. }, f) if *len > 0 && *f != Some(Format::String) => {
                whole(t.size)?
            }
            _ => return None,
        },
        TypeKind::Struct { members } if members.len() == 1 => {
            let m = &members[0];
            if m.offset != 0 || m.bit_size.is_some() || m.ty.size != t.size {
                return None;
            }
            address_kind(&m.ty)?;
            whole(t.size)?
        }
        TypeKind::Union { members } if !members.is_empty() => {
            for m in members {
                if m.offset != 0 || m.bit_size.is_some() {
                    return None;
                }
                address_kind(&m.ty)?;
            }
            if !members.iter().any(|m| m.ty.size == t.size) {
                return None;
            }
            whole(t.size)?
        }
        _ => return None,
    };
    Some(if k == 16 && t.name == "struct in6_addr" {
        6
    } else {
        k
    })
}

/// Address text for a field of `kind` (see [`address_kind`]) and its bytes.
fn address_value(src: &mut Src<'_>, kind: u32, out: &mut [u8]) -> Value {
    ADDRESS_TEXTS.fetch_add(1, Ordering::Relaxed);
    if kind == 4 || (kind == 16 && src.chance(1, 3)) {
        let o = [src.byte(), src.byte(), src.byte(), src.byte()];
        out[..4].copy_from_slice(&o);
        return Value::String(std::net::Ipv4Addr::from(o).to_string());
    }
    let mut o = [0u8; 16];
    for b in &mut o {
        *b = if src.chance(1, 2) { 0 } else { src.byte() };
    }
    out.copy_from_slice(&o);
    Value::String(std::net::Ipv6Addr::from(o).to_string())
}

/// Builds a value for `t` and writes the bytes it must encode to into `out`
/// (which starts zeroed and is exactly `t.size` long).
pub fn model_value(src: &mut Src<'_>, t: &TypeNode, target: ByteOrder, out: &mut [u8]) -> Value {
    let big_target = target == ByteOrder::Big;
    if let Some(kind) = address_kind(t) {
        if src.chance(1, 3) {
            return address_value(src, kind, out);
        }
    }
    match &t.kind {
        TypeKind::Int { byte_order, .. } => {
            let (raw, v) = scalar(src, t, t.size * 8);
            put_bytes(
                out,
                raw,
                byte_order.map_or(big_target, |o| o == ByteOrder::Big),
            );
            v
        }
        TypeKind::Enum { .. } | TypeKind::Bool => {
            let (raw, v) = scalar(src, t, t.size * 8);
            put_bytes(out, raw, big_target);
            v
        }
        TypeKind::Float => {
            let x = [0.0, 1.5, -2.25, 1024.0, 0.1, 3.0e38][src.below(6) as usize];
            if t.size == 4 {
                put_bytes(out, u128::from((x as f32).to_bits()), big_target);
            } else {
                put_bytes(out, u128::from(f64::to_bits(x)), big_target);
            }
            Value::Float(x)
        }
        TypeKind::Pointer => {
            let (raw, text) = number(src, t.size * 8, false);
            put_bytes(out, raw, big_target);
            spell(src, &text)
        }
        TypeKind::Opaque => {
            for b in out.iter_mut() {
                *b = src.byte();
            }
            Value::String(format!(
                "0x{}",
                out.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ))
        }
        TypeKind::Array {
            len,
            element,
            format,
        } => {
            let len = *len as usize;
            let es = element.size as usize;
            let byteish = es == 1 && matches!(element.kind, TypeKind::Int { .. });
            let text = byteish
                && (matches!(element.kind, TypeKind::Int { char: true, .. })
                    || *format == Some(Format::String));
            if text && src.chance(1, 2) {
                let n = src.below(len as u32 + 1) as usize;
                let s: String = (0..n).map(|_| (b'a' + src.byte() % 26) as char).collect();
                out[..n].copy_from_slice(s.as_bytes());
                return Value::String(s);
            }
            if byteish && !text && len >= 4 && src.chance(1, 3) {
                let o = [src.byte(), src.byte(), src.byte(), src.byte()];
                out[..4].copy_from_slice(&o);
                return Value::String(format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]));
            }
            if byteish && !text && src.chance(1, 3) {
                let n = src.below(len as u32 + 1) as usize;
                for b in &mut out[..n] {
                    *b = src.byte();
                }
                return Value::String(format!(
                    "0x{}",
                    out[..n]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                ));
            }
            let k = src.below(len as u32 + 1) as usize;
            Value::List(
                (0..k)
                    .map(|i| model_value(src, element, target, &mut out[i * es..(i + 1) * es]))
                    .collect(),
            )
        }
        TypeKind::Struct { members } => {
            let mut map = ebpf_sdk_codec::Map::new();
            model_fields(src, members, false, 0, target, out, &mut map);
            Value::Map(map)
        }
        TypeKind::Union { members } => {
            let mut map = ebpf_sdk_codec::Map::new();
            model_fields(src, members, true, 0, target, out, &mut map);
            // `member: null` counts as not given.
            if map.iter().all(|(_, v)| *v == Value::Null) {
                map = ebpf_sdk_codec::Map::new();
                // A union must name one member: force the first named one.
                let Some(m) = members.iter().find(|m| !m.name.is_empty()) else {
                    return Value::Null;
                };
                let v = model_value(src, &m.ty, target, &mut out[..m.ty.size as usize]);
                if v == Value::Null {
                    return Value::Null;
                }
                map.insert(m.name.clone(), v);
            }
            Value::Map(map)
        }
    }
}

/// Fields of a struct (each maybe) or union (one alternative, maybe none)
/// at byte `base` of `out`, into `map`, anonymous members flattened.
fn model_fields(
    src: &mut Src<'_>,
    members: &[Member],
    union: bool,
    base: u32,
    target: ByteOrder,
    out: &mut [u8],
    map: &mut ebpf_sdk_codec::Map,
) {
    let pick = if union {
        if members.is_empty() || src.chance(1, 4) {
            None
        } else {
            Some(src.below(members.len() as u32) as usize)
        }
    } else {
        None
    };
    for (i, m) in members.iter().enumerate() {
        if union && pick != Some(i) {
            continue;
        }
        if !union && src.chance(1, 4) {
            continue; // left out: zero
        }
        let start = base + m.offset;
        if m.name.is_empty() {
            if let TypeKind::Struct { members: inner } | TypeKind::Union { members: inner } =
                &m.ty.kind
            {
                let is_union = matches!(m.ty.kind, TypeKind::Union { .. });
                model_fields(src, inner, is_union, start, target, out, map);
            }
            continue;
        }
        let v = match m.bit_size {
            Some(w) => {
                let (raw, v) = scalar(src, &m.ty, w);
                put_bits(
                    out,
                    base * 8 + m.bit_offset,
                    w,
                    raw,
                    target == ByteOrder::Big,
                );
                v
            }
            None => {
                let end = (start + m.ty.size) as usize;
                model_value(src, &m.ty, target, &mut out[start as usize..end])
            }
        };
        map.insert(m.name.clone(), v);
    }
}

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

fn plan_for(t: &TypeNode, order: ByteOrder) -> Plan {
    Plan::new("value", t, order, &Default::default())
        .unwrap_or_else(|e| panic!("generated schema rejected: {e}\n{t:#?}"))
}

/// A schema from the input, its plan, and the rest of the input (repeated,
/// or zeros) as exactly that many bytes.
fn schema_and_bytes(data: &[u8]) -> (TypeNode, Plan, Vec<u8>) {
    let mut src = Src::new(data);
    let (t, order) = gen_schema(&mut src);
    let plan = plan_for(&t, order);
    let mut bytes: Vec<u8> = src
        .rest()
        .iter()
        .copied()
        .cycle()
        .take(plan.size())
        .collect();
    bytes.resize(plan.size(), 0);
    (t, plan, bytes)
}

/// Decodes arbitrary bytes: never panics; the output re-encodes to the same
/// bytes (outside padding and unused union bytes) and survives YAML and
/// JSON text.
pub fn decode_body(data: &[u8]) {
    let (_, plan, mut bytes) = schema_and_bytes(data);
    let m = plan.significant_bits();
    for (b, m) in bytes.iter_mut().zip(&m) {
        *b &= m;
    }
    let d = plan.decode(&bytes).unwrap();
    let again = plan
        .encode(&d)
        .unwrap_or_else(|e| panic!("decode output rejected: {e}\n{}", d.to_json()));
    assert_eq!(again, bytes, "encode(decode(b)) != b for {}", d.to_json());
    assert_eq!(plan.decode(&again).unwrap(), d);
    let from_yaml = parse_yaml(&d.to_yaml()).unwrap();
    assert_eq!(
        plan.encode(&from_yaml).unwrap(),
        bytes,
        "via YAML {}",
        d.to_yaml()
    );
    let from_json = parse_json(&d.to_json()).unwrap();
    assert_eq!(
        plan.encode(&from_json).unwrap(),
        bytes,
        "via JSON {}",
        d.to_json()
    );
}

/// Encodes a modelled value: exactly the modelled bytes; decoding them gives
/// a value that encodes to them again and decodes to itself.
pub fn model_body(data: &[u8]) {
    let mut src = Src::new(data);
    let (t, order) = gen_schema(&mut src);
    let plan = plan_for(&t, order);
    let mut want = vec![0u8; plan.size()];
    let v = model_value(&mut src, &t, order, &mut want);
    let got = plan.encode(&v).unwrap_or_else(|e| {
        panic!(
            "modelled value rejected: {e}\nvalue {}\nschema {t:#?}",
            v.to_json()
        )
    });
    assert_eq!(got, want, "value {} schema {t:#?}", v.to_json());
    // Decode shows one alternative of each union: bytes only a different
    // alternative covers are not in it (the significant-bits mask).
    let masked: Vec<u8> = got
        .iter()
        .zip(plan.significant_bits())
        .map(|(b, m)| b & m)
        .collect();
    let d = plan.decode(&got).unwrap();
    assert_eq!(
        plan.encode(&d).unwrap(),
        masked,
        "decoded {}\nschema {t:#?}",
        d.to_json()
    );
    assert_eq!(plan.decode(&masked).unwrap(), d);
}

/// Arbitrary text as YAML and JSON into a generated schema: never panics;
/// whatever encodes decodes to a value giving the same bytes.
pub fn encode_decode_body(data: &[u8]) {
    let mut src = Src::new(data);
    let (t, order) = gen_schema(&mut src);
    let plan = plan_for(&t, order);
    let text = String::from_utf8_lossy(src.rest());
    for parsed in [parse_yaml(&text), parse_json(&text)] {
        let Ok(v) = parsed else { continue };
        let mut buf = vec![0xa5u8; plan.size()];
        match plan.encode_into(&v, &mut buf) {
            Ok(()) => {
                let d = plan.decode(&buf).unwrap();
                assert_eq!(plan.encode(&d).unwrap(), buf, "from {}", d.to_json());
            }
            Err(_) => assert!(
                buf.iter().all(|b| *b == 0),
                "partial bytes left after an error"
            ),
        }
    }
    model_body(data);
}

/// Checks [`Plan::encode_json_into`] (the fast path) on `text` against the
/// general path (`parse_json`, then [`Plan::encode_into`]): when the fast
/// path takes the text, the general path takes it too and gives the same
/// bytes. Returns whether the fast path took it.
fn fast_same_as_general(plan: &Plan, text: &[u8]) -> bool {
    let mut fast = vec![0xa5u8; plan.size()];
    let took = plan.encode_json_into(text, &mut fast);
    if took {
        let shown = String::from_utf8_lossy(text);
        let s = std::str::from_utf8(text)
            .unwrap_or_else(|_| panic!("fast path took text that is not UTF-8: {shown}"));
        let v = parse_json(s)
            .unwrap_or_else(|e| panic!("fast path took text JSON refuses ({e}): {shown}"));
        let slow = plan
            .encode(&v)
            .unwrap_or_else(|e| panic!("fast path took text the encoder refuses ({e}): {shown}"));
        assert_eq!(fast, slow, "fast path bytes differ for {shown}");
    }
    took
}

/// A random schema's plan, a value modelled for it, and the value its bytes
/// decode to.
fn modelled_and_decoded(src: &mut Src<'_>) -> (Plan, Value, Value) {
    let (t, order) = gen_schema(src);
    let plan = plan_for(&t, order);
    let mut want = vec![0u8; plan.size()];
    let v = model_value(src, &t, order, &mut want);
    let d = plan.decode(&want).unwrap();
    (plan, v, d)
}

/// The JSON fast path against the general path on a modelled value's JSON,
/// on the JSON of its decoded bytes, and on that text after random edits
/// (bytes deleted, inserted or replaced with JSON-ish characters). Returns
/// (texts the fast path took, texts tried).
pub fn fast_json_body(data: &[u8]) -> (usize, usize) {
    let mut src = Src::new(data);
    let (plan, v, d) = modelled_and_decoded(&mut src);
    let mut texts = vec![v.to_json().into_bytes(), d.to_json().into_bytes()];
    let mut took = 0;
    add_edits(
        &mut src,
        &mut texts,
        6,
        b"{}[]\",:-0123456789.eE \t\\nultrfax\xc3\xa9",
    );
    for text in &texts {
        took += usize::from(fast_same_as_general(&plan, text));
    }
    (took, texts.len())
}

/// Adds `rounds` copies of the texts (in turn) with 1-3 random edits each
/// (a byte of `chars` inserted or put in place of one, or a byte removed),
/// then whatever the fuzzer put after the choices.
fn add_edits(src: &mut Src<'_>, texts: &mut Vec<Vec<u8>>, rounds: usize, chars: &[u8]) {
    let originals = texts.len();
    for round in 0..rounds {
        let mut text = texts[round % originals].clone();
        for _ in 0..=src.below(3) {
            let at = src.below(text.len() as u32 + 1) as usize;
            let c = chars[src.below(chars.len() as u32) as usize];
            match src.below(3) {
                0 if at < text.len() => {
                    text.remove(at);
                }
                1 if at < text.len() => text[at] = c,
                _ => text.insert(at, c),
            }
        }
        texts.push(text);
    }
    texts.push(src.rest().to_vec());
}

/// Whether the YAML fast path ([`block_yaml_to_json`], what `apply` uses
/// for YAML in `dump`'s block style) took `text`; when it does, libyaml
/// reads the text too, as the same value as the JSON it wrote.
fn fast_yaml_same_as_yaml(text: &[u8]) -> bool {
    let Ok(t) = std::str::from_utf8(text) else {
        return false;
    };
    let mut json = Vec::new();
    if !block_yaml_to_json(t, &mut json) {
        return false;
    }
    let yaml = parse_yaml(t)
        .unwrap_or_else(|e| panic!("the YAML fast path took text libyaml refuses ({e}):\n{t}"));
    let json = String::from_utf8(json).expect("the YAML fast path wrote UTF-8");
    let from_json = parse_json(&json)
        .unwrap_or_else(|e| panic!("the YAML fast path wrote bad JSON ({e}): {json}\n{t}"));
    assert_eq!(from_json, yaml, "YAML:\n{t}\nJSON: {json}");
    true
}

/// The YAML fast path against libyaml on the YAML `dump` prints for a
/// modelled value and for decoded bytes (alone and as a list item), random
/// edits of them, and the rest of the input. Returns (taken, tried).
pub fn fast_yaml_body(data: &[u8]) -> (usize, usize) {
    let mut src = Src::new(data);
    let (_, v, d) = modelled_and_decoded(&mut src);
    let entry = |v: &Value| {
        let mut m = ebpf_sdk_codec::Map::new();
        m.insert("key", v.clone());
        m.insert("value", v.clone());
        Value::List(vec![Value::Map(m)]).to_yaml().into_bytes()
    };
    let mut texts = vec![
        v.to_yaml().into_bytes(),
        d.to_yaml().into_bytes(),
        entry(&v),
        entry(&d),
    ];
    add_edits(&mut src, &mut texts, 8, b"- :\n'#0x1.a_{}[]\"~&*!|>\t");
    let took = texts.iter().filter(|t| fast_yaml_same_as_yaml(t)).count();
    (took, texts.len())
}

/// [`Plan::decode_json_into`] (what `dump -o json` uses) gives exactly the
/// text serde_json prints for [`Plan::decode`]'s value, for any bytes.
pub fn decode_json_body(data: &[u8]) {
    let (t, plan, bytes) = schema_and_bytes(data);
    let want = plan.decode(&bytes).unwrap().to_json();
    let mut got = b"prefix ".to_vec();
    plan.decode_json_into(&bytes, &mut got).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got[7..]),
        want,
        "schema {t:#?}\nbytes {bytes:02x?}"
    );
}
