//! The firewall program's real maps (schema extracted from
//! firewall-ebpf/firewall.bpf.o): exact bytes, exact errors, templates.

mod common;
use common::*;

use ebpf_sdk_codec::{legacy, parse_yaml, sum_per_cpu, template, Codec, CodecOptions, Value};
use ebpf_sdk_schema::ByteOrder;

const TABLE: &str = "ingress_node_firewall_table_map";

#[test]
fn firewall_key_exact_bytes() {
    let doc = firewall();
    let c = codec_for(&doc, TABLE);
    let key = y("{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}");
    let mut buf = [0xaau8; 24];
    c.encode_key_into(&key, &mut buf).unwrap();
    assert_eq!(
        hex(&buf),
        hex(&unhex(
            "40000000 06000000 0a0a0a02 000000000000000000000000"
        ))
    );
    // Decode shows the address (format hint `ip`) and round-trips.
    assert_eq!(c.decode_key(&buf).unwrap(), key);

    let v6 = y("{prefixLen: 96, ingress_ifindex: 2, ip_data: 'fd00::1:2'}");
    assert_eq!(
        hex(&c.encode_key(&v6).unwrap()),
        hex(&unhex("60000000 02000000 fd000000000000000000000000010002"))
    );
    assert_eq!(
        c.decode_key(&c.encode_key(&v6).unwrap()).unwrap(),
        y("{prefixLen: 96, ingress_ifindex: 2, ip_data: 'fd00::1:2'}")
    );
}

