//! Every rule of the codec on hand-built schemas, with the exact bytes.

mod common;
use common::*;

use ebpf_sdk_codec::{template, Codec, CodecOptions, Plan, Value};
use ebpf_sdk_schema::{ByteOrder, Format, Member, TypeKind, TypeNode};

#[test]
fn integers_all_sizes_and_orders() {
    let le = |t: TypeNode, v: &str| enc(&plan(&t), v);
    let be_ = |t: TypeNode, v: &str| enc(&plan_be(&t), v);
    assert_eq!(le(u8(), "255"), "ff");
    assert_eq!(le(u16(), "0x1234"), "3412");
    assert_eq!(be_(u16(), "0x1234"), "1234");
    assert_eq!(le(u32(), "0x01020304"), "04030201");
    assert_eq!(be_(u32(), "0x01020304"), "01020304");
    assert_eq!(le(u64(), "0x0102030405060708"), "0807060504030201");
    assert_eq!(be_(u64(), "0x0102030405060708"), "0102030405060708");
    assert_eq!(le(s8(), "-1"), "ff");
    assert_eq!(le(s16(), "-2"), "feff");
    assert_eq!(le(s32(), "-2147483648"), "00000080");
    assert_eq!(le(s64(), "-9223372036854775808"), "0000000000000080");
    assert_eq!(
        le(u128(), "0x0102030405060708090a0b0c0d0e0f10"),
        "100f0e0d0c0b0a090807060504030201"
    );
    assert_eq!(
        be_(u128(), "0x0102030405060708090a0b0c0d0e0f10"),
        "0102030405060708090a0b0c0d0e0f10"
    );
    assert_eq!(
        le(u128(), "'340282366920938463463374607431768211455'"),
        "ff".repeat(16)
    );
    assert_eq!(le(s128(), "-1"), "ff".repeat(16));
    assert_eq!(
        le(s128(), "'-170141183460469231731687303715884105728'"),
        format!("{}80", "00".repeat(15))
    );
    // __be16/__be32/__be64 are big-endian on a little-endian target.
    assert_eq!(le(be(2), "8080"), "1f90");
    assert_eq!(le(be(4), "0x0a000001"), "0a000001");
    assert_eq!(le(be(8), "1"), "0000000000000001");
    // Every spelling of a number.
    for v in [
        "42",
        "'42'",
        "0x2a",
        "'0x2a'",
        "0o52",
        "'0o52'",
        "0b101010",
        "'0b101010'",
        "'+42'",
        "'4_2'",
    ] {
        assert_eq!(le(u32(), v), "2a000000", "{v}");
    }
    assert_eq!(le(s32(), "'-0x10'"), "f0ffffff");
    assert_eq!(le(u32(), "~"), "00000000");
}

#[test]
fn integer_errors_never_wrap() {
    let p = plan(&u8());
    assert_eq!(
        enc_err(&p, "256"),
        "value: 256 does not fit in __u8 (0..=255)"
    );
    assert_eq!(
        enc_err(&p, "-1"),
        "value: -1 does not fit in __u8 (0..=255)"
    );
    assert_eq!(
        enc_err(&plan(&s8()), "128"),
        "value: 128 does not fit in __s8 (-128..=127)"
    );
    assert_eq!(
        enc_err(&plan(&s8()), "-129"),
        "value: -129 does not fit in __s8 (-128..=127)"
    );
    assert_eq!(
        enc_err(&plan(&u64()), "'18446744073709551616'"),
        "value: 18446744073709551616 does not fit in __u64 (0..=18446744073709551615)"
    );
    assert_eq!(
        enc_err(&plan(&u128()), "'340282366920938463463374607431768211456'"),
        "value: expected an integer (10, -3, 0x1f, 0o17, 0b101, or as a string) or an IPv6 address (or an IPv4 address, into the first 4 bytes) for __u128, got \"340282366920938463463374607431768211456\""
    );
    assert_eq!(
        enc_err(&p, ".nan"),
        "value: expected an integer (10, -3, 0x1f, 0o17, 0b101, or as a string) for __u8, got a float (NaN)"
    );
    assert_eq!(
        enc_err(&p, "2.0"),
        "value: expected an integer (10, -3, 0x1f, 0o17, 0b101, or as a string) for __u8, got a float (2)"
    );
    assert_eq!(
        enc_err(&p, "true"),
        "value: expected an integer (10, -3, 0x1f, 0o17, 0b101, or as a string) for __u8, got true"
    );
    assert_eq!(
        enc_err(&p, "'12abc'"),
        "value: expected an integer (10, -3, 0x1f, 0o17, 0b101, or as a string) for __u8, got \"12abc\""
    );
    assert!(enc_err(&p, "[1]").contains("got a list of 1 elements"));
    // A JSON number beyond 64 bits arrives as a float: the hint says to quote it.
    let e = plan(&u128())
        .encode(&ebpf_sdk_codec::parse_json("1e30").unwrap())
        .unwrap_err();
    assert!(e.to_string().ends_with("write values beyond 64 bits as strings for __u128, got a float (1000000000000000000000000000000)"), "{e}");
}

