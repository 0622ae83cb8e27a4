//! Encoding: a [`Value`] into the bytes of a [`Node`], with range checks,
//! union exclusivity, zero fill and the string sugar (addresses, hex, MACs,
//! enum names); also whether a value is one per CPU.

use ebpf_sdk_schema::ByteOrder;

use super::bits::{store, store_bits};
use super::node::{
    node_size, ArrKind, ArrayNode, EnumNode, Field, IntNode, Node, Record, Scalar, NONE,
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
