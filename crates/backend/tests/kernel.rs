//! Kernel tests: every map type written with this crate and read back with
//! bpftool (an independent reader), and the reverse.
//!
//! They need root (CAP_BPF + CAP_NET_ADMIN), bpffs and bpftool
//! ([`Need::Kernel`]); without them the harness counts each as ignored,
//! unless `EBPF_SDK_REQUIRE_KERNEL=1` (CI), where it fails. Every pin is
//! created in a unique bpffs directory that is removed when the test ends.

use std::collections::BTreeMap;
use std::path::Path;

use ebpf_sdk_backend::{
    percpu, pinned_object_kind, BackendError, Map, MapBackend, MapCreate, MapFlags, MapType,
    ObjectKind, ObjectRef, Program, ReadOnlyReason, UpdateFlags,
};
use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::{bpftool, require_kernel, BpffsDir, FirewallGuard};

ebpf_sdk_testkit::harness! {
    hash_roundtrip_with_bpftool: [Need::Kernel],
    info_matches_bpftool_and_from_id: [Need::Kernel],
    lru_hash_roundtrip_and_eviction: [Need::Kernel],
    array_roundtrip_and_refusals: [Need::Kernel],
    percpu_array_values_per_cpu: [Need::Kernel],
    percpu_hash_values_per_cpu: [Need::Kernel],
    lpm_trie_longest_prefix_match: [Need::Kernel],
    queue_and_stack: [Need::Kernel],
    bloom_filter_push_and_contains: [Need::Kernel],
    map_in_map_by_pin_and_id: [Need::Kernel],
    prog_array_by_pin_and_id: [Need::Kernel],
    frozen_read_only_array: [Need::Kernel],
    read_only_opens_and_flags: [Need::Kernel],
    batch_update_and_lookup_10k: [Need::Kernel],
    batch_overflow_reports_applied_count: [Need::Kernel],
    batch_on_arrays_and_map_in_maps: [Need::Kernel],
    open_errors_are_distinct: [Need::Kernel],
    open_refuses_a_program_pin: [Need::Kernel],
    firewall_lpm_24_byte_key_1200_byte_value: [Need::Kernel],
    trait_object_over_kernel_map: [Need::Kernel],
}

/// A fresh bpffs directory (the harness ran the test: the kernel is there).
macro_rules! kernel_dir {
    ($name:literal) => {{
        require_kernel($name).expect("listed with Need::Kernel");
        BpffsDir::new("be").expect("create bpffs test dir")
    }};
}

fn k(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

fn lpm_key(plen: u32, addr: [u8; 4]) -> Vec<u8> {
    let mut v = plen.to_ne_bytes().to_vec();
    v.extend(addr);
    v
}

/// Loads the bundled firewall object (a checked-in fixture; see
/// firewall-ebpf/Makefile).
fn firewall() -> FirewallGuard {
    FirewallGuard::load_bundled().expect("load firewall object")
}

fn hash_roundtrip_with_bpftool() {
    let dir = kernel_dir!("hash_roundtrip_with_bpftool");
    let pin = dir.join("h");
    let map = MapCreate::new(MapType::Hash, 4, 8, 16)
        .name("be_hash")
        .create_pinned(&pin)
        .unwrap();
    assert_eq!(map.path(), Some(pin.as_path()));

    // Ours -> bpftool.
    map.update(
        &k(1),
        &0x1122_3344_5566_7788u64.to_ne_bytes(),
        UpdateFlags::NoExist,
    )
    .unwrap();
    let e = bpftool::map_lookup(&pin, &k(1))
        .unwrap()
        .expect("bpftool sees the key");
    assert_eq!(e.value.unwrap(), 0x1122_3344_5566_7788u64.to_ne_bytes());

    // bpftool -> ours.
    bpftool::map_update(&pin, &k(2), &[9, 8, 7, 6, 5, 4, 3, 2], "noexist").unwrap();
    assert_eq!(
        map.lookup(&k(2)).unwrap(),
        Some(vec![9, 8, 7, 6, 5, 4, 3, 2])
    );
    assert_eq!(map.lookup(&k(3)).unwrap(), None);

    let mut keys: Vec<_> = map.keys().collect::<Result<_, _>>().unwrap();
    keys.sort();
    assert_eq!(keys, vec![k(1).to_vec(), k(2).to_vec()]);
    assert_eq!(map.entries().count(), 2);

    // Errors users hit.
    let e = map
        .update(&k(1), &[0; 8], UpdateFlags::NoExist)
        .unwrap_err();
    assert!(matches!(e, BackendError::KeyExists { .. }), "{e}");
    let e = map.update(&k(5), &[0; 8], UpdateFlags::Exist).unwrap_err();
    assert!(matches!(e, BackendError::KeyNotFound { .. }), "{e}");
    let e = map.delete(&k(5)).unwrap_err();
    assert!(matches!(e, BackendError::KeyNotFound { .. }), "{e}");
    let e = map.update(&k(5), &[0; 7], UpdateFlags::Any).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::SizeMismatch {
                what: "value",
                expected: 8,
                actual: 7,
                ..
            }
        ),
        "{e}"
    );
    let e = map.lookup(&[0; 5]).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::SizeMismatch {
                what: "key",
                expected: 4,
                actual: 5,
                ..
            }
        ),
        "{e}"
    );

    map.delete(&k(1)).unwrap();
    assert_eq!(bpftool::map_lookup(&pin, &k(1)).unwrap(), None);

    // The same map opened from its pin sees the same data and info.
    let again = Map::open_pinned(&pin).unwrap();
    assert_eq!(again.info(), map.info());
    assert_eq!(
        again.lookup(&k(2)).unwrap(),
        Some(vec![9, 8, 7, 6, 5, 4, 3, 2])
    );
}