#[test]
fn integer_decode_forms() {
    round(&plan(&u8()), "ff", "255");
    round(&plan(&s8()), "ff", "-1");
    round(&plan(&u64()), "ffffffffffffffff", "18446744073709551615");
    round(&plan(&s64()), "0000000000000080", "-9223372036854775808");
    // Beyond 64 bits: decimal strings, which encode back.
    round(
        &plan(&u128()),
        &"ff".repeat(16),
        "'340282366920938463463374607431768211455'",
    );
    round(
        &plan(&s128()),
        &format!("{}80", "00".repeat(15)),
        "'-170141183460469231731687303715884105728'",
    );
    round(&plan(&u128()), &format!("01{}", "00".repeat(15)), "1");
    // Hints: hex, IPv4 on a 4-byte int (memory bytes are the octets).
    round(
        &plan(&with_format(u32(), Format::Hex)),
        "efbeadde",
        "'0xdeadbeef'",
    );
    round(
        &plan(&with_format(s32(), Format::Hex)),
        "feffffff",
        "'-0x2'",
    );
    round(
        &plan(&with_format(be(4), Format::Ip)),
        "0a000001",
        "10.0.0.1",
    );
    round(
        &plan(&with_format(u32(), Format::Ip)),
        "c0a80001",
        "192.168.0.1",
    );
    // An IPv4 address into any 4-byte integer: network order in memory.
    assert_eq!(enc(&plan(&u32()), "10.1.2.3"), "0a010203");
    assert_eq!(enc(&plan(&be(4)), "10.1.2.3"), "0a010203");
    assert_eq!(enc(&plan_be(&u32()), "10.1.2.3"), "0a010203");
}

#[test]
fn bool_float_enum() {
    let b = plan(&bool_());
    assert_eq!(enc(&b, "true"), "01");
    assert_eq!(enc(&b, "false"), "00");
    round(&b, "01", "true");
    round(&b, "00", "false");
    assert_eq!(enc(&b, "1"), "01");
    assert_eq!(enc(&b, "0"), "00");
    // A stored byte other than 0/1 survives a round trip as the hex string
    // decode shows; typed as a number it is refused.
    round(&b, "07", "'0x07'");
    assert_eq!(
        enc_err(&b, "7"),
        "value: expected true, false, 0 or 1 for _Bool, got 7"
    );
    assert_eq!(
        enc_err(&b, "yes"),
        "value: expected true, false, 0 or 1 for _Bool, got \"yes\""
    );

    let f = plan(&float(4));
    assert_eq!(enc(&f, "1.5"), "0000c03f");
    assert_eq!(enc(&f, "2"), "00000040");
    round(&f, "0000c03f", "1.5");
    round(&f, "0000807f", "inf");
    round(&f, "000080ff", "-inf");
    round(&f, "0000c07f", "nan");
    round(&f, "0100c07f", "'0x7fc00001'"); // a NaN payload is kept exactly
    assert_eq!(
        enc_err(&f, "1e39"),
        "value: 1000000000000000000000000000000000000000 does not fit in float (-340282350000000000000000000000000000000..=340282350000000000000000000000000000000)"
    );
    let d = plan(&float(8));
    assert_eq!(enc(&d, "-2.5"), "00000000000004c0");
    assert_eq!(
        hex(&plan_be(&float(8)).encode(&y("-2.5")).unwrap()),
        "c004000000000000"
    );
    round(&d, "000000000000f03f", "1.0");
    assert!(enc_err(&d, "true").starts_with("value: expected a number"));

    let e = enum_("e", 4, false, &[("A", 0), ("B", 1), ("C", 0x10)]);
    let p = plan(&e);
    assert_eq!(enc(&p, "C"), "10000000");
    assert_eq!(enc(&p, "16"), "10000000");
    assert_eq!(enc(&p, "'0x10'"), "10000000");
    round(&p, "10000000", "C");
    round(&p, "11000000", "17");
    assert_eq!(
        enc_err(&p, "D"),
        "value: `D` is not a variant of enum e; variants: A, B, C"
    );
    assert_eq!(
        enc_err(&p, "-1"),
        "value: -1 does not fit in enum e (0..=4294967295)"
    );
    // 64-bit enums (BTF ENUM64), signed enums, 1-byte enums.
    let e64 = enum_(
        "big",
        8,
        false,
        &[
            ("LOW", 1),
            ("HIGH", 0x1_0000_0000),
            ("TOP", u64::MAX as i128),
        ],
    );
    let p = plan(&e64);
    assert_eq!(enc(&p, "HIGH"), "0000000001000000");
    round(&p, "0000000001000000", "HIGH");
    round(&p, "ffffffffffffffff", "TOP");
    round(&p, "0200000000000000", "2");
    let s = plan(&enum_("s", 4, true, &[("NEG", -1), ("POS", 1)]));
    round(&s, "ffffffff", "NEG");
    round(&s, "feffffff", "-2");
    let small = plan(&enum_("small", 1, false, &[("X", 200)]));
    round(&small, "c8", "X");
    assert_eq!(
        enc_err(&small, "256"),
        "value: 256 does not fit in enum small (0..=255)"
    );
}

