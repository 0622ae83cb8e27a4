//! Kernel tests of perf event arrays: the bundled firewall's DENY events,
//! triggered with `BPF_PROG_TEST_RUN` (no network needed), read through
//! [`PerfEventArray`] and decoded with the SDK's `EventReader` and the
//! `struct event_hdr_st` BTF type from the object.
//!
//! They need root (CAP_BPF + CAP_NET_ADMIN, and CAP_PERFMON for CPU-wide
//! perf events), bpffs and bpftool ([`Need::Kernel`]); without them the
//! harness counts each as ignored, unless `EBPF_SDK_REQUIRE_KERNEL=1`, where
//! it fails.

use std::time::Duration;

use ebpf_sdk::events::{header_type, EventReader, PAYLOAD_FIELD, PAYLOAD_LEN_FIELD};
use ebpf_sdk::Value;
use ebpf_sdk_backend::{
    BackendError, Event, Map, Op, PerfEventArray, PerfOptions, Program, UpdateFlags,
};
use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::{firewall_object, FirewallGuard, PinnedThread};

ebpf_sdk_testkit::harness! {
    deny_events_decode_with_the_btf_header: [Need::Kernel],
    raw_events_outlive_the_callers_map_and_are_removed_on_drop: [
        Need::Kernel,
        Need::Programs(&["taskset"]),
    ],
    bad_setups_are_typed_errors: [Need::Kernel],
}

const PROG: &str = "xdp_ingress_node_firewall_process";
const TABLE: &str = "ingress_node_firewall_table_map";
const EVENTS: &str = "ingress_node_firewall_events_map";
const XDP_PASS: u32 = 2;
const XDP_DROP: u32 = 1;
const FW_ACTION_DENY: u8 = 1;
const RULE_ID: u32 = 7;
const DENIED: [u8; 4] = [10, 9, 8, 7];
const WAIT: Duration = Duration::from_secs(5);

/// Loads the bundled firewall object (a checked-in fixture).
fn firewall() -> FirewallGuard {
    FirewallGuard::load_bundled().expect("load firewall object")
}

/// The loopback device's ifindex: what the program sees as
/// `ctx->ingress_ifindex` when the test run's context names it.
fn lo_ifindex() -> u32 {
    std::fs::read_to_string("/sys/class/net/lo/ifindex")
        .expect("read lo ifindex")
        .trim()
        .parse()
        .expect("lo ifindex is a number")
}

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet + IPv4 + ICMP echo request from `src` to 10.0.0.1 with
/// `payload` bytes of data, checksums included.
fn icmp_echo(src: [u8; 4], payload: usize) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00];
    let total = u16::try_from(20 + 8 + payload).unwrap();
    let mut ip = vec![0x45, 0];
    ip.extend(total.to_be_bytes());
    ip.extend([0x12, 0x34, 0x40, 0x00, 64, 1, 0, 0]); // id, DF, ttl, ICMP, csum
    ip.extend(src);
    ip.extend([10, 0, 0, 1]);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut icmp = vec![8, 0, 0, 0, 0xbe, 0xef, 0, 1]; // echo request, id, seq
    icmp.extend((0..payload).map(|i| i as u8));
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    p.extend(ip);
    p.extend(icmp);
    p
}

/// Writes `{prefixLen 64, ingress_ifindex, ip_data = src}` ->
/// `rules[0] = {ruleId, protocol ICMP, icmpType 8, icmpCode 0, action DENY}`
/// (layout from firewall-ebpf/firewall.h).
fn deny_icmp_echo_from(table: &Map, ifindex: u32, src: [u8; 4]) {
    let mut key = 64u32.to_ne_bytes().to_vec();
    key.extend(ifindex.to_ne_bytes());
    key.extend(src);
    key.resize(24, 0);
    let mut value = vec![0u8; 1200];
    value[0..4].copy_from_slice(&RULE_ID.to_ne_bytes());
    value[4] = 1; // protocol: ICMP
    value[9] = 8; // icmpType: echo request
    value[10] = 0; // icmpCode
    value[11] = FW_ACTION_DENY;
    table.update(&key, &value, UpdateFlags::Any).unwrap();
}

/// A `struct xdp_md` for the test run: the whole buffer is packet data
/// (`data = 0`, `data_end = len`), received on `ifindex`, queue 0.
fn xdp_ctx(len: usize, ifindex: u32) -> Vec<u8> {
    [0, u32::try_from(len).unwrap(), 0, ifindex, 0, 0]
        .iter()
        .flat_map(|v: &u32| v.to_ne_bytes())
        .collect()
}

fn int(v: &Value, field: &str) -> i128 {
    v.get(field)
        .and_then(Value::as_int)
        .unwrap_or_else(|| panic!("no integer {field} in {v}"))
}

