//! Another Rust tool using the ebpf-sdk library with its own types: deny ICMP
//! echo from one address on one interface, then print the firewall's
//! per-rule statistics for that rule, summed over CPUs.
//!
//! ```sh
//! # after loading firewall-ebpf/firewall.bpf.o with its maps pinned by name:
//! cargo run -p ebpf-sdk --example block_ping -- --ifindex 6 --source 10.10.10.2
//! cargo run -p ebpf-sdk --example block_ping -- --ifindex 6 --source 10.10.10.2 --pin-dir /sys/fs/bpf/tc/globals
//! ```

use std::net::IpAddr;

use ebpf_sdk::{Object, UpdateFlags};
use serde::{Deserialize, Serialize};

/// `struct lpm_ip_key_st`: an address prefix on an interface.
#[derive(Serialize)]
struct Key {
    #[serde(rename = "prefixLen")]
    prefix_len: u32,
    ingress_ifindex: u32,
    ip_data: IpAddr,
}

/// The fields of `struct ruleType_st` this tool sets.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    rule_id: u32,
    protocol: u8,
    icmp_type: u8,
    action: u8,
}

/// `struct rulesVal_st`.
#[derive(Serialize)]
struct Rules {
    rules: Vec<Rule>,
}

/// `struct ruleStatistics_st`.
#[derive(Deserialize, Debug)]
struct Stats {
    allow_stats: Counters,
    deny_stats: Counters,
}

#[derive(Deserialize, Debug)]
struct Counters {
    packets: u64,
    bytes: u64,
}

const RULE: u32 = 9;
const DENY: u8 = 1;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut ifindex = None;
    let mut src = None;
    let mut pin_dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ifindex" => ifindex = args.next(),
            "--source" => src = args.next(),
            "--pin-dir" => pin_dir = args.next(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let (Some(ifindex), Some(src)) = (ifindex, src) else {
        return Err("usage: block_ping --ifindex N --source ADDR [--pin-dir DIR]".into());
    };
    let src: IpAddr = src.parse()?;

    let elf = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../firewall-ebpf/firewall.bpf.o"
    );
    let mut obj = Object::from_elf(elf)?;
    if let Some(dir) = pin_dir {
        obj = obj.with_pin_dir(dir);
    }

    // The key: the host address (/32 or /128, plus the 32 ifindex bits).
    let (bits, protocol, icmp_type) = match src {
        IpAddr::V4(_) => (32, 1, 8),     // ICMP echo request
        IpAddr::V6(_) => (128, 58, 128), // ICMPv6 echo request
    };
    let key = Key {
        prefix_len: 32 + bits,
        ingress_ifindex: ifindex.parse()?,
        ip_data: src,
    };
    let rule = Rule {
        rule_id: RULE,
        protocol,
        icmp_type,
        action: DENY,
    };
    let table = obj.open("ingress_node_firewall_table_map")?;
    table.update_as(&key, &Rules { rules: vec![rule] }, UpdateFlags::Any)?;
    println!("denied ICMP echo from {src} on ifindex {ifindex} (rule {RULE})");

    let stats = obj.open("ingress_node_firewall_statistics_map")?;
    if let Some(s) = stats.lookup_total_as::<_, Stats>(&RULE)? {
        println!(
            "rule {RULE} so far: denied {} packets ({} bytes), allowed {} packets ({} bytes)",
            s.deny_stats.packets, s.deny_stats.bytes, s.allow_stats.packets, s.allow_stats.bytes
        );
    }
    Ok(())
}
