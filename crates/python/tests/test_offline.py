"""Offline: values <-> bytes, checked against the bytes gcc lays out and the
golden bytes of the Rust tests; every exception type; docs and stubs.
No kernel, no root."""

from __future__ import annotations

import ast
import copy
import inspect
import ipaddress
import json
import shutil
import subprocess
from pathlib import Path

import pytest

import ebpf_sdk
from conftest import CONFIG, FIREWALL_OBJ, REPO, STATS, TABLE

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "python" / "ebpf_sdk"


@pytest.fixture(scope="module")
def obj() -> ebpf_sdk.Object:
    return ebpf_sdk.Object.from_elf(str(FIREWALL_OBJ))


KEY = {"prefixLen": 64, "ingress_ifindex": 6, "ip_data": "10.10.10.2"}
RULE = {"rules": [{"ruleId": 1, "protocol": 1, "icmpType": 8, "action": 2}]}


def test_golden_key_and_value_bytes(obj):
    # The README's `ebpf-sdk encode` example, byte for byte.
    table = obj.map(TABLE)
    k, v = table.encode(KEY, RULE)
    assert k.hex(" ", 4) == "40000000 06000000 0a0a0a02 00000000 00000000 00000000"
    assert v[:16].hex(" ", 4) == "01000000 01000000 00080002 00000000"
    assert len(v) == 1200 and v[12:] == bytes(1188)
    key, value = table.decode(k, v)
    assert key == KEY
    assert value["rules"][0] == {
        "ruleId": 1,
        "protocol": 1,
        "dstPortStart": 0,
        "dstPortEnd": 0,
        "icmpType": 8,
        "icmpCode": 0,
        "action": 2,
    }
    # Trailing all-zero array elements are left out, as `dump` prints them.
    assert len(value["rules"]) == 1
    # What decode gives encodes to the same bytes.
    assert table.encode(key, value) == (k, v)


# (gcc label, map, key or value, the value as a Python program writes it):
# the same values as crates/sdk/tests/codec_vs_gcc.rs writes in YAML.
GCC_CASES = [
    ("key4", TABLE, "key", {"prefixLen": 56, "ingress_ifindex": 7, "ip_data": "192.168.10.0"}),
    (
        "key6",
        TABLE,
        "key",
        {"prefixLen": 96, "ingress_ifindex": 0x01020304, "ip_data": ipaddress.ip_address("fd00:1:2::a")},
    ),
    (
        "rules",
        TABLE,
        "value",
        {
            "rules": [
                {"ruleId": 1, "protocol": 6, "dstPortStart": 8080, "dstPortEnd": 8090, "action": 1},
                {"ruleId": 70000, "protocol": 1, "icmpType": 8, "icmpCode": 3, "action": 2},
                *[{}] * 97,
                {"ruleId": 0xFFFFFFFF, "dstPortStart": 65535, "action": 2},
            ]
        },
    ),
    (
        "stats",
        STATS,
        "value",
        {"allow_stats": {"packets": 1, "bytes": 0x1122334455667788}, "deny_stats": {"packets": 3, "bytes": 4}},
    ),
    (
        "config",
        CONFIG,
        "value",
        {
            "mode": "FW_MODE_AUDIT",
            "log_prio": "FW_LOG_PRIO_LOW",
            "verbose": 200,
            "max_event_bytes": 1500,
            "features": "FW_FEAT_NO_DEBUG_MAP",
            "log_level": 5,
            "sample_rate": 31,
            "flags_reserved": 0xABCDEF,
            "ttl_adjust": -7,
            "prio_bias": -512,
            "mgmt_port": 8443,
            "mgmt_addr": {"v6": "2001:db8::1"},
            "name": "edge-fw",
            "mgmt_netmask": ipaddress.ip_address("255.255.255.0"),
            "s8_val": -128,
            "s16_val": -2,
            "s32_val": -100000,
            "s64_val": -5000000000,
            "enabled": True,
            "mac": "02:42:ac:11:00:02",
            "port_matrix": ((1, 0, 3), [0, 65535]),
            "tail_tag": 9,
        },
    ),
    ("dbgkey", "ingress_node_firewall_debug_map", "key", {"saddr": "10.9.8.7", "sport": 53, "proto": 17}),
]


@pytest.fixture(scope="module")
def gcc_bytes(tmp_path_factory):
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed for the C cross-check (apt-get install gcc)"
    out = tmp_path_factory.mktemp("gcc") / "fill"
    subprocess.run(
        [
            gcc,
            "-std=gnu11",
            "-Wall",
            "-I",
            str(REPO / "firewall-ebpf"),
            "-o",
            str(out),
            str(REPO / "crates/sdk/tests/fixtures/fill_firewall.c"),
        ],
        check=True,
    )
    text = subprocess.run([str(out)], check=True, capture_output=True, text=True).stdout
    return {label: bytes.fromhex(h) for label, h in (line.split(" ", 1) for line in text.splitlines())}