fn deny_events_decode_with_the_btf_header() {
    let fw = firewall();
    let ifindex = lo_ifindex();
    let table = Map::open_pinned(fw.map_path(TABLE).unwrap()).unwrap();
    deny_icmp_echo_from(&table, ifindex, DENIED);
    let prog = Program::open_pinned(fw.prog_path(PROG).unwrap()).unwrap();

    let (header, endian) = header_type(&firewall_object(), "struct event_hdr_st").unwrap();
    let mut reader = EventReader::open(fw.map_path(EVENTS).unwrap(), header, endian).unwrap();
    assert!(!reader.cpus().is_empty());

    for (run, payload) in [16usize, 56, 300].into_iter().enumerate() {
        let packet = icmp_echo(DENIED, payload);
        let out = prog
            .test_run(&packet, Some(&xdp_ctx(packet.len(), ifindex)), 1)
            .unwrap();
        assert_eq!(out.retval, XDP_DROP, "run {run}: the DENY rule drops");

        let batch = reader.next_batch(WAIT, 16).unwrap();
        assert_eq!(batch.len(), 1, "run {run}: one event per run: {batch:?}");
        let (cpu, ev) = &batch[0];
        assert!(reader.cpus().contains(cpu));
        assert_eq!(int(ev, "ruleId"), i128::from(RULE_ID));
        assert_eq!(int(ev, "action"), i128::from(FW_ACTION_DENY));
        assert_eq!(int(ev, "ifId"), i128::from(ifindex));
        assert_eq!(int(ev, "pktLength"), packet.len() as i128);

        // The program appends min(len, 256) packet bytes; the kernel pads
        // the raw sample so that 4 + size is a multiple of 8.
        let snap = packet.len().min(256);
        let expected_len = (4 + 8 + snap).next_multiple_of(8) - 4 - 8;
        assert_eq!(int(ev, PAYLOAD_LEN_FIELD), expected_len as i128);
        let hex: String = packet[..snap].iter().map(|b| format!("{b:02x}")).collect();
        let payload_hex = ev.get(PAYLOAD_FIELD).and_then(Value::as_str).unwrap();
        assert!(
            payload_hex.starts_with(&format!("0x{hex}")),
            "run {run}: payload {payload_hex} starts with the packet {hex}"
        );
        assert!(payload_hex[2 + 2 * snap..].bytes().all(|b| b == b'0'));
    }

    // Nothing else arrived.
    assert!(reader.next_batch(Duration::ZERO, 16).unwrap().is_empty());

    // Without a context the test run receives on the loopback device too.
    let packet = icmp_echo(DENIED, 8);
    assert_eq!(prog.test_run(&packet, None, 1).unwrap().retval, XDP_DROP);
    let batch = reader.next_batch(WAIT, 16).unwrap();
    assert_eq!(batch.len(), 1, "{batch:?}");
    assert_eq!(int(&batch[0].1, "ifId"), i128::from(ifindex));

    // repeat = 3 runs the program three times: three events, taken in
    // batches of at most 2.
    let packet = icmp_echo(DENIED, 8);
    let out = prog
        .test_run(&packet, Some(&xdp_ctx(packet.len(), ifindex)), 3)
        .unwrap();
    assert_eq!(out.retval, XDP_DROP);
    let first = reader.next_batch(WAIT, 2).unwrap();
    let second = reader.next_batch(WAIT, 2).unwrap();
    assert_eq!((first.len(), second.len()), (2, 1));

    // Another source passes and emits nothing.
    let other = icmp_echo([10, 9, 8, 6], 8);
    let out = prog
        .test_run(&other, Some(&xdp_ctx(other.len(), ifindex)), 1)
        .unwrap();
    assert_eq!(out.retval, XDP_PASS);
    assert_eq!(out.data, other, "XDP_PASS leaves the packet as it was");
    assert!(reader
        .next_batch(Duration::from_millis(200), 16)
        .unwrap()
        .is_empty());
    assert_eq!(reader.lost(), 0);
}

