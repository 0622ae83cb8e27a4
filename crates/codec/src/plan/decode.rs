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
        // Any other byte as the hex string that writes it back unchanged
        // (a typed number other than 0 or 1 is refused).
        Node::Bool(_) => match bits {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => Value::String(format!("{bits:#04x}")),
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
        Node::Record(r) if r.show_addr => address_text(bytes),
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

/// `struct in_addr` (4 bytes) or `struct in6_addr` (16) as the address it
/// holds: IPv6 text always for 16 bytes (an IPv4-mapped address shows as
/// `::ffff:10.0.0.1`), so the text writes the same bytes back.
fn address_text(bytes: &[u8]) -> Value {
    match bytes.len() {
        4 => Value::String(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        _ => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&bytes[..16]);
            Value::String(Ipv6Addr::from(o).to_string())
        }
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
        Node::Record(r) if r.show_addr => m.fill(0xff),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::*;
    use ebpf_sdk_schema::{ByteOrder, TypeNode};

    fn shown(t: &TypeNode, bytes: &[u8]) -> Value {
        plan(t).decode(bytes).unwrap()
    }

    fn text(s: &str) -> Value {
        Value::String(s.into())
    }

    #[test]
    fn enum_names_where_a_variant_matches() {
        let color = enum_type("enum color", 4, false, &[("RED", 0), ("GREEN", 1)]);
        assert_eq!(shown(&color, &[1, 0, 0, 0]), text("GREEN"));
        assert_eq!(shown(&color, &[7, 0, 0, 0]), Value::Int(7));
        let signed = enum_type("enum s", 1, true, &[("NEG", -1), ("ONE", 1)]);
        assert_eq!(shown(&signed, &[0xff]), text("NEG"));
        assert_eq!(shown(&signed, &[0xfe]), Value::Int(-2));
        // In a 3-bit field, -1 is 0b111.
        let s = strukt("struct s", 1, vec![bits("e", 0, 3, signed)]);
        assert_eq!(shown(&s, &[0x07]), yaml("{e: NEG}"));
        assert_eq!(shown(&s, &[0x01]), yaml("{e: ONE}"));
        assert_eq!(shown(&s, &[0x04]), yaml("{e: -4}"));
    }

    #[test]
    fn bools_and_numbers_beyond_them() {
        assert_eq!(shown(&bool_type(), &[0]), Value::Bool(false));
        assert_eq!(shown(&bool_type(), &[1]), Value::Bool(true));
        assert_eq!(shown(&bool_type(), &[2]), text("0x02"));
        assert_eq!(shown(&bool_type(), &[0xff]), text("0xff"));
    }

    #[test]
    fn char_arrays_as_text_when_they_are_text() {
        let name = array(char_type(), 6);
        assert_eq!(shown(&name, b"abc\0\0\0"), text("abc"));
        assert_eq!(shown(&name, &[0; 6]), text(""));
        // Bytes after the first NUL, or no UTF-8: the numbers.
        assert_eq!(shown(&name, b"ab\0c\0\0"), yaml("[97, 98, 0, 99, 0, 0]"));
        assert_eq!(
            shown(&name, &[0xff, 0, 0, 0, 0, 0]),
            yaml("[-1, 0, 0, 0, 0, 0]")
        );
        assert_eq!(shown(&array(u8_t(), 3), b"ab\0"), yaml("[97, 98, 0]"));
        let hinted_text = hinted(array(u8_t(), 3), Format::String);
        assert_eq!(shown(&hinted_text, b"ab\0"), text("ab"));
    }

    #[test]
    fn format_hints_on_byte_arrays_and_integers() {
        let ip = |len| hinted(array(u8_t(), len), Format::Ip);
        assert_eq!(shown(&ip(4), &[10, 1, 2, 3]), text("10.1.2.3"));
        let mut v4 = [0u8; 16];
        v4[..4].copy_from_slice(&[10, 1, 2, 3]);
        assert_eq!(shown(&ip(16), &v4), text("10.1.2.3"));
        let mut v6 = [0u8; 16];
        v6[..2].copy_from_slice(&[0xfe, 0x80]);
        v6[15] = 1;
        assert_eq!(shown(&ip(16), &v6), text("fe80::1"));
        let mac = hinted(array(u8_t(), 6), Format::Mac);
        assert_eq!(
            shown(&mac, &[0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]),
            text("02:00:5e:10:00:01")
        );
        let hex = hinted(array(u8_t(), 3), Format::Hex);
        assert_eq!(shown(&hex, &[0x0a, 0x0b, 0x0c]), text("0x0a0b0c"));
        // A 4-byte integer hinted as an address is in network order.
        let addr = hinted(u32_t(), Format::Ip);
        assert_eq!(shown(&addr, &[10, 1, 2, 3]), text("10.1.2.3"));
        assert_eq!(
            shown(&hinted(u16_t(), Format::Hex), &[0x34, 0x12]),
            text("0x1234")
        );
        let s8 = hinted(int("__s8", 1, true), Format::Hex);
        assert_eq!(shown(&s8, &[0xff]), text("-0x1"));
    }

    #[test]
    fn integers_beyond_64_bits_are_strings() {
        assert_eq!(
            shown(&int("__u64", 8, false), &[0xff; 8]),
            Value::Int(i128::from(u64::MAX))
        );
        let u128_t = int("__u128", 16, false);
        let mut two_to_64 = [0u8; 16];
        two_to_64[8] = 1;
        assert_eq!(shown(&u128_t, &two_to_64), text("18446744073709551616"));
        assert_eq!(
            shown(&u128_t, &[0xff; 16]),
            text("340282366920938463463374607431768211455")
        );
        let s128 = int("__s128", 16, true);
        assert_eq!(shown(&s128, &[0xff; 16]), Value::Int(-1));
        // i64::MIN - 1
        let mut below = [0xff; 16];
        below[..8].copy_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert_eq!(shown(&s128, &below), text("-9223372036854775809"));
    }

    #[test]
    fn trailing_zero_structs_are_left_out() {
        let e = strukt("struct e", 4, vec![at("a", 0, u8_t()), at("b", 2, u16_t())]);
        let rules = array(e, 4);
        let bytes = [
            1, 0, 0, 0, // {a: 1}
            0, 0, 0, 0, // all zero, but not trailing
            0, 0, 2, 0, // {b: 2}
            0, 0xff, 0, 0, // only padding set: zero as decode sees it
        ];
        assert_eq!(
            shown(&rules, &bytes),
            yaml("[{a: 1, b: 0}, {a: 0, b: 0}, {a: 0, b: 2}]")
        );
        assert_eq!(shown(&rules, &[0; 16]), yaml("[]"));
        // Arrays of numbers keep every element.
        assert_eq!(
            shown(&array(u16_t(), 3), &[1, 0, 0, 0, 0, 0]),
            yaml("[1, 0, 0]")
        );
    }

    #[test]
    fn floats_finite_and_not() {
        let f32_t = float_type(4);
        assert_eq!(shown(&f32_t, &[0, 0, 0xc0, 0x3f]), Value::Float(1.5));
        assert_eq!(shown(&f32_t, &[0, 0, 0xc0, 0x7f]), text("nan"));
        // Any other NaN keeps its bits.
        assert_eq!(shown(&f32_t, &[1, 0, 0xc0, 0x7f]), text("0x7fc00001"));
        assert_eq!(shown(&f32_t, &[0, 0, 0xc0, 0xff]), text("0xffc00000"));
        assert_eq!(shown(&f32_t, &[0, 0, 0x80, 0x7f]), text("inf"));
        assert_eq!(shown(&f32_t, &[0, 0, 0x80, 0xff]), text("-inf"));
        let f64_t = float_type(8);
        assert_eq!(
            shown(&f64_t, &[0, 0, 0, 0, 0, 0, 4, 0xc0]),
            Value::Float(-2.5)
        );
        assert_eq!(shown(&f64_t, &[0, 0, 0, 0, 0, 0, 0xf8, 0x7f]), text("nan"));
    }

    #[test]
    fn bitfields_decode_from_their_window() {
        let s = with_bitfield();
        let bytes = [5, 0, 0x34, 0x12, 0x06, 0, 0, 0];
        assert_eq!(shown(&s, &bytes), yaml("{a: 5, b: 0x1234, c: 6}"));
        let big = plan_for(&s, ByteOrder::Big);
        let bytes = [5, 0, 0x12, 0x34, 0xc0, 0, 0, 0];
        assert_eq!(big.decode(&bytes).unwrap(), yaml("{a: 5, b: 0x1234, c: 6}"));
    }

    #[test]
    fn significant_bits_mark_what_decode_reads() {
        let s = with_bitfield();
        assert_eq!(
            plan(&s).significant_bits(),
            [0xff, 0, 0xff, 0xff, 0x07, 0, 0, 0]
        );
        assert_eq!(
            plan_for(&s, ByteOrder::Big).significant_bits(),
            [0xff, 0, 0xff, 0xff, 0xe0, 0, 0, 0]
        );
        // A union: the bytes of the alternative decode shows.
        let full = union("union f", 4, vec![at("x", 0, u8_t()), at("y", 0, u32_t())]);
        assert_eq!(plan(&full).significant_bits(), [0xff; 4]);
        let short = union("union g", 4, vec![at("a", 0, u16_t()), at("b", 0, u8_t())]);
        assert_eq!(plan(&short).significant_bits(), [0xff, 0xff, 0, 0]);
        let e = strukt("struct e", 4, vec![at("a", 0, u8_t()), at("b", 2, u16_t())]);
        assert_eq!(
            plan(&array(e, 2)).significant_bits(),
            [0xff, 0, 0xff, 0xff, 0xff, 0, 0xff, 0xff]
        );
    }
}
