//! The `ebpf-sdk` workflow against real pinned maps of the bundled firewall
//! (and of the corpus's load balancer, for global data): create through
//! `$EDITOR` (including the reopen-on-error and abort paths), update,
//! lookup, delete, dump and apply, with bpftool as the independent reader. Without privileges the harness counts them as ignored; they fail
//! instead with `EBPF_SDK_REQUIRE_KERNEL=1`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::{bpftool, require_kernel, FirewallGuard};

ebpf_sdk_testkit::harness! {
    create_through_the_editor: [Need::Kernel],
    update_lookup_delete_dump: [Need::Kernel],
    apply_with_prune_and_dry_run: [Need::Kernel],
    describe_and_refuse_a_different_map: [Need::Kernel],
    backup_restores_and_a_full_map_is_reported: [Need::Kernel],
    ctrl_c_stops_apply_and_says_how_far_it_got: [Need::Kernel, Need::Programs(&["kill"])],
    events_are_read_and_decoded_with_the_btf_type: [Need::Kernel],
    queues_stacks_map_in_map_and_global_data: [Need::Kernel],
    dump_into_a_closed_pipe_and_enrich: [Need::Kernel],
    global_data_through_the_kernels_btf: [Need::Kernel],
    prune_resets_arrays_and_restore_commands_run_as_printed: [Need::Kernel, Need::Programs(&["sh"])],
}

const TABLE: &str = "ingress_node_firewall_table_map";
const STATS: &str = "ingress_node_firewall_statistics_map";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Fw {
    guard: FirewallGuard,
    tmp: tempfile::TempDir,
}

impl Fw {
    fn load(test: &str) -> Option<Fw> {
        require_kernel(test)?;
        Some(Fw {
            guard: FirewallGuard::load_bundled().expect("load the bundled firewall"),
            tmp: tempfile::tempdir().unwrap(),
        })
    }

    fn pin(&self, map: &str) -> PathBuf {
        self.guard.dir().join(map)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::cargo_bin("ebpf-sdk").unwrap();
        c.current_dir(repo())
            .env("NO_COLOR", "1")
            .env_remove("VISUAL")
            .env_remove("EDITOR")
            .env("TMPDIR", self.tmp.path())
            .args(args)
            .args(["--elf", "firewall-ebpf/firewall.bpf.o", "--pin-dir"])
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
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn editor(&self, name: &str, body: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\nset -e\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn table_entries(&self) -> Vec<bpftool::Entry> {
        bpftool::map_dump(&self.pin(TABLE)).unwrap()
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn key_bytes(ip: [u8; 4], ifindex: u8) -> Vec<u8> {
    let mut k = vec![64, 0, 0, 0, ifindex, 0, 0, 0];
    k.extend(ip);
    k.resize(24, 0);
    k
}

const RULE: &str = "key: {prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}\n\
                    value: {rules: [{ruleId: 5, protocol: 6, dstPortStart: 8080, dstPortEnd: 8090, action: 1}]}\n";

fn create_through_the_editor() {
    let Some(fw) = Fw::load("create_through_the_editor") else {
        return;
    };

    // Saved unchanged: abort, nothing written.
    let out = fw
        .cmd(&["create", "--map", TABLE])
        .env("EDITOR", "true")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("aborted"), "{}", stderr(&out));
    assert!(fw.table_entries().is_empty());

    // A failing editor and a missing one are clear errors.
    let out = fw
        .cmd(&["create", "--map", TABLE])
        .env("EDITOR", "false")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("the editor `false` failed"),
        "{}",
        stderr(&out)
    );
    let out = fw.run(&["create", "--map", TABLE]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no editor: set $VISUAL or $EDITOR"),
        "{}",
        stderr(&out)
    );

    // First save has an error: the editor reopens on the user's text with the
    // error on top; the second save fixes it.
    let count = fw.tmp.path().join("count");
    let seen = fw.tmp.path().join("seen");
    let script = fw.editor(
        "fix-on-second.sh",
        &format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             grep -q 'ingress_node_firewall_table_map: lpm_trie' \"$1\" || [ $n -gt 1 ]\n\
             if [ $n -eq 1 ]; then\n\
               sed 's/dstPortEnd: 8090/dstPortEnd: 70000/' > \"$1\" <<'EOF'\n{RULE}EOF\n\
             else\n\
               cp \"$1\" {s}\n\
               sed -i 's/dstPortEnd: 70000/dstPortEnd: 8090/' \"$1\"\n\
             fi\n",
            c = count.display(),
            s = seen.display()
        ),
    );
    let out = fw
        .cmd(&["create", "--map", TABLE])
        .env("EDITOR", &script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&count).unwrap().trim(), "2");
    let reopened = std::fs::read_to_string(&seen).unwrap();
    assert!(
        reopened.starts_with("# ERROR: ingress_node_firewall_table_map.yaml: value.rules[0].dstPortEnd: 70000 does not fit in __u16"),
        "{reopened}"
    );
    assert!(
        reopened.contains("dstPortEnd: 70000"),
        "the user's own text is kept: {reopened}"
    );

