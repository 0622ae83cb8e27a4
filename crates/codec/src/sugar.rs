//! Text forms accepted for numbers and byte strings: `0x..`/`0o..`/`0b..`,
//! decimal strings, IPv4/IPv6, MAC and hex byte strings, and a CIDR helper.

use std::net::{IpAddr, Ipv6Addr};

use crate::CodecError;

/// An integer of up to 128 bits with its sign kept apart, so both
/// `-2^127` and `2^128 - 1` are representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wide {
    pub(crate) neg: bool,
    pub(crate) mag: u128,
}

impl Wide {
    pub(crate) fn from_i128(i: i128) -> Self {
        Wide {
            neg: i < 0,
            mag: i.unsigned_abs(),
        }
    }

    /// Two's complement bits, if the number fits in `bits` bits with the
    /// given signedness.
    pub(crate) fn to_bits(self, bits: u32, signed: bool) -> Option<u128> {
        let mask = mask(bits);
        if signed {
            let max_pos = mask >> 1; // 2^(bits-1) - 1
            if self.neg {
                if self.mag > max_pos + 1 {
                    return None;
                }
                Some(self.mag.wrapping_neg() & mask)
            } else if self.mag > max_pos {
                None
            } else {
                Some(self.mag)
            }
        } else if (self.neg && self.mag != 0) || self.mag > mask {
            None
        } else {
            Some(self.mag)
        }
    }
}

impl std::fmt::Display for Wide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.neg && self.mag != 0 {
            write!(f, "-{}", self.mag)
        } else {
            write!(f, "{}", self.mag)
        }
    }
}

/// All ones in the low `bits` bits (`bits` in 1..=128).
pub(crate) fn mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// The smallest and largest integer of `bits` bits (1..=128): what
/// [`Wide::to_bits`] accepts, and what messages and JSON Schemas state.
pub(crate) fn int_bounds(bits: u32, signed: bool) -> (Wide, Wide) {
    let m = mask(bits);
    if signed {
        let min = Wide {
            neg: true,
            mag: (m >> 1) + 1,
        };
        let max = Wide {
            neg: false,
            mag: m >> 1,
        };
        (min, max)
    } else {
        (Wide { neg: false, mag: 0 }, Wide { neg: false, mag: m })
    }
}

/// The C range of an integer of `bits` bits: `0..=65535`, `-128..=127`.
pub(crate) fn range_text(bits: u32, signed: bool) -> String {
    let (min, max) = int_bounds(bits, signed);
    format!("{min}..={max}")
}

/// Sign-extends the low `bits` bits.
pub(crate) fn sign_extend(v: u128, bits: u32) -> i128 {
    if bits >= 128 {
        return v as i128;
    }
    let shift = 128 - bits;
    ((v << shift) as i128) >> shift
}

/// Parses `123`, `-5`, `+7`, `0x1f`, `-0x10`, `0o17`, `0b101`, with `_`
/// allowed between digits. `None` when the text is not an integer or does
/// not fit in 128 bits of magnitude.
pub(crate) fn parse_int_text(s: &str) -> Option<Wide> {
    let s = s.trim();
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = |p: &str| rest.get(..2).is_some_and(|h| h.eq_ignore_ascii_case(p));
    let (radix, digits) = if lower("0x") {
        (16, &rest[2..])
    } else if lower("0o") {
        (8, &rest[2..])
    } else if lower("0b") {
        (2, &rest[2..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let mut mag: u128 = 0;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let d = c.to_digit(radix)?;
        mag = mag
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(d))?;
    }
    Some(Wide { neg, mag })
}

/// Parses a `0x...` byte string (memory order, two hex digits per byte,
/// `_`, `:` and spaces between bytes ignored). `Err` says why.
pub(crate) fn parse_hex_bytes(s: &str) -> Result<Vec<u8>, &'static str> {
    let body = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or("a hex byte string starts with 0x")?;
    let digits: Vec<u8> = body
        .bytes()
        .filter(|b| !matches!(b, b'_' | b' ' | b':'))
        .collect();
    if digits.len() & 1 == 1 {
        return Err("a hex byte string needs two hex digits per byte");
    }
    digits
        .chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16);
            let lo = (p[1] as char).to_digit(16);
            match (hi, lo) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err("not a hex digit in a 0x byte string"),
            }
        })
        .collect()
}

