//! Another Rust tool using the ebpf-sdk library the way the CLI does: deny
//! ICMP echo from one address on one interface, then print the firewall's
//! per-rule statistics.
//!
//! ```sh
//! # after loading firewall-ebpf/firewall.bpf.o with its maps pinned by name:
//! cargo run -p ebpf-sdk --example block_ping -- --ifindex 6 --source 10.10.10.2
//! cargo run -p ebpf-sdk --example block_ping -- --ifindex 6 --source 10.10.10.2 --pin-dir /sys/fs/bpf/tc/globals
//! ```

use std::path::PathBuf;

use ebpf_sdk::{parse_inline, source, MapHandle, UpdateFlags, Value};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ifindex = None;
    let mut src = None;
    let mut pin_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ifindex" => ifindex = args.next(),
            "--source" => src = args.next(),
            "--pin-dir" => pin_dir = args.next().map(PathBuf::from),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let (Some(ifindex), Some(src)) = (ifindex, src) else {
        return Err("usage: block_ping --ifindex N --source ADDR [--pin-dir DIR]".into());
    };

    let obj = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../firewall-ebpf/firewall.bpf.o"
    );
    let doc = ebpf_sdk::load_document(Some(obj.as_ref()), None)?;

    // The key: the host address (/32 plus the 32 ifindex bits) on one interface.
    let bits = if src.contains(':') { 128 } else { 32 };
    let table = doc.map("ingress_node_firewall_table_map")?;
    let map = MapHandle::open(table, &source::pin_path(table, None, pin_dir.as_deref()))?;
    let key = parse_inline(
        &format!(
            "{{prefixLen: {}, ingress_ifindex: {ifindex}, ip_data: '{src}'}}",
            32 + bits
        ),
        "key",
    )?;
    let proto = if bits == 32 {
        "1, icmpType: 8"
    } else {
        "58, icmpType: 128"
    };
    let value = parse_inline(
        &format!("{{rules: [{{ruleId: 9, protocol: {proto}, action: 1}}]}}"),
        "value",
    )?;
    map.update(&key, &value, UpdateFlags::Any)?;
    println!("denied ICMP echo from {src} on ifindex {ifindex} (rule 9)");

    // Rule 9's counters, summed over CPUs.
    let stats = doc.map("ingress_node_firewall_statistics_map")?;
    let stats = MapHandle::open(stats, &source::pin_path(stats, None, pin_dir.as_deref()))?;
    if let Some(entry) = stats.lookup(&Value::Int(9))? {
        println!(
            "rule 9 so far: {}",
            entry.total.unwrap_or(entry.value).to_json()
        );
    }
    Ok(())
}