#[test]
fn structs_padding_packed_missing_unknown() {
    // struct { u8 a; /* 3 B hole */ u32 b; u16 c; /* 2 B trailing */ } = 12 B
    let t = struct_(
        "s",
        12,
        vec![m("a", 0, u8()), m("b", 4, u32()), m("c", 8, u16())],
    );
    let p = plan(&t);
    let mut buf = [0xeeu8; 12];
    p.encode_into(&y("{a: 1, b: 2, c: 3}"), &mut buf).unwrap();
    assert_eq!(hex(&buf), "010000000200000003000000");
    // Missing fields are zero; order in the input does not matter.
    assert_eq!(enc(&p, "{c: 3}"), "000000000000000003000000");
    assert_eq!(enc(&p, "{c: 3, a: 1}"), "010000000000000003000000");
    assert_eq!(enc(&p, "{}"), "000000000000000000000000");
    round(&p, "010000000200000003000000", "{a: 1, b: 2, c: 3}");
    assert_eq!(
        enc_err(&p, "{a: 1, d: 2}"),
        "value.d: unknown field; valid fields: a, b, c"
    );
    // Packed: members at odd offsets, as the schema says.
    let packed = struct_(
        "p",
        7,
        vec![m("a", 0, u8()), m("b", 1, u32()), m("c", 5, u16())],
    );
    assert_eq!(
        enc(&plan(&packed), "{a: 1, b: 0x05040302, c: 0x0706}"),
        "01020304050607"
    );
    // Nested structs and paths.
    let outer = struct_("o", 14, vec![m("x", 0, u16()), m("in", 2, t.clone())]);
    assert_eq!(
        enc_err(&plan(&outer), "{in: {b: -1}}"),
        "value.in.b: -1 does not fit in __u32 (0..=4294967295)"
    );
    // Many fields: the hash lookup path.
    let wide: Vec<Member> = (0..40).map(|i| m(&format!("f{i}"), i, u8())).collect();
    let p = plan(&struct_("w", 40, wide));
    let b = p.encode(&y("{f39: 1, f0: 2}")).unwrap();
    assert_eq!((b[0], b[39]), (2, 1));
    assert!(
        enc_err(&p, "{f40: 1}").starts_with("value.f40: unknown field; valid fields: f0, f1, f2")
    );
}

#[test]
fn bitfields_little_endian() {
    // struct { u32 a:3, b:5, c:24; s32 d:6, e:10; u8 f; } (clang layout)
    let t = struct_(
        "bf",
        8,
        vec![
            bf("a", 0, 3, u32()),
            bf("b", 3, 5, u32()),
            bf("c", 8, 24, u32()),
            bf("d", 32, 6, s32()),
            bf("e", 38, 10, s32()),
            m("f", 6, u8()),
        ],
    );
    let p = plan(&t);
    assert_eq!(
        enc(&p, "{a: 5, b: 17, c: 0xabcdef, d: -3, e: -300, f: 9}"),
        "8defcdab3db50900"
    );
    round(
        &p,
        "8defcdab3db50900",
        "{a: 5, b: 17, c: 11259375, d: -3, e: -300, f: 9}",
    );
    // Fields only touch their own bits.
    assert_eq!(enc(&p, "{b: 31}"), "f800000000000000");
    assert_eq!(enc(&p, "{a: 7}"), "0700000000000000");
    assert_eq!(
        enc_err(&p, "{b: 32}"),
        "value.b: 32 does not fit in 5-bit field of __u32 (0..=31)"
    );
    assert_eq!(
        enc_err(&p, "{d: 32}"),
        "value.d: 32 does not fit in 6-bit field of __s32 (-32..=31)"
    );
    assert_eq!(enc(&p, "{d: -32, e: 511}"), "00000000e07f0000");
    // A bitfield straddling a byte boundary at an odd offset, and a 1-bit bool/enum.
    let t = struct_(
        "odd",
        4,
        vec![
            bf("x", 5, 7, u16()),
            bf("flag", 12, 1, bool_()),
            bf(
                "mode",
                13,
                2,
                enum_("m", 4, false, &[("OFF", 0), ("ON", 1), ("AUTO", 2)]),
            ),
        ],
    );
    let p = plan(&t);
    assert_eq!(enc(&p, "{x: 0x7f}"), "e00f0000");
    assert_eq!(enc(&p, "{flag: true, mode: AUTO}"), "00500000");
    round(&p, "e05f0000", "{x: 127, flag: true, mode: AUTO}");
}

