//! Compiling: a [`TypeNode`] into the [`Node`] tree, checking that the
//! layout is one the codec can use (members inside their struct, bitfields
//! no wider than their type, unique names, bounded nesting) and choosing
//! which alternative of each union decode shows.

use ebpf_sdk_schema::{ByteOrder, Format, Member, TypeKind, TypeNode};

use super::decode::mark;
use super::node::{
    AddrText, ArrKind, ArrayNode, EnumNode, Field, Group, IntNode, Node, Record, Scalar, NONE,
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
    let addr = match (&elem, kind) {
        (Node::Int(_), ArrKind::Other) => addr_text(t),
        _ => None,
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
        addr,
        ty: t.display_name().into(),
    })
}

/// The address text type `t` takes, if its whole job is holding an
/// address: a 4- or 16-byte integer or array of integers, or a struct or
/// union made of nothing but such views of the same bytes (`struct
/// in6_addr`, `struct in_addr`, `union { __be32 vip; __be32 vipv6[4]; }`).
pub(crate) fn addr_text(t: &TypeNode) -> Option<AddrText> {
    let by_size = |size| match size {
        4 => Some(AddrText::V4),
        16 => Some(AddrText::V6),
        _ => None,
    };
    let whole = match &t.kind {
        TypeKind::Int { .. } => by_size(t.size)?,
        TypeKind::Array {
            element,
            len,
            format,
        } => {
            // Integers, not text (`char[N]` or a string-hinted byte array).
            let ints = matches!(element.kind, TypeKind::Int { char: false, .. })
                && *format != Some(Format::String)
                && *len > 0;
            if !ints {
                return None;
            }
            by_size(t.size)?
        }
        TypeKind::Struct { members } => {
            let [m] = members.as_slice() else {
                return None;
            };
            if m.offset != 0 || m.bit_size.is_some() || m.ty.size != t.size {
                return None;
            }
            addr_text(&m.ty)?;
            by_size(t.size)?
        }
        TypeKind::Union { members } => {
            let views = !members.is_empty()
                && members
                    .iter()
                    .all(|m| m.offset == 0 && m.bit_size.is_none() && addr_text(&m.ty).is_some())
                && members.iter().any(|m| m.ty.size == t.size);
            if !views {
                return None;
            }
            by_size(t.size)?
        }
        _ => return None,
    };
    Some(match whole {
        AddrText::V6 if t.name == "struct in6_addr" => AddrText::In6,
        other => other,
    })
}

