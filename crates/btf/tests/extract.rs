//! Extraction of real objects: the bundled firewall, the fixtures and, where
//! xdp-tools is installed, Debian's objects (counted as ignored without it).
//! Golden files are rewritten with `EBPF_SDK_BLESS=1 cargo test -p ebpf-sdk-btf`.

use std::path::{Path, PathBuf};

use ebpf_sdk_btf::{extract_elf, ExtractError};
use ebpf_sdk_schema::{Document, Format, Pinning, TypeKind, TypeNode};
use ebpf_sdk_testkit::harness::Need;

ebpf_sdk_testkit::harness! {
    firewall_maps_are_described_exactly: [],
    firewall_config_covers_every_codec_kind: [],
    zoo_fixture_covers_other_map_kinds: [],
    legacy_object_without_btf_lists_opaque_maps: [],
    errors_name_the_file_and_the_problem: [],
    iproute2_definitions_pinning_and_map_in_map: [],
    perf_records_and_custom_data_sections: [],
    third_party_objects_extract: [Need::Path {
        path: XDP_TOOLS_OBJECTS,
        hint: "apt-get install xdp-tools",
    }],
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Extracts with a stable, repo-relative source path.
fn extract(rel: &str) -> Document {
    let bytes = std::fs::read(repo().join(rel)).unwrap();
    extract_elf(&bytes, rel).unwrap()
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("schemas/ebpf-sdk-schema.v2.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

fn assert_valid(doc: &Document) {
    let v = serde_json::to_value(doc).unwrap();
    let errors: Vec<String> = validator()
        .iter_errors(&v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} does not match the JSON Schema:\n{}",
        doc.source.path,
        errors.join("\n")
    );
}

fn golden(name: &str, doc: &Document) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let actual = doc.to_json_pretty();
    if std::env::var_os("EBPF_SDK_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with EBPF_SDK_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the extraction; if the change is intended, rerun with EBPF_SDK_BLESS=1",
        path.display()
    );
    // And the golden file reads back as the same document.
    assert_eq!(&Document::from_json(&expected).unwrap(), doc);
}

fn member<'a>(node: &'a TypeNode, name: &str) -> &'a ebpf_sdk_schema::Member {
    match &node.kind {
        TypeKind::Struct { members } | TypeKind::Union { members } => members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{} has no member {name}", node.name)),
        _ => panic!("{} is not a struct", node.name),
    }
}

