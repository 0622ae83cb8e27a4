//! JSON text straight to bytes and back, without a [`Value`] tree in between.
//!
//! Bulk input (`apply` of JSON Lines, a million entries) spent most of its
//! time building a `Value` per entry only to walk it once. This reader walks
//! the JSON text and the compiled plan together instead: objects and lists
//! are followed in place, and each leaf becomes a scalar `Value` (no
//! allocation for numbers) handed to the very same encoder as the general
//! path, so the bytes and every rule (ranges, sugar, enums, bitfields) are
//! the general path's. Structs with unions (which member was given matters)
//! are read into a `Value` and handed to the general encoder whole.
//!
//! It only takes the plain form and gives up on anything else: escapes in
//! strings, fractions and exponents, integers beyond 64 bits, duplicate
//! keys, errors of any kind. Giving up costs nothing but time: the caller
//! then runs the general path on the same text, which either gives the same
//! bytes or the precise error message. So this path never reports an error
//! and never accepts what the general path refuses (property tests and the
//! `fast_json` fuzz target check both).
//!
//! The other direction, [`write_decoded`], prints what serde_json prints for
//! a decoded value, straight from the bytes (`dump -o json`).

use std::io::Write;
use std::sync::Arc;

use ebpf_sdk_schema::{ByteOrder, Format};

use crate::plan::{
    decode, encode, encode_field, encode_int, encode_str, load, load_bits, scalar_value, ArrKind,
    Field, IntNode, Node, Plan, Record,
};
use crate::sugar::sign_extend;
use crate::value::{Map, MAX_DEPTH};
use crate::Value;