fn raw_events_outlive_the_callers_map_and_are_removed_on_drop() {
    let fw = firewall();
    // A test run executes the program on this thread's CPU, and each event
    // goes to that CPU's ring. The overflow below fills one ring, and the
    // kernel reports the loss only with the next sample written to the same
    // ring: moving to another CPU in between would hide the LOST record.
    let pin = PinnedThread::to_current_cpu().expect("pin the test to one CPU");
    let ifindex = lo_ifindex();
    let table = Map::open_pinned(fw.map_path(TABLE).unwrap()).unwrap();
    deny_icmp_echo_from(&table, ifindex, DENIED);
    let prog = Program::open_pinned(fw.prog_path(PROG).unwrap()).unwrap();
    let events_pin = fw.map_path(EVENTS).unwrap();

    let map = Map::open_pinned(events_pin).unwrap();
    let mut perf = PerfEventArray::open(
        &map,
        PerfOptions {
            pages_per_cpu: 1,
            ..PerfOptions::default()
        },
    )
    .unwrap();
    assert!(perf.ring_size().is_power_of_two() && perf.ring_size() >= 4096);
    let cpus = perf.cpus();
    // The kernel clears the entries stored through a map file when that
    // file is released; the reader keeps its own reference.
    drop(map);

    let packet = icmp_echo(DENIED, 40);
    let out = prog
        .test_run(&packet, Some(&xdp_ctx(packet.len(), ifindex)), 1)
        .unwrap();
    assert_eq!(out.retval, XDP_DROP);
    let mut got = Vec::new();
    let stats = perf.read_events(WAIT, |e| got.push(e)).unwrap();
    assert_eq!((stats.events, stats.lost, stats.skipped), (1, 0, 0));
    let ev = &got[0];
    assert!(cpus.contains(&ev.cpu));
    assert_eq!(
        ev.cpu,
        pin.cpu(),
        "the event is in the ring of the test's CPU"
    );
    let mut hdr = u16::try_from(ifindex).unwrap().to_ne_bytes().to_vec();
    hdr.extend(u16::try_from(RULE_ID).unwrap().to_ne_bytes());
    hdr.extend([FW_ACTION_DENY, 0]);
    hdr.extend(u16::try_from(packet.len()).unwrap().to_ne_bytes());
    assert_eq!(&ev.data[..8], hdr.as_slice(), "struct event_hdr_st");
    assert_eq!(&ev.data[8..8 + packet.len()], packet.as_slice());
    assert_eq!(
        ev.data.len(),
        (4 + 8 + packet.len()).next_multiple_of(8) - 4
    );

    // More events than one ring holds: the kernel drops the rest and
    // reports how many in a LOST record before the next sample that fits.
    let big = icmp_echo(DENIED, 300);
    let runs = u32::try_from(perf.ring_size() / 280 + 20).unwrap(); // 280-byte records
    prog.test_run(&big, Some(&xdp_ctx(big.len(), ifindex)), runs)
        .unwrap();
    let mut n = 0;
    let on_our_cpu = |e: &Event| assert_eq!(e.cpu, pin.cpu(), "an event in another CPU's ring");
    let stats = perf
        .read_events(WAIT, |e| {
            on_our_cpu(&e);
            n += 1;
        })
        .unwrap();
    assert_eq!(stats.events, n);
    assert!(n > 0 && n < runs as usize, "{stats:?}");
    prog.test_run(&big, Some(&xdp_ctx(big.len(), ifindex)), 1)
        .unwrap();
    let stats = perf
        .read_events(WAIT, |e| {
            on_our_cpu(&e);
            n += 1;
        })
        .unwrap();
    assert_eq!(stats.events, 1, "{stats:?}");
    assert_eq!(n as u64 + stats.lost, u64::from(runs) + 1, "{stats:?}");
    assert_eq!(perf.lost(), stats.lost);

    // Nothing left; a zero timeout does not wait.
    let stats = perf.read_events(Duration::ZERO, |_| ()).unwrap();
    assert_eq!((stats.events, stats.lost), (0, 0));

    drop(perf);
    let map = Map::open_pinned(events_pin).unwrap();
    for cpu in cpus {
        let e = map.delete(&cpu.to_ne_bytes()).unwrap_err();
        assert!(
            matches!(e, BackendError::KeyNotFound { .. }),
            "CPU {cpu}'s entry was removed on drop: {e}"
        );
    }
    // With no ring in the map, the program still drops, and nothing breaks.
    let out = prog
        .test_run(&packet, Some(&xdp_ctx(packet.len(), ifindex)), 1)
        .unwrap();
    assert_eq!(out.retval, XDP_DROP);
}

fn bad_setups_are_typed_errors() {
    let fw = firewall();
    let table = Map::open_pinned(fw.map_path(TABLE).unwrap()).unwrap();
    let e = PerfEventArray::open(&table, PerfOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::WrongMapType {
                op: Op::PerfEventOpen,
                ..
            }
        ),
        "{e}"
    );

    let events = Map::open_pinned(fw.map_path(EVENTS).unwrap()).unwrap();
    for (opts, needle) in [
        (
            PerfOptions {
                pages_per_cpu: 3,
                cpus: None,
            },
            "power of two",
        ),
        (
            PerfOptions {
                pages_per_cpu: 0,
                cpus: None,
            },
            "power of two",
        ),
        (
            PerfOptions {
                pages_per_cpu: 1,
                cpus: Some(vec![]),
            },
            "empty",
        ),
        (
            PerfOptions {
                pages_per_cpu: 1,
                cpus: Some(vec![4096]),
            },
            "not a possible CPU",
        ),
    ] {
        let e = PerfEventArray::open(&events, opts).unwrap_err();
        assert!(matches!(e, BackendError::InvalidPerfOptions { .. }), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        assert!(e.to_string().contains(EVENTS), "names the map pin: {e}");
    }

    // An ifindex no device has.
    let prog = Program::open_pinned(fw.prog_path(PROG).unwrap()).unwrap();
    let packet = icmp_echo(DENIED, 8);
    let e = prog
        .test_run(&packet, Some(&xdp_ctx(packet.len(), 0x7fff_fff0)), 1)
        .unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::Kernel {
                op: Op::TestRun,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
}
