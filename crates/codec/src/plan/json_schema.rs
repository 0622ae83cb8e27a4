//! What encoding accepts, as JSON Schema (draft-07): one schema per
//! [`Node`], built from the same compiled nodes `encode.rs` walks, with the
//! text forms it parses as the patterns [`crate::sugar`] keeps beside each
//! parser, the ranges from [`int_bounds`], and the words of its messages.
//!
//! The rule is the encoder's: the schema refuses what encoding refuses
//! wherever JSON Schema can say it, and never refuses what it accepts. What
//! it cannot say, it lets through for the encoder to refuse with a message:
//! numbers written as strings are checked for their form but not their range
//! (`"0x1ffff"` for a `__u16`), a `char[N]` string's length is counted in
//! characters, not UTF-8 bytes, integers beyond 2^53 and floats beyond a
//! `float`'s range are not told apart from their neighbours, and `1.0` is an
//! integer to JSON Schema.

use serde_json::{json, Map as JMap, Value as J};

use super::encode::{addr_forms, array_forms, BOOL_FORMS, FLOAT_FORMS, INT_FORMS};
use super::node::{AddrText, ArrKind, ArrayNode, EnumNode, Field, IntNode, Node, Record, Scalar};
use crate::sugar::{
    hex_bytes_pattern, int_bounds, ipv4_pattern, ipv6_pattern, mac_pattern, whole, Wide,
    FLOAT_TEXT, HEX_INT, INT_TEXT, NO_NUL,
};

/// A C type as descriptions name it: `__u16, 2 B`.
fn head(ty: &str, size: usize) -> String {
    format!("{ty}, {size} B")
}

/// A schema's description in two parts: the C type (`__u16, 2 B`) and
/// the forms it takes, so a field can say where it is between them.
struct Desc {
    head: String,
    forms: String,
}

impl Desc {
    fn new(head: String, forms: impl Into<String>) -> Desc {
        Desc {
            head,
            forms: forms.into(),
        }
    }

    /// `__u16, 2 B: forms`, or with a place: `__u16, 2 B at offset 6: forms`.
    fn text(&self, at: Option<String>) -> String {
        match at {
            Some(at) => format!("{} at {at}: {}", self.head, self.forms),
            None => format!("{}: {}", self.head, self.forms),
        }
    }
}

type Parts = (JMap<String, J>, Desc);

/// A bound as a JSON number: exact within 64 bits, else the nearest `f64`
/// on the outside of the range (as editors read such numbers anyway).
fn number(w: Wide) -> J {
    if !w.neg {
        if let Ok(v) = u64::try_from(w.mag) {
            return J::from(v);
        }
    } else if let Ok(v) = i64::try_from(w.mag).map(|m| -m) {
        return J::from(v);
    } else if w.mag == 1 << 63 {
        return J::from(i64::MIN);
    }
    // Beyond 64 bits only a maximum (2^k - 1) or a minimum (-2^(k-1)):
    // round the magnitude up, so the range stated holds every value.
    let mut f = w.mag as f64;
    if (f as u128) < w.mag {
        f = f.next_up();
    }
    J::from(if w.neg { -f } else { f })
}

/// `minimum` and `maximum` of an integer of `bits` bits into `o`; the range
/// as text.
fn bounds(o: &mut JMap<String, J>, bits: u32, signed: bool) -> String {
    let (min, max) = int_bounds(bits, signed);
    o.insert("minimum".into(), number(min));
    o.insert("maximum".into(), number(max));
    format!("{min}..={max}")
}

/// A schema object of the given JSON types.
fn typed(types: &[&str]) -> JMap<String, J> {
    let mut o = JMap::new();
    o.insert("type".into(), json!(types));
    o
}

/// The text an address field of `kind` takes (trimmed, as `encode_addr`
/// reads it).
fn addr_pattern(kind: AddrText) -> String {
    let core = match kind {
        AddrText::V4 => ipv4_pattern(),
        AddrText::V6 => format!("{}|{}", ipv4_pattern(), ipv6_pattern()),
        AddrText::In6 => ipv6_pattern(),
    };
    whole(&core, true)
}