fn firewall_maps_are_described_exactly() {
    let doc = extract("firewall-ebpf/firewall.bpf.o");
    assert_valid(&doc);
    golden("firewall.json", &doc);

    let table = doc.map("ingress_node_firewall_table_map").unwrap();
    assert_eq!(table.map_type.name(), "lpm_trie");
    assert_eq!(
        (table.key_size, table.value_size, table.max_entries),
        (24, 1200, 1024)
    );
    assert_eq!(table.flags.names(), ["no_prealloc"]);
    assert_eq!(table.pinning, Pinning::ByName);
    let key = table.key.as_ref().unwrap();
    assert_eq!(key.name, "struct lpm_ip_key_st");
    let offsets: Vec<(String, u32, u32)> = match &key.kind {
        TypeKind::Struct { members } => members
            .iter()
            .map(|m| (m.name.clone(), m.offset, m.ty.size))
            .collect(),
        _ => unreachable!(),
    };
    assert_eq!(
        offsets,
        [
            ("prefixLen".into(), 0, 4),
            ("ingress_ifindex".into(), 4, 4),
            ("ip_data".into(), 8, 16)
        ]
    );
    let ip = member(key, "ip_data");
    assert!(matches!(
        ip.ty.kind,
        TypeKind::Array {
            len: 16,
            format: Some(Format::Ip),
            ..
        }
    ));

    let value = table.value.as_ref().unwrap();
    let rules = member(value, "rules");
    let TypeKind::Array {
        len: 100, element, ..
    } = &rules.ty.kind
    else {
        panic!("rules is {:?}", rules.ty.kind)
    };
    assert_eq!(element.name, "struct ruleType_st");
    assert_eq!(element.size, 12);
    let packed: Vec<(u32, u32)> = [
        "ruleId",
        "protocol",
        "dstPortStart",
        "dstPortEnd",
        "icmpType",
        "icmpCode",
        "action",
    ]
    .iter()
    .map(|n| {
        let m = member(element, n);
        (m.offset, m.ty.size)
    })
    .collect();
    assert_eq!(
        packed,
        [(0, 4), (4, 1), (5, 2), (7, 2), (9, 1), (10, 1), (11, 1)]
    );
    assert_eq!(member(element, "dstPortEnd").ty.typedefs, ["__u16"]);

    let stats = doc.map("ingress_node_firewall_statistics_map").unwrap();
    assert_eq!(stats.map_type.name(), "percpu_array");
    assert!(stats.map_type.per_cpu());
    assert_eq!((stats.key_size, stats.value_size), (4, 32));

    let events = doc.map("ingress_node_firewall_events_map").unwrap();
    assert_eq!(events.map_type.name(), "perf_event_array");

    // Global data is listed as the kernel sees it.
    let rodata = doc
        .maps
        .iter()
        .find(|m| m.section == ".rodata")
        .expect(".rodata map");
    assert_eq!(rodata.name, "firewall.rodata");
    assert!(rodata
        .flags
        .contains(ebpf_sdk_schema::MapFlags::RDONLY_PROG));
}

fn firewall_config_covers_every_codec_kind() {
    let doc = extract("firewall-ebpf/firewall.bpf.o");
    let mut kinds = std::collections::BTreeSet::new();
    let mut seen = Vec::new();
    fn walk(n: &TypeNode, kinds: &mut std::collections::BTreeSet<String>, seen: &mut Vec<String>) {
        kinds.insert(n.kind.name().to_string());
        match &n.kind {
            TypeKind::Struct { members } | TypeKind::Union { members } => {
                for m in members {
                    if m.bit_size.is_some() {
                        seen.push("bitfield".into());
                    }
                    walk(&m.ty, kinds, seen);
                }
            }
            TypeKind::Array {
                element, format, ..
            } => {
                if matches!(element.kind, TypeKind::Array { .. }) {
                    seen.push("2d-array".into());
                }
                if *format == Some(Format::String) {
                    seen.push("char-string".into());
                }
                walk(element, kinds, seen)
            }
            TypeKind::Int { signed: true, .. } => seen.push("signed".into()),
            TypeKind::Int {
                byte_order: Some(_),
                ..
            } => seen.push("big-endian".into()),
            TypeKind::Enum { .. } if n.size == 8 => seen.push("enum64".into()),
            _ => {}
        }
    }
    for m in &doc.maps {
        for n in [&m.key, &m.value].into_iter().flatten() {
            walk(n, &mut kinds, &mut seen);
        }
    }
    for k in ["int", "bool", "enum", "struct", "union", "array"] {
        assert!(
            kinds.contains(k),
            "no {k} in the firewall's maps: {kinds:?}"
        );
    }
    for s in [
        "bitfield",
        "2d-array",
        "char-string",
        "signed",
        "big-endian",
        "enum64",
    ] {
        assert!(seen.iter().any(|x| x == s), "no {s} in the firewall's maps");
    }
}

