//! `ebpf-sdk apply --watch` on real maps: it follows in-place edits,
//! editors that write by rename and the atomic `..data` symlink swap of a
//! Kubernetes ConfigMap volume; refills a map replaced at the same pin; keeps
//! the last good state when the file goes bad; stops on SIGTERM, after the
//! batch in flight when one is. Every reconcile is read from its JSON log
//! line; every map content is read back with bpftool.
//!
//! Each test works in its own bpffs directory and temporary directory,
//! removed at the end (also when it fails).

#[path = "common/ops.rs"]
mod ops;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::{require_kernel, BpffsDir};
use ops::{
    contents, create_map, http_get, map_id, schema_file, write_by_rename, write_in_place, Running,
};
use serde_json::Value;

ebpf_sdk_testkit::harness! {
    follows_edits_renames_and_configmap_swaps: [Need::Kernel],
    refills_a_map_replaced_at_its_pin: [Need::Kernel],
    keeps_the_last_good_state_when_the_file_goes_bad: [Need::Kernel],
    stops_on_sigterm_after_the_batch_in_flight: [Need::Kernel, Need::Programs(&["kill"])],
    waits_for_a_missing_map_and_says_so_on_its_probes: [Need::Kernel],
}

const MAP: &str = "wmap";
/// How long one reconcile may take to show up in the log.
const STEP: Duration = Duration::from_secs(15);

/// A bpffs directory with the map pinned as `wmap`, and a temporary
/// directory with its schema.
struct Setup {
    pins: BpffsDir,
    tmp: tempfile::TempDir,
    schema: PathBuf,
}

impl Setup {
    fn new(prefix: &str) -> Setup {
        let _ = require_kernel(prefix).expect("the harness checked");
        let pins = BpffsDir::new(prefix).unwrap();
        create_map(&pins.join(MAP), 1024);
        let tmp = tempfile::tempdir().unwrap();
        let schema = schema_file(tmp.path(), MAP);
        Setup { pins, tmp, schema }
    }

    fn pin(&self) -> PathBuf {
        self.pins.join(MAP)
    }

    /// `ebpf-sdk apply --watch` on `file`; `--map` for a one-map file.
    fn watch(&self, file: &Path, one_map: bool, extra: &[&str]) -> Running {
        let mut args: Vec<&OsStr> = vec![
            "apply".as_ref(),
            "--schema".as_ref(),
            self.schema.as_os_str(),
            "--pin-dir".as_ref(),
            self.pins.path().as_os_str(),
            "-f".as_ref(),
            file.as_os_str(),
            "--prune".as_ref(),
            "--watch".as_ref(),
            "--log-format".as_ref(),
            "json".as_ref(),
            "--pin-check".as_ref(),
            "0.2".as_ref(),
        ];
        if one_map {
            args.extend([OsStr::new("--map"), OsStr::new(MAP)]);
        }
        args.extend(extra.iter().map(|a| OsStr::new(*a)));
        Running::start(&args)
    }
}

/// Entries as a one-map YAML list.
fn entries(pairs: &[(u32, u64)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("- {{key: {k}, value: {v}}}\n"))
        .collect()
}

/// Entries as a state file naming the map.
fn state(pairs: &[(u32, u64)]) -> String {
    let mut s = format!("maps:\n  {MAP}:\n");
    for (k, v) in pairs {
        s.push_str(&format!("    - {{key: {k}, value: {v}}}\n"));
    }
    s
}

fn map_of(pairs: &[(u32, u64)]) -> BTreeMap<u32, u64> {
    pairs.iter().copied().collect()
}

