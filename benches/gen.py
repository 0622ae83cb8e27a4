#!/usr/bin/env python3
"""Write the entries of benches/run.sh as an input file.

Entry i (0-based) of every workload, also generated in memory by c_batch.c
(keep the two in step):

  key   struct lpm_ip_key_st  prefixLen 64, ingress_ifindex IFINDEX,
                              ip_data = IPv4 10.0.0.0 + i (network order), rest 0
  value struct bench_val      ruleId i + 1, action 1 + i % 2, pad 0,
                              counters[j] = i * 11 + j

Formats:
  jsonl      one {"key": .., "value": ..} per line, as `ebpf-sdk dump -o jsonl` prints
  yaml       a YAML list in block style, as `ebpf-sdk dump -o yaml` prints
  yaml-docs  one flow-style `key:`/`value:` document per entry, separated by `---`
  bpftool    `map update pinned PIN key hex .. value hex ..` lines for `bpftool batch file`

Usage: gen.py FORMAT COUNT OUT [--pin PATH] [--ifindex N]
"""

import argparse
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
    p.add_argument("--pin", help="pin path (bpftool format)")
    p.add_argument("--ifindex", type=int, default=6)
    a = p.parse_args()
    if a.format == "bpftool" and not a.pin:
        p.error("the bpftool format needs --pin PATH")
    if not 0 < a.count <= 1 << 24:
        p.error("count must be in 1..16777216")
    line = {
        "jsonl": lambda i: jsonl(i, a.ifindex),
        "yaml": lambda i: yaml_block(i, a.ifindex),
        "yaml-docs": lambda i: yaml_doc(i, a.ifindex),
        "bpftool": lambda i: bpftool_line(i, a.ifindex, a.pin),
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
