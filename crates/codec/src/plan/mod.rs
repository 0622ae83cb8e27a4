//! A [`TypeNode`] compiled once into a [`Plan`]: offsets, widths, byte
//! orders and field-name lookups resolved, so encoding and decoding walk
//! the value, not the schema.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ebpf_sdk_schema::{ByteOrder, Format, Member, TypeKind, TypeNode};

use crate::error::{Fault, FaultKind};
use crate::sugar::{self, mask, range_text, sign_extend, Wide};
use crate::{CodecError, Map, Value};

/// Deepest type nesting a plan accepts (struct in array in struct ...).
pub const MAX_TYPE_DEPTH: usize = 64;

/// Field lookups switch from a linear scan to a hash map above this many fields.
const LINEAR_LOOKUP: usize = 12;

/// Options that change how a schema is encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodecOptions {
    /// Byte order for every whole-byte scalar (integers, enums, bools,
    /// pointers, floats), overriding both the map's target order and
    /// per-type declarations such as `__be32`. This is what the earlier
    /// tool's `byteOrder` setting meant ([`crate::legacy::to_concise`]
    /// returns it). Bitfields keep the target's layout: their bit offsets
    /// were computed by the compiler for it.
    pub byte_order: Option<ByteOrder>,
}

impl CodecOptions {
    /// Sets [`CodecOptions::byte_order`].
    pub fn byte_order(mut self, order: Option<ByteOrder>) -> Self {
        self.byte_order = order;
        self
    }
}

/// One type (a map's key or value, or any [`TypeNode`]) compiled for
/// encoding and decoding. Build once, use for every entry.
#[derive(Debug, Clone)]
pub struct Plan {
    node: Node,
    size: usize,
    root: Box<str>,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Int(Box<IntNode>),
    Bool(Box<Scalar>),
    Float(Box<Scalar>),
    Enum(Box<EnumNode>),
    Record(Box<Record>),
    Array(Box<ArrayNode>),
    Raw(Box<Scalar>),
}

#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    size: usize,
    order: ByteOrder,
    ty: Box<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct IntNode {
    pub(crate) size: usize,
    pub(crate) signed: bool,
    pub(crate) order: ByteOrder,
    pub(crate) format: Option<Format>,
    ty: Box<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct EnumNode {
    size: usize,
    signed: bool,
    order: ByteOrder,
    variants: Vec<(Box<str>, i128)>,
    ty: Box<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArrKind {
    /// `char[N]` or a byte array hinted as a string.
    Text,
    /// Any other array of 1-byte integers.
    Bytes,
    Other,
}

#[derive(Debug, Clone)]
pub(crate) struct ArrayNode {
    pub(crate) len: usize,
    pub(crate) elem: Node,
    pub(crate) elem_size: usize,
    pub(crate) kind: ArrKind,
    pub(crate) format: Option<Format>,
    /// Decode omits trailing all-zero elements (arrays of structs/unions);
    /// "zero" in the bits decode reads (this mask, empty when not trimming).
    trim: bool,
    elem_mask: Box<[u8]>,
    ty: Box<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Record {
    size: usize,
    /// A named union: exactly one member (group 0) must be given.
    union: bool,
    pub(crate) fields: Vec<Field>,
    index: Option<HashMap<Box<str>, usize>>,
    groups: Vec<Group>,
    /// Fields decode emits, in declaration order: those of the chosen
    /// alternative of every union.
    pub(crate) decode: Vec<usize>,
    /// Bitfield layout: the target's byte order.
    pub(crate) bit_order: ByteOrder,
    ty: Box<str>,
}

/// The alternatives of one union (named, or anonymous and flattened).
#[derive(Debug, Clone)]
struct Group {
    ty: Box<str>,
    alts: Vec<String>,
    chosen: u16,
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    name: Arc<str>,
    /// `"name":` as JSON, for writing decoded values straight to text.
    pub(crate) json_key: Box<str>,
    pub(crate) offset: usize,
    /// Bitfield: bit offset from the record start and width.
    pub(crate) bits: Option<(u32, u32)>,
    pub(crate) node: Node,
    /// (group, alternative) for every union this field is inside.
    alts: Vec<(u16, u16)>,
}

const NONE: u16 = u16::MAX;

// ---------------------------------------------------------------------------
// Compiling
// ---------------------------------------------------------------------------

struct Cx {
    target: ByteOrder,
    force: Option<ByteOrder>,
}

fn bad(path: &str, reason: impl Into<String>) -> CodecError {
    CodecError::InvalidSchema {
        path: path.to_string(),
        reason: reason.into(),
    }
}

impl Plan {
    /// Compiles `ty` for a target of byte order `endian`. `root` names the
    /// value in error paths (`key`, `value`).
    pub fn new(
        root: &str,
        ty: &TypeNode,
        endian: ByteOrder,
        options: &CodecOptions,
    ) -> Result<Plan, CodecError> {
        let cx = Cx {
            target: endian,
            force: options.byte_order,
        };
        let mut path = root.to_string();
        let node = compile(ty, &cx, &mut path, 0)?;
        Ok(Plan {
            node,
            size: ty.size as usize,
            root: root.into(),
        })
    }

    /// An opaque plan of `size` bytes, for a map whose layout is unknown.
    pub fn opaque(root: &str, size: usize) -> Plan {
        Plan {
            node: Node::Raw(Box::new(Scalar {
                size,
                order: ByteOrder::Little,
                ty: format!("opaque[{size}]").into(),
            })),
            size,
            root: root.into(),
        }
    }

    /// Size in bytes of the encoded type.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Encodes `value` into `buf`, which must be exactly [`Plan::size`] bytes.
    /// Every byte is written: padding and whatever the value leaves out are
    /// zero. On error `buf` is left all zero.
    pub fn encode_into(&self, value: &Value, buf: &mut [u8]) -> Result<(), CodecError> {
        if buf.len() != self.size {
            return Err(CodecError::BufferSize {
                what: root_what(&self.root),
                expected: self.size,
                actual: buf.len(),
            });
        }
        buf.fill(0);
        encode(&self.node, value, buf).map_err(|f| {
            buf.fill(0);
            f.into_error(&self.root)
        })
    }

    /// Encodes a value written as JSON text straight into `buf` (exactly
    /// [`Plan::size`] bytes), without building a [`Value`]; the same bytes as
    /// [`crate::parse_json`] then [`Plan::encode_into`]. Returns `false`
    /// when the text is not in the plain form this path reads (see
    /// [`crate::Codec::encode_json_entry`]) or is wrong in any way; the
    /// general path then gives the bytes or the error.
    pub fn encode_json_into(&self, text: &[u8], buf: &mut [u8]) -> bool {
        crate::fastjson::encode_value(self, text, buf)
    }

    /// Encodes `value` into a new buffer.
    pub fn encode(&self, value: &Value) -> Result<Vec<u8>, CodecError> {
        let mut buf = vec![0; self.size];
        self.encode_into(value, &mut buf)?;
        Ok(buf)
    }

    /// Decodes `bytes` (exactly [`Plan::size`] long). Any bytes decode; the
    /// result is valid [`Plan::encode`] input that gives the same bytes back
    /// when padding and unused union bytes were zero.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        if bytes.len() != self.size {
            return Err(CodecError::BufferSize {
                what: root_what(&self.root),
                expected: self.size,
                actual: bytes.len(),
            });
        }
        Ok(decode(&self.node, bytes))
    }

    /// Appends the JSON text of [`Plan::decode`]'s value to `out`, exactly
    /// as `serde_json` prints that value, without building it: several
    /// times faster for `dump` of large maps.
    pub fn decode_json_into(&self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if bytes.len() != self.size {
            return Err(CodecError::BufferSize {
                what: root_what(&self.root),
                expected: self.size,
                actual: bytes.len(),
            });
        }
        crate::fastjson::write_decoded(&self.node, bytes, out);
        Ok(())
    }

    /// The bits [`Plan::decode`] reads, as a mask over the encoded bytes:
    /// padding, unnamed bitfields and union bytes beyond the alternative
    /// decode shows are 0. `encode(decode(b)) == b & mask` for any `b`.
    pub fn significant_bits(&self) -> Vec<u8> {
        let mut m = vec![0; self.size];
        mark(&self.node, &mut m);
        m
    }

    pub(crate) fn node(&self) -> &Node {
        &self.node
    }

    pub(crate) fn root(&self) -> &str {
        &self.root
    }
}

fn root_what(root: &str) -> &'static str {
    match root {
        "key" => "key",
        _ => "value",
    }
}