#[test]
fn bitfields_big_endian() {
    // Same declarations on a big-endian target: bits count from the MSB.
    let t = struct_(
        "bf",
        4,
        vec![
            bf("a", 0, 3, u32()),
            bf("b", 3, 5, u32()),
            bf("c", 8, 24, u32()),
        ],
    );
    let p = plan_be(&t);
    assert_eq!(enc(&p, "{a: 5, b: 17, c: 0xabcdef}"), "b1abcdef");
    round(&p, "b1abcdef", "{a: 5, b: 17, c: 11259375}");
    assert_eq!(enc(&p, "{a: 1}"), "20000000");
    let s = struct_("sb", 4, vec![bf("x", 0, 6, s32()), bf("y", 6, 10, s32())]);
    let p = plan_be(&s);
    assert_eq!(enc(&p, "{x: -3, y: -300}"), "f6d40000");
    round(&p, "f6d40000", "{x: -3, y: -300}");
    // Whole-byte members of a big-endian struct are big-endian.
    let t = struct_("w", 6, vec![m("a", 0, u16()), m("b", 2, u32())]);
    assert_eq!(enc(&plan_be(&t), "{a: 1, b: 2}"), "000100000002");
}

#[test]
fn unions_named_and_anonymous() {
    let u = union_(
        "addr",
        16,
        vec![
            m("v4", 0, be(4)),
            m("v6", 0, array(u8(), 16)),
            m("w", 0, u16()),
        ],
    );
    let p = plan(&u);
    assert_eq!(
        enc(&p, "{v4: 10.0.0.1}"),
        format!("0a000001{}", "00".repeat(12))
    );
    assert_eq!(enc(&p, "{w: 1}"), format!("0100{}", "00".repeat(14)));
    assert_eq!(
        enc_err(&p, "{}"),
        "value: union addr takes exactly one of v4, v6, w; got none"
    );
    assert_eq!(
        enc_err(&p, "{w: 1, v4: 2}"),
        "value: union addr takes exactly one of v4, v6, w; got v4 and w"
    );
    assert_eq!(
        enc_err(&p, "{v5: 1}"),
        "value.v5: unknown field; valid fields: v4, v6, w"
    );
    // `null` is the same as leaving a member out.
    assert_eq!(enc(&p, "{v4: ~, w: 1}"), format!("0100{}", "00".repeat(14)));
    assert_eq!(
        enc_err(&p, "{v4: ~}"),
        "value: union addr takes exactly one of v4, v6, w; got none"
    );
    assert_eq!(
        enc_err(&p, "{v9: ~}"),
        "value.v9: unknown field; valid fields: v4, v6, w"
    );
    // Decode: the first member as large as the union.
    round(
        &p,
        &format!("0a000001{}", "00".repeat(12)),
        "{v6: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}",
    );
    // ... else the largest.
    let small = union_("s", 8, vec![m("a", 0, u16()), m("b", 0, u32())]);
    round(&plan(&small), "0100000200000000", "{b: 33554433}");

    // Anonymous members reach their fields as the parent's.
    let anon_u = union_("", 4, vec![m("ip", 0, be(4)), m("raw", 0, u32())]);
    let anon_s = struct_("", 4, vec![m("lo", 0, u16()), m("hi", 2, u16())]);
    let t = struct_(
        "k",
        12,
        vec![m("kind", 0, u32()), m("", 4, anon_u), m("", 8, anon_s)],
    );
    let p = plan(&t);
    assert_eq!(
        enc(&p, "{kind: 1, ip: 10.0.0.1, hi: 2}"),
        "010000000a00000100000200"
    );
    assert_eq!(enc(&p, "{raw: 5}"), "000000000500000000000000");
    assert_eq!(
        enc_err(&p, "{ip: 10.0.0.1, raw: 1}"),
        "value: union <anon> takes exactly one of ip, raw; got ip and raw"
    );
    assert_eq!(
        enc_err(&p, "{foo: 1}"),
        "value.foo: unknown field; valid fields: kind, ip, raw, lo, hi"
    );
    round(
        &p,
        "010000000a00000100000200",
        "{kind: 1, ip: 167772161, lo: 0, hi: 2}",
    );

    // An anonymous struct as a union alternative: its fields go together.
    let alt = struct_("", 4, vec![m("port", 0, u16()), m("proto", 2, u8())]);
    let u = union_("pp", 4, vec![m("", 0, alt), m("all", 0, u32())]);
    let p = plan(&u);
    assert_eq!(enc(&p, "{port: 80, proto: 6}"), "50000600");
    assert_eq!(
        enc_err(&p, "{port: 80, all: 1}"),
        "value: union pp takes exactly one of {port, proto}, all; got {port, proto} and all"
    );
    round(&p, "50000600", "{port: 80, proto: 6}");
}

