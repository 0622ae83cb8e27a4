//! Compiling: a [`TypeNode`] into the [`Node`] tree, checking that the
//! layout is one the codec can use (members inside their struct, bitfields
//! no wider than their type, unique names, bounded nesting) and choosing
//! which alternative of each union decode shows.

use ebpf_sdk_schema::{ByteOrder, Format, Member, TypeKind, TypeNode};

use super::decode::mark;
use super::node::{
    ArrKind, ArrayNode, EnumNode, Field, Group, IntNode, Node, Record, Scalar, NONE,
};
use crate::CodecError;

/// Deepest type nesting a plan accepts (struct in array in struct ...).
pub const MAX_TYPE_DEPTH: usize = 64;

/// Field lookups switch from a linear scan to a hash map above this many fields.
const LINEAR_LOOKUP: usize = 12;

pub(super) struct Cx {
    pub(super) target: ByteOrder,
    pub(super) force: Option<ByteOrder>,
}

fn bad(path: &str, reason: impl Into<String>) -> CodecError {
    CodecError::InvalidSchema {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Refuses types nested deeper than [`MAX_TYPE_DEPTH`].
fn check_depth(path: &str, depth: usize) -> Result<(), CodecError> {
    if depth > MAX_TYPE_DEPTH {
        return Err(bad(
            path,
            format!("types nested deeper than {MAX_TYPE_DEPTH} levels"),
        ));
    }
    Ok(())
}

pub(super) fn compile(
    t: &TypeNode,
    cx: &Cx,
    path: &mut String,
    depth: usize,
) -> Result<Node, CodecError> {
    check_depth(path, depth)?;
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
        } => Node::Array(Box::new(compile_array(
            t, *len, element, *format, cx, path, depth,
        )?)),
    })
}

/// An array of `len` `element`s (`t`), with how decode shows it: as text,
/// as bytes, or as a list trimmed of trailing zero structs.
fn compile_array(
    t: &TypeNode,
    len: u32,
    element: &TypeNode,
    format: Option<Format>,
    cx: &Cx,
    path: &mut String,
    depth: usize,
) -> Result<ArrayNode, CodecError> {
    let size = t.size as usize;
    let len = len as usize;
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
            if *char || format == Some(Format::String) {
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
    Ok(ArrayNode {
        len,
        trim,
        elem_mask,
        elem,
        elem_size,
        kind,
        format,
        ty: t.display_name().into(),
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
    check_depth(path, depth)?;
    let group = if is_union {
        Some(push_group(rec, t, members, path)?)
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
        let bits = bitfield(m, &node, base_bits, path)?;
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

/// Starts the group of alternatives of union `t` in `rec`; its number.
fn push_group(
    rec: &mut Record,
    t: &TypeNode,
    members: &[Member],
    path: &str,
) -> Result<u16, CodecError> {
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
    Ok(g)
}

/// Where member `m` (compiled to `node`) sits as a bitfield: its bit offset
/// from the record start and its width; `None` when it is no bitfield.
fn bitfield(
    m: &Member,
    node: &Node,
    base_bits: u64,
    path: &str,
) -> Result<Option<(u32, u32)>, CodecError> {
    let Some(w) = m.bit_size else {
        return Ok(None);
    };
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
    Ok(Some((abs, w)))
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
