//! Map logic without root: `apply`, diff, prune, validation before writing and
//! partial batches, through the backend's in-memory fake.

use std::path::Path;

use ebpf_sdk::backend::FakeMap;
use ebpf_sdk::schema::{Document, MapSchema};
use ebpf_sdk::{
    parse_entries, ApplyEvent, ApplyOptions, Decoded, DiffKind, MapHandle, SdkError, UpdateFlags,
    Value,
};

fn firewall() -> Document {
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firewall-ebpf/firewall.bpf.o");
    ebpf_sdk::Object::from_elf(obj).unwrap().into_document()
}

fn fake_for(schema: &MapSchema, max_entries: u32) -> FakeMap {
    FakeMap::of_type(
        schema.map_type,
        &schema.name,
        schema.key_size,
        schema.value_size,
        max_entries,
    )
}

fn table() -> MapSchema {
    firewall()
        .map("ingress_node_firewall_table_map")
        .unwrap()
        .clone()
}

fn rules(n: usize, action: u8) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"key\": {{\"prefixLen\": 64, \"ingress_ifindex\": 6, \"ip_data\": \"10.0.{}.{}\"}}, \
                 \"value\": {{\"rules\": [{{\"ruleId\": {}, \"protocol\": 6, \"dstPortStart\": 80, \"action\": {action}}}]}}}}\n",
                i / 256,
                i % 256,
                i + 1
            )
        })
        .collect()
}

fn apply(
    h: &MapHandle,
    text: &str,
    opts: &ApplyOptions,
) -> Result<ebpf_sdk::ApplyReport, SdkError> {
    let entries = parse_entries(text, "input.jsonl")?;
    h.apply(entries.into_iter().map(Ok), opts, &mut |_| {})
}

/// Applies and collects the reported differences.
fn apply_diff(
    h: &MapHandle,
    text: &str,
    opts: &ApplyOptions,
) -> (ebpf_sdk::ApplyReport, Vec<(DiffKind, Decoded)>) {
    let entries = parse_entries(text, "input.jsonl").unwrap();
    let mut diffs = Vec::new();
    let r = h
        .apply(entries.into_iter().map(Ok), opts, &mut |ev| {
            if let ApplyEvent::Diff(k, d) = ev {
                diffs.push((k, d.clone()));
            }
        })
        .unwrap();
    (r, diffs)
}

