#!/usr/bin/env python3
"""A fleet of `ebpf-sdk apply --watch` on one machine (docs/scale-out.md).

Each of N watchers runs in its own mount namespace with its own bpffs
instance (`unshare --mount --propagation private` + `mount -t bpf`) and its
own map, created there with bpftool; all of them watch one state directory,
laid out as the kubelet lays out a ConfigMap volume (`state.yaml ->
..data/state.yaml`, `..data -> ..<timestamp>`), and every change is the
kubelet's atomic swap of `..data`. Measured:

- good changes (ROUNDS of them): for each, the time from the swap until each
  watcher's map holds the new state (the end of its reconcile, from its JSON
  log line), the median and the worst over the fleet; afterwards every map is
  read with bpftool inside its namespace (`nsenter -m`) and compared with the
  state file;
- a bad change (one value does not fit its type): every watcher must report
  it (`outcome: bad_file`) and no map may change, checked the same way;
- the idle cost of one watcher: resident memory, and CPU time over 10 s.

Run as root, from the repository:

    sudo benches/fleet.py                 # 20 watchers, 5 changes
    sudo benches/fleet.py --watchers 50 --rounds 10

Everything it creates is under one temporary directory and in the watchers'
mount namespaces, which go away with the watchers at the end.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAP = "fleet_map"
KEYS = 200

SCHEMA = {
    "schema_version": 2,
    "source": {"kind": "elf", "path": "fleet.o"},
    "maps": [{
        "name": MAP, "map_type": "hash", "map_type_id": 1, "key_size": 4, "value_size": 8,
        "max_entries": 4096, "flags": [], "map_flags": 0, "pinning": "by_name",
        "section": ".maps", "origin": "btf", "endian": "little",
        "key": {"name": "unsigned int", "typedefs": ["__u32"], "size": 4, "kind": "int", "signed": False},
        "value": {"name": "unsigned long long", "typedefs": ["__u64"], "size": 8, "kind": "int", "signed": False},
    }],
}


def state_text(version, bad=False):
    """KEYS entries whose values say which version they are; a bad version
    has one value that does not fit in __u64."""
    lines = ["maps:", f"  {MAP}:"]
    for k in range(KEYS):
        v = version * 1_000_000 + k
        lines.append(f"    - {{key: {k}, value: {v}}}")
    if bad:
        lines.append(f"    - {{key: {KEYS}, value: -1}}")
    return "\n".join(lines) + "\n"


def expected(version):
    return {k: version * 1_000_000 + k for k in range(KEYS)}


class ConfigMapDir:
    """A directory laid out and updated as the kubelet's AtomicWriter does."""

    def __init__(self, path):
        self.path = path
        self.n = 0
        os.mkdir(path)

    def write(self, text):
        """Writes a new version; returns the time of the swap."""
        self.n += 1
        new = f"..2026_12_02_00_00_{self.n:02d}.{os.getpid()}"
        os.mkdir(os.path.join(self.path, new))
        with open(os.path.join(self.path, new, "state.yaml"), "w") as f:
            f.write(text)
        data = os.path.join(self.path, "..data")
        old = os.readlink(data) if os.path.islink(data) else None
        tmp = os.path.join(self.path, "..data_tmp")
        os.symlink(new, tmp)
        t = time.time()
        os.rename(tmp, data)
        link = os.path.join(self.path, "state.yaml")
        if not os.path.islink(link):
            os.symlink("..data/state.yaml", link)
        if old:
            shutil.rmtree(os.path.join(self.path, old))
        return t


