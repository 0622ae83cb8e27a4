#!/usr/bin/env bash
# benches/python.sh - ebpf_sdk from Python, side by side with the earlier
# Python client's way (one bpftool process per entry) and with the CLI:
#
#   sudo benches/python.sh                    # 100k entries, 3 runs
#   sudo benches/python.sh --entries 10000    # options go to python_bench.py
#
# Builds target/release/ebpf-sdk, installs the package from this checkout
# into target/python-venv (as crates/python/test.sh does), then runs
# benches/python_bench.py, which prints a Markdown table on stdout
# (progress on stderr). Needs root, bpftool, bpffs at /sys/fs/bpf, cargo and
# python3 with venv. Its bpffs directory is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
((EUID == 0)) || { echo "python.sh: needs root (CAP_BPF and bpffs)" >&2; exit 2; }
command -v bpftool >/dev/null || { echo "python.sh: bpftool not found (apt-get install bpftool)" >&2; exit 2; }
mountpoint -q /sys/fs/bpf || { echo "python.sh: /sys/fs/bpf is not mounted" >&2; exit 2; }

echo "building ebpf-sdk (cargo build --release) and the Python package..." >&2
cargo build --release -q -p ebpf-sdk-cli >&2
target=${CARGO_TARGET_DIR:-target}
venv=$target/python-venv
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./crates/python >&2
tmp=$(mktemp -d /tmp/ebpf-sdk-pybench-bin.XXXXXX)
trap 'rm -rf -- "$tmp"' EXIT
# A copy: a concurrent build cannot swap the binary in the middle of the run.
cp -- "$target/release/ebpf-sdk" "$tmp/ebpf-sdk"
"$venv/bin/python" benches/python_bench.py --cli "$tmp/ebpf-sdk" "$@"
