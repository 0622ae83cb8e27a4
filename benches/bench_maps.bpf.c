/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bench_maps.bpf.c - the two maps benches/run.sh writes and dumps.
 *
 * The maps carry BTF so `ebpf-sdk --elf bench_maps.bpf.o` has a schema, and
 * the trivial XDP program uses both so `bpftool prog loadall` creates them
 * with that BTF attached (the dump workload needs a HASH with kernel BTF).
 * Neither map is pinned by name: bpftool pins them where `pinmaps` says.
 *
 * Build (run.sh does this when clang-19 is present; the .o is committed):
 *   clang-19 -O2 -g -target bpf -I/usr/include/x86_64-linux-gnu \
 *     -c bench_maps.bpf.c -o bench_maps.bpf.o
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Enough for the 1M-entry workloads (1048576 = 2^20). */
#define BENCH_MAX_ENTRIES (1 << 20)

/* The firewall's LPM key (firewall-ebpf/firewall.h), 24 bytes, packed. */
struct lpm_ip_key_st {
	__u32 prefixLen;
	__u32 ingress_ifindex;
	__u8 ip_data[16];
} __attribute__((packed));

/* 96 bytes: 4 + 1 + 3 + 11 * 8. */
struct bench_val {
	__u32 ruleId;
	__u8 action;
	__u8 pad[3];
	__u64 counters[11];
};

_Static_assert(sizeof(struct lpm_ip_key_st) == 24, "key is 24 bytes");
_Static_assert(sizeof(struct bench_val) == 96, "value is 96 bytes");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BENCH_MAX_ENTRIES);
	__type(key, struct lpm_ip_key_st);
	__type(value, struct bench_val);
} bench_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, BENCH_MAX_ENTRIES);
	__type(key, struct lpm_ip_key_st);
	__type(value, struct bench_val);
} bench_lpm SEC(".maps");

/* Never attached; it only makes the loader create both maps with BTF. */
SEC("xdp")
int bench_xdp(struct xdp_md *ctx)
{
	struct lpm_ip_key_st key = {
		.prefixLen = 64,
		.ingress_ifindex = ctx->ingress_ifindex,
	};
	struct bench_val *v;

	v = bpf_map_lookup_elem(&bench_hash, &key);
	if (v)
		return v->action;
	v = bpf_map_lookup_elem(&bench_lpm, &key);
	if (v)
		return v->action;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