class Watcher:
    """One `ebpf-sdk apply --watch` in its own mount namespace and bpffs."""

    def __init__(self, i, binary, schema, state, logdir):
        self.i = i
        self.lines = []
        self.cond = threading.Condition()
        script = (
            "mount -t bpf bpf /sys/fs/bpf && "
            f"bpftool map create /sys/fs/bpf/{MAP} type hash key 4 value 8 entries 4096 name fleet{i} && "
            f'exec "$0" apply --schema "$1" -f "$2" --prune --watch --log-format json --pin-check 5'
        )
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
             binary, schema, state],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.log = open(os.path.join(logdir, f"watcher{i}.log"), "w")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.log.write(line)
            self.log.flush()
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.lines.append(rec)
                self.cond.notify_all()

    def wait_reconcile(self, after, timeout):
        """The first reconcile log line after index `after`."""
        deadline = time.time() + timeout
        with self.cond:
            while len(self.lines) <= after:
                left = deadline - time.time()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"watcher {self.i}: no reconcile within {timeout}s")
                self.cond.wait(left)
            return self.lines[after]

    def contents(self):
        """The map read with bpftool inside the watcher's mount namespace."""
        out = subprocess.run(
            ["nsenter", "-t", str(self.proc.pid), "-m", "bpftool", "-j", "map", "dump",
             "pinned", f"/sys/fs/bpf/{MAP}"],
            check=True, capture_output=True, text=True).stdout
        m = {}
        for e in json.loads(out):
            k = int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little")
            v = int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little")
            m[k] = v
        return m

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_ticks(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def end_time(rec):
    """When a reconcile's writes were done: its start plus its duration."""
    t = datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    start = (t - datetime(1970, 1, 1)).total_seconds()
    return start + rec["duration_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--watchers", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "ebpf-sdk"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (mount namespaces, bpffs, maps)")
    if not os.path.exists(args.binary):
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ebpf-sdk-cli"], cwd=ROOT, check=True)

    tmp = tempfile.mkdtemp(prefix="ebpf-sdk-fleet-")
    watchers = []
    try:
        schema = os.path.join(tmp, "fleet.schema.json")
        with open(schema, "w") as f:
            json.dump(SCHEMA, f)
        cm = ConfigMapDir(os.path.join(tmp, "state"))
        cm.write(state_text(1))
        logdir = os.path.join(tmp, "logs")
        os.mkdir(logdir)
        state = os.path.join(cm.path, "state.yaml")
        t0 = time.time()
        watchers = [Watcher(i, args.binary, schema, state, logdir) for i in range(args.watchers)]
        for w in watchers:
            rec = w.wait_reconcile(0, 60)
            assert rec["outcome"] == "applied", rec
        print(f"{args.watchers} watchers started, each in its own mount namespace and bpffs, "
              f"all applied the first state in {time.time() - t0:.2f} s", file=sys.stderr, flush=True)
        for w in watchers:
            assert w.contents() == expected(1), f"watcher {w.i}"

        rows = []
        all_lat = []
        version = 1
        for r in range(args.rounds):
            version += 1
            seen = [len(w.lines) for w in watchers]
            t_swap = cm.write(state_text(version))
            lat = []
            for w, n in zip(watchers, seen):
                rec = w.wait_reconcile(n, 60)
                assert rec["trigger"] == "file" and rec["outcome"] == "applied", rec
                lat.append(end_time(rec) - t_swap)
            for w in watchers:
                assert w.contents() == expected(version), f"watcher {w.i}, round {r + 1}"
            rows.append((r + 1, statistics.median(lat), max(lat), min(lat)))
            all_lat += lat
            time.sleep(0.5)

        # A bad change: every watcher reports it, no map changes.
        seen = [len(w.lines) for w in watchers]
        t_swap = cm.write(state_text(version + 1, bad=True))
        bad_lat, errors = [], set()
        for w, n in zip(watchers, seen):
            rec = w.wait_reconcile(n, 60)
            assert rec["outcome"] == "bad_file", rec
            bad_lat.append(end_time(rec) - t_swap)
            errors.add(rec["error"])
        unchanged = sum(w.contents() == expected(version) for w in watchers)

        # Idle cost.
        rss = [w.rss_kib() for w in watchers]
        ticks0 = [w.cpu_ticks() for w in watchers]
        time.sleep(10)
        hz = os.sysconf("SC_CLK_TCK")
        cpu = [(w.cpu_ticks() - t) / hz / 10 for w, t in zip(watchers, ticks0)]

        n = args.watchers
        print(f"### {n} watchers, {args.rounds} good changes and 1 bad change\n")
        print(f"State file: {KEYS} entries of a hash map (`__u32` -> `__u64`), every value changed "
              "by each good change; applied with `--prune`.\n")
        print("| change | median: swap -> map holds it | worst | best |")
        print("| --- | ---: | ---: | ---: |")
        for r, med, worst, best in rows:
            print(f"| good #{r} | {med * 1e3:.0f} ms | {worst * 1e3:.0f} ms | {best * 1e3:.0f} ms |")
        print(f"| all {len(all_lat)} | {statistics.median(all_lat) * 1e3:.0f} ms | "
              f"{max(all_lat) * 1e3:.0f} ms | {min(all_lat) * 1e3:.0f} ms |")
        print()
        print(f"Bad change: {sum(1 for _ in bad_lat)}/{n} watchers reported it "
              f"(median {statistics.median(bad_lat) * 1e3:.0f} ms, worst {max(bad_lat) * 1e3:.0f} ms "
              f"after the swap), {unchanged}/{n} maps still hold the last good state "
              f"(read with bpftool in each namespace); {len(errors)} distinct error "
              f"message(s), e.g. `{sorted(errors)[0]}`.")
        print()
        print(f"Idle watcher: {statistics.median(rss) / 1024:.1f} MiB resident (median; max "
              f"{max(rss) / 1024:.1f}), CPU {statistics.median(cpu) * 100:.3f}% of one core "
              f"(median over 10 s; max {max(cpu) * 100:.3f}%).")
        print()
        print(f"Machine: {os.cpu_count()} CPUs, kernel {os.uname().release}, "
              f"{time.strftime('%Y-%m-%d', time.gmtime())}.")
    finally:
        for w in watchers:
            w.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