@pytest.mark.parametrize("label,map,side,value", GCC_CASES, ids=[c[0] for c in GCC_CASES])
def test_encoding_matches_what_gcc_lays_out(obj, gcc_bytes, label, map, side, value):
    m = obj.map(map)
    theirs = gcc_bytes[label]
    if side == "key":
        ours, _ = m.encode(value, None)
    else:
        _, ours = m.encode(None, value)
        if m.ncpus:  # per-CPU: the first CPU's slot
            ours = ours[: len(theirs)]
    assert ours == theirs, f"{label}: ours {ours.hex()} gcc {theirs.hex()}"
    # gcc's bytes decode to values that encode back to them.
    zero_key = bytes(m.key_size)
    if side == "key":
        key, _ = m.decode(theirs, bytes(len(m.encode(None, None)[1])))
        assert m.encode(key, None)[0] == theirs
    else:
        slots = m.ncpus or 1
        stride = (m.value_size + 7) // 8 * 8 if m.ncpus else m.value_size
        raw = theirs + bytes(stride - len(theirs))
        _, value = m.decode(zero_key, raw * slots)
        again = m.encode(None, value)[1]
        assert again[: len(theirs)] == theirs


def test_python_types_follow_the_yaml_rules(obj):
    table = obj.map(TABLE)
    want, _ = table.encode(KEY, None)
    # bytes fill a byte array byte for byte; tuples are lists; ipaddress objects are their text.
    for ip in [b"\x0a\x0a\x0a\x02", bytearray(b"\x0a\x0a\x0a\x02"), memoryview(b"\x0a\x0a\x0a\x02"),
               (10, 10, 10, 2), [10, 10, 10, 2, 0], ipaddress.IPv4Address("10.10.10.2")]:
        assert table.encode({**KEY, "ip_data": ip}, None)[0] == want, ip
    # Integers that are not ints (numpy's) count through __index__; IntEnums are ints.
    import enum

    class Index:
        def __index__(self):
            return 6

    class IfIndex(enum.IntEnum):
        LAN = 6

    for six in [Index(), IfIndex.LAN]:
        assert table.encode({**KEY, "ingress_ifindex": six}, None)[0] == want
    # A missing field is zero, None is zero, an empty dict is all zero.
    assert table.encode({**KEY, "ingress_ifindex": None}, None)[0][4:8] == bytes(4)
    assert table.encode({"prefixLen": 64, "ip_data": "10.10.10.2"}, None)[0][4:8] == bytes(4)
    assert table.encode({}, None)[0] == bytes(24)
    assert table.encode(None, None)[1] == bytes(1200)
    # Enum names and bools, as in YAML.
    config = obj.map(CONFIG)
    _, a = config.encode(0, {"mode": "FW_MODE_AUDIT", "enabled": True})
    _, b = config.encode(0, {"mode": 1, "enabled": 1})
    assert a == b
    _, value = config.decode(bytes(4), a)
    assert value["mode"] == "FW_MODE_AUDIT"


def test_per_cpu_values_fill_every_cpu(obj):
    stats = obj.map(STATS)
    n = stats.ncpus
    assert n and n >= 1
    one = {"allow_stats": {"packets": 1, "bytes": 2}}
    _, v = stats.encode(7, one)
    assert len(v) == 32 * n
    assert v == (bytes.fromhex("0100000000000000" "0200000000000000") + bytes(16)) * n
    key, values = stats.decode((7).to_bytes(4, "little"), v)
    assert key == 7
    assert isinstance(values, list) and len(values) == n
    assert values[0]["allow_stats"] == {"packets": 1, "bytes": 2}
    # A list gives one value per CPU.
    per_cpu = [{"deny_stats": {"packets": i}} for i in range(n)]
    _, v = stats.encode(7, per_cpu)
    assert [stats.decode(bytes(4), v)[1][i]["deny_stats"]["packets"] for i in range(n)] == list(range(n))


def u128_object(tmp_path) -> ebpf_sdk.Object:
    """A saved schema with one array of `unsigned __int128` values."""
    doc = json.loads((REPO / "crates/btf/tests/golden/firewall.json").read_text())
    m = copy.deepcopy(next(x for x in doc["maps"] if x["name"] == CONFIG))
    m.update(name="wide", value_size=16, btf_value_type_id=0)
    m["value"] = {"name": "unsigned __int128", "size": 16, "kind": "int", "signed": False}
    doc["maps"] = [m]
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(doc))
    return ebpf_sdk.Object.from_schema(str(path))


