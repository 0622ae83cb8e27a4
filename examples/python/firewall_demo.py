#!/usr/bin/env python3
"""The firewall walkthrough of the earlier Python client, with ebpf_sdk.

The bundled XDP firewall (firewall-ebpf/) on a veth pair into a network
namespace this script creates, programmed from Python with nothing but the
eBPF object: open the maps, create a DENY rule for pings from the
namespace, watch the pings drop (and the per-rule statistics and the
firewall's events), update the rule to ALLOW, delete it.

Run as root from anywhere (examples/python/run.sh installs the package into
a venv first and runs this):

    python3 examples/python/firewall_demo.py

Needs iproute2 (ip), iputils-ping, bpftool, util-linux (unshare) and bpffs
at /sys/fs/bpf (`bash .ci/setup` installs and mounts all of it). Everything
it creates is named after its pid (a network namespace, a veth pair, a
bpffs directory) and is removed on exit, also on an error or Ctrl-C.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import ebpf_sdk

REPO = Path(__file__).resolve().parents[2]
ELF = REPO / "firewall-ebpf" / "firewall.bpf.o"
TABLE = "ingress_node_firewall_table_map"
STATS = "ingress_node_firewall_statistics_map"
EVENTS = "ingress_node_firewall_events_map"
PROG = "xdp_ingress_node_firewall_process"

PID = os.getpid()
NS = f"pyfwdemo_{PID}"
VH, VN = f"pyf{PID}h", f"pyf{PID}n"  # <= 15 characters
PIN = Path(f"/sys/fs/bpf/pyfwdemo_{PID}")  # every map and the program, private


def step(title: str) -> None:
    print(f"\n=== {title}")


def sh(*cmd: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    """Prints a command, runs it, prints its output."""
    if not quiet:
        print("$ " + shlex.join(cmd))
    out = subprocess.run(cmd, capture_output=True, text=True)
    if not quiet and (out.stdout or out.stderr):
        print((out.stdout + out.stderr).rstrip())
    if check and out.returncode != 0:
        raise SystemExit(f"`{shlex.join(cmd)}` failed ({out.returncode})")
    return out


def show(code: str, value=None) -> None:
    """Prints a line of Python as typed at a prompt, and its result."""
    print(f">>> {code}")
    if value is not None:
        print(value if isinstance(value, str) else repr(value))


def ping(host: str) -> str:
    out = sh("ip", "netns", "exec", NS, "ping", "-q", "-n", "-c", "3", "-i", "0.2", "-W", "1", host,
             check=False, quiet=True)
    summary = next((l for l in out.stdout.splitlines() if "transmitted" in l), out.stdout.strip())
    print(f"$ ip netns exec {NS} ping -c 3 {host}\n{summary}")
    return summary


def free_subnet() -> int:
    used = sh("ip", "-o", "addr", "show", quiet=True).stdout
    for n in [*range(PID % 254 + 1, 255), *range(1, 255)]:
        if f" 10.202.{n}." not in used:
            return n
    raise SystemExit("no free 10.202.N.0/24")


def cleanup() -> None:
    print("\n# cleanup")
    for cmd in [("ip", "link", "set", "dev", VH, "xdp", "off"), ("ip", "link", "del", VH), ("ip", "netns", "del", NS)]:
        subprocess.run(cmd, capture_output=True)
    shutil.rmtree(PIN, ignore_errors=True)
    print(f"removed netns {NS}, veth {VH}/{VN}, {PIN}")


def main() -> int:
    if os.geteuid() != 0:
        print("run as root", file=sys.stderr)
        return 1
    for tool in ["ip", "ping", "bpftool", "unshare"]:
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            print(f"missing {tool}: run .ci/setup", file=sys.stderr)
            return 1
    n = free_subnet()
    host, peer = f"10.202.{n}.1", f"10.202.{n}.2"

    step("0. a namespace, a veth pair, the firewall loaded and attached")
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", VH, "type", "veth", "peer", "name", VN, "netns", NS)
    sh("ip", "addr", "add", f"{host}/24", "dev", VH)
    sh("ip", "link", "set", VH, "up")
    sh("ip", "-n", NS, "addr", "add", f"{peer}/24", "dev", VN)
    sh("ip", "-n", NS, "link", "set", VN, "up")
    ifindex = int(Path(f"/sys/class/net/{VH}/ifindex").read_text())
    print(f"host end {VH} has ifindex {ifindex}")
    # The maps are pinned by name (LIBBPF_PIN_BY_NAME): give the demo its own
    # bpffs directory, bind-mounted over /sys/fs/bpf for the load only.
    PIN.mkdir()
    sh("unshare", "--mount", "--propagation", "private", "sh", "-c",
       'mount --bind "$1" /sys/fs/bpf && bpftool prog loadall "$2" /sys/fs/bpf/progs pinmaps /sys/fs/bpf',
       "sh", str(PIN), str(ELF))
    sh("ip", "link", "set", "dev", VH, "xdp", "pinned", str(PIN / "progs" / PROG))

    step("1. load the object's BTF and open the maps")
    obj = ebpf_sdk.Object.from_elf(str(ELF))
    show("obj = ebpf_sdk.Object.from_elf('firewall-ebpf/firewall.bpf.o')")
    show("obj.maps", obj.maps)
    table = obj.open(TABLE, pin_dir=str(PIN))
    stats = obj.open(STATS, pin_dir=str(PIN))
    show(f"table = obj.open({TABLE!r}, pin_dir={str(PIN)!r})", table)
    show(f"stats = obj.open({STATS!r}, pin_dir=...)", stats)
    show("len(table)", len(table))
    ping(host)

    step("2. create a DENY rule for pings from the namespace")
    key = {"prefixLen": 64, "ingress_ifindex": ifindex, "ip_data": peer}
    deny = {"rules": [{"ruleId": 7, "protocol": 1, "icmpType": 8, "icmpCode": 0, "action": 1}]}
    table.update(key, deny, flags="noexist")
    show(f"key = {key}")
    show(f"deny = {deny}")
    show("table.update(key, deny, flags='noexist')")
    kb, vb = table.encode(key, deny)
    show("table.encode(key, deny)  # the bytes the C program reads",
         f"key   {kb.hex(' ', 4)}\nvalue {vb[:12].hex(' ', 4)} ... ({len(vb)} bytes)")
    events = obj.open(EVENTS, pin_dir=str(PIN)).events(type="event_hdr_st", timeout=2.0, count=3)
    show("events = obj.open(EVENTS, ...).events(type='event_hdr_st', timeout=2.0, count=3)")
    summary = ping(host)
    print("  -> the pings are dropped" if " 0 received" in summary else "  -> UNEXPECTED: pings passed")
    show("stats.lookup(7, total=True)  # per-rule statistics, summed over CPUs", stats.lookup(7, total=True))
    show("stats[7]  # one value per CPU", stats[7])
    with events:
        show("for ev in events: print(ev)")
        for ev in events:
            ev["payload"] = ev["payload"][:22] + "..."
            print(ev)

    step("3. update the rule to ALLOW")
    allow = {"rules": [{**deny["rules"][0], "action": 2}]}
    table.update(key, allow, flags="exist")
    show(f"table.update(key, {allow}, flags='exist')")
    show("table[key]['rules']", table[key]["rules"])
    summary = ping(host)
    print("  -> the pings pass" if " 3 received" in summary else "  -> UNEXPECTED: pings dropped")
    show("stats.lookup(7, total=True)", stats.lookup(7, total=True))

    step("4. every rule, as `ebpf-sdk dump` prints them; then delete it")
    show("table.dump()", table.dump())
    show("table.delete(key)", table.delete(key))
    show("key in table", key in table)
    try:
        table[key]
    except KeyError:
        show("table[key]", "KeyError")
    try:
        table.update(key, {"rules": [{"dstPortEnd": 70000}]})
    except ebpf_sdk.InputError as e:
        show("table.update(key, {'rules': [{'dstPortEnd': 70000}]})", f"InputError: {e} (path {e.path!r})")
    ping(host)
    step("done")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        cleanup()