/// The schema of the values [`super::encode`] takes for `n`, with a
/// `description` naming the C type, its size and the forms it takes.
pub(crate) fn node_schema(n: &Node) -> J {
    let (o, desc) = node_parts(n);
    with_description(o, desc.text(None))
}

fn node_parts(n: &Node) -> Parts {
    match n {
        Node::Int(i) => int_schema(i, i.size as u32 * 8, true),
        Node::Enum(e) => enum_schema(e, e.size as u32 * 8),
        Node::Bool(b) => bool_schema(b, b.size as u32 * 8),
        Node::Float(f) => float_schema(f),
        Node::Raw(r) => raw_schema(r),
        Node::Record(r) => record_schema(r),
        Node::Array(a) => array_schema(a),
    }
}

fn with_description(mut o: JMap<String, J>, desc: String) -> J {
    o.insert("description".into(), J::from(desc));
    J::Object(o)
}

/// An integer of `width` bits (the whole type, or a bitfield of it); only a
/// whole 4- or 16-byte integer takes address text.
fn int_schema(i: &IntNode, width: u32, whole_int: bool) -> Parts {
    let mut o = typed(&["integer", "string", "null"]);
    let range = bounds(&mut o, width, i.signed);
    let int_text = whole(INT_TEXT, true);
    let (pattern, also) = match (whole_int, i.size) {
        // `encode` reads IPv4 text untrimmed here, address text trimmed
        // into 16 bytes.
        (true, 4) => (
            format!("{int_text}|{}", whole(&ipv4_pattern(), false)),
            ", or an IPv4 address",
        ),
        (true, 16) => (
            format!("{int_text}|{}", addr_pattern(AddrText::V6)),
            ", or an IPv6 address (or an IPv4 address, into the first 4 bytes)",
        ),
        _ => (int_text, ""),
    };
    o.insert("pattern".into(), J::from(pattern));
    let desc = Desc::new(
        ty_head(&i.ty, i.size, width),
        format!("{INT_FORMS} in {range}{also}"),
    );
    (o, desc)
}

/// `__u16, 2 B`, or `3-bit field of __u32` for a bitfield.
fn ty_head(ty: &str, size: usize, width: u32) -> String {
    if width as usize == size * 8 {
        head(ty, size)
    } else {
        format!("{width}-bit field of {ty}")
    }
}

fn enum_schema(e: &EnumNode, width: u32) -> Parts {
    let mut number = typed(&["integer", "null"]);
    let range = bounds(&mut number, width, e.signed);
    let mut alts = Vec::new();
    let names: Vec<J> = e.variants.iter().map(|(n, _)| J::from(&**n)).collect();
    if !names.is_empty() {
        alts.push(json!({ "enum": names }));
    }
    alts.push(J::Object(number));
    alts.push(json!({"type": "string", "pattern": whole(INT_TEXT, true)}));
    let mut o = JMap::new();
    o.insert("anyOf".into(), J::from(alts));
    let names: Vec<&str> = e.variants.iter().map(|(n, _)| &**n).collect();
    let desc = Desc::new(
        ty_head(&e.ty, e.size, width),
        format!("a variant ({}) or a number in {range}", names.join(", ")),
    );
    (o, desc)
}

fn bool_schema(b: &Scalar, width: u32) -> Parts {
    let mut o = typed(&["boolean", "integer", "string", "null"]);
    o.insert("minimum".into(), J::from(0));
    o.insert("maximum".into(), J::from(1));
    // The hex string decode shows for a byte other than 0 or 1.
    o.insert("pattern".into(), J::from(whole(HEX_INT, true)));
    let desc = Desc::new(
        ty_head(&b.ty, b.size, width),
        format!(
            "{BOOL_FORMS} (a byte other than 0 or 1 is written as the 0x.. hex string decode shows)"
        ),
    );
    (o, desc)
}