#[test]
fn apply_writes_exact_bytes_and_diffs() {
    let schema = table();
    let h = MapHandle::with_backend(&schema, Box::new(fake_for(&schema, 1024))).unwrap();
    let r = apply(&h, &rules(3, 1), &ApplyOptions::default()).unwrap();
    assert_eq!(r.written, 3);
    assert!(!r.diffed);

    // The bytes the C program reads: key 40000000 06000000 0a000001 + zeros.
    let all = h.backend().lookup_batch().unwrap();
    assert_eq!(all.len(), 3);
    let mut want_key = vec![0x40, 0, 0, 0, 6, 0, 0, 0, 10, 0, 0, 1];
    want_key.resize(24, 0);
    let (_, v) = all
        .iter()
        .find(|(k, _)| *k == want_key.as_slice())
        .expect("10.0.0.1 key");
    assert_eq!(
        &v[..12],
        &[2, 0, 0, 0, 6, 80, 0, 0, 0, 0, 0, 1],
        "ruleId 2, tcp, port 80, deny"
    );
    assert!(v[12..].iter().all(|b| *b == 0));

    // Dry run of a changed set: one changed, one added, one removed, one unchanged.
    let next = format!("{}{}", &rules(2, 1), rules(4, 2).lines().nth(3).unwrap());
    let next = next.replace(
        "\"ruleId\": 2, \"protocol\": 6",
        "\"ruleId\": 2, \"protocol\": 17",
    );
    let (r, diffs) = apply_diff(
        &h,
        &next,
        &ApplyOptions {
            prune: true,
            dry_run: true,
            ..Default::default()
        },
    );
    assert!(r.diffed);
    assert_eq!((r.added, r.changed, r.removed, r.unchanged), (1, 1, 1, 1));
    assert_eq!(r.written, 0);
    let ip = |k: DiffKind| {
        let d = &diffs.iter().find(|(kind, _)| *kind == k).unwrap().1;
        d.key.get("ip_data").unwrap().clone()
    };
    assert_eq!(ip(DiffKind::Added), Value::String("10.0.0.3".into()));
    assert_eq!(ip(DiffKind::Changed), Value::String("10.0.0.1".into()));
    assert_eq!(ip(DiffKind::Removed), Value::String("10.0.0.2".into()));
    assert_eq!(
        h.backend().lookup_batch().unwrap().len(),
        3,
        "dry run wrote nothing"
    );

    // For real, with prune: the map equals the input.
    let r = apply(
        &h,
        &next,
        &ApplyOptions {
            prune: true,
            dry_run: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (r.written, r.deleted),
        (2, 1),
        "unchanged entries are not rewritten"
    );
    let mut dumped = Vec::new();
    h.dump(|d| {
        dumped.push(d);
        Ok(())
    })
    .unwrap();
    assert_eq!(dumped.len(), 3);
    let ips: Vec<&Value> = dumped
        .iter()
        .map(|d| d.key.get("ip_data").unwrap())
        .collect();
    assert!(ips.contains(&&Value::String("10.0.0.3".into())));
    assert!(!ips.contains(&&Value::String("10.0.0.2".into())));
}

#[test]
fn one_bad_entry_writes_nothing() {
    let schema = table();
    let h = MapHandle::with_backend(&schema, Box::new(fake_for(&schema, 1024))).unwrap();
    let mut text = rules(5, 1);
    text.push_str("{\"key\": {\"prefixLen\": 64}, \"value\": {\"rules\": [{}, {}, {}, {\"dstPortEnd\": 70000}]}}\n");
    let e = apply(&h, &text, &ApplyOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "input.jsonl:6: value.rules[3].dstPortEnd: 70000 does not fit in __u16 (0..=65535)"
    );
    assert_eq!(h.backend().lookup_batch().unwrap().len(), 0);

    let dup = format!("{}{}", rules(2, 1), rules(1, 2));
    let e = apply(&h, &dup, &ApplyOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "input.jsonl:3: the same key as input.jsonl:1; each key may appear once"
    );
    assert_eq!(h.backend().lookup_batch().unwrap().len(), 0);
}

#[test]
fn a_full_map_reports_exactly_what_was_written() {
    let schema = table();
    let h = MapHandle::with_backend(&schema, Box::new(fake_for(&schema, 10))).unwrap();
    let e = apply(&h, &rules(25, 1), &ApplyOptions::default()).unwrap_err();
    match &e {
        SdkError::Batch {
            applied, requested, ..
        } => assert_eq!((*applied, *requested), (10, 25)),
        other => panic!("{other}"),
    }
    assert!(
        e.to_string().contains("10 of 25 entries were written"),
        "{e}"
    );
    assert_eq!(h.backend().lookup_batch().unwrap().len(), 10);
}

#[test]
fn per_cpu_values_broadcast_and_sum() {
    let doc = firewall();
    let stats = doc.map("ingress_node_firewall_statistics_map").unwrap();
    let mut info = ebpf_sdk::backend::MapInfo::new(stats.map_type, 4, stats.value_size, 100);
    info.name = stats.name.clone();
    let h = MapHandle::with_backend(stats, Box::new(FakeMap::with_ncpus(info, 3))).unwrap();
    let key = Value::Int(7);
    let one = ebpf_sdk::parse_inline("{allow_stats: {packets: 2, bytes: 100}}", "v").unwrap();
    h.update(&key, &one, UpdateFlags::Any).unwrap();
    let d = h.lookup(&key).unwrap().unwrap();
    let Value::List(per) = &d.value else {
        panic!("{:?}", d.value)
    };
    assert_eq!(per.len(), 3, "a single value fills every CPU");
    let total = d.total.unwrap();
    assert_eq!(
        total.get("allow_stats").unwrap().get("packets"),
        Some(&Value::Int(6))
    );
    // Raw layout: 3 slots of round_up(32, 8) bytes.
    let raw = h.backend().lookup(&7u32.to_ne_bytes()).unwrap().unwrap();
    assert_eq!(raw.len(), 96);
    assert_eq!(&raw[32..40], &2u64.to_ne_bytes());
}

#[test]
fn a_map_of_another_shape_is_refused_before_writing() {
    let schema = table();
    let wrong = FakeMap::of_type(schema.map_type, &schema.name, 24, 96, 10);
    let e = MapHandle::with_backend(&schema, Box::new(wrong)).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("value size 1200 vs 96"), "{msg}");
    assert!(
        msg.contains("schema: lpm_trie ingress_node_firewall_table_map (key 24 B, value 1200 B"),
        "{msg}"
    );
    assert!(msg.contains("nothing was written"), "{msg}");
}