fn info_matches_bpftool_and_from_id() {
    let dir = kernel_dir!("info_matches_bpftool_and_from_id");
    let pin = dir.join("m");
    bpftool::map_create(
        &pin,
        "hash",
        8,
        16,
        64,
        "be_info",
        MapFlags::NO_PREALLOC.bits(),
    )
    .unwrap();
    let map = Map::open_pinned(&pin).unwrap();
    let show = bpftool::map_show(&pin).unwrap();
    let info = map.info();
    assert_eq!(u64::from(info.id), show["id"].as_u64().unwrap());
    assert_eq!(info.map_type.name(), show["type"].as_str().unwrap());
    assert_eq!(info.name, show["name"].as_str().unwrap());
    assert_eq!(map.name(), "be_info");
    assert_eq!(
        u64::from(info.map_flags.bits()),
        show["flags"].as_u64().unwrap()
    );
    assert_eq!(info.map_flags.names(), vec!["no_prealloc"]);
    assert_eq!(
        (info.key_size, info.value_size, info.max_entries),
        (8, 16, 64)
    );
    assert_eq!(map.read_only_reason(), None);
    assert_eq!(
        map.btf().unwrap(),
        None,
        "a map created without BTF has none"
    );

    let by_id = Map::from_id(info.id).unwrap();
    assert_eq!(by_id.info(), info);
    assert_eq!(by_id.path(), None);
    let e = Map::from_id(0x7fff_fff0).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::NoSuchId {
                kind: ObjectKind::Map,
                ..
            }
        ),
        "{e}"
    );
}

fn lru_hash_roundtrip_and_eviction() {
    let dir = kernel_dir!("lru_hash_roundtrip_and_eviction");
    let pin = dir.join("lru");
    bpftool::map_create(&pin, "lru_hash", 4, 4, 64, "be_lru", 0).unwrap();
    let map = Map::open_pinned(&pin).unwrap();
    assert_eq!(map.info().map_type, MapType::LruHash);
    map.update(&k(7), &k(70), UpdateFlags::Any).unwrap();
    assert_eq!(
        bpftool::map_lookup(&pin, &k(7))
            .unwrap()
            .unwrap()
            .value
            .unwrap(),
        k(70)
    );
    bpftool::map_update(&pin, &k(8), &k(80), "any").unwrap();
    assert_eq!(map.lookup(&k(8)).unwrap(), Some(k(80).to_vec()));
    // An LRU map never reports full: it evicts.
    for i in 100..1100 {
        map.update(&k(i), &k(i), UpdateFlags::Any).unwrap();
    }
    let n = bpftool::map_dump(&pin).unwrap().len();
    assert!(n <= 64 && n > 0, "{n} entries");
}

fn array_roundtrip_and_refusals() {
    let dir = kernel_dir!("array_roundtrip_and_refusals");
    let pin = dir.join("a");
    bpftool::map_create(&pin, "array", 4, 8, 4, "be_array", 0).unwrap();
    let map = Map::open_pinned(&pin).unwrap();
    map.update(&k(3), &[3; 8], UpdateFlags::Any).unwrap();
    assert_eq!(
        bpftool::map_lookup(&pin, &k(3))
            .unwrap()
            .unwrap()
            .value
            .unwrap(),
        [3; 8]
    );
    bpftool::map_update(&pin, &k(1), &[1; 8], "any").unwrap();
    assert_eq!(map.lookup(&k(1)).unwrap(), Some(vec![1; 8]));
    assert_eq!(
        map.lookup(&k(0)).unwrap(),
        Some(vec![0; 8]),
        "array elements always exist"
    );
    let dump = bpftool::map_dump(&pin).unwrap();
    let ours: Vec<_> = map.entries().collect::<Result<_, _>>().unwrap();
    assert_eq!(ours.len(), 4);
    for (e, (key, value)) in dump.iter().zip(&ours) {
        assert_eq!((&e.key, e.value.as_ref().unwrap()), (key, value));
    }

    let e = map.delete(&k(1)).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::Unsupported {
                errno: libc::EINVAL,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("write zeros with update instead"),
        "{e}"
    );
    let e = map.update(&k(4), &[0; 8], UpdateFlags::Any).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::IndexOutOfRange {
                index: 4,
                max_entries: 4,
                ..
            }
        ),
        "{e}"
    );
    let e = map
        .update(&k(0), &[0; 8], UpdateFlags::NoExist)
        .unwrap_err();
    assert!(matches!(e, BackendError::KeyExists { .. }), "{e}");
}