fn float_schema(f: &Scalar) -> Parts {
    let mut o = typed(&["number", "string", "null"]);
    let text = whole(&format!("{FLOAT_TEXT}|{HEX_INT}"), true);
    o.insert("pattern".into(), J::from(text));
    (o, Desc::new(head(&f.ty, f.size), FLOAT_FORMS))
}

/// One byte of a list for an opaque type: what `encode_raw` reads with its
/// `byte` integer.
fn byte_schema() -> J {
    let mut o = typed(&["integer", "string", "null"]);
    bounds(&mut o, 8, false);
    o.insert("pattern".into(), J::from(whole(INT_TEXT, true)));
    J::Object(o)
}

fn raw_schema(r: &Scalar) -> Parts {
    let mut o = typed(&["string", "array", "null"]);
    o.insert(
        "pattern".into(),
        J::from(whole(&hex_bytes_pattern(r.size, true), true)),
    );
    o.insert("minItems".into(), J::from(r.size));
    o.insert("maxItems".into(), J::from(r.size));
    o.insert("items".into(), byte_schema());
    let desc = Desc::new(
        head(&r.ty, r.size),
        format!(
            "no known layout: a 0x hex string or a list of exactly {} bytes",
            r.size
        ),
    );
    (o, desc)
}

fn array_schema(a: &ArrayNode) -> Parts {
    let text = match a.kind {
        ArrKind::Text => Some(NO_NUL.to_string()),
        ArrKind::Bytes => {
            let mut forms = vec![hex_bytes_pattern(a.len, false)];
            if a.len >= 4 {
                forms.push(ipv4_pattern());
            }
            if a.len >= 16 {
                forms.push(ipv6_pattern());
            }
            if a.len >= 6 {
                forms.push(mac_pattern());
            }
            Some(whole(&forms.join("|"), true))
        }
        ArrKind::Other => None,
    };
    let pattern = match (a.kind, text) {
        (ArrKind::Text, Some(t)) => Some(whole(&t, false)),
        (_, Some(t)) => Some(t),
        (_, None) => a.addr.map(addr_pattern),
    };
    let mut types = vec!["array"];
    if pattern.is_some() {
        types.push("string");
    }
    types.push("null");
    let mut o = typed(&types);
    o.insert("maxItems".into(), J::from(a.len));
    o.insert("items".into(), node_schema(&a.elem));
    if let Some(p) = pattern {
        o.insert("pattern".into(), J::from(p));
    }
    let mut forms = array_forms(a);
    if a.kind == ArrKind::Text {
        // JSON Schema counts characters; the limit is in UTF-8 bytes.
        o.insert("maxLength".into(), J::from(a.len));
        forms.push_str(" (bytes of UTF-8: editors count characters)");
    }
    (o, Desc::new(head(&a.ty, a.len * a.elem_size), forms))
}

/// A field as a property: its node's schema (or a bitfield's), described
/// with its place in the record.
fn field_schema(f: &Field) -> J {
    let ((o, desc), at) = match (f.bits, &f.node) {
        (None, n) => (node_parts(n), format!("offset {}", f.offset)),
        (Some((off, width)), n) => {
            let parts = match n {
                Node::Int(i) => int_schema(i, width, false),
                Node::Enum(e) => enum_schema(e, width),
                Node::Bool(b) => bool_schema(b, width),
                // Refused when compiling.
                _ => (JMap::new(), Desc::new(String::new(), "")),
            };
            (parts, format!("bit {off}"))
        }
    };
    with_description(o, desc.text(Some(at)))
}