#[test]
fn firewall_rules_value() {
    let doc = firewall();
    let c = codec_for(&doc, TABLE);
    let v = y("rules: [{ruleId: 1, protocol: 6, dstPortStart: 80, dstPortEnd: 0x1bb, action: 2}, {ruleId: 2, protocol: 1, icmpType: 8, action: 1}]");
    let b = c.encode_value(&v).unwrap();
    assert_eq!(b.len(), 1200);
    assert_eq!(
        hex(&b[..24]),
        hex(&unhex(
            "01000000 06 5000 bb01 00 00 02   02000000 01 0000 0000 08 00 01"
        ))
    );
    assert!(b[24..].iter().all(|x| *x == 0));
    // Decode: all fields of each rule, trailing empty rules left out.
    let d = c.decode_value(&b).unwrap();
    assert_eq!(
        d,
        y("rules:
  - {ruleId: 1, protocol: 6, dstPortStart: 80, dstPortEnd: 443, icmpType: 0, icmpCode: 0, action: 2}
  - {ruleId: 2, protocol: 1, dstPortStart: 0, dstPortEnd: 0, icmpType: 8, icmpCode: 0, action: 1}")
    );
    assert_eq!(c.encode_value(&d).unwrap(), b);
    // An empty slot in the middle is kept.
    let gap = y("rules: [{ruleId: 1}, {}, {ruleId: 3}]");
    let d = c.decode_value(&c.encode_value(&gap).unwrap()).unwrap();
    assert_eq!(d.get("rules").unwrap().as_list().unwrap().len(), 3);
    // All empty: an empty list.
    assert_eq!(c.decode_value(&[0; 1200]).unwrap(), y("rules: []"));
}

#[test]
fn firewall_errors_are_exact() {
    let doc = firewall();
    let c = codec_for(&doc, TABLE);
    let v = y("rules: [{ruleId: 1}, {ruleId: 2}, {ruleId: 3}, {ruleId: 4, dstPortStart: 1, dstPortEnd: 70000}]");
    let mut buf = vec![0xffu8; 1200];
    let e = c.encode_value_into(&v, &mut buf).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.rules[3].dstPortEnd: 70000 does not fit in __u16 (0..=65535)"
    );
    assert!(
        buf.iter().all(|b| *b == 0),
        "nothing partial is left in the buffer"
    );

    let e = c.encode_key(&y("{prefixlen: 64}")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "key.prefixlen: unknown field; valid fields: prefixLen, ingress_ifindex, ip_data"
    );

    let many: Vec<String> = (0..101).map(|i| format!("{{ruleId: {i}}}")).collect();
    let e = c
        .encode_value(&y(&format!("rules: [{}]", many.join(","))))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.rules: 101 elements given, struct ruleType_st[100] holds at most 100"
    );

    let e = c.encode_value(&y("rules: [{ruleId: 1.5}]")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.rules[0].ruleId: expected an integer (10, -3, 0x1f, 0o17, 0b101, or as a string) for __u32, got a float (1.5)"
    );
    let e = c
        .encode_value(&y("rules: [{protocol: '0x100'}]"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.rules[0].protocol: \"0x100\" (= 256) does not fit in __u8 (0..=255)"
    );
    let e = c.encode_key(&y("{ip_data: 10.0.0.300}")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "key.ip_data: expected a list of up to 16 numbers, a 0x hex string, an IPv4/IPv6 address or a MAC address for __u8[16], got \"10.0.0.300\""
    );
    let e = c
        .encode_key(&y("{ip_data: '0x0102030405060708090a0b0c0d0e0f1011'}"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "key.ip_data: 17 bytes given, __u8[16] holds at most 16"
    );
    let e = c.encode_key(&y("{ingress_ifindex: true}")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("key.ingress_ifindex: expected an integer"),
        "{e}"
    );
    let e = c.encode_key(&y("{ingress_ifindex: -1}")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "key.ingress_ifindex: -1 does not fit in __u32 (0..=4294967295)"
    );

    let e = c
        .encode_key(
            &[0u8; 3]
                .iter()
                .map(|b| Value::from(*b))
                .collect::<Vec<_>>()
                .into(),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "key: expected a mapping of field names to values for struct lpm_ip_key_st, got a list of 3 elements"
    );
    let e = c.encode_key_into(&y("{}"), &mut [0u8; 23]).unwrap_err();
    assert_eq!(e.to_string(), "key: buffer is 23 bytes, expected 24");
    let e = c.decode_value(&[0u8; 12]).unwrap_err();
    assert_eq!(e.to_string(), "value: buffer is 12 bytes, expected 1200");
}

/// The fw_config_st value: enums, a 64-bit enum, bitfields (unsigned and
/// signed), __be16/__be32, an anonymous union, char[16], a MAC, a 2-D array,
/// signed ints, _Bool, holes and trailing padding.
#[test]
fn firewall_config_exact_bytes() {
    let doc = firewall();
    let c = codec_for(&doc, "ingress_node_firewall_config_map");
    let v = y(r#"
mode: FW_MODE_AUDIT
log_prio: FW_LOG_PRIO_LOW
verbose: 1
max_event_bytes: 0x0102030405060708
features: FW_FEAT_NO_DEBUG_MAP
log_level: 5
sample_rate: 17
flags_reserved: 0xabcdef
ttl_adjust: -3
prio_bias: -300
mgmt_port: 8080
mgmt_addr: {v4: 192.168.1.1}
name: eth0
mgmt_netmask: 255.255.255.0
s8_val: -2
s16_val: -2
s32_val: -2
s64_val: -2
enabled: true
mac: aa:bb:cc:dd:ee:ff
port_matrix: [[1, 2, 3], [4, 5, 6]]
tail_tag: 0x7f
"#);
    let b = c.encode_value(&v).unwrap();
    let expected = unhex(
        "01000000 ffffffff 01 00000000000000 0807060504030201 0000000001000000
         8d efcdab 3db5 1f90 c0a80101 000000000000000000000000
         65746830 000000000000000000000000 ffffff00 fe 00 feff feffffff 00000000
         feffffffffffffff 01 aabbccddeeff 00 010002000300 040005000600 7f 000000",
    );
    assert_eq!(expected.len(), 120);
    assert_eq!(hex(&b), hex(&expected));

    let d = c.decode_value(&b).unwrap();
    assert_eq!(
        d,
        y(r#"
mode: FW_MODE_AUDIT
log_prio: FW_LOG_PRIO_LOW
verbose: 1
max_event_bytes: 72623859790382856
features: FW_FEAT_NO_DEBUG_MAP
log_level: 5
sample_rate: 17
flags_reserved: 11259375
ttl_adjust: -3
prio_bias: -300
mgmt_port: 8080
mgmt_addr: {v6: [192, 168, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}
name: eth0
mgmt_netmask: 4294967040
s8_val: -2
s16_val: -2
s32_val: -2
s64_val: -2
enabled: true
mac: aa:bb:cc:dd:ee:ff
port_matrix: [[1, 2, 3], [4, 5, 6]]
tail_tag: 127
"#)
    );
    assert_eq!(c.encode_value(&d).unwrap(), b);

    // Bitfield ranges, signed ones too.
    let e = c.encode_value(&y("log_level: 8")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.log_level: 8 does not fit in 3-bit field of __u32 (0..=7)"
    );
    let e = c.encode_value(&y("ttl_adjust: -33")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.ttl_adjust: -33 does not fit in 6-bit field of __s32 (-32..=31)"
    );
    let e = c
        .encode_value(&y("mgmt_addr: {v4: 1.2.3.4, v6: '::1'}"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.mgmt_addr: union <anon> takes exactly one of v4, v6; got v4 and v6"
    );
    let e = c.encode_value(&y("mgmt_addr: {}")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.mgmt_addr: union <anon> takes exactly one of v4, v6; got none"
    );
    let e = c.encode_value(&y("mode: FW_MODE_LOUD")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.mode: `FW_MODE_LOUD` is not a variant of enum fw_mode; variants: FW_MODE_ENFORCE, FW_MODE_AUDIT, FW_MODE_DISABLED"
    );
    let e = c
        .encode_value(&y("name: interface-name-too-long"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.name: 23 bytes given, char[16] holds at most 16"
    );
    let huge = Value::Map(
        [("name", Value::String("x".repeat(3 << 20)))]
            .into_iter()
            .collect(),
    );
    let e = c.encode_value(&huge).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.name: 3145728 bytes given, char[16] holds at most 16"
    );
    let long_list = Value::Map(
        [("mac", Value::List(vec![Value::Int(1); 100_000]))]
            .into_iter()
            .collect(),
    );
    let e = c.encode_value(&long_list).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.mac: 100000 elements given, __u8[6] holds at most 6"
    );

    // Enums by number; a number without a name decodes as the number.
    let b = c.encode_value(&y("{mode: 7, features: 0x3}")).unwrap();
    let d = c.decode_value(&b).unwrap();
    assert_eq!(d.get("mode"), Some(&Value::Int(7)));
    assert_eq!(d.get("features"), Some(&Value::Int(3)));
    let e = c.encode_value(&y("log_prio: '0x80000000'")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.log_prio: \"0x80000000\" (= 2147483648) does not fit in enum fw_log_prio (-2147483648..=2147483647)"
    );
}

#[test]
fn firewall_debug_key_be_fields() {
    let doc = firewall();
    let c = codec_for(&doc, "ingress_node_firewall_debug_map");
    // saddr is __be32 with format ip; sport __be16; one byte of trailing padding.
    let k = y("{saddr: 10.0.0.1, sport: 443, proto: 6}");
    let b = c.encode_key(&k).unwrap();
    assert_eq!(hex(&b), "0a00000101bb0600");
    assert_eq!(c.decode_key(&b).unwrap(), k);
    // A number into a __be32 is stored big-endian too.
    assert_eq!(
        hex(&c.encode_key(&y("{saddr: 0x0a000001}")).unwrap()),
        "0a00000100000000"
    );
    let v = y("{packets: 10, bytes: 1500, last_rule_id: -1, last_action: 2, last_ifindex: 3}");
    let b = c.encode_value(&v).unwrap();
    assert_eq!(
        hex(&b),
        hex(&unhex(
            "0a00000000000000 dc05000000000000 ffffffff 0200 0300"
        ))
    );
    assert_eq!(c.decode_value(&b).unwrap(), v);
}

#[test]
fn firewall_statistics_percpu() {
    let doc = firewall();
    let c = codec_for(&doc, "ingress_node_firewall_statistics_map");
    assert!(c.per_cpu());
    assert_eq!(c.per_cpu_stride(), 32);
    // One value for every CPU.
    let one = y("{allow_stats: {packets: 1, bytes: 100}}");
    let b = c.encode_per_cpu_value(&one, 3).unwrap();
    assert_eq!(b.len(), 96);
    for cpu in 0..3 {
        assert_eq!(
            hex(&b[cpu * 32..cpu * 32 + 16]),
            "01000000000000006400000000000000"
        );
    }
    // A list: one per CPU; decode gives the list back; sum totals it.
    let per = y("[{allow_stats: {packets: 1, bytes: 100}}, {allow_stats: {packets: 2}, deny_stats: {packets: 5}}, {}]");
    let b = c.encode_per_cpu_value(&per, 3).unwrap();
    let d = c.decode_per_cpu_value(&b, 3).unwrap();
    assert_eq!(d.as_list().unwrap().len(), 3);
    assert_eq!(c.encode_per_cpu_value(&d, 3).unwrap(), b);
    assert_eq!(
        sum_per_cpu(d.as_list().unwrap()),
        y("{allow_stats: {packets: 3, bytes: 100}, deny_stats: {packets: 5, bytes: 0}}")
    );
    let e = c.encode_per_cpu_value(&per, 4).unwrap_err();
    assert_eq!(
        e.to_string(),
        "value: per-CPU value list has 3 entries, expected one per possible CPU (4) or a single value for all"
    );
    let e = c
        .encode_per_cpu_value(&y("[{}, {allow_stats: {packets: -1}}]"), 2)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "value[cpu 1].allow_stats.packets: -1 does not fit in __u64 (0..=18446744073709551615)"
    );
    let e = c.decode_per_cpu_value(&[0; 95], 3).unwrap_err();
    assert_eq!(e.to_string(), "value: buffer is 95 bytes, expected 96");
}

#[test]
fn global_data_maps() {
    let doc = firewall();
    let c = codec_for(&doc, "firewall.bss");
    let d = c.decode_value(&[0; 16]).unwrap();
    assert_eq!(d, y("{fw_packets_seen: 0, unused_event_ptr: 0}"));
    let c = codec_for(&doc, "firewall.rodata");
    let mut bytes = vec![1, 0, 0, 0];
    bytes.extend_from_slice(b"hello %d\n");
    bytes.resize(32, 0);
    let d = c.decode_value(&bytes).unwrap();
    assert_eq!(
        d.get("xdp_ingress_node_firewall_process.____fmt"),
        Some(&Value::from("hello %d\n"))
    );
    assert_eq!(c.encode_value(&d).unwrap(), bytes);
}

/// The earlier tool's verbose template, as given in the issue.
#[test]
fn legacy_template_example() {
    let doc = y(r#"
key:
  variable_name: lpm_ip_key_st
  kind: STRUCT
  member:
  - {variable_name: prefixLen, type_name: unsigned int, size: 4, kind: INT, input: 64}
  - {variable_name: ingress_ifindex, type_name: unsigned int, size: 4, kind: INT, input: 6}
  - {variable_name: ip_data, kind: ARRAY, input: [10, 10, 10, 2], totalSize: 16, fillWithZeros: true,
     member: {type_name: unsigned char, size: 1, kind: INT, input: null}}
value:
  variable_name: rulesVal_st
  kind: STRUCT
  member:
  - variable_name: rules
    kind: ARRAY
    totalSize: 1200
    fillWithZeros: true
    member: {type_name: struct ruleType_st, size: 12, kind: STRUCT}
    input:
    - member:
      - {variable_name: ruleId, type_name: unsigned int, size: 4, kind: INT, input: 1}
      - {variable_name: protocol, type_name: unsigned char, size: 1, kind: INT, input: 6}
      - {variable_name: dstPortStart, type_name: unsigned short, size: 2, kind: INT, input: 80}
      - {variable_name: dstPortEnd, type_name: unsigned short, size: 2, kind: INT, input: null}
      - {variable_name: action, type_name: unsigned char, size: 1, kind: INT, input: 2}
byteOrder: reversed
"#);
    assert!(legacy::is_legacy(&doc));
    let (concise, order) = legacy::to_concise(&doc).unwrap();
    assert_eq!(order, Some(ByteOrder::Little));
    let fw = firewall();
    let schema = fw.map(TABLE).unwrap();
    let c = Codec::with_options(schema, &CodecOptions::default().byte_order(order)).unwrap();
    let key = c.encode_key(concise.get("key").unwrap()).unwrap();
    assert_eq!(
        hex(&key),
        hex(&unhex(
            "40000000 06000000 0a0a0a02 000000000000000000000000"
        ))
    );
    let value = c.encode_value(concise.get("value").unwrap()).unwrap();
    assert_eq!(hex(&value[..12]), "010000000650000000000002");

    // Any other byteOrder: big-endian integers.
    let mut doc = doc.as_map().unwrap().clone();
    doc.insert("byteOrder", Value::from("normal"));
    let (concise, order) = legacy::to_concise(&Value::Map(doc)).unwrap();
    assert_eq!(order, Some(ByteOrder::Big));
    let c = Codec::with_options(schema, &CodecOptions::default().byte_order(order)).unwrap();
    let key = c.encode_key(concise.get("key").unwrap()).unwrap();
    assert_eq!(
        hex(&key),
        hex(&unhex(
            "00000040 00000006 0a0a0a02 000000000000000000000000"
        ))
    );
}

fn check_golden(name: &str, text: &str) {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        text, want,
        "{name} differs; rerun with UPDATE_GOLDEN=1 to accept"
    );
}

/// Every firewall map's template parses and encodes as it is, to zeros.
#[test]
fn templates_encode_unchanged() {
    let doc = firewall();
    for m in &doc.maps {
        let t = template(m);
        let parsed = parse_yaml(&t).unwrap_or_else(|e| panic!("{}: {e}\n{t}", m.name));
        let c = Codec::new(m).unwrap();
        if c.key_plan().is_some() {
            let k = c
                .encode_key(parsed.get("key").unwrap_or(&Value::Null))
                .unwrap_or_else(|e| panic!("{e}\n{t}"));
            assert!(k.iter().all(|b| *b == 0), "{}", m.name);
        }
        if c.value_plan().is_some() {
            let v = c
                .encode_value(parsed.get("value").unwrap_or(&Value::Null))
                .unwrap_or_else(|e| panic!("{e}\n{t}"));
            assert!(v.iter().all(|b| *b == 0), "{}", m.name);
        }
    }
    check_golden("template-table.yaml", &template(doc.map(TABLE).unwrap()));
    check_golden(
        "template-config.yaml",
        &template(doc.map("ingress_node_firewall_config_map").unwrap()),
    );
    check_golden(
        "template-statistics.yaml",
        &template(doc.map("ingress_node_firewall_statistics_map").unwrap()),
    );
}

/// The numbers `Plan::numeric_leaves` reads straight from bytes are the
/// numbers decode shows at the same path, for the config value's bitfields
/// (signed and unsigned), enums (signed, ENUM64), `_Bool`, 2-D array and
/// big-endian fields; addresses, text and MACs are not numbers.
#[test]
fn numeric_leaves_read_what_decode_shows() {
    use ebpf_sdk_codec::{Number, PathStep};

    let doc = firewall();
    let c = codec_for(&doc, "ingress_node_firewall_config_map");
    let plan = c.value_plan().unwrap();
    let leaves = plan.numeric_leaves(1000).unwrap();
    let paths: Vec<String> = leaves.iter().map(|l| l.path_text()).collect();
    let mut expected: Vec<String> = [
        "mode",
        "log_prio",
        "verbose",
        "max_event_bytes",
        "features",
        "log_level",
        "sample_rate",
        "flags_reserved",
        "ttl_adjust",
        "prio_bias",
        "mgmt_port",
    ]
    .map(String::from)
    .to_vec();
    // The union as decode shows it: its 16-byte alternative, a byte array
    // with no address hint, so numbers.
    expected.extend((0..16).map(|i| format!("mgmt_addr.v6[{i}]")));
    expected.extend(
        [
            "mgmt_netmask",
            "s8_val",
            "s16_val",
            "s32_val",
            "s64_val",
            "enabled",
            "port_matrix[0][0]",
            "port_matrix[0][1]",
            "port_matrix[0][2]",
            "port_matrix[1][0]",
            "port_matrix[1][1]",
            "port_matrix[1][2]",
            "tail_tag",
        ]
        .map(String::from),
    );
    assert_eq!(
        paths, expected,
        "name (char[16], text) and mac (a MAC) are not numbers"
    );
    let v = y("{mode: FW_MODE_AUDIT, log_prio: FW_LOG_PRIO_LOW, verbose: 3, max_event_bytes: 0xffffffffffffffff,
        features: FW_FEAT_NO_DEBUG_MAP, log_level: 5, sample_rate: 31, flags_reserved: 0xabcdef,
        ttl_adjust: -32, prio_bias: 300, mgmt_port: 8080, s8_val: -128, s16_val: -2, s32_val: -70000,
        s64_val: -9000000000, enabled: true, port_matrix: [[1, 2, 3], [4, 5, 65535]], tail_tag: 9}");
    let bytes = c.encode_value(&v).unwrap();
    let number = |path: &str| -> Number {
        let leaf = leaves.iter().find(|l| l.path_text() == path).unwrap();
        leaf.read(&bytes).unwrap()
    };
    assert_eq!(number("mode"), Number::Unsigned(1));
    assert_eq!(number("log_prio"), Number::Signed(-1));
    assert_eq!(number("max_event_bytes"), Number::Unsigned(u64::MAX.into()));
    assert_eq!(number("features"), Number::Unsigned(0x1_0000_0000));
    assert_eq!(number("flags_reserved"), Number::Unsigned(0xabcdef));
    assert_eq!(number("ttl_adjust"), Number::Signed(-32));
    assert_eq!(number("prio_bias"), Number::Signed(300));
    assert_eq!(
        number("mgmt_port"),
        Number::Unsigned(8080),
        "__be16 read in network order"
    );
    assert_eq!(number("s64_val"), Number::Signed(-9_000_000_000));
    assert_eq!(number("enabled"), Number::Unsigned(1));
    assert_eq!(number("port_matrix[1][2]"), Number::Unsigned(65535));

    // Against decode, for arbitrary bytes: every leaf's number is the
    // number (or, for enums, the variant's value) decode shows there.
    let decoded = c.decode_value(&bytes).unwrap();
    for leaf in &leaves {
        let mut at = &decoded;
        for step in leaf.path() {
            at = match step {
                PathStep::Field(f) => at.get(f).unwrap(),
                PathStep::Index(i) => &at.as_list().unwrap()[*i as usize],
            };
        }
        let shown = match at {
            Value::Int(i) => *i,
            Value::Bool(b) => i128::from(*b),
            Value::String(name) => {
                // An enum variant: its value from the schema.
                let text = serde_json::to_string(&doc).unwrap();
                assert!(text.contains(name.as_str()), "{name}");
                match name.as_str() {
                    "FW_MODE_AUDIT" => 1,
                    "FW_LOG_PRIO_LOW" => -1,
                    "FW_FEAT_NO_DEBUG_MAP" => 0x1_0000_0000,
                    other => panic!("unexpected {other}"),
                }
            }
            other => panic!("{}: {other:?}", leaf.path_text()),
        };
        let read = match leaf.read(&bytes).unwrap() {
            Number::Unsigned(u) => i128::try_from(u).unwrap(),
            Number::Signed(i) => i,
            Number::Float(f) => panic!("float {f}"),
        };
        assert_eq!(read, shown, "{}", leaf.path_text());
    }
    // A value too short for a leaf reads as nothing, not a panic.
    assert_eq!(leaves.last().unwrap().read(&bytes[..100]), None);
    // The statistics value: four counters; the limit is enforced.
    let stats = codec_for(&doc, "ingress_node_firewall_statistics_map");
    let plan = stats.value_plan().unwrap();
    let names: Vec<String> = plan
        .numeric_leaves(4)
        .unwrap()
        .iter()
        .map(|l| format!("{} {}", l.path_text(), l.c_type()))
        .collect();
    assert_eq!(
        names,
        [
            "allow_stats.packets __u64",
            "allow_stats.bytes __u64",
            "deny_stats.packets __u64",
            "deny_stats.bytes __u64"
        ]
    );
    let e = plan.numeric_leaves(3).unwrap_err().to_string();
    assert!(e.contains("more than 3 numeric fields"), "{e}");
}