fn check_per_cpu(pin: &Path, map: &Map, key: &[u8]) {
    let n = map.ncpus();
    assert_eq!(n, percpu::num_possible_cpus().unwrap());
    let vs = map.info().value_size as usize;
    assert_eq!(map.value_buf_len(), percpu::buf_size(vs, n));
    // A different value on every CPU.
    let values: Vec<Vec<u8>> = (0..n)
        .map(|cpu| (0..vs).map(|b| (cpu * 16 + b) as u8 + 1).collect())
        .collect();
    let buf = percpu::join(values.iter().map(Vec::as_slice), vs).unwrap();
    map.update(key, &buf, UpdateFlags::Any).unwrap();
    let e = bpftool::map_lookup(pin, key).unwrap().unwrap();
    assert_eq!(e.per_cpu.len(), n);
    for (cpu, bytes) in &e.per_cpu {
        assert_eq!(bytes, &values[*cpu as usize], "cpu {cpu}");
    }
    let back = map.lookup(key).unwrap().unwrap();
    assert_eq!(
        percpu::split(&back, vs).collect::<Vec<_>>(),
        values.iter().map(Vec::as_slice).collect::<Vec<_>>()
    );

    // bpftool writes one value to every CPU.
    let one: Vec<u8> = (0..vs as u8).map(|b| 0xa0 + b).collect();
    bpftool::map_update(pin, key, &one, "any").unwrap();
    let back = map.lookup(key).unwrap().unwrap();
    assert!(percpu::split(&back, vs).all(|v| v == one), "{back:02x?}");
    assert_eq!(back, percpu::broadcast(&one, n));

    // A single-CPU-sized value is refused before the kernel sees it.
    let e = map.update(key, &one, UpdateFlags::Any).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::SizeMismatch {
                per_cpu: Some(_),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("possible CPUs"), "{e}");
}

fn percpu_array_values_per_cpu() {
    let dir = kernel_dir!("percpu_array_values_per_cpu");
    let pin = dir.join("pca");
    // value_size 12 exercises the 8-byte rounding of per-CPU slots.
    bpftool::map_create(&pin, "percpu_array", 4, 12, 4, "be_pca", 0).unwrap();
    let map = Map::open_pinned(&pin).unwrap();
    check_per_cpu(&pin, &map, &k(2));
}

fn percpu_hash_values_per_cpu() {
    let dir = kernel_dir!("percpu_hash_values_per_cpu");
    let pin = dir.join("pch");
    let map = MapCreate::new(MapType::PercpuHash, 4, 12, 8)
        .name("be_pch")
        .create_pinned(&pin)
        .unwrap();
    check_per_cpu(&pin, &map, &k(42));
    // Batch lookup returns the per-CPU buffers too.
    let all = map.lookup_batch().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all.value_size, map.value_buf_len());
}

fn lpm_trie_longest_prefix_match() {
    let dir = kernel_dir!("lpm_trie_longest_prefix_match");
    let pin = dir.join("lpm");
    let map = MapCreate::new(MapType::LpmTrie, 8, 4, 16)
        .name("be_lpm")
        .flags(MapFlags::NO_PREALLOC)
        .create_pinned(&pin)
        .unwrap();
    map.update(&lpm_key(8, [10, 0, 0, 0]), &k(8), UpdateFlags::Any)
        .unwrap();
    map.update(&lpm_key(24, [10, 1, 2, 0]), &k(24), UpdateFlags::Any)
        .unwrap();

    assert_eq!(
        map.lookup(&lpm_key(32, [10, 1, 2, 3])).unwrap(),
        Some(k(24).to_vec())
    );
    assert_eq!(
        map.lookup(&lpm_key(32, [10, 9, 9, 9])).unwrap(),
        Some(k(8).to_vec())
    );
    assert_eq!(map.lookup(&lpm_key(32, [11, 0, 0, 1])).unwrap(), None);
    // bpftool's lookup goes through the same kernel matching.
    let e = bpftool::map_lookup(&pin, &lpm_key(32, [10, 1, 2, 200]))
        .unwrap()
        .unwrap();
    assert_eq!(e.value.unwrap(), k(24));
    // Reverse: bpftool inserts a /16, ours finds it.
    bpftool::map_update(&pin, &lpm_key(16, [10, 7, 0, 0]), &k(16), "any").unwrap();
    assert_eq!(
        map.lookup(&lpm_key(32, [10, 7, 1, 1])).unwrap(),
        Some(k(16).to_vec())
    );

    // The first get-next-key passes a NULL key; iteration sees all three.
    assert_eq!(map.keys().count(), 3);
    assert_eq!(bpftool::map_dump(&pin).unwrap().len(), 3);

    let e = map
        .update(&lpm_key(33, [10, 0, 0, 1]), &k(0), UpdateFlags::Any)
        .unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::InvalidPrefixLen {
                prefix_len: 33,
                max_prefix_len: 32,
                ..
            }
        ),
        "{e}"
    );

    // Batches work on tries (natively or through the per-element fallback).
    let keys: Vec<u8> = (0..10u8)
        .flat_map(|i| lpm_key(24, [192, 168, i, 0]))
        .collect();
    let values: Vec<u8> = (0..10u32).flat_map(k).collect();
    assert_eq!(
        map.update_batch(&keys, &values, 10, UpdateFlags::Any)
            .unwrap(),
        10
    );
    assert_eq!(map.lookup_batch().unwrap().len(), 13);
    assert_eq!(
        map.lookup(&lpm_key(32, [192, 168, 7, 9])).unwrap(),
        Some(k(7).to_vec())
    );
    // A bad prefix in the middle of a batch: the entries before it are applied.
    let mut keys: Vec<u8> = (0..3u8)
        .flat_map(|i| lpm_key(24, [172, 16, i, 0]))
        .collect();
    keys[16..20].copy_from_slice(&40u32.to_ne_bytes()); // the third key
    let e = map
        .update_batch(&keys, &values[..12], 3, UpdateFlags::Any)
        .unwrap_err();
    assert_eq!(e.applied, 2);
    assert!(
        matches!(
            *e.source,
            BackendError::InvalidPrefixLen { prefix_len: 40, .. }
        ),
        "{}",
        e.source
    );
    assert_eq!(bpftool::map_dump(&pin).unwrap().len(), 15);
}

