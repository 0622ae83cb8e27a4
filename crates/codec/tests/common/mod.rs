//! Builders for hand-made schemas and hex helpers shared by the tests.
#![allow(dead_code)]

use ebpf_sdk_codec::{parse_yaml, Codec, CodecError, Plan, Value};
use ebpf_sdk_schema::{
    ByteOrder, Document, EnumVariant, Format, MapSchema, Member, Pinning, TypeKind, TypeNode,
};

pub fn int_node(name: &str, typedef: Option<&str>, size: u32, signed: bool) -> TypeNode {
    TypeNode {
        name: name.into(),
        typedefs: typedef.map(|t| vec![t.to_string()]).unwrap_or_default(),
        size,
        kind: TypeKind::Int {
            signed,
            char: false,
            byte_order: None,
            format: None,
        },
    }
}

pub fn u8() -> TypeNode {
    int_node("unsigned char", Some("__u8"), 1, false)
}
pub fn u16() -> TypeNode {
    int_node("unsigned short", Some("__u16"), 2, false)
}
pub fn u32() -> TypeNode {
    int_node("unsigned int", Some("__u32"), 4, false)
}
pub fn u64() -> TypeNode {
    int_node("unsigned long long", Some("__u64"), 8, false)
}
pub fn s8() -> TypeNode {
    int_node("signed char", Some("__s8"), 1, true)
}
pub fn s16() -> TypeNode {
    int_node("short", Some("__s16"), 2, true)
}
pub fn s32() -> TypeNode {
    int_node("int", Some("__s32"), 4, true)
}
pub fn s64() -> TypeNode {
    int_node("long long", Some("__s64"), 8, true)
}
pub fn u128() -> TypeNode {
    int_node("unsigned __int128", Some("__u128"), 16, false)
}
pub fn s128() -> TypeNode {
    int_node("__int128", Some("__s128"), 16, true)
}

pub fn with_format(mut t: TypeNode, f: Format) -> TypeNode {
    match &mut t.kind {
        TypeKind::Int { format, .. } | TypeKind::Array { format, .. } => *format = Some(f),
        _ => panic!("no format on {}", t.name),
    }
    t
}

pub fn be(size: u32) -> TypeNode {
    let (name, td, inner) = match size {
        2 => ("unsigned short", "__be16", "__u16"),
        4 => ("unsigned int", "__be32", "__u32"),
        8 => ("unsigned long long", "__be64", "__u64"),
        _ => panic!("be{size}"),
    };
    TypeNode {
        name: name.into(),
        typedefs: vec![td.into(), inner.into()],
        size,
        kind: TypeKind::Int {
            signed: false,
            char: false,
            byte_order: Some(ByteOrder::Big),
            format: None,
        },
    }
}

pub fn char_() -> TypeNode {
    TypeNode {
        name: "char".into(),
        typedefs: vec![],
        size: 1,
        kind: TypeKind::Int {
            signed: true,
            char: true,
            byte_order: None,
            format: None,
        },
    }
}

pub fn bool_() -> TypeNode {
    TypeNode {
        name: "_Bool".into(),
        typedefs: vec![],
        size: 1,
        kind: TypeKind::Bool,
    }
}

pub fn float(size: u32) -> TypeNode {
    TypeNode {
        name: if size == 4 { "float" } else { "double" }.into(),
        typedefs: vec![],
        size,
        kind: TypeKind::Float,
    }
}

pub fn enum_(name: &str, size: u32, signed: bool, variants: &[(&str, i128)]) -> TypeNode {
    TypeNode {
        name: format!("enum {name}"),
        typedefs: vec![],
        size,
        kind: TypeKind::Enum {
            signed,
            variants: variants
                .iter()
                .map(|(n, v)| EnumVariant {
                    name: n.to_string(),
                    value: *v,
                })
                .collect(),
        },
    }
}

pub fn opaque(size: u32) -> TypeNode {
    TypeNode {
        name: format!("opaque[{size}]"),
        typedefs: vec![],
        size,
        kind: TypeKind::Opaque,
    }
}

