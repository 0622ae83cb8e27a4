//! Encoding: a [`Value`] into the bytes of a [`Node`], with range checks,
//! union exclusivity, zero fill and the string sugar (addresses, hex, MACs,
//! enum names); also whether a value is one per CPU.

use ebpf_sdk_schema::ByteOrder;

use super::bits::{store, store_bits};
use super::node::{
    node_size, AddrText, ArrKind, ArrayNode, EnumNode, Field, IntNode, Node, Record, Scalar, NONE,
};
use crate::error::{Fault, FaultKind};
use crate::sugar::{self, mask, range_text, Wide};
use crate::Value;

fn mismatch(ty: &str, expected: impl Into<String>, v: &Value) -> Fault {
    Fault::new(FaultKind::Mismatch {
        ty: ty.to_string(),
        expected: expected.into(),
        given: v.describe(),
    })
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

fn addr_forms(kind: AddrText) -> &'static str {
    kind.forms()
}

/// Why text that is almost right is refused: an address too large for the
/// field, a CIDR where only the address goes. Empty otherwise.
fn address_hint(s: &str, field_size: usize) -> &'static str {
    let t = s.trim();
    if sugar::parse_cidr(t).is_ok() {
        " (a CIDR's prefix length goes in a field of its own, such as prefixlen)"
    } else if sugar::parse_ipv6(t).is_some() && field_size != 16 {
        " (an IPv6 address needs a 16-byte field)"
    } else if sugar::parse_ipv4(t).is_some() && field_size < 4 {
        " (an IPv4 address needs a 4-byte field)"
    } else {
        ""
    }
}

/// Writes address text `s` into `buf` (zeroed, 4 or 16 bytes) as a field
/// of `kind` takes it: the address bytes in network order, an IPv4 address
/// in the first 4 bytes of a 16-byte field. `false` when `s` is no address
/// the field takes.
fn encode_addr(kind: AddrText, s: &str, buf: &mut [u8]) -> bool {
    let t = s.trim();
    if let Some(o) = sugar::parse_ipv4(t) {
        if kind == AddrText::In6 || buf.len() < 4 {
            return false;
        }
        buf[..4].copy_from_slice(&o);
        return true;
    }
    match sugar::parse_ipv6(t) {
        Some(o) if kind != AddrText::V4 && buf.len() == 16 => {
            buf.copy_from_slice(&o);
            true
        }
        _ => false,
    }
}