fn queue_and_stack() {
    let dir = kernel_dir!("queue_and_stack");
    let qpin = dir.join("q");
    let q = MapCreate::new(MapType::Queue, 0, 4, 4)
        .name("be_queue")
        .create_pinned(&qpin)
        .unwrap();
    for i in 1..=3 {
        q.push(&k(i), UpdateFlags::Any).unwrap();
    }
    assert_eq!(bpftool::map_peek(&qpin).unwrap(), Some(k(1).to_vec()));
    bpftool::map_push(&qpin, &k(4)).unwrap();
    let e = q.push(&k(5), UpdateFlags::Any).unwrap_err();
    assert!(
        matches!(e, BackendError::MapFull { max_entries: 4, .. }),
        "{e}"
    );
    q.push(&k(5), UpdateFlags::Exist).unwrap(); // drops the oldest (1)
    assert_eq!(q.peek().unwrap(), Some(k(2).to_vec()));
    for i in 2..=5 {
        assert_eq!(q.pop().unwrap(), Some(k(i).to_vec()));
    }
    assert_eq!(q.pop().unwrap(), None);
    assert_eq!(q.peek().unwrap(), None);
    assert_eq!(bpftool::map_peek(&qpin).unwrap(), None);
    let e = q.next_key(None).unwrap_err();
    assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("use push, pop and peek"), "{e}");

    let spin = dir.join("s");
    bpftool::map_create(&spin, "stack", 0, 4, 4, "be_stack", 0).unwrap();
    let s = Map::open_pinned(&spin).unwrap();
    s.push(&k(1), UpdateFlags::Any).unwrap();
    s.push(&k(2), UpdateFlags::Any).unwrap();
    assert_eq!(bpftool::map_pop(&spin).unwrap(), Some(k(2).to_vec()));
    bpftool::map_push(&spin, &k(3)).unwrap();
    assert_eq!(s.peek().unwrap(), Some(k(3).to_vec()));
    assert_eq!(s.pop().unwrap(), Some(k(3).to_vec()));
    assert_eq!(s.pop().unwrap(), Some(k(1).to_vec()));
    assert_eq!(s.pop().unwrap(), None);
}

fn bloom_filter_push_and_contains() {
    let dir = kernel_dir!("bloom_filter_push_and_contains");
    let pin = dir.join("b");
    let b = MapCreate::new(MapType::BloomFilter, 0, 4, 64)
        .name("be_bloom")
        .create_pinned(&pin)
        .unwrap();
    b.push(&k(11), UpdateFlags::Any).unwrap();
    assert!(b.contains(&k(11)).unwrap());
    // bpftool cannot test membership (its peek takes no value), so the
    // reverse direction is checked: bpftool pushes, ours tests.
    bpftool::map_push(&pin, &k(22)).unwrap();
    assert!(b.contains(&k(22)).unwrap());
    assert!(!b.contains(&k(0xdead_beef)).unwrap());
    let e = b.lookup(&[]).unwrap_err();
    assert!(matches!(e, BackendError::WrongMapType { .. }), "{e}");
    assert_eq!(bpftool::map_show(&pin).unwrap()["type"], "bloom_filter");
}