#[test]
fn json_lines_on_threads_equal_one_thread() {
    let schema = table();
    let text = rules(20_000, 1);
    let mut dumps = Vec::new();
    for threads in [1, 3] {
        let h = MapHandle::with_backend(&schema, Box::new(fake_for(&schema, 30_000))).unwrap();
        let opts = ApplyOptions {
            parse_threads: threads,
            ..Default::default()
        };
        let r = h
            .apply_reader(text.as_bytes(), "rules.jsonl", &opts, &mut |_| {})
            .unwrap();
        assert_eq!(r.written, 20_000);
        dumps.push(h.backend().lookup_batch().unwrap());

        // Errors name the same line, and nothing is written.
        let h = MapHandle::with_backend(&schema, Box::new(fake_for(&schema, 30_000))).unwrap();
        let mut bad = rules(12_000, 1);
        bad.push_str("{\"key\": {\"prefixLen\": 999999999999}}\n");
        bad.push_str(&rules(3, 1));
        let e = h
            .apply_reader(bad.as_bytes(), "rules.jsonl", &opts, &mut |_| {})
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("rules.jsonl:12001: key.prefixLen: 999999999999 does not fit"),
            "{threads}: {e}"
        );
        assert_eq!(h.backend().lookup_batch().unwrap().len(), 0);
        // A duplicate across blocks names both lines.
        let dup = format!("{}{}", rules(9_000, 1), rules(1, 2));
        let e = h
            .apply_reader(dup.as_bytes(), "rules.jsonl", &opts, &mut |_| {})
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "rules.jsonl:9001: the same key as rules.jsonl:1; each key may appear once",
            "{threads}"
        );
    }
    assert_eq!(dumps[0], dumps[1]);
}

/// YAML as `dump -o yaml` prints it, and as `---` documents, goes through
/// the parser threads too: the same bytes as JSON Lines on one thread or
/// three, errors and duplicates named where they are, nothing written when
/// anything is wrong.
#[test]
fn yaml_lists_and_documents_on_threads_equal_json_lines() {
    let schema = table();
    let json = rules(3_000, 1);
    let h = MapHandle::with_backend(&schema, Box::new(fake_for(&schema, 5_000))).unwrap();
    h.apply_reader(
        json.as_bytes(),
        "rules.jsonl",
        &ApplyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    let want = h.backend().lookup_batch().unwrap();
    // What `dump -o yaml` prints: one-item lists, one after the other.
    let mut dumped: Vec<Value> = Vec::new();
    h.dump(|d| {
        dumped.push(d.into_value());
        Ok(())
    })
    .unwrap();
    let list: String = dumped
        .iter()
        .map(|v| Value::List(vec![v.clone()]).to_yaml())
        .collect();
    // Each item is in the block style the fast path reads.
    let mut out = Vec::new();
    assert!(ebpf_sdk::codec::block_yaml_to_json(
        &Value::List(vec![dumped[0].clone()]).to_yaml(),
        &mut out
    ));
    let docs: String = dumped
        .iter()
        .map(|v| format!("---\n{}", v.to_yaml()))
        .collect();
    for (text, name) in [(&list, "d.yaml"), (&docs, "docs.yaml")] {
        for threads in [1, 3] {
            let opts = ApplyOptions {
                parse_threads: threads,
                ..Default::default()
            };
            let again =
                MapHandle::with_backend(&schema, Box::new(fake_for(&schema, 5_000))).unwrap();
            let r = again
                .apply_reader(text.as_bytes(), name, &opts, &mut |_| {})
                .unwrap();
            assert_eq!(r.written, 3_000, "{name} on {threads}");
            let mut got = again
                .backend()
                .lookup_batch()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect::<Vec<_>>();
            let mut exp = want
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect::<Vec<_>>();
            got.sort();
            exp.sort();
            assert_eq!(got, exp, "{name} on {threads} thread(s)");
        }
    }

    let opts = ApplyOptions {
        parse_threads: 2,
        ..Default::default()
    };
    let fresh = || MapHandle::with_backend(&schema, Box::new(fake_for(&schema, 5_000))).unwrap();
    // A bad item in the middle of a list: its line, nothing written.
    let lines_per_item = list.lines().count() / 3_000;
    // Item 2000 starts on line `bad_at` (1-based), which names it; its
    // second line (`bad_at` 0-based) is `prefixLen: 64`.
    let bad_at = 2_000 * lines_per_item + 1;
    let mut bad: Vec<&str> = list.lines().collect();
    assert_eq!(bad[bad_at].trim(), "prefixLen: 64");
    let bad_line = bad[bad_at].replace("64", "999999999999");
    bad[bad_at] = &bad_line;
    let bad = bad.join("\n") + "\n";
    let h = fresh();
    let e = h
        .apply_reader(bad.as_bytes(), "d.yaml", &opts, &mut |_| {})
        .unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "d.yaml:{}: key.prefixLen: 999999999999 does not fit",
            bad_at
        )),
        "{e}"
    );
    assert_eq!(h.backend().lookup_batch().unwrap().len(), 0);
    // A duplicate: both items' lines; in documents, both documents.
    let dup = format!("{list}{}", Value::List(vec![dumped[7].clone()]).to_yaml());
    let e = fresh()
        .apply_reader(dup.as_bytes(), "d.yaml", &opts, &mut |_| {})
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "d.yaml:{}: the same key as d.yaml:{}; each key may appear once",
            3_000 * lines_per_item + 1,
            7 * lines_per_item + 1
        )
    );
    let dup = format!("{docs}---\n{}", dumped[7].to_yaml());
    let e = fresh()
        .apply_reader(dup.as_bytes(), "docs.yaml", &opts, &mut |_| {})
        .unwrap_err();
    let doc_lines = docs.lines().count() / 3_000;
    assert_eq!(
        e.to_string(),
        format!(
            "docs.yaml: document 3001 (line {}): the same key as docs.yaml: document 8 (line {}); each key may appear once",
            3_000 * doc_lines + 1,
            7 * doc_lines + 1
        )
    );
}