#[test]
fn arrays_lists_and_multi_dimensional() {
    let p = plan(&array(u16(), 4));
    assert_eq!(enc(&p, "[1, 2]"), "0100020000000000");
    assert_eq!(enc(&p, "[]"), "0000000000000000");
    assert_eq!(
        enc_err(&p, "[1, 2, 3, 4, 5]"),
        "value: 5 elements given, __u16[4] holds at most 4"
    );
    assert_eq!(
        enc_err(&p, "[1, 70000]"),
        "value[1]: 70000 does not fit in __u16 (0..=65535)"
    );
    assert_eq!(
        enc_err(&p, "7"),
        "value: expected a list of up to 4 elements for __u16[4], got 7"
    );
    // Arrays of scalars decode in full.
    round(&p, "0100020000000000", "[1, 2, 0, 0]");
    // u16[2][3]
    let p = plan(&array(array(u16(), 3), 2));
    assert_eq!(enc(&p, "[[1, 2, 3], [4]]"), "010002000300040000000000");
    round(&p, "010002000300040000000000", "[[1, 2, 3], [4, 0, 0]]");
    assert_eq!(
        enc_err(&p, "[[1], [1, 2, 3, 4]]"),
        "value[1]: 4 elements given, __u16[3] holds at most 3"
    );
    // Arrays of structs: trailing all-zero elements are left out on decode.
    let rule = struct_("r", 3, vec![m("id", 0, u16()), m("act", 2, u8())]);
    let p = plan(&array(rule.clone(), 4));
    assert_eq!(
        enc(&p, "[{id: 1}, {}, {act: 2}]"),
        "010000000000000002000000"
    );
    round(
        &p,
        "010000000000000002000000",
        "[{id: 1, act: 0}, {id: 0, act: 0}, {id: 0, act: 2}]",
    );
    round(&p, "000000000000000000000000", "[]");
    // ... also in two dimensions.
    let p = plan(&array(array(rule, 2), 2));
    round(&p, "010000000000000000000000", "[[{id: 1, act: 0}]]");
}

#[test]
fn strings_and_byte_sugar() {
    let name = array(char_(), 8);
    let p = plan(&name);
    assert_eq!(enc(&p, "eth0"), "6574683000000000");
    assert_eq!(enc(&p, "'12345678'"), "3132333435363738");
    assert_eq!(enc(&p, "''"), "0000000000000000");
    assert_eq!(enc(&p, "[65, -1]"), "41ff000000000000");
    assert_eq!(
        enc_err(&p, "'123456789'"),
        "value: 9 bytes given, char[8] holds at most 8"
    );
    assert!(enc_err(&p, "\"a\\0b\"").contains("without NUL bytes"));
    round(&p, "6574683000000000", "eth0");
    round(&p, "3132333435363738", "'12345678'");
    round(&p, "0000000000000000", "''");
    // Not a string: text after the NUL, or not UTF-8.
    round(&p, "6100620000000000", "[97, 0, 98, 0, 0, 0, 0, 0]");
    round(&p, "ff00000000000000", "[-1, 0, 0, 0, 0, 0, 0, 0]");
    // Emoji are UTF-8 too.
    round(&p, "f09f909d00000000", "'🐝'");

    // Byte arrays: addresses, MAC, hex, numbers.
    let b16 = plan(&array(u8(), 16));
    assert_eq!(
        enc(&b16, "10.10.10.2"),
        format!("0a0a0a02{}", "00".repeat(12))
    );
    assert_eq!(
        enc(&b16, "'2001:db8::1'"),
        "20010db8000000000000000000000001"
    );
    assert_eq!(enc(&b16, "'0x0102'"), format!("0102{}", "00".repeat(14)));
    assert_eq!(
        enc(&b16, "aa:bb:cc:dd:ee:ff"),
        format!("aabbccddeeff{}", "00".repeat(10))
    );
    let b4 = plan(&array(u8(), 4));
    assert_eq!(enc(&b4, "192.168.1.1"), "c0a80101");
    assert_eq!(
        enc_err(&b4, "'::1'"),
        "value: expected a list of up to 4 numbers, a 0x hex string or an IPv4 address (an IPv6 address needs 16 bytes) for __u8[4], got \"::1\""
    );
    assert_eq!(
        enc_err(&b4, "'0x0102030405'"),
        "value: 5 bytes given, __u8[4] holds at most 4"
    );
    assert!(enc_err(&b4, "'0x123'").contains("two hex digits per byte"));
    assert_eq!(
        enc_err(&b4, "[1, 256]"),
        "value[1]: 256 does not fit in __u8 (0..=255)"
    );
    let b6 = plan(&with_format(array(u8(), 6), Format::Mac));
    assert_eq!(enc(&b6, "AA-BB-CC-DD-EE-01"), "aabbccddee01");
    round(&b6, "aabbccddee01", "aa:bb:cc:dd:ee:01");
    // Decode per hint.
    let ip16 = plan(&with_format(array(u8(), 16), Format::Ip));
    round(&ip16, &format!("0a0a0a02{}", "00".repeat(12)), "10.10.10.2");
    round(&ip16, "20010db8000000000000000000000001", "'2001:db8::1'");
    round(
        &ip16,
        &format!("{}0a0a0a02", "00".repeat(12)),
        "'::a0a:a02'",
    );
    round(&ip16, &"00".repeat(16), "0.0.0.0");
    let ip4 = plan(&with_format(array(u8(), 4), Format::Ip));
    round(&ip4, "0a000001", "10.0.0.1");
    let hx = plan(&with_format(array(u8(), 4), Format::Hex));
    round(&hx, "deadbeef", "'0xdeadbeef'");
    assert_eq!(enc(&hx, "'0xde'"), "de000000");
    // No hint: numbers.
    round(&b4, "0a000001", "[10, 0, 0, 1]");
}