fn map_in_map_by_pin_and_id() {
    let dir = kernel_dir!("map_in_map_by_pin_and_id");
    let inner_pin = dir.join("inner");
    let inner = MapCreate::new(MapType::Array, 4, 4, 2)
        .name("be_inner")
        .create_pinned(&inner_pin)
        .unwrap();
    let inner2_pin = dir.join("inner2");
    let inner2 = MapCreate::new(MapType::Array, 4, 4, 2)
        .name("be_inner2")
        .create_pinned(&inner2_pin)
        .unwrap();

    let aom_pin = dir.join("aom");
    let aom = MapCreate::new(MapType::ArrayOfMaps, 4, 4, 4)
        .name("be_aom")
        .inner_map(&inner)
        .create_pinned(&aom_pin)
        .unwrap();
    assert_eq!(aom.lookup_id(&k(0)).unwrap(), None, "empty slot");
    aom.update_fd(&k(0), ObjectRef::Pinned(&inner_pin), UpdateFlags::Any)
        .unwrap();
    assert_eq!(aom.lookup_id(&k(0)).unwrap(), Some(inner.info().id));
    // bpftool shows the inner map's id as the value.
    let e = bpftool::map_lookup(&aom_pin, &k(0)).unwrap().unwrap();
    assert_eq!(e.value.unwrap(), inner.info().id.to_ne_bytes());
    // Reverse: bpftool stores inner2, ours reads its id.
    bpftool::map_update_pinned_value(&aom_pin, &k(1), &inner2_pin).unwrap();
    assert_eq!(aom.lookup_id(&k(1)).unwrap(), Some(inner2.info().id));
    aom.delete(&k(1)).unwrap();
    assert_eq!(aom.lookup_id(&k(1)).unwrap(), None);

    let hom_pin = dir.join("hom");
    let hom = MapCreate::new(MapType::HashOfMaps, 4, 4, 4)
        .name("be_hom")
        .inner_map(&inner)
        .create_pinned(&hom_pin)
        .unwrap();
    hom.update_fd(
        &k(77),
        ObjectRef::Id(inner2.info().id),
        UpdateFlags::NoExist,
    )
    .unwrap();
    assert_eq!(hom.lookup_id(&k(77)).unwrap(), Some(inner2.info().id));
    hom.update_fd(
        &k(78),
        ObjectRef::Fd(std::os::fd::AsFd::as_fd(&inner)),
        UpdateFlags::Any,
    )
    .unwrap();
    assert_eq!(bpftool::map_dump(&hom_pin).unwrap().len(), 2);

    // An inner map that does not match the template is rejected with a hint.
    let wrong = MapCreate::new(MapType::Hash, 4, 4, 2)
        .name("be_wrong")
        .create()
        .unwrap();
    let e = aom
        .update_fd(
            &k(2),
            ObjectRef::Fd(std::os::fd::AsFd::as_fd(&wrong)),
            UpdateFlags::Any,
        )
        .unwrap_err();
    assert!(matches!(e, BackendError::Rejected { .. }), "{e}");
    assert!(e.to_string().contains("template"), "{e}");
    let e = inner
        .update_fd(&k(0), ObjectRef::Id(1), UpdateFlags::Any)
        .unwrap_err();
    assert!(matches!(e, BackendError::WrongMapType { .. }), "{e}");
}

fn prog_array_by_pin_and_id() {
    let dir = kernel_dir!("prog_array_by_pin_and_id");
    let fw = firewall();
    let (_, prog_pin) = fw
        .progs()
        .iter()
        .next()
        .expect("the firewall object has a program");
    let prog = Program::open_pinned(prog_pin).unwrap();
    assert!(prog.info().id > 0);
    assert!(!prog.info().map_ids.is_empty(), "the program uses maps");

    let pa_pin = dir.join("progs");
    let pa = MapCreate::new(MapType::ProgArray, 4, 4, 4)
        .name("be_progs")
        .create_pinned(&pa_pin)
        .unwrap();
    pa.update_fd(&k(0), ObjectRef::Pinned(prog_pin), UpdateFlags::Any)
        .unwrap();
    assert_eq!(pa.lookup_id(&k(0)).unwrap(), Some(prog.info().id));
    let e = bpftool::map_lookup(&pa_pin, &k(0)).unwrap().unwrap();
    assert_eq!(e.value.unwrap(), prog.info().id.to_ne_bytes());
    bpftool::map_update_pinned_value(&pa_pin, &k(1), prog_pin).unwrap();
    assert_eq!(pa.lookup_id(&k(1)).unwrap(), Some(prog.info().id));
    pa.update_fd(&k(2), ObjectRef::Id(prog.info().id), UpdateFlags::Any)
        .unwrap();
    assert_eq!(pa.lookup_id(&k(2)).unwrap(), Some(prog.info().id));
    pa.delete(&k(2)).unwrap();
    assert_eq!(pa.lookup_id(&k(2)).unwrap(), None);
    // Clear the program array before the guard unpins the program.
    pa.delete(&k(0)).unwrap();
    pa.delete(&k(1)).unwrap();
}