fn zoo_fixture_covers_other_map_kinds() {
    let doc = extract("crates/btf/tests/fixtures/zoo.bpf.o");
    assert_valid(&doc);
    golden("zoo.json", &doc);
    let outer = doc.map("outer").unwrap();
    assert_eq!(outer.map_type.name(), "array_of_maps");
    let inner = outer.inner_map.as_ref().expect("inner map template");
    assert_eq!(
        (
            inner.map_type.name().as_ref(),
            inner.key_size,
            inner.value_size,
            inner.max_entries
        ),
        ("array", 4, 8, 4)
    );
    let q = doc.map("q").unwrap();
    assert!(q.key.is_none() && q.key_size == 0 && q.value_size == 4);
    let rb = doc.map("rb").unwrap();
    assert_eq!(
        (
            rb.map_type.name().as_ref(),
            rb.key_size,
            rb.value_size,
            rb.max_entries
        ),
        ("ringbuf", 0, 0, 4096)
    );
    let flows = doc.map("flows").unwrap();
    assert!(flows.map_type.per_cpu());
    let key = flows.key.as_ref().unwrap();
    assert_eq!(key.size, 16, "aligned(4) struct with a 3-byte tail pad");
    let saddr = member(key, "saddr");
    assert_eq!(saddr.ty.typedefs[0], "__be32");
    assert!(matches!(
        saddr.ty.kind,
        TypeKind::Int {
            byte_order: Some(ebpf_sdk_schema::ByteOrder::Big),
            format: Some(Format::Ip),
            ..
        }
    ));
    let perf = doc.map("perf").unwrap();
    assert_eq!((perf.key_size, perf.value_size), (4, 4));
    let bss = doc.maps.iter().find(|m| m.section == ".bss").unwrap();
    let v = bss.value.as_ref().unwrap();
    assert_eq!(
        member(v, "buf_c").offset,
        4,
        "offsets come from the symbol table"
    );
}

fn legacy_object_without_btf_lists_opaque_maps() {
    let doc = extract("crates/btf/tests/fixtures/legacy.bpf.o");
    assert_valid(&doc);
    let h = doc.map("legacy_hash").unwrap();
    assert_eq!(
        (
            h.map_type.name().as_ref(),
            h.key_size,
            h.value_size,
            h.max_entries
        ),
        ("hash", 8, 16, 32)
    );
    assert_eq!(h.flags.names(), ["no_prealloc"]);
    assert!(matches!(h.key.as_ref().unwrap().kind, TypeKind::Opaque));
}

/// Our iproute2-shaped fixture: `struct bpf_elf_map` definitions with
/// pinning, a map-in-map tied by id/inner_id, and BPF_ANNOTATE_KV_PAIR.
fn iproute2_definitions_pinning_and_map_in_map() {
    let rel = "crates/btf/tests/fixtures/realworld/iproute2.bpf.o";
    let doc = extract(rel);
    assert_valid(&doc);
    let pin = |m: &str| doc.map(m).unwrap().pinning.clone();
    assert_eq!(pin("tc_counters"), Pinning::GlobalNs);
    assert_eq!(pin("tc_inner"), Pinning::GlobalNs);
    assert_eq!(pin("tc_scratch"), Pinning::None);
    // PIN_OBJECT_NS: the directory is the SHA-1 of the object file (as
    // iproute2 computes it; sha1sum is an independent check).
    let out = std::process::Command::new("sha1sum")
        .arg(repo().join(rel))
        .output()
        .unwrap();
    let sum = String::from_utf8(out.stdout).unwrap();
    let sum = sum.split_whitespace().next().unwrap();
    assert_eq!(pin("tc_config"), Pinning::ObjectNs(sum.to_string()));
    // The outer map's inner_id 42 is tc_inner's id.
    let outer = doc.map("tc_outer").unwrap();
    let inner = outer.inner_map.as_ref().unwrap();
    assert_eq!((inner.name.as_str(), inner.max_entries), ("tc_inner", 16));
    assert_eq!(outer.value_size, 4);
    // BPF_ANNOTATE_KV_PAIR gives tc_counters its key and value types.
    let c = doc.map("tc_counters").unwrap();
    assert_eq!(c.key.as_ref().unwrap().name, "struct tc_key");
    let v = c.value.as_ref().unwrap();
    assert_eq!(v.name, "struct tc_counters");
    assert_eq!(member(v, "enabled").offset, 16);
    assert!(c.btf_key_type_id.is_some() && c.btf_value_type_id.is_some());
    // Maps without an annotation stay opaque.
    let cfg = doc.map("tc_config").unwrap();
    assert!(matches!(cfg.value.as_ref().unwrap().kind, TypeKind::Opaque));
}

