//! The bytes we encode equal the bytes the C compiler lays out: a C program
//! fills the firewall's structs (from `firewall-ebpf/firewall.h`) with known
//! values and prints them as hex; we encode the same values, written as a
//! user would write them in YAML, from the schema extracted from the object.
//! Decoding the C bytes gives the values back.

use std::path::{Path, PathBuf};
use std::process::Command;

use ebpf_sdk::{parse_inline, EntryCodec};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The C side: fills the structs and prints their bytes.
const C_PROGRAM: &str = include_str!("fixtures/fill_firewall.c");

/// (label, map, key or value, YAML as a user writes it)
const CASES: &[(&str, &str, &str, &str)] = &[
    ("key4", "ingress_node_firewall_table_map", "key", "{prefixLen: 56, ingress_ifindex: 7, ip_data: 192.168.10.0}"),
    ("key6", "ingress_node_firewall_table_map", "key", "{prefixLen: 96, ingress_ifindex: 0x01020304, ip_data: 'fd00:1:2::a'}"),
    // rules[2..99] are `{}`: see `case_yaml`.
    (
        "rules",
        "ingress_node_firewall_table_map",
        "value",
        "rules:\n- {ruleId: 1, protocol: 6, dstPortStart: 8080, dstPortEnd: 8090, action: 1}\n\
         - {ruleId: 70000, protocol: 1, icmpType: 8, icmpCode: 3, action: 2}\n\
         EMPTY97\
         - {ruleId: 0xffffffff, dstPortStart: 65535, action: 2}\n",
    ),
    (
        "stats",
        "ingress_node_firewall_statistics_map",
        "value",
        "{allow_stats: {packets: 1, bytes: 0x1122334455667788}, deny_stats: {packets: 3, bytes: 4}}",
    ),
    (
        "config",
        "ingress_node_firewall_config_map",
        "value",
        "mode: FW_MODE_AUDIT\nlog_prio: FW_LOG_PRIO_LOW\nverbose: 200\nmax_event_bytes: 1500\n\
         features: FW_FEAT_NO_DEBUG_MAP\nlog_level: 5\nsample_rate: 31\nflags_reserved: 0xabcdef\n\
         ttl_adjust: -7\nprio_bias: -512\nmgmt_port: 8443\nmgmt_addr: {v6: '2001:db8::1'}\nname: edge-fw\n\
         mgmt_netmask: 255.255.255.0\ns8_val: -128\ns16_val: -2\ns32_val: -100000\ns64_val: -5000000000\n\
         enabled: true\nmac: '02:42:ac:11:00:02'\nport_matrix: [[1, 0, 3], [0, 65535]]\ntail_tag: 9\n",
    ),
    ("dbgkey", "ingress_node_firewall_debug_map", "key", "{saddr: 10.9.8.7, sport: 53, proto: 17}"),
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn encoding_matches_what_gcc_lays_out() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("fill.c");
    let bin = dir.path().join("fill");
    std::fs::write(&src, C_PROGRAM).unwrap();
    let out = Command::new("gcc")
        .args(["-std=gnu11", "-Wall", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-I")
        .arg(repo().join("firewall-ebpf"))
        .output()
        .expect("gcc is needed for the C cross-check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&bin).output().unwrap();
    let text = String::from_utf8(run.stdout).unwrap();
    let c: std::collections::HashMap<&str, Vec<u8>> = text
        .lines()
        .map(|l| {
            let (name, hex) = l.split_once(' ').unwrap();
            (name, unhex(hex))
        })
        .collect();

    let obj = ebpf_sdk::Object::from_elf(repo().join("firewall-ebpf/firewall.bpf.o")).unwrap();
    for (label, map, side, yaml) in CASES {
        let schema = obj.map(map).unwrap();
        let at = ebpf_sdk::Location::named(*label);
        // One CPU: per-CPU values are compared for a single slot.
        let codec = EntryCodec::new(schema, 1).unwrap();
        let yaml = yaml.replace("EMPTY97", &"- {}\n".repeat(97));
        let v = parse_inline(&yaml, label).unwrap();
        let ours = if *side == "key" {
            codec.encode_key(&v, None, &at).unwrap()
        } else {
            codec.encode_value(&v, None, &at).unwrap()
        };
        let theirs = &c[label];
        let ours = &ours[..theirs.len()];
        assert_eq!(
            ours,
            &theirs[..],
            "{label}: our bytes (left) differ from gcc's (right)"
        );
        // And gcc's bytes decode back to the same bytes when re-encoded.
        let back = if *side == "key" {
            let d = codec.decode_key(theirs).unwrap();
            codec.encode_key(&d, None, &at).unwrap()
        } else {
            let (d, _) = codec.decode_value(&theirs[..]).unwrap();
            codec.encode_value(&d, None, &at).unwrap()
        };
        assert_eq!(
            &back[..theirs.len()],
            &theirs[..],
            "{label}: decode/encode of gcc's bytes"
        );
    }

    // The event header, through `decode --type`'s path: BTF type -> plan.
    let bytes = std::fs::read(repo().join("firewall-ebpf/firewall.bpf.o")).unwrap();
    let node =
        ebpf_sdk::btf::extract_type(&bytes, "firewall.bpf.o", "struct event_hdr_st").unwrap();
    let plan = ebpf_sdk::codec::Plan::new(
        "event",
        &node,
        ebpf_sdk::schema::ByteOrder::native(),
        &Default::default(),
    )
    .unwrap();
    let v = plan.decode(&c["event"]).unwrap();
    assert_eq!(
        v.to_json(),
        r#"{"ifId":6,"ruleId":42,"action":1,"pad":0,"pktLength":98}"#
    );
}