/// `0x` and two lower-case hex digits per byte.
pub(crate) fn hex_string(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push(D[usize::from(b >> 4)] as char);
        s.push(D[usize::from(b & 15)] as char);
    }
    s
}

/// `aa:bb:cc:dd:ee:ff` (or `-` separated) to 6 bytes.
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split(sep) {
        if n == 6 || part.is_empty() || part.len() > 2 {
            return None;
        }
        out[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(out)
}

pub(crate) fn mac_string(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `s.parse::<Ipv4Addr>()`: four decimal octets of 1-3 digits without a
/// leading zero, separated by dots. Written out because the standard parser
/// costs as much as encoding the rest of a bulk entry; a test checks it
/// against the standard one.
pub(crate) fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    let b = s.as_bytes();
    let mut out = [0u8; 4];
    let mut i = 0;
    for (k, slot) in out.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v = 0u32;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            v = v * 10 + u32::from(c - b'0');
            i += 1;
            if i - start > 3 {
                return None;
            }
        }
        let n = i - start;
        if n == 0 || (n > 1 && b[start] == b'0') || v > 255 {
            return None;
        }
        *slot = v as u8;
    }
    (i == b.len()).then_some(out)
}

/// `s.parse::<Ipv6Addr>()`. Text without an embedded IPv4 address (no `.`)
/// is read here, step for step as the standard parser does (groups of 1-4
/// hex digits, at most one `::` standing for one or more zero groups);
/// anything else goes to the standard parser. A test checks the two agree.
pub(crate) fn parse_ipv6(s: &str) -> Option<[u8; 16]> {
    if s.contains('.') {
        return s.parse::<Ipv6Addr>().ok().map(|a| a.octets());
    }
    let b = s.as_bytes();
    /// 1-4 hex digits at `*i` (none consumed when there are none or more).
    fn group(b: &[u8], i: &mut usize) -> Option<u16> {
        let mut j = *i;
        let mut v = 0u16;
        while let Some(d) = b.get(j).and_then(|c| char::from(*c).to_digit(16)) {
            if j - *i == 4 {
                return None;
            }
            v = v << 4 | d as u16;
            j += 1;
        }
        (j > *i).then(|| {
            *i = j;
            v
        })
    }
    /// Groups separated by single colons into `out`; how many.
    fn groups(b: &[u8], i: &mut usize, out: &mut [u16]) -> usize {
        for (k, slot) in out.iter_mut().enumerate() {
            let mut j = *i;
            if k > 0 {
                if b.get(j) != Some(&b':') {
                    return k;
                }
                j += 1;
            }
            match group(b, &mut j) {
                Some(g) => {
                    *slot = g;
                    *i = j;
                }
                None => return k,
            }
        }
        out.len()
    }
    let mut head = [0u16; 8];
    let mut i = 0;
    let head_len = groups(b, &mut i, &mut head);
    if head_len < 8 {
        // `::`, then at most 7 - head_len groups.
        if b.get(i..i + 2) != Some(b"::") {
            return None;
        }
        i += 2;
        let mut tail = [0u16; 7];
        let tail_len = groups(b, &mut i, &mut tail[..7 - head_len]);
        head[8 - tail_len..].copy_from_slice(&tail[..tail_len]);
    }
    if i != b.len() {
        return None;
    }
    let mut out = [0u8; 16];
    for (o, g) in out.chunks_exact_mut(2).zip(head) {
        o.copy_from_slice(&g.to_be_bytes());
    }
    Some(out)
}

