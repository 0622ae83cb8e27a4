//! The typed API and the library workflows without root, on the firewall's
//! schema and the backend's in-memory fake: a program's own structs (and
//! `serde_json::json!` values) in and out, checked like YAML input.

use std::net::{IpAddr, Ipv4Addr};

use ebpf_sdk::backend::FakeMap;
use ebpf_sdk::{
    from_value, parse_entries, to_value, ApplyOptions, Backup, InputErrorKind, MapHandle,
    MapSchema, Object, SdkError, UpdateFlags, Value,
};
use serde::{Deserialize, Serialize};

fn firewall() -> Object {
    let obj =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firewall-ebpf/firewall.bpf.o");
    Object::from_elf(obj).unwrap()
}

fn fake(schema: &MapSchema, ncpus: usize) -> MapHandle {
    let mut info = ebpf_sdk::backend::MapInfo::new(
        schema.map_type,
        schema.key_size,
        schema.value_size,
        schema.max_entries.min(1024),
    );
    info.name = schema.name.chars().take(15).collect();
    let map = FakeMap::with_ncpus(info, ncpus);
    MapHandle::with_backend(schema, Box::new(map)).unwrap()
}

fn table() -> MapHandle {
    fake(
        firewall().map("ingress_node_firewall_table_map").unwrap(),
        1,
    )
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Key {
    #[serde(rename = "prefixLen")]
    prefix_len: u32,
    ingress_ifindex: u32,
    ip_data: IpAddr,
}

/// A subset of `struct ruleType_st`.
#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
#[serde(rename_all = "camelCase")]
struct Rule {
    rule_id: u32,
    protocol: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dst_port_start: Option<u16>,
    action: u8,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Rules {
    rules: Vec<Rule>,
}

fn key() -> Key {
    Key {
        prefix_len: 64,
        ingress_ifindex: 6,
        ip_data: IpAddr::V4(Ipv4Addr::new(10, 10, 10, 2)),
    }
}

fn rules() -> Rules {
    Rules {
        rules: vec![Rule {
            rule_id: 1,
            protocol: 6,
            dst_port_start: Some(80),
            action: 1,
        }],
    }
}

#[test]
fn structs_write_the_bytes_yaml_writes() {
    let h = table();
    h.update_as(&key(), &rules(), UpdateFlags::Any).unwrap();
    let all = h.backend().lookup_batch().unwrap();
    let (k, v) = all.get(0).unwrap();
    // The same bytes as the YAML of the README's tour.
    let yaml_k = h
        .codec()
        .encode_key(
            &ebpf_sdk::parse_inline(
                "{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}",
                "k",
            )
            .unwrap(),
            None,
            &Default::default(),
        )
        .unwrap();
    assert_eq!(k, yaml_k.as_slice());
    let mut want = vec![0x40, 0, 0, 0, 6, 0, 0, 0, 10, 10, 10, 2];
    want.resize(24, 0);
    assert_eq!(k, want.as_slice());
    // ruleId 1, protocol 6, dstPortStart 80 (LE), dstPortEnd 0, icmp 0 0, action 1.
    assert_eq!(&v[..12], &[1, 0, 0, 0, 6, 80, 0, 0, 0, 0, 0, 1]);
    assert!(v[12..].iter().all(|b| *b == 0), "fields left out are zero");

    // Read back into the subset struct: the other C fields are ignored.
    let back: Rules = h.lookup_as(&key()).unwrap().unwrap();
    assert_eq!(back, rules());
    // A json! value goes through the same door, with the same bytes.
    let j = serde_json::json!({"rules": [{"ruleId": 1, "protocol": 6, "dstPortStart": 80, "action": 1}]});
    h.update_as(&key(), &j, UpdateFlags::Exist).unwrap();
    assert_eq!(h.backend().lookup(k).unwrap().unwrap(), v);
    assert!(h.delete_as(&key()).unwrap());
    assert!(!h.delete_as(&key()).unwrap());
    assert_eq!(h.lookup_as::<_, Rules>(&key()).unwrap(), None);
}

#[test]
fn a_misspelt_field_or_a_value_out_of_range_names_the_field_and_writes_nothing() {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Typo {
        rule_id: u32,
        dst_port: u16,
    }
    let h = table();
    let e = h
        .update_as(
            &key(),
            &serde_json::json!({"rules": [Typo { rule_id: 1, dst_port: 80 }]}),
            UpdateFlags::Any,
        )
        .unwrap_err();
    let SdkError::Input(i) = &e else {
        panic!("{e}")
    };
    assert!(matches!(i.kind, InputErrorKind::Value(_)), "{e}");
    assert_eq!(i.field_path(), Some("value.rules[0].dstPort"));
    assert!(
        e.to_string()
            .starts_with("value.rules[0].dstPort: unknown field"),
        "{e}"
    );

    let e = h
        .update_as(
            &key(),
            &serde_json::json!({"rules": [{}, {}, {}, {"dstPortEnd": 70000}]}),
            UpdateFlags::Any,
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "value.rules[3].dstPortEnd: 70000 does not fit in __u16 (0..=65535)"
    );
    let e = h
        .update_as(
            &serde_json::json!({"prefixLen": -1}),
            &rules(),
            UpdateFlags::Any,
        )
        .unwrap_err();
    assert_eq!(
        e.as_input().and_then(|i| i.field_path()),
        Some("key.prefixLen")
    );
    assert_eq!(
        h.backend().lookup_batch().unwrap().len(),
        0,
        "nothing written"
    );
}

#[test]
fn reading_into_a_type_that_does_not_fit_is_a_decode_error_with_the_path() {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Narrow {
        rules: Vec<NarrowRule>,
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    #[serde(rename_all = "camelCase")]
    struct NarrowRule {
        rule_id: u8,
    }
    let h = table();
    let mut big = rules();
    big.rules[0].rule_id = 300;
    h.update_as(&key(), &big, UpdateFlags::Any).unwrap();
    let e = h.lookup_as::<_, Narrow>(&key()).unwrap_err();
    let SdkError::Decode { source, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(source.path(), Some("value.rules[0].ruleId"));
    assert!(e.to_string().contains("expected u8"), "{e}");
}

#[test]
fn iterating_typed_entries() {
    let h = table();
    let mut want = Vec::new();
    for i in 0..50u8 {
        let mut k = key();
        k.ip_data = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
        let mut r = rules();
        r.rules[0].rule_id = u32::from(i) + 1;
        h.update_as(&k, &r, UpdateFlags::NoExist).unwrap();
        want.push((k, r));
    }
    let mut got: Vec<(Key, Rules)> = h.iter_as().unwrap().collect::<Result<_, _>>().unwrap();
    got.sort_by_key(|(k, _)| k.ip_data);
    assert_eq!(got, want);
    // Untyped, the same entries as dump gives.
    let mut dumped = Vec::new();
    h.dump(|d| {
        dumped.push(d);
        Ok(())
    })
    .unwrap();
    let iterated: Vec<_> = h.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(iterated, dumped);
}

#[test]
fn per_cpu_values_typed_and_totalled() {
    #[derive(Serialize, Deserialize, Debug, PartialEq, Default, Clone)]
    struct Counters {
        packets: u64,
        bytes: u64,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq, Default, Clone)]
    struct Stats {
        allow_stats: Counters,
        deny_stats: Counters,
    }
    let obj = firewall();
    let stats = fake(obj.map("ingress_node_firewall_statistics_map").unwrap(), 3);
    let per_cpu: Vec<Stats> = (1..=3)
        .map(|c| Stats {
            deny_stats: Counters {
                packets: c,
                bytes: 100 * c,
            },
            ..Default::default()
        })
        .collect();
    stats.update_as(&4u32, &per_cpu, UpdateFlags::Any).unwrap();
    let back: Vec<Stats> = stats.lookup_as(&4u32).unwrap().unwrap();
    assert_eq!(back, per_cpu);
    let total: Stats = stats.lookup_total_as(&4u32).unwrap().unwrap();
    assert_eq!(
        total.deny_stats,
        Counters {
            packets: 6,
            bytes: 600
        }
    );
    // A single value fills every CPU, as in YAML.
    let one = Stats {
        allow_stats: Counters {
            packets: 1,
            bytes: 2,
        },
        ..Default::default()
    };
    stats.update_as(&5u32, &one, UpdateFlags::Any).unwrap();
    let back: Vec<Stats> = stats.lookup_as(&5u32).unwrap().unwrap();
    assert_eq!(back, vec![one.clone(); 3]);
}

#[test]
fn to_value_and_from_value_round_trip_through_the_codec() {
    let h = table();
    let v = to_value(&key()).unwrap();
    let bytes = h.codec().encode_key(&v, None, &Default::default()).unwrap();
    let decoded = h.codec().decode_key(&bytes).unwrap();
    assert_eq!(from_value::<Key>(&decoded).unwrap(), key());
    assert_eq!(
        decoded.get("ip_data"),
        Some(&Value::String("10.10.10.2".into()))
    );
}

#[test]
fn diff_backup_and_restore_are_library_calls() {
    let h = table();
    let text = |ips: &[u8]| -> String {
        ips.iter()
            .map(|i| {
                format!(
                    "{{\"key\": {{\"prefixLen\": 64, \"ingress_ifindex\": 6, \"ip_data\": \"10.0.0.{i}\"}}, \"value\": {{\"rules\": [{{\"ruleId\": {i}, \"action\": 1}}]}}}}\n"
                )
            })
            .collect()
    };
    let entries = |t: &str| parse_entries(t, "in.jsonl").unwrap().into_iter().map(Ok);
    h.apply(
        entries(&text(&[1, 2, 3])),
        &ApplyOptions::default(),
        &mut |_| {},
    )
    .unwrap();

    let d = h.diff(entries(&text(&[2, 3, 4]))).unwrap();
    assert_eq!(
        (
            d.added.len(),
            d.changed.len(),
            d.removed.len(),
            d.report.unchanged
        ),
        (1, 0, 1, 2)
    );
    assert_eq!(
        d.removed[0].key.get("ip_data"),
        Some(&Value::String("10.0.0.1".into()))
    );
    assert_eq!(
        h.backend().lookup_batch().unwrap().len(),
        3,
        "diff writes nothing"
    );

    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("b.jsonl");
    let opts = ApplyOptions {
        prune: true,
        backup: Backup::To(backup.clone()),
        ..Default::default()
    };
    let r = h.apply(entries(&text(&[4])), &opts, &mut |_| {}).unwrap();
    assert_eq!((r.written, r.deleted), (1, 3));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&backup).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the backup is private");
    let r = h.restore_from(&backup).unwrap();
    assert_eq!((r.written, r.deleted), (3, 1));
    let now: Vec<_> = h.iter().unwrap().collect::<Result<_, _>>().unwrap();
    let mut ips: Vec<_> = now
        .iter()
        .map(|d| d.key.get("ip_data").unwrap().as_str().unwrap().to_string())
        .collect();
    ips.sort();
    assert_eq!(ips, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
}

#[test]
fn an_object_knows_its_maps_and_decodes_any_type() {
    let obj = firewall();
    assert_eq!(obj.maps().len(), 8);
    assert!(matches!(obj.only_map(), Err(SdkError::MapNotNamed { maps }) if maps.len() == 8));
    let e = obj.map("nope").unwrap_err();
    assert!(
        e.to_string().contains("ingress_node_firewall_table_map"),
        "{e}"
    );
    assert_eq!(
        obj.pin_path("ingress_node_firewall_table_map").unwrap(),
        std::path::Path::new("/sys/fs/bpf/ingress_node_firewall_table_map")
    );
    let obj = obj.with_pin_dir("/sys/fs/bpf/tc/globals");
    assert_eq!(
        obj.pin_path("ingress_node_firewall_table_map").unwrap(),
        std::path::Path::new("/sys/fs/bpf/tc/globals/ingress_node_firewall_table_map")
    );
    // struct event_hdr_st { __u16 ifId, ruleId; __u8 action, pad; __u16 pktLength; } + payload.
    let v = obj
        .decode_type("event_hdr_st", &[6, 0, 9, 0, 1, 0, 98, 0, 0xaa])
        .unwrap();
    assert_eq!(
        v.to_json(),
        r#"{"ifId":6,"ruleId":9,"action":1,"pad":0,"pktLength":98,"rest":"0xaa"}"#
    );
    let e = obj.decode_type("event_hdr_st", &[1, 2]).unwrap_err();
    assert!(
        matches!(
            e.as_input().map(|i| &i.kind),
            Some(InputErrorKind::Length {
                given: 2,
                expected: 8,
                ..
            })
        ),
        "{e}"
    );
    // Saved and read back, the schema is the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fw.json");
    let mut obj = obj;
    obj.record_pin("ingress_node_firewall_table_map", "/somewhere/t")
        .unwrap();
    obj.save(&path).unwrap();
    let again = Object::from_schema_file(&path).unwrap();
    assert_eq!(again.document(), obj.document());
    assert_eq!(
        again.pin_path("ingress_node_firewall_table_map").unwrap(),
        std::path::Path::new("/somewhere/t")
    );
}