fn record_schema(r: &Record) -> Parts {
    let mut types = vec!["object", "null"];
    if r.addr.is_some() {
        types.push("string");
    }
    let mut o = typed(&types);
    let props: JMap<String, J> = r
        .fields
        .iter()
        .map(|f| (f.name.to_string(), field_schema(f)))
        .collect();
    o.insert("properties".into(), J::Object(props));
    o.insert("additionalProperties".into(), J::from(false));
    if let Some(a) = r.addr {
        o.insert("pattern".into(), J::from(addr_pattern(a)));
    }
    let choices: Vec<J> = (0..r.groups.len()).filter_map(|g| choice(r, g)).collect();
    if !choices.is_empty() {
        o.insert("allOf".into(), J::from(choices));
    }
    let mut forms = if r.union {
        format!(
            "exactly one of {}",
            r.groups
                .first()
                .map(|g| g.alts.join(", "))
                .unwrap_or_default()
        )
    } else {
        "fields left out are zero".to_string()
    };
    for g in r.groups.iter().skip(usize::from(r.union)) {
        forms.push_str(&format!("; at most one of {}", g.alts.join(", ")));
    }
    if let Some(a) = r.addr {
        forms.push_str("; or ");
        forms.push_str(addr_forms(a));
    }
    (o, Desc::new(head(&r.ty, r.size), forms))
}

/// Union group `g` of `r` as JSON Schema: a mapping gives (a value other
/// than null to a field of) exactly one alternative of a named union (the
/// record itself, group 0), at most one of an anonymous one; `None` when
/// nothing is to be checked.
fn choice(r: &Record, g: usize) -> Option<J> {
    let named = r.union && g == 0;
    let given = |names: Vec<&str>| -> J {
        let one = |name: &str| json!({"required": [name], "properties": {name: {"not": {"type": "null"}}}});
        match names.as_slice() {
            [name] => {
                let mut o = one(name);
                o["type"] = J::from("object");
                o
            }
            _ => json!({"type": "object", "anyOf": names.into_iter().map(one).collect::<Vec<_>>()}),
        }
    };
    let alts: Vec<Vec<&str>> = (0..r.groups[g].alts.len())
        .map(|a| {
            r.fields
                .iter()
                .filter(|f| {
                    f.alts
                        .iter()
                        .any(|&(fg, fa)| usize::from(fg) == g && usize::from(fa) == a)
                })
                .map(|f| &*f.name)
                .collect::<Vec<_>>()
        })
        .filter(|names| !names.is_empty())
        .collect();
    if !named && alts.len() < 2 {
        return None;
    }
    let mut one_of = vec![json!({"not": {"type": "object"}})];
    if !named {
        let any: Vec<J> = alts.iter().map(|n| given(n.clone())).collect();
        one_of.push(json!({"type": "object", "not": {"anyOf": any}}));
    }
    one_of.extend(alts.into_iter().map(given));
    Some(json!({ "oneOf": one_of }))
}

/// A per-CPU map's value: one value for every CPU, or a list of one value
/// per possible CPU (`ncpus`, when known), as
/// [`is_percpu_list`](super::encode::is_percpu_list) tells them apart: for
/// an array type, a list is per CPU when its first element is shaped like
/// a whole array.
pub(crate) fn per_cpu_schema(n: &Node, ncpus: Option<usize>) -> J {
    let one = node_schema(n);
    let mut list = typed(&["array"]);
    list.insert("items".into(), one.clone());
    list.insert("minItems".into(), J::from(ncpus.unwrap_or(1).max(1)));
    if let Some(n) = ncpus {
        list.insert("maxItems".into(), J::from(n.max(1)));
    }
    let count = match ncpus {
        Some(n) => format!("{n} (the possible CPUs)"),
        None => "the possible CPUs".to_string(),
    };
    let desc = format!("per CPU: one value for every CPU, or a list of {count} values");
    let (single, list) = match n {
        Node::Array(a) => {
            let shape = json!({"type": "array", "minItems": 1, "items": [whole_value_shape(a)]});
            (
                json!({"allOf": [one, {"not": shape.clone()}]}),
                json!({"allOf": [J::Object(list), shape]}),
            )
        }
        // Any other type takes no list but an opaque one's bytes.
        _ => (
            json!({"allOf": [one, {"not": {"type": "array"}}]}),
            J::Object(list),
        ),
    };
    json!({ "description": desc, "anyOf": [single, list] })
}

