//! Decoding: the bytes of a [`Node`] into a [`Value`] (enum names, `_Bool`,
//! text, addresses, trimmed arrays of structs, non-finite floats as
//! strings), and the mask of the bits decode reads.

use std::net::{Ipv4Addr, Ipv6Addr};

use ebpf_sdk_schema::Format;

use super::bits::{load, load_bits, store_bits};
use super::node::{node_size, ArrKind, ArrayNode, Node, Scalar};
use crate::sugar::{self, mask, sign_extend};
use crate::{Map, Value};

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

pub(super) fn mark(n: &Node, m: &mut [u8]) {
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
