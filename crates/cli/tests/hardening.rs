//! Issue #8, "Hardening": bad input, wrong targets and a hostile environment,
//! through the real `ebpf-sdk` binary.
//!
//! Every refusal is checked for its exact message and exit code (2: the
//! input, 3: the kernel or the target) and, where a map is involved, bpftool
//! reads back exactly the entries that were there before. Offline tests
//! (`encode`, `enrich`) run anywhere; without privileges the harness counts
//! the kernel tests as ignored, and they fail instead with
//! `EBPF_SDK_REQUIRE_KERNEL=1`.
//!
//! A test listed with `ignore "BUG: ..."` states the behaviour the product
//! should have; run those with `cargo test -p ebpf-sdk-cli --test hardening -- --ignored`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::{bpftool, require_kernel, require_programs, FirewallGuard};

/// Bound on a refusal that must come at once: against a hang or an
/// exponential blowup (a billion-laughs document would take minutes and
/// gigabytes), not a speed target, so generous for a loaded CI machine.
const HANG: Duration = Duration::from_secs(30);

ebpf_sdk_testkit::harness! {
    // Offline
    bad_input_to_encode_exits_2_naming_the_place: [],
    bad_inline_values_exit_2_naming_the_place: [],
    empty_and_comment_only_files_are_no_entries: [],
    deep_nesting_is_a_clear_error: [],
    deep_yaml_flow_nesting_fails_fast: [],
    billion_laughs_fails_fast: [],
    duplicate_key_in_a_block_mapping_is_an_error: [],
    non_utf8_file_names_the_line: [],
    enrich_without_a_terminal_asks_for_set: [],
    // Kernel tests
    update_and_apply_refuse_bad_input_and_write_nothing: [Need::Kernel],
    apply_refuses_bad_input_and_writes_nothing: [Need::Kernel],
    apply_of_an_empty_file_is_refused: [Need::Kernel],
    update_of_an_empty_file_is_refused: [Need::Kernel],
    missing_fields_are_zero: [Need::Kernel],
    wrong_targets_are_refused_with_exit_3: [Need::Kernel],
    not_root_is_refused_naming_the_capability: [Need::Kernel, Need::Programs(&["setpriv"])],
    bpffs_not_mounted_says_so: [Need::Kernel, Need::Programs(&["unshare", "umount"])],
    editor_missing_or_crashing_writes_nothing: [Need::Kernel],
    editor_template_is_private_and_removed: [Need::Kernel],
    editor_failing_after_an_invalid_save_keeps_the_text: [Need::Kernel],
    editor_reopen_message_says_it_once: [Need::Kernel],
}

const ELF: &str = "firewall-ebpf/firewall.bpf.o";
const TABLE: &str = "ingress_node_firewall_table_map";
const CONFIG: &str = "ingress_node_firewall_config_map";
const DEBUG: &str = "ingress_node_firewall_debug_map";
const PROG: &str = "xdp_ingress_node_firewall_process";

/// What every integer field says it accepts.
const INT: &str = "expected an integer (10, -3, 0x1f, 0o17, 0b101, or as a string)";
const RULE_FIELDS: &str = "ruleId, protocol, dstPortStart, dstPortEnd, icmpType, icmpCode, action";

/// A key the seeded table holds, and one it does not.
const K1: &str = "{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.0.0.1}";
const K3: &str = "{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.0.0.3}";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary with a clean environment: no colors, no editor.
fn bin() -> Command {
    let mut c = Command::cargo_bin("ebpf-sdk").unwrap();
    c.current_dir(repo())
        .env("NO_COLOR", "1")
        .env_remove("VISUAL")
        .env_remove("EDITOR");
    c
}

fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal ({}): {}", o.status, stderr(o)))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// Asserts exit code, the whole of stderr and an empty stdout.
#[track_caller]
fn assert_refused(out: &Output, want_code: i32, want_err: &str, what: &str) {
    assert_eq!(
        (code(out), stderr(out).as_str()),
        (want_code, want_err),
        "{what}"
    );
    assert!(
        out.stdout.is_empty(),
        "{what}: nothing on stdout on error: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// One bad input file and the message every command reading it must give.
struct Bad {
    what: &'static str,
    map: &'static str,
    file: PathBuf,
    err: String,
}

/// Writes every bad input into `dir`. Where a file has several entries, the
/// first ones are valid and change or add keys, so a partial write would
/// show in the map.
fn bad_inputs(dir: &Path) -> Vec<Bad> {
    let mut v = Vec::new();
    let mut add = |what: &'static str, map: &'static str, name: &str, text: &str, err: &str| {
        let file = write(dir, name, text);
        let err = format!("error: {}{err}\n", file.display());
        v.push(Bad {
            what,
            map,
            file,
            err,
        });
    };

    // Wrong types.
    add(
        "string into an int",
        TABLE,
        "string-int.yaml",
        &format!(
            "key: {K1}\nvalue:\n  rules:\n  - {{ruleId: 1}}\n  - {{ruleId: 2}}\n  - {{ruleId: 3}}\n  - {{ruleId: 4, dstPortEnd: \"eighty\"}}\n"
        ),
        &format!(": value.rules[3].dstPortEnd: {INT} for __u16, got \"eighty\""),
    );
    add(
        "list into a struct",
        TABLE,
        "list-struct.yaml",
        &format!(
            "- key: {K1}\n  value: {{rules: [{{ruleId: 77, action: 1}}]}}\n- key: {K3}\n  value: {{rules: [[1, 2]]}}\n"
        ),
        ":3: value.rules[0]: expected a mapping of field names to values for struct ruleType_st, got a list of 2 elements",
    );
    add(
        "list into the key struct",
        TABLE,
        "list-key.yaml",
        "key: [64, 6]\nvalue: {}\n",
        ": key: expected a mapping of field names to values for struct lpm_ip_key_st, got a list of 2 elements",
    );
    add(
        "mapping into an int",
        TABLE,
        "map-int.yaml",
        &format!("key: {K1}\nvalue: {{rules: [{{ruleId: {{a: 1}}}}]}}\n"),
        &format!(": value.rules[0].ruleId: {INT} for __u32, got a mapping {{a}}"),
    );
    add(
        "mapping into an array of structs",
        TABLE,
        "map-array.yaml",
        &format!("key: {K1}\nvalue: {{rules: {{ruleId: 1}}}}\n"),
        ": value.rules: expected a list of up to 100 elements for struct ruleType_st[100], got a mapping {ruleId}",
    );
    add(
        "an entry that is not a mapping",
        TABLE,
        "number.yaml",
        "42\n",
        ": expected an entry `{key: ..., value: ...}` or a list of them, found a number",
    );

    // Out of range.
    add(
        "u8 256",
        TABLE,
        "u8-256.yaml",
        &format!("key: {K1}\nvalue: {{rules: [{{ruleId: 1, protocol: 256}}]}}\n"),
        ": value.rules[0].protocol: 256 does not fit in __u8 (0..=255)",
    );
    add(
        "s8 -129",
        CONFIG,
        "s8-129.yaml",
        "key: 0\nvalue: {mode: FW_MODE_AUDIT, s8_val: -129}\n",
        ": value.s8_val: -129 does not fit in __s8 (-128..=127)",
    );
    add(
        "s8 128",
        CONFIG,
        "s8-128.yaml",
        "key: 0\nvalue: {s8_val: 128}\n",
        ": value.s8_val: 128 does not fit in __s8 (-128..=127)",
    );
    add(
        "u64 2^64",
        CONFIG,
        "u64-2-64.yaml",
        "key: 0\nvalue: {max_event_bytes: 18446744073709551616}\n",
        ": value.max_event_bytes: 18446744073709551616 does not fit in __u64 (0..=18446744073709551615)",
    );
    add(
        "negative into a u64",
        CONFIG,
        "u64-neg.yaml",
        "key: 0\nvalue: {max_event_bytes: -1}\n",
        ": value.max_event_bytes: -1 does not fit in __u64 (0..=18446744073709551615)",
    );
    add(
        "negative into a u32 key field",
        TABLE,
        "u32-neg.yaml",
        "key: {prefixLen: -1}\nvalue: {}\n",
        ": key.prefixLen: -1 does not fit in __u32 (0..=4294967295)",
    );
    add(
        "s64 2^63",
        CONFIG,
        "s64-2-63.yaml",
        "key: 0\nvalue: {s64_val: 9223372036854775808}\n",
        ": value.s64_val: 9223372036854775808 does not fit in __s64 (-9223372036854775808..=9223372036854775807)",
    );
    add(
        "hex string beyond a u32",
        TABLE,
        "u32-hex.yaml",
        &format!("key: {K1}\nvalue: {{rules: [{{ruleId: \"0x1ffffffff\"}}]}}\n"),
        ": value.rules[0].ruleId: \"0x1ffffffff\" (= 8589934591) does not fit in __u32 (0..=4294967295)",
    );
    add(
        "integer beyond 128 bits (YAML reads it as a float)",
        TABLE,
        "u128-over.yaml",
        &format!(
            "key: {K1}\nvalue: {{rules: [{{ruleId: 100000000000000000000000000000000000000000}}]}}\n"
        ),
        &format!(
            ": value.rules[0].ruleId: {INT} for __u32, got a float (100000000000000000000000000000000000000000)"
        ),
    );
    add(
        "3-bit field given 8",
        CONFIG,
        "bitfield.yaml",
        "key: 0\nvalue: {log_level: 8}\n",
        ": value.log_level: 8 does not fit in 3-bit field of __u32 (0..=7)",
    );
    add(
        "signed 6-bit field given -33",
        CONFIG,
        "sbitfield.yaml",
        "key: 0\nvalue: {ttl_adjust: -33}\n",
        ": value.ttl_adjust: -33 does not fit in 6-bit field of __s32 (-32..=31)",
    );
    add(
        "unknown enum variant",
        CONFIG,
        "enum.yaml",
        "key: 0\nvalue: {mode: FW_MODE_PANIC}\n",
        ": value.mode: `FW_MODE_PANIC` is not a variant of enum fw_mode; variants: FW_MODE_ENFORCE, FW_MODE_AUDIT, FW_MODE_DISABLED",
    );

    // NaN and infinities into ints.
    add(
        "NaN into an int",
        TABLE,
        "nan.yaml",
        &format!("key: {K1}\nvalue: {{rules: [{{protocol: .nan}}]}}\n"),
        &format!(": value.rules[0].protocol: {INT} for __u8, got a float (NaN)"),
    );
    add(
        ".inf into an int",
        TABLE,
        "inf.yaml",
        &format!("key: {K1}\nvalue: {{rules: [{{ruleId: .inf}}]}}\n"),
        &format!(": value.rules[0].ruleId: {INT} for __u32, got a float (inf)"),
    );
    add(
        "-.inf into an int",
        CONFIG,
        "ninf.yaml",
        "key: 0\nvalue: {s64_val: -.inf}\n",
        &format!(": value.s64_val: {INT} for __s64, got a float (-inf)"),
    );

    // Unknown fields name themselves and the valid ones.
    add(
        "unknown field in a rule",
        TABLE,
        "unknown-rule.yaml",
        &format!("key: {K1}\nvalue: {{rules: [{{ruleId: 1, dstport: 80}}]}}\n"),
        &format!(": value.rules[0].dstport: unknown field; valid fields: {RULE_FIELDS}"),
    );
    add(
        "unknown field in the key",
        TABLE,
        "unknown-key.yaml",
        "key: {prefixlen: 64}\nvalue: {}\n",
        ": key.prefixlen: unknown field; valid fields: prefixLen, ingress_ifindex, ip_data",
    );
    add(
        "unknown field in the value",
        TABLE,
        "unknown-value.yaml",
        &format!("key: {K1}\nvalue: {{rules: [], extra: 1}}\n"),
        ": value.extra: unknown field; valid fields: rules",
    );
    add(
        "unknown field in an entry",
        TABLE,
        "unknown-entry.yaml",
        &format!("key: {K1}\nvaule: {{}}\n"),
        ": unknown field `vaule` in an entry; an entry has `key:` and `value:`",
    );
    add(
        "unknown field in the second YAML document",
        TABLE,
        "docs.yaml",
        &format!(
            "key: {K1}\nvalue: {{rules: [{{ruleId: 77}}]}}\n---\nkey: {K3}\nvalue: {{rules: [{{ruleId: 1, bogus: 2}}]}}\n"
        ),
        &format!(
            ": document 2 (line 3): value.rules[0].bogus: unknown field; valid fields: {RULE_FIELDS}"
        ),
    );

    // Too long: a multi-megabyte string and a 100k-element list.
    add(
        "3 MB string into char name[16]",
        CONFIG,
        "name-3mb.yaml",
        &format!("key: 0\nvalue: {{name: {}}}\n", "x".repeat(3_000_000)),
        ": value.name: 3000000 bytes given, char[16] holds at most 16",
    );
    add(
        "17 bytes into char name[16]",
        CONFIG,
        "name-17.yaml",
        "key: 0\nvalue: {name: abcdefghijklmnopq}\n",
        ": value.name: 17 bytes given, char[16] holds at most 16",
    );
    add(
        "100k-element list into __u8[16]",
        TABLE,
        "list-100k.yaml",
        &format!(
            "key: {{prefixLen: 64, ip_data: [{}]}}\nvalue: {{}}\n",
            vec!["1"; 100_000].join(", ")
        ),
        ": key.ip_data: 100000 elements given, __u8[16] holds at most 16",
    );
    add(
        "4 elements into an inner __u16[3]",
        CONFIG,
        "matrix.yaml",
        "key: 0\nvalue: {port_matrix: [[1, 2, 3, 4]]}\n",
        ": value.port_matrix[0]: 4 elements given, __u16[3] holds at most 3",
    );

    // Duplicate keys inside one mapping.
    add(
        "duplicate top-level key",
        TABLE,
        "dup-top.yaml",
        &format!("key: {K1}\nvalue: {{}}\nkey: {K3}\n"),
        ": invalid YAML: duplicate key `key` in a mapping",
    );
    add(
        "duplicate key in a JSON Lines object",
        TABLE,
        "dup.jsonl",
        "{\"key\": {\"prefixLen\": 64, \"ingress_ifindex\": 6, \"ip_data\": \"10.0.0.1\"}, \"value\": {\"rules\": [{\"ruleId\": 77}]}}\n\
         {\"key\": {\"prefixLen\": 1, \"prefixLen\": 2}, \"value\": {}}\n",
        ":2: invalid JSON: duplicate key `prefixLen` in a mapping at line 1 column 36",
    );

    // JSON Lines with one broken line in the middle: lines 1-5 and 7-10 are
    // fine (line 1 changes a key the map holds).
    let mut lines: Vec<String> = (1..=10)
        .map(|i| {
            format!(
                "{{\"key\": {{\"prefixLen\": 64, \"ingress_ifindex\": 6, \"ip_data\": \"10.0.0.{i}\"}}, \"value\": {{\"rules\": [{{\"ruleId\": {}, \"action\": 1}}]}}}}",
                100 + i
            )
        })
        .collect();
    lines[5] =
        "{\"key\": {\"prefixLen\": 64, \"ip_data\": \"10.0.0.6\"}, \"value\": {\"rules\": [}"
            .into();
    add(
        "JSON Lines with a broken line 6",
        TABLE,
        "broken.jsonl",
        &(lines.join("\n") + "\n"),
        ":6: invalid JSON: expected value at line 1 column 71",
    );

    // A YAML alias bomb (billion laughs).
    add(
        "billion laughs",
        TABLE,
        "laughs.yaml",
        &billion_laughs(),
        ": invalid YAML: repetition limit exceeded",
    );
    v
}

fn billion_laughs() -> String {
    let mut doc = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    doc.push_str("key: {prefixLen: 64}\nvalue: {rules: *a9}\n");
    doc
}

fn bad_input_to_encode_exits_2_naming_the_place() {
    let tmp = tempfile::tempdir().unwrap();
    for b in bad_inputs(tmp.path()) {
        let t = Instant::now();
        let out = bin()
            .args(["encode", "--elf", ELF, "--map", b.map, "-f"])
            .arg(&b.file)
            .output()
            .unwrap();
        assert_refused(&out, 2, &b.err, b.what);
        assert!(t.elapsed() < HANG, "{}: took {:?}", b.what, t.elapsed());
    }
}

fn bad_inline_values_exit_2_naming_the_place() {
    let cases = [
        (
            TABLE,
            "{rules: [{}, {}, {}, {dstPortEnd: 70000}]}",
            "error: arguments: value.rules[3].dstPortEnd: 70000 does not fit in __u16 (0..=65535)\n",
        ),
        (
            TABLE,
            "{rules: [{protocol: -1}]}",
            "error: arguments: value.rules[0].protocol: -1 does not fit in __u8 (0..=255)\n",
        ),
        (
            TABLE,
            "{rules: [",
            "error: --value: invalid YAML: did not find expected node content at line 2 column 1, while parsing a flow node\n",
        ),
    ];
    for (map, value, want) in cases {
        let out = bin()
            .args(["encode", "--elf", ELF, "--map", map, "--key", "{}"])
            .args(["--value", value])
            .output()
            .unwrap();
        assert_refused(&out, 2, want, value);
    }
}

fn empty_and_comment_only_files_are_no_entries() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("empty.yaml", ""),
        ("comments.yaml", "# nothing here\n   # nor here\n\n"),
        ("blank.jsonl", "\n\n"),
    ] {
        let f = write(tmp.path(), name, text);
        let out = bin()
            .args(["encode", "--elf", ELF, "--map", TABLE, "-f"])
            .arg(&f)
            .output()
            .unwrap();
        assert_refused(
            &out,
            2,
            &format!("error: {}: no entries\n", f.display()),
            name,
        );
    }
}

