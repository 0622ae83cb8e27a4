#!/usr/bin/env bash
# The firewall demo: the bundled XDP firewall (firewall-ebpf/) on a veth pair
# into a network namespace, programmed with nothing but `ebpf-sdk` and the
# eBPF object, with real traffic from the namespace. Every command is printed
# (`$ ...`) before its output. docs/e2e-demo.md shows a real run; the test
# crates/cli/tests/e2e_firewall.rs runs the same flow with assertions.
#
# Usage (as root, from anywhere):
#   examples/firewall-demo.sh
# Needs: bash, iproute2 (ip), iputils-ping, socat, bpftool, util-linux
# (unshare), bpffs at /sys/fs/bpf (.ci/setup installs and mounts all of it).
# By default it runs `cargo build --release -p ebpf-sdk-cli` and uses
# target/release/ebpf-sdk; set EBPF_SDK=/path/to/ebpf-sdk to use another.
#
# It only touches what it creates, all with names ending in its pid: a
# network namespace, a veth pair, a bpffs directory, socat listeners on the
# host end's address. All of it is removed on exit, also on error or Ctrl-C.
set -euo pipefail

if [ -n "${EBPF_SDK:-}" ]; then
    EBPF_SDK=$(realpath -- "$EBPF_SDK") # before the cd below
fi
cd "$(dirname "$0")/.."
ELF=firewall-ebpf/firewall.bpf.o

# --- names and addresses ------------------------------------------------------
ID=$$
NS=fwdemo_$ID                 # network namespace
VH=fwd${ID}h                  # host end of the veth pair (<= 15 chars)
VN=fwd${ID}n                  # end inside the namespace
PIN=/sys/fs/bpf/fwdemo_$ID    # private bpffs directory: every map and the program
TMP=$(mktemp -d /tmp/fwdemo.XXXXXX)
PIDS=()                       # background processes to stop on exit

# A 10.201.N.0/24 and fd00:ebf:201:N::/64 that no interface here uses yet.
N=
ADDRS=$(ip -o addr show)
for n in $(seq $((ID % 254 + 1)) 254) $(seq 1 254); do
    if ! grep -qE " (10\.201\.$n\.|fd00:ebf:201:$(printf %x "$n"):)" <<<"$ADDRS"; then
        N=$n
        break
    fi
done
[ -n "$N" ] || { echo "no free 10.201.N.0/24" >&2; exit 1; }
H4=10.201.$N.1 NS4=10.201.$N.2
P6=fd00:ebf:201:$(printf %x "$N")::
H6=${P6}1 NS6=${P6}2

cleanup() {
    local rc=$?
    set +e
    echo
    echo "# cleanup"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    ip link set dev "$VH" xdp off 2>/dev/null
    ip link del "$VH" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$PIN" "$TMP"
    echo "removed netns $NS, veth $VH/$VN, $PIN"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers ------------------------------------------------------------------
# Print a command (quoted so it can be copied), then run it.
show() {
    local line='$' a
    for a in "$@"; do
        case $a in
        '' | *[!A-Za-z0-9_./:=,@%+-]*) line+=" '${a//\'/\'\\\'\'}'" ;;
        *) line+=" $a" ;;
        esac
    done
    echo "$line"
}
run() {
    show "$@"
    "$@"
}
step() {
    echo
    echo "=== $*"
}
for cmd in ip ping socat bpftool unshare timeout; do
    command -v "$cmd" >/dev/null || { echo "missing $cmd: run .ci/setup" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }

if [ -n "${EBPF_SDK:-}" ]; then
    SDK_BIN=$EBPF_SDK
else
    cargo build --release -q -p ebpf-sdk-cli
    SDK_BIN=$PWD/target/release/ebpf-sdk
fi
# `ebpf-sdk` in the printed commands is this binary.
ebpf-sdk() { "$SDK_BIN" "$@"; }
export NO_COLOR=1

# Ping from the namespace; a dropped ping is not an error here.
ping_from_ns() {
    show ip netns exec "$NS" ping -q -n -c 3 -i 0.2 -W 1 "$@"
    ip netns exec "$NS" ping -q -n -c 3 -i 0.2 -W 1 "$@" | grep transmitted || true
}
# TCP connect from the namespace (1 s timeout).
tcp_from_ns() {
    if run ip netns exec "$NS" socat -u OPEN:/dev/null "TCP4:$H4:$1,connect-timeout=1" 2>/dev/null; then
        echo "  -> connected"
    else
        echo "  -> no connection (SYN dropped)"
    fi
}
# One UDP datagram from the namespace; the host listener appends it to a file.
udp_from_ns() {
    local msg="datagram-to-$1-$RANDOM"
    echo "\$ echo $msg | ip netns exec $NS socat -u - UDP4:$H4:$1"
    echo "$msg" | ip netns exec "$NS" socat -u - "UDP4:$H4:$1"
    sleep 0.5
    if grep -q "$msg" "$TMP/udp-$1.log"; then echo "  -> arrived"; else echo "  -> not arrived (dropped)"; fi
}
FW=(--elf "$ELF" --pin-dir "$PIN")

