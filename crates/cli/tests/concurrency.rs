//! Concurrent writers lose nothing (issue #8).
//!
//! Two `ebpf-sdk apply` processes write the same 300 keys of the firewall's
//! LPM table, each key with a different 1200-byte value in file A and file
//! B, over and over, while a third process loops `ebpf-sdk dump -o jsonl`
//! and a fourth `bpftool map dump` (an independent reader). Every apply must
//! succeed; every dumped entry must be exactly A's or B's value for its key
//! (no torn entries) and every dump must hold every key once; afterwards
//! every key must hold A's or B's bytes.
//!
//! The same race on the per-CPU statistics map is deliberately not tested:
//! the kernel writes a per-CPU value one CPU slot after another with no lock
//! (`bpf_percpu_array_update`), so a concurrent reader may legitimately see
//! some CPUs' slots from one writer and the rest from the other. An LPM trie
//! update instead builds a new node and swaps it in under RCU, so a reader
//! sees the old value or the new one, never a mix.
//!
//! Without privileges the harness counts it as ignored; it fails instead with
//! `EBPF_SDK_REQUIRE_KERNEL=1`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::{bpftool, require_kernel, FirewallGuard};
use serde_json::{json, Value};

ebpf_sdk_testkit::harness! {
    two_appliers_and_two_dumpers_lose_nothing: [Need::Kernel],
}

const ELF: &str = "firewall-ebpf/firewall.bpf.o";
const TABLE: &str = "ingress_node_firewall_table_map";
const KEYS: usize = 300;
const RULES: usize = 100;
/// How long both writers keep applying (each at least `MIN_ROUNDS` times).
const RACE: Duration = Duration::from_secs(8);
const MIN_ROUNDS: usize = 3;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cli(guard: &FirewallGuard, args: &[&str]) -> Command {
    let mut c = Command::cargo_bin("ebpf-sdk").unwrap();
    c.current_dir(repo())
        .env("NO_COLOR", "1")
        .args(args)
        .args(["--elf", ELF, "--map", TABLE, "--pin-dir"])
        .arg(guard.dir());
    c
}

fn run_ok(mut c: Command, what: &str) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{what} ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Rule `j` of writer `w` (0: A, 1: B) for key `k`: the rule id differs
/// between A and B, between keys and between rules, so a value mixed from
/// two writes shows wherever the mix starts. The other fields are left out
/// (zero) on purpose: the files stay small, so each apply spends a larger
/// share of its time in kernel writes, where the race is.
fn rule_id(w: usize, k: usize, j: usize) -> u32 {
    (w * 1_000_000 + k * 1000 + j + 1) as u32
}

fn action(w: usize) -> u8 {
    [1, 2][w]
}

fn ip(k: usize) -> String {
    format!("10.20.{}.{}", k / 256, k % 256)
}

/// The bytes the C program reads: 100 packed 12-byte rules.
fn value_bytes(w: usize, k: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(RULES * 12);
    for j in 0..RULES {
        v.extend(rule_id(w, k, j).to_ne_bytes());
        v.extend([0; 7]);
        v.push(action(w));
    }
    v
}

fn key_bytes(k: usize) -> Vec<u8> {
    let mut key = vec![
        64,
        0,
        0,
        0,
        7,
        0,
        0,
        0,
        10,
        20,
        (k / 256) as u8,
        (k % 256) as u8,
    ];
    key.resize(24, 0);
    key
}