/// Nesting far deeper than the limit: a clear error, no stack overflow
/// (that would be a signal, which `code` reports), in reasonable time.
fn deep_nesting_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 10_000;
    let path = |sep: &str| format!("key{}", sep.repeat(99));
    let cases = [
        (
            "flow lists",
            format!("key: {}{}\n", "[".repeat(n), "]".repeat(n)),
            // Flow nesting is refused before the YAML parser runs, at the
            // 101st bracket.
            ": invalid YAML: lists and mappings nested deeper than 100 levels at line 1 column 106"
                .to_string(),
        ),
        (
            "flow mappings",
            format!("key: {}1{}\n", "{a: ".repeat(n), "}".repeat(n)),
            ": invalid YAML: lists and mappings nested deeper than 100 levels at line 1 column 406"
                .to_string(),
        ),
        (
            "block lists",
            format!("key:\n{}1\n", "- ".repeat(n)),
            format!(
                ": invalid YAML: {}: lists and mappings nested deeper than 100 levels at line 2 column 199",
                path("[0]")
            ),
        ),
        (
            "an unclosed flow list",
            format!("key: {}\n", "[".repeat(n)),
            ": invalid YAML: lists and mappings nested deeper than 100 levels at line 1 column 106"
                .to_string(),
        ),
    ];
    for (i, (what, text, err)) in cases.into_iter().enumerate() {
        let f = write(tmp.path(), &format!("deep{i}.yaml"), text);
        let t = Instant::now();
        let out = bin()
            .args(["encode", "--elf", ELF, "--map", TABLE, "-f"])
            .arg(&f)
            .output()
            .unwrap();
        let took = t.elapsed();
        assert_refused(&out, 2, &format!("error: {}{err}\n", f.display()), what);
        assert!(took < HANG, "{what}: took {took:?}");
    }
    // JSON, 100k deep: stops at the limit at once.
    let f = write(
        tmp.path(),
        "deep.json",
        format!(
            "{{\"key\": {}{}}}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    let t = Instant::now();
    let out = bin()
        .args(["encode", "--elf", ELF, "--map", TABLE, "-f"])
        .arg(&f)
        .output()
        .unwrap();
    assert_refused(
        &out,
        2,
        &format!(
            "error: {}: invalid JSON: lists and mappings nested deeper than 100 levels at line 1 column 108\n",
            f.display()
        ),
        "100k-deep JSON",
    );
    assert!(t.elapsed() < HANG, "{:?}", t.elapsed());
}

/// YAML flow nesting costs time quadratic in its depth in libyaml's scanner
/// (100k levels took ~90 s in a debug build), so the codec refuses flow
/// nesting deeper than 100 before the YAML parser sees the text.
fn deep_yaml_flow_nesting_fails_fast() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 100_000;
    for (i, text) in [
        format!("key: {}{}\n", "[".repeat(n), "]".repeat(n)),
        format!("key: {}1{}\n", "{a: ".repeat(n), "}".repeat(n)),
    ]
    .into_iter()
    .enumerate()
    {
        let f = write(tmp.path(), &format!("deep{i}.yaml"), text);
        let t = Instant::now();
        let out = bin()
            .args(["encode", "--elf", ELF, "--map", TABLE, "-f"])
            .arg(&f)
            .timeout(Duration::from_secs(10))
            .output()
            .unwrap();
        let took = t.elapsed();
        assert_eq!(out.status.code(), Some(2), "{took:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("nested deeper than 100 levels"),
            "{}",
            stderr(&out)
        );
        assert!(took < HANG, "took {took:?}");
    }
}

