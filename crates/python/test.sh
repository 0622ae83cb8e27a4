#!/usr/bin/env bash
# Builds the Python package into a virtual environment and runs its pytest
# suite: what .ci/run does, and the command the README gives.
#
#   bash crates/python/test.sh [PYTEST ARGS...]
#
# The venv is target/python-venv (made with `python3 -m venv` when missing;
# PYTHON=/path/to/python3 picks the interpreter). The package is built from
# this checkout with `pip install ./crates/python` (maturin from PyPI,
# cargo for the Rust side) and reinstalled every run; pytest comes from
# PyPI. Kernel tests need root; with EBPF_SDK_REQUIRE_KERNEL=1 one that
# cannot run fails instead of being skipped. A run that collects no test
# fails too (pytest's exit status 5).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=${CARGO_TARGET_DIR:-target}/python-venv
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check 'pytest>=8'
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./crates/python

cd crates/python
status=0
"../../$venv/bin/python" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "crates/python/test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