pub fn array(elem: TypeNode, len: u32) -> TypeNode {
    let base = elem.display_name().to_string();
    // `T[a][b]`: the outer length goes first after the base name.
    let name = match base.find('[') {
        Some(i) => format!("{}[{len}]{}", &base[..i], &base[i..]),
        None => format!("{base}[{len}]"),
    };
    TypeNode {
        name,
        typedefs: vec![],
        size: elem.size * len,
        kind: TypeKind::Array {
            len,
            element: Box::new(elem),
            format: None,
        },
    }
}

/// A member at byte `offset`.
pub fn m(name: &str, offset: u32, ty: TypeNode) -> Member {
    Member {
        name: name.into(),
        offset,
        bit_offset: offset * 8,
        bit_size: None,
        ty,
    }
}

/// A bitfield member at `bit_offset` of `bits` bits.
pub fn bf(name: &str, bit_offset: u32, bits: u32, ty: TypeNode) -> Member {
    Member {
        name: name.into(),
        offset: bit_offset / 8,
        bit_offset,
        bit_size: Some(bits),
        ty,
    }
}

pub fn struct_(name: &str, size: u32, members: Vec<Member>) -> TypeNode {
    TypeNode {
        name: format!("struct {name}"),
        typedefs: vec![],
        size,
        kind: TypeKind::Struct { members },
    }
}

pub fn union_(name: &str, size: u32, members: Vec<Member>) -> TypeNode {
    TypeNode {
        name: if name.is_empty() {
            "union <anon>".into()
        } else {
            format!("union {name}")
        },
        typedefs: vec![],
        size,
        kind: TypeKind::Union { members },
    }
}

pub fn map(
    map_type: &str,
    key: Option<TypeNode>,
    value: Option<TypeNode>,
    endian: ByteOrder,
) -> MapSchema {
    MapSchema {
        name: "test_map".into(),
        map_type: ebpf_sdk_schema::MapType::from_name(map_type).unwrap_or_default(),
        key_size: key.as_ref().map_or(0, |k| k.size),
        value_size: value.as_ref().map_or(0, |v| v.size),
        max_entries: 16,
        flags: ebpf_sdk_schema::MapFlags::NONE,
        pinning: Pinning::None,
        pin_path: None,
        section: ".maps".into(),
        origin: ebpf_sdk_schema::MapOrigin::Btf,
        endian,
        btf_key_type_id: None,
        btf_value_type_id: None,
        key,
        value,
        inner_map: None,
        record: None,
    }
}

pub fn plan(t: &TypeNode) -> Plan {
    Plan::new("value", t, ByteOrder::Little, &Default::default()).unwrap()
}

pub fn plan_be(t: &TypeNode) -> Plan {
    Plan::new("value", t, ByteOrder::Big, &Default::default()).unwrap()
}

pub fn y(text: &str) -> Value {
    parse_yaml(text).unwrap()
}

/// Spaced hex for readable assertions: groups of `group` bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex with any whitespace.
pub fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() & 1 == 0, "odd hex");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// Encodes `yaml` with `p` and returns the hex.
pub fn enc(p: &Plan, yaml: &str) -> String {
    hex(&p.encode(&y(yaml)).unwrap_or_else(|e| panic!("{yaml}: {e}")))
}

pub fn enc_err(p: &Plan, yaml: &str) -> String {
    match p.encode(&y(yaml)) {
        Ok(b) => panic!("{yaml}: expected an error, got {}", hex(&b)),
        Err(e) => e.to_string(),
    }
}

/// Asserts decode(bytes) == expected and that it re-encodes to `bytes`.
pub fn round(p: &Plan, hex_bytes: &str, expected: &str) {
    let bytes = unhex(hex_bytes);
    let d = p.decode(&bytes).unwrap();
    assert_eq!(d, y(expected), "decode of {hex_bytes}: got {}", d.to_json());
    assert_eq!(
        hex(&p.encode(&d).unwrap()),
        hex(&bytes),
        "re-encode of {}",
        d.to_json()
    );
}

pub fn firewall() -> Document {
    Document::from_json(include_str!("../fixtures/firewall.json")).unwrap()
}

pub fn codec_for(doc: &Document, name: &str) -> Codec {
    Codec::new(doc.map(name).unwrap()).unwrap()
}

pub fn err_text(e: CodecError) -> String {
    e.to_string()
}