fn compile(t: &TypeNode, cx: &Cx, path: &mut String, depth: usize) -> Result<Node, CodecError> {
    if depth > MAX_TYPE_DEPTH {
        return Err(bad(
            path,
            format!("types nested deeper than {MAX_TYPE_DEPTH} levels"),
        ));
    }
    let size = t.size as usize;
    let ty: Box<str> = t.display_name().into();
    let order = cx.force.unwrap_or(cx.target);
    let raw = |ty: Box<str>| Node::Raw(Box::new(Scalar { size, order, ty }));
    let int_size = matches!(size, 1 | 2 | 4 | 8 | 16);
    Ok(match &t.kind {
        TypeKind::Int {
            signed,
            byte_order,
            format,
            ..
        } if int_size => Node::Int(Box::new(IntNode {
            size,
            signed: *signed,
            order: cx.force.or(*byte_order).unwrap_or(cx.target),
            format: *format,
            ty,
        })),
        TypeKind::Pointer if int_size => Node::Int(Box::new(IntNode {
            size,
            signed: false,
            order,
            format: None,
            ty,
        })),
        TypeKind::Bool if int_size => Node::Bool(Box::new(Scalar { size, order, ty })),
        TypeKind::Float if size == 4 || size == 8 => {
            Node::Float(Box::new(Scalar { size, order, ty }))
        }
        TypeKind::Enum { signed, variants } if int_size => Node::Enum(Box::new(EnumNode {
            size,
            signed: *signed,
            order,
            variants: variants
                .iter()
                .map(|v| (v.name.as_str().into(), v.value))
                .collect(),
            ty,
        })),
        // Sizes no C scalar has (`long double`, odd BTF): raw bytes.
        TypeKind::Int { .. }
        | TypeKind::Pointer
        | TypeKind::Bool
        | TypeKind::Float
        | TypeKind::Enum { .. } => raw(ty),
        TypeKind::Opaque => raw(ty),
        TypeKind::Struct { members } | TypeKind::Union { members } => {
            let union = matches!(t.kind, TypeKind::Union { .. });
            Node::Record(Box::new(compile_record(
                t, members, union, cx, path, depth,
            )?))
        }
        TypeKind::Array {
            len,
            element,
            format,
        } => {
            let len = *len as usize;
            let elem_size = element.size as usize;
            if len.checked_mul(elem_size) != Some(size) {
                return Err(bad(
                    path,
                    format!(
                        "array {} has {len} elements of {elem_size} B but size {size}",
                        t.name
                    ),
                ));
            }
            let at = path.len();
            path.push_str("[]");
            let elem = compile(element, cx, path, depth + 1)?;
            path.truncate(at);
            let kind = match &element.kind {
                TypeKind::Int { char, .. } if elem_size == 1 => {
                    if *char || *format == Some(Format::String) {
                        ArrKind::Text
                    } else {
                        ArrKind::Bytes
                    }
                }
                _ => ArrKind::Other,
            };
            let trim = contains_record(&elem);
            let elem_mask = if trim {
                let mut m = vec![0; elem_size];
                mark(&elem, &mut m);
                m.into_boxed_slice()
            } else {
                Box::default()
            };
            Node::Array(Box::new(ArrayNode {
                len,
                trim,
                elem_mask,
                elem,
                elem_size,
                kind,
                format: *format,
                ty,
            }))
        }
    })
}