    // bpftool reads back exactly the bytes the C program reads.
    let entries = fw.table_entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].key, key_bytes([10, 10, 10, 2], 6));
    let v = entries[0].value.as_ref().unwrap();
    assert_eq!(v.len(), 1200);
    assert_eq!(&v[..12], &[5, 0, 0, 0, 6, 0x90, 0x1f, 0x9a, 0x1f, 0, 0, 1]);
    assert!(v[12..].iter().all(|b| *b == 0));

    // create means "must not exist": the same key again is refused by the kernel.
    let f = fw.tmp.path().join("rule.yaml");
    std::fs::write(&f, RULE).unwrap();
    let out = fw.run(&["create", "--map", TABLE, "-f", f.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("key exists"), "{}", stderr(&out));
    // No scratch files are left behind.
    let left: Vec<_> = std::fs::read_dir(fw.tmp.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("ebpf-sdk-edit"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

fn update_lookup_delete_dump() {
    let Some(fw) = Fw::load("update_lookup_delete_dump") else {
        return;
    };
    let key = "{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}";
    fw.ok(&[
        "update",
        "--map",
        TABLE,
        "--key",
        key,
        "--value",
        "{rules: [{ruleId: 1, protocol: 1, icmpType: 8, action: 2}]}",
    ]);
    let e = bpftool::map_lookup(&fw.pin(TABLE), &key_bytes([10, 10, 10, 2], 6))
        .unwrap()
        .unwrap();
    assert_eq!(
        &e.value.unwrap()[..12],
        &[1, 0, 0, 0, 1, 0, 0, 0, 0, 8, 0, 2]
    );

    let dump = fw.ok(&["dump", "--map", TABLE]);
    let golden = repo().join("crates/cli/tests/golden/dump-table.yaml");
    if std::env::var_os("EBPF_SDK_BLESS").is_some() {
        std::fs::write(&golden, &dump).unwrap();
    }
    assert_eq!(dump, std::fs::read_to_string(&golden).unwrap());
    let looked = fw.ok(&["lookup", "--map", TABLE, "--key", key]);
    assert_eq!(looked, dump);

    // --exist on a missing key, lookup and delete of missing keys.
    let other = "{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.3}";
    let out = fw.run(&[
        "update", "--map", TABLE, "--exist", "--key", other, "--value", "{}",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let out = fw.run(&["lookup", "--map", TABLE, "--key", other]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("key not found"));

    fw.ok(&["delete", "--map", TABLE, "--key", key]);
    assert!(fw.table_entries().is_empty());
    let out = fw.run(&["delete", "--map", TABLE, "--key", key]);
    assert_eq!(code(&out), 1);

    // A prefix longer than the key allows is the kernel's EINVAL, explained.
    let out = fw.run(&[
        "update",
        "--map",
        TABLE,
        "--key",
        "{prefixLen: 200}",
        "--value",
        "{}",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("prefix length 200 is too long"),
        "{}",
        stderr(&out)
    );

    // Per-CPU: one value means every CPU; dump shows each CPU and the total.
    fw.ok(&[
        "update",
        "--map",
        STATS,
        "--key",
        "3",
        "--value",
        "{deny_stats: {packets: 7, bytes: 700}}",
    ]);
    let raw = bpftool::map_lookup(&fw.pin(STATS), &3u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    let ncpus = ebpf_sdk::backend::num_possible_cpus().unwrap();
    assert_eq!(raw.per_cpu.len(), ncpus, "bpftool shows one value per CPU");
    for (_, v) in &raw.per_cpu {
        assert_eq!(&v[16..24], &7u64.to_ne_bytes());
    }
    // A key given twice in one update is refused before anything is written.
    let dup = fw.tmp.path().join("dup.yaml");
    std::fs::write(
        &dup,
        "- key: 4\n  value: {}\n- key: 5\n  value: {}\n- key: 4\n  value: {}\n",
    )
    .unwrap();
    let out = fw.run(&["update", "--map", STATS, "-f", dup.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dup.yaml:5: the same key as"),
        "{}",
        stderr(&out)
    );
    let json = fw.ok(&["lookup", "--map", STATS, "--key", "3", "-o", "jsonl"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["total"]["deny_stats"]["packets"], 7 * ncpus as u64);
    assert_eq!(v["value"].as_array().unwrap().len(), ncpus);
}

fn apply_with_prune_and_dry_run() {
    let Some(fw) = Fw::load("apply_with_prune_and_dry_run") else {
        return;
    };
    let rule = |ip: &str, id: u32, port: u32| {
        format!(
            "- key: {{prefixLen: 64, ingress_ifindex: 6, ip_data: {ip}}}\n  value: {{rules: [{{ruleId: {id}, protocol: 17, dstPortStart: {port}, action: 1}}]}}\n"
        )
    };
    let state = fw.tmp.path().join("state.yaml");
    std::fs::write(
        &state,
        format!(
            "{}{}{}",
            rule("10.0.0.1", 1, 53),
            rule("10.0.0.2", 2, 53),
            rule("10.0.0.3", 3, 53)
        ),
    )
    .unwrap();
    let out = fw.ok(&["apply", "--map", TABLE, "-f", state.to_str().unwrap()]);
    assert!(out.contains("3 written"), "{out}");
    assert_eq!(fw.table_entries().len(), 3);

    // What dump prints applies again, and changes nothing.
    let dumped = fw.tmp.path().join("dump.yaml");
    std::fs::write(&dumped, fw.ok(&["dump", "--map", TABLE])).unwrap();
    let out = fw.ok(&[
        "apply",
        "--map",
        TABLE,
        "-f",
        dumped.to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(
        out.contains("0 added, 0 changed, 0 removed, 3 unchanged (dry run: nothing written)"),
        "{out}"
    );
    // So does JSON Lines.
    let jsonl = fw.tmp.path().join("dump.jsonl");
    std::fs::write(&jsonl, fw.ok(&["dump", "--map", TABLE, "-o", "jsonl"])).unwrap();
    let out = fw.ok(&[
        "apply",
        "--map",
        TABLE,
        "-f",
        jsonl.to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(out.contains("3 unchanged"), "{out}");

    // A new desired state: .1 unchanged, .2 changed, .3 removed, .4 added.
    std::fs::write(
        &state,
        format!(
            "{}{}{}",
            rule("10.0.0.1", 1, 53),
            rule("10.0.0.2", 2, 5353),
            rule("10.0.0.4", 4, 53)
        ),
    )
    .unwrap();
    let before = fw.table_entries();
    let out = fw.ok(&[
        "apply",
        "--map",
        TABLE,
        "-f",
        state.to_str().unwrap(),
        "--prune",
        "--dry-run",
    ]);
    assert!(
        out.contains("1 added, 1 changed, 1 removed, 1 unchanged"),
        "{out}"
    );
    assert!(
        out.contains(
            "- {\"key\":{\"prefixLen\":64,\"ingress_ifindex\":6,\"ip_data\":\"10.0.0.3\"}"
        ),
        "{out}"
    );
    assert_eq!(fw.table_entries(), before, "dry run wrote nothing");

    fw.ok(&[
        "apply",
        "--map",
        TABLE,
        "-f",
        state.to_str().unwrap(),
        "--prune",
    ]);
    let after = fw.table_entries();
    let mut keys: Vec<Vec<u8>> = after.iter().map(|e| e.key.clone()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            key_bytes([10, 0, 0, 1], 6),
            key_bytes([10, 0, 0, 2], 6),
            key_bytes([10, 0, 0, 4], 6)
        ]
    );
    let two = after
        .iter()
        .find(|e| e.key == key_bytes([10, 0, 0, 2], 6))
        .unwrap();
    assert_eq!(&two.value.as_ref().unwrap()[5..7], &5353u16.to_ne_bytes());

    // One bad entry: exit 2, the map is untouched.
    std::fs::write(
        &state,
        format!(
            "{}- key: {{prefixLen: 64, ip_data: 300.1.1.1}}\n  value: {{}}\n",
            rule("10.0.0.9", 9, 1)
        ),
    )
    .unwrap();
    let out = fw.run(&[
        "apply",
        "--map",
        TABLE,
        "-f",
        state.to_str().unwrap(),
        "--prune",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    // The second item starts on line 3; the input is checked before the
    // default backup, so no backup is made.
    assert!(
        stderr(&out).contains("state.yaml:3: key.ip_data"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("backup"), "{}", stderr(&out));
    assert_eq!(fw.table_entries(), after);

    // A state file naming several maps.
    let multi = fw.tmp.path().join("multi.yaml");
    std::fs::write(
        &multi,
        "maps:\n  ingress_node_firewall_statistics_map:\n  - key: 9\n    value: {allow_stats: {packets: 1}}\n  ingress_node_firewall_config_map:\n  - key: 0\n    value: {mode: FW_MODE_AUDIT, name: lab}\n",
    )
    .unwrap();
    let mut c = Command::cargo_bin("ebpf-sdk").unwrap();
    let out = c
        .current_dir(repo())
        .args([
            "apply",
            "--elf",
            "firewall-ebpf/firewall.bpf.o",
            "--pin-dir",
        ])
        .arg(fw.guard.dir())
        .args(["-f", multi.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg = bpftool::map_lookup(
        &fw.pin("ingress_node_firewall_config_map"),
        &0u32.to_ne_bytes(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        &cfg.value.unwrap()[..4],
        &1u32.to_ne_bytes(),
        "mode = FW_MODE_AUDIT"
    );
}

fn describe_and_refuse_a_different_map() {
    let Some(fw) = Fw::load("describe_and_refuse_a_different_map") else {
        return;
    };
    // The kernel's BTF gives the same layout as the object.
    let out = Command::cargo_bin("ebpf-sdk")
        .unwrap()
        .args(["describe", "--pinned"])
        .arg(fw.pin(TABLE))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let described = String::from_utf8(out.stdout).unwrap();
    let live = ebpf_sdk::schema::Document::from_json(&described).unwrap();
    let elf = ebpf_sdk::btf::extract_file(repo().join("firewall-ebpf/firewall.bpf.o")).unwrap();
    let ours = elf.map(TABLE).unwrap();
    let theirs = &live.maps[0];
    assert_eq!(
        theirs.name, TABLE,
        "full name recovered from the kernel's BTF"
    );
    assert_eq!(
        ours.key
            .as_ref()
            .unwrap()
            .layout_difference(theirs.key.as_ref().unwrap(), "key"),
        None
    );
    assert_eq!(
        ours.value
            .as_ref()
            .unwrap()
            .layout_difference(theirs.value.as_ref().unwrap(), "value"),
        None
    );

    // Without --elf/--schema, the kernel's BTF is the schema.
    let mut c = Command::cargo_bin("ebpf-sdk").unwrap();
    let out = c
        .args([
            "update",
            "--pinned",
            fw.pin(TABLE).to_str().unwrap(),
            "--key",
            "{prefixLen: 40, ip_data: 10.0.0.0}",
            "--value",
            "{rules: [{ruleId: 1, action: 2}]}",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fw.table_entries().len(), 1);

    // The table's schema against another map's pin: refused, both shown.
    let out = fw.run(&[
        "update",
        "--map",
        TABLE,
        "--pinned",
        fw.pin("ingress_node_firewall_debug_map").to_str().unwrap(),
        "--key",
        "{}",
        "--value",
        "{}",
    ]);
    assert_eq!(code(&out), 3);
    let err = stderr(&out);
    assert!(err.contains("does not match the schema"), "{err}");
    assert!(
        err.contains("schema: lpm_trie ingress_node_firewall_table_map"),
        "{err}"
    );
    assert!(err.contains("pinned: lru_hash"), "{err}");

    // Same sizes, different layout: a schema whose key member was renamed.
    let mut doc = elf.clone();
    let m = doc.map_mut(TABLE).unwrap();
    if let ebpf_sdk::schema::TypeKind::Struct { members } = &mut m.key.as_mut().unwrap().kind {
        members[0].name = "prefix_len".into();
    }
    let schema = fw.tmp.path().join("edited.json");
    std::fs::write(&schema, doc.to_json_pretty()).unwrap();
    let mut c = Command::cargo_bin("ebpf-sdk").unwrap();
    let out = c
        .args([
            "update",
            "--schema",
            schema.to_str().unwrap(),
            "--map",
            TABLE,
            "--pin-dir",
        ])
        .arg(fw.guard.dir())
        .args(["--key", "{prefix_len: 64}", "--value", "{}"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("key.prefix_len: member `prefix_len` vs `prefixLen`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fw.table_entries().len(), 1, "nothing written");
}

fn backup_restores_and_a_full_map_is_reported() {
    let Some(fw) = Fw::load("backup_restores_and_a_full_map_is_reported") else {
        return;
    };
    let rules = |ips: std::ops::Range<u32>| -> String {
        ips.map(|i| {
            format!(
                "{{\"key\": {{\"prefixLen\": 64, \"ingress_ifindex\": 3, \"ip_data\": \"10.1.{}.{}\"}}, \"value\": {{\"rules\": [{{\"ruleId\": {}, \"protocol\": 6, \"dstPortStart\": {}, \"action\": 1}}]}}}}\n",
                i / 256,
                i % 256,
                i % 100 + 1,
                i % 65536
            )
        })
        .collect()
    };
    let f = fw.tmp.path().join("rules.jsonl");
    std::fs::write(&f, rules(0..40)).unwrap();
    fw.ok(&["apply", "--map", TABLE, "-f", f.to_str().unwrap()]);
    let mut before = fw.table_entries();
    before.sort_by(|a, b| a.key.cmp(&b.key));

    // Prune down to one rule with an explicit backup, then restore from it.
    let backup = fw.tmp.path().join("backup.jsonl");
    std::fs::write(&f, rules(5..6)).unwrap();
    let out = fw.run(&[
        "apply",
        "--map",
        TABLE,
        "-f",
        f.to_str().unwrap(),
        "--prune",
        "--backup",
        backup.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fw.table_entries().len(), 1);
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap().lines().count(),
        40
    );
    fw.ok(&[
        "apply",
        "--map",
        TABLE,
        "-f",
        backup.to_str().unwrap(),
        "--prune",
        "--no-backup",
    ]);
    let mut after = fw.table_entries();
    after.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(after, before, "restored to the identical bytes");

    // --prune without --backup backs up by default, privately, in $TMPDIR.
    let out = fw.run(&[
        "apply",
        "--map",
        TABLE,
        "-f",
        f.to_str().unwrap(),
        "--prune",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let path = err
        .split_whitespace()
        .find(|w| w.contains("ebpf-sdk-backup-"))
        .unwrap_or_else(|| panic!("no backup path in: {err}"));
    let meta = std::fs::metadata(path).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    assert!(path.starts_with(fw.tmp.path().to_str().unwrap()));

    // The table holds 1024 entries: 1100 stop part way, exactly counted,
    // with a machine-readable record.
    std::fs::write(&f, rules(0..1100)).unwrap();
    let report = fw.tmp.path().join("report.json");
    let out = fw.run(&[
        "apply",
        "--map",
        TABLE,
        "-f",
        f.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let in_map = fw.table_entries().len();
    assert_eq!(in_map, 1024);
    // 10.1.0.5 was already there and is rewritten in place: 1023 new keys
    // fill the trie, so the first 1024 entries of the file were written.
    let err = stderr(&out);
    assert!(err.contains("1024 of 1100 entries were written"), "{err}");
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rec[0]["ok"], false);
    assert_eq!(rec[0]["written"], 1024);
    assert_eq!(rec[0]["map"], TABLE);
}

fn ctrl_c_stops_apply_and_says_how_far_it_got() {
    let Some(fw) = Fw::load("ctrl_c_stops_apply_and_says_how_far_it_got") else {
        return;
    };
    // Many entries for the LRU debug map (it never fills up).
    let f = fw.tmp.path().join("many.jsonl");
    let mut text = String::new();
    for i in 0..400_000u32 {
        text.push_str(&format!(
            "{{\"key\": {{\"saddr\": \"10.{}.{}.{}\", \"sport\": {}, \"proto\": 6}}, \"value\": {{}}}}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255,
            i % 60000
        ));
    }
    std::fs::write(&f, text).unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ebpf-sdk"))
        .current_dir(repo())
        .args([
            "apply",
            "--elf",
            "firewall-ebpf/firewall.bpf.o",
            "--pin-dir",
        ])
        .arg(fw.guard.dir())
        .args(["--map", "ingress_node_firewall_debug_map", "-f"])
        .arg(&f)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let written: usize = err
        .split("interrupted; ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no progress in: {err}"));
    // What it says was written is what is in the map.
    let in_map = bpftool::map_dump(&fw.pin("ingress_node_firewall_debug_map"))
        .unwrap()
        .len();
    assert_eq!(in_map, written, "{err}");
}

/// Ethernet + IPv4 + ICMP echo request from `src` (checksums are not
/// checked by the firewall, so they are left zero).
fn icmp_echo(src: [u8; 4]) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00];
    p.extend([0x45, 0, 0, 84, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0]);
    p.extend(src);
    p.extend([10, 0, 0, 1]);
    p.extend([8, 0, 0, 0, 0xbe, 0xef, 0, 1]);
    p.extend(0..56u8);
    p
}

fn events_are_read_and_decoded_with_the_btf_type() {
    let Some(fw) = Fw::load("events_are_read_and_decoded_with_the_btf_type") else {
        return;
    };
    let lo: u32 = std::fs::read_to_string("/sys/class/net/lo/ifindex")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    fw.ok(&[
        "update",
        "--map",
        TABLE,
        "--key",
        &format!("{{prefixLen: 64, ingress_ifindex: {lo}, ip_data: 10.9.8.7}}"),
        "--value",
        "{rules: [{ruleId: 42, protocol: 1, icmpType: 8, action: 1}]}",
    ]);
    let packet = icmp_echo([10, 9, 8, 7]);
    let check = |lines: &[serde_json::Value]| {
        assert_eq!(lines.len(), 2);
        for e in lines {
            assert_eq!(e["ruleId"], 42);
            assert_eq!(e["action"], 1);
            assert_eq!(e["ifId"], lo);
            assert_eq!(e["pktLength"], packet.len());
            let payload = e["payload"].as_str().unwrap();
            assert!(payload.starts_with("0x020000000001"), "{payload}");
        }
    };
    let elf = ["--elf", "firewall-ebpf/firewall.bpf.o"];
    check(&read_events(&fw, &elf, Some("event_hdr_st"), lo, &packet));

    // A schema whose map declares its record type (as `__type(value,
    // struct event_hdr_st)` would): no --type, and no ELF needed.
    let obj = ebpf_sdk::Object::from_elf(repo().join("firewall-ebpf/firewall.bpf.o")).unwrap();
    let mut doc = obj.document().clone();
    doc.map_mut("ingress_node_firewall_events_map")
        .unwrap()
        .record = Some(obj.type_node("event_hdr_st").unwrap());
    let schema = fw.tmp.path().join("with-record.json");
    std::fs::write(&schema, doc.to_json_pretty()).unwrap();
    let with_record = ["--schema", schema.to_str().unwrap()];
    check(&read_events(&fw, &with_record, None, lo, &packet));
}

/// Runs `ebpf-sdk events` on the firewall's events map with `schema`
/// (and `--type record`), sends `packet` through the XDP program twice, and
/// returns the two records it printed.
fn read_events(
    fw: &Fw,
    schema: &[&str],
    record: Option<&str>,
    lo: u32,
    packet: &[u8],
) -> Vec<serde_json::Value> {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("ebpf-sdk"));
    cmd.current_dir(repo())
        .arg("events")
        .args(schema)
        .arg("--pin-dir")
        .arg(fw.guard.dir())
        .args([
            "--map",
            "ingress_node_firewall_events_map",
            "--count",
            "2",
            "--timeout",
            "20",
        ]);
    if let Some(t) = record {
        cmd.args(["--type", t]);
    }
    let mut reader = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the reader has put its rings into the map: it says so on stderr.
    let mut err = std::io::BufReader::new(reader.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut err, &mut first).unwrap();
    assert!(first.contains("reading events on CPUs"), "{first}");
    let prog = ebpf_sdk::backend::Program::open_pinned(
        fw.guard
            .prog_path("xdp_ingress_node_firewall_process")
            .unwrap(),
    )
    .unwrap();
    let mut ctx: Vec<u8> = Vec::new();
    for v in [0u32, packet.len() as u32, 0, lo, 0, 0] {
        ctx.extend(v.to_ne_bytes());
    }
    let run = prog.test_run(packet, Some(&ctx), 2).unwrap();
    assert_eq!(run.retval, 1, "XDP_DROP");
    let out = reader.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(out.status.success(), "{rest}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The fixture object with a queue, a stack, map-in-map and global data,
/// loaded with bpftool into a private bpffs directory (its maps are not
/// pinned by name).
fn queues_stacks_map_in_map_and_global_data() {
    if require_kernel("queues_stacks_map_in_map_and_global_data").is_none() {
        return;
    }
    let dir = ebpf_sdk_testkit::BpffsDir::new("zoo").unwrap();
    let obj = "crates/btf/tests/fixtures/zoo.bpf.o";
    let st = std::process::Command::new("bpftool")
        .current_dir(repo())
        .args(["prog", "loadall", obj])
        .arg(dir.join("progs"))
        .arg("pinmaps")
        .arg(dir.join("maps"))
        .status()
        .unwrap();
    assert!(st.success());
    let run = |sub: &str, map: &str, rest: &[&str]| -> Output {
        let pin = dir.join("maps").join(map);
        let mut a = vec![
            sub,
            "--elf",
            obj,
            "--map",
            map,
            "--pinned",
            pin.to_str().unwrap(),
        ];
        a.extend(rest);
        Command::cargo_bin("ebpf-sdk")
            .unwrap()
            .current_dir(repo())
            .args(&a)
            .output()
            .unwrap()
    };
    let text = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();

    // Queue: update pushes, peek keeps, pop removes, in FIFO order.
    for v in ["5", "6"] {
        let o = run("update", "q", &["--value", v]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(text(&run("peek", "q", &[])), "5\n");
    assert_eq!(text(&run("pop", "q", &[])), "5\n");
    assert_eq!(text(&run("pop", "q", &[])), "6\n");
    let o = run("pop", "q", &[]);
    assert_eq!(code(&o), 1, "an empty queue is `not found`");
    // Stack: LIFO, 64-bit values.
    for v in ["1", "0xffffffffffffffff"] {
        assert!(run("update", "stk", &["--value", v]).status.success());
    }
    assert_eq!(text(&run("pop", "stk", &[])), "18446744073709551615\n");

    // Map-in-map: the value is an inner map, given by its pin.
    let inner = dir.join("inner");
    let st = std::process::Command::new("bpftool")
        .args(["map", "create"])
        .arg(&inner)
        .args([
            "type", "array", "key", "4", "value", "8", "entries", "4", "name", "inner",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let o = run(
        "update",
        "outer",
        &["--key", "2", "--value", inner.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let inner_id = bpftool::map_show(&inner).unwrap()["id"].as_u64().unwrap();
    let o = run("lookup", "outer", &["--key", "2", "-o", "jsonl"]);
    let v: serde_json::Value = serde_json::from_str(text(&o).trim()).unwrap();
    assert_eq!(
        v["value"].as_u64(),
        Some(inner_id),
        "lookup gives the inner map's id"
    );

    // Global data: our name for the .bss map is the kernel's.
    let doc = ebpf_sdk::btf::extract_file(repo().join(obj)).unwrap();
    let bss = doc.maps.iter().find(|m| m.section == ".bss").unwrap();
    let shown = bpftool::map_show(&dir.join("maps/zoo_bss")).unwrap();
    assert_eq!(shown["name"].as_str(), Some(bss.name.as_str()));
    let o = run(
        "update",
        "zoo_bss",
        &["--key", "0", "--value", "{counter_b: 41, buf_c: hello}"],
    );
    // bpftool's pin is zoo_bss, but the map is named zoo.bss (as the kernel
    // names it): the pin's name is not a map name.
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no map named `zoo_bss`"),
        "{}",
        stderr(&o)
    );
    let pin = dir.join("maps/zoo_bss");
    let o = Command::cargo_bin("ebpf-sdk")
        .unwrap()
        .current_dir(repo())
        .args([
            "update",
            "--elf",
            obj,
            "--map",
            &bss.name,
            "--pinned",
            pin.to_str().unwrap(),
        ])
        .args(["--key", "0", "--value", "{counter_b: 41, buf_c: hello}"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let raw = bpftool::map_lookup(&pin, &0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    let v = raw.value.unwrap();
    assert_eq!(&v[..4], &41i32.to_ne_bytes());
    assert_eq!(&v[4..10], b"hello\0");
}

fn dump_into_a_closed_pipe_and_enrich() {
    let Some(fw) = Fw::load("dump_into_a_closed_pipe_and_enrich") else {
        return;
    };
    let f = fw.tmp.path().join("many.yaml");
    let mut text = String::new();
    for i in 0..500 {
        text.push_str(&format!(
            "- key: {{prefixLen: 64, ingress_ifindex: 2, ip_data: 10.2.{}.{}}}\n  value: {{}}\n",
            i / 256,
            i % 256
        ));
    }
    std::fs::write(&f, text).unwrap();
    fw.ok(&["apply", "--map", TABLE, "-f", f.to_str().unwrap()]);
    // `ebpf-sdk dump | head -1` is not an error.
    let bin = assert_cmd::cargo::cargo_bin("ebpf-sdk");
    let out = std::process::Command::new("bash")
        .current_dir(repo())
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' dump --elf firewall-ebpf/firewall.bpf.o --pin-dir '{}' --map {TABLE} -o jsonl | head -1",
            bin.display(),
            fw.guard.dir().display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(&out)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);

    // enrich records a pin path; later commands find the map by it.
    let schema = fw.tmp.path().join("fw.json");
    let o = Command::cargo_bin("ebpf-sdk")
        .unwrap()
        .current_dir(repo())
        .args([
            "extract",
            "--elf",
            "firewall-ebpf/firewall.bpf.o",
            "-o",
            schema.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let set = format!("{TABLE}={}", fw.pin(TABLE).display());
    let o = Command::cargo_bin("ebpf-sdk")
        .unwrap()
        .args([
            "enrich",
            "--schema",
            schema.to_str().unwrap(),
            "--set",
            &set,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::cargo_bin("ebpf-sdk")
        .unwrap()
        .args([
            "lookup",
            "--schema",
            schema.to_str().unwrap(),
            "--map",
            TABLE,
        ])
        .args([
            "--key",
            "{prefixLen: 64, ingress_ifindex: 2, ip_data: 10.2.0.7}",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Without a terminal, enrich does not prompt: it names the flag.
    let o = Command::cargo_bin("ebpf-sdk")
        .unwrap()
        .args(["enrich", "--schema", schema.to_str().unwrap()])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--set NAME=PATH"), "{}", stderr(&o));
}

/// Issue 13 item 2: the global data maps of the corpus's load balancer
/// (`.bss`, `.data`, `.rodata`, `.data.custom`), loaded by bpftool, read and
/// written with nothing but the kernel's BTF: the same value layout as the
/// ELF gives, the bytes bpftool reads back, frozen `.rodata` readable and
/// refused for writes with the reason.
fn global_data_through_the_kernels_btf() {
    if require_kernel("global_data_through_the_kernels_btf").is_none() {
        return;
    }
    let lb = repo().join("crates/btf/tests/fixtures/realworld/lb.bpf.o");
    // bpftool pins every map in a private directory (vip_map is pinned by
    // name), under the firewall lock.
    let guard = FirewallGuard::load(&lb).expect("load lb.bpf.o with bpftool");
    let elf = ebpf_sdk::btf::extract_file(&lb).unwrap();
    let pin = |pinned: &str| guard.map_path(pinned).unwrap().to_path_buf();
    let sdk = |args: &[&str]| -> Output {
        Command::cargo_bin("ebpf-sdk")
            .unwrap()
            .current_dir(repo())
            .args(args)
            .output()
            .unwrap()
    };
    // bpftool's pin names (dots become underscores) and our map names.
    let maps = [
        ("lb_bss", "lb.bss"),
        ("lb_data", "lb.data"),
        ("lb_rodata", "lb.rodata"),
        ("_data_custom", ".data.custom"),
    ];
    for (pinned, name) in maps {
        let p = pin(pinned);
        let out = sdk(&["describe", "--pinned", p.to_str().unwrap()]);
        assert!(out.status.success(), "{pinned}: {}", stderr(&out));
        let live =
            ebpf_sdk::schema::Document::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let (ours, theirs) = (elf.map(name).unwrap(), &live.maps[0]);
        assert_eq!(theirs.name, name, "the kernel's map is {name}");
        assert_eq!(theirs.section, ours.section);
        assert_eq!(theirs.key, ours.key, "{name}: key");
        assert_eq!(
            theirs.value, ours.value,
            "{name}: the same value as from the ELF"
        );
        assert_eq!(
            (theirs.key_size, theirs.value_size, theirs.flags),
            (ours.key_size, ours.value_size, ours.flags)
        );
    }

    // Written through the kernel's BTF alone, with an IPv6 address in the
    // __be32[4]: the bytes bpftool reads are the ones the ELF's codec
    // encodes, and the address is in network order.
    let bss = pin("lb_bss");
    let value = "{last_dst_v6: '2001:db8::1', draining: true, totals: {v1: 5, v2: 7}}";
    let out = sdk(&[
        "update",
        "--pinned",
        bss.to_str().unwrap(),
        "--key",
        "0",
        "--value",
        value,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = bpftool::map_lookup(&bss, &0u32.to_ne_bytes())
        .unwrap()
        .unwrap()
        .value
        .unwrap();
    let codec = ebpf_sdk::EntryCodec::new(elf.map("lb.bss").unwrap(), 1).unwrap();
    let want = codec
        .encode_value(
            &ebpf_sdk::parse_inline(value, "v").unwrap(),
            None,
            &Default::default(),
        )
        .unwrap();
    assert_eq!(got, want);
    assert_eq!(
        &got[..16],
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    );
    assert_eq!(got[16], 1, "draining");
    let out = sdk(&[
        "lookup",
        "--pinned",
        bss.to_str().unwrap(),
        "--key",
        "0",
        "-o",
        "jsonl",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["value"]["totals"]["v2"], 7);
    assert_eq!(shown["value"]["draining"], true);

    // .data.custom through the kernel's BTF, and with the ELF (whose map is
    // named as libbpf names it).
    let custom = pin("_data_custom");
    for schema in [
        vec![],
        vec!["--elf", lb.to_str().unwrap(), "--map", ".data.custom"],
    ] {
        let mut args = vec!["update"];
        args.extend(schema);
        args.extend([
            "--pinned",
            custom.to_str().unwrap(),
            "--key",
            "0",
            "--value",
            "{hc_port: 8080, hc_ports_v6: 'fe80::1'}",
        ]);
        let out = sdk(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let v = bpftool::map_lookup(&custom, &0u32.to_ne_bytes())
            .unwrap()
            .unwrap()
            .value
            .unwrap();
        assert_eq!(&v[..4], &8080u32.to_ne_bytes());
        assert_eq!(&v[4..6], &[0xfe, 0x80]);
        assert_eq!(v[19], 1);
    }

    // .rodata: the kernel froze it; it reads (the object's initial values)
    // and writes are refused with the reason.
    let rodata = pin("lb_rodata");
    let out = sdk(&["dump", "--pinned", rodata.to_str().unwrap(), "-o", "jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let before = bpftool::map_lookup(&rodata, &0u32.to_ne_bytes())
        .unwrap()
        .unwrap()
        .value
        .unwrap();
    let codec = ebpf_sdk::EntryCodec::new(elf.map("lb.rodata").unwrap(), 1).unwrap();
    let decoded: serde_json::Value =
        serde_json::from_str(&codec.decode_value(&before).unwrap().0.to_json()).unwrap();
    assert_eq!(decoded, shown["value"]);
    assert_eq!(shown["value"]["cfg_max_reals"], 4096);
    let out = sdk(&[
        "update",
        "--pinned",
        rodata.to_str().unwrap(),
        "--key",
        "0",
        "--value",
        "{cfg_max_reals: 3}",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("frozen"), "{}", stderr(&out));
    let after = bpftool::map_lookup(&rodata, &0u32.to_ne_bytes())
        .unwrap()
        .unwrap()
        .value
        .unwrap();
    assert_eq!(after, before, "nothing written");
}

/// The restore command an apply printed, taken from its stderr.
fn restore_command(stderr: &str) -> String {
    let start = stderr
        .find("(restore: ")
        .unwrap_or_else(|| panic!("no restore command in: {stderr}"))
        + "(restore: ".len();
    let line = stderr[start..].lines().next().unwrap();
    line.strip_suffix(')').unwrap().to_string()
}

/// Runs a printed command with `sh` from another directory, the binary
/// on PATH.
fn run_printed(command: &str, cwd: &Path) -> Output {
    let bin = assert_cmd::cargo::cargo_bin("ebpf-sdk");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::process::Command::new("sh")
        .args(["-c", command])
        .current_dir(cwd)
        .env("PATH", path)
        .env("TMPDIR", cwd)
        .output()
        .unwrap()
}

fn sorted_dump(pin: &Path) -> Vec<bpftool::Entry> {
    let mut all = bpftool::map_dump(pin).unwrap();
    all.sort_by(|a, b| a.key.cmp(&b.key));
    all
}

/// Issue 13 items 3 and 4: `apply --prune` on a per-CPU array resets the
/// indices the file leaves out to zero (after backing them up, reported
/// as `reset`), and the restore command it prints, run as printed from
/// another directory, brings back the very bytes; with --elf/--pin-dir and
/// with only --pinned (the kernel's BTF).
fn prune_resets_arrays_and_restore_commands_run_as_printed() {
    let Some(fw) = Fw::load("prune_resets_arrays_and_restore_commands_run_as_printed") else {
        return;
    };
    let stats = fw.pin(STATS);
    let entry = |k: u32, packets: u32| {
        format!(
            "- key: {k}\n  value: {{allow_stats: {{packets: {packets}, bytes: {}}}}}\n",
            packets * 100
        )
    };
    let all = fw.tmp.path().join("all.yaml");
    std::fs::write(
        &all,
        format!("{}{}{}", entry(1, 11), entry(2, 12), entry(3, 13)),
    )
    .unwrap();
    fw.ok(&["apply", "--map", STATS, "-f", all.to_str().unwrap()]);
    let before = sorted_dump(&stats);
    let keep = fw.tmp.path().join("keep.yaml");
    std::fs::write(&keep, entry(2, 22)).unwrap();

    // Dry run: the indices to reset, with their values, and nothing written.
    let out = fw.ok(&[
        "apply",
        "--map",
        STATS,
        "-f",
        keep.to_str().unwrap(),
        "--prune",
        "--dry-run",
    ]);
    assert!(out.contains("0 {\"key\":1,"), "{out}");
    assert!(out.contains("0 {\"key\":3,"), "{out}");
    assert!(
        out.contains("0 added, 1 changed, 0 removed, 2 reset, 0 unchanged (dry run"),
        "{out}"
    );
    assert_eq!(sorted_dump(&stats), before, "dry run wrote nothing");

    // For real, with a report: indices 1 and 3 are zero on every CPU.
    let report = fw.tmp.path().join("report.json");
    let out = fw.run(&[
        "apply",
        "--map",
        STATS,
        "-f",
        keep.to_str().unwrap(),
        "--prune",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(": 1 written, 0 deleted, 2 reset to zero"),
        "{text}"
    );
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        (rec[0]["reset"].as_u64(), rec[0]["reset_to_zero"].as_u64()),
        (Some(2), Some(2))
    );
    for e in sorted_dump(&stats) {
        let k = u32::from_ne_bytes(e.key[..4].try_into().unwrap());
        let zero = e.per_cpu.iter().all(|(_, v)| v.iter().all(|b| *b == 0));
        assert_eq!(zero, k != 2, "index {k}: {:?}", e.per_cpu);
    }

    // The printed restore command, run from elsewhere, restores the bytes.
    let cmd = restore_command(&stderr(&out));
    assert!(cmd.starts_with("ebpf-sdk apply --elf /"), "{cmd}");
    assert!(cmd.contains(&format!("--map {STATS} --pinned /")), "{cmd}");
    let elsewhere = tempfile::tempdir().unwrap();
    let restored = run_printed(&cmd, elsewhere.path());
    assert!(restored.status.success(), "{cmd}: {}", stderr(&restored));
    assert_eq!(sorted_dump(&stats), before, "{cmd}");

    // With only --pinned (the kernel's BTF is the schema), on the table.
    let rules = fw.tmp.path().join("rules.yaml");
    std::fs::write(
        &rules,
        "- key: {prefixLen: 64, ingress_ifindex: 4, ip_data: 10.4.0.1}\n  value: {rules: [{ruleId: 1, action: 1}]}\n\
         - key: {prefixLen: 64, ingress_ifindex: 4, ip_data: 10.4.0.2}\n  value: {rules: [{ruleId: 2, action: 2}]}\n",
    )
    .unwrap();
    fw.ok(&["apply", "--map", TABLE, "-f", rules.to_str().unwrap()]);
    let table_before = sorted_dump(&fw.pin(TABLE));
    let one = fw.tmp.path().join("one.yaml");
    std::fs::write(
        &one,
        "- key: {prefixLen: 64, ingress_ifindex: 4, ip_data: 10.4.0.9}\n  value: {rules: [{ruleId: 9, action: 1}]}\n",
    )
    .unwrap();
    let out = Command::cargo_bin("ebpf-sdk")
        .unwrap()
        .current_dir(repo())
        .env("TMPDIR", fw.tmp.path())
        .args(["apply", "--pinned"])
        .arg(fw.pin(TABLE))
        .args(["-f", one.to_str().unwrap(), "--prune"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fw.table_entries().len(), 1);
    let cmd = restore_command(&stderr(&out));
    assert!(cmd.starts_with("ebpf-sdk apply --pinned /"), "{cmd}");
    assert!(!cmd.contains("--elf") && !cmd.contains("--map"), "{cmd}");
    let restored = run_printed(&cmd, elsewhere.path());
    assert!(restored.status.success(), "{cmd}: {}", stderr(&restored));
    assert_eq!(sorted_dump(&fw.pin(TABLE)), table_before, "{cmd}");
}
