// SPDX-License-Identifier: GPL-2.0-only
/*
 * firewall.bpf.c - XDP ingress node firewall.
 *
 * Modelled on openshift/ingress-node-firewall: the source address and the
 * ingress ifindex of every IPv4/IPv6 packet are looked up in an LPM trie;
 * the resulting array of rules is scanned in order and the first matching
 * rule decides (DENY -> XDP_DROP, ALLOW -> XDP_PASS). Matching rules are
 * counted in a per-CPU statistics array, DENY emits a perf event with the
 * start of the packet.
 *
 * Build: see Makefile (clang -O2 -g -target bpf).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "firewall.h"

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#ifndef ETH_P_8021Q
#define ETH_P_8021Q 0x8100
#endif
#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif
#define IP_OFFSET_MASK 0x1FFF /* fragment offset bits of iphdr.frag_off */

char LICENSE[] SEC("license") = "GPL";

/* ------------------------------------------------------------------------ */
/* Maps                                                                     */
/* ------------------------------------------------------------------------ */

/* Source CIDR + ingress ifindex -> up to MAX_TARGETS rules. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_ip_key_st);
	__type(value, struct rulesVal_st);
	__uint(max_entries, MAX_LPM_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ingress_node_firewall_table_map SEC(".maps");

/* ruleId -> per-CPU allow/deny counters. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct ruleStatistics_st);
	__uint(max_entries, MAX_TARGETS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ingress_node_firewall_statistics_map SEC(".maps");

/* DENY events: struct event_hdr_st + up to MAX_EVENT_DATA packet bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, MAX_CPUS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ingress_node_firewall_events_map SEC(".maps");

/* Single-entry (key 0) runtime configuration; all-zero = enforce. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fw_config_st);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ingress_node_firewall_config_map SEC(".maps");

/* Per (source address, source port, protocol) debug counters. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct dbg_key_st);
	__type(value, struct dbg_val_st);
	__uint(max_entries, MAX_DEBUG_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ingress_node_firewall_debug_map SEC(".maps");

/* ------------------------------------------------------------------------ */
/* Global data                                                              */
/* ------------------------------------------------------------------------ */

/* .rodata: set before load (e.g. by a skeleton) to enable bpf_printk. */
volatile const __u32 fw_debug = 0;

/* .data: packet bytes appended to DENY events when the config map does not
 * set max_event_bytes (clamped to MAX_EVENT_DATA); writable at run time. */
__u32 fw_default_snaplen = MAX_EVENT_DATA;

/* .bss: packets seen by the program (all CPUs, approximate). */
__u64 fw_packets_seen = 0;

/* .bss: never dereferenced; forces struct event_hdr_st into BTF so that
 * event readers can decode ingress_node_firewall_events_map samples. */
struct event_hdr_st *unused_event_ptr __attribute__((unused));