/// Whether decode shows `t` as address text: the C type is an address
/// (`struct in6_addr`, `struct in_addr`) and holds nothing else.
fn shown_as_address(t: &TypeNode) -> bool {
    matches!(
        (t.name.as_str(), addr_text(t)),
        ("struct in6_addr", Some(AddrText::In6)) | ("struct in_addr", Some(AddrText::V4))
    )
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
        addr: addr_text(t),
        show_addr: shown_as_address(t),
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
            json_key: format!(",{}:", serde_json::Value::from(m.name.as_str())).into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::*;
    use crate::plan::{CodecOptions, Plan};

    /// Why `t` cannot be compiled, as the user reads it.
    fn refused(t: &TypeNode) -> String {
        match Plan::new("value", t, ByteOrder::Little, &CodecOptions::default()) {
            Ok(_) => panic!("{} compiled", t.name),
            Err(e) => e.to_string(),
        }
    }

    fn record(t: &TypeNode) -> Record {
        match plan(t).node() {
            Node::Record(r) => (**r).clone(),
            other => panic!("not a record: {other:?}"),
        }
    }

    #[test]
    fn members_beyond_their_struct() {
        let t = strukt("struct s", 4, vec![at("a", 2, u32_t())]);
        assert_eq!(
            refused(&t),
            "value.a: unusable schema: member `a` ends at bit 48, beyond struct s (4 B)"
        );
        let t = strukt("struct s", 4, vec![bits("f", 30, 4, u32_t())]);
        assert_eq!(
            refused(&t),
            "value.f: unusable schema: member `f` ends at bit 34, beyond struct s (4 B)"
        );
    }

    #[test]
    fn bitfields_wider_than_their_type() {
        let t = strukt("struct s", 4, vec![bits("f", 0, 9, u8_t())]);
        assert_eq!(
            refused(&t),
            "value.f: unusable schema: bitfield of 9 bits in __u8 (1 B)"
        );
        let t = strukt("struct s", 4, vec![bits("f", 0, 0, u8_t())]);
        assert_eq!(
            refused(&t),
            "value.f: unusable schema: bitfield of 0 bits in __u8 (1 B)"
        );
        let inner = strukt("struct in", 1, vec![at("x", 0, u8_t())]);
        let t = strukt("struct s", 4, vec![bits("f", 0, 8, inner)]);
        assert_eq!(
            refused(&t),
            "value.f: unusable schema: bitfield of 8 bits in struct in (1 B)"
        );
        let t = strukt(
            "struct s",
            32,
            vec![bits("w", 4, 128, int("__u128", 16, false))],
        );
        assert_eq!(
            refused(&t),
            "value.w: unusable schema: bitfield of 128 bits spans more than 16 bytes"
        );
    }

    #[test]
    fn duplicate_member_names() {
        let t = strukt(
            "struct s",
            4,
            vec![at("a", 0, u16_t()), at("a", 2, u16_t())],
        );
        assert_eq!(
            refused(&t),
            "value.a: unusable schema: two members named `a`"
        );
        // Members of an anonymous union are the struct's own.
        let anon = union("union (anon)", 2, vec![at("a", 0, u16_t())]);
        let t = strukt("struct s", 4, vec![at("a", 0, u16_t()), at("", 2, anon)]);
        assert_eq!(
            refused(&t),
            "value.a: unusable schema: two members named `a`"
        );
    }

    #[test]
    fn nesting_deeper_than_max_type_depth() {
        let nest = |levels: usize| (0..levels).fold(u8_t(), |t, _| array(t, 1));
        assert!(Plan::new(
            "value",
            &nest(MAX_TYPE_DEPTH),
            ByteOrder::Little,
            &CodecOptions::default()
        )
        .is_ok());
        assert_eq!(
            refused(&nest(MAX_TYPE_DEPTH + 1)),
            format!(
                "value{}: unusable schema: types nested deeper than 64 levels",
                "[]".repeat(MAX_TYPE_DEPTH + 1)
            )
        );
        // Anonymous structs nest without a path of their own.
        let anon = (0..=MAX_TYPE_DEPTH).fold(u8_t(), |t, _| {
            strukt("struct (anon)", 1, vec![at("", 0, t)])
        });
        let t = strukt("struct s", 1, vec![at("", 0, anon)]);
        assert_eq!(
            refused(&t),
            "value: unusable schema: types nested deeper than 64 levels"
        );
    }

    #[test]
    fn arrays_whose_size_is_not_len_times_element() {
        let mut t = array(u16_t(), 3);
        t.size = 5;
        assert_eq!(
            refused(&t),
            "value: unusable schema: array __u16[3] has 3 elements of 2 B but size 5"
        );
    }

    #[test]
    fn union_alternative_choice() {
        // The first member as large as the union ...
        let full = [
            at("a", 0, u16_t()),
            at("b", 0, u32_t()),
            at("c", 0, array(u8_t(), 4)),
        ];
        assert_eq!(choose_alternative(&full, 4), Some(1));
        // (which differs from the first largest only where a member is
        // larger than the union: refused later, but the rule holds) ...
        let oversized = [at("a", 0, int("__u64", 8, false)), at("b", 0, u32_t())];
        assert_eq!(choose_alternative(&oversized, 4), Some(1));
        // ... else the first largest ...
        let short = [at("a", 0, u16_t()), at("b", 0, u8_t()), at("c", 0, u16_t())];
        assert_eq!(choose_alternative(&short, 4), Some(0));
        // ... never unnamed padding, but an anonymous struct is a member.
        let padded = [at("", 0, u32_t()), at("a", 0, u16_t())];
        assert_eq!(choose_alternative(&padded, 4), Some(1));
        let anon = strukt(
            "struct (anon)",
            4,
            vec![at("x", 0, u16_t()), at("y", 2, u16_t())],
        );
        let with_anon = [at("a", 0, u16_t()), at("", 0, anon)];
        assert_eq!(choose_alternative(&with_anon, 4), Some(1));
        assert_eq!(choose_alternative(&[at("", 0, u32_t())], 4), None);
        assert_eq!(choose_alternative(&[], 4), None);
    }

    #[test]
    fn unions_become_groups_of_flattened_fields() {
        let r = record(&anonymous_union());
        let names: Vec<_> = r.fields.iter().map(|f| (&*f.name, f.offset)).collect();
        assert_eq!(names, [("k", 0), ("x", 4), ("p", 4), ("q", 5)]);
        assert!(!r.union);
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].alts, ["x", "{p, q}"]);
        assert_eq!(r.groups[0].chosen, 0);
        // Decode shows `k` and the chosen alternative `x`.
        assert_eq!(r.decode, [0, 1]);
        assert_eq!(r.fields[2].alts, [(0, 1)]);

        let named = union("union u", 4, vec![at("a", 0, u16_t()), at("b", 0, u32_t())]);
        let r = record(&named);
        assert!(r.union);
        assert_eq!(r.decode, [1]);
    }

    #[test]
    fn bitfields_keep_their_absolute_bit_offset() {
        let inner = strukt("struct (anon)", 4, vec![bits("lo", 3, 5, u32_t())]);
        let t = strukt("struct s", 8, vec![at("a", 0, u32_t()), at("", 4, inner)]);
        let r = record(&t);
        assert_eq!(r.fields[1].bits, Some((35, 5)));
        assert_eq!(r.fields[1].offset, 4);
        assert_eq!(r.bit_order, ByteOrder::Little);
    }

    #[test]
    fn scalars_by_size_and_byte_order() {
        assert!(matches!(plan(&int("odd", 3, false)).node(), Node::Raw(_)));
        assert!(matches!(plan(&float_type(8)).node(), Node::Float(_)));
        let mut long_double = float_type(8);
        long_double.size = 16;
        assert!(matches!(plan(&long_double).node(), Node::Raw(_)));
        // `__be32` stays big-endian unless the options force an order.
        let be32 = TypeNode {
            kind: TypeKind::Int {
                signed: false,
                char: false,
                byte_order: Some(ByteOrder::Big),
                format: None,
            },
            ..u32_t()
        };
        let order =
            |options: &CodecOptions| match Plan::new("value", &be32, ByteOrder::Little, options)
                .unwrap()
                .node()
            {
                Node::Int(i) => i.order,
                other => panic!("{other:?}"),
            };
        assert_eq!(order(&CodecOptions::default()), ByteOrder::Big);
        let forced = CodecOptions::default().byte_order(Some(ByteOrder::Little));
        assert_eq!(order(&forced), ByteOrder::Little);
    }

    #[test]
    fn arrays_know_how_decode_shows_them() {
        let kind = |t: TypeNode| match plan(&t).node() {
            Node::Array(a) => (a.kind, a.trim, a.elem_mask.to_vec()),
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(array(char_type(), 4)), (ArrKind::Text, false, vec![]));
        assert_eq!(kind(array(u8_t(), 4)), (ArrKind::Bytes, false, vec![]));
        let text = hinted(array(u8_t(), 4), Format::String);
        assert_eq!(kind(text), (ArrKind::Text, false, vec![]));
        assert_eq!(kind(array(u16_t(), 2)), (ArrKind::Other, false, vec![]));
        // Arrays of structs trim trailing zero elements, padding ignored.
        let padded = strukt("struct e", 4, vec![at("a", 0, u8_t()), at("b", 2, u16_t())]);
        assert_eq!(
            kind(array(padded, 3)),
            (ArrKind::Other, true, vec![0xff, 0, 0xff, 0xff])
        );
    }
}