/// Splits a CIDR such as `10.0.0.0/8` or `fd00::/64` into the address and the
/// prefix length. Host bits must be zero. The codec itself does not take
/// CIDRs for a field, because the prefix length lives in another field (for
/// an LPM trie key it is `prefixLen`, often plus 32 for an ifindex that is
/// always matched); callers build the key from the two parts.
///
/// ```
/// let (addr, len) = ebpf_sdk_codec::parse_cidr("10.0.0.0/8").unwrap();
/// assert_eq!((addr.to_string(), len), ("10.0.0.0".to_string(), 8));
/// assert!(ebpf_sdk_codec::parse_cidr("10.0.0.1/8").is_err());
/// ```
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), CodecError> {
    let bad = |reason: String| CodecError::Mismatch {
        path: "cidr".into(),
        ty: "CIDR".into(),
        expected: "an address/prefix-length such as 10.0.0.0/8 or fd00::/64".into(),
        given: reason,
    };
    let (addr, len) = s
        .split_once('/')
        .ok_or_else(|| bad(format!("{s:?} (no /)")))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| bad(format!("{s:?} (bad address)")))?;
    let len: u8 = len
        .parse()
        .map_err(|_| bad(format!("{s:?} (bad prefix length)")))?;
    let (bits, value): (u8, u128) = match addr {
        IpAddr::V4(a) => (32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, u128::from(a)),
    };
    if len > bits {
        return Err(bad(format!("{s:?} (prefix longer than {bits})")));
    }
    let host = if len == bits {
        0
    } else {
        mask(u32::from(bits - len))
    };
    if value & host != 0 {
        return Err(bad(format!("{s:?} (host bits set)")));
    }
    Ok((addr, len))
}

// ---------------------------------------------------------------------------
// The same text forms as regular expressions, for JSON Schema `pattern`s.
//
// Each pattern accepts exactly the text the parser it names accepts, except
// where its comment says otherwise; the tests below check every one against
// its parser on random text. They use only syntax that ECMA-262 (what JSON
// Schema patterns are, and what editors run) and Rust's regex crate read the
// same way: no `\s`, `\d` or `\w`, no look-around.
// ---------------------------------------------------------------------------

/// One character `str::trim` removes (Unicode White_Space).
pub(crate) const TRIM: &str =
    r"[\t\n\u000B\u000C\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// `0x` and hex digits with `_` between them: [`parse_int_text`]'s hex form
/// without a sign (what `_Bool` and float raw bits take).
pub(crate) const HEX_INT: &str = "0[xX][0-9a-fA-F](?:_*[0-9a-fA-F])*";

/// [`parse_int_text`] of trimmed text, except that it cannot see the 128-bit
/// magnitude limit (nor any field's range).
pub(crate) const INT_TEXT: &str = "[+-]?(?:0[xX][0-9a-fA-F](?:_*[0-9a-fA-F])*\
     |0[oO][0-7](?:_*[0-7])*|0[bB][01](?:_*[01])*|[0-9](?:_*[0-9])*)";

/// One decimal octet of an IPv4 address: 0..=255, no leading zeros.
const OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";

/// [`parse_ipv4`]: the standard library's `Ipv4Addr` text.
pub(crate) fn ipv4_pattern() -> String {
    format!(r"(?:{OCTET}\.){{3}}{OCTET}")
}

/// [`parse_ipv6`]: the standard library's `Ipv6Addr` text: eight groups of
/// one to four hex digits, or the last two as an IPv4 address, or fewer
/// groups around one `::` that stands for at least one zero group.
pub(crate) fn ipv6_pattern() -> String {
    const H: &str = "[0-9a-fA-F]{1,4}";
    let v4 = ipv4_pattern();
    // `n` groups, each followed by a colon.
    let groups = |n: usize| {
        if n == 0 {
            String::new()
        } else {
            format!("(?:{H}:){{{n}}}")
        }
    };
    // Up to `max` groups separated by colons (none at all when `max` is 0),
    // the last two of them possibly an IPv4 address.
    let tail = |max: usize| -> String {
        let hex = match max {
            0 => return String::new(),
            1 => H.to_string(),
            _ => format!("(?:{H}:){{0,{}}}{H}", max - 1),
        };
        if max >= 2 {
            let v4_after = match max - 2 {
                0 => String::new(),
                k => format!("(?:{H}:){{0,{k}}}"),
            };
            format!("(?:{v4_after}{v4}|{hex})?")
        } else {
            format!("(?:{hex})?")
        }
    };
    let mut alts = vec![format!("{}{H}", groups(7)), format!("{}{v4}", groups(6))];
    // `head` groups before `::`, at most `7 - head` after it.
    for head in 0..=7 {
        let before = match head {
            0 => String::new(),
            n => format!("{}{H}", groups(n - 1)),
        };
        alts.push(format!("{before}::{}", tail(7 - head)));
    }
    format!("(?:{})", alts.join("|"))
}