fn billion_laughs_fails_fast() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "laughs.yaml", billion_laughs());
    let t = Instant::now();
    let out = bin()
        .args(["encode", "--elf", ELF, "--map", TABLE, "-f"])
        .arg(&f)
        .output()
        .unwrap();
    let took = t.elapsed();
    assert_refused(
        &out,
        2,
        &format!(
            "error: {}: invalid YAML: repetition limit exceeded\n",
            f.display()
        ),
        "billion laughs",
    );
    assert!(took < HANG, "took {took:?}");

    // Wide instead of deep: one 20k-element anchor aliased 2000 times.
    let wide = format!(
        "a: &a [{}]\nkey: {{prefixLen: 64}}\nvalue: {{rules: [{}]}}\n",
        vec!["1"; 20_000].join(","),
        vec!["*a"; 2000].join(",")
    );
    let f = write(tmp.path(), "wide.yaml", wide);
    let t = Instant::now();
    let out = bin()
        .args(["encode", "--elf", ELF, "--map", TABLE, "-f"])
        .arg(&f)
        .output()
        .unwrap();
    let took = t.elapsed();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("error: {}: invalid YAML: ", f.display()))
            && (err.contains("repetition limit exceeded") || err.contains("YAML alias bomb?")),
        "{err}"
    );
    assert!(took < HANG, "took {took:?}");
}

