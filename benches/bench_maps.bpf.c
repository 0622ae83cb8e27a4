/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * bench_maps.bpf.c - the maps benches/run.sh writes and dumps.
 *
 * The maps carry BTF so `ebpf-sdk --elf bench_maps.bpf.o` has a schema, and
 * the trivial XDP program uses all three so `bpftool prog loadall` creates
 * them with that BTF attached (the dump workloads need a HASH with kernel
 * BTF). No map is pinned by name: bpftool pins them where `pinmaps` says.
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

/* One rule of a rule set: 12 bytes, 6 named fields. */
struct bench_rule {
	__u32 ruleId;
	__u8 protocol;
	__u8 action;
	__u16 dstPortStart;
	__u16 dstPortEnd;
	__u16 priority;
};

/* The rich value: 96 bytes, an array of 8 rules (~800 bytes of JSON). */
struct bench_rules {
	struct bench_rule rules[8];
};

_Static_assert(sizeof(struct lpm_ip_key_st) == 24, "key is 24 bytes");
_Static_assert(sizeof(struct bench_val) == 96, "value is 96 bytes");
_Static_assert(sizeof(struct bench_rule) == 12, "a rule is 12 bytes");
_Static_assert(sizeof(struct bench_rules) == 96, "rich value is 96 bytes");

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

/* The rich workload: same key (IPv6 addresses), 8 rules a value. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BENCH_MAX_ENTRIES);
	__type(key, struct lpm_ip_key_st);
	__type(value, struct bench_rules);
} bench_rich SEC(".maps");

/* Never attached; it only makes the loader create the maps with BTF. */
SEC("xdp")
int bench_xdp(struct xdp_md *ctx)
{
	struct lpm_ip_key_st key = {
		.prefixLen = 64,
		.ingress_ifindex = ctx->ingress_ifindex,
	};
	struct bench_val *v;
	struct bench_rules *r;

	v = bpf_map_lookup_elem(&bench_hash, &key);
	if (v)
		return v->action;
	v = bpf_map_lookup_elem(&bench_lpm, &key);
	if (v)
		return v->action;
	r = bpf_map_lookup_elem(&bench_rich, &key);
	if (r)
		return r->rules[0].action;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