fn frozen_read_only_array() {
    let dir = kernel_dir!("frozen_read_only_array");
    let pin = dir.join("rodata");
    // Like libbpf's .rodata: read-only for programs, frozen after setup.
    let map = MapCreate::new(MapType::Array, 4, 8, 1)
        .name("be_rodata")
        .flags(MapFlags::RDONLY_PROG)
        .create_pinned(&pin)
        .unwrap();
    let early = Map::open_pinned(&pin).unwrap();
    map.update(&k(0), &[7; 8], UpdateFlags::Any).unwrap();
    assert!(!map.is_frozen());
    map.freeze().unwrap();
    assert!(map.is_frozen());
    assert_eq!(bpftool::map_show(&pin).unwrap()["frozen"], 1);

    let e = map.update(&k(0), &[8; 8], UpdateFlags::Any).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::ReadOnly {
                reason: ReadOnlyReason::Frozen,
                ..
            }
        ),
        "{e}"
    );
    // A handle opened before the freeze learns it from the kernel's EPERM.
    assert_eq!(early.read_only_reason(), None);
    let e = early.update(&k(0), &[8; 8], UpdateFlags::Any).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::ReadOnly {
                reason: ReadOnlyReason::Frozen,
                ..
            }
        ),
        "{e}"
    );
    // A handle opened after the freeze knows before asking.
    let late = Map::open_pinned(&pin).unwrap();
    assert_eq!(late.read_only_reason(), Some(ReadOnlyReason::Frozen));
    // Reads still work, with ours and bpftool.
    assert_eq!(late.lookup(&k(0)).unwrap(), Some(vec![7; 8]));
    assert_eq!(
        bpftool::map_lookup(&pin, &k(0))
            .unwrap()
            .unwrap()
            .value
            .unwrap(),
        [7; 8]
    );
}

fn read_only_opens_and_flags() {
    let dir = kernel_dir!("read_only_opens_and_flags");
    let pin = dir.join("h");
    let map = MapCreate::new(MapType::Hash, 4, 4, 4)
        .name("be_ro")
        .create_pinned(&pin)
        .unwrap();
    map.update(&k(1), &k(1), UpdateFlags::Any).unwrap();
    let ro = Map::open_pinned_read_only(&pin).unwrap();
    assert_eq!(ro.read_only_reason(), Some(ReadOnlyReason::OpenedReadOnly));
    assert_eq!(ro.lookup(&k(1)).unwrap(), Some(k(1).to_vec()));
    let e = ro.delete(&k(1)).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::ReadOnly {
                reason: ReadOnlyReason::OpenedReadOnly,
                ..
            }
        ),
        "{e}"
    );

    let rdonly = MapCreate::new(MapType::Array, 4, 4, 1)
        .name("be_rdonly")
        .flags(MapFlags::RDONLY)
        .create()
        .unwrap();
    let e = rdonly.update(&k(0), &k(1), UpdateFlags::Any).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::ReadOnly {
                reason: ReadOnlyReason::RdonlyFlag,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(rdonly.lookup(&k(0)).unwrap(), Some(vec![0; 4]));
}

fn kv(n: u32) -> (Vec<u8>, Vec<u8>) {
    let keys = (0..n).flat_map(k).collect();
    let values = (0..n)
        .flat_map(|i| (u64::from(i) * 3 + 1).to_ne_bytes())
        .collect();
    (keys, values)
}

fn batch_update_and_lookup_10k() {
    let dir = kernel_dir!("batch_update_and_lookup_10k");
    let pin = dir.join("big");
    let mut map = MapCreate::new(MapType::Hash, 4, 8, 10_000)
        .name("be_batch")
        .create_pinned(&pin)
        .unwrap();
    let (keys, values) = kv(10_000);
    assert_eq!(
        map.update_batch(&keys, &values, 10_000, UpdateFlags::Any)
            .unwrap(),
        10_000
    );

    let all = map.lookup_batch().unwrap();
    assert_eq!(all.len(), 10_000);
    let got: BTreeMap<u32, u64> = all
        .iter()
        .map(|(k, v)| {
            (
                u32::from_ne_bytes(k.try_into().unwrap()),
                u64::from_ne_bytes(v.try_into().unwrap()),
            )
        })
        .collect();
    assert_eq!(got.len(), 10_000);
    assert!(got.iter().all(|(k, v)| *v == u64::from(*k) * 3 + 1));
    assert_eq!(bpftool::map_dump(&pin).unwrap().len(), 10_000);

    // Small batches take many calls and give the same answer.
    map.set_batch_size(333);
    assert_eq!(map.lookup_batch().unwrap().len(), 10_000);

    // Delete half; a missing key stops the batch exactly there.
    assert_eq!(map.delete_batch(&keys[..5000 * 4], 5000).unwrap(), 5000);
    assert_eq!(map.lookup_batch().unwrap().len(), 5000);
    let mut mixed = keys[5000 * 4..5010 * 4].to_vec();
    mixed.extend(k(3)); // deleted above
    mixed.extend(k(5010));
    let e = map.delete_batch(&mixed, 12).unwrap_err();
    assert_eq!((e.applied, e.requested), (10, 12));
    assert!(
        matches!(*e.source, BackendError::KeyNotFound { .. }),
        "{}",
        e.source
    );
    assert_eq!(bpftool::map_dump(&pin).unwrap().len(), 4990);

    // Lookup-and-delete drains the map.
    assert_eq!(map.lookup_and_delete_batch().unwrap().len(), 4990);
    assert_eq!(map.lookup_batch().unwrap().len(), 0);
}

