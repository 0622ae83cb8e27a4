#!/usr/bin/env bash
# benches/run.sh - issues #7 and #17: how fast ebpf-sdk writes and dumps maps,
# side by side with plain C/libbpf (the baseline) and bpftool, in one run on
# one machine.
#
#   sudo benches/run.sh            # the issue's sizes (1M / 100k entries), 5 runs each
#   sudo benches/run.sh --quick    # 10x smaller, to check the setup
#
# Workloads (sizes divided by 10 with --quick):
#   a  1M entries into a preallocated HASH (24-byte firewall LPM key, 96-byte value)
#   b  100k entries into an LPM_TRIE (BPF_F_NO_PREALLOC, same key and value)
#   c  1M entries into the same LPM_TRIE
#   d  dump of a 100k-entry HASH that has BTF
#   e  1M rich entries into a preallocated HASH (IPv6 keys, 8 rules of 6
#      fields a value: ~870 bytes of JSON an entry)
#   f  dump of a 100k-entry HASH of rich entries
#   g  100k rich entries from YAML (what `dump -o yaml` prints) and JSON Lines
#
# Every write starts from an empty map: both maps are created fresh by
# `bpftool prog loadall benches/bench_maps.bpf.o` (so they carry BTF) in a
# private bpffs directory before each timed command. Input files are generated
# before any timing, into a temporary directory. Times are wall clock of the
# whole process (start to exit), the median of --runs runs; peak RSS is the
# largest "Maximum resident set size" of `/usr/bin/time -v` over the runs.
# After each write, `c_batch verify` checks the map holds exactly the expected
# entries (untimed). Every pin and temporary file is removed on exit.
#
# Needs: root (CAP_BPF, CAP_SYS_ADMIN for bpffs), bpftool, cc + libbpf-dev,
# python3, cargo, GNU time (installed with apt-get when missing); clang-19 to
# rebuild the BPF object (else the committed bench_maps.bpf.o is used);
# strace for the phase split (skipped without it).
set -euo pipefail
export LC_ALL=C

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/.." && pwd)