/// Asserts a reconcile log line: its trigger and outcome, and that it
/// names the map's changes when applied.
fn check(r: &Value, trigger: &str, outcome: &str) {
    assert_eq!(r["msg"], "reconcile", "{r}");
    assert_eq!(r["trigger"], trigger, "{r}");
    assert_eq!(r["outcome"], outcome, "{r}");
    assert!(r["duration_s"].as_f64().is_some_and(|d| d >= 0.0), "{r}");
    assert!(r["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{r}");
    if outcome == "applied" {
        assert_eq!(r["maps"][0]["map"], MAP, "{r}");
        assert_eq!(r["maps"][0]["ok"], true, "{r}");
    }
}

fn follows_edits_renames_and_configmap_swaps() {
    let s = Setup::new("wedit");
    let pin = s.pin();

    // A plain file, one map: in-place edits and rename-writes.
    let file = s.tmp.path().join("rules.yaml");
    std::fs::write(&file, entries(&[(1, 10), (2, 20)])).unwrap();
    let mut w = s.watch(&file, true, &[]);
    let r = w.next_reconcile(STEP);
    check(&r, "start", "applied");
    assert_eq!(r["maps"][0]["added"], 2, "{r}");
    assert_eq!(contents(&pin), map_of(&[(1, 10), (2, 20)]));

    write_in_place(&file, &entries(&[(1, 11), (2, 20), (3, 30)]));
    let r = w.next_reconcile(STEP);
    check(&r, "file", "applied");
    assert_eq!(
        [
            &r["maps"][0]["added"],
            &r["maps"][0]["changed"],
            &r["maps"][0]["unchanged"]
        ],
        [1, 1, 1],
        "{r}"
    );
    assert_eq!(contents(&pin), map_of(&[(1, 11), (2, 20), (3, 30)]));

    write_by_rename(&file, &entries(&[(3, 33)]));
    let r = w.next_reconcile(STEP);
    check(&r, "file", "applied");
    assert_eq!(
        r["maps"][0]["removed"], 2,
        "--prune deletes what the file dropped: {r}"
    );
    assert_eq!(contents(&pin), map_of(&[(3, 33)]));
    // Touching the file without changing it is not a reconcile.
    write_in_place(&file, &entries(&[(3, 33)]));
    std::thread::sleep(Duration::from_millis(500));
    let status = w.signal("TERM", Duration::from_secs(5));
    assert!(status.success(), "SIGTERM while idle: exit 0, got {status}");
    let reconciles = w
        .seen()
        .iter()
        .filter(|l| l.contains("\"reconcile\""))
        .count();
    assert_eq!(reconciles, 3, "the unchanged write made no reconcile");

    // A ConfigMap volume as the kubelet lays it out: the file is a symlink
    // through `..data`, which is swapped atomically to a new directory.
    let cm = s.tmp.path().join("configmap");
    std::fs::create_dir(&cm).unwrap();
    let first = cm.join("..2026_12_02_10_00_00.000000001");
    std::fs::create_dir(&first).unwrap();
    std::fs::write(first.join("state.yaml"), state(&[(5, 50)])).unwrap();
    symlink(first.file_name().unwrap(), cm.join("..data")).unwrap();
    symlink("..data/state.yaml", cm.join("state.yaml")).unwrap();
    let mut w = s.watch(&cm.join("state.yaml"), false, &[]);
    let r = w.next_reconcile(STEP);
    check(&r, "start", "applied");
    assert_eq!(contents(&pin), map_of(&[(5, 50)]));

    for (i, pairs) in [[(5u32, 55u64), (6, 60)], [(7, 70), (8, 80)]]
        .iter()
        .enumerate()
    {
        // kubelet's AtomicWriter: write the new directory, point a new
        // symlink at it, rename that over `..data`, remove the old directory.
        let old = std::fs::read_link(cm.join("..data")).unwrap();
        let new = cm.join(format!("..2026_12_02_10_0{}_00.000000001", i + 1));
        std::fs::create_dir(&new).unwrap();
        std::fs::write(new.join("state.yaml"), state(pairs)).unwrap();
        symlink(new.file_name().unwrap(), cm.join("..data_tmp")).unwrap();
        std::fs::rename(cm.join("..data_tmp"), cm.join("..data")).unwrap();
        std::fs::remove_dir_all(cm.join(old)).unwrap();
        let r = w.next_reconcile(STEP);
        check(&r, "file", "applied");
        assert_eq!(
            contents(&pin),
            map_of(pairs),
            "after ConfigMap update {}",
            i + 1
        );
    }
    let status = w.signal("INT", Duration::from_secs(5));
    assert!(status.success(), "SIGINT while idle: exit 0, got {status}");
}

fn refills_a_map_replaced_at_its_pin() {
    let s = Setup::new("wrepl");
    let pin = s.pin();
    let file = s.tmp.path().join("rules.yaml");
    std::fs::write(&file, entries(&[(1, 10), (2, 20)])).unwrap();
    let mut w = s.watch(&file, true, &[]);
    check(&w.next_reconcile(STEP), "start", "applied");
    let old = map_id(&pin);

    // The program was reloaded: a new, empty map at the same pin, put
    // there in one step (pinned beside it, renamed over it).
    let beside = s.pins.join("wmap_new");
    create_map(&beside, 1024);
    let new = map_id(&beside);
    assert_ne!(old, new);
    std::fs::rename(&beside, &pin).unwrap();
    let r = w.next_reconcile(STEP);
    check(&r, "map_replaced", "applied");
    assert_eq!(r["replaced_map"], MAP, "{r}");
    assert_eq!(r["new_id"], new, "{r}");
    assert_eq!(r["old_id"], old, "{r}");
    assert_eq!(contents(&pin), map_of(&[(1, 10), (2, 20)]));

    // The pin gone for a while, then back: applied when it is back.
    std::fs::remove_file(&pin).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    create_map(&pin, 1024);
    let r = w.next_reconcile(STEP);
    check(&r, "map_replaced", "applied");
    assert_eq!(r["old_id"], Value::Null, "no map was pinned before: {r}");
    assert_eq!(contents(&pin), map_of(&[(1, 10), (2, 20)]));
    assert!(w.signal("TERM", Duration::from_secs(5)).success());
}

fn keeps_the_last_good_state_when_the_file_goes_bad() {
    let s = Setup::new("wbad");
    let pin = s.pin();
    let file = s.tmp.path().join("rules.yaml");
    let good = [(1, 10), (2, 20)];
    std::fs::write(&file, entries(&good)).unwrap();
    let mut w = s.watch(&file, true, &[]);
    check(&w.next_reconcile(STEP), "start", "applied");

    // Entry 2 of the new file does not fit: nothing of it is written.
    write_in_place(&file, "- {key: 1, value: 99}\n- {key: 3, value: -5}\n");
    let r = w.next_reconcile(STEP);
    check(&r, "file", "bad_file");
    assert_eq!(r["level"], "warn", "{r}");
    let err = r["error"].as_str().unwrap();
    assert!(
        err.contains("rules.yaml") && err.contains("-5") && err.contains("__u64"),
        "the error names the file and the value: {err}"
    );
    assert_eq!(r["restored_last_good"], false, "{r}");
    assert_eq!(contents(&pin), map_of(&good), "the last good state stays");

    // A file that is not even YAML: the same.
    write_in_place(&file, "- {key: 1, value: [unclosed\n");
    let r = w.next_reconcile(STEP);
    check(&r, "file", "bad_file");
    assert_eq!(contents(&pin), map_of(&good));

    // The map is replaced while the file is bad: the new map gets the last
    // good state, not nothing and not the bad file.
    std::fs::remove_file(&pin).unwrap();
    create_map(&pin, 1024);
    let r = w.next_reconcile(STEP);
    check(&r, "map_replaced", "bad_file");
    assert_eq!(r["restored_last_good"], true, "{r}");
    assert_eq!(contents(&pin), map_of(&good));

    // Fixed: applied.
    write_by_rename(&file, &entries(&[(1, 99), (3, 5)]));
    let r = w.next_reconcile(STEP);
    check(&r, "file", "applied");
    assert_eq!(contents(&pin), map_of(&[(1, 99), (3, 5)]));
    assert!(w.signal("TERM", Duration::from_secs(5)).success());
}

fn stops_on_sigterm_after_the_batch_in_flight() {
    let s = Setup::new("wterm");
    // A map large enough that an apply takes a while, written in batches
    // of 4096 entries.
    const N: u32 = 200_000;
    let pin = s.pins.join("big");
    std::fs::remove_file(s.pin()).unwrap();
    create_map(&pin, N);
    let schema = s.tmp.path().join("big.schema.json");
    let text = std::fs::read_to_string(&s.schema)
        .unwrap()
        .replace("\"wmap\"", "\"big\"")
        .replace("\"max_entries\": 1024", &format!("\"max_entries\": {N}"));
    std::fs::write(&schema, text).unwrap();
    let file = s.tmp.path().join("big.jsonl");
    let lines: String = (0..N)
        .map(|i| format!("{{\"key\":{i},\"value\":{}}}\n", u64::from(i) * 3))
        .collect();
    std::fs::write(&file, lines).unwrap();
    let args: Vec<&OsStr> = vec![
        "apply".as_ref(),
        "--schema".as_ref(),
        schema.as_os_str(),
        "--pin-dir".as_ref(),
        s.pins.path().as_os_str(),
        "--map".as_ref(),
        "big".as_ref(),
        "-f".as_ref(),
        file.as_os_str(),
        "--watch".as_ref(),
        "--log-format".as_ref(),
        "json".as_ref(),
    ];
    let mut w = Running::start(&args);
    // SIGTERM as soon as the first batch is in the map (entries are written
    // in input order, key 0 first): most likely while later batches are
    // being written.
    let first = Instant::now();
    while ebpf_sdk_testkit::bpftool::map_lookup(&pin, &0u32.to_le_bytes())
        .unwrap()
        .is_none()
    {
        assert!(
            first.elapsed() < Duration::from_secs(60),
            "no write started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let t = Instant::now();
    let status = w.signal("TERM", Duration::from_secs(20));
    eprintln!("stopped {:?} after SIGTERM with {status}", t.elapsed());
    let in_map = bpf_count(&pin);
    let last: Value = w
        .seen()
        .iter()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("a reconcile log line");
    match status.code() {
        Some(130) => {
            // Cut short: whole batches were written, and the log says how many.
            assert_eq!(last["outcome"], "interrupted", "{last}");
            let written = last["maps"][0]["written"].as_u64().unwrap();
            assert_eq!(written % 4096, 0, "whole batches: {last}");
            assert!(written < u64::from(N), "{last}");
            assert_eq!(in_map, written, "the map holds what the log says");
            eprintln!("interrupted after {written} of {N} entries (whole batches of 4096)");
        }
        Some(0) => {
            // The apply finished before the signal: all of it is there.
            assert_eq!(last["outcome"], "applied", "{last}");
            assert_eq!(in_map, u64::from(N));
            eprintln!("the apply of {N} entries finished before SIGTERM arrived");
        }
        other => panic!("exit {other:?} after SIGTERM: {:?}", w.seen()),
    }
}

/// The number of entries in the map, counted by bpftool.
fn bpf_count(pin: &Path) -> u64 {
    ebpf_sdk_testkit::bpftool::map_dump(pin).unwrap().len() as u64
}

fn waits_for_a_missing_map_and_says_so_on_its_probes() {
    let s = Setup::new("wmiss");
    let pin = s.pin();
    std::fs::remove_file(&pin).unwrap();
    let file = s.tmp.path().join("rules.yaml");
    std::fs::write(&file, entries(&[(4, 40)])).unwrap();
    let mut w = s.watch(&file, true, &["--listen", "127.0.0.1:0"]);
    let addr = w.wait_line(STEP, |l| {
        let url = l.split("http://").nth(1)?;
        Some(url.split('/').next()?.to_string())
    });
    // Nothing pinned yet: the reconcile fails, the pod would not be ready.
    let r = w.next_reconcile(STEP);
    check(&r, "start", "failed");
    assert_eq!(r["level"], "error", "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains(&pin.display().to_string()),
        "{r}"
    );
    let (status, _, body) = http_get(&addr, "/readyz", None);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no BPF object is pinned"), "{body}");
    assert_eq!(http_get(&addr, "/healthz", None).0, 200);

    // The program comes up and pins its map: applied at once.
    create_map(&pin, 1024);
    let r = w.next_reconcile(STEP);
    check(&r, "map_replaced", "applied");
    assert_eq!(contents(&pin), map_of(&[(4, 40)]));
    assert_eq!(http_get(&addr, "/readyz", None).0, 200);

    // A bad file: still ready (the map keeps the last good state), and the
    // counters say what happened.
    write_in_place(&file, "- {key: 4, value: 40, extra: 1}\n");
    check(&w.next_reconcile(STEP), "file", "bad_file");
    assert_eq!(http_get(&addr, "/readyz", None).0, 200);
    let (_, _, metrics) = http_get(&addr, "/metrics", None);
    for line in [
        "ebpf_sdk_reconciles_total{outcome=\"applied\"} 1",
        "ebpf_sdk_reconciles_total{outcome=\"bad_file\"} 1",
        "ebpf_sdk_reconciles_total{outcome=\"failed\"} 1",
        "ebpf_sdk_state_file_valid 0",
        "ebpf_sdk_watch_ready 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    assert!(w.signal("TERM", Duration::from_secs(5)).success());
}