#[test]
fn opaque_bytes() {
    let p = plan(&opaque(4));
    assert_eq!(enc(&p, "'0x01020304'"), "01020304");
    assert_eq!(enc(&p, "[1, 2, 3, 4]"), "01020304");
    round(&p, "01020304", "'0x01020304'");
    assert_eq!(
        enc_err(&p, "'0x0102'"),
        "value: expected a 0x hex string or a list of exactly 4 bytes for opaque[4], got \"2 bytes\""
    );
    assert!(enc_err(&p, "[1, 2]").contains("exactly 4 bytes"));
    assert_eq!(
        enc_err(&p, "[1, 2, 3, 300]"),
        "value[3]: 300 does not fit in byte (0..=255)"
    );
    // A map with sizes but no types gets opaque plans.
    let mut s = map("hash", None, None, ByteOrder::Little);
    s.key_size = 2;
    s.value_size = 3;
    let c = Codec::new(&s).unwrap();
    assert_eq!(hex(&c.encode_key(&y("'0xbeef'")).unwrap()), "beef");
    assert_eq!(c.decode_value(&[1, 2, 3]).unwrap(), y("'0x010203'"));
}

#[test]
fn byte_order_override() {
    let t = struct_(
        "k",
        8,
        vec![m("a", 0, u32()), m("b", 4, be(2)), m("c", 6, u16())],
    );
    let le = Plan::new("key", &t, ByteOrder::Little, &CodecOptions::default()).unwrap();
    assert_eq!(
        hex(&le.encode(&y("{a: 1, b: 2, c: 3}")).unwrap()),
        "0100000000020300"
    );
    let forced_be = Plan::new(
        "key",
        &t,
        ByteOrder::Little,
        &CodecOptions::default().byte_order(Some(ByteOrder::Big)),
    )
    .unwrap();
    assert_eq!(
        hex(&forced_be.encode(&y("{a: 1, b: 2, c: 3}")).unwrap()),
        "0000000100020003"
    );
    let forced_le = Plan::new(
        "key",
        &t,
        ByteOrder::Big,
        &CodecOptions::default().byte_order(Some(ByteOrder::Little)),
    )
    .unwrap();
    assert_eq!(
        hex(&forced_le.encode(&y("{a: 1, b: 2, c: 3}")).unwrap()),
        "0100000002000300"
    );
}