usage() {
	cat <<EOF
usage: sudo benches/run.sh [--quick] [--runs N] [--no-build] [--no-yaml] [--no-bpftool-batch]

  --quick             10x smaller sizes (100k / 10k entries)
  --runs N            timed runs per command, the median is reported [5]
  --no-build          use target/release/ebpf-sdk and the batch_bench example as built
  --no-yaml           skip the YAML inputs of workload a (a YAML list takes GBs at 1M)
  --no-bpftool-batch  skip \`bpftool batch file\` (the slowest contender)
EOF
}

die() {
	echo "run.sh: $*" >&2
	exit 2
}

quick=0 runs=5 build=1 yaml=1 bpftool_batch=1
while (($#)); do
	case $1 in
	--quick) quick=1 ;;
	--runs)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive number"
		runs=$2
		shift
		;;
	--no-build) build=0 ;;
	--no-yaml) yaml=0 ;;
	--no-bpftool-batch) bpftool_batch=0 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
	shift
done

div=$((quick ? 10 : 1))
hash_n=$((1000000 / div))
lpm_small_n=$((100000 / div))
lpm_n=$((1000000 / div))
dump_n=$((100000 / div))
rich_n=$((1000000 / div))
yaml_n=$((100000 / div))
settle=$( ((quick)) && echo 0.5 || echo 2)

# ---------------------------------------------------------------- prerequisites

((EUID == 0)) || die "needs root (CAP_BPF and bpffs); run with sudo"
command -v bpftool >/dev/null || die "bpftool not found (apt-get install bpftool)"
command -v python3 >/dev/null || die "python3 not found"
command -v cc >/dev/null || die "cc not found (apt-get install gcc)"
[[ -f /usr/include/bpf/bpf.h ]] || die "libbpf headers not found (apt-get install libbpf-dev)"
mountpoint -q /sys/fs/bpf || die "/sys/fs/bpf is not mounted (mount -t bpf bpf /sys/fs/bpf)"
if [[ ! -x /usr/bin/time ]]; then
	command -v apt-get >/dev/null || die "GNU time (/usr/bin/time) not found"
	echo "installing GNU time (apt-get install time) for peak RSS" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
have_strace=0
strace -f --seccomp-bpf -e trace=none true >/dev/null 2>&1 && have_strace=1

# ---------------------------------------------------------------- scratch space

tmp="" pins=""
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# Unpinning the program and the maps frees them.
	if [[ -n $pins && -d $pins ]]; then rm -rf -- "$pins" || echo "run.sh: cannot remove $pins" >&2; fi
	if [[ -n $tmp && -d $tmp ]]; then rm -rf -- "$tmp" || echo "run.sh: cannot remove $tmp" >&2; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tmp=$(mktemp -d /tmp/ebpf-sdk-bench.XXXXXX)
# bpffs refuses names with dots.
pins=/sys/fs/bpf/ebpf_sdk_bench_$$_$RANDOM
mkdir -- "$pins"
mkdir -- "$tmp/log"

# ---------------------------------------------------------------- builds (untimed)

if ((build)); then
	echo "building ebpf-sdk and the batch_bench example (cargo build --release)..." >&2
	(cd "$repo" && cargo build --release -q -p ebpf-sdk-cli &&
		cargo build --release -q -p ebpf-sdk-backend --example batch_bench) >&2
fi
target=${CARGO_TARGET_DIR:-$repo/target}
[[ -x $target/release/ebpf-sdk ]] || die "$target/release/ebpf-sdk not built"
# Copies: a concurrent build cannot swap the binary in the middle of the run.
cp -- "$target/release/ebpf-sdk" "$tmp/ebpf-sdk"
esdk=$tmp/ebpf-sdk
batch_bench=""
if [[ -x $target/release/examples/batch_bench ]]; then
	cp -- "$target/release/examples/batch_bench" "$tmp/batch_bench"
	batch_bench=$tmp/batch_bench
fi

obj=$here/bench_maps.bpf.o
obj_note="committed benches/bench_maps.bpf.o"
clang=${CLANG:-clang-19}
if command -v "$clang" >/dev/null; then
	"$clang" -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu \
		-c "$here/bench_maps.bpf.c" -o "$tmp/bench_maps.bpf.o"
	obj=$tmp/bench_maps.bpf.o
	obj_note="rebuilt from benches/bench_maps.bpf.c with $clang"
fi
cc -O2 -Wall -Wextra -o "$tmp/c_batch" "$here/c_batch.c" -lbpf
cbatch=$tmp/c_batch

hash_pin=$pins/maps/bench_hash
lpm_pin=$pins/maps/bench_lpm
rich_pin=$pins/maps/bench_rich

# Fresh, empty maps with BTF, pinned at $hash_pin, $lpm_pin and $rich_pin.
reset_maps() {
	rm -rf -- "$pins/maps" "$pins/progs"
	bpftool prog loadall "$obj" "$pins/progs" pinmaps "$pins/maps"
	# The old maps are freed by kernel workers (~1 s for 1M entries): let them
	# finish before the clock starts.
	sleep "$settle"
}

# ---------------------------------------------------------------- the commands

# Registry of timed commands, in table order. add ID WORKLOAD KIND N LABEL PIN -- CMD...
# KIND: write (map reset before, verified after) or dump (map filled once).
declare -a order=()
declare -A cmd=() wl=() kind=() nent=() label=() trace=() pin_of=() shape=()
add() {
	local id=$1 w=$2 k=$3 n=$4 l=$5 p=$6
	shift 7 # ... and the "--"
	order+=("$id")
	wl[$id]=$w kind[$id]=$k nent[$id]=$n label[$id]=$l pin_of[$id]=$p
	cmd[$id]=$(printf '%q ' "$@")
	# Workloads e-g use the rich entries (c_batch --rich, gen.py --shape rich).
	shape[$id]=flat
	[[ $w == [efg] ]] && shape[$id]=rich
	return 0
}

sdk_map() { # MAP PIN
	printf '%s\n' --elf "$obj" --map "$1" --pinned "$2"
}
mapfile -t hash_args < <(sdk_map bench_hash "$hash_pin")
mapfile -t lpm_args < <(sdk_map bench_lpm "$lpm_pin")
mapfile -t rich_args < <(sdk_map bench_rich "$rich_pin")

jsonl_file() { echo "$tmp/entries_$1.jsonl"; }
rich_file() { echo "$tmp/rich_$1.$2"; } # N EXT

# a: HASH
add a_c_batch a write "$hash_n" "C libbpf update_batch (4096)" "$hash_pin" -- "$cbatch" batch "$hash_pin" "$hash_n"
add a_c_elem a write "$hash_n" "C libbpf update_elem loop" "$hash_pin" -- "$cbatch" elem "$hash_pin" "$hash_n"
add a_sdk_jsonl a write "$hash_n" "ebpf-sdk apply, JSON Lines" "$hash_pin" -- "$esdk" apply "${hash_args[@]}" -f "$(jsonl_file "$hash_n")"
# A YAML list once was parsed whole (about 6.5 KiB per entry); it streams now, but
# the guard stays for small machines (the inputs sit in the page cache too).
yaml_note=""
avail_kib=$(awk '/^MemAvailable/ { print $2 }' /proc/meminfo)
if ((yaml && avail_kib < hash_n * 13)); then
	yaml_note="YAML list skipped: needs ~$((hash_n * 13 / 2 / 1024)) MiB, MemAvailable is $((avail_kib / 1024)) MiB"
fi
if ((yaml)); then
	[[ -z $yaml_note ]] &&
		add a_sdk_yaml a write "$hash_n" "ebpf-sdk apply, YAML list" "$hash_pin" -- "$esdk" apply "${hash_args[@]}" -f "$tmp/entries_$hash_n.yaml"
	add a_sdk_docs a write "$hash_n" "ebpf-sdk apply, YAML --- docs" "$hash_pin" -- "$esdk" apply "${hash_args[@]}" -f "$tmp/entries_$hash_n.docs.yaml"
fi
if ((bpftool_batch)); then
	add a_bpftool a write "$hash_n" "bpftool batch file" "$hash_pin" -- bpftool batch file "$tmp/bpftool_a.txt"
fi
# b, c: LPM_TRIE
for w in b c; do
	if [[ $w == b ]]; then n=$lpm_small_n; else n=$lpm_n; fi
	add ${w}_c_batch $w write "$n" "C libbpf update_batch (4096)" "$lpm_pin" -- "$cbatch" batch "$lpm_pin" "$n"
	add ${w}_c_elem $w write "$n" "C libbpf update_elem loop" "$lpm_pin" -- "$cbatch" elem "$lpm_pin" "$n"
	add ${w}_sdk_jsonl $w write "$n" "ebpf-sdk apply, JSON Lines" "$lpm_pin" -- "$esdk" apply "${lpm_args[@]}" -f "$(jsonl_file "$n")"
	if ((bpftool_batch)); then
		add ${w}_bpftool $w write "$n" "bpftool batch file" "$lpm_pin" -- bpftool batch file "$tmp/bpftool_$w.txt"
	fi
done
# d: dump of the HASH
add d_c_jsonl d dump "$dump_n" "C lookup_batch + printf JSON Lines" "$hash_pin" -- "$cbatch" dump-jsonl "$hash_pin"
add d_c_raw d dump "$dump_n" "C lookup_batch only (no output)" "$hash_pin" -- "$cbatch" dump "$hash_pin"
add d_sdk_jsonl d dump "$dump_n" "ebpf-sdk dump -o jsonl" "$hash_pin" -- "$esdk" dump "${hash_args[@]}" -o jsonl
add d_sdk_json d dump "$dump_n" "ebpf-sdk dump -o json" "$hash_pin" -- "$esdk" dump "${hash_args[@]}" -o json
add d_sdk_yaml d dump "$dump_n" "ebpf-sdk dump -o yaml" "$hash_pin" -- "$esdk" dump "${hash_args[@]}" -o yaml
add d_bpftool_json d dump "$dump_n" "bpftool map dump -j" "$hash_pin" -- bpftool map dump pinned "$hash_pin" -j
add d_bpftool d dump "$dump_n" "bpftool map dump (BTF text)" "$hash_pin" -- bpftool map dump pinned "$hash_pin"

# e: rich entries into a HASH
add e_c_batch e write "$rich_n" "C libbpf update_batch (4096)" "$rich_pin" -- "$cbatch" --rich batch "$rich_pin" "$rich_n"
add e_sdk_jsonl e write "$rich_n" "ebpf-sdk apply, JSON Lines" "$rich_pin" -- "$esdk" apply "${rich_args[@]}" -f "$(rich_file "$rich_n" jsonl)"

# f: dump of rich entries
add f_c_jsonl f dump "$dump_n" "C lookup_batch + printf JSON Lines" "$rich_pin" -- "$cbatch" --rich dump-jsonl "$rich_pin"
add f_c_dump f dump "$dump_n" "C lookup_batch only (no output)" "$rich_pin" -- "$cbatch" --rich dump "$rich_pin"
add f_sdk_json f dump "$dump_n" "ebpf-sdk dump -o json" "$rich_pin" -- "$esdk" dump "${rich_args[@]}" -o json
add f_sdk_yaml f dump "$dump_n" "ebpf-sdk dump -o yaml" "$rich_pin" -- "$esdk" dump "${rich_args[@]}" -o yaml
add f_bpftool_json f dump "$dump_n" "bpftool map dump -j" "$rich_pin" -- bpftool map dump pinned "$rich_pin" -j

# g: YAML input next to JSON Lines of the same rich entries
add g_c_batch g write "$yaml_n" "C libbpf update_batch (4096)" "$rich_pin" -- "$cbatch" --rich batch "$rich_pin" "$yaml_n"
add g_sdk_jsonl g write "$yaml_n" "ebpf-sdk apply, JSON Lines" "$rich_pin" -- "$esdk" apply "${rich_args[@]}" -f "$(rich_file "$yaml_n" jsonl)"
add g_sdk_yaml g write "$yaml_n" "ebpf-sdk apply, YAML list (dump -o yaml)" "$rich_pin" -- "$esdk" apply "${rich_args[@]}" -f "$(rich_file "$yaml_n" yaml)"
add g_sdk_docs g write "$yaml_n" "ebpf-sdk apply, YAML --- docs" "$rich_pin" -- "$esdk" apply "${rich_args[@]}" -f "$(rich_file "$yaml_n" docs.yaml)"

declare -A baseline=([a]=a_c_batch [b]=b_c_batch [c]=c_c_batch [d]=d_c_jsonl [e]=e_c_batch [f]=f_c_jsonl [g]=g_c_batch)
declare -A title=(
	[a]="a: $hash_n entries into a preallocated HASH"
	[b]="b: $lpm_small_n entries into an LPM_TRIE (no prealloc)"
	[c]="c: $lpm_n entries into an LPM_TRIE (no prealloc)"
	[d]="d: dump of a $dump_n-entry HASH with BTF (stdout to /dev/null)"
	[e]="e: $rich_n rich entries (8 rules a value) into a preallocated HASH"
	[f]="f: dump of a $dump_n-entry HASH of rich entries (stdout to /dev/null)"
	[g]="g: $yaml_n rich entries from YAML and from JSON Lines into a HASH"
)
workloads=(a b c d e f g)
# Phase split under strace: time before the first map write, the span of the
# writes, time inside bpf() for them, and time after the last one.
for id in a_c_batch a_sdk_jsonl b_c_batch b_sdk_jsonl c_c_batch c_sdk_jsonl e_c_batch e_sdk_jsonl; do
	trace[$id]=1
done

# ---------------------------------------------------------------- header

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
[[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]] && dirty=" + uncommitted changes"
# shellcheck disable=SC2009 # pgrep refuses patterns longer than 15 characters
busy=$(ps -eo comm= | grep -cE '^(rustc|cc1|cc1plus|ld|clang)$' || true)

echo "# ebpf-sdk benchmark (issues #7 and #17)"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- kernel: $(uname -r) ($(uname -m))"
echo "- CPU: ${cpu_model:-unknown}, nproc $(nproc), memory $mem"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg); compilers running: $busy"
echo "- ebpf-sdk: $("$esdk" --version 2>/dev/null || echo '?'), git $rev$dirty"
echo "- $(bpftool version | head -1), libbpf-dev $(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null || echo '?'), cc: $(cc --version | head -1)"
echo "- BPF object: $obj_note"
[[ -n $yaml_note ]] && echo "- $yaml_note"
echo "- mode: $( ((quick)) && echo "--quick (10x smaller than the issue's sizes)" || echo "full (the issue's sizes)"), $runs run(s) per command, median reported"
if ((busy > 0)); then
	echo "- WARNING: $busy compiler process(es) running: the numbers are not from a quiet machine"
fi
echo
echo "## Commands"
echo
echo '```'
echo "# maps, recreated empty before every write (then ${settle} s for the kernel to free the old ones): \$PINS = $pins"
echo "# \$TMP = $tmp; \$TMP/ebpf-sdk is a copy of $target/release/ebpf-sdk"
echo "bpftool prog loadall ${obj//$tmp/\$TMP} \$PINS/progs pinmaps \$PINS/maps"
echo "# inputs (untimed)"
echo "python3 benches/gen.py jsonl|yaml|yaml-docs|bpftool N FILE [--shape flat|rich] [--pin PIN]"
echo "cc -O2 -Wall -Wextra -o \$TMP/c_batch benches/c_batch.c -lbpf"
for id in "${order[@]}"; do
	printf '%-15s %s\n' "[$id]" "${cmd[$id]//$tmp/\$TMP}" | sed "s|$pins|\$PINS|g"
done
echo '```'
echo

# ---------------------------------------------------------------- inputs (untimed)

echo "generating inputs..." >&2
gen() { python3 "$here/gen.py" "$@"; }
for n in $(printf '%s\n' "$hash_n" "$lpm_small_n" "$lpm_n" | sort -un); do
	gen jsonl "$n" "$(jsonl_file "$n")"
done
if ((yaml)); then
	[[ -z $yaml_note ]] && gen yaml "$hash_n" "$tmp/entries_$hash_n.yaml"
	gen yaml-docs "$hash_n" "$tmp/entries_$hash_n.docs.yaml"
fi
if ((bpftool_batch)); then
	gen bpftool "$hash_n" "$tmp/bpftool_a.txt" --pin "$hash_pin"
	gen bpftool "$lpm_small_n" "$tmp/bpftool_b.txt" --pin "$lpm_pin"
	gen bpftool "$lpm_n" "$tmp/bpftool_c.txt" --pin "$lpm_pin"
fi
for n in $(printf '%s\n' "$rich_n" "$yaml_n" | sort -un); do
	gen jsonl "$n" "$(rich_file "$n" jsonl)" --shape rich
done
gen yaml "$yaml_n" "$(rich_file "$yaml_n" yaml)" --shape rich
gen yaml-docs "$yaml_n" "$(rich_file "$yaml_n" docs.yaml)" --shape rich

# ---------------------------------------------------------------- timing

results=$tmp/results # ID RUN SECONDS RSS_KB STATUS CPU_SECONDS OTHERS_CORES
hz=$(getconf CLK_TCK)
# Busy CPU time of the whole machine in clock ticks (user nice system irq softirq steal).
machine_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
: >"$results"
declare -A failed=()

# timed ID RUN: runs the command once under /usr/bin/time -v.
timed() {
	local id=$1 r=$2 log=$tmp/log/$1.$2 tf=$tmp/time.out t0 t1 rc=0 rss cpu b0 b1 others
	b0=$(machine_busy)
	t0=$EPOCHREALTIME
	eval "/usr/bin/time -v -o \"\$tf\" ${cmd[$id]}" >/dev/null 2>"$log" || rc=$?
	t1=$EPOCHREALTIME
	b1=$(machine_busy)
	rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$tf")
	cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ { c += $2 } END { printf "%.3f", c }' "$tf")
	# CPU that other processes used meanwhile, in cores (0 on a quiet machine);
	# "-" for runs too short for the 1/hz resolution.
	others=$(awk -v b0="$b0" -v b1="$b1" -v hz="$hz" -v c="$cpu" -v a="$t0" -v b="$t1" \
		'BEGIN { if (b - a < 0.5) { print "-"; exit }
			o = ((b1 - b0) / hz - c) / (b - a); printf "%.2f", o < 0 ? 0 : o }')
	if ((rc != 0)); then
		failed[$id]="exit $rc: $(tail -n 3 "$log" | tr '\n' ' ')"
		echo "$id $r - ${rss:-0} FAIL - -" >>"$results"
		echo "  $id: FAILED (exit $rc), see below" >&2
		return 1
	fi
	echo "$id $r $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }') ${rss:-0} ok $cpu $others" >>"$results"
}

# c_batch's shape option for ID.
cb_shape() { [[ ${shape[$1]} == rich ]] && echo --rich || true; }

verify() { # ID
	local out
	# shellcheck disable=SC2046 # an empty option must vanish
	if ! out=$("$cbatch" $(cb_shape "$1") verify "${pin_of[$1]}" "${nent[$1]}" 2>&1); then
		failed[$1]="wrong map contents: $out"
		echo "  $1: WRONG MAP CONTENTS: $out" >&2
	fi
}

phases=$tmp/phases # ID BEFORE SPAN IN_BPF AFTER CALLS
: >"$phases"
# traced ID: an extra, untimed run under strace for the phase split.
traced() {
	local id=$1 st=$tmp/strace.$1 p
	reset_maps
	if ! eval "strace -f --seccomp-bpf -ttt -T -e trace=execve,bpf,exit_group -o \"\$st\" ${cmd[$id]}" \
		>/dev/null 2>"$tmp/log/$id.strace"; then
		echo "  $id: failed under strace" >&2
		return
	fi
	p=$(awk '
		function write_call(t0, dur) {
			if (first == "" || t0 < first) first = t0
			if (t0 + dur > last) last = t0 + dur
			sum += dur; calls++
		}
		# The traced process: the pid of the first execve (later lines may be threads).
		$3 ~ /^execve\(/ && start == "" { start = $2; main = $1 }
		# A call interrupted by another thread is split in "<unfinished ...>" and
		# "<... bpf resumed>"; -T gives the duration on the second half.
		$3 ~ /^bpf\(BPF_MAP_UPDATE_(BATCH|ELEM),/ && /<unfinished \.\.\.>$/ { open_at[$1] = $2; next }
		$3 ~ /^bpf\(BPF_MAP_UPDATE_(BATCH|ELEM),/ && $NF ~ /^<[0-9.]+>$/ {
			write_call($2, substr($NF, 2, length($NF) - 2)); next
		}
		/<\.\.\. bpf resumed>/ && ($1 in open_at) && $NF ~ /^<[0-9.]+>$/ {
			write_call(open_at[$1], substr($NF, 2, length($NF) - 2)); delete open_at[$1]; next
		}
		$1 == main && /\+\+\+ exited with/ { stop = $2 }
		END {
			if (first == "") { print "no map writes seen"; exit }
			printf "%.3f %.3f %.3f %.3f %d", first - start, last - first, sum, stop - last, calls
		}' "$st")
	[[ $p =~ ^[0-9] ]] && echo "$id $p" >>"$phases"
	rm -f -- "$st"
}

for w in "${workloads[@]}"; do
	echo "workload ${title[$w]}" >&2
	if [[ $w == d ]]; then
		reset_maps
		"$cbatch" batch "$hash_pin" "$dump_n" 2>/dev/null
		"$cbatch" verify "$hash_pin" "$dump_n" 2>/dev/null || die "cannot fill the dump map"
	fi
	if [[ $w == f ]]; then
		reset_maps
		"$cbatch" --rich batch "$rich_pin" "$dump_n" 2>/dev/null
		"$cbatch" --rich verify "$rich_pin" "$dump_n" 2>/dev/null || die "cannot fill the rich dump map"
	fi
	for ((r = 1; r <= runs; r++)); do
		for id in "${order[@]}"; do
			[[ ${wl[$id]} == "$w" ]] || continue
			[[ -n ${failed[$id]:-} ]] && continue
			echo "  run $r/$runs: $id" >&2
			if [[ ${kind[$id]} == write ]]; then
				reset_maps
				timed "$id" "$r" && verify "$id"
			else
				timed "$id" "$r" || true
			fi
		done
	done
	if ((have_strace)); then
		for ((r = 1; r <= runs; r++)); do
			for id in "${order[@]}"; do
				[[ ${wl[$id]} == "$w" && -n ${trace[$id]:-} && -z ${failed[$id]:-} ]] || continue
				echo "  phase split $r/$runs: $id" >&2
				traced "$id"
			done
		done
	fi
done

# The validate phase alone (reading, parsing, validating, encoding, the
# duplicate check), as `apply` itself times it (EBPF_SDK_TIMINGS=1), for the
# parse throughput of issue #17: extra untimed runs, median.
validate=$tmp/validate # ID SECONDS
: >"$validate"
for id in a_sdk_jsonl e_sdk_jsonl; do
	[[ -z ${failed[$id]:-} ]] || continue
	for ((r = 1; r <= runs; r++)); do
		echo "  validate phase $r/$runs: $id" >&2
		reset_maps
		eval "EBPF_SDK_TIMINGS=1 ${cmd[$id]}" 2>&1 >/dev/null |
			awk -v id="$id" '/^timings:/ { for (i = 1; i <= NF; i++) if ($i == "validate+encode") { v = $(i + 1); sub(/s,$/, "", v); print id, v } }' >>"$validate" || true
	done
done

# Dump outputs hold every entry (untimed).
# (Later workloads recreated the maps: fill them again.)
reset_maps
"$cbatch" batch "$hash_pin" "$dump_n" 2>/dev/null
"$cbatch" --rich batch "$rich_pin" "$dump_n" 2>/dev/null
for id in d_sdk_jsonl d_sdk_json f_sdk_json; do
	[[ -z ${failed[$id]:-} ]] || continue
	got=$(eval "${cmd[$id]}" | grep -c '"ruleId"' || true)
	((got == dump_n)) || failed[$id]="printed $got entries, expected $dump_n"
done

lib_out=""
if [[ -n $batch_bench ]]; then
	echo "backend example: batch_bench $hash_n" >&2
	lib_out=$("$batch_bench" "$hash_n" 2>&1) || lib_out="batch_bench failed: $lib_out"
fi

# ---------------------------------------------------------------- report

declare -A med=() lo=() hi=() rss=() cpu=() noise=()
for id in "${order[@]}"; do
	read -r "med[$id]" "lo[$id]" "hi[$id]" "rss[$id]" "cpu[$id]" "noise[$id]" < <(awk -v id="$id" '
		function median(a, n,   i, j, x) {
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		$1 == id && $5 == "ok" { t[++n] = $3; c[n] = $6; if ($7 != "-") { seen = 1; if ($7 + 0 > o) o = $7 + 0 } }
		$1 == id && $4 > m { m = $4 }
		END {
			if (n == 0) { print "- - - " (m ? m : 0) " - -"; exit }
			cm = median(c, n); tm = median(t, n)
			printf "%s %s %s %s %s %s\n", tm, t[1], t[n], m, cm, seen ? sprintf("%.2f", o) : "-"
		}' "$results")
done

ratio() { # A B -> A/B with 2 decimals, or "-"
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'
}

echo "## Results"
echo
echo "Wall time of the whole process (start to exit), median of $runs run(s) [min..max];"
echo "\"vs C\" is time / time of the C baseline of the workload (lower is better); CPU is"
echo "user + system time of the process (median), above the wall time when it uses both cores;"
echo "\"others\" is the most CPU (in cores) other processes used during any run of 0.5 s or more."
for w in "${workloads[@]}"; do
	echo
	echo "### ${title[$w]}"
	echo
	echo "| contender | time (s) | min..max (s) | entries/s | vs C | CPU (s) | peak RSS (MiB) | others |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	for id in "${order[@]}"; do
		[[ ${wl[$id]} == "$w" ]] || continue
		if [[ ${med[$id]} == - ]]; then
			printf '| %s | FAILED | | | | | %s | |\n' "${label[$id]}" "$(mib "${rss[$id]}")"
			continue
		fi
		eps=$(awk -v n="${nent[$id]}" -v t="${med[$id]}" 'BEGIN { printf "%.0f", n / t }')
		mark=""
		[[ $id == "${baseline[$w]}" ]] && mark=" (baseline)"
		[[ -n ${failed[$id]:-} ]] && mark=" (WRONG: see below)"
		printf '| %s%s | %.3f | %.3f..%.3f | %s | %s | %.2f | %s | %s |\n' "${label[$id]}" "$mark" \
			"${med[$id]}" "${lo[$id]}" "${hi[$id]}" "$eps" \
			"$(ratio "${med[$id]}" "${med[${baseline[$w]}]}")" "${cpu[$id]}" "$(mib "${rss[$id]}")" "${noise[$id]}"
	done
done

declare -A phase=()
for id in "${order[@]}"; do
	[[ -n ${trace[$id]:-} ]] || continue
	phase[$id]=$(awk -v id="$id" '
		function median(a, n,   i, j, x) {
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
		}
		$1 == id { n++; for (k = 2; k <= 6; k++) v[k, n] = $k }
		END {
			if (n == 0) { print "no traced run"; exit }
			for (k = 2; k <= 6; k++) { for (i = 1; i <= n; i++) a[i] = v[k, i]; printf "%.3f ", median(a, n) }
			print ""
		}' "$phases")
done

if ((have_strace)); then
	echo
	echo "### Phases of the batch writes (seconds, median of $runs extra runs under strace)"
	echo
	echo "\"before\": exec to the first map write (startup, reading, parsing, encoding);"
	echo "\"write span\": first map write to the end of the last; \"in bpf()\": time inside those"
	echo "syscalls; \"after\": end of the last write to exit. strace adds a little to each call."
	echo
	echo "| workload | contender | before | write span | in bpf() | after | write calls |"
	echo "|---|---|---:|---:|---:|---:|---:|"
	for id in "${order[@]}"; do
		[[ -n ${trace[$id]:-} && -n ${phase[$id]:-} ]] || continue
		if [[ ${phase[$id]} =~ ^[0-9] ]]; then
			read -r b s i a c <<<"${phase[$id]}"
			printf '| %s | %s | %s | %s | %s | %s | %.0f |\n' "${wl[$id]}" "${label[$id]}" "$b" "$s" "$i" "$a" "$c"
		else
			echo "| ${wl[$id]} | ${label[$id]} | ${phase[$id]} | | | | |"
		fi
	done
fi

c_phase() { # ID: median phase_s the C program printed
	cat "$tmp/log/$1".[0-9]* 2>/dev/null | awk -F= '$1 == "phase_s" { t[++n] = $2 }
		END {
			if (n == 0) { print "-"; exit }
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (t[j] < t[i]) { x = t[i]; t[i] = t[j]; t[j] = x }
			printf "%.3f", n % 2 ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2
		}'
}

if [[ -n $lib_out ]]; then
	echo
	echo "### The library's batch write alone"
	echo
	echo "\`cargo run --release -p ebpf-sdk-backend --example batch_bench -- $hash_n\`: its own"
	echo "unpinned HASH (same sizes, other keys), timed in-process around the write only."
	echo "The C baseline's own clock around its update_batch loop (median of the runs of"
	echo "workload a): $(c_phase a_c_batch) s."
	echo
	echo '```'
	echo "$lib_out"
	echo '```'
fi

# ---------------------------------------------------------------- the issue's targets

verdict() { # OK-CONDITION(awk) VALUE
	awk -v v="$2" "BEGIN { if (v == \"-\") print \"not measured\"; else if ($1) print \"met\"; else print \"NOT met\" }"
}
span() { [[ ${phase[$1]:-} =~ ^[0-9] ]] && awk '{ print $2 }' <<<"${phase[$1]}" || echo -; }

t1=$(ratio "${med[a_sdk_jsonl]}" "${med[a_c_batch]}")
t2=$(ratio "$(span a_sdk_jsonl)" "$(span a_c_batch)")
t3=$(ratio "${med[c_sdk_jsonl]}" "${med[c_c_batch]}")
t4=$(ratio "${med[d_bpftool_json]}" "${med[d_sdk_json]}")
t6=$(ratio "${med[e_sdk_jsonl]}" "${med[e_c_batch]}")
t7=$(ratio "$(span e_sdk_jsonl)" "$(span e_c_batch)")
t8=$(ratio "${med[f_bpftool_json]}" "${med[f_sdk_json]}")
t9=$(ratio "${med[g_sdk_yaml]:--}" "${med[g_sdk_jsonl]}")
# Parse + validate + encode throughput: the JSON Lines input over the
# median validate phase `apply` reports, in GB/s.
validated_s() { # ID -> median seconds, or -
	awk -v id="$1" '$1 == id { t[++n] = $2 }
		END {
			if (n == 0) { print "-"; exit }
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (t[j] < t[i]) { x = t[i]; t[i] = t[j]; t[j] = x }
			printf "%.3f", n % 2 ? t[(n + 1) / 2] : (t[n / 2] + t[n / 2 + 1]) / 2
		}' "$validate"
}
gbps() { # FILE ID
	local b
	b=$(validated_s "$2")
	[[ $b == - ]] && echo - && return
	awk -v s="$(stat -c %s "$1")" -v b="$b" 'BEGIN { printf "%.2f", s / b / 1e9 }'
}
t10=$(gbps "$(rich_file "$rich_n" jsonl)" e_sdk_jsonl)
t11=$(gbps "$(jsonl_file "$hash_n")" a_sdk_jsonl)
apply_rss=0
for id in a_sdk_jsonl b_sdk_jsonl c_sdk_jsonl e_sdk_jsonl g_sdk_jsonl g_sdk_yaml g_sdk_docs; do
	((${rss[$id]:-0} > apply_rss)) && apply_rss=${rss[$id]}
done
t5=$(mib "$apply_rss")

echo
echo "## The issues' targets"
echo
((quick)) && echo "(--quick sizes: indicative only, the targets are stated for the full sizes)" && echo
echo "| target | measured | verdict |"
echo "|---|---:|---|"
echo "| #17: apply $rich_n rich entries into a HASH from JSON Lines, total <= 2x C batch | ${t6}x | $(verdict 'v <= 2' "$t6") |"
echo "| #17: apply $hash_n flat entries into a HASH from JSON Lines, total <= 1.5x C batch (#7: 2x) | ${t1}x | $(verdict 'v <= 1.5' "$t1") |"
echo "| #17: parse + validate + encode >= 1 GB/s of JSON Lines (rich input / apply's own validate phase, $(validated_s e_sdk_jsonl) s; flat $(validated_s a_sdk_jsonl) s) | ${t10} GB/s (flat: ${t11}) | $(verdict 'v >= 1' "$t10") |"
echo "| #17: dump -o json of $dump_n rich entries >= 10x faster than bpftool -j | ${t8}x faster | $(verdict 'v >= 10' "$t8") |"
echo "| #17: apply of $yaml_n rich entries from a YAML list within 5x of JSON Lines | ${t9}x | $(verdict 'v <= 5' "$t9") |"
echo "| #7: kernel-write phase (write span) <= 1.15x C batch | ${t2}x (rich: ${t7}x) | $(verdict 'v <= 1.15' "$t2") |"
echo "| #7: apply $lpm_n LPM_TRIE, total <= 1.5x C batch | ${t3}x | $(verdict 'v <= 1.5' "$t3") |"
echo "| #7: dump -o json of $dump_n >= 10x faster than bpftool -j | ${t4}x faster | $(verdict 'v >= 10' "$t4") |"
echo "| apply peak RSS < 64 MiB (workloads a-c, e, g) | $t5 MiB | $(verdict 'v < 64' "$t5") |"

noisy=""
for id in "${order[@]}"; do
	awk -v o="${noise[$id]}" 'BEGIN { exit !(o != "-" && o > 0.25) }' && noisy+=" $id (${noise[$id]})"
done
if [[ -n $noisy ]]; then
	echo
	echo "WARNING: other processes used more than a quarter of a core during runs of:$noisy."
	echo "These numbers are not from a quiet machine; run again when it is."
fi

if ((${#failed[@]})); then
	echo
	echo "## Failures"
	echo
	for id in "${order[@]}"; do
		[[ -n ${failed[$id]:-} ]] && echo "- $id (${label[$id]}): ${failed[$id]}"
	done
	exit 1
fi
exit 0
