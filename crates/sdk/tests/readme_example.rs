//! The README's "As a library" program is `examples/library/src/main.rs`,
//! word for word; it builds as an outside crate would build it (depending on
//! `ebpf-sdk` by path, outside the workspace), and run against the firewall
//! in the kernel it writes the bytes the C program reads.

use std::path::{Path, PathBuf};
use std::process::Command;

use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::{bpftool, require_kernel, FirewallGuard};

ebpf_sdk_testkit::harness! {
    readme_shows_the_example_word_for_word: [],
    example_builds_as_an_outside_crate: [Need::Programs(&["cargo"])],
    example_denies_ping_in_the_kernel: [Need::Kernel, Need::Programs(&["cargo"])],
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first ```rust block after the "## As a library" heading.
fn readme_block() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme
        .split("\n## As a library")
        .nth(1)
        .expect("README has an `## As a library` section");
    let code = section
        .split("```rust\n")
        .nth(1)
        .expect("a ```rust block in it");
    code.split("\n```").next().unwrap().to_string() + "\n"
}

fn readme_shows_the_example_word_for_word() {
    let file = std::fs::read_to_string(repo().join("examples/library/src/main.rs")).unwrap();
    assert!(
        readme_block() == file,
        "README.md's `As a library` block and examples/library/src/main.rs differ; keep them identical"
    );
}

/// Builds the example with its own Cargo.lock and manifest, into a target
/// directory of its own; returns the binary.
fn build_example() -> PathBuf {
    let target = repo().join("target/outside-crate");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--locked", "--manifest-path"])
        .arg(repo().join("examples/library/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build of examples/library failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug/ebpf-sdk-example-library")
}

fn example_builds_as_an_outside_crate() {
    let bin = build_example();
    assert!(bin.is_file(), "{} was not built", bin.display());
}

fn example_denies_ping_in_the_kernel() {
    let _env = require_kernel("example_denies_ping_in_the_kernel").unwrap();
    let bin = build_example();
    let fw = FirewallGuard::load_bundled().unwrap();
    // Run from the repository root, as the README says.
    let out = Command::new(&bin)
        .arg(fw.dir())
        .arg("7")
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "example failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("rule_id: 1, protocol: 1, icmp_type: 8, action: 1"),
        "it reads the rule back: {stdout}"
    );
    // The key as the C program reads it: prefixLen 64, ifindex 7, 10.10.10.2.
    let mut key = Vec::new();
    key.extend(64u32.to_ne_bytes());
    key.extend(7u32.to_ne_bytes());
    key.extend([10, 10, 10, 2]);
    key.extend([0; 12]);
    let pin = fw.map_path("ingress_node_firewall_table_map").unwrap();
    let entry = bpftool::map_lookup(pin, &key)
        .unwrap()
        .expect("bpftool finds the entry");
    let value = entry.value.unwrap();
    assert_eq!(value.len(), 1200);
    // struct ruleType_st, packed: ruleId 1, protocol 1, ports 0, icmpType 8, icmpCode 0, action 1.
    assert_eq!(&value[..12], &[1, 0, 0, 0, 1, 0, 0, 0, 0, 8, 0, 1]);
    assert!(
        value[12..].iter().all(|b| *b == 0),
        "the other 99 rules are zero"
    );
}