def test_ints_beyond_128_bits(tmp_path):
    wide = u128_object(tmp_path).map("wide")
    top = 2**128 - 1
    _, v = wide.encode(0, top)
    assert v == b"\xff" * 16
    # Beyond 64 bits the decoder gives the decimal text, as `decode` and
    # `dump` show it (JSON and YAML readers lose such numbers); the text
    # goes back in unchanged.
    _, back = wide.decode(bytes(4), v)
    assert back == str(top)
    assert wide.encode(0, back)[1] == v
    for n in [2**127 + 5, 2**100, 2**64]:
        _, v = wide.encode(0, n)
        assert int.from_bytes(v, "little") == n
        assert wide.decode(bytes(4), v)[1] == str(n)
    _, v = wide.encode(0, 2**64 - 1)
    assert wide.decode(bytes(4), v)[1] == 2**64 - 1
    for bad in [2**128, 2**300, -1]:
        with pytest.raises(ebpf_sdk.InputError) as e:
            wide.encode(0, bad)
        assert "does not fit" in str(e.value) or "unsigned" in str(e.value), str(e.value)


def test_schema_is_what_extract_prints(obj):
    golden = json.loads((REPO / "crates/btf/tests/golden/firewall.json").read_text())
    assert obj.maps == [m["name"] for m in golden["maps"]]
    for m in golden["maps"]:
        assert obj.schema(m["name"]) == m
        assert obj.map(m["name"]).schema() == m
    assert obj.document()["maps"] == golden["maps"]
    assert obj.pin_path(TABLE) == "/sys/fs/bpf/" + TABLE
    t = obj.map(TABLE)
    assert (t.name, t.type, t.key_size, t.value_size, t.max_entries, t.pin, t.is_open) == (
        TABLE, "lpm_trie", 24, 1200, 1024, None, False)


def test_from_schema_is_from_elf(tmp_path, obj):
    path = tmp_path / "fw.json"
    path.write_text(json.dumps(obj.document()))
    saved = ebpf_sdk.Object.from_schema(str(path))
    assert saved.maps == obj.maps
    assert saved.map(TABLE).encode(KEY, RULE) == obj.map(TABLE).encode(KEY, RULE)
    # Types that are not in a map are only in the ELF.
    with pytest.raises(ebpf_sdk.Error, match="from_elf"):
        saved.decode_type("event_hdr_st", bytes(8))


def test_decode_type_reads_an_event_header(obj, gcc_bytes):
    ev = obj.decode_type("event_hdr_st", gcc_bytes["event"])
    assert ev == {"ifId": 6, "ruleId": 42, "action": 1, "pad": 0, "pktLength": 98}
    assert obj.decode_type("struct event_hdr_st", gcc_bytes["event"] + b"\xaa")["rest"] == "0xaa"


# ---------------------------------------------------------------- errors


def test_exception_hierarchy():
    assert issubclass(ebpf_sdk.InputError, ebpf_sdk.Error)
    assert issubclass(ebpf_sdk.InputError, ValueError)
    assert issubclass(ebpf_sdk.KernelError, ebpf_sdk.Error)
    assert issubclass(ebpf_sdk.KernelError, OSError)
    assert issubclass(ebpf_sdk.MismatchError, ebpf_sdk.Error)
    assert issubclass(ebpf_sdk.Error, Exception)


@pytest.mark.parametrize(
    "value,path,message",
    [
        ({"rules": [{}, {}, {}, {"dstPortEnd": 70000}]}, "value.rules[3].dstPortEnd", "does not fit in __u16"),
        ({"rules": [{"ruleId": -1}]}, "value.rules[0].ruleId", "does not fit"),
        ({"rules": [{"nope": 1}]}, "value.rules[0].nope", "nope"),
        ({"rules": [{"protocol": "tcp"}]}, "value.rules[0].protocol", "tcp"),
        ({"rules": [{"ruleId": 1.5}]}, "value.rules[0].ruleId", "1.5"),
        ({"rules": [{}] * 101}, "value.rules", "101"),
        ({"rules": [{"ruleId": {1, 2}}]}, "value.rules[0].ruleId", "set {1, 2} is not a value"),
        ({"rules": [{1: 2}]}, "value.rules[0]", "must be a str"),
    ],
)
def test_input_errors_name_the_field(obj, value, path, message):
    with pytest.raises(ebpf_sdk.InputError) as e:
        obj.map(TABLE).encode(KEY, value)
    assert e.value.path == path
    assert path in str(e.value) and message in str(e.value), str(e.value)
    assert isinstance(e.value, ValueError)