fn duplicate_key_in_a_block_mapping_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "dup.yaml",
        "key:\n  prefixLen: 1\n  ingress_ifindex: 2\n  prefixLen: 3\nvalue: {}\n",
    );
    let out = bin()
        .args(["encode", "--elf", ELF, "--map", TABLE, "-f"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    // The position is where the mapping starts (serde_norway reports the
    // mapping, not the key); the key is named.
    let want = format!(
        "error: {}: invalid YAML: key: duplicate key `prefixLen` in a mapping at line ",
        f.display()
    );
    assert!(stderr(&out).starts_with(&want), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let out = bin()
        .args(["encode", "--elf", ELF, "--map", TABLE, "--key", "{}"])
        .args(["--value", "{rules: [{ruleId: 1, ruleId: 2}]}"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let want =
        "error: --value: invalid YAML: rules[0]: duplicate key `ruleId` in a mapping at line 1 column ";
    assert!(stderr(&out).starts_with(want), "{}", stderr(&out));
}

fn non_utf8_file(dir: &Path) -> PathBuf {
    write(
        dir,
        "latin1.yaml",
        b"key: {prefixLen: 64}\nvalue:\n  rules:\n  - ruleId: 1\n    action: \"\xff\xfe\"\n",
    )
}

/// The line of the first bad byte is named (for `apply` too, see
/// `apply_refuses_bad_input_and_writes_nothing`).
fn non_utf8_file_names_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let f = non_utf8_file(tmp.path());
    let out = bin()
        .args(["encode", "--elf", ELF, "--map", TABLE, "-f"])
        .arg(&f)
        .output()
        .unwrap();
    assert_refused(
        &out,
        2,
        &format!("error: {}:5: not valid UTF-8\n", f.display()),
        "non-UTF-8",
    );
}

fn enrich_without_a_terminal_asks_for_set() {
    let tmp = tempfile::tempdir().unwrap();
    let schema = tmp.path().join("fw.schema.json");
    let out = bin()
        .args(["extract", "--elf", ELF, "-o"])
        .arg(&schema)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read(&schema).unwrap();
    let want = "error: no terminal to pick pinned maps on; pass --set NAME=PATH for each map\n";
    // Standard input closed, and standard input a pipe.
    let out = bin()
        .args(["enrich", "--schema"])
        .arg(&schema)
        .output()
        .unwrap();
    assert_refused(&out, 2, want, "stdin closed");
    let out = bin()
        .args(["enrich", "--schema"])
        .arg(&schema)
        .write_stdin("1\n")
        .output()
        .unwrap();
    assert_refused(&out, 2, want, "stdin a pipe");
    assert_eq!(std::fs::read(&schema).unwrap(), before, "schema unchanged");
}

// ---------------------------------------------------------------------------
// Kernel tests
// ---------------------------------------------------------------------------

struct Fw {
    guard: FirewallGuard,
    tmp: tempfile::TempDir,
    /// Given to the binary as TMPDIR, so editor scratch files land here.
    scratch: tempfile::TempDir,
}

impl Fw {
    fn load(test: &str) -> Option<Fw> {
        require_kernel(test)?;
        let fw = Fw {
            guard: FirewallGuard::load_bundled().expect("load the bundled firewall"),
            tmp: tempfile::tempdir().unwrap(),
            scratch: tempfile::tempdir().unwrap(),
        };
        fw.seed();
        Some(fw)
    }

    fn pin(&self, map: &str) -> PathBuf {
        self.guard.dir().join(map)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = bin();
        c.env("TMPDIR", self.scratch.path())
            .args(args)
            .args(["--elf", ELF, "--pin-dir"])
            .arg(self.guard.dir());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ebpf-sdk {args:?} failed ({}): {}",
            out.status,
            stderr(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Two table entries (10.0.0.1 and .2) and the config entry, so a
    /// partial write shows.
    fn seed(&self) {
        let f = write(
            self.tmp.path(),
            "seed.yaml",
            "maps:\n  ingress_node_firewall_table_map:\n\
             \x20 - key: {prefixLen: 64, ingress_ifindex: 6, ip_data: 10.0.0.1}\n\
             \x20   value: {rules: [{ruleId: 1, protocol: 6, dstPortStart: 22, action: 1}]}\n\
             \x20 - key: {prefixLen: 64, ingress_ifindex: 6, ip_data: 10.0.0.2}\n\
             \x20   value: {rules: [{ruleId: 2, protocol: 17, dstPortStart: 53, action: 2}]}\n\
             \x20 ingress_node_firewall_config_map:\n\
             \x20 - key: 0\n\
             \x20   value: {mode: FW_MODE_AUDIT, name: seeded, s8_val: -5, max_event_bytes: 512}\n",
        );
        let out = bin()
            .args(["apply", "--elf", ELF, "--pin-dir"])
            .arg(self.guard.dir())
            .arg("-f")
            .arg(&f)
            .output()
            .unwrap();
        assert!(out.status.success(), "seeding: {}", stderr(&out));
        assert_eq!(self.dump(TABLE).len(), 2);
    }

    fn dump(&self, map: &str) -> Vec<bpftool::Entry> {
        let mut e = bpftool::map_dump(&self.pin(map)).unwrap();
        e.sort_by(|a, b| a.key.cmp(&b.key));
        e
    }

    /// Every map a command here could write, as bpftool reads it.
    fn snapshot(&self) -> Vec<Vec<bpftool::Entry>> {
        [TABLE, CONFIG, DEBUG].map(|m| self.dump(m)).to_vec()
    }

    /// Runs `args`, asserts the refusal, that no map changed and that
    /// nothing was left in $TMPDIR (no editor scratch files, and no backup
    /// from `apply --prune`: it is made only right before the first write).
    #[track_caller]
    fn refused(&self, args: &[&str], want_code: i32, want_err: &str) {
        let before = self.snapshot();
        let out = self.run(args);
        assert_refused(&out, want_code, want_err, &format!("{args:?}"));
        assert!(self.snapshot() == before, "{args:?} changed a map");
        assert!(self.scratch_is_empty(), "{args:?} left files in $TMPDIR");
    }

    fn editor(&self, name: &str, body: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn scratch_is_empty(&self) -> bool {
        std::fs::read_dir(self.scratch.path())
            .unwrap()
            .next()
            .is_none()
    }
}

fn key_bytes(last: u8, prefix: u8, ifindex: u8) -> Vec<u8> {
    let mut k = vec![prefix, 0, 0, 0, ifindex, 0, 0, 0, 10, 0, 0, last];
    k.resize(24, 0);
    k
}

fn update_and_apply_refuse_bad_input_and_write_nothing() {
    let Some(fw) = Fw::load("update_and_apply_refuse_bad_input_and_write_nothing") else {
        return;
    };
    let t = Instant::now();
    for b in bad_inputs(fw.tmp.path()) {
        let f = b.file.to_str().unwrap();
        fw.refused(&["update", "--map", b.map, "-f", f], 2, &b.err);
        fw.refused(&["apply", "--map", b.map, "-f", f], 2, &b.err);
        // With --prune's default backup: none is made (`refused` checks).
        fw.refused(&["apply", "--map", b.map, "-f", f, "--prune"], 2, &b.err);
    }
    eprintln!("bad inputs through update/apply: {:?}", t.elapsed());
}

fn apply_refuses_bad_input_and_writes_nothing() {
    let Some(fw) = Fw::load("apply_refuses_bad_input_and_writes_nothing") else {
        return;
    };
    let dir = fw.tmp.path();

    // Non-UTF-8: apply reads line by line and names the line.
    let f = non_utf8_file(dir);
    let err = format!("error: {}:5: not valid UTF-8\n", f.display());
    fw.refused(
        &["apply", "--map", TABLE, "-f", f.to_str().unwrap()],
        2,
        &err,
    );
    // JSON Lines with a bad byte on line 2, after a good line.
    let f = write(
        dir,
        "latin1.jsonl",
        b"{\"key\": {\"prefixLen\": 64, \"ingress_ifindex\": 6, \"ip_data\": \"10.0.0.1\"}, \"value\": {}}\n{\"key\": {\"prefixLen\": 2}, \"value\": {\"rules\": [{\"ruleId\": \"\xff\"}]}}\n",
    );
    let err = format!("error: {}:2: not valid UTF-8\n", f.display());
    fw.refused(
        &["apply", "--map", TABLE, "-f", f.to_str().unwrap()],
        2,
        &err,
    );

    // The same key twice names both entries, in every shape.
    let e = |ip: &str, id: u32| {
        format!("- key: {{prefixLen: 64, ingress_ifindex: 6, ip_data: {ip}}}\n  value: {{rules: [{{ruleId: {id}}}]}}\n")
    };
    let f = write(
        dir,
        "dups.yaml",
        format!(
            "{}{}{}{}",
            e("10.0.0.1", 10),
            e("10.0.0.3", 11),
            e("10.0.0.4", 12),
            e("10.0.0.3", 13)
        ),
    );
    let err = format!(
        "error: {f}:7: the same key as {f}:3; each key may appear once\n",
        f = f.display()
    );
    fw.refused(
        &["apply", "--map", TABLE, "-f", f.to_str().unwrap()],
        2,
        &err,
    );
    fw.refused(
        &[
            "apply",
            "--map",
            TABLE,
            "-f",
            f.to_str().unwrap(),
            "--prune",
        ],
        2,
        &err,
    );
    let j = |ip: &str| {
        format!("{{\"key\": {{\"prefixLen\": 64, \"ingress_ifindex\": 6, \"ip_data\": \"{ip}\"}}, \"value\": {{}}}}\n")
    };
    let f = write(
        dir,
        "dups.jsonl",
        format!("{}{}{}", j("10.0.0.1"), j("10.0.0.3"), j("10.0.0.1")),
    );
    let err = format!(
        "error: {f}:3: the same key as {f}:1; each key may appear once\n",
        f = f.display()
    );
    fw.refused(
        &["apply", "--map", TABLE, "-f", f.to_str().unwrap()],
        2,
        &err,
    );
    // Written differently, the same bytes: 10.0.0.1 as a byte list, ifindex in hex.
    let f = write(
        dir,
        "dups-docs.yaml",
        format!(
            "key: {K1}\nvalue: {{}}\n---\nkey: {{prefixLen: 64, ingress_ifindex: 0x6, ip_data: [10, 0, 0, 1]}}\nvalue: {{}}\n"
        ),
    );
    let err = format!(
        "error: {f}: document 2 (line 3): the same key as {f}: document 1 (line 1); each key may appear once\n",
        f = f.display()
    );
    fw.refused(
        &["apply", "--map", TABLE, "-f", f.to_str().unwrap()],
        2,
        &err,
    );

    // Deep nesting and an alias bomb through apply, against the live map.
    let f = write(
        dir,
        "deep.jsonl",
        format!(
            "{}{{\"key\": {}{}}}\n",
            j("10.0.0.1"),
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    let err = format!(
        "error: {}:2: invalid JSON: lists and mappings nested deeper than 100 levels at line 1 column 108\n",
        f.display()
    );
    let t = Instant::now();
    fw.refused(
        &["apply", "--map", TABLE, "-f", f.to_str().unwrap()],
        2,
        &err,
    );
    assert!(t.elapsed() < HANG, "{:?}", t.elapsed());
}

/// An empty or comment-only file is almost always a mistake (a failed
/// `dump > file`, a wrong path); with `--prune` it deletes every entry.
/// An explicit empty list (`[]`) stays the way to say "no entries".
fn apply_of_an_empty_file_is_refused() {
    let Some(fw) = Fw::load("apply_of_an_empty_file_is_refused") else {
        return;
    };
    for (name, text) in [("empty.yaml", ""), ("comments.yaml", "# nothing\n\n")] {
        let f = write(fw.tmp.path(), name, text);
        let err = format!(
            "error: {}: no entries; to make the map empty on purpose, apply a file holding `[]` with --prune\n",
            f.display()
        );
        let f = f.to_str().unwrap();
        fw.refused(&["apply", "--map", TABLE, "-f", f], 2, &err);
        fw.refused(&["apply", "--map", TABLE, "-f", f, "--prune"], 2, &err);
    }
    // `[]` with --prune is the way to say it.
    let f = write(fw.tmp.path(), "none.yaml", "[]\n");
    fw.ok(&[
        "apply",
        "--map",
        TABLE,
        "-f",
        f.to_str().unwrap(),
        "--prune",
        "--no-backup",
    ]);
    assert!(ebpf_sdk_testkit::bpftool::map_dump(&fw.pin(TABLE))
        .unwrap()
        .is_empty());
}

fn update_of_an_empty_file_is_refused() {
    let Some(fw) = Fw::load("update_of_an_empty_file_is_refused") else {
        return;
    };
    for (name, text) in [("empty.yaml", ""), ("comments.yaml", "# nothing\n\n")] {
        let f = write(fw.tmp.path(), name, text);
        let err = format!("error: {}: no entries\n", f.display());
        fw.refused(
            &["update", "--map", TABLE, "-f", f.to_str().unwrap()],
            2,
            &err,
        );
    }
}

fn missing_fields_are_zero() {
    let Some(fw) = Fw::load("missing_fields_are_zero") else {
        return;
    };
    // ingress_ifindex, and every rule field but ruleId, left out.
    fw.ok(&[
        "update",
        "--map",
        TABLE,
        "--key",
        "{prefixLen: 64, ip_data: 10.0.0.9}",
        "--value",
        "{rules: [{ruleId: 7}]}",
    ]);
    let e = bpftool::map_lookup(&fw.pin(TABLE), &key_bytes(9, 64, 0))
        .unwrap()
        .expect("the entry is there");
    let v = e.value.unwrap();
    assert_eq!(v.len(), 1200);
    assert_eq!(&v[..4], &7u32.to_ne_bytes());
    assert!(v[4..].iter().all(|b| *b == 0), "{v:?}");

    // An entry with no key (index 0) and an empty value: all zero.
    let f = write(fw.tmp.path(), "zero.yaml", "- value: {}\n");
    fw.ok(&["apply", "--map", CONFIG, "-f", f.to_str().unwrap()]);
    let e = bpftool::map_lookup(&fw.pin(CONFIG), &0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(e.value.unwrap(), vec![0u8; 120]);

    // A value with nulls where fields would be.
    fw.ok(&[
        "update",
        "--map",
        TABLE,
        "--key",
        "{prefixLen: 64, ingress_ifindex: ~, ip_data: 10.0.0.9}",
        "--value",
        "{rules: [~, {ruleId: 8, protocol: null}]}",
    ]);
    let v = bpftool::map_lookup(&fw.pin(TABLE), &key_bytes(9, 64, 0))
        .unwrap()
        .unwrap()
        .value
        .unwrap();
    assert!(v[..12].iter().all(|b| *b == 0));
    assert_eq!(&v[12..16], &8u32.to_ne_bytes());
    assert!(v[16..].iter().all(|b| *b == 0));
}

fn wrong_targets_are_refused_with_exit_3() {
    let Some(fw) = Fw::load("wrong_targets_are_refused_with_exit_3") else {
        return;
    };
    let rule = write(
        fw.tmp.path(),
        "rule.yaml",
        format!("key: {K3}\nvalue: {{rules: [{{ruleId: 9, action: 1}}]}}\n"),
    );
    let rule = rule.to_str().unwrap();
    let prog = fw
        .guard
        .prog_path(PROG)
        .expect("the program is pinned")
        .to_path_buf();
    let plain = write(fw.tmp.path(), "plain", "not a map\n");
    let dir = fw.guard.dir().join("progs");
    let outside = fw.tmp.path().join("x");
    let missing = fw.guard.dir().join("no_such_map");

    let p = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(String, String)> = vec![
        (
            p(&prog),
            format!(
                "error: {} is a pinned BPF program, not a map\n",
                prog.display()
            ),
        ),
        (
            p(&dir),
            format!(
                "error: {} is a directory, not a pinned BPF map\n",
                dir.display()
            ),
        ),
        (
            p(&outside),
            format!(
                "error: no BPF object is pinned at {}: the directory is not on bpffs; is bpffs mounted (mount -t bpf bpf /sys/fs/bpf)?\n",
                outside.display()
            ),
        ),
        (
            p(&missing),
            format!(
                "error: no BPF object is pinned at {}: nothing with that name exists on that bpffs\n",
                missing.display()
            ),
        ),
    ];
    for (pinned, err) in &cases {
        for cmd in ["update", "apply"] {
            fw.refused(
                &[cmd, "--map", TABLE, "--pinned", pinned, "-f", rule],
                3,
                err,
            );
        }
        // With the schema from the kernel instead of the ELF: the same refusal.
        let before = fw.snapshot();
        let out = bin()
            .args(["update", "--pinned", pinned, "--key", "0", "--value", "0"])
            .output()
            .unwrap();
        assert_refused(&out, 3, err, "--pinned without --elf");
        assert!(fw.snapshot() == before);
    }

    // A plain file: the message names the file system it is on.
    for cmd in ["update", "apply"] {
        let before = fw.snapshot();
        let out = fw.run(&[cmd, "--map", TABLE, "--pinned", &p(&plain), "-f", rule]);
        assert_eq!(code(&out), 3, "{}", stderr(&out));
        let err = stderr(&out);
        let head = format!("error: {} is a regular file on ", plain.display());
        assert!(
            err.starts_with(&head) && err.ends_with(", not a BPF map pinned on bpffs\n"),
            "{err}"
        );
        assert!(fw.snapshot() == before);
    }

    // The table's schema against the debug map: both shown, nothing written.
    let debug = fw.pin(DEBUG);
    let err = format!(
        "error: {}: the pinned map does not match the schema for `{TABLE}`: map type lpm_trie vs lru_hash\n\
         \x20 schema: lpm_trie {TABLE} (key 24 B, value 1200 B, max 1024)\n\
         \x20 pinned: lru_hash ingress_node_fi (key 8 B, value 24 B, max 4096)\n\
         nothing was written\n",
        debug.display()
    );
    for cmd in ["update", "apply"] {
        fw.refused(
            &[cmd, "--map", TABLE, "--pinned", &p(&debug), "-f", rule],
            3,
            &err,
        );
    }
    assert!(fw.dump(DEBUG).is_empty());
    // The program is still pinned and loaded.
    bpftool::prog_show(&prog).unwrap();
}

fn not_root_is_refused_naming_the_capability() {
    let test = "not_root_is_refused_naming_the_capability";
    let Some(fw) = Fw::load(test) else {
        return;
    };
    if !require_programs(test, &["setpriv"]) {
        return;
    }
    let pin = fw.pin(TABLE);
    let as_nobody = |args: &[&str]| -> Output {
        std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(assert_cmd::cargo::cargo_bin("ebpf-sdk"))
            .args(args)
            .args(["--elf", ELF, "--pin-dir"])
            .arg(fw.guard.dir())
            .current_dir(repo())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let update = [
        "update",
        "--map",
        TABLE,
        "--key",
        K3,
        "--value",
        "{rules: [{ruleId: 9}]}",
    ];
    let before = fw.snapshot();
    let denied = format!(
        "error: open on {}: permission denied (Permission denied (os error 13)); bpf() needs CAP_BPF (some map types also CAP_NET_ADMIN or CAP_PERFMON) or CAP_SYS_ADMIN, and access to the pin\n",
        pin.display()
    );
    for args in [
        &update[..],
        &["dump", "--map", TABLE],
        &["lookup", "--map", TABLE, "--key", K1],
    ] {
        let out = as_nobody(args);
        assert_refused(&out, 3, &denied, &format!("as nobody: {args:?}"));
    }
    assert!(fw.snapshot() == before);

    // A pin others may read: reads work, writes are refused as read-only.
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = as_nobody(&update);
    assert_refused(
        &out,
        3,
        &format!(
            "error: update on map `ingress_node_fi` at {}: the map is read-only for user space because this process could only open the pin read-only; reads still work\n",
            pin.display()
        ),
        "read-only pin",
    );
    let out = as_nobody(&["dump", "--map", TABLE, "-o", "jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    assert!(fw.snapshot() == before);
}

fn bpffs_not_mounted_says_so() {
    let test = "bpffs_not_mounted_says_so";
    let Some(fw) = Fw::load(test) else {
        return;
    };
    if !require_programs(test, &["unshare", "umount"]) {
        return;
    }
    // A private mount namespace: bpffs goes away for the CLI only.
    let script = r#"umount /sys/fs/bpf 2>/dev/null || umount -l /sys/fs/bpf || exit 98
if grep -q ' /sys/fs/bpf ' /proc/self/mountinfo; then echo 'bpffs still mounted' >&2; exit 99; fi
exec "$@""#;
    let without_bpffs = |args: &[&str]| -> Output {
        std::process::Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(assert_cmd::cargo::cargo_bin("ebpf-sdk"))
            .args(args)
            .current_dir(repo())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let before = fw.snapshot();
    let hint = "the directory is not on bpffs; is bpffs mounted (mount -t bpf bpf /sys/fs/bpf)?";
    let default_pin = format!("/sys/fs/bpf/{TABLE}");
    let guard_pin = fw.pin(TABLE).display().to_string();
    let cases: [(Vec<&str>, &str); 3] = [
        (
            vec![
                "update", "--elf", ELF, "--map", TABLE, "--key", K3, "--value", "{}",
            ],
            &default_pin,
        ),
        (
            vec![
                "update", "--elf", ELF, "--map", TABLE, "--pinned", &guard_pin, "--key", K3,
                "--value", "{}",
            ],
            &guard_pin,
        ),
        (vec!["describe", "--pinned", &default_pin], &default_pin),
    ];
    for (args, pin) in cases {
        let out = without_bpffs(&args);
        assert_refused(
            &out,
            3,
            &format!("error: no BPF object is pinned at {pin}: {hint}\n"),
            &format!("{args:?}"),
        );
    }
    assert!(fw.snapshot() == before);
    assert!(
        Path::new(&guard_pin).exists(),
        "bpffs is still mounted here"
    );
}

fn editor_missing_or_crashing_writes_nothing() {
    let Some(fw) = Fw::load("editor_missing_or_crashing_writes_nothing") else {
        return;
    };
    let create = ["create", "--map", TABLE];

    // No editor at all.
    fw.refused(
        &create,
        2,
        "error: no editor: set $VISUAL or $EDITOR (e.g. EDITOR=vi), or pass the entry with -f FILE\n",
    );
    assert!(fw.scratch_is_empty());

    // EDITOR=false, a crashing editor, one that does not exist.
    let segv = fw.editor("segv.sh", "kill -SEGV $$\n");
    let segv = segv.to_str().unwrap();
    let nowhere = fw.tmp.path().join("no-such-editor");
    let nowhere = nowhere.to_str().unwrap();
    let cases = [
        ("false", vec!["exit status: 1"]),
        // /bin/sh reports the signal as 128+11 (dash, bash); an exec'ing
        // shell would leave the signal itself.
        (segv, vec!["exit status: 139", "signal: 11 (SIGSEGV)"]),
        (nowhere, vec!["exit status: 127"]),
    ];
    for (editor, statuses) in cases {
        let before = fw.snapshot();
        let out = fw.cmd(&create).env("EDITOR", editor).output().unwrap();
        assert_eq!(code(&out), 2, "{editor}: {}", stderr(&out));
        let err = stderr(&out);
        let last = err.lines().last().unwrap_or_default();
        assert!(
            statuses
                .iter()
                .any(|s| last == format!("error: the editor `{editor}` failed ({s})")),
            "{editor}: {err}"
        );
        // Only the shell's own report of the failure comes before it.
        assert!(err.lines().count() <= 2, "{err}");
        assert!(out.stdout.is_empty());
        assert!(fw.snapshot() == before, "{editor} changed a map");
        assert!(fw.scratch_is_empty(), "{editor}: scratch files left");
    }
}

fn editor_template_is_private_and_removed() {
    let Some(fw) = Fw::load("editor_template_is_private_and_removed") else {
        return;
    };
    let seen = fw.tmp.path().join("seen");
    let spy = |name: &str, then: &str| {
        fw.editor(
            name,
            &format!(
                "set -e\nd=$(dirname \"$1\")\nstat -c %a \"$d\" \"$1\" > {s}\nls -A \"$d\" >> {s}\n{then}",
                s = seen.display()
            ),
        )
    };
    let table_yaml = format!("{TABLE}.yaml");
    let want_seen = format!("700\n600\n{table_yaml}\n");

    // Saved unchanged: abort, nothing written, nothing left.
    let editor = spy("look.sh", "");
    let before = fw.snapshot();
    let out = fw
        .cmd(&["create", "--map", TABLE])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert_refused(
        &out,
        2,
        "aborted: the entry was saved unchanged or empty; nothing written\n",
        "abort unchanged",
    );
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), want_seen);
    assert!(fw.snapshot() == before);
    assert!(fw.scratch_is_empty(), "scratch left after abort");

    // Saved empty: the same.
    let editor = spy("empty.sh", ": > \"$1\"\n");
    let out = fw
        .cmd(&["create", "--map", TABLE])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert_refused(
        &out,
        2,
        "aborted: the entry was saved unchanged or empty; nothing written\n",
        "abort empty",
    );
    assert!(fw.snapshot() == before);
    assert!(fw.scratch_is_empty(), "scratch left after abort");

    // Success: written, and the scratch directory is gone.
    let editor = spy(
        "write.sh",
        &format!("printf 'key: {K3}\\nvalue: {{rules: [{{ruleId: 9, protocol: 6, action: 2}}]}}\\n' > \"$1\"\n"),
    );
    let out = fw
        .cmd(&["create", "--map", TABLE])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), format!("{TABLE}: 1 written\n"));
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), want_seen);
    assert!(fw.scratch_is_empty(), "scratch left after success");
    let v = bpftool::map_lookup(&fw.pin(TABLE), &key_bytes(3, 64, 6))
        .unwrap()
        .unwrap()
        .value
        .unwrap();
    assert_eq!(&v[..12], &[9, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 2]);
    assert!(v[12..].iter().all(|b| *b == 0));
    assert_eq!(fw.dump(TABLE).len(), 3);
}

/// An invalid save and then a failing editor: the user's text is kept,
/// still private, and its path printed; nothing is written.
fn editor_failing_after_an_invalid_save_keeps_the_text() {
    let Some(fw) = Fw::load("editor_failing_after_an_invalid_save_keeps_the_text") else {
        return;
    };
    let count = fw.tmp.path().join("count");
    let editor = fw.editor(
        "bad-then-fail.sh",
        &format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             [ $n -eq 1 ] || exit 1\n\
             printf 'key: {K3}\\nvalue: {{rules: [{{protocol: 300}}]}}\\n' > \"$1\"\n",
            c = count.display()
        ),
    );
    let before = fw.snapshot();
    let out = fw
        .cmd(&["create", "--map", TABLE])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(fw.snapshot() == before);
    let kept: Vec<PathBuf> = std::fs::read_dir(fw.scratch.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let file = kept[0].join(format!("{TABLE}.yaml"));
    let last = stderr(&out).lines().last().unwrap_or_default().to_string();
    assert_eq!(
        last,
        format!(
            "error: your text is kept in {}: the editor `{}` failed (exit status: 1)",
            file.display(),
            editor.display()
        )
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&kept[0]), mode(&file)), (0o700, 0o600));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("protocol: 300"), "{text}");
}

/// The notice and the `# ERROR:` line show the cause once.
fn editor_reopen_message_says_it_once() {
    let Some(fw) = Fw::load("editor_reopen_message_says_it_once") else {
        return;
    };
    let count = fw.tmp.path().join("count");
    let seen = fw.tmp.path().join("seen");
    let editor = fw.editor(
        "bad-then-look.sh",
        &format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             if [ $n -eq 1 ]; then printf 'key: {K3}\\nvalue: {{rules: [{{protocol: 300}}]}}\\n' > \"$1\"; exit 0; fi\n\
             head -n 1 \"$1\" > {s}\n\
             : > \"$1\"\n",
            c = count.display(),
            s = seen.display()
        ),
    );
    let out = fw
        .cmd(&["create", "--map", TABLE])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    let cause =
        format!("{TABLE}.yaml: value.rules[0].protocol: 300 does not fit in __u8 (0..=255)");
    assert_eq!(
        stderr(&out).lines().next().unwrap_or_default(),
        format!("invalid entry, reopening the editor: {cause}")
    );
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!("# ERROR: {cause}\n")
    );
}