/// xorshift64*, for reproducible bytes.
fn bytes(state: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *state ^= *state >> 12;
            *state ^= *state << 25;
            *state ^= *state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u8
        })
        .collect()
}

/// `dump_json` (bytes straight to JSON text) prints exactly the JSON of what
/// `dump` decodes, for every firewall map with keys and values (per-CPU ones
/// through the general path), and applying that text back (the JSON Lines
/// fast path on threads, and the general path on one thread) gives the same
/// bytes again.
#[test]
fn dump_json_is_dump_as_json_and_applies_back() {
    let doc = firewall();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut checked = 0;
    for schema in &doc.maps {
        if schema.key_size == 0 || schema.value_size == 0 || schema.key.is_none() {
            continue;
        }
        if ![
            "hash",
            "array",
            "lpm_trie",
            "percpu_array",
            "percpu_hash",
            "lru_hash",
        ]
        .contains(&schema.map_type.name().as_ref())
        {
            continue;
        }
        let h = MapHandle::with_backend(schema, Box::new(fake_for(schema, 64))).unwrap();
        let codec = ebpf_sdk::codec::Codec::new(schema).unwrap();
        let kmask = codec.key_plan().unwrap().significant_bits();
        let vmask = codec.value_plan().unwrap().significant_bits();
        let vlen = h.codec().value_len();
        for _ in 0..40 {
            let mut k = bytes(&mut seed, schema.key_size as usize);
            if schema.map_type.indexed() {
                k = (u32::from(k[0]) % schema.max_entries.min(64))
                    .to_ne_bytes()
                    .to_vec();
            }
            if schema.map_type == ebpf_sdk::MapType::LpmTrie {
                let max = (schema.key_size - 4) * 8;
                let len = u32::from(k[4]) % (max + 1);
                k[..4].copy_from_slice(&len.to_ne_bytes());
            }
            k.iter_mut().zip(&kmask).for_each(|(b, m)| *b &= m);
            let mut v = bytes(&mut seed, vlen);
            let stride = vlen / h.ncpus().max(1);
            for (i, b) in v.iter_mut().enumerate() {
                *b &= vmask.get(i % stride.max(1)).copied().unwrap_or(0);
            }
            h.backend().update(&k, &v, UpdateFlags::Any).unwrap();
        }
        let mut via_values = Vec::new();
        h.dump(|d| {
            via_values.push(d.into_value().to_json());
            Ok(())
        })
        .unwrap();
        let mut direct = Vec::new();
        h.dump_json(|t| {
            direct.push(String::from_utf8(t.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(direct, via_values, "{}", schema.name);

        // The JSON Lines fast path takes dump's own output, also with
        // 64-bit numbers, unions, IPv6 and MAC addresses (the config map).
        let c = h.codec();
        let (mut kb, mut vb) = (vec![0; c.key_len()], vec![0; c.value_len()]);
        let fast = direct
            .iter()
            .filter(|l| c.encode_json_entry(l.as_bytes(), &mut kb, &mut vb))
            .count();
        // (Per-CPU values take the general path.)
        let want = if schema.map_type.per_cpu() {
            0
        } else {
            direct.len()
        };
        assert_eq!(fast, want, "{}: fast path", schema.name);
        let text: String = direct.iter().map(|l| format!("{l}\n")).collect();
        let sorted = |e: ebpf_sdk::backend::BatchEntries| {
            let mut v: Vec<(Vec<u8>, Vec<u8>)> =
                e.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            v.sort();
            v
        };
        let before = sorted(h.backend().lookup_batch().unwrap());
        // JSON Lines on 1 and 2 threads, and the general path (Values).
        for threads in [1, 2, 0] {
            let again = MapHandle::with_backend(schema, Box::new(fake_for(schema, 64))).unwrap();
            let opts = ApplyOptions {
                parse_threads: threads,
                ..Default::default()
            };
            if threads == 0 {
                apply(&again, &text, &opts).unwrap();
            } else {
                again
                    .apply_reader(text.as_bytes(), "dump.jsonl", &opts, &mut |_| {})
                    .unwrap();
            }
            let after = sorted(again.backend().lookup_batch().unwrap());
            assert_eq!(after, before, "{} via {threads} thread(s)", schema.name);
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} maps checked");
}

/// Our load balancer fixture's maps (lb.h, issue 13's corpus).
fn lb(map: &str) -> MapSchema {
    let obj =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../btf/tests/fixtures/realworld/lb.bpf.o");
    ebpf_sdk::Object::from_elf(obj)
        .unwrap()
        .map(map)
        .unwrap()
        .clone()
}

/// `prune` on an array (and a per-CPU array): the indices the input leaves
/// out cannot be deleted, so they are reset to zero, reported as `Reset`
/// with their old values and counted; zero indices are left alone.
#[test]
fn prune_resets_array_indices_not_in_the_input() {
    // ctl_array: array of `struct ctl_value { union { __u64 value; __u32
    // ifindex; __u8 mac[6]; }; }`.
    let schema = lb("ctl_array");
    let h =
        MapHandle::with_backend(&schema, Box::new(fake_for(&schema, schema.max_entries))).unwrap();
    let all = "{\"key\": 0, \"value\": {\"value\": 1}}\n{\"key\": 1, \"value\": {\"value\": 2}}\n{\"key\": 2, \"value\": {\"value\": 3}}\n";
    apply(&h, all, &ApplyOptions::default()).unwrap();
    let only_1 = "{\"key\": 1, \"value\": {\"value\": 20}}\n";
    let prune = ApplyOptions {
        prune: true,
        ..Default::default()
    };
    let (r, diffs) = apply_diff(
        &h,
        only_1,
        &ApplyOptions {
            dry_run: true,
            ..prune.clone()
        },
    );
    assert_eq!((r.changed, r.removed, r.reset, r.zeroed), (1, 0, 2, 0));
    let reset: Vec<_> = diffs
        .iter()
        .filter(|(k, _)| *k == DiffKind::Reset)
        .map(|(_, d)| d.clone().into_value().to_json())
        .collect();
    assert_eq!(
        reset,
        [
            r#"{"key":0,"value":{"value":1}}"#,
            r#"{"key":2,"value":{"value":3}}"#
        ]
    );
    let r = apply(&h, only_1, &prune).unwrap();
    assert_eq!((r.written, r.deleted, r.reset, r.zeroed), (1, 0, 2, 2));
    let raw = |i: u32| {
        let v = h.backend().lookup(&i.to_ne_bytes()).unwrap().unwrap();
        u64::from_ne_bytes(v[..8].try_into().unwrap())
    };
    assert_eq!((raw(0), raw(1), raw(2)), (0, 20, 0));
    // Nothing left to reset: zero indices are not rewritten.
    let r = apply(&h, only_1, &prune).unwrap();
    assert_eq!((r.reset, r.zeroed, r.unchanged), (0, 0, 1));
    // MapHandle::diff lists what prune would reset.
    apply(&h, all, &ApplyOptions::default()).unwrap();
    let d = h
        .diff(parse_entries(only_1, "x").unwrap().into_iter().map(Ok))
        .unwrap();
    assert_eq!((d.reset.len(), d.removed.len()), (2, 0));

    // A per-CPU array: every CPU's slot of the index is reset.
    let schema = lb("stats");
    let fake = FakeMap::with_ncpus(
        ebpf_sdk::backend::MapInfo::new(schema.map_type, 4, schema.value_size, schema.max_entries),
        3,
    );
    let h = MapHandle::with_backend(&schema, Box::new(fake)).unwrap();
    apply(
        &h,
        "{\"key\": 0, \"value\": {\"v1\": 5}}\n{\"key\": 3, \"value\": [{\"v1\": 1}, {\"v1\": 2}, {\"v2\": 3}]}\n",
        &ApplyOptions::default(),
    )
    .unwrap();
    let r = apply(&h, "{\"key\": 0, \"value\": {\"v1\": 5}}\n", &prune).unwrap();
    assert_eq!((r.unchanged, r.reset, r.zeroed), (1, 1, 1));
    let v = h.backend().lookup(&3u32.to_ne_bytes()).unwrap().unwrap();
    assert!(v.iter().all(|b| *b == 0), "{v:02x?}");
    let v = h.backend().lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
    assert!(v.iter().any(|b| *b != 0));
}

/// A `_Bool` holding a byte other than 0/1 (C code can store one): dump
/// shows it as a hex string, and applying what dump printed writes the
/// same bytes (here: nothing, they are unchanged); typing a number other
/// than 0/1 is refused with the place named and nothing written.
#[test]
fn a_bool_byte_other_than_0_or_1_survives_dump_and_apply() {
    // vip_map's value: struct vip_meta { __u32 flags; __u32 vip_num;
    // _Bool hash_16bytes; _Bool drop; } (lb.h).
    let schema = lb("vip_map");
    let h = MapHandle::with_backend(&schema, Box::new(fake_for(&schema, 16))).unwrap();
    let key = h
        .codec()
        .encode_key(
            &ebpf_sdk::parse_inline("{vip: 10.0.0.1, port: 80, proto: 6}", "k").unwrap(),
            None,
            &Default::default(),
        )
        .unwrap();
    let mut value = vec![0u8; schema.value_size as usize];
    value[8] = 2; // hash_16bytes
    value[9] = 1; // drop
    h.backend().update(&key, &value, UpdateFlags::Any).unwrap();
    let mut dumped = Vec::new();
    h.dump_json(|t| {
        dumped.extend_from_slice(t);
        dumped.push(b'\n');
        Ok(())
    })
    .unwrap();
    let dumped = String::from_utf8(dumped).unwrap();
    assert!(
        dumped.contains(r#""hash_16bytes":"0x02","drop":true"#),
        "{dumped}"
    );
    let prune = ApplyOptions {
        prune: true,
        ..Default::default()
    };
    let r = apply(&h, &dumped, &prune).unwrap();
    assert_eq!((r.unchanged, r.written, r.deleted), (1, 0, 0));
    assert_eq!(h.backend().lookup(&key).unwrap().unwrap(), value);
    // The YAML dump too.
    let mut yaml = Vec::new();
    h.dump(|d| {
        yaml.push(d.into_value());
        Ok(())
    })
    .unwrap();
    let text = Value::List(yaml).to_yaml();
    let r = apply(&h, &text, &prune).unwrap();
    assert_eq!(r.unchanged, 1, "{text}");
    // Typed as a number: refused, nothing written.
    let typed = dumped.replace(r#""0x02""#, "2");
    let e = apply(&h, &typed, &prune).unwrap_err().to_string();
    assert_eq!(
        e,
        "input.jsonl:1: value.hash_16bytes: expected true, false, 0 or 1 for _Bool, got 2"
    );
    assert_eq!(h.backend().lookup(&key).unwrap().unwrap(), value);
}

/// Maps with nothing to write refuse writes with what they are for, before
/// reading any input.
#[test]
fn maps_with_nothing_to_write_say_what_they_are_for() {
    let schema = lb("events");
    let h = MapHandle::with_backend(&schema, Box::new(fake_for(&schema, 4))).unwrap();
    let e = h
        .update(
            &Value::String("0x00000000".into()),
            &Value::Int(3),
            UpdateFlags::Any,
        )
        .unwrap_err();
    assert!(matches!(e, SdkError::NothingToWrite { .. }), "{e}");
    assert_eq!(e.class(), ebpf_sdk::ErrorClass::Input);
    let e = h
        .apply_reader(&b""[..], "empty", &ApplyOptions::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "events (perf_event_array): nothing to write: {}",
            schema.map_type.nothing_to_write().unwrap()
        )
    );
}
