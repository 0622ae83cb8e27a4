"""On the live maps of the bundled firewall, loaded for each test in a
private bpffs directory (see conftest.py): every write is read back with
bpftool, an independent reader, and compared with the golden bytes."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
import time

import pytest

import ebpf_sdk
from conftest import (
    CONFIG,
    EVENTS,
    STATS,
    TABLE,
    bpftool_dump,
    bpftool_lookup,
    bpftool_update,
    require_programs,
    run,
    unique_name,
)

KEY = {"prefixLen": 64, "ingress_ifindex": 6, "ip_data": "10.10.10.2"}
DENY_PING = {"rules": [{"ruleId": 1, "protocol": 1, "icmpType": 8, "action": 1}]}
GOLDEN_KEY = bytes.fromhex("40000000 06000000 0a0a0a02 00000000 00000000 00000000".replace(" ", ""))
GOLDEN_RULE = bytes.fromhex("01000000 01000000 00080001".replace(" ", ""))


def rules(n: int, action: int = 1):
    """n table entries: 10.0.i/256.i%256, rule i+1 denying (or allowing) TCP port 80."""
    return [
        {
            "key": {"prefixLen": 64, "ingress_ifindex": 6, "ip_data": f"10.0.{i // 256}.{i % 256}"},
            "value": {"rules": [{"ruleId": i + 1, "protocol": 6, "dstPortStart": 80, "action": action}]},
        }
        for i in range(n)
    ]


def test_update_lookup_delete_are_the_golden_bytes(firewall):
    table = firewall.open(TABLE)
    assert table.is_open and table.pin == firewall.pin(TABLE)
    assert len(table) == 0
    table.update(KEY, DENY_PING, flags="noexist")
    # bpftool reads the bytes the C program reads.
    raw = bpftool_lookup(table.pin, GOLDEN_KEY)
    assert raw is not None and raw[:12] == GOLDEN_RULE and raw[12:] == bytes(1188)
    assert table.encode(KEY, DENY_PING) == (GOLDEN_KEY, raw)

    value = table.lookup(KEY)
    assert value["rules"][0]["action"] == 1 and value["rules"][0]["ruleId"] == 1
    assert table[KEY] == value
    assert KEY in table and len(table) == 1
    assert {**KEY, "ip_data": "10.10.10.3"} not in table
    assert table.lookup({**KEY, "ip_data": "10.10.10.3"}) is None

    # flags: create only / replace only, with the kernel's errno.
    with pytest.raises(ebpf_sdk.KernelError) as e:
        table.update(KEY, DENY_PING, flags="noexist")
    assert e.value.errno == errno.EEXIST
    with pytest.raises(ebpf_sdk.KernelError) as e:
        table.update({**KEY, "ip_data": "10.10.10.3"}, DENY_PING, flags="exist")
    assert e.value.errno == errno.ENOENT
    with pytest.raises(ebpf_sdk.InputError, match="flags"):
        table.update(KEY, DENY_PING, flags="sometimes")

    # The dict way: allow instead of deny.
    allow = {"rules": [{**DENY_PING["rules"][0], "action": 2}]}
    table[KEY] = allow
    assert bpftool_lookup(table.pin, GOLDEN_KEY)[11] == 2
    assert table[KEY]["rules"][0]["action"] == 2

    # A bad value writes nothing, and says where.
    with pytest.raises(ebpf_sdk.InputError) as e:
        table[KEY] = {"rules": [{"dstPortEnd": 70000}]}
    assert e.value.path == "value.rules[0].dstPortEnd"
    assert bpftool_lookup(table.pin, GOLDEN_KEY)[11] == 2

    del table[KEY]
    assert bpftool_lookup(table.pin, GOLDEN_KEY) is None
    with pytest.raises(KeyError):
        table[KEY]
    with pytest.raises(KeyError):
        del table[KEY]
    assert table.delete(KEY) is False
    table[KEY] = DENY_PING
    assert table.delete(KEY) is True
    assert len(table) == 0


def test_apply_iterate_and_dump_round_trip(firewall, tmp_path):
    table = firewall.open(TABLE)
    entries = rules(600)
    report = table.apply(entries)
    assert report["ok"] is True
    assert (report["entries"], report["written"], report["deleted"]) == (600, 600, 0)
    assert report["map"] == TABLE and report["pin"] == table.pin
    before = bpftool_dump(table.pin)
    assert len(before) == 600
    for e in entries[:3] + entries[-3:]:
        k, v = table.encode(e["key"], e["value"])
        assert before[k] == v

    # Iteration streams every entry once, in batches.
    items = list(table.items())
    assert len(items) == 600
    assert sorted(k["ip_data"] for k, _ in items) == sorted(e["key"]["ip_data"] for e in entries)
    assert sorted(table.encode(k, None)[0] for k in table.keys()) == sorted(before)
    assert sorted(v["rules"][0]["ruleId"] for v in table.values()) == list(range(1, 601))
    assert sum(1 for _ in table) == 600
    it = table.items()
    assert iter(it) is it

    # dump -> apply is byte-identical and writes nothing (unchanged entries are skipped).
    dumped = table.dump()
    assert len(dumped) == 600 and set(dumped[0]) == {"key", "value"}
    report = table.apply(dumped, prune=True, backup=False)
    assert (report["written"], report["deleted"], report["unchanged"], report["diff"]) == (0, 0, 600, [])
    assert bpftool_dump(table.pin) == before

    # A dry run says what would change, and changes nothing.
    changed = rules(300, action=2) + rules(301)[300:]
    report = table.apply(changed, prune=True, dry_run=True)
    # Entries 0..299 change, 300 stays, 301..599 go.
    assert (report["added"], report["changed"], report["removed"], report["unchanged"]) == (0, 300, 299, 1)
    assert report["written"] == 0 and report["backup"] is None
    kinds = {}
    for d in report["diff"]:
        kinds[d["change"]] = kinds.get(d["change"], 0) + 1
    assert kinds == {"changed": 300, "removed": 299}
    changed_one = next(d for d in report["diff"] if d["change"] == "changed")
    assert changed_one["value"]["rules"][0]["action"] == 2
    assert bpftool_dump(table.pin) == before

    # For real, with prune and a backup file that restores the map.
    backup = os.path.join(tmp_path, "backup.jsonl")
    report = table.apply(changed, prune=True, backup=backup)
    assert report["backup"] == backup
    try:
        assert (report["written"], report["deleted"]) == (300, 299)
        after = bpftool_dump(table.pin)
        assert len(after) == 301
        assert all(v[11] == 2 for k, v in after.items() if k in before and before[k] != v)
        with open(backup) as f:
            saved = [json.loads(line) for line in f]
        assert len(saved) == 600
        restored = table.apply(saved, prune=True, backup=False)
        assert restored["ok"] and bpftool_dump(table.pin) == before
    finally:
        os.unlink(backup)


def test_bad_entries_write_nothing(firewall):
    table = firewall.open(TABLE)
    entries = rules(20)
    entries[7]["value"]["rules"][0]["dstPortEnd"] = 70000
    with pytest.raises(ebpf_sdk.InputError) as e:
        table.apply(entries)
    assert e.value.location == "entries[7]"
    assert e.value.path == "value.rules[0].dstPortEnd"
    assert str(e.value).startswith("entries[7]: value.rules[0].dstPortEnd: 70000 does not fit")
    assert e.value.report["ok"] is False and e.value.report["written"] == 0
    assert bpftool_dump(table.pin) == {}

    # Conversion errors name the entry too.
    entries = rules(3)
    entries[2]["key"]["ip_data"] = object()
    with pytest.raises(ebpf_sdk.InputError) as e:
        table.apply(entries)
    assert (e.value.location, e.value.path) == ("entries[2]", "key.ip_data")

    # The same key twice, an unknown entry field, no entries at all.
    with pytest.raises(ebpf_sdk.InputError, match="same key as entries\\[0\\]"):
        table.apply(rules(2) + rules(1))
    with pytest.raises(ebpf_sdk.InputError, match="vlaue"):
        table.apply([{"key": KEY, "vlaue": DENY_PING}])
    with pytest.raises(ebpf_sdk.InputError, match="a string"):
        table.apply("not entries")
    assert bpftool_dump(table.pin) == {}
    # A state dict naming several maps: this map's entries are applied.
    state = {"maps": {TABLE: rules(2), STATS: [{"key": 1, "value": {}}]}}
    assert table.apply(state)["written"] == 2
    assert len(bpftool_dump(table.pin)) == 2
    # An empty list with prune empties the map on purpose.
    table.apply(rules(5))
    assert table.apply([], prune=True, backup=False)["deleted"] == 5
    assert bpftool_dump(table.pin) == {}


def test_a_full_map_says_how_much_was_written(firewall):
    table = firewall.open(TABLE)
    assert table.max_entries == 1024
    with pytest.raises(ebpf_sdk.KernelError) as e:
        table.apply(rules(1100))
    assert e.value.written == 1024
    assert e.value.errno in (errno.ENOSPC, errno.E2BIG)
    assert e.value.report["ok"] is False and e.value.report["written"] == 1024
    assert len(bpftool_dump(table.pin)) == 1024


def test_per_cpu_statistics(firewall):
    stats = firewall.open(STATS)
    n = stats.ncpus
    assert n >= 1
    # An array: every index is there, zero.
    assert len(stats) == 100
    zero = stats.lookup(3)
    assert isinstance(zero, list) and len(zero) == n
    # One value is written to every CPU; bpftool shows it per CPU.
    stats.update(3, {"deny_stats": {"packets": 5, "bytes": 600}})
    raw = bpftool_lookup(stats.pin, (3).to_bytes(4, "little"))
    assert raw == (bytes(16) + (5).to_bytes(8, "little") + (600).to_bytes(8, "little")) * n
    total = stats.lookup(3, total=True)
    assert total["deny_stats"] == {"packets": 5 * n, "bytes": 600 * n}
    # One value per CPU.
    stats[4] = [{"allow_stats": {"packets": i + 1}} for i in range(n)]
    assert [v["allow_stats"]["packets"] for v in stats[4]] == list(range(1, n + 1))
    dumped = {e["key"]: e for e in stats.dump()}
    assert dumped[4]["total"]["allow_stats"]["packets"] == n * (n + 1) // 2
    # Written by bpftool (one value, which it writes to every CPU), read by us.
    bpftool_update(stats.pin, (9).to_bytes(4, "little"), (7).to_bytes(8, "little") + bytes(24))
    assert stats.lookup(9, total=True)["allow_stats"]["packets"] == 7 * n
    # Out of range for an array: refused before the kernel is asked (no errno).
    with pytest.raises(ebpf_sdk.KernelError, match="index 100 is out of range") as e:
        stats.update(100, {})
    assert e.value.errno is None


def test_mismatch_and_from_pinned(firewall):
    obj = firewall.obj
    with pytest.raises(ebpf_sdk.MismatchError) as e:
        obj.open(TABLE, pinned=firewall.pin(STATS))
    assert e.value.map == TABLE and e.value.pin == firewall.pin(STATS)
    assert "nothing was written" in str(e.value)
    assert not isinstance(e.value, (ValueError, OSError))

    pinned = ebpf_sdk.Object.from_pinned(firewall.pin(TABLE))
    assert len(pinned.maps) == 1
    name = pinned.maps[0]
    assert TABLE.startswith(name)  # the kernel keeps 15 bytes of the name
    live = pinned.open(name)
    assert live.pin == firewall.pin(TABLE)
    live[KEY] = DENY_PING
    assert bpftool_lookup(live.pin, GOLDEN_KEY)[:12] == GOLDEN_RULE
    assert pinned.schema(name)["value"]["name"] == "struct rulesVal_st"

    # The config array holds one entry.
    config = firewall.open(CONFIG)
    with pytest.raises(ebpf_sdk.KernelError, match="index 1 is out of range"):
        config.update(1, {"mode": "FW_MODE_AUDIT"})
    config.update(0, {"mode": "FW_MODE_AUDIT", "name": "py"})
    assert config[0]["mode"] == "FW_MODE_AUDIT" and config[0]["name"] == "py"


def test_the_gil_is_released_during_batch_work(firewall):
    """Another Python thread runs while apply writes: the binding is not
    holding the GIL inside the library."""
    table = firewall.open(TABLE)
    entries = rules(1000)
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.0005)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        start = time.monotonic()
        for _ in range(5):
            table.apply(entries, prune=True, backup=False)
            table.apply([], prune=True, backup=False)
        end = time.monotonic()
    finally:
        stop.set()
        t.join()
    during = [x for x in ticks if start < x < end]
    # With the GIL held for the whole of each apply the ticker would get
    # about one tick per apply; released, it ticks throughout.
    assert len(during) > 20, (len(during), end - start)


def test_events_from_real_packets(firewall):
    """The XDP program on a veth into a namespace of ours denies pings and
    sends a perf event each; the iterator decodes them."""
    require_programs("ip", "ping")
    ns = unique_name("pyfw")
    vh, vn = unique_name("pyh"), unique_name("pyn")
    # A 10.203.N.0/24 no interface here uses.
    used = run("ip", "-o", "addr", "show").stdout
    n = next(i for i in range(os.getpid() % 200 + 1, 255) if f" 10.203.{i}." not in used)
    host, peer = f"10.203.{n}.1", f"10.203.{n}.2"
    run("ip", "netns", "add", ns)
    try:
        run("ip", "link", "add", vh, "type", "veth", "peer", "name", vn, "netns", ns)
        run("ip", "addr", "add", f"{host}/24", "dev", vh)
        run("ip", "link", "set", vh, "up")
        run("ip", "-n", ns, "addr", "add", f"{peer}/24", "dev", vn)
        run("ip", "-n", ns, "link", "set", vn, "up")
        ifindex = int(open(f"/sys/class/net/{vh}/ifindex").read())
        run("ip", "link", "set", "dev", vh, "xdp", "pinned", firewall.prog)
        table = firewall.open(TABLE)
        stats = firewall.open(STATS)
        key = {"prefixLen": 64, "ingress_ifindex": ifindex, "ip_data": peer}
        table[key] = {"rules": [{"ruleId": 7, "protocol": 1, "icmpType": 8, "action": 1}]}
        with firewall.open(EVENTS).events(type="event_hdr_st", timeout=5.0, count=2) as events:
            ping = subprocess.run(
                ["ip", "netns", "exec", ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", host],
                capture_output=True,
                text=True,
            )
            assert ping.returncode != 0, "pings were not dropped"
            got = list(events)
            assert events.lost == 0
        assert len(got) == 2, got
        for ev in got:
            assert (ev["ruleId"], ev["action"], ev["ifId"]) == (7, 1, ifindex)
            assert ev["pktLength"] == 98 and ev["payload_len"] >= 98
            assert ev["payload"].startswith("0x") and isinstance(ev["cpu"], int)
        deny = stats.lookup(7, total=True)["deny_stats"]
        assert deny["packets"] == 2 and deny["bytes"] == 2 * 98
        with pytest.raises(ebpf_sdk.Error, match="closed"):
            next(events)
        # Allow again: the pings pass.
        table.update(key, {"rules": [{"ruleId": 7, "protocol": 1, "icmpType": 8, "action": 2}]}, flags="exist")
        run("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", host)
        assert stats.lookup(7, total=True)["allow_stats"]["packets"] == 1
    finally:
        run("ip", "link", "set", "dev", vh, "xdp", "off", check=False)
        run("ip", "link", "del", vh, check=False)
        run("ip", "netns", "del", ns, check=False)
