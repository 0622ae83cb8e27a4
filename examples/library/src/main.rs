//! Deny ping (ICMP echo) from one address on one interface with the bundled
//! firewall, then read the rule back: the program's own structs, no YAML.
use std::net::IpAddr;

use ebpf_sdk::{Object, UpdateFlags};
use serde::{Deserialize, Serialize};

/// The firewall's table key, `struct lpm_ip_key_st`.
#[derive(Serialize, Deserialize, Debug)]
struct Key {
    #[serde(rename = "prefixLen")]
    prefix_len: u32, // 32 bits of ifindex, then the address bits
    ingress_ifindex: u32,
    ip_data: IpAddr, // into `__u8[16]`, in network order
}

/// The fields of `struct ruleType_st` this program uses; the rest are zero.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Rule {
    rule_id: u32,
    protocol: u8,  // 1: ICMP
    icmp_type: u8, // 8: echo request
    action: u8,    // 1: DENY, 2: ALLOW
}

/// The table's value, `struct rulesVal_st` (up to 100 rules).
#[derive(Serialize, Deserialize, Debug)]
struct Rules {
    rules: Vec<Rule>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Where the loader pinned the maps by name, and the interface.
    let mut args = std::env::args().skip(1);
    let pin_dir = args.next().unwrap_or_else(|| "/sys/fs/bpf".into());
    let ifindex: u32 = args.next().map_or(Ok(1), |a| a.parse())?;

    let obj = Object::from_elf("firewall-ebpf/firewall.bpf.o")?.with_pin_dir(pin_dir);
    let table = obj.open("ingress_node_firewall_table_map")?; // checked against the BTF
    let key = Key {
        prefix_len: 32 + 32,
        ingress_ifindex: ifindex,
        ip_data: "10.10.10.2".parse()?,
    };
    let deny_ping = Rule { rule_id: 1, protocol: 1, icmp_type: 8, action: 1 };
    table.update_as(&key, &Rules { rules: vec![deny_ping] }, UpdateFlags::Any)?;

    let back: Option<Rules> = table.lookup_as(&key)?;
    println!("{key:?} -> {back:?}");
    Ok(())
}