fn batch_overflow_reports_applied_count() {
    let dir = kernel_dir!("batch_overflow_reports_applied_count");
    for (name, flags, batch) in [
        ("pre", MapFlags::NONE, None),
        ("nopre", MapFlags::NO_PREALLOC, None),
        ("small", MapFlags::NONE, Some(128)),
    ] {
        let pin = dir.join(name);
        let mut map = MapCreate::new(MapType::Hash, 4, 8, 1000)
            .name(name)
            .flags(flags)
            .create_pinned(&pin)
            .unwrap();
        if let Some(b) = batch {
            map.set_batch_size(b);
        }
        let (keys, values) = kv(1500);
        let e = map
            .update_batch(&keys, &values, 1500, UpdateFlags::Any)
            .unwrap_err();
        assert_eq!((e.applied, e.requested), (1000, 1500), "{name}");
        assert!(
            matches!(
                *e.source,
                BackendError::MapFull {
                    max_entries: 1000,
                    ..
                }
            ),
            "{name}: {}",
            e.source
        );
        assert!(e.to_string().contains("stopped after 1000 of 1500"), "{e}");
        assert_eq!(bpftool::map_dump(&pin).unwrap().len(), 1000, "{name}");
        // Exactly the first 1000 entries are in.
        assert!(map.lookup(&k(999)).unwrap().is_some() && map.lookup(&k(1000)).unwrap().is_none());
    }
}

fn batch_on_arrays_and_map_in_maps() {
    let dir = kernel_dir!("batch_on_arrays_and_map_in_maps");
    let arr = MapCreate::new(MapType::Array, 4, 8, 100)
        .name("be_barr")
        .create_pinned(dir.join("arr"))
        .unwrap();
    let (keys, values) = kv(100);
    assert_eq!(
        arr.update_batch(&keys, &values, 100, UpdateFlags::Any)
            .unwrap(),
        100
    );
    let all = arr.lookup_batch().unwrap();
    assert_eq!(
        (all.keys.as_slice(), all.values.as_slice()),
        (keys.as_slice(), values.as_slice())
    );
    // Deleting from an array fails on the first element, batch or not.
    let e = arr.delete_batch(&keys[..8], 2).unwrap_err();
    assert_eq!(e.applied, 0);
    assert!(
        matches!(*e.source, BackendError::Unsupported { .. }),
        "{}",
        e.source
    );

    let inner = MapCreate::new(MapType::Array, 4, 4, 1)
        .name("be_binner")
        .create()
        .unwrap();
    let aom = MapCreate::new(MapType::ArrayOfMaps, 4, 4, 4)
        .name("be_baom")
        .inner_map(&inner)
        .create()
        .unwrap();
    let fd = u32::try_from(std::os::fd::AsRawFd::as_raw_fd(&inner)).unwrap();
    let keys: Vec<u8> = (0..4).flat_map(k).collect();
    let values: Vec<u8> = (0..4).flat_map(|_| fd.to_ne_bytes()).collect();
    assert_eq!(
        aom.update_batch(&keys, &values, 4, UpdateFlags::Any)
            .unwrap(),
        4
    );
    let ids: Vec<_> = (0..4).map(|i| aom.lookup_id(&k(i)).unwrap()).collect();
    assert_eq!(ids, vec![Some(inner.info().id); 4]);
}

fn open_errors_are_distinct() {
    let dir = kernel_dir!("open_errors_are_distinct");
    let e = Map::open_pinned(dir.join("missing")).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::PinNotFound {
                bpffs_mounted: true,
                ..
            }
        ),
        "{e}"
    );
    let e = Map::open_pinned("/tmp/ebpf-sdk-no-such-dir/map").unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::PinNotFound {
                bpffs_mounted: false,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("bpffs mounted"), "{e}");
    let e = Map::open_pinned(dir.path()).unwrap_err();
    assert!(matches!(e, BackendError::IsDirectory { .. }), "{e}");
    let file = tempfile::NamedTempFile::new().unwrap();
    let e = Map::open_pinned(file.path()).unwrap_err();
    assert!(matches!(e, BackendError::RegularFile { .. }), "{e}");
    let e = Map::open_pinned("/dev/null").unwrap_err();
    assert!(matches!(e, BackendError::NotOnBpffs { .. }), "{e}");

    // A pinned map is not a program.
    let pin = dir.join("m");
    MapCreate::new(MapType::Hash, 4, 4, 1)
        .name("be_kind")
        .create_pinned(&pin)
        .unwrap();
    assert_eq!(pinned_object_kind(&pin).unwrap(), ObjectKind::Map);
    let e = Program::open_pinned(&pin).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::WrongObjectKind {
                found: ObjectKind::Map,
                expected: ObjectKind::Program,
                ..
            }
        ),
        "{e}"
    );

    // Pinning errors.
    let mut m = MapCreate::new(MapType::Hash, 4, 4, 1)
        .name("be_pin")
        .create()
        .unwrap();
    let e = m.pin(&pin).unwrap_err();
    assert!(matches!(e, BackendError::PinExists { .. }), "{e}");
    let e = m
        .pin(std::env::temp_dir().join("ebpf-sdk-not-bpffs-pin"))
        .unwrap_err();
    assert!(matches!(e, BackendError::NotOnBpffs { .. }), "{e}");
}