/// One byte of a MAC address as `u8::from_str_radix(_, 16)` reads it: one
/// or two hex digits, or `+` and one.
const MAC_BYTE: &str = r"(?:[0-9a-fA-F]{1,2}|\+[0-9a-fA-F])";

/// [`parse_mac`]: six bytes separated by `:`, or all by `-`.
pub(crate) fn mac_pattern() -> String {
    format!("(?:{MAC_BYTE}(?::{MAC_BYTE}){{5}}|{MAC_BYTE}(?:-{MAC_BYTE}){{5}})")
}

/// [`parse_hex_bytes`] of text giving at most `max` bytes (exactly `max`
/// when `exact`): `0x`, then pairs of hex digits with `_`, ` ` and `:`
/// anywhere after the `0x`.
pub(crate) fn hex_bytes_pattern(max: usize, exact: bool) -> String {
    const SEP: &str = "[_ :]*";
    const D: &str = "[0-9a-fA-F]";
    let count = if exact {
        format!("{{{max}}}")
    } else {
        format!("{{0,{max}}}")
    };
    format!("0[xX]{SEP}(?:{D}{SEP}{D}{SEP}){count}")
}

/// What `f64::from_str` reads: a sign, then `inf`, `infinity` or `nan` in
/// any case, or decimal digits with a point and an exponent.
pub(crate) const FLOAT_TEXT: &str = "[+-]?(?:[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN]\
     |(?:[0-9]+(?:[.][0-9]*)?|[.][0-9]+)(?:[eE][+-]?[0-9]+)?)";

/// Text without a NUL byte (what a `char[N]` string must be).
pub(crate) const NO_NUL: &str = r"[^\u0000]*";