fn contains_record(n: &Node) -> bool {
    match n {
        Node::Record(_) => true,
        Node::Array(a) => contains_record(&a.elem),
        _ => false,
    }
}

fn compile_record(
    t: &TypeNode,
    members: &[Member],
    union: bool,
    cx: &Cx,
    path: &mut String,
    depth: usize,
) -> Result<Record, CodecError> {
    let mut rec = Record {
        size: t.size as usize,
        union,
        fields: Vec::new(),
        index: None,
        groups: Vec::new(),
        decode: Vec::new(),
        bit_order: cx.target,
        ty: t.display_name().into(),
    };
    flatten(&mut rec, t, members, union, 0, &[], cx, path, depth)?;
    rec.decode = (0..rec.fields.len())
        .filter(|&i| {
            rec.fields[i]
                .alts
                .iter()
                .all(|&(g, a)| rec.groups[usize::from(g)].chosen == a)
        })
        .collect();
    if rec.fields.len() > LINEAR_LOOKUP {
        rec.index = Some(
            rec.fields
                .iter()
                .enumerate()
                .map(|(i, f)| (Box::from(&*f.name), i))
                .collect(),
        );
    }
    Ok(rec)
}

/// Adds the members of a struct or union (`t`) at bit offset `base_bits` of
/// the record being built; anonymous struct/union members are flattened
/// into it, each union becoming a group of alternatives.
#[allow(clippy::too_many_arguments)]
fn flatten(
    rec: &mut Record,
    t: &TypeNode,
    members: &[Member],
    is_union: bool,
    base_bits: u64,
    alts: &[(u16, u16)],
    cx: &Cx,
    path: &mut String,
    depth: usize,
) -> Result<(), CodecError> {
    if depth > MAX_TYPE_DEPTH {
        return Err(bad(
            path,
            format!("types nested deeper than {MAX_TYPE_DEPTH} levels"),
        ));
    }
    let group = if is_union {
        let g = u16::try_from(rec.groups.len())
            .ok()
            .filter(|g| *g < NONE)
            .ok_or_else(|| bad(path, "too many unions"))?;
        if members.len() >= usize::from(NONE) {
            return Err(bad(path, "too many union members"));
        }
        rec.groups.push(Group {
            ty: t.display_name().into(),
            alts: members.iter().map(alt_description).collect(),
            chosen: choose_alternative(members, t.size).map_or(NONE, |i| i as u16),
        });
        Some(g)
    } else {
        None
    };
    let parent_bits = u64::from(t.size) * 8;
    for (i, m) in members.iter().enumerate() {
        let mut my_alts = alts.to_vec();
        if let Some(g) = group {
            my_alts.push((g, i as u16));
        }
        let at = path.len();
        if !m.name.is_empty() {
            path.push('.');
            path.push_str(&m.name);
        }
        let end_bits = match m.bit_size {
            Some(w) => u64::from(m.bit_offset) + u64::from(w),
            None => (u64::from(m.offset) + u64::from(m.ty.size)) * 8,
        };
        if end_bits > parent_bits {
            return Err(bad(
                path,
                format!(
                    "member `{}` ends at bit {end_bits}, beyond {} ({} B)",
                    m.name,
                    t.display_name(),
                    t.size
                ),
            ));
        }
        let member_bits = base_bits + u64::from(m.offset) * 8;
        if m.name.is_empty() {
            match &m.ty.kind {
                TypeKind::Struct { members: inner } | TypeKind::Union { members: inner } => {
                    flatten(
                        rec,
                        &m.ty,
                        inner,
                        matches!(m.ty.kind, TypeKind::Union { .. }),
                        member_bits,
                        &my_alts,
                        cx,
                        path,
                        depth + 1,
                    )?
                }
                // An unnamed bitfield or member is padding: always zero.
                _ => {}
            }
            path.truncate(at);
            continue;
        }
        if rec.fields.iter().any(|f| *f.name == *m.name) {
            return Err(bad(path, format!("two members named `{}`", m.name)));
        }
        let node = compile(&m.ty, cx, path, depth + 1)?;
        let bits = match m.bit_size {
            None => None,
            Some(w) => {
                let scalar = matches!(node, Node::Int(_) | Node::Enum(_) | Node::Bool(_));
                if !scalar || w == 0 || u64::from(w) > u64::from(m.ty.size) * 8 {
                    return Err(bad(
                        path,
                        format!(
                            "bitfield of {w} bits in {} ({} B)",
                            m.ty.display_name(),
                            m.ty.size
                        ),
                    ));
                }
                let abs = base_bits + u64::from(m.bit_offset);
                let abs = u32::try_from(abs).map_err(|_| bad(path, "bit offset too large"))?;
                if abs % 8 + w > 128 {
                    return Err(bad(
                        path,
                        format!("bitfield of {w} bits spans more than 16 bytes"),
                    ));
                }
                Some((abs, w))
            }
        };
        let offset = usize::try_from(member_bits / 8).map_err(|_| bad(path, "offset too large"))?;
        rec.fields.push(Field {
            name: m.name.as_str().into(),
            json_key: format!("{}:", serde_json::Value::from(m.name.as_str())).into(),
            offset,
            bits,
            node,
            alts: my_alts,
        });
        path.truncate(at);
    }
    Ok(())
}