/// What `is_array_value` calls shaped like a whole value of `a`: a list
/// (whose first element is in turn shaped like a whole inner array), or a
/// string where the array takes one.
fn whole_value_shape(a: &ArrayNode) -> J {
    let list = match &a.elem {
        Node::Array(inner) => json!({"type": "array", "items": [whole_value_shape(inner)]}),
        _ => json!({"type": "array"}),
    };
    if a.kind != ArrKind::Other || a.addr.is_some() {
        json!({"anyOf": [list, {"type": "string"}]})
    } else {
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::*;
    use ebpf_sdk_schema::TypeNode;

    fn schema(t: &TypeNode) -> J {
        node_schema(plan(t).node())
    }

    fn valid(s: &J, yaml_text: &str) -> bool {
        let v = serde_json::to_value(yaml(yaml_text)).unwrap();
        jsonschema::draft7::new(s).unwrap().is_valid(&v)
    }

    #[test]
    fn integers_state_their_c_range() {
        let s = schema(&u16_t());
        assert_eq!(s["minimum"], 0);
        assert_eq!(s["maximum"], 65535);
        assert_eq!(
            s["description"],
            "__u16, 2 B: an integer (10, -3, 0x1f, 0o17, 0b101, or as a string) in 0..=65535"
        );
        assert!(valid(&s, "65535") && valid(&s, "'0x1f'") && valid(&s, "null"));
        assert!(!valid(&s, "65536") && !valid(&s, "-1") && !valid(&s, "true"));
        assert!(!valid(&s, "abc") && !valid(&s, "10.0.0.1"));
        let s = schema(&u32_t());
        assert!(valid(&s, "10.0.0.1") && !valid(&s, "' 10.0.0.1'"));
        assert!(plan(&u32_t()).encode(&yaml("' 10.0.0.1'")).is_err());
        let s = schema(&int("__s128", 16, true));
        assert_eq!(s["minimum"], J::from(-(2f64.powi(127))));
        assert!(s["maximum"].as_f64().unwrap() >= 2f64.powi(127));
        assert!(valid(&s, "'2001:db8::1'") && valid(&s, "' 10.0.0.1 '"));
    }

    #[test]
    fn unions_take_exactly_one_member() {
        let u = union("union u", 4, vec![at("a", 0, u16_t()), at("b", 0, u32_t())]);
        let s = schema(&u);
        assert!(valid(&s, "{a: 1}") && valid(&s, "{a: 1, b: null}") && valid(&s, "null"));
        assert!(!valid(&s, "{a: 1, b: 2}") && !valid(&s, "{}") && !valid(&s, "{a: null}"));
        let s = schema(&anonymous_union());
        assert!(valid(&s, "{k: 9, q: 2, p: 1}") && valid(&s, "{k: 1}") && valid(&s, "{x: 1}"));
        assert!(!valid(&s, "{x: 1, q: 2}"));
    }

    #[test]
    fn per_cpu_lists_are_told_from_array_values() {
        let b4 = plan(&array(u8_t(), 4));
        let s = per_cpu_schema(b4.node(), Some(2));
        assert!(valid(&s, "[1, 2, 3, 4]") && valid(&s, "[[1, 2, 3, 4], [5]]"));
        assert!(valid(&s, "[10.0.0.1, '0x01']") && valid(&s, "[]"));
        assert!(!valid(&s, "[[1], [2], [3]]") && !valid(&s, "['0x1', 2]"));
        let s = per_cpu_schema(plan(&u32_t()).node(), Some(2));
        assert!(valid(&s, "5") && valid(&s, "[1, 2]") && !valid(&s, "[1]") && !valid(&s, "[]"));
    }
}
