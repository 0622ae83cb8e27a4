//! The pull API (cursor, batches), counting, membership and checked
//! decoding of a handle, without root: through the backend's in-memory fake.

use std::path::Path;

use ebpf_sdk::backend::FakeMap;
use ebpf_sdk::{
    entries_from_value, parse_inline, InputErrorKind, MapHandle, SdkError, UpdateFlags, Value,
};

fn object() -> ebpf_sdk::Object {
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firewall-ebpf/firewall.bpf.o");
    ebpf_sdk::Object::from_elf(obj).unwrap()
}

fn handle(map: &str) -> MapHandle {
    let obj = object();
    let s = obj.map(map).unwrap();
    let fake = FakeMap::of_type(s.map_type, &s.name, s.key_size, s.value_size, s.max_entries);
    MapHandle::with_backend(s, Box::new(fake)).unwrap()
}

fn key(i: usize) -> Value {
    parse_inline(
        &format!(
            "{{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.0.{}.{}}}",
            i / 256,
            i % 256
        ),
        "key",
    )
    .unwrap()
}

#[test]
fn cursor_batches_hold_every_entry_once() {
    let h = handle("ingress_node_firewall_table_map");
    let rule = parse_inline("{rules: [{ruleId: 1, protocol: 6, action: 1}]}", "value").unwrap();
    for i in 0..300 {
        h.update(&key(i), &rule, UpdateFlags::NoExist).unwrap();
    }
    assert_eq!(h.count().unwrap(), 300);

    let mut cursor = h.cursor().unwrap();
    let mut seen = Vec::new();
    loop {
        let batch = h.next_batch(&mut cursor).unwrap();
        if batch.is_empty() {
            break;
        }
        seen.extend(batch.into_iter().map(|d| d.key.to_json()));
    }
    assert!(cursor.is_done());
    assert!(h.next_batch(&mut cursor).unwrap().is_empty(), "stays done");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 300);
    // The iterator reads the same entries through the same cursor.
    assert_eq!(h.iter().unwrap().count(), 300);

    assert!(h.contains_key(&key(299)).unwrap());
    assert!(!h.contains_key(&key(300)).unwrap());
    assert!(h.delete(&key(299)).unwrap());
    assert!(!h.contains_key(&key(299)).unwrap());
    assert_eq!(h.count().unwrap(), 299);
    // A bad key is an input error, not "absent".
    let bad = parse_inline("{prefixLen: 64, ip_dat: 10.0.0.1}", "key").unwrap();
    let e = h.contains_key(&bad).unwrap_err();
    assert!(matches!(e, SdkError::Input(_)), "{e}");
}

#[test]
fn queues_have_no_cursor() {
    // A queue of the statistics map's `__u32` keys, as values.
    let obj = object();
    let stats = obj.map("ingress_node_firewall_statistics_map").unwrap();
    let schema = ebpf_sdk::schema::MapSchema {
        name: "q".into(),
        map_type: ebpf_sdk::MapType::Queue,
        key_size: 0,
        value_size: 4,
        key: None,
        value: stats.key.clone(),
        ..stats.clone()
    };
    let fake = FakeMap::of_type(ebpf_sdk::MapType::Queue, "q", 0, 4, 8);
    let h = MapHandle::with_backend(&schema, Box::new(fake)).unwrap();
    let e = h.cursor().unwrap_err();
    assert!(matches!(e, SdkError::Unsupported { .. }), "{e}");
}

#[test]
fn decode_entry_checks_lengths_and_round_trips() {
    let obj = object();
    let codec = obj.codec("ingress_node_firewall_table_map").unwrap();
    let value = parse_inline(
        "{rules: [{ruleId: 1, protocol: 1, icmpType: 8, action: 1}]}",
        "value",
    )
    .unwrap();
    let at = ebpf_sdk::Location::default();
    let kb = codec.encode_key(&key(2), None, &at).unwrap();
    let vb = codec.encode_value(&value, None, &at).unwrap();
    assert_eq!(
        &kb[..12],
        &[0x40, 0, 0, 0, 6, 0, 0, 0, 10, 0, 0, 2],
        "prefixLen 64, ifindex 6, 10.0.0.2"
    );
    let d = codec.decode_entry(&kb, &vb).unwrap();
    assert_eq!(d.key, key(2));
    assert_eq!(codec.encode_value(&d.value, None, &at).unwrap(), vb);

    for (k, v, what, given, expected) in [
        (&kb[..23], &vb[..], "key", 23, 24),
        (&kb[..], &vb[..1199], "value", 1199, 1200),
    ] {
        let SdkError::Input(e) = codec.decode_entry(k, v).unwrap_err() else {
            panic!("not an input error")
        };
        assert!(
            matches!(e.kind, InputErrorKind::Length { what: w, given: g, expected: x, at_least: false }
                if w == what && g == given && x == expected),
            "{e}"
        );
    }
}

#[test]
fn entries_from_values_follow_the_file_rules() {
    let v = parse_inline(
        "[{key: 1, value: {allow_stats: {packets: 2}}, total: {}}, \
          {key: 2, value: {}}]",
        "x",
    )
    .unwrap();
    let entries = entries_from_value(v, "entries").unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].key, Value::Int(1));
    assert_eq!(entries[1].location.to_string(), "entries[1]");

    let state = parse_inline(
        "{maps: {ingress_node_firewall_statistics_map: [{key: 1, value: {}}]}}",
        "x",
    )
    .unwrap();
    let entries = entries_from_value(state, "state").unwrap();
    assert_eq!(
        entries[0].map.as_deref(),
        Some("ingress_node_firewall_statistics_map")
    );

    for (text, want) in [
        ("[{key: 1, value: 2}, 7]", "entries[1]: expected an entry"),
        ("[{}]", "entries[0]: an entry needs `key:` and/or `value:`"),
        ("{key: 1, vlaue: 2}", "entries: unknown field `vlaue`"),
    ] {
        let e = entries_from_value(parse_inline(text, "x").unwrap(), "entries").unwrap_err();
        assert!(e.to_string().starts_with(want), "{text}: {e}");
    }
}