fn int_bits(n: &IntNode, v: &Value, width: u32) -> Result<u128, Fault> {
    let w = match v {
        Value::Int(i) => Wide::from_i128(*i),
        Value::String(s) => match sugar::parse_int_text(s) {
            Some(w) => w,
            None => {
                let mut expected = INT_FORMS.to_string();
                let whole = width as usize == n.size * 8;
                match n.size {
                    4 if whole => expected.push_str(" or an IPv4 address"),
                    16 if whole => {
                        expected.push_str(" or ");
                        expected.push_str(addr_forms(AddrText::V6));
                    }
                    _ => {}
                }
                expected.push_str(address_hint(s, if whole { n.size } else { 0 }));
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

/// What a `_Bool` takes, for messages.
const BOOL_FORMS: &str = "true, false, 0 or 1";

/// A `_Bool` is `true`, `false`, `0` or `1`. A byte other than 0 or 1 read
/// back from a map (C code can store one through a cast) decodes as a hex
/// string such as `"0x02"`, and only that form writes such a byte, so what
/// `dump` prints writes the same bytes back while a typed `2` or `255` is
/// refused.
fn bool_bits(s: &Scalar, v: &Value, width: u32) -> Result<u128, Fault> {
    match v {
        Value::Bool(b) => Ok(u128::from(*b)),
        Value::Null | Value::Int(0) => Ok(0),
        Value::Int(1) => Ok(1),
        Value::String(t) if t.trim().starts_with("0x") || t.trim().starts_with("0X") => {
            let w = sugar::parse_int_text(t)
                .filter(|w| !w.neg)
                .ok_or_else(|| mismatch(&s.ty, BOOL_FORMS, v))?;
            w.to_bits(width, false).ok_or_else(|| {
                Fault::new(FaultKind::OutOfRange {
                    given: given_number(v, w),
                    ty: field_ty(&s.ty, width, s.size),
                    range: range_text(width, false),
                })
            })
        }
        _ => Err(mismatch(&s.ty, BOOL_FORMS, v)),
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
            // A 16-byte integer holds an IPv6 address as tracing tools copy
            // one into it: the 16 bytes as they are.
            if let (16, Value::String(s)) = (i.size, v) {
                if sugar::parse_int_text(s).is_none() && encode_addr(AddrText::V6, s, buf) {
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

fn encode_record(r: &Record, v: &Value, buf: &mut [u8]) -> Result<(), Fault> {
    let m = match v {
        Value::Map(m) => m,
        Value::Null => return Ok(()),
        Value::String(s) if r.addr.is_some_and(|a| encode_addr(a, s, buf)) => return Ok(()),
        _ => {
            let mut expected = if r.union {
                format!(
                    "a mapping with exactly one of {}",
                    r.groups[0].alts.join(", ")
                )
            } else {
                "a mapping of field names to values".to_string()
            };
            if let Some(a) = r.addr {
                expected.push_str(", or ");
                expected.push_str(addr_forms(a));
            }
            if let (Some(_), Value::String(s)) = (r.addr, v) {
                expected.push_str(address_hint(s, r.size));
            }
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
        Value::String(s) if a.addr.is_some_and(|k| encode_addr(k, s, buf)) => Ok(()),
        Value::String(s) => Err(mismatch(
            &a.ty,
            format!("{}{}", array_forms(a), address_hint(s, a.len * a.elem_size)),
            v,
        )),
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
        ArrKind::Other => match a.addr {
            Some(k) => format!("a list of up to {} elements or {}", a.len, addr_forms(k)),
            None => format!("a list of up to {} elements", a.len),
        },
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
        return Err(mismatch(
            &a.ty,
            format!("{}{}", array_forms(a), address_hint(t, a.len)),
            v,
        ));
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
        Value::String(_) => a.kind != ArrKind::Other || a.addr.is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::*;
    use crate::plan::Plan;
    use ebpf_sdk_schema::{TypeKind, TypeNode};

    fn bytes(t: &TypeNode, v: &str) -> Vec<u8> {
        plan(t).encode(&yaml(v)).unwrap()
    }

    fn error(t: &TypeNode, v: &str) -> String {
        plan(t).encode(&yaml(v)).unwrap_err().to_string()
    }

    fn ab_union() -> TypeNode {
        union("union u", 4, vec![at("a", 0, u16_t()), at("b", 0, u32_t())])
    }

    #[test]
    fn integers_out_of_range_with_exact_messages() {
        let s8 = int("__s8", 1, true);
        assert_eq!(
            error(&u8_t(), "300"),
            "value: 300 does not fit in __u8 (0..=255)"
        );
        assert_eq!(
            error(&s8, "-129"),
            "value: -129 does not fit in __s8 (-128..=127)"
        );
        assert_eq!(
            error(&u8_t(), "'0x100'"),
            r#"value: "0x100" (= 256) does not fit in __u8 (0..=255)"#
        );
        let field = |ty| strukt("struct s", 4, vec![bits("f", 0, 3, ty)]);
        assert_eq!(
            error(&field(u32_t()), "{f: 8}"),
            "value.f: 8 does not fit in 3-bit field of __u32 (0..=7)"
        );
        assert_eq!(
            error(&field(int("__s32", 4, true)), "{f: -5}"),
            "value.f: -5 does not fit in 3-bit field of __s32 (-4..=3)"
        );
        assert_eq!(
            error(&u32_t(), "abc"),
            "value: expected an integer (10, -3, 0x1f, 0o17, 0b101, or as a string) \
             or an IPv4 address for __u32, got \"abc\""
        );
        assert_eq!(
            error(&int("__u128", 16, false), "1.5"),
            "value: expected an integer (10, -3, 0x1f, 0o17, 0b101, or as a string); \
             write values beyond 64 bits as strings for __u128, got a float (1.5)"
        );
        let e = enum_type("enum e", 1, false, &[("A", 0)]);
        assert_eq!(
            error(&e, "256"),
            "value: 256 does not fit in enum e (0..=255)"
        );
        assert_eq!(
            error(&bool_type(), "256"),
            "value: expected true, false, 0 or 1 for _Bool, got 256"
        );
    }

    #[test]
    fn floats_out_of_range_with_exact_messages() {
        assert_eq!(
            error(&float_type(8), "9007199254740993"),
            "value: 9007199254740993 does not fit in double (integers up to 2^53 exactly)"
        );
        let max = "340282350000000000000000000000000000000";
        assert_eq!(
            error(&float_type(4), "1.0e39"),
            format!(
                "value: 1{} does not fit in float (-{max}..={max})",
                "0".repeat(39)
            )
        );
        assert_eq!(
            error(&float_type(4), "'0x100000000'"),
            "value: 0x100000000 does not fit in float raw bits (0..=4294967295)"
        );
    }

    #[test]
    fn unions_take_exactly_one_member() {
        let u = ab_union();
        assert_eq!(bytes(&u, "{b: 0x01020304}"), [4, 3, 2, 1]);
        assert_eq!(bytes(&u, "{a: 0x0102, b: null}"), [2, 1, 0, 0]);
        let both = "value: union u takes exactly one of a, b; got a and b";
        assert_eq!(error(&u, "{a: 1, b: 2}"), both);
        assert_eq!(error(&u, "{b: 2, a: 1}"), both);
        let none = "value: union u takes exactly one of a, b; got none";
        assert_eq!(error(&u, "{}"), none);
        assert_eq!(error(&u, "{a: null}"), none);
        assert_eq!(
            error(&u, "5"),
            "value: expected a mapping with exactly one of a, b for union u, got 5"
        );
        assert_eq!(
            error(&u, "{c: 1}"),
            "value.c: unknown field; valid fields: a, b"
        );

        // An anonymous union's alternatives are fields of the struct.
        let s = anonymous_union();
        assert_eq!(bytes(&s, "{k: 9, q: 2, p: 1}"), [9, 0, 0, 0, 1, 2, 0, 0]);
        assert_eq!(
            error(&s, "{x: 1, q: 2}"),
            "value: union (anon) takes exactly one of x, {p, q}; got x and {p, q}"
        );
    }

    #[test]
    fn everything_left_out_is_zero() {
        let s = with_bitfield();
        let p = plan(&s);
        let mut buf = [0xff; 8];
        p.encode_into(&yaml("{b: 0x1234}"), &mut buf).unwrap();
        assert_eq!(buf, [0, 0, 0x34, 0x12, 0, 0, 0, 0]);
        assert_eq!(bytes(&s, "{c: 5}"), [0, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(bytes(&s, "null"), [0; 8]);
        // A failed encode leaves no half-written bytes behind.
        let mut buf = [0xff; 8];
        let e = p.encode_into(&yaml("{a: 1, b: 70000}"), &mut buf);
        assert_eq!(
            e.unwrap_err().to_string(),
            "value.b: 70000 does not fit in __u16 (0..=65535)"
        );
        assert_eq!(buf, [0; 8]);

        let list = array(u16_t(), 4);
        assert_eq!(bytes(&list, "[1, 2]"), [1, 0, 2, 0, 0, 0, 0, 0]);
        assert_eq!(
            error(&list, "[1, 70000]"),
            "value[1]: 70000 does not fit in __u16 (0..=65535)"
        );
        assert_eq!(
            error(&list, "[1, 2, 3, 4, 5]"),
            "value: 5 elements given, __u16[4] holds at most 4"
        );
        let text = array(char_type(), 6);
        assert_eq!(bytes(&text, "abc"), *b"abc\0\0\0");
        assert_eq!(
            error(&text, "abcdefg"),
            "value: 7 bytes given, char[6] holds at most 6"
        );
        assert_eq!(
            error(&text, "\"a\\0b\""),
            "value: expected a string without NUL bytes (the rest is NUL-padded) \
             for char[6], got \"a\\0b\""
        );
    }

    #[test]
    fn addresses_hex_and_macs_into_byte_arrays() {
        let b16 = array(u8_t(), 16);
        let mut want = [0u8; 16];
        want[..2].copy_from_slice(&[0x0a, 0x0b]);
        assert_eq!(bytes(&b16, "'0x0a0b'"), want);
        let mut want = [0u8; 16];
        want[..4].copy_from_slice(&[10, 1, 2, 3]);
        assert_eq!(bytes(&b16, "10.1.2.3"), want);
        let mut want = [0u8; 16];
        want[..2].copy_from_slice(&[0xfe, 0x80]);
        want[15] = 1;
        assert_eq!(bytes(&b16, "'fe80::1'"), want);
        let mut want = [0u8; 16];
        want[..6].copy_from_slice(&[0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
        assert_eq!(bytes(&b16, "'02:00:5e:10:00:01'"), want);

        let b4 = array(u8_t(), 4);
        assert_eq!(
            error(&b4, "'::1'"),
            "value: expected a list of up to 4 numbers, a 0x hex string or an IPv4 address \
             (an IPv6 address needs 16 bytes) for __u8[4], got \"::1\""
        );
        assert_eq!(
            error(&b4, "'0x0102030405'"),
            "value: 5 bytes given, __u8[4] holds at most 4"
        );
        assert_eq!(
            error(&b4, "hello"),
            "value: expected a list of up to 4 numbers, a 0x hex string or an IPv4 address \
             for __u8[4], got \"hello\""
        );
        // A 4-byte integer holds an address in network order on any target.
        assert_eq!(bytes(&u32_t(), "10.1.2.3"), [10, 1, 2, 3]);
        let big = plan_for(&u32_t(), ByteOrder::Big);
        assert_eq!(big.encode(&yaml("10.1.2.3")).unwrap(), [10, 1, 2, 3]);
    }

    #[test]
    fn enums_bools_floats_and_raw_bytes() {
        let color = enum_type(
            "enum color",
            4,
            false,
            &[("RED", 0), ("GREEN", 1), ("BLUE", 2)],
        );
        assert_eq!(bytes(&color, "BLUE"), [2, 0, 0, 0]);
        assert_eq!(bytes(&color, "1"), [1, 0, 0, 0]);
        assert_eq!(bytes(&color, "'0x2'"), [2, 0, 0, 0]);
        assert_eq!(
            error(&color, "PINK"),
            "value: `PINK` is not a variant of enum color; variants: RED, GREEN, BLUE"
        );
        assert_eq!(
            error(&color, "true"),
            "value: expected a variant name or a number for enum color, got true"
        );
        let signed = enum_type("enum s", 1, true, &[("NEG", -1)]);
        assert_eq!(bytes(&signed, "NEG"), [0xff]);

        assert_eq!(bytes(&bool_type(), "true"), [1]);
        assert_eq!(bytes(&bool_type(), "1"), [1]);
        assert_eq!(bytes(&bool_type(), "0"), [0]);
        assert_eq!(
            error(&bool_type(), "2"),
            "value: expected true, false, 0 or 1 for _Bool, got 2"
        );
        assert_eq!(
            error(&bool_type(), "255"),
            "value: expected true, false, 0 or 1 for _Bool, got 255"
        );
        assert_eq!(
            error(&bool_type(), "yes"),
            "value: expected true, false, 0 or 1 for _Bool, got \"yes\""
        );
        // The hex string decode shows for a byte other than 0 or 1 writes
        // that byte back.
        assert_eq!(bytes(&bool_type(), "'0x02'"), [2]);
        assert_eq!(bytes(&bool_type(), "'0xff'"), [0xff]);
        assert_eq!(
            error(&bool_type(), "'0x100'"),
            "value: \"0x100\" (= 256) does not fit in _Bool (0..=255)"
        );
        assert_eq!(
            error(&bool_type(), "'2'"),
            "value: expected true, false, 0 or 1 for _Bool, got \"2\""
        );

        let f32_t = float_type(4);
        assert_eq!(bytes(&f32_t, "1.5"), [0, 0, 0xc0, 0x3f]);
        assert_eq!(bytes(&f32_t, "nan"), [0, 0, 0xc0, 0x7f]);
        assert_eq!(bytes(&f32_t, "-inf"), [0, 0, 0x80, 0xff]);
        assert_eq!(bytes(&f32_t, "'0x7fc00001'"), [1, 0, 0xc0, 0x7f]);
        assert_eq!(
            bytes(&float_type(8), "Infinity"),
            [0, 0, 0, 0, 0, 0, 0xf0, 0x7f]
        );

        let raw = Plan::opaque("value", 3);
        let raw_bytes = |v: &str| raw.encode(&yaml(v)).map_err(|e| e.to_string());
        assert_eq!(raw_bytes("'0x010203'"), Ok(vec![1, 2, 3]));
        assert_eq!(raw_bytes("[1, 2, 3]"), Ok(vec![1, 2, 3]));
        assert_eq!(
            raw_bytes("'0x0102'"),
            Err(
                "value: expected a 0x hex string or a list of exactly 3 bytes \
                 for opaque[3], got \"2 bytes\""
                    .to_string()
            )
        );
        assert_eq!(
            raw_bytes("[1, 256, 3]"),
            Err("value[1]: 256 does not fit in byte (0..=255)".to_string())
        );
    }

    /// The kernel's `struct in6_addr`: a union of three views of 16 bytes.
    fn in6_addr() -> TypeNode {
        let view = |name: &str, elem: TypeNode, len| at(name, 0, array(elem, len));
        let u = union(
            "union <anon>",
            16,
            vec![
                view("u6_addr8", u8_t(), 16),
                view("u6_addr16", u16_t(), 8),
                view("u6_addr32", u32_t(), 4),
            ],
        );
        strukt("struct in6_addr", 16, vec![at("in6_u", 0, u)])
    }

    fn in_addr() -> TypeNode {
        strukt("struct in_addr", 4, vec![at("s_addr", 0, u32_t())])
    }

    const V6: [u8; 16] = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    #[test]
    fn addresses_fit_every_address_shaped_field() {
        let mut v4_first = [0u8; 16];
        v4_first[..4].copy_from_slice(&[10, 0, 0, 1]);
        let be32 = |t: TypeNode| TypeNode {
            typedefs: vec!["__be32".into()],
            kind: TypeKind::Int {
                signed: false,
                char: false,
                byte_order: Some(ByteOrder::Big),
                format: None,
            },
            ..t
        };
        let sixteen = [
            array(u32_t(), 4),
            array(be32(u32_t()), 4),
            array(u16_t(), 8),
            array(int("__u64", 8, false), 2),
            int("unsigned __int128", 16, false),
        ];
        for t in &sixteen {
            // Network order whatever the elements' type and byte order, on
            // either target: as a memcpy of a struct in6_addr lays it.
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let p = plan_for(t, order);
                assert_eq!(p.encode(&yaml("'2001:db8::1'")).unwrap(), V6, "{}", t.name);
                assert_eq!(p.encode(&yaml("10.0.0.1")).unwrap(), v4_first, "{}", t.name);
            }
        }
        // An __int128 still takes integers first.
        let i128_t = int("unsigned __int128", 16, false);
        let mut one = [0u8; 16];
        one[0] = 1;
        assert_eq!(bytes(&i128_t, "1"), one);
        assert_eq!(bytes(&i128_t, "'0x1'"), one);
        // Four bytes take IPv4 text.
        assert_eq!(bytes(&array(u16_t(), 2), "192.0.2.1"), [192, 0, 2, 1]);
        assert_eq!(bytes(&in_addr(), "192.0.2.1"), [192, 0, 2, 1]);
        // struct in6_addr takes IPv6 text only, and its fields as before.
        assert_eq!(bytes(&in6_addr(), "'2001:db8::1'"), V6);
        assert_eq!(bytes(&in6_addr(), "{in6_u: {u6_addr8: '2001:db8::1'}}"), V6);
        assert_eq!(
            error(&in6_addr(), "10.0.0.1"),
            "value: expected a mapping of field names to values, or an IPv6 address (an IPv4 \
             address as ::ffff:a.b.c.d) for struct in6_addr, got \"10.0.0.1\""
        );
        let mut mapped = [0u8; 16];
        mapped[10..].copy_from_slice(&[0xff, 0xff, 10, 0, 0, 1]);
        assert_eq!(bytes(&in6_addr(), "'::ffff:10.0.0.1'"), mapped);
        // A union of address views takes IPv4 text into its 4-byte member
        // and IPv6 text into its 16-byte one.
        let views = union(
            "union <anon>",
            16,
            vec![
                at("vip", 0, be32(u32_t())),
                at("vipv6", 0, array(be32(u32_t()), 4)),
            ],
        );
        assert_eq!(bytes(&views, "'2001:db8::1'"), V6);
        assert_eq!(bytes(&views, "10.0.0.1"), v4_first);
        assert_eq!(bytes(&views, "{vip: 10.0.0.1}"), v4_first);
    }

    #[test]
    fn address_text_errors_name_the_field_and_the_fix() {
        assert_eq!(
            error(&u32_t(), "'2001:db8::1'"),
            "value: expected an integer (10, -3, 0x1f, 0o17, 0b101, or as a string) or an IPv4 \
             address (an IPv6 address needs a 16-byte field) for __u32, got \"2001:db8::1\""
        );
        assert_eq!(
            error(&array(u32_t(), 4), "10.0.0.0/8"),
            "value: expected a list of up to 4 elements or an IPv6 address (or an IPv4 address, \
             into the first 4 bytes) (a CIDR's prefix length goes in a field of its own, such as \
             prefixlen) for __u32[4], got \"10.0.0.0/8\""
        );
        assert_eq!(
            error(&array(u16_t(), 3), "'::1'"),
            "value: expected a list of up to 3 elements (an IPv6 address needs a 16-byte field) \
             for __u16[3], got \"::1\""
        );
        // A struct that is not only an address takes no text.
        let two = strukt(
            "struct k",
            8,
            vec![at("a", 0, u32_t()), at("b", 4, u32_t())],
        );
        assert_eq!(
            error(&two, "10.0.0.1"),
            "value: expected a mapping of field names to values for struct k, got \"10.0.0.1\""
        );
    }

    #[test]
    fn fast_helpers_give_the_general_bytes() {
        let u16_plan = plan(&u16_t());
        let mut two = [0u8; 2];
        assert_eq!(encode_int(u16_plan.node(), 0x1234, &mut two), Some(()));
        assert_eq!(two, [0x34, 0x12]);
        assert_eq!(encode_int(u16_plan.node(), 0x1_0000, &mut two), None);

        let u32_plan = plan(&u32_t());
        let mut four = [0u8; 4];
        assert_eq!(encode_str(u32_plan.node(), "10.1.2.3", &mut four), Some(()));
        assert_eq!(four, [10, 1, 2, 3]);
        assert_eq!(
            encode_str(u32_plan.node(), "0x01020304", &mut four),
            Some(())
        );
        assert_eq!(four, [4, 3, 2, 1]);

        let b16 = plan(&array(u8_t(), 16));
        let mut sixteen = [0u8; 16];
        assert_eq!(encode_str(b16.node(), "::1", &mut sixteen), Some(()));
        assert_eq!(sixteen[15], 1);
        assert_eq!(sixteen[..15], [0; 15]);
        let b4 = plan(&array(u8_t(), 4));
        assert_eq!(encode_str(b4.node(), "::1", &mut four), None);

        let color = plan(&enum_type(
            "enum color",
            4,
            false,
            &[("RED", 0), ("GREEN", 1)],
        ));
        assert_eq!(encode_int(color.node(), 1, &mut four), Some(()));
        assert_eq!(four, [1, 0, 0, 0]);
        assert_eq!(encode_str(color.node(), "RED", &mut four), Some(()));
        assert_eq!(four, [0, 0, 0, 0]);
    }

    #[test]
    fn per_cpu_lists_or_one_value() {
        let per_cpu = |t: &TypeNode, v: &str| is_percpu_list(plan(t).node(), &yaml(v));
        assert!(per_cpu(&u32_t(), "[1, 2]"));
        assert!(!per_cpu(&u32_t(), "5"));
        let b4 = array(u8_t(), 4);
        assert!(!per_cpu(&b4, "[1, 2, 3, 4]"));
        assert!(!per_cpu(&b4, "[]"));
        assert!(per_cpu(&b4, "[[1, 2, 3, 4], [5]]"));
        assert!(per_cpu(&b4, "[10.0.0.1, 10.0.0.2]"));
        // Strings are whole values only of text, byte and address arrays.
        assert!(!per_cpu(&array(u16_t(), 3), "[a, b]"));
        assert!(per_cpu(&array(u32_t(), 4), "['::1', '::2']"));
        let grid = array(array(u8_t(), 2), 2);
        assert!(!per_cpu(&grid, "[[1, 2], [3, 4]]"));
        assert!(per_cpu(&grid, "[[[1, 2], [3, 4]]]"));
    }
}
