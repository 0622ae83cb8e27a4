//! Cross-checks extracted layouts against the C compiler: for every named
//! struct and union reachable from the firewall object's maps, a C program
//! generated from our schema prints `sizeof`, `offsetof` and member sizes as
//! gcc computes them from `firewall-ebpf/firewall.h`; bitfields are located by
//! setting them to all ones and reading back which bits changed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ebpf_sdk_schema::{TypeKind, TypeNode};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A member as C reaches it: anonymous members flattened into their parent.
struct Flat {
    path: String,
    bit_offset: u32,
    bit_size: Option<u32>,
    size: u32,
    signed: bool,
}

fn flatten(node: &TypeNode, base_bits: u32, out: &mut Vec<Flat>) {
    let (TypeKind::Struct { members } | TypeKind::Union { members }) = &node.kind else {
        return;
    };
    for m in members {
        if m.name.is_empty() {
            flatten(&m.ty, base_bits + m.bit_offset, out);
            continue;
        }
        let signed = matches!(
            m.ty.kind,
            TypeKind::Int { signed: true, .. } | TypeKind::Enum { signed: true, .. }
        );
        out.push(Flat {
            path: m.name.clone(),
            bit_offset: base_bits + m.bit_offset,
            bit_size: m.bit_size,
            size: m.ty.size,
            signed,
        });
    }
}

fn collect<'a>(node: &'a TypeNode, out: &mut BTreeMap<String, &'a TypeNode>) {
    match &node.kind {
        TypeKind::Struct { members } | TypeKind::Union { members } => {
            if !node.name.ends_with("<anon>") && !node.name.starts_with("datasec") {
                out.insert(node.name.clone(), node);
            }
            for m in members {
                collect(&m.ty, out);
            }
        }
        TypeKind::Array { element, .. } => collect(element, out),
        _ => {}
    }
}

#[test]
fn firewall_layouts_match_gcc() {
    let obj = repo().join("firewall-ebpf/firewall.bpf.o");
    let doc = ebpf_sdk_btf::extract_file(&obj).unwrap();
    let bytes = std::fs::read(&obj).unwrap();
    let event =
        ebpf_sdk_btf::extract_type(&bytes, "firewall.bpf.o", "struct event_hdr_st").unwrap();
    let mut types = BTreeMap::new();
    collect(&event, &mut types);
    for m in &doc.maps {
        for n in [&m.key, &m.value].into_iter().flatten() {
            collect(n, &mut types);
        }
    }
    for needed in [
        "struct lpm_ip_key_st",
        "struct rulesVal_st",
        "struct ruleType_st",
        "struct event_hdr_st",
    ] {
        assert!(
            types.contains_key(needed),
            "{needed} not reachable from any map; have {:?}",
            types.keys()
        );
    }

    // Expected lines, and the C that prints the same lines as gcc sees them.
    let mut expected = Vec::new();
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <string.h>\n#include \"firewall.h\"\n\
         static void bits(const char *t, const char *m, const unsigned char *p, size_t n) {\n\
           int first = -1, count = 0;\n\
           for (size_t i = 0; i < n * 8; i++) if (p[i / 8] >> (i % 8) & 1) { if (first < 0) first = (int)i; count++; }\n\
           printf(\"B %s %s %d %d\\n\", t, m, first, count);\n}\n\
         int main(void) {\n",
    );
    for (name, node) in &types {
        writeln!(c, "  printf(\"S {name} %zu\\n\", sizeof({name}));").unwrap();
        expected.push(format!("S {name} {}", node.size));
        let mut flat = Vec::new();
        flatten(node, 0, &mut flat);
        for f in flat {
            match f.bit_size {
                None => {
                    writeln!(
                        c,
                        "  printf(\"M {name} {m} %zu %zu\\n\", offsetof({name}, {m}), sizeof((({name} *)0)->{m}));",
                        m = f.path
                    )
                    .unwrap();
                    expected.push(format!(
                        "M {name} {} {} {}",
                        f.path,
                        f.bit_offset / 8,
                        f.size
                    ));
                }
                Some(bs) => {
                    let ones = if f.signed { "-1" } else { "~0ULL" };
                    writeln!(
                        c,
                        "  {{ {name} v; memset(&v, 0, sizeof v); v.{m} = {ones}; bits(\"{name}\", \"{m}\", (const unsigned char *)&v, sizeof v); }}",
                        m = f.path
                    )
                    .unwrap();
                    expected.push(format!("B {name} {} {} {bs}", f.path, f.bit_offset));
                }
            }
        }
    }
    c.push_str("  return 0;\n}\n");

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("layout.c");
    let bin = dir.path().join("layout");
    std::fs::write(&src, &c).unwrap();
    let out = Command::new("gcc")
        .args(["-std=gnu11", "-Wall", "-Wno-overflow", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-I")
        .arg(repo().join("firewall-ebpf"))
        .output()
        .expect("gcc is needed for the layout cross-check");
    assert!(
        out.status.success(),
        "gcc failed:\n{}\n{c}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&bin).output().unwrap();
    assert!(run.status.success());
    let actual: Vec<String> = String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(&expected) {
        assert_eq!(
            a, e,
            "gcc (left) disagrees with the extracted schema (right)"
        );
    }
    // Every member of the four firewall structs, plus the extra maps' types.
    assert!(expected.len() >= 20, "only {} checks", expected.len());
    eprintln!("{} layout facts agree with gcc", expected.len());
}