/// `core` as the whole text; with `trimmed`, with the whitespace `str::trim`
/// removes around it.
pub(crate) fn whole(core: &str, trimmed: bool) -> String {
    if trimmed {
        format!("^{TRIM}*(?:{core}){TRIM}*$")
    } else {
        format!("^(?:{core})$")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn std_v4(s: &str) -> Option<[u8; 4]> {
        s.parse::<Ipv4Addr>().ok().map(|a| a.octets())
    }

    fn std_v6(s: &str) -> Option<[u8; 16]> {
        s.parse::<Ipv6Addr>().ok().map(|a| a.octets())
    }

    #[test]
    fn address_parsers_are_the_standard_ones() {
        for s in [
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.1.1.1",
            "1.1.1",
            "1.1.1.1.",
            "1..1.1",
            "1.1.1.1 ",
            "1000.1.1.1",
            "::",
            "::1",
            "1::",
            "fd00:0:0:1::5",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::8",
            "::1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8::",
            ":::",
            "1:::2",
            ":1::2",
            "1::2:",
            "1::2::3",
            "12345::",
            "ABCD:ef01::",
            "::ffff:10.0.0.1",
            "1:2:3:4:5:6:1.2.3.4",
            "",
            ":",
            "g::",
            "0000:0000::00001",
            "1:2:3:4:5:6:7",
            "\u{e9}::",
        ] {
            assert_eq!(parse_ipv4(s), std_v4(s), "{s:?}");
            assert_eq!(parse_ipv6(s), std_v6(s), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn address_parsers_agree_on_random_text(s in "[0-9a-fA-F:.g ]{0,42}") {
            prop_assert_eq!(parse_ipv4(&s), std_v4(&s));
            prop_assert_eq!(parse_ipv6(&s), std_v6(&s));
        }

        #[test]
        fn address_parsers_agree_on_address_like_text(
            groups in proptest::collection::vec("[0-9a-f]{0,5}", 0..10),
            seps in proptest::collection::vec(prop_oneof![Just(":"), Just("::"), Just("."), Just(":::")], 0..10),
        ) {
            let mut s = String::new();
            for (i, g) in groups.iter().enumerate() {
                s.push_str(g);
                if let Some(sep) = seps.get(i) {
                    s.push_str(sep);
                }
            }
            prop_assert_eq!(parse_ipv4(&s), std_v4(&s));
            prop_assert_eq!(parse_ipv6(&s), std_v6(&s));
        }

        #[test]
        fn ipv4_parser_agrees_on_dotted_numbers(
            parts in proptest::collection::vec("[0-9]{0,4}", 1..6),
            tail in prop_oneof![Just(""), Just("."), Just(" "), Just("::")],
        ) {
            let s = parts.join(".") + tail;
            prop_assert_eq!(parse_ipv4(&s), std_v4(&s));
            prop_assert_eq!(parse_ipv6(&s), std_v6(&s));
            let v6 = format!("::ffff:{s}");
            prop_assert_eq!(parse_ipv6(&v6), std_v6(&v6));
        }
    }

    #[test]
    fn int_text() {
        let w = |s| parse_int_text(s).map(|w: Wide| w.to_string());
        assert_eq!(w("0x1F").as_deref(), Some("31"));
        assert_eq!(w("-0x10").as_deref(), Some("-16"));
        assert_eq!(w("0o17").as_deref(), Some("15"));
        assert_eq!(w("0b1010").as_deref(), Some("10"));
        assert_eq!(w("1_000").as_deref(), Some("1000"));
        assert_eq!(w("+7").as_deref(), Some("7"));
        assert_eq!(
            w("340282366920938463463374607431768211455").as_deref(),
            Some("340282366920938463463374607431768211455")
        );
        assert_eq!(w("340282366920938463463374607431768211456"), None);
        assert_eq!(w("0x"), None);
        assert_eq!(w("1.5"), None);
        assert_eq!(w("_1"), None);
        assert_eq!(w(""), None);
        assert_eq!(w("-"), None);
    }

    #[test]
    fn ranges() {
        let n = |i: i128| Wide::from_i128(i);
        assert_eq!(n(-128).to_bits(8, true), Some(0x80));
        assert_eq!(n(-129).to_bits(8, true), None);
        assert_eq!(n(127).to_bits(8, true), Some(127));
        assert_eq!(n(128).to_bits(8, true), None);
        assert_eq!(n(255).to_bits(8, false), Some(255));
        assert_eq!(n(-1).to_bits(8, false), None);
        assert_eq!(n(i128::MIN).to_bits(128, true), Some(1u128 << 127));
        assert_eq!(
            Wide {
                neg: false,
                mag: u128::MAX
            }
            .to_bits(128, false),
            Some(u128::MAX)
        );
        assert_eq!(
            Wide {
                neg: false,
                mag: u128::MAX
            }
            .to_bits(128, true),
            None
        );
        assert_eq!(n(-4).to_bits(3, true), Some(0b100));
        assert_eq!(range_text(16, false), "0..=65535");
        assert_eq!(range_text(8, true), "-128..=127");
        assert_eq!(
            range_text(128, true),
            "-170141183460469231731687303715884105728..=170141183460469231731687303715884105727"
        );
        assert_eq!(sign_extend(0b100, 3), -4);
        assert_eq!(sign_extend(u128::MAX, 128), -1);
    }

    #[test]
    fn bytes_forms() {
        assert_eq!(parse_hex_bytes("0x0a0B"), Ok(vec![10, 11]));
        assert_eq!(
            parse_hex_bytes("0xde_ad be:ef"),
            Ok(vec![0xde, 0xad, 0xbe, 0xef])
        );
        assert!(parse_hex_bytes("0xabc").is_err());
        assert!(parse_hex_bytes("0xzz").is_err());
        assert_eq!(hex_string(&[0, 0xff]), "0x00ff");
        assert_eq!(
            parse_mac("AA:bb:0c:dd:ee:ff"),
            Some([0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0xff])
        );
        assert_eq!(
            parse_mac("aa-bb-cc-dd-ee-ff"),
            Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
        );
        assert_eq!(parse_mac("aa:bb:cc:dd:ee"), None);
        assert_eq!(parse_mac("aa:bb:cc:dd:ee:ff:00"), None);
        assert_eq!(mac_string(&[1, 2, 3, 0xa, 0xb, 0xc]), "01:02:03:0a:0b:0c");
    }

    #[test]
    fn cidr() {
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().1, 8);
        assert_eq!(parse_cidr("10.1.2.3/32").unwrap().1, 32);
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap().1, 0);
        assert_eq!(parse_cidr("fd00::/64").unwrap().1, 64);
        assert!(parse_cidr("10.0.0.1/8").is_err());
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("10.0.0.0").is_err());
        assert_eq!(
            parse_cidr("10.0.0.1/8").unwrap_err().to_string(),
            "cidr: expected an address/prefix-length such as 10.0.0.0/8 or fd00::/64 for CIDR, got \"10.0.0.1/8\" (host bits set)"
        );
    }

    /// A JSON Schema `pattern` as a validator (the ECMA-262 dialect that
    /// the `jsonschema` crate implements), so the test reads the pattern as
    /// a JSON Schema consumer does.
    fn pattern(p: &str) -> impl Fn(&str) -> bool {
        let v = jsonschema::draft7::new(&serde_json::json!({"type": "string", "pattern": p}))
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        move |s: &str| v.is_valid(&serde_json::Value::from(s))
    }

    /// Deterministic pseudo-random text (xorshift64*): `n` strings of up to
    /// `max_len` characters from `alphabet`, and `n` edits (a character
    /// deleted, replaced or inserted) of each of `seeds`.
    fn texts(alphabet: &[char], max_len: usize, seeds: &[String], n: usize) -> Vec<String> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |below: usize| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as usize % below.max(1)
        };
        let mut out: Vec<String> = seeds.to_vec();
        for _ in 0..n {
            let len = next(max_len + 1);
            out.push((0..len).map(|_| alphabet[next(alphabet.len())]).collect());
        }
        for seed in seeds {
            for _ in 0..n / seeds.len().max(1) + 1 {
                let mut chars: Vec<char> = seed.chars().collect();
                for _ in 0..=next(2) {
                    let at = next(chars.len() + 1);
                    let c = alphabet[next(alphabet.len())];
                    match next(3) {
                        0 if at < chars.len() => {
                            chars.remove(at);
                        }
                        1 if at < chars.len() => chars[at] = c,
                        _ => chars.insert(at, c),
                    }
                }
                out.push(chars.into_iter().collect());
            }
        }
        out
    }

    /// Asserts that `re` (a whole-text pattern) matches exactly the texts
    /// `parser` accepts; returns how many of `samples` were accepted.
    fn same(name: &str, re: &str, samples: &[String], parser: impl Fn(&str) -> bool) -> usize {
        let m = pattern(re);
        let mut accepted = 0;
        for s in samples {
            let (want, got) = (parser(s), m(s));
            assert_eq!(got, want, "{name}: pattern {got}, parser {want} for {s:?}");
            accepted += usize::from(want);
        }
        accepted
    }

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn trim_class_is_what_trim_removes() {
        let m = pattern(&format!("^{TRIM}$"));
        for c in (0u32..0x3100).chain([0xfeff, 0xffff, 0x1_0000]) {
            let Some(c) = char::from_u32(c) else { continue };
            assert_eq!(m(&c.to_string()), c.is_whitespace(), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn int_text_pattern_is_parse_int_text() {
        let seeds: Vec<String> = [
            "0x1F", "-0x10", "0o17", "0b101", "1_000", "+7", " 42 ", "0", "-0",
        ]
        .map(String::from)
        .to_vec();
        let alphabet = chars("0123456789abcdefxXoObB_+- \t\u{85}");
        let samples = texts(&alphabet, 12, &seeds, 20_000);
        let n = same("int text", &whole(INT_TEXT, true), &samples, |s| {
            parse_int_text(s).is_some()
        });
        assert!(n > 1000, "{n} accepted");
        // Beyond 128 bits the parser refuses what the pattern cannot tell.
        let big = "340282366920938463463374607431768211456";
        assert!(pattern(&whole(INT_TEXT, true))(big) && parse_int_text(big).is_none());
    }

    #[test]
    fn address_patterns_are_the_std_parsers() {
        let mut seeds = Vec::new();
        let mut x = 0x0123_4567_89ab_cdefu128;
        for i in 0..300u32 {
            x = x
                .wrapping_mul(0x2545_f491_4f6c_dd1d_2545_f491_4f6c_dd1d)
                .rotate_left(17)
                ^ u128::from(i);
            // Runs of zero groups, so `::` appears in every position.
            let zeros = (x >> 64) as u16;
            let groups: Vec<u16> = (0..8)
                .map(|g| {
                    if zeros & (1 << g) != 0 {
                        0
                    } else {
                        (x >> (g * 16)) as u16
                    }
                })
                .collect();
            let mut o = [0u8; 16];
            for (g, v) in groups.iter().enumerate() {
                o[2 * g..2 * g + 2].copy_from_slice(&v.to_be_bytes());
            }
            let a = std::net::Ipv6Addr::from(o);
            seeds.push(a.to_string());
            seeds.push(format!("{a:?}").to_uppercase());
            let full: Vec<String> = groups.iter().map(|g| format!("{g:x}")).collect();
            seeds.push(full.join(":"));
            seeds.push(format!(
                "{}:{}",
                full[..6].join(":"),
                std::net::Ipv4Addr::from(x as u32)
            ));
            seeds.push(format!(
                "::ffff:{}",
                std::net::Ipv4Addr::from((x >> 32) as u32)
            ));
            seeds.push(std::net::Ipv4Addr::from(x as u32).to_string());
        }
        let alphabet = chars("0123456789abcdefABCDEF:.:.:");
        let samples = texts(&alphabet, 24, &seeds, 30_000);
        let v6 = same("IPv6", &whole(&ipv6_pattern(), false), &samples, |s| {
            parse_ipv6(s).is_some()
        });
        let v4 = same("IPv4", &whole(&ipv4_pattern(), false), &samples, |s| {
            parse_ipv4(s).is_some()
        });
        assert!(v6 > 1000 && v4 > 300, "{v6} IPv6 and {v4} IPv4 accepted");
    }

    #[test]
    fn mac_and_hex_byte_patterns_are_their_parsers() {
        let seeds: Vec<String> = [
            "02:00:5e:10:00:01",
            "AA-bb-0c-dd-ee-ff",
            "a:b:c:d:e:f",
            "+a:bb:cc:dd:ee:ff",
            "0x0a0B",
            "0xde_ad be:ef",
            "0x",
            "0X 01 02 03",
            "0x01_02_03_04_05_06",
            "0x0102",
        ]
        .map(String::from)
        .to_vec();
        let alphabet = chars("0123456789abcdefABCDEFxX:-+_ ");
        let samples = texts(&alphabet, 20, &seeds, 20_000);
        let macs = same("MAC", &whole(&mac_pattern(), false), &samples, |s| {
            parse_mac(s).is_some()
        });
        assert!(macs > 200, "{macs} MACs accepted");
        for max in [0, 1, 3, 4, 6] {
            let upto = same(
                "hex bytes",
                &whole(&hex_bytes_pattern(max, false), false),
                &samples,
                |s| parse_hex_bytes(s).is_ok_and(|b| b.len() <= max),
            );
            let exact = same(
                "hex bytes, exact",
                &whole(&hex_bytes_pattern(max, true), false),
                &samples,
                |s| parse_hex_bytes(s).is_ok_and(|b| b.len() == max),
            );
            assert!(
                upto > 100 && exact > 5,
                "{upto} and {exact} accepted for {max}"
            );
        }
    }

    #[test]
    fn float_pattern_is_f64_from_str() {
        let seeds: Vec<String> = [
            "1.5",
            "-2.25e10",
            ".5",
            "5.",
            "inf",
            "-Infinity",
            "NaN",
            "+nan",
            "1E-3",
        ]
        .map(String::from)
        .to_vec();
        let alphabet = chars("0123456789.eE+-infatyINFATY_x");
        let samples = texts(&alphabet, 12, &seeds, 20_000);
        let n = same("float", &whole(FLOAT_TEXT, false), &samples, |s| {
            s.parse::<f64>().is_ok()
        });
        assert!(n > 1000, "{n} accepted");
    }
}