# --- setup --------------------------------------------------------------------
step "0. a namespace, a veth pair, the firewall loaded and attached"
run ip netns add "$NS"
run ip link add "$VH" type veth peer name "$VN" netns "$NS"
run ip addr add "$H4/24" dev "$VH"
run ip -6 addr add "$H6/64" dev "$VH" nodad
run ip link set "$VH" up
run ip -n "$NS" addr add "$NS4/24" dev "$VN"
run ip -n "$NS" -6 addr add "$NS6/64" dev "$VN" nodad
run ip -n "$NS" link set "$VN" up
run ip -n "$NS" link set lo up
IDX=$(cat "/sys/class/net/$VH/ifindex")
echo "host end $VH has ifindex $IDX"

# The maps are declared LIBBPF_PIN_BY_NAME, so bpftool pins them at
# /sys/fs/bpf/<name>, shared with everyone. Give this demo its own directory:
# bind-mount it over /sys/fs/bpf in a private mount namespace for the load.
run mkdir "$PIN"
# shellcheck disable=SC2016 # $1 and $2 are for the inner sh
run unshare --mount --propagation private sh -c \
    'mount --bind "$1" /sys/fs/bpf && bpftool prog loadall "$2" /sys/fs/bpf/progs pinmaps /sys/fs/bpf' \
    sh "$PIN" "$ELF"
run ls "$PIN" "$PIN/progs"
run ip link set dev "$VH" xdp pinned "$PIN/progs/xdp_ingress_node_firewall_process"
run bpftool net show dev "$VH"

# Host-side listeners on the host end's address: TCP on both sides of the
# range 18000..18100, UDP 15353 and 15354.
for port in 17999 18000 18100 18101; do
    socat "TCP4-LISTEN:$port,bind=$H4,fork,reuseaddr" /dev/null & PIDS+=($!)
done
for port in 15353 15354; do
    : >"$TMP/udp-$port.log"
    socat -u "UDP4-RECV:$port,bind=$H4" "OPEN:$TMP/udp-$port.log,append" & PIDS+=($!)
done
sleep 0.3
for p in "${PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "a socat listener did not start (port in use?)" >&2; exit 1; }
done
echo "socat listeners on $H4: tcp 17999 18000 18100 18101, udp 15353 15354"

# --- 1 ------------------------------------------------------------------------
step "1. empty table: everything passes, no rule counts"
run ebpf-sdk dump "${FW[@]}" --map ingress_node_firewall_table_map
ping_from_ns "$H4"
ping_from_ns -6 "$H6"
tcp_from_ns 18000
run ebpf-sdk lookup "${FW[@]}" --map ingress_node_firewall_statistics_map --key 7 -o json

# --- 2 ------------------------------------------------------------------------
step "2. create a DENY rule in \$EDITOR (here a script that writes the entry)"
cat >"$TMP/editor.sh" <<EOF
#!/bin/sh
# Stands in for vi: replaces the template ebpf-sdk opened with one entry.
cat > "\$1" <<'ENTRY'
key: {prefixLen: 64, ingress_ifindex: $IDX, ip_data: $NS4}
value: {rules: [{ruleId: 7, protocol: 1, icmpType: 8, icmpCode: 0, action: 1}]}
ENTRY
EOF
chmod +x "$TMP/editor.sh"
show ebpf-sdk template --elf "$ELF" --map ingress_node_firewall_table_map
ebpf-sdk template --elf "$ELF" --map ingress_node_firewall_table_map >"$TMP/template.yaml"
head -7 "$TMP/template.yaml"
echo "...   (this template is what \$EDITOR opens)"
run export EDITOR="$TMP/editor.sh"
run ebpf-sdk create "${FW[@]}" --map ingress_node_firewall_table_map
run ebpf-sdk dump "${FW[@]}" --map ingress_node_firewall_table_map
ping_from_ns "$H4"
run ebpf-sdk lookup "${FW[@]}" --map ingress_node_firewall_statistics_map --key 7
echo "# the same bytes, read by bpftool: the 24-byte key and the first rule's 12 bytes"
run bpftool -j map dump pinned "$PIN/ingress_node_firewall_table_map" >"$TMP/table.json"
grep -oE '"key":\[[^]]*\]' "$TMP/table.json"
grep -oE '"value":\[("0x[0-9a-f]+",){12}' "$TMP/table.json" | sed 's/,$/,...]/'