/// The union alternative decode shows: the first member as large as the
/// union (so re-encoding covers every byte), else the first largest one.
/// Unnamed non-struct members (padding) are never chosen.
pub(crate) fn choose_alternative(members: &[Member], union_size: u32) -> Option<usize> {
    let usable = |m: &Member| {
        !m.name.is_empty() || matches!(m.ty.kind, TypeKind::Struct { .. } | TypeKind::Union { .. })
    };
    let cands = members.iter().enumerate().filter(|(_, m)| usable(m));
    if let Some((i, _)) = cands.clone().find(|(_, m)| m.ty.size == union_size) {
        return Some(i);
    }
    let max = cands.clone().map(|(_, m)| m.ty.size).max()?;
    cands
        .clone()
        .find(|(_, m)| m.ty.size == max)
        .map(|(i, _)| i)
}

fn alt_description(m: &Member) -> String {
    if !m.name.is_empty() {
        return m.name.clone();
    }
    fn names(t: &TypeNode, out: &mut Vec<String>) {
        if let TypeKind::Struct { members } | TypeKind::Union { members } = &t.kind {
            for m in members {
                if m.name.is_empty() {
                    names(&m.ty, out);
                } else {
                    out.push(m.name.clone());
                }
            }
        }
    }
    let mut out = Vec::new();
    names(&m.ty, &mut out);
    format!("{{{}}}", out.join(", "))
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

fn mismatch(ty: &str, expected: impl Into<String>, v: &Value) -> Fault {
    Fault::new(FaultKind::Mismatch {
        ty: ty.to_string(),
        expected: expected.into(),
        given: v.describe(),
    })
}

fn store(buf: &mut [u8], bits: u128, order: ByteOrder) {
    let n = buf.len();
    match order {
        ByteOrder::Little => buf.copy_from_slice(&bits.to_le_bytes()[..n]),
        ByteOrder::Big => buf.copy_from_slice(&bits.to_be_bytes()[16 - n..]),
    }
}

pub(crate) fn load(buf: &[u8], order: ByteOrder) -> u128 {
    let mut b = [0u8; 16];
    let n = buf.len();
    match order {
        ByteOrder::Little => {
            b[..n].copy_from_slice(buf);
            u128::from_le_bytes(b)
        }
        ByteOrder::Big => {
            b[16 - n..].copy_from_slice(buf);
            u128::from_be_bytes(b)
        }
    }
}

/// The bytes of a bitfield window and the shift of the field within it.
/// Little-endian targets number bits from the least significant bit of the
/// little-endian bytes; big-endian ones from the most significant bit of
/// the first byte, the field's most significant bit first (clang, GCC and
/// the kernel's BTF agree on both).
fn window(bit_off: u32, width: u32, order: ByteOrder) -> (usize, usize, u32) {
    let first = (bit_off / 8) as usize;
    let last = ((bit_off + width - 1) / 8) as usize;
    let k = last - first + 1;
    let shift = match order {
        ByteOrder::Little => bit_off % 8,
        ByteOrder::Big => (k as u32) * 8 - bit_off % 8 - width,
    };
    (first, last + 1, shift)
}

pub(crate) fn load_bits(buf: &[u8], bit_off: u32, width: u32, order: ByteOrder) -> u128 {
    let (a, b, shift) = window(bit_off, width, order);
    (load(&buf[a..b], order) >> shift) & mask(width)
}

fn store_bits(buf: &mut [u8], bit_off: u32, width: u32, order: ByteOrder, v: u128) {
    let (a, b, shift) = window(bit_off, width, order);
    let m = mask(width) << shift;
    let w = (load(&buf[a..b], order) & !m) | ((v << shift) & m);
    store(&mut buf[a..b], w, order);
}

/// What an integer input looks like in messages.
fn given_number(v: &Value, w: Wide) -> String {
    match v {
        Value::String(s) if s.trim() != w.to_string() => format!("{s:?} (= {w})"),
        _ => w.to_string(),
    }
}

fn field_ty(ty: &str, width: u32, size: usize) -> String {
    if width as usize == size * 8 {
        ty.to_string()
    } else {
        format!("{width}-bit field of {ty}")
    }
}

const INT_FORMS: &str = "an integer (10, -3, 0x1f, 0o17, 0b101, or as a string)";

fn int_bits(n: &IntNode, v: &Value, width: u32) -> Result<u128, Fault> {
    let w = match v {
        Value::Int(i) => Wide::from_i128(*i),
        Value::String(s) => match sugar::parse_int_text(s) {
            Some(w) => w,
            None => {
                let mut expected = INT_FORMS.to_string();
                if n.size == 4 && width == 32 {
                    expected.push_str(" or an IPv4 address");
                }
                return Err(mismatch(&n.ty, expected, v));
            }
        },
        Value::Null => return Ok(0),
        _ => {
            let mut expected = INT_FORMS.to_string();
            if n.size == 16 {
                expected.push_str("; write values beyond 64 bits as strings");
            }
            return Err(mismatch(&field_ty(&n.ty, width, n.size), expected, v));
        }
    };
    w.to_bits(width, n.signed).ok_or_else(|| {
        Fault::new(FaultKind::OutOfRange {
            given: given_number(v, w),
            ty: field_ty(&n.ty, width, n.size),
            range: range_text(width, n.signed),
        })
    })
}

fn enum_bits(e: &EnumNode, v: &Value, width: u32) -> Result<u128, Fault> {
    let number = |w: Wide| {
        w.to_bits(width, e.signed).ok_or_else(|| {
            Fault::new(FaultKind::OutOfRange {
                given: given_number(v, w),
                ty: field_ty(&e.ty, width, e.size),
                range: range_text(width, e.signed),
            })
        })
    };
    match v {
        Value::String(s) => {
            if let Some((_, val)) = e.variants.iter().find(|(name, _)| **name == **s) {
                return Ok((*val as u128) & mask(width));
            }
            match sugar::parse_int_text(s) {
                Some(w) => number(w),
                None => Err(Fault::new(FaultKind::UnknownVariant {
                    ty: e.ty.to_string(),
                    name: s.clone(),
                    variants: e.variants.iter().map(|(n, _)| n.to_string()).collect(),
                })),
            }
        }
        Value::Int(i) => number(Wide::from_i128(*i)),
        Value::Null => Ok(0),
        _ => Err(mismatch(&e.ty, "a variant name or a number", v)),
    }
}

fn bool_bits(s: &Scalar, v: &Value, width: u32) -> Result<u128, Fault> {
    match v {
        Value::Bool(b) => Ok(u128::from(*b)),
        Value::Null => Ok(0),
        // Any stored number, so every byte pattern round-trips.
        Value::Int(i) => Wide::from_i128(*i).to_bits(width, false).ok_or_else(|| {
            Fault::new(FaultKind::OutOfRange {
                given: i.to_string(),
                ty: field_ty(&s.ty, width, s.size),
                range: range_text(width, false),
            })
        }),
        _ => Err(mismatch(&s.ty, "true or false", v)),
    }
}

/// Integer bits of a scalar node given as a bitfield of `width` bits.
fn scalar_bits(n: &Node, v: &Value, width: u32) -> Result<u128, Fault> {
    match n {
        Node::Int(i) => int_bits(i, v, width),
        Node::Enum(e) => enum_bits(e, v, width),
        Node::Bool(b) => bool_bits(b, v, width),
        // Rejected when compiling.
        _ => Ok(0),
    }
}

fn encode_float(s: &Scalar, v: &Value, buf: &mut [u8]) -> Result<(), Fault> {
    const FORMS: &str = "a number, \"nan\", \"inf\", \"-inf\" or \"0x...\" raw bits";
    let x = match v {
        Value::Float(f) => *f,
        Value::Int(i) => {
            let f = *i as f64;
            if f as i128 != *i {
                return Err(Fault::new(FaultKind::OutOfRange {
                    given: i.to_string(),
                    ty: s.ty.to_string(),
                    range: "integers up to 2^53 exactly".into(),
                }));
            }
            f
        }
        Value::Null => 0.0,
        Value::String(t) => {
            let lower = t.trim().to_ascii_lowercase();
            if lower.starts_with("0x") {
                let w = sugar::parse_int_text(&lower).ok_or_else(|| mismatch(&s.ty, FORMS, v))?;
                let bits = w.to_bits(s.size as u32 * 8, false).ok_or_else(|| {
                    Fault::new(FaultKind::OutOfRange {
                        given: t.clone(),
                        ty: format!("{} raw bits", s.ty),
                        range: range_text(s.size as u32 * 8, false),
                    })
                })?;
                store(buf, bits, s.order);
                return Ok(());
            }
            match lower.as_str() {
                "nan" => f64::NAN,
                "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
                "-inf" | "-infinity" => f64::NEG_INFINITY,
                _ => lower
                    .parse::<f64>()
                    .map_err(|_| mismatch(&s.ty, FORMS, v))?,
            }
        }
        _ => return Err(mismatch(&s.ty, FORMS, v)),
    };
    if s.size == 4 {
        let f = x as f32;
        if x.is_finite() && !f.is_finite() {
            return Err(Fault::new(FaultKind::OutOfRange {
                given: x.to_string(),
                ty: s.ty.to_string(),
                range: format!("{}..={}", f32::MIN, f32::MAX),
            }));
        }
        let bits = if x.is_nan() {
            f32::NAN.to_bits()
        } else {
            f.to_bits()
        };
        store(buf, u128::from(bits), s.order);
    } else {
        let bits = if x.is_nan() {
            f64::NAN.to_bits()
        } else {
            x.to_bits()
        };
        store(buf, u128::from(bits), s.order);
    }
    Ok(())
}

pub(crate) fn encode(n: &Node, v: &Value, buf: &mut [u8]) -> Result<(), Fault> {
    match n {
        Node::Int(i) => {
            if let (4, Value::String(s)) = (i.size, v) {
                if let Some(octets) = sugar::parse_ipv4(s) {
                    // Addresses are in network order in memory, whatever
                    // the integer's byte order.
                    buf.copy_from_slice(&octets);
                    return Ok(());
                }
            }
            let bits = int_bits(i, v, i.size as u32 * 8)?;
            store(buf, bits, i.order);
            Ok(())
        }
        Node::Enum(e) => {
            let bits = enum_bits(e, v, e.size as u32 * 8)?;
            store(buf, bits, e.order);
            Ok(())
        }
        Node::Bool(b) => {
            let bits = bool_bits(b, v, b.size as u32 * 8)?;
            store(buf, bits, b.order);
            Ok(())
        }
        Node::Float(f) => encode_float(f, v, buf),
        Node::Record(r) => encode_record(r, v, buf),
        Node::Array(a) => encode_array(a, v, buf),
        Node::Raw(r) => encode_raw(r, v, buf),
    }
}

/// `encode(n, &Value::Int(i), buf)` without building the value; `None` on
/// any error (the caller then takes the general path for the message).
pub(crate) fn encode_int(n: &Node, i: i128, buf: &mut [u8]) -> Option<()> {
    match n {
        Node::Int(x) => {
            let bits = Wide::from_i128(i).to_bits(x.size as u32 * 8, x.signed)?;
            store(buf, bits, x.order);
            Some(())
        }
        _ => encode(n, &Value::Int(i), buf).ok(),
    }
}

/// `encode(n, &Value::String(s), buf)`, allocating only where the general
/// code needs the value; `None` on any error.
pub(crate) fn encode_str(n: &Node, s: &str, buf: &mut [u8]) -> Option<()> {
    match n {
        Node::Int(x) if x.size == 4 => match sugar::parse_ipv4(s) {
            Some(octets) => {
                buf.copy_from_slice(&octets);
                Some(())
            }
            None => encode(n, &Value::String(s.to_string()), buf).ok(),
        },
        // The value is only read for error messages, and errors are dropped.
        Node::Array(a) if a.kind == ArrKind::Bytes => {
            encode_byte_string(a, s, &Value::Null, buf).ok()
        }
        _ => encode(n, &Value::String(s.to_string()), buf).ok(),
    }
}

impl Record {
    /// The field called `name`, trying `hint` (the field after the previous
    /// match: values usually list fields in declaration order) first.
    pub(crate) fn find(&self, name: &str, hint: usize) -> Option<usize> {
        if self.fields.get(hint).is_some_and(|f| *f.name == *name) {
            return Some(hint);
        }
        match &self.index {
            Some(ix) => ix.get(name).copied(),
            None => self.fields.iter().position(|f| *f.name == *name),
        }
    }

    /// [`Record::find`] for a name given as bytes (not UTF-8: no field).
    pub(crate) fn find_bytes(&self, name: &[u8], hint: usize) -> Option<usize> {
        if self
            .fields
            .get(hint)
            .is_some_and(|f| f.name.as_bytes() == name)
        {
            return Some(hint);
        }
        match &self.index {
            Some(ix) => ix.get(std::str::from_utf8(name).ok()?).copied(),
            None => self.fields.iter().position(|f| f.name.as_bytes() == name),
        }
    }

    /// Whether some fields are alternatives of a union.
    pub(crate) fn has_unions(&self) -> bool {
        !self.groups.is_empty()
    }

    fn field_names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.to_string()).collect()
    }
}

