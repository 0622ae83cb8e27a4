//! The `ebpf-sdk` binary without a kernel: extract, template, encode, decode,
//! help, and the errors users hit. Golden files are rewritten with
//! `EBPF_SDK_BLESS=1`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fw() -> String {
    repo()
        .join("firewall-ebpf/firewall.bpf.o")
        .display()
        .to_string()
}

fn cli() -> Command {
    let mut c = Command::cargo_bin("ebpf-sdk").unwrap();
    c.current_dir(repo()).env("NO_COLOR", "1");
    c
}

fn stdout(args: &[&str]) -> String {
    let out = cli().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ebpf-sdk {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and returns (exit code, stderr).
fn fails(args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let mut c = cli();
    c.args(args);
    if let Some(s) = stdin {
        c.write_stdin(s);
    }
    let out = c.output().unwrap();
    assert!(!out.status.success(), "ebpf-sdk {args:?} should fail");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout on error: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("EBPF_SDK_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; rerun with EBPF_SDK_BLESS=1", path.display()));
    assert!(
        expected == actual,
        "{name} changed; rerun with EBPF_SDK_BLESS=1 if intended\n--- actual:\n{actual}"
    );
}

const TABLE: &str = "ingress_node_firewall_table_map";

#[test]
fn help_and_templates_are_golden() {
    golden("help.txt", &stdout(&["--help"]));
    golden("apply-help.txt", &stdout(&["apply", "--help"]));
    golden(
        "template-table.yaml",
        &stdout(&[
            "template",
            "--elf",
            "firewall-ebpf/firewall.bpf.o",
            "--map",
            TABLE,
        ]),
    );
    golden(
        "template-config.yaml",
        &stdout(&[
            "template",
            "--elf",
            "firewall-ebpf/firewall.bpf.o",
            "--map",
            "ingress_node_firewall_config_map",
        ]),
    );
}

#[test]
fn legacy_verbose_template_encodes_to_the_documented_bytes() {
    let legacy = r#"
key:
  variable_name: lpm_ip_key_st
  kind: STRUCT
  member:
  - {variable_name: prefixLen, type_name: unsigned int, size: 4, kind: INT, input: 64}
  - {variable_name: ingress_ifindex, type_name: unsigned int, size: 4, kind: INT, input: 6}
  - {variable_name: ip_data, kind: ARRAY, input: [10, 10, 10, 2], totalSize: 16, fillWithZeros: true,
     member: {type_name: unsigned char, size: 1, kind: INT, input: null}}
byteOrder: reversed
"#;
    let out = cli()
        .args(["encode", "--elf", &fw(), "--map", TABLE, "-f", "-"])
        .write_stdin(legacy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "key:   40000000 06000000 0a0a0a02 00000000 00000000 00000000\n"
    );
}

#[test]
fn concise_entry_encodes_and_decodes_back() {
    let out = stdout(&[
        "encode",
        "--elf",
        &fw(),
        "--map",
        TABLE,
        "--key",
        "{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}",
        "--value",
        "{rules: [{ruleId: 1, protocol: 1, icmpType: 8, action: 2}]}",
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let key = v["key"].as_str().unwrap();
    let value = v["value"].as_str().unwrap();
    assert_eq!(key, "40000000060000000a0a0a02000000000000000000000000");
    assert_eq!(value.len(), 2400);
    // ruleId 01000000, protocol 01, ports 0000 0000, icmpType 08, icmpCode 00, action 02.
    assert_eq!(
        &value[..24],
        "010000000100000000080002",
        "packed 12-byte rule"
    );
    assert!(value[24..].chars().all(|c| c == '0'));

    let decoded = stdout(&[
        "decode",
        "--elf",
        &fw(),
        "--map",
        TABLE,
        "--key",
        key,
        "--value",
        value,
    ]);
    assert_eq!(
        decoded,
        "- key:\n    prefixLen: 64\n    ingress_ifindex: 6\n    ip_data: 10.10.10.2\n  value:\n    rules:\n    - ruleId: 1\n      protocol: 1\n      dstPortStart: 0\n      dstPortEnd: 0\n      icmpType: 8\n      icmpCode: 0\n      action: 2\n"
    );
    // What decode prints is valid input again, to the same bytes.
    let again = cli()
        .args([
            "encode",
            "--elf",
            &fw(),
            "--map",
            TABLE,
            "-f",
            "-",
            "-o",
            "json",
        ])
        .write_stdin(decoded)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap(), out);
}

#[test]
fn every_firewall_map_round_trips_template_fill_encode_decode() {
    let doc = ebpf_sdk::btf::extract_file(fw()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The events map (a perf event array) holds nothing to write: its
    // template says what it is for, and encode says the same.
    let events = "ingress_node_firewall_events_map";
    let why = doc
        .map(events)
        .unwrap()
        .map_type
        .nothing_to_write()
        .unwrap();
    let template = stdout(&["template", "--elf", &fw(), "--map", events]);
    assert!(
        template.contains("# Nothing to write: a perf event array"),
        "{template}"
    );
    assert!(!template.lines().any(|l| !l.starts_with('#')), "{template}");
    let f = dir.path().join("events.yaml");
    std::fs::write(&f, &template).unwrap();
    let (code, err) = fails(
        &[
            "encode",
            "--elf",
            &fw(),
            "--map",
            events,
            "-f",
            f.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.trim(),
        format!("error: {events} (perf_event_array): nothing to write: {why}")
    );
    for m in doc
        .maps
        .iter()
        .filter(|m| m.key.is_some() || m.value.is_some())
        .filter(|m| m.map_type.nothing_to_write().is_none())
    {
        let template = stdout(&["template", "--elf", &fw(), "--map", &m.name]);
        // Fill in: every `: 0` leaf becomes 1 (a valid value for every int,
        // bitfield and enum-by-number field the templates show as 0).
        let filled = template.replace(": 0 ", ": 1 ").replace(": 0\n", ": 1\n");
        let f = dir.path().join(format!("{}.yaml", m.name));
        std::fs::write(&f, &filled).unwrap();
        let enc = stdout(&[
            "encode",
            "--elf",
            &fw(),
            "--map",
            &m.name,
            "-f",
            f.to_str().unwrap(),
            "-o",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_str(enc.trim()).unwrap();
        let mut args = vec!["decode", "--elf", fw_leak(), "--map", &m.name];
        let key = v["key"].as_str().unwrap_or("").to_string();
        let value = v["value"].as_str().map(str::to_string);
        if !key.is_empty() {
            args.extend(["--key", leak(key)]);
        }
        if let Some(val) = value {
            args.extend(["--value", leak(val)]);
        }
        let dec = stdout(&args);
        let back = cli()
            .args([
                "encode",
                "--elf",
                &fw(),
                "--map",
                &m.name,
                "-f",
                "-",
                "-o",
                "json",
            ])
            .write_stdin(dec.clone())
            .output()
            .unwrap();
        assert!(
            back.status.success(),
            "{}: {}\n{dec}",
            m.name,
            String::from_utf8_lossy(&back.stderr)
        );
        assert_eq!(
            String::from_utf8(back.stdout).unwrap(),
            enc,
            "{} does not round trip:\n{dec}",
            m.name
        );
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn fw_leak() -> &'static str {
    leak(fw())
}

#[test]
fn input_errors_exit_2_and_name_the_place() {
    let (code, err) = fails(
        &[
            "encode",
            "--elf",
            &fw(),
            "--map",
            TABLE,
            "--key",
            "{prefixLen: 64}",
            "--value",
            "{rules: [{}, {}, {}, {dstPortEnd: 70000}]}",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: arguments: value.rules[3].dstPortEnd: 70000 does not fit in __u16 (0..=65535)\n"
    );

    let (code, err) = fails(
        &[
            "encode",
            "--elf",
            &fw(),
            "--map",
            TABLE,
            "--key",
            "{prefixlen: 64}",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("key.prefixlen: unknown field"), "{err}");
    assert!(err.contains("prefixLen, ingress_ifindex, ip_data"), "{err}");

    let (code, err) = fails(&["template", "--elf", &fw(), "--map", "nope"], None);
    assert_eq!(code, 2);
    assert!(err.contains("no map named `nope`"), "{err}");
    assert!(err.contains(TABLE), "{err}");

    let (code, err) = fails(&["extract", "--elf", "Cargo.toml"], None);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "error: Cargo.toml: not a valid ELF object: Unknown file magic\n"
    );

    let (code, err) = fails(
        &["decode", "--elf", &fw(), "--map", TABLE, "--key", "4000"],
        None,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--key: 2 bytes given, the map's key is 24 bytes"),
        "{err}"
    );
}

#[test]
fn extract_writes_the_schema_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fw.json");
    stdout(&[
        "extract",
        "--elf",
        "firewall-ebpf/firewall.bpf.o",
        "-o",
        out.to_str().unwrap(),
    ]);
    let doc =
        ebpf_sdk::schema::Document::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc.map(TABLE).unwrap().value_size, 1200);
    // --schema works wherever --elf does.
    let t = stdout(&[
        "template",
        "--schema",
        out.to_str().unwrap(),
        "--map",
        TABLE,
    ]);
    assert!(t.contains("prefixLen"));
}