/// Writer `w`'s JSON Lines file: every key with its value.
fn state_file(dir: &Path, w: usize) -> PathBuf {
    let mut text = String::new();
    for k in 0..KEYS {
        let rules: Vec<Value> = (0..RULES)
            .map(|j| json!({"ruleId": rule_id(w, k, j), "action": action(w)}))
            .collect();
        let line = json!({
            "key": {"prefixLen": 64, "ingress_ifindex": 7, "ip_data": ip(k)},
            "value": {"rules": rules},
        });
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let p = dir.join(format!("{}.jsonl", ["a", "b"][w]));
    std::fs::write(&p, text).unwrap();
    p
}

/// What the readers saw during the race.
#[derive(Default, Debug)]
struct Tally {
    dumps: usize,
    from_a: usize,
    from_b: usize,
    /// Dumps holding values of both writers: a write landed mid-dump.
    mixed: usize,
}

impl Tally {
    /// Adds one dump in which every key was seen once.
    fn add(&mut self, a: usize, b: usize) {
        assert_eq!(a + b, KEYS, "a dump lost keys");
        self.dumps += 1;
        self.from_a += a;
        self.from_b += b;
        if a > 0 && b > 0 {
            self.mixed += 1;
        }
    }
}

/// Checks, field by field, that a `dump -o jsonl` taken while only writer
/// `w`'s values are in the map is exactly those values, and returns its
/// lines by key text (`{"prefixLen":64,...}`).
fn baseline(text: &str, w: usize) -> HashMap<String, String> {
    let mut lines = HashMap::new();
    for line in text.lines() {
        let e: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let ip_data = e["key"]["ip_data"].as_str().unwrap_or_default();
        let k = (0..KEYS)
            .find(|k| ip(*k) == ip_data)
            .unwrap_or_else(|| panic!("unexpected key: {line}"));
        assert_eq!(
            e["key"],
            json!({"prefixLen": 64, "ingress_ifindex": 7, "ip_data": ip(k)})
        );
        let rules = e["value"]["rules"].as_array().expect("a rules list");
        assert_eq!(rules.len(), RULES);
        for (j, r) in rules.iter().enumerate() {
            let want = json!({
                "ruleId": rule_id(w, k, j), "protocol": 0, "dstPortStart": 0,
                "dstPortEnd": 0, "icmpType": 0, "icmpCode": 0, "action": action(w)
            });
            assert_eq!(*r, want, "{}: rule {j}", ip(k));
        }
        let (key_text, _) = split_line(line);
        assert!(lines
            .insert(key_text.to_string(), line.to_string())
            .is_none());
    }
    assert_eq!(lines.len(), KEYS);
    lines
}

/// `{"key":K,"value":V}` -> (`K`, the rest).
fn split_line(line: &str) -> (&str, &str) {
    let rest = line
        .strip_prefix("{\"key\":")
        .unwrap_or_else(|| panic!("{line}"));
    let at = rest.find(",\"value\":").unwrap_or_else(|| panic!("{line}"));
    rest.split_at(at)
}

/// Checks one `ebpf-sdk dump -o jsonl` output taken during the race: every
/// line is, byte for byte, the line A's or B's value gave for that key.
fn check_dump(text: &str, expected: &HashMap<String, [String; 2]>, tally: &mut Tally) {
    let mut seen = HashSet::new();
    let (mut a, mut b) = (0, 0);
    for line in text.lines() {
        let (key, _) = split_line(line);
        let Some([la, lb]) = expected.get(key) else {
            panic!("a key that neither writer wrote: {key}");
        };
        if line == la {
            a += 1;
        } else if line == lb {
            b += 1;
        } else {
            panic!("torn entry: neither A's nor B's value:\n{line}");
        }
        assert!(seen.insert(key), "{key} dumped twice");
    }
    tally.add(a, b);
}

/// The key and value bytes of `bpftool -j map dump`, read by scanning for
/// the byte arrays (parsing the whole document into `serde_json::Value`
/// takes seconds in a debug build; `formatted` holds no `"key":[`).
fn bpftool_entries(text: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    fn bytes_after<'a>(text: &'a str, tag: &str) -> Option<(Vec<u8>, &'a str)> {
        let start = text.find(tag)? + tag.len();
        let end = start + text[start..].find(']')?;
        let bytes = text[start..end]
            .split(',')
            .map(|b| {
                let b = b.trim().trim_matches('"');
                u8::from_str_radix(b.trim_start_matches("0x"), 16)
                    .unwrap_or_else(|_| panic!("not a byte: {b}"))
            })
            .collect();
        Some((bytes, &text[end..]))
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = bytes_after(rest, "\"key\":[") {
        let (value, after) = bytes_after(after, "\"value\":[").expect("a value after a key");
        out.push((key, value));
        rest = after;
    }
    out
}

/// Checks what bpftool read: every key once, with A's or B's exact bytes.
fn check_bytes(entries: &[(Vec<u8>, Vec<u8>)], tally: &mut Tally) {
    let keys: HashMap<Vec<u8>, usize> = (0..KEYS).map(|k| (key_bytes(k), k)).collect();
    let mut seen = HashSet::new();
    let (mut a, mut b) = (0, 0);
    for (key, value) in entries {
        let Some(&k) = keys.get(key) else {
            panic!("a key that neither writer wrote: {key:?}");
        };
        if *value == value_bytes(0, k) {
            a += 1;
        } else if *value == value_bytes(1, k) {
            b += 1;
        } else {
            panic!("torn entry for {}: neither A's nor B's bytes", ip(k));
        }
        assert!(seen.insert(k), "{} read twice", ip(k));
    }
    tally.add(a, b);
}

fn bpftool_dump(pin: &Path) -> String {
    bpftool::run(&["-j", "map", "dump", "pinned", pin.to_str().unwrap()]).unwrap()
}

fn two_appliers_and_two_dumpers_lose_nothing() {
    if require_kernel("two_appliers_and_two_dumpers_lose_nothing").is_none() {
        return;
    }
    let guard = FirewallGuard::load_bundled().expect("load the bundled firewall");
    let pin = guard.dir().join(TABLE);
    let tmp = tempfile::tempdir().unwrap();
    let files = [state_file(tmp.path(), 0), state_file(tmp.path(), 1)];
    let files: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();

    // B, then A, alone: what each looks like in a dump, checked field by
    // field, and the scanner of bpftool's output checked against the
    // testkit's full parse. A stays, so every key exists during the race
    // and every dump must show all of them.
    let mut lines: [HashMap<String, String>; 2] = Default::default();
    for w in [1, 0] {
        run_ok(cli(&guard, &["apply", "-q", "-f", files[w]]), "apply");
        lines[w] = baseline(&run_ok(cli(&guard, &["dump", "-o", "jsonl"]), "dump"), w);
        let mut parsed: Vec<(Vec<u8>, Vec<u8>)> = bpftool::map_dump(&pin)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value.unwrap_or_default()))
            .collect();
        let mut scanned = bpftool_entries(&bpftool_dump(&pin));
        parsed.sort();
        scanned.sort();
        assert!(parsed == scanned, "the bpftool scanner misreads");
        let mut tally = Tally::default();
        check_bytes(&scanned, &mut tally);
        assert_eq!([tally.from_a, tally.from_b][w], KEYS);
    }
    let expected: HashMap<String, [String; 2]> = lines[0]
        .iter()
        .map(|(k, a)| (k.clone(), [a.clone(), lines[1][k].clone()]))
        .collect();

    let t = Instant::now();
    let writers_done = AtomicBool::new(false);
    let start = Barrier::new(4);
    let (sdk, tool) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (guard, files, start) = (&guard, &files, &start);
                s.spawn(move || {
                    start.wait();
                    let began = Instant::now();
                    let mut slowest = Duration::ZERO;
                    let mut round = 0;
                    while round < MIN_ROUNDS || began.elapsed() < RACE {
                        // Every fourth apply of B reads the map first
                        // (--prune): a diff racing the other writer.
                        let mut args = vec!["apply", "-q", "-f", files[w]];
                        if w == 1 && round % 4 == 0 {
                            args.extend(["--prune", "--no-backup"]);
                        }
                        let t = Instant::now();
                        run_ok(cli(guard, &args), &format!("writer {w} round {round}"));
                        slowest = slowest.max(t.elapsed());
                        round += 1;
                    }
                    (round, slowest)
                })
            })
            .collect();
        // `ebpf-sdk dump` reads the LPM trie with one BPF_MAP_LOOKUP_BATCH
        // call; bpftool with a lookup per key, so its reads are spread over
        // its whole run and are likely to straddle a write.
        let sdk_dumper = s.spawn(|| {
            start.wait();
            let mut tally = Tally::default();
            while !writers_done.load(Ordering::Relaxed) {
                let text = run_ok(cli(&guard, &["dump", "-o", "jsonl"]), "dump");
                check_dump(&text, &expected, &mut tally);
            }
            tally
        });
        let tool_dumper = s.spawn(|| {
            start.wait();
            let mut tally = Tally::default();
            while !writers_done.load(Ordering::Relaxed) {
                check_bytes(&bpftool_entries(&bpftool_dump(&pin)), &mut tally);
            }
            tally
        });
        for (w, h) in writers.into_iter().enumerate() {
            let (rounds, slowest) = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            eprintln!("writer {w}: {rounds} applies of {KEYS} entries, slowest {slowest:.2?}");
        }
        writers_done.store(true, Ordering::Relaxed);
        let join = |h: std::thread::ScopedJoinHandle<'_, Tally>| {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        };
        (join(sdk_dumper), join(tool_dumper))
    });
    let took = t.elapsed();
    eprintln!("race took {took:.2?}\n  ebpf-sdk dump: {sdk:?}\n  bpftool dump:  {tool:?}");
    assert!(sdk.dumps > 0 && tool.dumps > 0, "a dumper never ran");
    assert!(
        tool.mixed > 0,
        "no bpftool dump straddled a write: the race was not exercised"
    );

    // Afterwards, every key holds exactly A's or B's bytes.
    let mut last = Tally::default();
    check_bytes(&bpftool_entries(&bpftool_dump(&pin)), &mut last);
    eprintln!(
        "final state: {} keys hold A's value, {} B's",
        last.from_a, last.from_b
    );
    assert!(
        took < Duration::from_secs(60),
        "the race should take seconds, took {took:?}"
    );
}