fn encode_record(r: &Record, v: &Value, buf: &mut [u8]) -> Result<(), Fault> {
    let m = match v {
        Value::Map(m) => m,
        Value::Null => return Ok(()),
        _ => {
            let expected = if r.union {
                format!(
                    "a mapping with exactly one of {}",
                    r.groups[0].alts.join(", ")
                )
            } else {
                "a mapping of field names to values".to_string()
            };
            return Err(mismatch(&r.ty, expected, v));
        }
    };
    let mut chosen = vec![NONE; r.groups.len()];
    let mut hint = 0;
    for (k, fv) in m.iter() {
        let i = r.find(k, hint).ok_or_else(|| {
            Fault::new(FaultKind::UnknownField {
                field: k.into(),
                valid: r.field_names(),
            })
        })?;
        hint = i + 1;
        if matches!(fv, Value::Null) {
            // `field: null` is the same as leaving it out (zero), also for
            // counting which union member was given.
            continue;
        }
        let f = &r.fields[i];
        for &(g, a) in &f.alts {
            let c = &mut chosen[usize::from(g)];
            if *c == NONE {
                *c = a;
            } else if *c != a {
                let grp = &r.groups[usize::from(g)];
                let mut given = vec![
                    grp.alts[usize::from(*c)].clone(),
                    grp.alts[usize::from(a)].clone(),
                ];
                given.sort_by_key(|name| grp.alts.iter().position(|x| x == name));
                return Err(Fault::new(FaultKind::UnionChoice {
                    ty: grp.ty.to_string(),
                    members: grp.alts.clone(),
                    given,
                }));
            }
        }
        encode_field(r, f, fv, buf).map_err(|e| e.at_field(k))?;
    }
    if r.union && chosen.first() == Some(&NONE) {
        let grp = &r.groups[0];
        return Err(Fault::new(FaultKind::UnionChoice {
            ty: grp.ty.to_string(),
            members: grp.alts.clone(),
            given: Vec::new(),
        }));
    }
    Ok(())
}