#[test]
fn percpu_values() {
    let s = map("percpu_array", Some(u32()), Some(u32()), ByteOrder::Little);
    let c = Codec::new(&s).unwrap();
    assert_eq!(c.per_cpu_stride(), 8);
    let b = c.encode_per_cpu_value(&y("7"), 2).unwrap();
    assert_eq!(hex(&b), "0700000000000000".repeat(2));
    let b = c.encode_per_cpu_value(&y("[1, 2, 3]"), 3).unwrap();
    assert_eq!(hex(&b), "010000000000000002000000000000000300000000000000");
    assert_eq!(c.decode_per_cpu_value(&b, 3).unwrap(), y("[1, 2, 3]"));
    assert_eq!(
        ebpf_sdk_codec::sum_per_cpu(c.decode_per_cpu_value(&b, 3).unwrap().as_list().unwrap()),
        y("6")
    );
    let mut buf = vec![0xffu8; 16];
    assert!(c
        .encode_per_cpu_value_into(&y("[1, -2]"), 2, &mut buf)
        .is_err());
    assert!(buf.iter().all(|b| *b == 0));
    assert_eq!(
        c.encode_per_cpu_value_into(&y("1"), 2, &mut [0; 15])
            .unwrap_err()
            .to_string(),
        "value: buffer is 15 bytes, expected 16"
    );
    // An array value type: a flat list is one value, a list of lists is per CPU.
    let s = map(
        "percpu_array",
        Some(u32()),
        Some(array(u16(), 2)),
        ByteOrder::Little,
    );
    let c = Codec::new(&s).unwrap();
    assert_eq!(
        hex(&c.encode_per_cpu_value(&y("[1, 2]"), 2).unwrap()),
        "0100020000000000".repeat(2)
    );
    assert_eq!(
        hex(&c.encode_per_cpu_value(&y("[[1], [2, 3]]"), 2).unwrap()),
        "01000000000000000200030000000000"
    );
    let s = map(
        "percpu_hash",
        Some(u32()),
        Some(array(u8(), 4)),
        ByteOrder::Little,
    );
    let c = Codec::new(&s).unwrap();
    assert_eq!(
        hex(&c
            .encode_per_cpu_value(&y("[10.0.0.1, 10.0.0.2]"), 2)
            .unwrap()),
        "0a000001000000000a00000200000000"
    );
    assert_eq!(
        hex(&c.encode_per_cpu_value(&y("10.0.0.1"), 2).unwrap()),
        "0a000001000000000a00000100000000"
    );
}

#[test]
fn sums_across_cpus() {
    let cpus = [
        y("{n: 1, s: x, l: [{a: 1}], big: '18446744073709551616', f: 0.5}"),
        y("{n: 2, s: y, l: [{a: 1}, {a: 5}], big: 1, f: 1.0}"),
    ];
    assert_eq!(
        ebpf_sdk_codec::sum_per_cpu(&cpus),
        y("{n: 3, s: x, l: [{a: 2}, {a: 5}], big: '18446744073709551617', f: 1.5}")
    );
    assert_eq!(ebpf_sdk_codec::sum_per_cpu(&[]), Value::Null);
}

#[test]
fn keyless_and_absent() {
    let s = map("queue", None, Some(u32()), ByteOrder::Little);
    let c = Codec::new(&s).unwrap();
    assert_eq!(
        c.encode_key(&y("1")).unwrap_err().to_string(),
        "map `test_map` has no key"
    );
    assert_eq!(c.key_size(), 0);
    let t = template(&s);
    assert!(t.contains("# this map has no key"), "{t}");
    let v = ebpf_sdk_codec::parse_yaml(&t).unwrap();
    assert_eq!(c.encode_value(v.get("value").unwrap()).unwrap(), [0; 4]);
}

#[test]
fn schema_problems_are_errors_not_panics() {
    let t = struct_("s", 4, vec![m("a", 2, u32())]);
    let e = Plan::new("value", &t, ByteOrder::Little, &CodecOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.a: unusable schema: member `a` ends at bit 48, beyond struct s (4 B)"
    );
    let t = struct_("s", 4, vec![bf("a", 0, 40, u32())]);
    let e = Plan::new("value", &t, ByteOrder::Little, &CodecOptions::default()).unwrap_err();
    assert!(e.to_string().contains("ends at bit 40, beyond"), "{e}");
    let t = struct_("s", 8, vec![bf("a", 0, 40, u32())]);
    let e = Plan::new("value", &t, ByteOrder::Little, &CodecOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.a: unusable schema: bitfield of 40 bits in __u32 (4 B)"
    );
    let mut arr = array(u8(), 4);
    arr.size = 5;
    let e = Plan::new("value", &arr, ByteOrder::Little, &CodecOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value: unusable schema: array __u8[4] has 4 elements of 1 B but size 5"
    );
    let t = struct_("s", 2, vec![m("a", 0, u8()), m("a", 1, u8())]);
    assert!(Plan::new("value", &t, ByteOrder::Little, &CodecOptions::default()).is_err());
    // Deep nesting is refused, not a stack overflow.
    let mut t = u8();
    for _ in 0..200 {
        t = struct_("n", 1, vec![m("x", 0, t)]);
    }
    let e = Plan::new("value", &t, ByteOrder::Little, &CodecOptions::default()).unwrap_err();
    assert!(e.to_string().contains("nested deeper than 64"), "{e}");
    // Key size disagreeing with the key type.
    let mut s = map("hash", Some(u32()), Some(u32()), ByteOrder::Little);
    s.key_size = 8;
    assert_eq!(
        Codec::new(&s).unwrap_err().to_string(),
        "key: unusable schema: __u32 is 4 B but the map's key size is 8 B"
    );
    // Odd scalar sizes become raw bytes.
    let mut ld = float(16);
    ld.name = "long double".into();
    let p = plan(&ld);
    round(&p, &"01".repeat(16), &format!("'0x{}'", "01".repeat(16)));
}

