//! `Object` without a kernel: where maps are pinned (libbpf's and
//! iproute2's pinning modes) and which record type `events` uses.

use std::path::{Path, PathBuf};

use ebpf_sdk::schema::Pinning;
use ebpf_sdk::{default_pin_path, Object, SdkError};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../btf/tests/fixtures/realworld")
        .join(name)
}

/// iproute2's pinning modes resolve as iproute2 pins them; `--pin-dir`
/// and recorded pin paths come first.
#[test]
fn iproute2_maps_are_found_where_tc_pins_them() {
    let obj = Object::from_elf(fixture("iproute2.bpf.o")).unwrap();
    let pin = |name: &str| obj.pin_path(name).unwrap();
    assert_eq!(
        pin("tc_counters"),
        Path::new("/sys/fs/bpf/tc/globals/tc_counters")
    );
    // PIN_OBJECT_NS: the directory is the object file's SHA-1 (sha1sum
    // computes it independently).
    let out = std::process::Command::new("sha1sum")
        .arg(fixture("iproute2.bpf.o"))
        .output()
        .unwrap();
    let sum = String::from_utf8(out.stdout).unwrap();
    let sum = sum.split_whitespace().next().unwrap().to_string();
    assert_eq!(
        pin("tc_config"),
        Path::new("/sys/fs/bpf/tc").join(&sum).join("tc_config")
    );
    assert_eq!(pin("tc_scratch"), Path::new("/sys/fs/bpf/tc_scratch"));
    // A pin directory given explicitly holds every map by name.
    let there = obj.clone().with_pin_dir("/tmp/x");
    assert_eq!(
        there.pin_path("tc_counters").unwrap(),
        Path::new("/tmp/x/tc_counters")
    );
    // libbpf's by-name pinning.
    let lb = Object::from_elf(fixture("lb.bpf.o")).unwrap();
    assert_eq!(lb.map("vip_map").unwrap().pinning, Pinning::ByName);
    assert_eq!(
        lb.pin_path("vip_map").unwrap(),
        Path::new("/sys/fs/bpf/vip_map")
    );
}

/// Custom iproute2 pinning values name a sub directory in iproute2's
/// `bpf_pinning` file; a value no file maps, a directory leaving the mount
/// and an object id that is not a SHA-1 are refused with the reason.
#[test]
fn custom_pinning_values_come_from_the_pinning_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bpf_pinning");
    std::fs::write(
        &file,
        "# id   subpath\n3\ttracing\n0x10 tc/cls1 # hex\n5 ../escape\n",
    )
    .unwrap();
    let files = [file.to_str().unwrap()];
    let mut m = Object::from_elf(fixture("iproute2.bpf.o"))
        .unwrap()
        .map("tc_counters")
        .unwrap()
        .clone();
    let root = Path::new("/mnt/bpf");
    let at = |m: &ebpf_sdk::MapSchema| default_pin_path(m, root, &files);
    m.pinning = Pinning::Custom(3);
    assert_eq!(at(&m).unwrap(), Path::new("/mnt/bpf/tracing/tc_counters"));
    m.pinning = Pinning::Custom(16);
    assert_eq!(at(&m).unwrap(), Path::new("/mnt/bpf/tc/cls1/tc_counters"));
    for (value, _) in [(5, "leaves the mount"), (7, "not in the file")] {
        m.pinning = Pinning::Custom(value);
        let e = at(&m).unwrap_err();
        assert!(matches!(e, SdkError::Pinning { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "tc_counters: pinning {value} is a custom iproute2 pinning, and no sub \
                 directory is given for it in {}; give the pin path (--pinned)",
                file.display()
            )
        );
    }
    m.pinning = Pinning::ObjectNs("../../etc".into());
    assert_eq!(
        at(&m).unwrap_err().to_string(),
        "tc_counters: object_ns names the object `../../etc`, which is not a SHA-1 in hex"
    );
}

/// `events` uses the record type a perf event array declares; without one
/// and without a type named, it says what to do.
#[test]
fn events_use_the_declared_record_type() {
    let obj = Object::from_elf(fixture("lb.bpf.o")).unwrap();
    let e = obj.events_at("events", "/nonexistent", None).unwrap_err();
    assert!(matches!(e, SdkError::NoRecordType { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "events: the map declares no record type (`__type(value, struct event)`); name the \
         type of the records the program sends (`ebpf-sdk events --type NAME`)"
    );
    assert_eq!(e.class(), ebpf_sdk::ErrorClass::Input);
    // With a declared record the reader is opened (and fails only on the
    // missing pin, after the type was settled).
    let obj = Object::from_elf(fixture("addrs.bpf.o")).unwrap();
    let e = obj
        .events_at("sample_events", "/nonexistent/pin", None)
        .unwrap_err();
    assert!(matches!(e, SdkError::Backend(_)), "{e}");
    assert!(e.to_string().contains("/nonexistent/pin"), "{e}");
}