impl Node {
    /// Size in bytes.
    pub(crate) fn size(&self) -> usize {
        node_size(self)
    }
}

fn node_size(n: &Node) -> usize {
    match n {
        Node::Int(i) => i.size,
        Node::Enum(e) => e.size,
        Node::Bool(s) | Node::Float(s) | Node::Raw(s) => s.size,
        Node::Record(r) => r.size,
        Node::Array(a) => a.len * a.elem_size,
    }
}

pub(crate) fn encode_field(r: &Record, f: &Field, v: &Value, buf: &mut [u8]) -> Result<(), Fault> {
    match f.bits {
        None => {
            let end = f.offset + node_size(&f.node);
            encode(&f.node, v, &mut buf[f.offset..end])
        }
        Some((off, width)) => {
            let bits = scalar_bits(&f.node, v, width)?;
            store_bits(buf, off, width, r.bit_order, bits);
            Ok(())
        }
    }
}

fn too_long(ty: &str, max: usize, given: usize, unit: &'static str) -> Fault {
    Fault::new(FaultKind::TooLong {
        ty: ty.to_string(),
        max,
        given,
        unit,
    })
}

fn encode_array(a: &ArrayNode, v: &Value, buf: &mut [u8]) -> Result<(), Fault> {
    match v {
        Value::Null => Ok(()),
        Value::List(items) => {
            if items.len() > a.len {
                return Err(too_long(&a.ty, a.len, items.len(), "elements"));
            }
            for (i, (item, slot)) in items
                .iter()
                .zip(buf.chunks_exact_mut(a.elem_size.max(1)))
                .enumerate()
            {
                encode(&a.elem, item, slot).map_err(|e| e.at_index(i))?;
            }
            Ok(())
        }
        Value::String(s) if a.kind == ArrKind::Text => {
            if s.len() > a.len {
                return Err(too_long(&a.ty, a.len, s.len(), "bytes"));
            }
            if s.contains('\0') {
                return Err(mismatch(
                    &a.ty,
                    "a string without NUL bytes (the rest is NUL-padded)",
                    v,
                ));
            }
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Ok(())
        }
        Value::String(s) if a.kind == ArrKind::Bytes => encode_byte_string(a, s, v, buf),
        _ => Err(mismatch(&a.ty, array_forms(a), v)),
    }
}