#define fw_printk(fmt, ...)                                                    \
	do {                                                                   \
		if (fw_debug)                                                  \
			bpf_printk(fmt, ##__VA_ARGS__);                        \
	} while (0)

/* ------------------------------------------------------------------------ */
/* Packet parsing                                                           */
/* ------------------------------------------------------------------------ */

struct vlan_hdr_st {
	__be16 tci;
	__be16 encap_proto;
};

struct l4_ports_st {
	__be16 source;
	__be16 dest;
};

struct pkt_info {
	__u32 pkt_len;
	__u16 dport;     /* host order */
	__be16 sport;    /* network order (debug map key) */
	__be32 saddr_lo; /* network order (debug map key) */
	__u8 proto;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 l4_valid;   /* 0 for non-first IPv4 fragments */
};

/*
 * Extract L4 info at @l4. Returns 0 on success, -1 if the L4 header of a
 * supported protocol is truncated. Unknown protocols succeed with only
 * pi->proto set.
 */
static __always_inline int parse_l4(void *l4, void *end, struct pkt_info *pi)
{
	if (!pi->l4_valid)
		return 0;

	switch (pi->proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
	case IPPROTO_SCTP: {
		struct l4_ports_st *ports = l4;
		__u32 hlen = pi->proto == IPPROTO_TCP ? 20 :
			     pi->proto == IPPROTO_UDP ? 8 : 12;

		if (l4 + hlen > end)
			return -1;
		if ((void *)(ports + 1) > end)
			return -1;
		pi->sport = ports->source;
		pi->dport = bpf_ntohs(ports->dest);
		return 0;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		/* struct icmphdr and struct icmp6hdr: type, code at 0, 1. */
		struct icmp6hdr *icmp = l4;

		if ((void *)(icmp + 1) > end)
			return -1;
		pi->icmp_type = icmp->icmp6_type;
		pi->icmp_code = icmp->icmp6_code;
		return 0;
	}
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------------ */
/* Rule matching                                                            */
/* ------------------------------------------------------------------------ */

#define FW_MATCH(rule_id, action) (((__u64)(rule_id) << 8) | (__u8)(action))
#define FW_MATCH_RULE_ID(m) ((__u32)((m) >> 8))
#define FW_MATCH_ACTION(m) ((__u8)((m) & 0xff))

/*
 * Scan the rules of one LPM entry in order; the first match wins.
 *
 * This is a global (non-inlined) BPF function on purpose: the verifier
 * checks it once, with all packet fields unknown, instead of re-walking the
 * 100-iteration loop for every parsing path of the caller (which exceeds
 * the 1M processed-instructions limit).
 *
 * Returns 0 when no rule matches, else FW_MATCH(ruleId, action) (non-zero
 * because ruleId 0 is never a valid rule).
 *   proto     L4 protocol of the packet (IPPROTO_*)
 *   dport     destination port, host order (TCP/UDP/SCTP)
 *   icmp      ICMP/ICMPv6 type | code << 8
 *   l4_valid  0 if the L4 header is not available (non-first fragment)
 */
__noinline __u64 fw_match_rules(const struct rulesVal_st *rv, __u32 proto,
				__u32 dport, __u32 icmp, __u32 l4_valid)
{
	__u8 icmp_type = icmp & 0xff;
	__u8 icmp_code = (icmp >> 8) & 0xff;
	__u32 i;

	if (!rv)
		return 0;

#pragma clang loop unroll(disable)
	for (i = 0; i < MAX_TARGETS; i++) {
		const struct ruleType_st *r = &rv->rules[i];
		__u32 id = r->ruleId;
		__u8 rproto;

		if (id == INVALID_RULE_ID)
			continue;

		rproto = r->protocol;
		if (rproto == 0) /* any protocol */
			return FW_MATCH(id, r->action);
		if (rproto != proto)
			continue;

		switch (rproto) {
		case IPPROTO_TCP:
		case IPPROTO_UDP:
		case IPPROTO_SCTP: {
			__u16 start = r->dstPortStart;
			__u16 stop = r->dstPortEnd;

			if (!l4_valid)
				continue;
			if (stop == 0) {
				if (dport == start)
					return FW_MATCH(id, r->action);
			} else if (dport >= start && dport <= stop) {
				return FW_MATCH(id, r->action);
			}
			continue;
		}
		case IPPROTO_ICMP:
		case IPPROTO_ICMPV6:
			if (l4_valid && r->icmpType == icmp_type &&
			    r->icmpCode == icmp_code)
				return FW_MATCH(id, r->action);
			continue;
		default:
			/* other protocols match on protocol alone */
			return FW_MATCH(id, r->action);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Accounting                                                               */
/* ------------------------------------------------------------------------ */

static __always_inline void update_statistics(__u32 rule_id, __u8 action,
					      __u64 len)
{
	struct ruleStatistics_st *st;

	st = bpf_map_lookup_elem(&ingress_node_firewall_statistics_map,
				 &rule_id);
	if (!st)
		return; /* rule id out of range */
	/* Per-CPU value: plain increments are safe. */
	if (action == FW_ACTION_ALLOW) {
		st->allow_stats.packets += 1;
		st->allow_stats.bytes += len;
	} else if (action == FW_ACTION_DENY) {
		st->deny_stats.packets += 1;
		st->deny_stats.bytes += len;
	}
}

static __always_inline void emit_event(struct xdp_md *ctx, __u32 ifindex,
				       __u32 rule_id, __u8 action, __u64 len,
				       const struct fw_config_st *cfg)
{
	struct event_hdr_st hdr;
	__u64 snap = fw_default_snaplen;
	__u64 flags;

	__builtin_memset(&hdr, 0, sizeof(hdr));
	hdr.ifId = (__u16)ifindex;
	hdr.ruleId = (__u16)rule_id;
	hdr.action = action;
	hdr.pktLength = (__u16)len;

	if (cfg && cfg->max_event_bytes)
		snap = cfg->max_event_bytes;
	if (snap > MAX_EVENT_DATA)
		snap = MAX_EVENT_DATA;
	if (len < snap)
		snap = len;
	flags = BPF_F_CURRENT_CPU | (snap << 32);

	bpf_perf_event_output(ctx, &ingress_node_firewall_events_map, flags,
			      &hdr, sizeof(hdr));
}

static __always_inline void update_debug(const struct pkt_info *pi,
					 __u32 ifindex, int matched,
					 __u32 rule_id, __u8 action)
{
	struct dbg_key_st key;
	struct dbg_val_st *val;
	__s32 rid = matched ? (__s32)rule_id : -1;
	__s16 act = matched ? (__s16)action : FW_ACTION_UNDEF;

	/* Zero the trailing padding byte too: it is part of the hash key. */
	__builtin_memset(&key, 0, sizeof(key));
	key.saddr = pi->saddr_lo;
	key.sport = pi->sport;
	key.proto = pi->proto;

	val = bpf_map_lookup_elem(&ingress_node_firewall_debug_map, &key);
	if (val) {
		__sync_fetch_and_add(&val->packets, 1);
		__sync_fetch_and_add(&val->bytes, (__s64)pi->pkt_len);
		val->last_rule_id = rid;
		val->last_action = act;
		val->last_ifindex = (__s16)ifindex;
	} else {
		struct dbg_val_st init;

		__builtin_memset(&init, 0, sizeof(init));
		init.packets = 1;
		init.bytes = pi->pkt_len;
		init.last_rule_id = rid;
		init.last_action = act;
		init.last_ifindex = (__s16)ifindex;
		bpf_map_update_elem(&ingress_node_firewall_debug_map, &key,
				    &init, BPF_NOEXIST);
	}
}

/* ------------------------------------------------------------------------ */
/* Entry point                                                              */
/* ------------------------------------------------------------------------ */

SEC("xdp")
int xdp_ingress_node_firewall_process(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3 = data + sizeof(*eth);
	void *l4;
	const struct fw_config_st *cfg;
	struct rulesVal_st *rv;
	struct lpm_ip_key_st key;
	struct pkt_info pi;
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 zero = 0, rule_id = 0;
	__u8 action = FW_ACTION_UNDEF;
	__u64 features = 0;
	__u16 h_proto;
	int matched;

	__sync_fetch_and_add(&fw_packets_seen, 1);

	if (l3 > data_end)
		return XDP_DROP; /* runt frame, as upstream */

	cfg = bpf_map_lookup_elem(&ingress_node_firewall_config_map, &zero);
	if (cfg) {
		if (cfg->mode == FW_MODE_DISABLED)
			return XDP_PASS;
		features = cfg->features;
	}

	h_proto = eth->h_proto;
	if (h_proto == bpf_htons(ETH_P_8021Q) ||
	    h_proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr_st *vh = l3;

		if ((void *)(vh + 1) > data_end)
			return XDP_PASS;
		h_proto = vh->encap_proto;
		l3 = vh + 1;
	}

	__builtin_memset(&pi, 0, sizeof(pi));
	__builtin_memset(&key, 0, sizeof(key));
	pi.pkt_len = data_end - data;
	pi.l4_valid = 1;
	key.ingress_ifindex = ifindex;

	if (h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = l3;
		__u32 ihl;

		if ((void *)(iph + 1) > data_end)
			return XDP_PASS;
		ihl = (__u32)iph->ihl * 4;
		if (ihl < sizeof(*iph))
			return XDP_PASS;
		pi.proto = iph->protocol;
		if (iph->frag_off & bpf_htons(IP_OFFSET_MASK))
			pi.l4_valid = 0;
		pi.saddr_lo = iph->saddr;
		key.prefixLen = FW_PREFIXLEN_IPV4_HOST;
		__builtin_memcpy(key.ip_data, &iph->saddr, 4);
		l4 = l3 + ihl;
	} else if (h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = l3;

		if (features & FW_FEAT_NO_IPV6)
			return XDP_PASS;
		if ((void *)(ip6h + 1) > data_end)
			return XDP_PASS;
		pi.proto = ip6h->nexthdr;
		pi.saddr_lo = ip6h->saddr.in6_u.u6_addr32[3];
		key.prefixLen = FW_PREFIXLEN_IPV6_HOST;
		__builtin_memcpy(key.ip_data, &ip6h->saddr, 16);
		l4 = ip6h + 1;
	} else {
		return XDP_PASS;
	}

	if (parse_l4(l4, data_end, &pi) < 0)
		return XDP_PASS; /* truncated L4 header, as upstream */

	rv = bpf_map_lookup_elem(&ingress_node_firewall_table_map, &key);
	if (rv) {
		__u64 m = fw_match_rules(rv, pi.proto, pi.dport,
					 pi.icmp_type | (__u32)pi.icmp_code << 8,
					 pi.l4_valid);

		matched = m != 0;
		rule_id = FW_MATCH_RULE_ID(m);
		action = FW_MATCH_ACTION(m);
	} else {
		matched = 0;
	}

	if (!(features & FW_FEAT_NO_DEBUG_MAP))
		update_debug(&pi, ifindex, matched, rule_id, action);

	if (!matched)
		return XDP_PASS;

	fw_printk("fw: if %u rule %u action %u", ifindex, rule_id, action);
	update_statistics(rule_id, action, pi.pkt_len);

	if (action != FW_ACTION_DENY)
		return XDP_PASS;

	if (!(features & FW_FEAT_NO_EVENTS))
		emit_event(ctx, ifindex, rule_id, action, pi.pkt_len, cfg);

	if (cfg && cfg->mode == FW_MODE_AUDIT)
		return XDP_PASS;
	return XDP_DROP;
}
