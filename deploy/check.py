#!/usr/bin/env python3
"""Checks deploy/ offline, without Docker or a cluster (what CI runs).

1. deploy/Dockerfile, parsed with dockerfile-parse: a multi-stage build
   whose final stage is `scratch` holding only the binary built in the
   first stage; the builder's Rust is at least the workspace's
   rust-version; the build is `--locked` and statically linked (musl).
   .dockerignore keeps target/ out of the build context.
2. deploy/kubernetes/*.yaml, with `kubernetes-validate --strict` (unknown
   fields are errors) against the Kubernetes version it bundles.

The container arguments in the DaemonSet are checked against the real
binary by crates/cli/tests/deploy.rs (cargo test).

Usage: /opt/ebpf-sdk-venv/bin/python deploy/check.py  (the venv .ci/setup makes)
"""

import glob
import os
import re
import subprocess
import sys

from dockerfile_parse import DockerfileParser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(msg):
    print(f"deploy/check.py: {msg}", file=sys.stderr)
    sys.exit(1)


def check_dockerfile():
    path = os.path.join(ROOT, "deploy", "Dockerfile")
    df = DockerfileParser(path)
    stages = []
    for ins in df.structure:
        if ins["instruction"] == "FROM":
            stages.append([ins])
        elif ins["instruction"] != "COMMENT":
            if not stages:
                fail(f"{ins['instruction']} before the first FROM")
            stages[-1].append(ins)
    if len(stages) < 2:
        fail("the Dockerfile must be multi-stage")
    builder, final = stages[0], stages[-1]
    m = re.match(r"rust:(\d+)\.(\d+)\S*\s+AS\s+(\S+)", builder[0]["value"], re.I)
    if not m:
        fail(f"the first stage must be `FROM rust:X.Y... AS name`: {builder[0]['value']}")
    name = m.group(3)
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        rv = re.search(r'rust-version\s*=\s*"(\d+)\.(\d+)', f.read())
    if (int(m.group(1)), int(m.group(2))) < (int(rv.group(1)), int(rv.group(2))):
        fail(f"the builder's Rust {m.group(1)}.{m.group(2)} is older than rust-version {rv.group(1)}.{rv.group(2)}")
    runs = " ".join(i["value"] for i in builder if i["instruction"] == "RUN")
    for needed in ["cargo build --release --locked", "-p ebpf-sdk-cli", "unknown-linux-musl"]:
        if needed not in runs:
            fail(f"the build stage does not run `{needed}`")
    if final[0]["value"].strip() != "scratch":
        fail(f"the final stage must be FROM scratch, not {final[0]['value']}")
    allowed = {"COPY", "USER", "ENTRYPOINT", "CMD", "LABEL"}
    for ins in final[1:]:
        if ins["instruction"] not in allowed:
            fail(f"the final stage may not {ins['instruction']} ({ins['value']})")
        if ins["instruction"] == "COPY":
            if ins["value"].split() != [f"--from={name}", "/ebpf-sdk", "/ebpf-sdk"]:
                fail(f"the final stage copies more than the binary: COPY {ins['value']}")
    entry = [i["value"] for i in final if i["instruction"] == "ENTRYPOINT"]
    if entry != ['["/ebpf-sdk"]']:
        fail(f"ENTRYPOINT must be the binary: {entry}")
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        if "target" not in f.read().split():
            fail(".dockerignore must exclude target/")
    print(f"deploy/Dockerfile: {len(stages)} stages, final stage `scratch` with only /ebpf-sdk: ok")


def check_manifests():
    files = sorted(glob.glob(os.path.join(ROOT, "deploy", "kubernetes", "*.yaml")))
    if not files:
        fail("no manifests in deploy/kubernetes")
    exe = os.path.join(os.path.dirname(sys.executable), "kubernetes-validate")
    r = subprocess.run([exe, "--strict", *files], capture_output=True, text=True)
    sys.stdout.write(r.stdout + r.stderr)
    if r.returncode != 0:
        fail("kubernetes-validate --strict refused the manifests")


check_dockerfile()
check_manifests()
print("deploy/check.py: all checks passed")
