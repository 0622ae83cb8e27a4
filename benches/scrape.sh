#!/usr/bin/env bash
# How long a Prometheus scrape of a 100k-entry map takes with `ebpf-sdk export`
# (issue #16's target: under 0.5 s). Run as root:
#
#   sudo benches/scrape.sh              # 100,000 entries, median of 5 scrapes
#   sudo benches/scrape.sh --quick      # 10,000 entries, 3 scrapes
#   N=200000 RUNS=9 sudo -E benches/scrape.sh
#
# Three maps, each filled with N entries by `ebpf-sdk apply` and read by one
# `ebpf-sdk export` (release build), in a private bpffs directory removed at
# the end; the maps are created with bpftool with the types and sizes of the
# bundled objects' maps (the schema comes from those objects):
#   stats  the firewall's per-rule statistics at scale: PERCPU_ARRAY, key __u32,
#          value struct ruleStatistics_st (4 x __u64, summed over CPUs):
#          4 samples an entry;
#   debug  the firewall's debug map at scale: LRU_HASH, key struct dbg_key_st
#          (an IPv4 address, a port, a protocol: 3 labels), value struct
#          dbg_val_st (5 numbers): 5 samples an entry;
#   bench  benches/bench_maps.bpf.o's HASH: key struct lpm_ip_key_st, value
#          struct bench_val (ruleId, action, pad[3], counters[11]): 16 samples
#          an entry, the heavy case.
# For each: the wall time of one HTTP scrape (curl, the endpoint already
# running: what Prometheus waits for), median and worst of RUNS, and the
# exporter's own ebpf_sdk_scrape_duration_seconds (reading and rendering
# inside the process, without HTTP).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
RUNS=${RUNS:-5}
BUILD=1
for arg in "$@"; do
    case $arg in
        --quick) N=10000 RUNS=3 ;;
        --no-build) BUILD=0 ;;
        *) echo "usage: $0 [--quick] [--no-build]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (bpf maps)" >&2; exit 1; }
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

if [ $BUILD = 1 ]; then
    cargo build --release -q -p ebpf-sdk-cli >&2
fi
BIN=$PWD/target/release/ebpf-sdk
FW=$PWD/firewall-ebpf/firewall.bpf.o
BENCH=$PWD/benches/bench_maps.bpf.o

DIR=/sys/fs/bpf/ebpf_sdk_scrape_$$
TMP=$(mktemp -d)
EXPORT_PID=
cleanup() {
    [ -n "$EXPORT_PID" ] && kill "$EXPORT_PID" 2>/dev/null && wait "$EXPORT_PID" 2>/dev/null
    rm -rf "$DIR" "$TMP"
}
trap cleanup EXIT
mkdir "$DIR"

echo "creating and filling 3 maps of $N entries in $DIR" >&2
bpftool map create "$DIR/ingress_node_firewall_statistics_map" type percpu_array \
    key 4 value 32 entries "$N" name scrape_stats
bpftool map create "$DIR/ingress_node_firewall_debug_map" type lru_hash \
    key 8 value 24 entries $((2 * N)) name scrape_debug
bpftool map create "$DIR/bench_hash" type hash key 24 value 96 entries "$N" name scrape_bench

python3 - "$N" "$TMP" <<'EOF'
import sys
n, tmp = int(sys.argv[1]), sys.argv[2]
with open(f"{tmp}/stats.jsonl", "w") as f:
    for i in range(n):
        f.write('{"key":%d,"value":{"allow_stats":{"packets":%d,"bytes":%d},'
                '"deny_stats":{"packets":%d,"bytes":%d}}}\n' % (i, i, 64 * i, i // 2, 98 * (i // 2)))
with open(f"{tmp}/debug.jsonl", "w") as f:
    for i in range(n):
        a = 0x0A000000 + i
        ip = f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"
        f.write('{"key":{"saddr":"%s","sport":%d,"proto":6},"value":{"packets":%d,'
                '"bytes":%d,"last_rule_id":%d,"last_action":1,"last_ifindex":2}}\n'
                % (ip, 1024 + i % 60000, i, 60 * i, i % 100))
EOF
python3 benches/gen.py jsonl "$N" "$TMP/bench.jsonl" >&2
"$BIN" apply -q --elf "$FW" --pin-dir "$DIR" --map ingress_node_firewall_statistics_map -f "$TMP/stats.jsonl"
"$BIN" apply -q --elf "$FW" --pin-dir "$DIR" --map ingress_node_firewall_debug_map -f "$TMP/debug.jsonl"
"$BIN" apply -q --elf "$BENCH" --pin-dir "$DIR" --map bench_hash -f "$TMP/bench.jsonl"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
worst() { sort -n | tail -1; }

echo "| map | entries | samples | bytes | HTTP scrape, median of $RUNS | worst | in-process read + render |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for spec in "stats $FW ingress_node_firewall_statistics_map" \
            "debug $FW ingress_node_firewall_debug_map" \
            "bench $BENCH bench_hash"; do
    set -- $spec
    label=$1 elf=$2 map=$3
    "$BIN" export --elf "$elf" --pin-dir "$DIR" --map "$map" --listen 127.0.0.1:0 \
        2> "$TMP/export.err" &
    EXPORT_PID=$!
    url=
    for _ in $(seq 100); do
        url=$(grep -o 'http://[0-9.:]*/metrics' "$TMP/export.err" || true)
        [ -n "$url" ] && break
        sleep 0.1
    done
    [ -n "$url" ] || { cat "$TMP/export.err" >&2; exit 1; }
    curl -sf -o "$TMP/scrape.txt" "$url"    # warm-up (and the text checked below)
    times=()
    for _ in $(seq "$RUNS"); do
        times+=("$(curl -sf -o "$TMP/scrape.txt" -w '%{time_total}' "$url")")
    done
    kill "$EXPORT_PID"; wait "$EXPORT_PID" 2>/dev/null || true; EXPORT_PID=
    samples=$(grep -c "^ebpf_${map}_" "$TMP/scrape.txt" || true)
    entries=$(awk -v m="$map" '$1 == "ebpf_sdk_map_entries{map=\""m"\"}" {print $2}' "$TMP/scrape.txt")
    inproc=$(awk -v m="$map" '$1 == "ebpf_sdk_scrape_duration_seconds{map=\""m"\"}" {printf "%.3f s", $2}' "$TMP/scrape.txt")
    if command -v promtool >/dev/null; then
        promtool check metrics < "$TMP/scrape.txt" >&2 || { echo "promtool refused the $label scrape" >&2; exit 1; }
    fi
    printf '| %s (`%s`) | %s | %s | %s | %.3f s | %.3f s | %s |\n' "$label" "$map" "$entries" "$samples" \
        "$(stat -c %s "$TMP/scrape.txt")" \
        "$(printf '%s\n' "${times[@]}" | median)" "$(printf '%s\n' "${times[@]}" | worst)" "$inproc"
done
echo
echo "machine: $(nproc) CPUs, kernel $(uname -r), $(date -u +%Y-%m-%d)"
