//! Hand-built BTF types for the unit tests of the plan's files: the few
//! shapes they need, named as `bpftool btf dump` would show them.

use ebpf_sdk_schema::{ByteOrder, EnumVariant, Format, Member, TypeKind, TypeNode};

use super::{CodecOptions, Plan};
use crate::Value;

fn node(name: &str, size: u32, kind: TypeKind) -> TypeNode {
    TypeNode {
        name: name.into(),
        typedefs: Vec::new(),
        size,
        kind,
    }
}

/// An integer type called `name`.
pub(super) fn int(name: &str, size: u32, signed: bool) -> TypeNode {
    let kind = TypeKind::Int {
        signed,
        char: false,
        byte_order: None,
        format: None,
    };
    node(name, size, kind)
}

/// `__u8`.
pub(super) fn u8_t() -> TypeNode {
    int("__u8", 1, false)
}

/// `__u16`.
pub(super) fn u16_t() -> TypeNode {
    int("__u16", 2, false)
}

/// `__u32`.
pub(super) fn u32_t() -> TypeNode {
    int("__u32", 4, false)
}

/// `char`.
pub(super) fn char_type() -> TypeNode {
    let kind = TypeKind::Int {
        signed: true,
        char: true,
        byte_order: None,
        format: None,
    };
    node("char", 1, kind)
}

/// `t` with the display hint `format`.
pub(super) fn hinted(mut t: TypeNode, hint: Format) -> TypeNode {
    if let TypeKind::Int { format, .. } | TypeKind::Array { format, .. } = &mut t.kind {
        *format = Some(hint);
    }
    t
}

/// `_Bool`.
pub(super) fn bool_type() -> TypeNode {
    node("_Bool", 1, TypeKind::Bool)
}

/// `float` (4 bytes) or `double` (8).
pub(super) fn float_type(size: u32) -> TypeNode {
    node(
        if size == 4 { "float" } else { "double" },
        size,
        TypeKind::Float,
    )
}

/// `enum name` of `size` bytes.
pub(super) fn enum_type(name: &str, size: u32, signed: bool, names: &[(&str, i128)]) -> TypeNode {
    let variants = names
        .iter()
        .map(|&(name, value)| EnumVariant {
            name: name.into(),
            value,
        })
        .collect();
    node(name, size, TypeKind::Enum { signed, variants })
}

/// `element[len]`.
pub(super) fn array(element: TypeNode, len: u32) -> TypeNode {
    let name = format!("{}[{len}]", element.name);
    let kind = TypeKind::Array {
        len,
        element: Box::new(element.clone()),
        format: None,
    };
    node(&name, element.size * len, kind)
}

fn member(name: &str, bit_offset: u32, bit_size: Option<u32>, ty: TypeNode) -> Member {
    let name = name.to_string();
    let offset = bit_offset / 8;
    Member {
        name,
        offset,
        bit_offset,
        bit_size,
        ty,
    }
}

/// A member at byte `offset`; an empty `name` is an anonymous member.
pub(super) fn at(name: &str, offset: u32, ty: TypeNode) -> Member {
    member(name, offset * 8, None, ty)
}

/// A bitfield of `width` bits at bit `bit_offset` of its struct.
pub(super) fn bits(name: &str, bit_offset: u32, width: u32, ty: TypeNode) -> Member {
    member(name, bit_offset, Some(width), ty)
}

/// `struct name` of `size` bytes.
pub(super) fn strukt(name: &str, size: u32, members: Vec<Member>) -> TypeNode {
    node(name, size, TypeKind::Struct { members })
}

/// `union name` of `size` bytes.
pub(super) fn union(name: &str, size: u32, members: Vec<Member>) -> TypeNode {
    node(name, size, TypeKind::Union { members })
}

/// `struct s { __u32 k; union { __u16 x; struct { __u8 p; __u8 q; }; }; }`:
/// an anonymous union whose second alternative is an anonymous struct.
pub(super) fn anonymous_union() -> TypeNode {
    let pq = vec![at("p", 0, u8_t()), at("q", 1, u8_t())];
    let pair = strukt("struct (anon)", 2, pq);
    let alts = union(
        "union (anon)",
        2,
        vec![at("x", 0, u16_t()), at("", 0, pair)],
    );
    strukt("struct s", 8, vec![at("k", 0, u32_t()), at("", 4, alts)])
}

/// `struct s { __u8 a; __u16 b; __u32 c:3; }`: a hole at byte 1, a bitfield
/// in byte 4 and three bytes of tail padding.
pub(super) fn with_bitfield() -> TypeNode {
    let fields = vec![
        at("a", 0, u8_t()),
        at("b", 2, u16_t()),
        bits("c", 32, 3, u32_t()),
    ];
    strukt("struct s", 8, fields)
}

/// The plan of `t` as a map's value on a target of byte order `order`.
pub(super) fn plan_for(t: &TypeNode, order: ByteOrder) -> Plan {
    Plan::new("value", t, order, &CodecOptions::default()).expect("a usable test type")
}

/// The plan of `t` as a map's value on a little-endian target.
pub(super) fn plan(t: &TypeNode) -> Plan {
    plan_for(t, ByteOrder::Little)
}

/// A value written as YAML.
pub(super) fn yaml(text: &str) -> Value {
    crate::parse_yaml(text).expect("test YAML")
}