# --- 3 ------------------------------------------------------------------------
step "3. update the rule to ALLOW"
run ebpf-sdk update "${FW[@]}" --map ingress_node_firewall_table_map --exist \
    --key "{prefixLen: 64, ingress_ifindex: $IDX, ip_data: $NS4}" \
    --value '{rules: [{ruleId: 7, protocol: 1, icmpType: 8, icmpCode: 0, action: 2}]}'
ping_from_ns "$H4"
run ebpf-sdk lookup "${FW[@]}" --map ingress_node_firewall_statistics_map --key 7 -o json

# --- 4 ------------------------------------------------------------------------
step "4. a rule list: TCP 18000..18100 and UDP 15353 denied, ICMP echo allowed"
cat >"$TMP/rules.yaml" <<EOF
# Source $NS4 arriving on $VH (ifindex $IDX); the first matching rule wins.
key: {prefixLen: 64, ingress_ifindex: $IDX, ip_data: $NS4}
value:
  rules:
    - {ruleId: 7, protocol: 1, icmpType: 8, icmpCode: 0, action: 2}               # ICMP echo: allow
    - {ruleId: 10, protocol: 6, dstPortStart: 18000, dstPortEnd: 18100, action: 1} # TCP 18000..=18100: deny
    - {ruleId: 11, protocol: 17, dstPortStart: 15353, action: 1}                   # UDP 15353 only: deny
EOF
run cat "$TMP/rules.yaml"
run ebpf-sdk apply "${FW[@]}" --map ingress_node_firewall_table_map -f "$TMP/rules.yaml" --dry-run
run ebpf-sdk apply "${FW[@]}" --map ingress_node_firewall_table_map -f "$TMP/rules.yaml"
for port in 17999 18000 18100 18101; do tcp_from_ns "$port"; done
udp_from_ns 15353
udp_from_ns 15354
ping_from_ns "$H4"
echo "# statistics of rules 7, 10 and 11 (per-CPU values elided):"
show ebpf-sdk dump "${FW[@]}" --map ingress_node_firewall_statistics_map -o jsonl
ebpf-sdk dump "${FW[@]}" --map ingress_node_firewall_statistics_map -o jsonl |
    grep -E '^\{"key":(7|10|11),' |
    sed -E 's/"value":\[.*\],"total"/"value":[...per CPU...],"total"/'

# --- 5 ------------------------------------------------------------------------
step "5. IPv6: deny ICMPv6 echo from the namespace's /64"
run ebpf-sdk update "${FW[@]}" --map ingress_node_firewall_table_map --noexist \
    --key "{prefixLen: 96, ingress_ifindex: $IDX, ip_data: \"$P6\"}" \
    --value '{rules: [{ruleId: 20, protocol: 58, icmpType: 128, icmpCode: 0, action: 1}]}'
ping_from_ns -6 "$H6"
ping_from_ns "$H4"
run ebpf-sdk lookup "${FW[@]}" --map ingress_node_firewall_statistics_map --key 20 -o json

# --- 6 ------------------------------------------------------------------------
step "6. delete both entries: everything passes again"
run ebpf-sdk delete "${FW[@]}" --map ingress_node_firewall_table_map \
    --key "{prefixLen: 64, ingress_ifindex: $IDX, ip_data: $NS4}"
run ebpf-sdk delete "${FW[@]}" --map ingress_node_firewall_table_map \
    --key "{prefixLen: 96, ingress_ifindex: $IDX, ip_data: \"$P6\"}"
run ebpf-sdk dump "${FW[@]}" --map ingress_node_firewall_table_map
ping_from_ns "$H4"
ping_from_ns -6 "$H6"
tcp_from_ns 18000
udp_from_ns 15353

# --- 7 ------------------------------------------------------------------------
step "7. events: every DENY emits a perf event, decoded with its BTF type"
run ebpf-sdk update "${FW[@]}" --map ingress_node_firewall_table_map \
    --key "{prefixLen: 64, ingress_ifindex: $IDX, ip_data: $NS4}" \
    --value '{rules: [{ruleId: 7, protocol: 1, icmpType: 8, icmpCode: 0, action: 1}]}'
echo "\$ ebpf-sdk events ${FW[*]} --map ingress_node_firewall_events_map --type event_hdr_st --count 3 --timeout 10 > events.jsonl &"
ebpf-sdk events "${FW[@]}" --map ingress_node_firewall_events_map --type event_hdr_st \
    --count 3 --timeout 10 >"$TMP/events.jsonl" 2>"$TMP/events.err" &
EV=$!
PIDS+=("$EV")
# It says so once its rings are in the map.
for _ in $(seq 100); do
    grep -q "reading events" "$TMP/events.err" 2>/dev/null && break
    sleep 0.1
done
ping_from_ns "$H4"
wait "$EV" || true
# Each event: the struct event_hdr_st fields, then the frame as `payload`
# (shortened here).
sed -E 's/("payload":"0x[0-9a-f]{40})[0-9a-f]*/\1.../' "$TMP/events.jsonl"

step "done"
