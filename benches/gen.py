#!/usr/bin/env python3
"""Write the entries of benches/run.sh as an input file.

Entry i (0-based) of every workload, also generated in memory by c_batch.c
(keep the two in step). The flat shape (--shape flat, the default):

  key   struct lpm_ip_key_st  prefixLen 64, ingress_ifindex IFINDEX,
                              ip_data = IPv4 10.0.0.0 + i (network order), rest 0
  value struct bench_val      ruleId i + 1, action 1 + i % 2, pad 0,
                              counters[j] = i * 11 + j

The rich shape (--shape rich), about 900 bytes of JSON an entry:

  key   struct lpm_ip_key_st  prefixLen 160, ingress_ifindex IFINDEX,
                              ip_data = IPv6 fd00:0:0:1:: + i (i in the last 4 bytes)
  value struct bench_rules    rules[j], j = 0..7: ruleId 8 i + j + 1,
                              protocol PROTOS[(i + j) % 4], action 1 + (i + j) % 2,
                              dstPortStart (7 i + 1000 j) % 65000,
                              dstPortEnd dstPortStart + 50 j, priority 100 (j + 1)

Formats:
  jsonl      one {"key": .., "value": ..} per line, as `ebpf-sdk dump -o jsonl` prints
  yaml       a YAML list in block style, as `ebpf-sdk dump -o yaml` prints
  yaml-docs  one flow-style `key:`/`value:` document per entry, separated by `---`
  bpftool    `map update pinned PIN key hex .. value hex ..` lines for `bpftool batch file`

Usage: gen.py FORMAT COUNT OUT [--shape flat|rich] [--pin PATH] [--ifindex N]
"""

import argparse
import ipaddress
import struct
import sys

BASE_ADDR = 0x0A000000  # 10.0.0.0
PREFIX_LEN = 64  # 32 bits of ifindex + a /32 IPv4 address
COUNTERS = 11


def ip(i):
    a = BASE_ADDR + i
    return f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"


def counters(i):
    return [i * COUNTERS + j for j in range(COUNTERS)]


RICH_PREFIX_LEN = 160  # 32 bits of ifindex + a /128 IPv6 address
RULES = 8
PROTOS = (6, 17, 1, 58)
# fd00:0:0:1::, so bytes 4.. are never all zero (dump shows those as IPv4).
V6_BASE = (0xFD00 << 112) | (1 << 64)


def ip6(i):
    return ipaddress.IPv6Address(V6_BASE + i).compressed


def rules(i):
    """(ruleId, protocol, action, dstPortStart, dstPortEnd, priority) of each rule."""
    out = []
    for j in range(RULES):
        start = (7 * i + 1000 * j) % 65000
        out.append((8 * i + j + 1, PROTOS[(i + j) % 4], 1 + (i + j) % 2, start, start + 50 * j, 100 * (j + 1)))
    return out


RULE_FIELDS = ("ruleId", "protocol", "action", "dstPortStart", "dstPortEnd", "priority")


def rich_jsonl(i, ifindex):
    rs = ",".join("{" + ",".join(f'"{n}":{v}' for n, v in zip(RULE_FIELDS, r)) + "}" for r in rules(i))
    return (
        f'{{"key":{{"prefixLen":{RICH_PREFIX_LEN},"ingress_ifindex":{ifindex},"ip_data":"{ip6(i)}"}},'
        f'"value":{{"rules":[{rs}]}}}}\n'
    )


def yaml_ip6(i):
    """The address as a plain YAML scalar, quoted where it ends in `:`."""
    t = ip6(i)
    return f"'{t}'" if t.endswith(":") else t


def rich_yaml_block(i, ifindex):
    rs = "".join(
        "    - " + "      ".join(f"{n}: {v}\n" for n, v in zip(RULE_FIELDS, r)) for r in rules(i)
    )
    return (
        f"- key:\n    prefixLen: {RICH_PREFIX_LEN}\n    ingress_ifindex: {ifindex}\n"
        f"    ip_data: {yaml_ip6(i)}\n  value:\n    rules:\n{rs}"
    )


