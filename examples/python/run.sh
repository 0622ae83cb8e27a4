#!/usr/bin/env bash
# Installs the ebpf_sdk package from this checkout into a venv
# (target/python-venv, the one crates/python/test.sh uses) and runs the
# firewall walkthrough. As root, after `bash .ci/setup`:
#
#   examples/python/run.sh
#
# With the package already installed, run the script directly:
#   python3 examples/python/firewall_demo.py
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${CARGO_TARGET_DIR:-target}/python-venv
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
echo "installing ebpf_sdk into $venv (pip install ./crates/python)..." >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./crates/python
exec "$venv/bin/python" examples/python/firewall_demo.py "$@"