fn array_forms(a: &ArrayNode) -> String {
    match a.kind {
        ArrKind::Text => format!(
            "a string of up to {} bytes or a list of up to {} numbers",
            a.len, a.len
        ),
        ArrKind::Bytes => format!(
            "a list of up to {} numbers, a 0x hex string{}",
            a.len,
            match a.len {
                n if n >= 16 => ", an IPv4/IPv6 address or a MAC address",
                n if n >= 6 => ", an IPv4 address or a MAC address",
                n if n >= 4 => " or an IPv4 address",
                _ => "",
            }
        ),
        ArrKind::Other => format!("a list of up to {} elements", a.len),
    }
}

fn encode_byte_string(a: &ArrayNode, s: &str, v: &Value, buf: &mut [u8]) -> Result<(), Fault> {
    let t = s.trim();
    let need = |n: usize, what: &str| {
        if a.len < n {
            Err(mismatch(
                &a.ty,
                format!("{} ({what} needs {n} bytes)", array_forms(a)),
                v,
            ))
        } else {
            Ok(())
        }
    };
    if t.starts_with("0x") || t.starts_with("0X") {
        let bytes = sugar::parse_hex_bytes(t)
            .map_err(|why| mismatch(&a.ty, format!("{} ({why})", array_forms(a)), v))?;
        if bytes.len() > a.len {
            return Err(too_long(&a.ty, a.len, bytes.len(), "bytes"));
        }
        buf[..bytes.len()].copy_from_slice(&bytes);
    } else if let Some(o) = sugar::parse_ipv4(t) {
        need(4, "an IPv4 address")?;
        buf[..4].copy_from_slice(&o);
    } else if let Some(o) = sugar::parse_ipv6(t) {
        need(16, "an IPv6 address")?;
        buf[..16].copy_from_slice(&o);
    } else if let Some(o) = sugar::parse_mac(t) {
        need(6, "a MAC address")?;
        buf[..6].copy_from_slice(&o);
    } else {
        return Err(mismatch(&a.ty, array_forms(a), v));
    }
    Ok(())
}

