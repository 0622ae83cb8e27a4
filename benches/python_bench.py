#!/usr/bin/env python3
"""ebpf_sdk from Python against the old client's way and the CLI, side by side.

Run through benches/python.sh (which builds the CLI and installs the
package); directly:

    python3 benches/python_bench.py --cli target/release/ebpf-sdk [--entries 100000] [--runs 3]

Workloads, on the `bench_hash` map of benches/bench_maps.bpf.o (HASH, the
firewall's 24-byte LPM key, a 96-byte value; entry i as benches/gen.py
writes it), each on a fresh empty map:

  1. one entry at a time: `Map.update(key, value)` from Python, against
     `bpftool map update pinned PIN key hex .. value hex ..` run once per
     entry (how the earlier Python client wrote every entry);
  2. bulk: `Map.apply(list_of_dicts)` of --entries dicts (the dicts are
     built before the clock starts), against `ebpf-sdk apply -f FILE` of
     the same entries as JSON Lines (the whole process, start to exit).

Every write is checked afterwards: the entry count, and a sample of
entries read back with bpftool equal the bytes gen.py packs with `struct`.
Times are the median of --runs runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen  # noqa: E402  (benches/gen.py: the entries of every benchmark)

import ebpf_sdk  # noqa: E402

OBJ = HERE / "bench_maps.bpf.o"
IFINDEX = 6


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Maps:
    """bench_maps.bpf.o loaded in a private bpffs directory."""

    def __init__(self):
        self.dir = Path(f"/sys/fs/bpf/ebpf_sdk_pybench_{os.getpid()}")
        self.dir.mkdir()
        self.obj = ebpf_sdk.Object.from_elf(str(OBJ))

    @property
    def pin(self) -> str:
        return str(self.dir / "maps" / "bench_hash")

    def reset(self, settle: float) -> ebpf_sdk.Map:
        """Fresh, empty maps; returns bench_hash opened."""
        shutil.rmtree(self.dir / "maps", ignore_errors=True)
        shutil.rmtree(self.dir / "progs", ignore_errors=True)
        sh("bpftool", "prog", "loadall", str(OBJ), str(self.dir / "progs"), "pinmaps", str(self.dir / "maps"))
        time.sleep(settle)  # let the kernel free the previous maps first
        return self.obj.open("bench_hash", pinned=self.pin)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def entry(i: int) -> dict:
    return json.loads(gen.jsonl(i, IFINDEX))


def raw(i: int):
    """(key, value) bytes of entry i, packed by gen.py with struct."""
    parts = gen.bpftool_line(i, IFINDEX, "PIN").split()
    k = bytes(int(x, 16) for x in parts[parts.index("key") + 2 : parts.index("value")])
    v = bytes(int(x, 16) for x in parts[parts.index("value") + 2 :])
    return k, v


def check(maps: Maps, m: ebpf_sdk.Map, n: int) -> None:
    count = len(m)
    assert count == n, f"{count} entries in the map, {n} written"
    for i in sorted({0, 1, n // 2, n - 1}):
        k, v = raw(i)
        out = sh("bpftool", "-j", "map", "lookup", "pinned", maps.pin, "key", "hex", *[f"{b:02x}" for b in k])
        got = bytes(int(x, 16) for x in json.loads(out.stdout)["value"])
        assert got == v, f"entry {i}: bpftool reads {got.hex()}, gen.py packs {v.hex()}"


def median(xs):
    return statistics.median(xs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cli", required=True, help="the ebpf-sdk binary")
    p.add_argument("--entries", type=int, default=100_000, help="entries of the bulk workload [100000]")
    p.add_argument("--single", type=int, default=10_000, help="entries written one by one from Python [10000]")
    p.add_argument("--bpftool-single", type=int, default=300, help="entries written by one bpftool each [300]")
    p.add_argument("--runs", type=int, default=3, help="runs per contender, the median is reported [3]")
    a = p.parse_args()
    settle = 1.0 if a.entries >= 100_000 else 0.3

    maps = Maps()
    tmp = Path(tempfile.mkdtemp(prefix="ebpf-sdk-pybench."))
    try:
        jsonl = tmp / "entries.jsonl"
        subprocess.run([sys.executable, str(HERE / "gen.py"), "jsonl", str(a.entries), str(jsonl)], check=True)
        single = [entry(i) for i in range(a.single)]
        bulk = [entry(i) for i in range(a.entries)]
        bt_lines = [gen.bpftool_line(i, IFINDEX, maps.pin).split() for i in range(a.bpftool_single)]

        py_single, bt_single, py_apply, cli_apply = [], [], [], []
        for run in range(a.runs):
            print(f"run {run + 1}/{a.runs}...", file=sys.stderr)
            m = maps.reset(settle)
            t = time.perf_counter()
            for e in single:
                m.update(e["key"], e["value"])
            py_single.append((time.perf_counter() - t) / a.single)
            check(maps, m, a.single)

            m = maps.reset(settle)
            t = time.perf_counter()
            for line in bt_lines:
                subprocess.run(["bpftool", *line], check=True, stdout=subprocess.DEVNULL)
            bt_single.append((time.perf_counter() - t) / a.bpftool_single)
            check(maps, m, a.bpftool_single)

            m = maps.reset(settle)
            t = time.perf_counter()
            report = m.apply(bulk)
            py_apply.append(time.perf_counter() - t)
            assert report["written"] == a.entries, report
            check(maps, m, a.entries)

            m = maps.reset(settle)
            t = time.perf_counter()
            sh(a.cli, "apply", "--elf", str(OBJ), "--map", "bench_hash", "--pinned", maps.pin, "-f", str(jsonl), "--quiet")
            cli_apply.append(time.perf_counter() - t)
            check(maps, m, a.entries)

        ps, bs = median(py_single), median(bt_single)
        pa, ca = median(py_apply), median(cli_apply)
        cpu = next((l.split(": ", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"# ebpf_sdk from Python vs bpftool and the CLI ({os.uname().release}, {cpu}, nproc {os.cpu_count()})")
        print()
        print(f"Map bench_hash (HASH, key 24 B, value 96 B); median of {a.runs} runs; every write verified with bpftool.")
        print()
        print("| job | ebpf_sdk (Python) | the other way | ratio |")
        print("| --- | ---: | ---: | ---: |")
        print(
            f"| one entry at a time: `Map.update` vs one `bpftool map update` per entry "
            f"({a.single} / {a.bpftool_single} entries) | {ps * 1e6:.1f} µs/entry ({1 / ps:,.0f}/s) "
            f"| {bs * 1e3:.2f} ms/entry ({1 / bs:,.0f}/s) | {bs / ps:,.0f}x faster |"
        )
        print(
            f"| {a.entries:,} entries: `Map.apply(list of dicts)` vs `ebpf-sdk apply -f entries.jsonl` "
            f"| {pa:.3f} s ({a.entries / pa:,.0f}/s) | {ca:.3f} s ({a.entries / ca:,.0f}/s) | {pa / ca:.2f}x the CLI's time |"
        )
    finally:
        maps.remove()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