#[test]
fn template_for_hand_built_map_encodes() {
    let anon_u = union_(
        "",
        4,
        vec![
            m("ip", 0, with_format(be(4), Format::Ip)),
            m("raw", 0, u32()),
        ],
    );
    let val = struct_(
        "v",
        48,
        vec![
            m("mode", 0, enum_("mode", 4, false, &[("ON", 1), ("OFF", 2)])),
            m("", 4, anon_u),
            bf("flag", 64, 1, bool_()),
            bf("lvl", 65, 3, u32()),
            m("f", 12, float(4)),
            m("name", 16, array(char_(), 8)),
            m("mac", 24, with_format(array(u8(), 6), Format::Mac)),
            m("grid", 30, array(array(u8(), 3), 2)),
            m(
                "ptr",
                40,
                TypeNode {
                    name: "void *".into(),
                    typedefs: vec![],
                    size: 8,
                    kind: TypeKind::Pointer,
                },
            ),
        ],
    );
    let s = map(
        "percpu_hash",
        Some(with_format(array(u8(), 16), Format::Hex)),
        Some(val),
        ByteOrder::Little,
    );
    let t = template(&s);
    let doc = ebpf_sdk_codec::parse_yaml(&t).unwrap_or_else(|e| panic!("{e}\n{t}"));
    let c = Codec::new(&s).unwrap();
    assert_eq!(c.encode_key(doc.get("key").unwrap()).unwrap(), [0; 16]);
    // `mode` shows 0 (no variant is zero), so all bytes are zero.
    assert_eq!(
        c.encode_per_cpu_value(doc.get("value").unwrap(), 2)
            .unwrap(),
        vec![0; 96]
    );
    for needle in [
        "ON (1) | OFF (2)",
        "anonymous union <anon>, 4 B: give at most one of ip, raw",
        "1-bit field of _Bool",
        "Per-CPU map",
        "char[8], 8 B: a string of up to 8 bytes",
        "a list of up to 2 lists (each __u8[3])",
    ] {
        assert!(t.contains(needle), "{needle} not in\n{t}");
    }
}

#[test]
fn codec_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Codec>();
    assert_send_sync::<Plan>();
    assert_send_sync::<Value>();
    assert_send_sync::<ebpf_sdk_codec::CodecError>();
}

/// The JSON fast path (`Plan::encode_json_into`) at the edges of what it
/// reads: it takes exactly what serde_json reads as integers, and leaves
/// floats, escapes, duplicates and bad JSON to the general path.
#[test]
fn json_fast_path_edges() {
    let s = struct_(
        "s",
        32,
        vec![
            m("a", 0, u64()),
            m("b", 8, s64()),
            m("c", 16, u32()),
            m("name", 20, array(char_(), 8)),
            m("x", 28, u8()),
        ],
    );
    let p = plan(&s);
    let fast = |text: &str| {
        let mut buf = vec![0xa5; p.size()];
        p.encode_json_into(text.as_bytes(), &mut buf)
            .then(|| hex(&buf))
    };
    let general = |text: &str| {
        ebpf_sdk_codec::parse_json(text)
            .ok()
            .and_then(|v| p.encode(&v).ok())
            .map(|b| hex(&b))
    };
    // Taken, with the general path's bytes.
    for text in [
        r#"{"a": 18446744073709551615, "b": -9223372036854775808}"#,
        r#"{"b": 9223372036854775807, "c": "10.0.0.1", "name": "eth0"}"#,
        r#" { "c" : 0 , "a":1 } "#,
        r#"{"x": null, "a": 0, "name": [101, 116]}"#,
        r#"{}"#,
        r#"null"#,
        r#"{"c": "0x10"}"#,
    ] {
        assert!(fast(text).is_some(), "not taken: {text}");
        assert_eq!(fast(text), general(text), "{text}");
    }
    // Left to the general path (which takes some and refuses others).
    for text in [
        r#"{"a": 18446744073709551616}"#,
        r#"{"b": -9223372036854775809}"#,
        r#"{"a": 99999999999999999999999999999999999999999}"#,
        r#"{"a": -0}"#,
        r#"{"a": 01}"#,
        r#"{"a": 1.0}"#,
        r#"{"a": 1e3}"#,
        r#"{"a": 1, "a": 2}"#,
        r#"{"name": "e\u0074h"}"#,
        r#"{"a": 1,}"#,
        r#"{"a": 1} x"#,
        r#"{"x": 256}"#,
        r#"{"nope": 1}"#,
        r#"{"a" 1}"#,
        r#"{"a": tru}"#,
        "{\"name\": \"a\tb\"}",
    ] {
        assert_eq!(fast(text), None, "taken: {text}");
    }
    // Beyond the fast path, the general path still reads these.
    assert!(general(r#"{"name": "e\u0074h"}"#).is_some());
    assert!(general(r#"{"a": 1e3}"#).is_none());
}
