//! Which objects and maps of the corpus show each item of issue 13, and
//! what ebpf-sdk does with them now.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ebpf_sdk::codec::{parse_yaml, template, Codec};
use ebpf_sdk::schema::{MapOrigin, MapSchema, TypeKind, TypeNode};
use ebpf_sdk::{parse_entries, EntryCodec};

use crate::{all_maps, the_corpus, NCPUS};

/// Address-looking member names (as the extractor's display hints read them).
const ADDR_WORDS: &[&str] = &[
    "addr", "saddr", "daddr", "ip", "ipv6", "ip6", "v6", "vip", "vipv6", "src", "dst", "srcv6",
    "dstv6", "address", "gw", "gateway", "nexthop", "in6", "u6",
];

/// One field shaped like an address.
struct Shape {
    kind: &'static str,
    place: String,
    node: TypeNode,
}

fn looks_like_address(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let found = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .flat_map(|w| [w, w.trim_end_matches(|c: char| c.is_ascii_digit())])
        .any(|w| ADDR_WORDS.contains(&w) || w.ends_with("addr") || w.ends_with("v6"));
    found
}

/// Classifies `node`, reached as `name`, by the address shapes item 1 lists.
fn address_shape(name: &str, node: &TypeNode) -> Option<&'static str> {
    let int_of = |n: &TypeNode, size| matches!(n.kind, TypeKind::Int { .. }) && n.size == size;
    match &node.kind {
        _ if node.name == "struct in6_addr" => Some("struct in6_addr"),
        _ if node.name == "struct in_addr" => Some("struct in_addr"),
        TypeKind::Array {
            len: 4, element, ..
        } if int_of(element, 4) && looks_like_address(name) => Some("32-bit words [4]"),
        TypeKind::Array {
            len: 8, element, ..
        } if int_of(element, 2) && looks_like_address(name) => Some("16-bit halves [8]"),
        TypeKind::Array {
            len: 16, element, ..
        } if int_of(element, 1) && looks_like_address(name) => Some("bytes [16]"),
        TypeKind::Int { .. } if node.size == 16 && looks_like_address(name) => Some("__int128"),
        TypeKind::Union { members } if node.size == 16 || node.size == 4 => {
            let views = members
                .iter()
                .filter(|m| address_shape(&m.name, &m.ty).is_some())
                .count();
            let scalar = members.iter().any(|m| int_of(&m.ty, 4));
            (views > 0 && scalar && members.len() <= 4).then_some("union of address views")
        }
        _ => None,
    }
}

fn collect_shapes(node: &TypeNode, name: &str, path: &str, out: &mut Vec<Shape>) {
    if let Some(kind) = address_shape(name, node) {
        out.push(Shape {
            kind,
            place: path.to_string(),
            node: node.clone(),
        });
    }
    match &node.kind {
        TypeKind::Struct { members } | TypeKind::Union { members } => {
            if node.name == "struct in6_addr" {
                return;
            }
            for m in members {
                let n = if m.name.is_empty() { "<anon>" } else { &m.name };
                collect_shapes(&m.ty, &m.name, &format!("{path}.{n}"), out);
            }
        }
        TypeKind::Array { element, .. } => collect_shapes(element, name, &format!("{path}[]"), out),
        _ => {}
    }
}

/// A one-field map whose key is `node`, to ask the codec about that shape alone.
fn with_key(m: &MapSchema, node: &TypeNode) -> MapSchema {
    let mut s = m.clone();
    s.map_type = ebpf_sdk::MapType::Hash;
    s.key_size = node.size;
    s.key = Some(node.clone());
    s.value_size = 0;
    s.value = None;
    s.inner_map = None;
    s
}