def rich_yaml_doc(i, ifindex):
    rs = ", ".join("{" + ", ".join(f"{n}: {v}" for n, v in zip(RULE_FIELDS, r)) + "}" for r in rules(i))
    return (
        f"---\nkey: {{prefixLen: {RICH_PREFIX_LEN}, ingress_ifindex: {ifindex}, ip_data: '{ip6(i)}'}}\n"
        f"value: {{rules: [{rs}]}}\n"
    )


RULE = struct.Struct("<IBBHHH")


def rich_bpftool_line(i, ifindex, pin):
    k = struct.pack("<II", RICH_PREFIX_LEN, ifindex) + (V6_BASE + i).to_bytes(16, "big")
    v = b"".join(RULE.pack(*r) for r in rules(i))
    return f"map update pinned {pin} key hex {k.hex(' ')} value hex {v.hex(' ')}\n"


def jsonl(i, ifindex):
    c = ",".join(map(str, counters(i)))
    return (
        f'{{"key":{{"prefixLen":{PREFIX_LEN},"ingress_ifindex":{ifindex},"ip_data":"{ip(i)}"}},'
        f'"value":{{"ruleId":{i + 1},"action":{1 + i % 2},"pad":[0,0,0],"counters":[{c}]}}}}\n'
    )


def yaml_block(i, ifindex):
    c = "".join(f"    - {x}\n" for x in counters(i))
    return (
        f"- key:\n    prefixLen: {PREFIX_LEN}\n    ingress_ifindex: {ifindex}\n"
        f"    ip_data: {ip(i)}\n"
        f"  value:\n    ruleId: {i + 1}\n    action: {1 + i % 2}\n"
        f"    pad:\n    - 0\n    - 0\n    - 0\n    counters:\n{c}"
    )


def yaml_doc(i, ifindex):
    c = ", ".join(map(str, counters(i)))
    return (
        f"---\nkey: {{prefixLen: {PREFIX_LEN}, ingress_ifindex: {ifindex}, ip_data: {ip(i)}}}\n"
        f"value: {{ruleId: {i + 1}, action: {1 + i % 2}, pad: [0, 0, 0], counters: [{c}]}}\n"
    )


KEY = struct.Struct("<II4s12x")
VALUE = struct.Struct("<IB3x" + "Q" * COUNTERS)


def bpftool_line(i, ifindex, pin):
    k = KEY.pack(PREFIX_LEN, ifindex, struct.pack(">I", BASE_ADDR + i))
    v = VALUE.pack(i + 1, 1 + i % 2, *counters(i))
    return f"map update pinned {pin} key hex {k.hex(' ')} value hex {v.hex(' ')}\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("format", choices=["jsonl", "yaml", "yaml-docs", "bpftool"])
    p.add_argument("count", type=int)
    p.add_argument("out")
    p.add_argument("--shape", choices=["flat", "rich"], default="flat")
    p.add_argument("--pin", help="pin path (bpftool format)")
    p.add_argument("--ifindex", type=int, default=6)
    a = p.parse_args()
    if a.format == "bpftool" and not a.pin:
        p.error("the bpftool format needs --pin PATH")
    if not 0 < a.count <= 1 << 24:
        p.error("count must be in 1..16777216")
    flat = a.shape == "flat"
    line = {
        "jsonl": lambda i: (jsonl if flat else rich_jsonl)(i, a.ifindex),
        "yaml": lambda i: (yaml_block if flat else rich_yaml_block)(i, a.ifindex),
        "yaml-docs": lambda i: (yaml_doc if flat else rich_yaml_doc)(i, a.ifindex),
        "bpftool": lambda i: (bpftool_line if flat else rich_bpftool_line)(i, a.ifindex, a.pin),
    }[a.format]
    with open(a.out, "w", buffering=1 << 20) as f:
        chunk = []
        for i in range(a.count):
            chunk.append(line(i))
            if len(chunk) == 8192:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