def test_other_input_errors(obj, tmp_path):
    table = obj.map(TABLE)
    with pytest.raises(ebpf_sdk.InputError, match="23 bytes given, the key is 24 bytes") as e:
        table.decode(bytes(23), bytes(1200))
    assert e.value.path is None
    with pytest.raises(ebpf_sdk.InputError, match="expected bytes"):
        table.decode("not bytes", bytes(1200))
    with pytest.raises(ebpf_sdk.InputError, match="ingress_node_firewall_table_map"):
        obj.map("no_such_map")
    with pytest.raises(ebpf_sdk.InputError, match="No such file"):
        ebpf_sdk.Object.from_elf(str(tmp_path / "missing.o"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ebpf_sdk.InputError, match="bad.json"):
        ebpf_sdk.Object.from_schema(str(tmp_path / "bad.json"))
    (tmp_path / "junk.o").write_bytes(b"\x7fELF junk")
    with pytest.raises(ebpf_sdk.InputError, match="junk.o"):
        ebpf_sdk.Object.from_elf(str(tmp_path / "junk.o"))
    with pytest.raises(ebpf_sdk.InputError, match="no_such_type"):
        obj.decode_type("no_such_type", b"")


def test_offline_handles_refuse_map_operations(obj):
    table = obj.map(TABLE)
    calls = [
        lambda: table.lookup(KEY),
        lambda: table.update(KEY, RULE),
        lambda: table.delete(KEY),
        lambda: table[KEY],
        lambda: KEY in table,
        lambda: len(table),
        lambda: list(table.items()),
        lambda: table.dump(),
        lambda: table.apply([]),
        lambda: table.pop(),
        lambda: obj.map("ingress_node_firewall_events_map").events(type="event_hdr_st"),
    ]
    for call in calls:
        with pytest.raises(ebpf_sdk.Error, match="offline") as e:
            call()
        assert type(e.value) is ebpf_sdk.Error


def test_kernel_errors_carry_errno(tmp_path, obj):
    # Not on bpffs: the open fails before any syscall on a map.
    with pytest.raises(ebpf_sdk.KernelError, match="not on bpffs|no BPF object") as e:
        obj.open(TABLE, pinned=str(tmp_path / "nothing"))
    assert isinstance(e.value, OSError)
    # A regular file is refused the same way.
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ebpf_sdk.KernelError):
        obj.open(TABLE, pinned=str(f))


# ---------------------------------------------------------------- docs and stubs


def test_help_is_useful():
    text = inspect.getdoc(ebpf_sdk.Map)
    assert "table[key] = value" in text and "apply" in text
    for name in ["update", "lookup", "delete", "items", "dump", "apply", "encode", "decode", "events"]:
        doc = inspect.getdoc(getattr(ebpf_sdk.Map, name))
        assert doc and len(doc) > 40, name
    assert "flags" in inspect.getdoc(ebpf_sdk.Map.update)
    for name in ["from_elf", "from_schema", "from_pinned", "open", "map", "schema"]:
        assert inspect.getdoc(getattr(ebpf_sdk.Object, name)), name
    assert ".path" in inspect.getdoc(ebpf_sdk.InputError) or "path" in inspect.getdoc(ebpf_sdk.InputError)


def _stub_classes(path: Path):
    """Class name -> the names its stub defines (methods and attributes)."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ClassDef):
            names = set()
            for n in node.body:
                if isinstance(n, ast.FunctionDef):
                    names.add(n.name)
                elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
                    names.add(n.target.id)
            out[node.name] = names
    return out


def test_stubs_match_the_module():
    """Every class and public member of the native module is in _native.pyi,
    and everything the stub names exists."""
    installed = Path(ebpf_sdk.__file__).parent
    for where in [installed, PACKAGE_DIR]:
        assert (where / "py.typed").is_file(), where
        assert (where / "_native.pyi").is_file(), where
    stubs = _stub_classes(installed / "_native.pyi")
    native = ebpf_sdk._native
    classes = {n for n in dir(native) if not n.startswith("_") and inspect.isclass(getattr(native, n))}
    assert set(stubs) == classes
    for name, members in stubs.items():
        cls = getattr(native, name)
        public = {n for n in vars(cls) if not n.startswith("_")}
        assert {m for m in members if not m.startswith("_")} == public, name
        for m in members:
            assert hasattr(cls, m), f"{name}.{m} is in the stub but not in the module"