fn encode_raw(r: &Scalar, v: &Value, buf: &mut [u8]) -> Result<(), Fault> {
    let forms = || format!("a 0x hex string or a list of exactly {} bytes", r.size);
    match v {
        Value::Null => Ok(()),
        Value::String(s) => {
            let bytes = sugar::parse_hex_bytes(s.trim())
                .map_err(|why| mismatch(&r.ty, format!("{} ({why})", forms()), v))?;
            if bytes.len() != r.size {
                return Err(mismatch(
                    &r.ty,
                    forms(),
                    &Value::String(format!("{} bytes", bytes.len())),
                ));
            }
            buf.copy_from_slice(&bytes);
            Ok(())
        }
        Value::List(items) => {
            if items.len() != r.size {
                return Err(mismatch(&r.ty, forms(), v));
            }
            let byte = IntNode {
                size: 1,
                signed: false,
                order: ByteOrder::Little,
                format: None,
                ty: "byte".into(),
            };
            for (i, (item, slot)) in items.iter().zip(buf.iter_mut()).enumerate() {
                *slot = int_bits(&byte, item, 8).map_err(|e| e.at_index(i))? as u8;
            }
            Ok(())
        }
        _ => Err(mismatch(&r.ty, forms(), v)),
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// An integer as decode shows it: a number within 64 bits, beyond that a
/// decimal string (YAML and JSON readers lose such numbers).
fn int_value(bits: u128, width: u32, signed: bool) -> Value {
    if signed {
        let i = sign_extend(bits, width);
        if i64::try_from(i).is_ok() {
            Value::Int(i)
        } else {
            Value::String(i.to_string())
        }
    } else if u64::try_from(bits).is_ok() {
        Value::Int(bits as i128)
    } else {
        Value::String(bits.to_string())
    }
}

fn hex_int(bits: u128, width: u32, signed: bool) -> Value {
    if signed {
        let i = sign_extend(bits, width);
        if i < 0 {
            return Value::String(format!("-{:#x}", i.unsigned_abs()));
        }
    }
    Value::String(format!("{bits:#x}"))
}

pub(crate) fn scalar_value(n: &Node, bits: u128, width: u32) -> Value {
    match n {
        Node::Int(i) if i.format == Some(Format::Hex) => hex_int(bits, width, i.signed),
        Node::Int(i) => int_value(bits, width, i.signed),
        Node::Enum(e) => {
            let m = mask(width);
            match e
                .variants
                .iter()
                .find(|(_, val)| (*val as u128) & m == bits)
            {
                Some((name, _)) => Value::String(name.to_string()),
                None => int_value(bits, width, e.signed),
            }
        }
        Node::Bool(_) => match bits {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => int_value(bits, width, false),
        },
        _ => Value::Null,
    }
}

fn decode_float(s: &Scalar, bytes: &[u8]) -> Value {
    let bits = load(bytes, s.order);
    let (x, canonical_nan) = if s.size == 4 {
        let b = bits as u32;
        (f64::from(f32::from_bits(b)), b == f32::NAN.to_bits())
    } else {
        let b = bits as u64;
        (f64::from_bits(b), b == f64::NAN.to_bits())
    };
    if x.is_finite() {
        Value::Float(x)
    } else if x.is_nan() {
        if canonical_nan {
            Value::from("nan")
        } else {
            Value::String(format!("{bits:#x}"))
        }
    } else if x > 0.0 {
        Value::from("inf")
    } else {
        Value::from("-inf")
    }
}

pub(crate) fn decode(n: &Node, bytes: &[u8]) -> Value {
    match n {
        Node::Int(i) => {
            if i.size == 4 && i.format == Some(Format::Ip) {
                return Value::String(
                    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
                );
            }
            scalar_value(n, load(bytes, i.order), i.size as u32 * 8)
        }
        Node::Enum(e) => scalar_value(n, load(bytes, e.order), e.size as u32 * 8),
        Node::Bool(b) => scalar_value(n, load(bytes, b.order), b.size as u32 * 8),
        Node::Float(f) => decode_float(f, bytes),
        Node::Raw(_) => Value::String(sugar::hex_string(bytes)),
        Node::Record(r) => {
            let mut m = Map::with_capacity(r.decode.len());
            for &i in &r.decode {
                let f = &r.fields[i];
                let v = match f.bits {
                    None => decode(&f.node, &bytes[f.offset..f.offset + node_size(&f.node)]),
                    Some((off, width)) => {
                        scalar_value(&f.node, load_bits(bytes, off, width, r.bit_order), width)
                    }
                };
                m.push_unique(f.name.clone(), v);
            }
            Value::Map(m)
        }
        Node::Array(a) => decode_array(a, bytes),
    }
}

/// The text of a `char[N]`: UTF-8 up to the first NUL, all zero after.
fn text_of(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    if bytes[end..].iter().any(|b| *b != 0) {
        return None;
    }
    std::str::from_utf8(&bytes[..end]).ok().map(str::to_string)
}

fn decode_array(a: &ArrayNode, bytes: &[u8]) -> Value {
    if a.kind != ArrKind::Other {
        match a.format {
            Some(Format::Hex) => return Value::String(sugar::hex_string(bytes)),
            Some(Format::Ip) if a.len == 4 => {
                return Value::String(
                    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
                )
            }
            Some(Format::Ip) if a.len == 16 => {
                if bytes[4..].iter().all(|b| *b == 0) {
                    return Value::String(
                        Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
                    );
                }
                let mut o = [0u8; 16];
                o.copy_from_slice(bytes);
                return Value::String(Ipv6Addr::from(o).to_string());
            }
            Some(Format::Mac) if a.len == 6 => return Value::String(sugar::mac_string(bytes)),
            _ => {}
        }
        if a.kind == ArrKind::Text || a.format == Some(Format::String) {
            if let Some(s) = text_of(bytes) {
                return Value::String(s);
            }
        }
    }
    let es = a.elem_size;
    let n = a.decoded_len(bytes);
    Value::List(
        (0..n)
            .map(|i| decode(&a.elem, &bytes[i * es..(i + 1) * es]))
            .collect(),
    )
}

impl ArrayNode {
    /// How many elements decode shows: all, or without the trailing all-zero
    /// ones when trimming.
    pub(crate) fn decoded_len(&self, bytes: &[u8]) -> usize {
        let es = self.elem_size;
        let mut n = self.len;
        if self.trim {
            while n > 0
                && bytes[(n - 1) * es..n * es]
                    .iter()
                    .zip(self.elem_mask.iter())
                    .all(|(b, m)| b & m == 0)
            {
                n -= 1;
            }
        }
        n
    }
}

fn mark(n: &Node, m: &mut [u8]) {
    match n {
        Node::Record(r) => {
            for &i in &r.decode {
                let f = &r.fields[i];
                match f.bits {
                    None => {
                        let end = f.offset + node_size(&f.node);
                        mark(&f.node, &mut m[f.offset..end]);
                    }
                    Some((off, width)) => store_bits(m, off, width, r.bit_order, mask(width)),
                }
            }
        }
        Node::Array(a) => {
            for slot in m.chunks_exact_mut(a.elem_size.max(1)) {
                mark(&a.elem, slot);
            }
        }
        _ => m.fill(0xff),
    }
}

// ---------------------------------------------------------------------------
// Per-CPU helpers
// ---------------------------------------------------------------------------

/// Whether `v` is a list of per-CPU values (rather than one value) for `n`.
pub(crate) fn is_percpu_list(n: &Node, v: &Value) -> bool {
    let Value::List(items) = v else { return false };
    match n {
        Node::Array(a) => items.first().is_some_and(|first| is_array_value(a, first)),
        _ => true,
    }
}

/// Whether `v` is shaped like a whole value of array `a` (rather than like
/// one of its elements).
fn is_array_value(a: &ArrayNode, v: &Value) -> bool {
    match v {
        Value::List(inner) => match &a.elem {
            Node::Array(ea) => inner.first().is_none_or(|f| is_array_value(ea, f)),
            _ => true,
        },
        Value::String(_) => a.kind != ArrKind::Other,
        _ => false,
    }
}