fn open_refuses_a_program_pin() {
    let _dir = kernel_dir!("open_refuses_a_program_pin");
    let fw = firewall();
    let (_, prog_pin) = fw.progs().iter().next().expect("a program pin");
    assert_eq!(pinned_object_kind(prog_pin).unwrap(), ObjectKind::Program);
    let e = Map::open_pinned(prog_pin).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::WrongObjectKind {
                found: ObjectKind::Program,
                expected: ObjectKind::Map,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("is a pinned BPF program, not a map"),
        "{e}"
    );
}

fn firewall_lpm_24_byte_key_1200_byte_value() {
    let _dir = kernel_dir!("firewall_lpm_24_byte_key_1200_byte_value");
    let fw = firewall();
    let pin = fw
        .map_path("ingress_node_firewall_table_map")
        .expect("table map pinned");
    let map = Map::open_pinned(pin).unwrap();
    let info = map.info();
    assert_eq!(
        (info.map_type, info.key_size, info.value_size),
        (MapType::LpmTrie, 24, 1200)
    );
    assert_eq!(info.map_flags.names(), vec!["no_prealloc"]);
    assert_eq!(
        map.name(),
        "ingress_node_fi",
        "kernel names are truncated to 15 bytes"
    );
    assert_eq!(info.max_prefix_len(), Some(160));

    // struct lpm_ip_key_st: prefixLen (32 bits of ifindex + /24), ifindex, 10.1.2.0.
    let mut key = (32u32 + 24).to_ne_bytes().to_vec();
    key.extend(7u32.to_ne_bytes());
    key.extend([10, 1, 2, 0]);
    key.extend([0; 12]);
    let value: Vec<u8> = (0..1200u32).map(|i| (i % 251) as u8).collect();
    map.update(&key, &value, UpdateFlags::NoExist).unwrap();
    let e = bpftool::map_lookup(pin, &key)
        .unwrap()
        .expect("bpftool finds the rule");
    assert_eq!(e.key, key);
    assert_eq!(e.value.as_deref(), Some(value.as_slice()));
    assert!(
        e.formatted.is_some(),
        "the map has BTF, so bpftool formats it"
    );
    assert_eq!(map.lookup(&key).unwrap(), Some(value.clone()));

    let e = map.update(&key, &value, UpdateFlags::NoExist).unwrap_err();
    assert!(matches!(e, BackendError::KeyExists { .. }), "{e}");
    let mut bad = key.clone();
    bad[..4].copy_from_slice(&161u32.to_ne_bytes());
    let e = map.update(&bad, &value, UpdateFlags::Any).unwrap_err();
    assert!(
        e.to_string()
            .contains("must be <= (key_size - 4) * 8 = 160"),
        "{e}"
    );

    // Raw BTF for the schema layer.
    let btf = map.btf().unwrap().expect("the firewall maps carry BTF");
    assert_eq!(&btf.bytes[..2], &0xeb9fu16.to_ne_bytes());
    assert!(btf.key_type_id > 0 && btf.value_type_id > 0);
    assert!(!btf.kernel_btf);
    let show = bpftool::json(&["btf", "show", "id", &btf.btf_id.to_string()]).unwrap();
    assert_eq!(show["size"].as_u64(), Some(btf.bytes.len() as u64));

    // Every pin opens; the per-CPU statistics read per CPU; .rodata is frozen.
    for (name, path) in fw.maps() {
        Map::open_pinned(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let stats =
        Map::open_pinned(fw.map_path("ingress_node_firewall_statistics_map").unwrap()).unwrap();
    let v = stats.lookup(&k(1)).unwrap().unwrap();
    assert_eq!(percpu::split(&v, 32).count(), stats.ncpus());
    let events =
        Map::open_pinned(fw.map_path("ingress_node_firewall_events_map").unwrap()).unwrap();
    let e = events.lookup(&k(0)).unwrap_err();
    assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
    if let Some(rodata) = fw.map_path("firewall_rodata") {
        let ro = Map::open_pinned(rodata).unwrap();
        assert_eq!(ro.read_only_reason(), Some(ReadOnlyReason::Frozen));
        let cur = ro.lookup(&k(0)).unwrap().expect(".rodata has one element");
        let e = ro.update(&k(0), &cur, UpdateFlags::Any).unwrap_err();
        assert!(
            matches!(
                e,
                BackendError::ReadOnly {
                    reason: ReadOnlyReason::Frozen,
                    ..
                }
            ),
            "{e}"
        );
    }
}

fn trait_object_over_kernel_map() {
    let dir = kernel_dir!("trait_object_over_kernel_map");
    let map = MapCreate::new(MapType::Hash, 4, 4, 8)
        .name("be_dyn")
        .create_pinned(dir.join("d"))
        .unwrap();
    let backend: &dyn MapBackend = &map;
    backend.update(&k(1), &k(2), UpdateFlags::Any).unwrap();
    assert_eq!(
        backend.entries().collect::<Result<Vec<_>, _>>().unwrap(),
        vec![(k(1).to_vec(), k(2).to_vec())]
    );
    assert_eq!(
        backend.context().path.as_deref(),
        Some(dir.join("d").as_path())
    );
}