fn try_text(m: &MapSchema, node: &TypeNode, text: &str) -> String {
    let schema = with_key(m, node);
    let codec = match Codec::new(&schema) {
        Ok(c) => c,
        Err(e) => return format!("codec: {e}"),
    };
    let v = parse_yaml(&format!("'{text}'")).expect("a quoted string parses");
    match codec.encode_key(&v) {
        Ok(b) => format!("accepted: {}", hex(&b)),
        Err(e) => format!("refused: {e}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn bools(node: &TypeNode, path: &str, out: &mut Vec<String>) {
    match &node.kind {
        TypeKind::Bool => out.push(path.to_string()),
        TypeKind::Struct { members } | TypeKind::Union { members } => {
            for m in members {
                bools(&m.ty, &format!("{path}.{}", m.name), out);
            }
        }
        TypeKind::Array { element, .. } => bools(element, &format!("{path}[]"), out),
        _ => {}
    }
}

/// Prints the report.
pub fn survey() {
    let c = the_corpus();
    let mut r = String::new();
    writeln!(
        r,
        "corpus: {} objects; missing: {:?}",
        c.objects.len(),
        c.missing
    )
    .unwrap();
    item1(&mut r);
    item2_3(&mut r);
    item5(&mut r);
    item6_7_8(&mut r);
    println!("{r}");
}

fn item1(r: &mut String) {
    writeln!(
        r,
        "\n== item 1: address-shaped fields (IPv6 text, or IPv4 text for 4 bytes, tried on each shape alone)"
    )
    .unwrap();
    let mut by_kind: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (o, m) in all_maps() {
        let mut shapes = Vec::new();
        for (side, node) in [("key", &m.key), ("value", &m.value)] {
            if let Some(n) = node {
                collect_shapes(n, side, side, &mut shapes);
            }
        }
        for s in shapes {
            let text = if s.node.size == 4 {
                "192.0.2.1"
            } else {
                "2001:db8::1"
            };
            let outcome = try_text(m, &s.node, text);
            by_kind.entry(s.kind).or_default().push(format!(
                "{}: {}: {} ({}, {} B): `{text}` {outcome}",
                o.name,
                m.name,
                s.place,
                s.node.display_name(),
                s.node.size
            ));
        }
    }
    for (kind, list) in by_kind {
        writeln!(r, "-- {kind}: {} fields", list.len()).unwrap();
        for l in list {
            writeln!(r, "   {l}").unwrap();
        }
    }
}

fn item2_3(r: &mut String) {
    writeln!(
        r,
        "\n== item 2: global data maps (describe/dump/update --pinned read their DATASEC from kernel BTF)"
    )
    .unwrap();
    let mut n = 0;
    let mut per: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (o, m) in all_maps() {
        if m.origin == MapOrigin::GlobalData {
            n += 1;
            per.entry(o.name.clone())
                .or_default()
                .push(format!("{} ({})", m.name, m.section));
        }
    }
    writeln!(r, "{n} global data maps in {} objects", per.len()).unwrap();
    for (o, l) in &per {
        writeln!(r, "   {o}: {}", l.join(", ")).unwrap();
    }
    writeln!(
        r,
        "\n== item 3: array and percpu_array maps (apply --prune resets indices not in the file to zero)"
    )
    .unwrap();
    let mut per: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut n = 0;
    for (o, m) in all_maps() {
        if m.map_type.fixed_entries() && m.origin != MapOrigin::GlobalData {
            n += 1;
            per.entry(o.name.clone())
                .or_default()
                .push(format!("{} ({})", m.name, m.map_type));
        }
    }
    writeln!(
        r,
        "{n} array maps (besides global data) in {} objects",
        per.len()
    )
    .unwrap();
    for (o, l) in &per {
        writeln!(r, "   {o}: {}", l.join(", ")).unwrap();
    }
}

fn item5(r: &mut String) {
    writeln!(
        r,
        "\n== item 5: _Bool fields (255 tried on each; a stored 2 decoded and written back)"
    )
    .unwrap();
    for (o, m) in all_maps() {
        let mut paths = Vec::new();
        for (side, node) in [("key", &m.key), ("value", &m.value)] {
            if let Some(n) = node {
                bools(n, side, &mut paths);
            }
        }
        if paths.is_empty() {
            continue;
        }
        let bool_node = TypeNode {
            name: "_Bool".into(),
            typedefs: vec![],
            size: 1,
            kind: TypeKind::Bool,
        };
        let codec = Codec::new(&with_key(m, &bool_node)).expect("a bool key compiles");
        let typed = match codec.encode_key(&parse_yaml("255").unwrap()) {
            Ok(b) => format!("255 accepted as {}", hex(&b)),
            Err(e) => format!("255 refused: {e}"),
        };
        let stored = codec.decode_key(&[2]).expect("any byte decodes");
        let back = codec.encode_key(&stored).map(|b| hex(&b));
        let outcome = format!(
            "{typed}; byte 02 decodes as {} -> {back:?}",
            stored.to_json()
        );
        writeln!(
            r,
            "   {}: {}: {} -- {outcome}",
            o.name,
            m.name,
            paths.join(", ")
        )
        .unwrap();
    }
}

fn item6_7_8(r: &mut String) {
    writeln!(
        r,
        "\n== item 6: legacy `maps` section definitions (pinning and inner map as extracted)"
    )
    .unwrap();
    for (o, m) in all_maps() {
        if m.origin == MapOrigin::Legacy {
            writeln!(
                r,
                "   {}: {} {} key {} value {} max {} pinning {}{}{}",
                o.name,
                m.name,
                m.map_type,
                m.key_size,
                m.value_size,
                m.max_entries,
                m.pinning.name(),
                m.inner_map
                    .as_ref()
                    .map_or(String::new(), |i| format!(", inner map {}", i.name)),
                match m.btf_value_type_id {
                    Some(_) => ", typed by BPF_ANNOTATE_KV_PAIR",
                    None => "",
                }
            )
            .unwrap();
        }
    }
    writeln!(
        r,
        "\n== item 7: perf event arrays: sizes (the kernel's are 4/4) and declared record types"
    )
    .unwrap();
    for (o, m) in all_maps() {
        let odd = m.value_size != 4 || m.key_size != 4;
        if m.map_type == ebpf_sdk::MapType::PerfEventArray && (odd || m.record.is_some()) {
            writeln!(
                r,
                "   {}: {}: key {} value {}, record {}",
                o.name,
                m.name,
                m.key_size,
                m.value_size,
                m.record
                    .as_ref()
                    .map_or("-".into(), |v| v.display_name().to_string())
            )
            .unwrap();
        }
    }
    writeln!(
        r,
        "\n== item 8: maps with nothing to write: what template and encode say"
    )
    .unwrap();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (o, m) in all_maps() {
        if m.map_type.nothing_to_write().is_none() {
            continue;
        }
        *counts.entry(m.map_type.to_string()).or_default() += 1;
        let text = template(m);
        let entries = parse_entries(&text, "template").map_or(0, |e| e.len());
        let said = text
            .lines()
            .nth(1)
            .unwrap_or_default()
            .trim_start_matches("# ")
            .to_string();
        let encode = EntryCodec::new(m, NCPUS)
            .and_then(|c| {
                c.encode_value(
                    &ebpf_sdk::Value::Null,
                    None,
                    &ebpf_sdk::Location::named("v"),
                )
            })
            .map_or_else(
                |e| {
                    format!(
                        "refused ({})",
                        e.to_string().split(": ").nth(1).unwrap_or("").trim()
                    )
                },
                |_| "encodes".into(),
            );
        writeln!(
            r,
            "   {}: {} ({}): template {entries} entries, says `{said} ...`; encode {encode}",
            o.name, m.name, m.map_type
        )
        .unwrap();
    }
    writeln!(r, "   counts: {counts:?}").unwrap();
}
