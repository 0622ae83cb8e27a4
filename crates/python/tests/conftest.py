"""Shared fixtures of the ebpf_sdk tests.

Kernel tests are gated like the Rust ones (crates/testkit): they need
CAP_BPF (or CAP_SYS_ADMIN) and CAP_NET_ADMIN, bpffs at /sys/fs/bpf, bpftool
and unshare. Where those are missing they are skipped with the reason; with
EBPF_SDK_REQUIRE_KERNEL=1 (CI) they fail with it instead.

Tests that load the bundled firewall hold the same cross-process lock as the
Rust tests (/tmp/ebpf-sdk-firewall.lock, flock), so Python and Rust firewall
tests never overlap, and load it the way crates/testkit/src/firewall.rs does:
`bpftool prog loadall` in a private mount namespace where a fresh bpffs
directory is bind-mounted over /sys/fs/bpf, so the maps pinned by name land
in that directory and nothing outside it is touched.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

import ebpf_sdk

REPO = Path(__file__).resolve().parents[3]
FIREWALL_OBJ = REPO / "firewall-ebpf" / "firewall.bpf.o"
FIREWALL_LOCK = "/tmp/ebpf-sdk-firewall.lock"
REQUIRE_KERNEL_ENV = "EBPF_SDK_REQUIRE_KERNEL"
BPFFS = Path("/sys/fs/bpf")

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
CAP_BPF = 39

TABLE = "ingress_node_firewall_table_map"
STATS = "ingress_node_firewall_statistics_map"
EVENTS = "ingress_node_firewall_events_map"
CONFIG = "ingress_node_firewall_config_map"
PROG = "xdp_ingress_node_firewall_process"


def kernel_required() -> bool:
    return os.environ.get(REQUIRE_KERNEL_ENV, "").strip() == "1"


def which(name: str) -> Optional[str]:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


@functools.lru_cache(maxsize=None)
def kernel_missing() -> Optional[str]:
    """Why kernel tests cannot run here, or None when they can."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError as e:
        return f"cannot read /proc/self/status: {e}"
    cap_eff = next(
        (int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:")),
        0,
    )
    has = lambda cap: cap_eff & (1 << cap) != 0  # noqa: E731
    if not (has(CAP_BPF) or has(CAP_SYS_ADMIN)):
        return f"needs CAP_BPF or CAP_SYS_ADMIN (CapEff {cap_eff:#x}); run as root"
    if not has(CAP_NET_ADMIN):
        return f"needs CAP_NET_ADMIN (CapEff {cap_eff:#x}); run as root"
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    if not any(m.split()[1:3] == [str(BPFFS), "bpf"] for m in mounts if len(m.split()) > 2):
        return f"bpffs is not mounted at {BPFFS} (mount -t bpf bpf {BPFFS}, or run .ci/setup)"
    for tool, package in [("bpftool", "bpftool"), ("unshare", "util-linux")]:
        if which(tool) is None:
            return f"{tool} is not installed (apt-get install {package})"
    return None


def require_kernel(what: str = "this test") -> None:
    """Skips (or, under EBPF_SDK_REQUIRE_KERNEL=1, fails) without the kernel environment."""
    reason = kernel_missing()
    if reason is None:
        return
    if kernel_required():
        pytest.fail(f"{REQUIRE_KERNEL_ENV}=1 but the kernel test environment is missing: {reason}")
    pytest.skip(reason)


def require_programs(*names: str) -> None:
    """Like require_kernel, for programs a test runs (ip, ping)."""
    missing = [n for n in names if which(n) is None]
    if not missing:
        return
    reason = f"needs {', '.join(missing)} (run .ci/setup)"
    if kernel_required():
        pytest.fail(f"{REQUIRE_KERNEL_ENV}=1 but {reason}")
    pytest.skip(reason)


_counter = 0


def unique_name(prefix: str) -> str:
    """A name unique across processes, at most 15 bytes (map, interface and netns names)."""
    global _counter
    _counter += 1
    suffix = f"{os.getpid():x}{_counter:x}{int(time.time()) % 1296:x}"
    return f"{prefix[: 14 - len(suffix)]}_{suffix}"[-15:]


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError(f"`{' '.join(cmd)}` failed ({out.returncode}): {out.stderr}{out.stdout}")
    return out


class Firewall:
    """The bundled firewall loaded in a private bpffs directory."""

    def __init__(self, dir: Path):
        self.dir = dir
        self.obj = ebpf_sdk.Object.from_elf(str(FIREWALL_OBJ))

    def pin(self, name: str) -> str:
        return str(self.dir / name)

    def open(self, name: str) -> ebpf_sdk.Map:
        return self.obj.open(name, pin_dir=str(self.dir))

    @property
    def prog(self) -> str:
        return str(self.dir / "progs" / PROG)


@pytest.fixture
def firewall() -> Iterator[Firewall]:
    """Loads the firewall for one test, under the firewall lock; every pin
    is removed afterwards."""
    require_kernel()
    assert FIREWALL_OBJ.is_file(), f"{FIREWALL_OBJ} is missing (make -C firewall-ebpf)"
    with open(FIREWALL_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        dir = BPFFS / unique_name("pyfw")
        dir.mkdir()
        try:
            script = (
                'mount --bind "$1" /sys/fs/bpf && '
                'exec "$2" prog loadall "$3" /sys/fs/bpf/progs pinmaps /sys/fs/bpf'
            )
            run(
                which("unshare") or "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                str(dir),
                which("bpftool") or "bpftool",
                str(FIREWALL_OBJ),
            )
            yield Firewall(dir)
        finally:
            shutil.rmtree(dir, ignore_errors=True)
            assert not dir.exists(), f"cannot remove {dir}"


# ---------------------------------------------------------------- bpftool, the independent reader


def _hex_bytes(items: List[str]) -> bytes:
    return bytes(int(x, 16) for x in items)


def bpftool_dump(pin: str) -> Dict[bytes, bytes]:
    """Every entry of the map pinned at `pin`, as bpftool reads it: raw key -> raw value
    (per-CPU values concatenated, one slot per CPU)."""
    out = run(which("bpftool") or "bpftool", "-j", "map", "dump", "pinned", pin).stdout
    entries = {}
    for e in json.loads(out):
        e = e.get("formatted", e) if "key" not in e else e
        key = _hex_bytes(e["key"])
        if "values" in e:
            value = b"".join(_hex_bytes(v["value"]) for v in e["values"])
        else:
            value = _hex_bytes(e["value"])
        entries[key] = value
    return entries


def bpftool_lookup(pin: str, key: bytes) -> Optional[bytes]:
    """The raw value of `key` as bpftool reads it, or None when absent."""
    out = run(
        which("bpftool") or "bpftool",
        "-j",
        "map",
        "lookup",
        "pinned",
        pin,
        "key",
        "hex",
        *[f"{b:02x}" for b in key],
        check=False,
    )
    # A missing key: exit status 254 and `null` on stdout.
    if out.stdout.strip() == "null":
        return None
    if out.returncode != 0:
        raise AssertionError(f"bpftool lookup failed: {out.stderr}{out.stdout}")
    e = json.loads(out.stdout)
    if "values" in e:
        return b"".join(_hex_bytes(v["value"]) for v in e["values"])
    return _hex_bytes(e["value"])


def bpftool_update(pin: str, key: bytes, value: bytes) -> None:
    """Writes one entry with bpftool (per-CPU maps: `value` on every CPU)."""
    run(
        which("bpftool") or "bpftool",
        "map",
        "update",
        "pinned",
        pin,
        "key",
        "hex",
        *[f"{b:02x}" for b in key],
        "value",
        "hex",
        *[f"{b:02x}" for b in value],
    )


def python() -> str:
    return sys.executable