/// A cursor over JSON text. Every method returns `None` to give up.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        // Compact JSON has no space: one comparison in the usual case.
        let c = *self.b.get(self.i)?;
        if c > b' ' {
            return Some(c);
        }
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                return Some(c);
            }
        }
        None
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Steps over `word` if the text at the cursor starts with it.
    #[inline(always)]
    fn eat_word(&mut self, word: &[u8]) -> bool {
        let at = self
            .b
            .get(self.i..)
            .is_some_and(|rest| starts_with(rest, word));
        if at {
            self.i += word.len();
        }
        at
    }

    /// The bytes of a string without escapes or control characters (not
    /// checked for UTF-8).
    fn raw_string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' => return None,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        self.i += 1;
        Some(&self.b[start..self.i - 1])
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw_string()?).ok()
    }

    /// An integer that serde_json reads as one (`i64::MIN..=u64::MAX`),
    /// without a fraction or exponent; not `-0`.
    fn int(&mut self) -> Option<i128> {
        let (neg, n) = self.int_parts()?;
        if neg {
            Some(-i128::from(n))
        } else {
            Some(i128::from(n))
        }
    }

    /// [`Scan::int`] as its sign and magnitude (not zero when negative; at
    /// most 2^63 then).
    #[inline(always)]
    fn int_parts(&mut self) -> Option<(bool, u64)> {
        // Most integers: not negative, fewer than 8 digits, and the byte
        // after them within the same 8 bytes.
        if let Some(w) = self.b.get(self.i..self.i + 8) {
            let (n, k) = eight_digits(w);
            if (1..8).contains(&k)
                && (w[0] != b'0' || k == 1)
                && !matches!(w[k], b'.' | b'e' | b'E')
            {
                self.i += k;
                return Some((false, n));
            }
        }
        self.int_parts_any()
    }

    /// [`Scan::int_parts`] for any integer.
    #[inline(never)]
    fn int_parts_any(&mut self) -> Option<(bool, u64)> {
        let neg = *self.b.get(self.i)? == b'-';
        if neg {
            self.i += 1;
        }
        let start = self.i;
        // Up to 8 digits at once, then one at a time.
        let (mut n, eight) = match self.b.get(start..start + 8) {
            Some(w) => eight_digits(w),
            None => (0, 0),
        };
        self.i += eight;
        if eight == 8 || self.i + 8 > self.b.len() {
            while let Some(&c) = self.b.get(self.i) {
                if !c.is_ascii_digit() {
                    break;
                }
                // Beyond u64: serde_json reads such integers as floats.
                n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
                self.i += 1;
            }
        }
        let digits = self.i - start;
        if digits == 0 || (self.b[start] == b'0' && (digits > 1 || neg)) {
            return None;
        }
        if matches!(self.b.get(self.i), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        // Down to i64::MIN, as serde_json.
        (!neg || n <= 1 << 63).then_some((neg, n))
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.peek()?;
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// Any value, as [`crate::parse_json`] builds it.
    fn value(&mut self, depth: usize) -> Option<Value> {
        match self.peek()? {
            b'"' => Some(Value::String(self.string()?.to_string())),
            b'-' | b'0'..=b'9' => Some(Value::Int(self.int()?)),
            b't' => self.literal(b"true").map(|()| Value::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Value::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Value::Null),
            b'[' if depth < MAX_DEPTH => {
                self.i += 1;
                let mut items = Vec::new();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(Value::List(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(Value::List(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'{' if depth < MAX_DEPTH => {
                self.i += 1;
                let mut m = Map::new();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(Value::Map(m));
                }
                loop {
                    let k = self.string()?;
                    self.eat(b':')?;
                    if m.get(k).is_some() {
                        return None;
                    }
                    let v = self.value(depth + 1)?;
                    m.push_unique(Arc::from(k), v);
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(Value::Map(m));
                        }
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}

/// Whether `hay` starts with `pat`, a word at a time (field names are
/// short: a call to `memcmp` costs more than the comparison).
#[inline(always)]
fn starts_with(hay: &[u8], pat: &[u8]) -> bool {
    let n = pat.len();
    if hay.len() < n {
        return false;
    }
    if n < 8 {
        return hay[..n] == *pat;
    }
    let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]));
    let mut k = 0;
    while k + 8 <= n {
        if word(hay, k) != word(pat, k) {
            return false;
        }
        k += 8;
    }
    // The last, partly compared word again, ending at the last byte.
    word(hay, n - 8) == word(pat, n - 8)
}

/// The value of the ASCII digits `w` starts with (up to all 8) and how many
/// there are, a word at a time: the SWAR conversion of simdjson's
/// `parse_eight_digits_unrolled`.
#[inline(always)]
fn eight_digits(w: &[u8]) -> (u64, usize) {
    let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
    // Each byte minus '0': a digit byte is then 0..=9.
    let x = v ^ 0x3030_3030_3030_3030;
    // The top bit of each byte that is not a digit (x > 9): adding 0x76
    // sets it from 10 up, `| x` above 0x7f. A carry out of a byte only
    // reaches later bytes, past the first non-digit, which is all we use.
    let not_digit = (x.wrapping_add(0x7676_7676_7676_7676) | x) & 0x8080_8080_8080_8080;
    let n = (not_digit.trailing_zeros() / 8) as usize;
    if n == 0 {
        return (0, 0);
    }
    // The n digits into the high bytes, leading zero digits below them.
    let x = x << (8 * (8 - n));
    // Pairs of digits, then fours, then all eight (each step multiplies by
    // (10^k << width) + 1 and keeps every other lane).
    let x = (x.wrapping_mul((10 << 8) + 1) >> 8) & 0x00ff_00ff_00ff_00ff;
    let x = (x.wrapping_mul((100 << 16) + 1) >> 16) & 0x0000_ffff_0000_ffff;
    let x = x.wrapping_mul((10000 << 32) + 1) >> 32;
    (x, n)
}

/// An integer given as sign and magnitude into an integer of at most 8
/// bytes: `encode(n, &Value::Int(i), buf)` without building the value or
/// going through 128 bits; `None` out of range.
#[inline(always)]
fn store_int(x: &IntNode, neg: bool, mag: u64, buf: &mut [u8]) -> Option<()> {
    let max = u64::MAX >> (64 - x.size * 8);
    let bits = if !neg {
        // Up to the largest value: of the type, or of its positive half.
        (mag <= max >> u32::from(x.signed)).then_some(mag)?
    } else {
        (x.signed && mag <= (max >> 1) + 1).then_some(mag.wrapping_neg() & max)?
    };
    // Fixed sizes, so each store is one instruction rather than a memcpy.
    match (x.size, x.order) {
        (1, _) => buf.copy_from_slice(&[bits as u8]),
        (2, ByteOrder::Little) => buf.copy_from_slice(&(bits as u16).to_le_bytes()),
        (2, ByteOrder::Big) => buf.copy_from_slice(&(bits as u16).to_be_bytes()),
        (4, ByteOrder::Little) => buf.copy_from_slice(&(bits as u32).to_le_bytes()),
        (4, ByteOrder::Big) => buf.copy_from_slice(&(bits as u32).to_be_bytes()),
        (8, ByteOrder::Little) => buf.copy_from_slice(&bits.to_le_bytes()),
        (8, ByteOrder::Big) => buf.copy_from_slice(&bits.to_be_bytes()),
        (n, ByteOrder::Little) => buf.copy_from_slice(&bits.to_le_bytes()[..n]),
        (n, ByteOrder::Big) => buf.copy_from_slice(&bits.to_be_bytes()[8 - n..]),
    }
    Some(())
}

/// Encodes the JSON value at the cursor into `buf` (zeroed by the caller),
/// as `encode(n, parse(text), buf)` would.
fn walk(n: &Node, s: &mut Scan<'_>, buf: &mut [u8], depth: usize) -> Option<()> {
    if depth >= MAX_DEPTH {
        return None;
    }
    match (n, s.peek()?) {
        (Node::Int(x), b'-' | b'0'..=b'9') if x.size <= 8 && buf.len() == x.size => {
            let (neg, mag) = s.int_parts()?;
            store_int(x, neg, mag, buf)
        }
        (Node::Record(r), b'{') if !r.has_unions() && r.fields.len() <= 128 => {
            s.i += 1;
            walk_record(r, s, buf, depth)
        }
        (Node::Array(a), b'[') if a.elem_size > 0 => {
            s.i += 1;
            if s.peek()? == b']' {
                s.i += 1;
                return Some(());
            }
            let mut slots = buf.chunks_exact_mut(a.elem_size);
            loop {
                // More items than elements: the general path says so.
                let slot = slots.next()?;
                match (&a.elem, s.peek()?) {
                    // A list of integers, without a call per item.
                    (Node::Int(x), b'-' | b'0'..=b'9') if x.size <= 8 && slot.len() == x.size => {
                        let (neg, mag) = s.int_parts()?;
                        store_int(x, neg, mag, slot)?;
                    }
                    _ => walk(&a.elem, s, slot, depth + 1)?,
                }
                match s.peek()? {
                    b',' => s.i += 1,
                    b']' => {
                        s.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }
        (_, b'-' | b'0'..=b'9') => encode_int(n, s.int()?, buf),
        (_, b'"') => encode_str(n, s.string()?, buf),
        _ => encode(n, &s.value(depth)?, buf).ok(),
    }
}

/// The fields of a record after its `{`, up to and including its `}`.
fn walk_record(r: &Record, s: &mut Scan<'_>, buf: &mut [u8], depth: usize) -> Option<()> {
    // Fields in declaration order with nothing between them, as `dump`
    // writes them: `"a":1,"b":2`. Each is a comparison of `,"name":` in
    // place, no name read, searched or counted against duplicates.
    let mut k = 0;
    while let Some(f) = r.fields.get(k) {
        if !s.eat_word(f.json_key(k == 0)) {
            break;
        }
        field_value(r, f, s, buf, depth)?;
        k += 1;
    }
    // Anything else from where that stopped (this also closes the record):
    // names in any order, space around them, each found and checked.
    let ones = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    let mut seen = [ones(k), ones(k.saturating_sub(64))];
    let mut hint = k;
    let c = s.peek()?;
    if c == b'}' {
        s.i += 1;
        return Some(());
    }
    if k > 0 {
        // After a value: a comma, then the next name.
        (c == b',').then(|| s.i += 1)?;
    }
    loop {
        // Names usually come in declaration order: try `"next":` as it
        // stands before reading a name and searching for it.
        s.peek()?;
        let i = match r.fields.get(hint) {
            Some(f) if s.eat_word(f.json_key(true)) => hint,
            _ => {
                // A name that is not UTF-8 matches no field.
                let k = s.raw_string()?;
                s.eat(b':')?;
                r.find_bytes(k, hint)?
            }
        };
        hint = i + 1;
        let (word, bit) = (i >> 6, 1u64 << (i & 63));
        if seen[word] & bit != 0 {
            return None;
        }
        seen[word] |= bit;
        field_value(r, &r.fields[i], s, buf, depth)?;
        match s.peek()? {
            b',' => s.i += 1,
            b'}' => {
                s.i += 1;
                return Some(());
            }
            _ => return None,
        }
    }
}

/// The value of field `f` of `r` at the cursor into its bytes of `buf`.
#[inline(always)]
fn field_value(
    r: &Record,
    f: &Field,
    s: &mut Scan<'_>,
    buf: &mut [u8],
    depth: usize,
) -> Option<()> {
    match (&f.node, f.bits, s.peek()?) {
        // `field: null` leaves the field zero, as in the general path.
        (_, _, b'n') => s.literal(b"null"),
        // The most common leaf, without a call.
        (Node::Int(x), None, b'-' | b'0'..=b'9') if x.size <= 8 => {
            let (neg, mag) = s.int_parts()?;
            store_int(x, neg, mag, buf.get_mut(f.offset..f.offset + x.size)?)
        }
        (node, None, _) => {
            let end = f.offset + node.size();
            walk(node, s, buf.get_mut(f.offset..end)?, depth + 1)
        }
        (_, Some(_), _) => {
            let v = s.value(depth + 1)?;
            encode_field(r, f, &v, buf).ok()
        }
    }
}

/// Whether entries with this root can take the fast path: the legacy format
/// is recognised by a `kind` member, so a struct with a `kind` field at the
/// root must go through the general path's check.
pub(crate) fn fast_root(plan: &Plan) -> bool {
    match plan.node() {
        Node::Record(r) => r.find("kind", 0).is_none(),
        _ => true,
    }
}

/// Encodes one entry `{"key": ..., "value": ...}` (either may be left out,
/// not both) from JSON text. Returns `false` to give up; the buffers are
/// then in no particular state.
pub(crate) fn encode_entry(
    key: &Plan,
    value: &Plan,
    text: &[u8],
    kbuf: &mut [u8],
    vbuf: &mut [u8],
) -> bool {
    fn run(key: &Plan, value: &Plan, text: &[u8], kbuf: &mut [u8], vbuf: &mut [u8]) -> Option<()> {
        let s = &mut Scan { b: text, i: 0 };
        kbuf.fill(0);
        vbuf.fill(0);
        s.eat(b'{')?;
        let (mut have_key, mut have_value) = (false, false);
        loop {
            match s.raw_string()? {
                b"key" if !have_key => {
                    have_key = true;
                    s.eat(b':')?;
                    walk(key.node(), s, kbuf, 1)?;
                }
                b"value" if !have_value => {
                    have_value = true;
                    s.eat(b':')?;
                    walk(value.node(), s, vbuf, 1)?;
                }
                _ => return None,
            }
            match s.peek()? {
                b',' => s.i += 1,
                b'}' => {
                    s.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        // Nothing but whitespace after the entry.
        (s.peek().is_none()).then_some(())
    }
    run(key, value, text, kbuf, vbuf).is_some()
}

/// Encodes one JSON value (the whole text) for `plan`; see [`encode_entry`].
pub(crate) fn encode_value(plan: &Plan, text: &[u8], buf: &mut [u8]) -> bool {
    let s = &mut Scan { b: text, i: 0 };
    buf.fill(0);
    buf.len() == plan.size() && walk(plan.node(), s, buf, 0).is_some() && s.peek().is_none()
}

// ---------------------------------------------------------------------------
// Bytes to JSON text
// ---------------------------------------------------------------------------

/// Writes `serde_json::to_string(&v)` of a decoded value.
fn write_value(v: &Value, out: &mut Vec<u8>) {
    // Writing JSON into a Vec cannot fail: `Value` has string keys only.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// A whole integer of at most 8 bytes without a display hint, as decode
/// gives it: a number.
#[inline(always)]
fn write_int(i: &IntNode, bytes: &[u8], out: &mut Vec<u8>) {
    let u = match (i.size, i.order) {
        (1, _) => u64::from(bytes[0]),
        (2, ByteOrder::Little) => u64::from(u16::from_le_bytes([bytes[0], bytes[1]])),
        (2, ByteOrder::Big) => u64::from(u16::from_be_bytes([bytes[0], bytes[1]])),
        (4, ByteOrder::Little) => {
            u64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        }
        (4, ByteOrder::Big) => {
            u64::from(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        }
        _ => load(bytes, i.order) as u64,
    };
    let mut b = itoa::Buffer::new();
    let text = if i.signed {
        b.format(sign_extend(u128::from(u), i.size as u32 * 8) as i64)
    } else {
        b.format(u)
    };
    out.extend_from_slice(text.as_bytes());
}

fn write_ipv4(o: &[u8], out: &mut Vec<u8>) {
    let mut b = itoa::Buffer::new();
    out.push(b'"');
    for (i, x) in o.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(b.format(*x).as_bytes());
    }
    out.push(b'"');
}

/// Writes the JSON text of `decode(n, bytes)`, exactly as serde_json prints
/// that value, without building it: numbers, IPv4 addresses, structs and
/// plain arrays directly, anything else through its `Value`.
pub(crate) fn write_decoded(n: &Node, bytes: &[u8], out: &mut Vec<u8>) {
    match n {
        Node::Int(i) if i.format.is_none() && i.size <= 8 => write_int(i, bytes, out),
        Node::Int(i) if i.format == Some(Format::Ip) && i.size == 4 => write_ipv4(bytes, out),
        Node::Record(r) if !r.show_addr => {
            out.push(b'{');
            for (k, &ix) in r.decode.iter().enumerate() {
                let f = &r.fields[ix];
                out.extend_from_slice(f.json_key(k == 0));
                match (f.bits, &f.node) {
                    // The most common leaf, without a call.
                    (None, Node::Int(i)) if i.format.is_none() && i.size <= 8 => {
                        write_int(i, &bytes[f.offset..f.offset + i.size], out)
                    }
                    (None, _) => {
                        write_decoded(&f.node, &bytes[f.offset..f.offset + f.node.size()], out)
                    }
                    (Some((off, width)), _) => {
                        let bits = load_bits(bytes, off, width, r.bit_order);
                        write_value(&scalar_value(&f.node, bits, width), out);
                    }
                }
            }
            out.push(b'}');
        }
        // Byte arrays without a format hint decode as lists too.
        Node::Array(a)
            if a.kind == ArrKind::Other || (a.kind == ArrKind::Bytes && a.format.is_none()) =>
        {
            let es = a.elem_size;
            let len = a.decoded_len(bytes);
            out.push(b'[');
            for i in 0..len {
                if i > 0 {
                    out.push(b',');
                }
                write_decoded(&a.elem, &bytes[i * es..(i + 1) * es], out);
            }
            out.push(b']');
        }
        Node::Array(a) if a.format == Some(Format::Ip) && a.len == 16 && a.elem_size == 1 => {
            if bytes[4..].iter().all(|b| *b == 0) {
                write_ipv4(&bytes[..4], out)
            } else {
                // Decode's text of the address; it needs no JSON escapes.
                let mut o = [0u8; 16];
                o.copy_from_slice(bytes);
                out.push(b'"');
                // Writing into a Vec cannot fail.
                let _ = write!(out, "{}", std::net::Ipv6Addr::from(o));
                out.push(b'"');
            }
        }
        _ => write_value(&decode(n, bytes), out),
    }
}
