//! The library's calls on the firewall's real maps: opening through an
//! `Object`, typed writes checked with bpftool, the kernel-BTF schema, the
//! bpffs scan, a state file across two maps, cancelling and refusing a map
//! of another shape.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ebpf_sdk::{
    ApplyOptions, ErrorClass, MapHandle, MapType, Object, PinnedKind, SdkError, UpdateFlags,
};
use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::{bpftool, firewall_object, require_kernel, FirewallGuard};
use serde::{Deserialize, Serialize};

ebpf_sdk_testkit::harness! {
    typed_entries_through_an_object: [Need::Kernel],
    a_pinned_map_alone_is_enough: [Need::Kernel],
    scan_lists_maps_and_programs: [Need::Kernel],
    a_state_file_applies_to_two_maps: [Need::Kernel],
    cancel_and_mismatch_write_nothing: [Need::Kernel],
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Key {
    #[serde(rename = "prefixLen")]
    prefix_len: u32,
    ingress_ifindex: u32,
    ip_data: Ipv4Addr,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Rule {
    rule_id: u32,
    protocol: u8,
    icmp_type: u8,
    action: u8,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Rules {
    rules: Vec<Rule>,
}

fn load(test: &str) -> (FirewallGuard, Object) {
    let _env = require_kernel(test).unwrap();
    let fw = FirewallGuard::load_bundled().unwrap();
    let obj = Object::from_elf(firewall_object())
        .unwrap()
        .with_pin_dir(fw.dir());
    (fw, obj)
}

fn key(last: u8) -> Key {
    Key {
        prefix_len: 64,
        ingress_ifindex: 3,
        ip_data: Ipv4Addr::new(192, 0, 2, last),
    }
}

fn key_bytes(last: u8) -> Vec<u8> {
    let mut k = Vec::new();
    k.extend(64u32.to_ne_bytes());
    k.extend(3u32.to_ne_bytes());
    k.extend([192, 0, 2, last]);
    k.resize(24, 0);
    k
}

fn typed_entries_through_an_object() {
    let (fw, obj) = load("typed_entries_through_an_object");
    let table = obj.open("ingress_node_firewall_table_map").unwrap();
    assert_eq!(table.pin(), fw.map_path("ingress_node_firewall_table_map"));
    let deny = Rules {
        rules: vec![Rule {
            rule_id: 5,
            protocol: 1,
            icmp_type: 8,
            action: 1,
        }],
    };
    table
        .update_as(&key(9), &deny, UpdateFlags::NoExist)
        .unwrap();
    // bpftool reads what the C program reads.
    let e = bpftool::map_lookup(table.pin().unwrap(), &key_bytes(9))
        .unwrap()
        .unwrap();
    assert_eq!(
        &e.value.unwrap()[..12],
        &[5, 0, 0, 0, 1, 0, 0, 0, 0, 8, 0, 1]
    );
    // NoExist on an existing key is the kernel's refusal, exit class Kernel.
    let err = table
        .update_as(&key(9), &deny, UpdateFlags::NoExist)
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Kernel, "{err}");
    assert!(matches!(err, SdkError::Backend(_)), "{err}");
    let back: Option<Rules> = table.lookup_as(&key(9)).unwrap();
    assert_eq!(back, Some(deny));
    let all: Vec<(Key, Rules)> = table.iter_as().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, key(9));
    assert!(table.delete_as(&key(9)).unwrap());
    assert!(bpftool::map_lookup(table.pin().unwrap(), &key_bytes(9))
        .unwrap()
        .is_none());
}

fn a_pinned_map_alone_is_enough() {
    let (fw, obj) = load("a_pinned_map_alone_is_enough");
    let pin = fw.map_path("ingress_node_firewall_table_map").unwrap();
    let from_kernel = Object::from_pinned(pin).unwrap();
    let m = from_kernel.only_map().unwrap();
    assert_eq!(m.name, "ingress_node_firewall_table_map");
    assert_eq!(m.map_type, MapType::LpmTrie);
    // The kernel's BTF gives the ELF's layouts.
    let elf = obj.map("ingress_node_firewall_table_map").unwrap();
    assert_eq!(m.key, elf.key);
    assert_eq!(m.value, elf.value);
    let table = MapHandle::open_pinned(pin).unwrap();
    table
        .update_as(
            &key(1),
            &serde_json::json!({"rules": [{"ruleId": 2, "action": 2}]}),
            UpdateFlags::Any,
        )
        .unwrap();
    let back: Rules = obj
        .open("ingress_node_firewall_table_map")
        .unwrap()
        .lookup_as(&key(1))
        .unwrap()
        .unwrap();
    assert_eq!(back.rules[0].rule_id, 2);
    assert_eq!(back.rules[0].action, 2);
}

fn scan_lists_maps_and_programs() {
    let (fw, _obj) = load("scan_lists_maps_and_programs");
    let pins = ebpf_sdk::scan_pinned(fw.dir());
    let maps: Vec<_> = pins.iter().filter(|p| p.map_info().is_some()).collect();
    let progs = pins
        .iter()
        .filter(|p| matches!(p.kind, PinnedKind::Program))
        .count();
    assert_eq!(maps.len(), fw.maps().len(), "{pins:?}");
    assert_eq!(progs, fw.progs().len(), "{pins:?}");
    assert!(
        pins.windows(2).all(|w| w[0].path < w[1].path),
        "sorted by path"
    );
    // The schema's table map has exactly one candidate: its own pin.
    let obj = Object::from_elf(firewall_object()).unwrap();
    let table = obj.map("ingress_node_firewall_table_map").unwrap();
    let c = ebpf_sdk::candidates(table, &pins);
    assert_eq!(c.len(), 1);
    assert_eq!(
        Some(c[0].path.as_path()),
        fw.map_path("ingress_node_firewall_table_map")
    );
}

fn a_state_file_applies_to_two_maps() {
    let (fw, obj) = load("a_state_file_applies_to_two_maps");
    let state = "maps:\n  ingress_node_firewall_table_map:\n  - key: {prefixLen: 64, ingress_ifindex: 3, ip_data: 192.0.2.7}\n    value: {rules: [{ruleId: 7, protocol: 6, dstPortStart: 22, action: 1}]}\n  ingress_node_firewall_config_map:\n  - key: 0\n    value: {mode: FW_MODE_AUDIT, name: lab}\n";
    let mut records = Vec::new();
    let mut events = 0;
    obj.apply_state(
        state.as_bytes(),
        "state.yaml",
        &ApplyOptions::default(),
        &mut |_, _| events += 1,
        &mut records,
    )
    .unwrap();
    assert!(events > 0);
    assert_eq!(records.len(), 2);
    let json = serde_json::to_value(&records).unwrap();
    assert_eq!(json[0]["map"], "ingress_node_firewall_table_map");
    assert_eq!(json[0]["ok"], true);
    assert_eq!(json[0]["written"], 1);
    assert_eq!(json[1]["map"], "ingress_node_firewall_config_map");
    let pin = fw.map_path("ingress_node_firewall_config_map").unwrap();
    let cfg = bpftool::map_lookup(pin, &0u32.to_ne_bytes())
        .unwrap()
        .unwrap()
        .value
        .unwrap();
    assert_eq!(&cfg[..4], &1u32.to_ne_bytes(), "FW_MODE_AUDIT");
    assert_eq!(&cfg[56..60], b"lab\0");
    let e = bpftool::map_lookup(
        fw.map_path("ingress_node_firewall_table_map").unwrap(),
        &key_bytes(7),
    )
    .unwrap()
    .unwrap();
    assert_eq!(&e.value.unwrap()[..6], &[7, 0, 0, 0, 6, 22]);

    // A bad entry for the second map: nothing is written to either.
    let bad = state
        .replace("192.0.2.7", "192.0.2.8")
        .replace("name: lab", "name: this-name-is-longer-than-16");
    let mut records = Vec::new();
    let err = obj
        .apply_state(
            bad.as_bytes(),
            "bad.yaml",
            &ApplyOptions::default(),
            &mut |_, _| {},
            &mut records,
        )
        .unwrap_err();
    assert!(records.is_empty(), "validated before any map was applied");
    assert!(
        err.to_string()
            .contains("maps.ingress_node_firewall_config_map"),
        "{err}"
    );
    assert!(bpftool::map_lookup(
        fw.map_path("ingress_node_firewall_table_map").unwrap(),
        &key_bytes(8)
    )
    .unwrap()
    .is_none());
}

fn cancel_and_mismatch_write_nothing() {
    let (fw, obj) = load("cancel_and_mismatch_write_nothing");
    let table = obj.open("ingress_node_firewall_table_map").unwrap();
    let lines: String = (0..10)
        .map(|i| format!("{{\"key\": {{\"prefixLen\": 64, \"ingress_ifindex\": 3, \"ip_data\": \"192.0.2.{i}\"}}, \"value\": {{}}}}\n"))
        .collect();
    let opts = ApplyOptions {
        cancel: Some(Arc::new(AtomicBool::new(true))),
        ..Default::default()
    };
    let err = table
        .apply_reader(lines.as_bytes(), "lines.jsonl", &opts, &mut |_| {})
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Interrupted, "{err}");
    assert!(
        matches!(err, SdkError::Interrupted { written: 0, .. }),
        "{err}"
    );
    assert!(table.iter().unwrap().next().is_none(), "nothing written");

    // The statistics map's pin opened with the table's schema is refused.
    let stats_pin = fw.map_path("ingress_node_firewall_statistics_map").unwrap();
    let err = obj
        .open_at("ingress_node_firewall_table_map", stats_pin)
        .unwrap_err();
    assert!(matches!(err, SdkError::Mismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("map type lpm_trie vs percpu_array"),
        "{err}"
    );
}