/// A perf event array declared with `__type(value, struct sample)` has the
/// kernel's 4-byte value and keeps the record type; custom data sections
/// are named as libbpf names them.
fn perf_records_and_custom_data_sections() {
    let doc = extract("crates/btf/tests/fixtures/realworld/addrs.bpf.o");
    assert_valid(&doc);
    let perf = doc.map("sample_events").unwrap();
    assert_eq!((perf.key_size, perf.value_size), (4, 4));
    assert_eq!(perf.value.as_ref().unwrap().name, "unsigned int");
    assert_eq!(perf.btf_value_type_id, None);
    let record = perf.record.as_ref().expect("the declared record type");
    assert_eq!((record.name.as_str(), record.size), ("struct sample", 48));
    // Written and read back, the record survives.
    let again = Document::from_json(&doc.to_json_pretty()).unwrap();
    assert_eq!(
        again.map("sample_events").unwrap().record.as_ref(),
        Some(record)
    );

    let doc = extract("crates/btf/tests/fixtures/realworld/lb.bpf.o");
    let names: Vec<&str> = doc
        .maps
        .iter()
        .filter(|m| m.section.starts_with('.') && m.section != ".maps")
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["lb.rodata", "lb.data", "lb.bss", ".data.custom"]);
    // The events map declares only sizes: no record.
    assert!(doc.map("events").unwrap().record.is_none());
}

fn errors_name_the_file_and_the_problem() {
    let e = extract_elf(b"\x7fELF nonsense", "broken.o").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("broken.o: not a valid ELF object"),
        "{e}"
    );

    let e = ebpf_sdk_btf::extract_file("/nonexistent/fw.o").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/nonexistent/fw.o: cannot read: No such file or directory (os error 2)"
    );

    // The firewall with its .BTF section renamed: BTF maps but no BTF.
    let mut bytes = std::fs::read(repo().join("firewall-ebpf/firewall.bpf.o")).unwrap();
    // `.BTF\0` may be the tail of `.rel.BTF\0` in the string table: rename every one.
    let hits: Vec<usize> = bytes
        .windows(5)
        .enumerate()
        .filter(|(_, w)| w == b".BTF\0")
        .map(|(i, _)| i)
        .collect();
    assert!(!hits.is_empty());
    for pos in hits {
        bytes[pos + 1] = b'X';
    }
    let e = extract_elf(&bytes, "nobtf.o").unwrap_err();
    assert!(
        matches!(
            e,
            ExtractError::NoBtf {
                has_maps_section: true,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "nobtf.o: no .BTF section but it declares BTF maps in .maps; rebuild with `clang -g -target bpf`"
    );
}

/// Objects built by others: Debian's xdp-tools/libxdp ship theirs in
/// /usr/lib/<triplet>/bpf (`.ci/setup` installs them).
const XDP_TOOLS_OBJECTS: &str = "/usr/lib/x86_64-linux-gnu/bpf";

/// Every object of xdp-tools extracts and matches the JSON Schema.
fn third_party_objects_extract() {
    let dir = Path::new(XDP_TOOLS_OBJECTS);
    let rd = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "o") {
            let doc = ebpf_sdk_btf::extract_file(&p).unwrap_or_else(|e| panic!("{e}"));
            assert!(!doc.maps.is_empty(), "{}", p.display());
            assert_valid(&doc);
            n += 1;
        }
    }
    assert!(n > 0, "no objects in {}", dir.display());
    eprintln!("{n} objects from {} extracted", dir.display());
}
