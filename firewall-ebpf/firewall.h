/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * firewall.h - map key/value/event types of the XDP ingress node firewall.
 *
 * Modelled on openshift/ingress-node-firewall. This header is shared by the
 * BPF program (firewall.bpf.c, compiled with clang -target bpf) and by plain
 * userspace C programs (compiled with gcc), so it only depends on
 * <linux/types.h> and must not use BPF-only headers or attributes.
 *
 * Every type below has the same layout on the BPF target and on x86_64
 * (see layout_check.c / `make layout`).
 */
#ifndef FIREWALL_H
#define FIREWALL_H

#include <linux/types.h>

/* ------------------------------------------------------------------------ */
/* Constants                                                                */
/* ------------------------------------------------------------------------ */

/* Rules per LPM entry, and number of valid rule ids (0..MAX_TARGETS-1). */
#define MAX_TARGETS 100
/* max_entries of the LPM table map. */
#define MAX_LPM_ENTRIES 1024
/* max_entries of the perf event array (>= number of possible CPUs). */
#define MAX_CPUS 256
/* max_entries of the debug LRU hash. */
#define MAX_DEBUG_ENTRIES 4096
/* Maximum number of packet bytes appended to a perf event. */
#define MAX_EVENT_DATA 256

/* ruleType_st.ruleId value meaning "slot unused". */
#define INVALID_RULE_ID 0

/* ruleType_st.action values (same numbers as XDP_DROP / XDP_PASS). */
#define FW_ACTION_UNDEF 0
#define FW_ACTION_DENY 1
#define FW_ACTION_ALLOW 2

/* lpm_ip_key_st.prefixLen for an exact host match: 32 bits of ifindex +
 * address bits. */
#define FW_PREFIXLEN_IPV4_HOST (32 + 32)
#define FW_PREFIXLEN_IPV6_HOST (32 + 128)

/* ------------------------------------------------------------------------ */
/* ingress_node_firewall_table_map (LPM trie)                               */
/* ------------------------------------------------------------------------ */

/*
 * LPM key, 24 bytes, packed.
 *   prefixLen        offset 0,  4 B (host order; 32 + address prefix length)
 *   ingress_ifindex  offset 4,  4 B (host order, always fully matched)
 *   ip_data          offset 8, 16 B (network order source address; IPv4 uses
 *                                    the first 4 bytes, rest zero)
 */
struct lpm_ip_key_st {
	__u32 prefixLen;
	__u32 ingress_ifindex;
	__u8 ip_data[16];
} __attribute__((packed));

/*
 * One rule, 12 bytes, packed.
 *   ruleId        offset 0,  4 B (0 = unused slot; also statistics map index)
 *   protocol      offset 4,  1 B (IPPROTO_*, 0 = any)
 *   dstPortStart  offset 5,  2 B (host order)
 *   dstPortEnd    offset 7,  2 B (host order; 0 = exactly dstPortStart,
 *                                 else inclusive range)
 *   icmpType      offset 9,  1 B
 *   icmpCode      offset 10, 1 B
 *   action        offset 11, 1 B (1 = DENY, 2 = ALLOW)
 */
struct ruleType_st {
	__u32 ruleId;
	__u8 protocol;
	__u16 dstPortStart;
	__u16 dstPortEnd;
	__u8 icmpType;
	__u8 icmpCode;
	__u8 action;
} __attribute__((packed));

/* LPM value, 1200 bytes (MAX_TARGETS * 12), packed. */
struct rulesVal_st {
	struct ruleType_st rules[MAX_TARGETS];
} __attribute__((packed));

/* ------------------------------------------------------------------------ */
/* ingress_node_firewall_statistics_map (per-CPU array, key __u32 ruleId)   */
/* ------------------------------------------------------------------------ */

/* 32 bytes, natural alignment (8). */
struct ruleStatistics_st {
	struct allow_stats_st {
		__u64 packets; /* offset 0 */
		__u64 bytes;   /* offset 8 */
	} allow_stats;         /* offset 0, 16 B */
	struct deny_stats_st {
		__u64 packets; /* offset 16 */
		__u64 bytes;   /* offset 24 */
	} deny_stats;          /* offset 16, 16 B */
};

/* ------------------------------------------------------------------------ */
/* ingress_node_firewall_events_map (perf event array)                      */
/* ------------------------------------------------------------------------ */

/*
 * Perf event header, 8 bytes, packed; followed in the perf sample by the
 * first min(pktLength, MAX_EVENT_DATA) bytes of the packet (starting at the
 * Ethernet header).
 *   ifId       offset 0, 2 B (ingress ifindex, truncated to 16 bits)
 *   ruleId     offset 2, 2 B
 *   action     offset 4, 1 B (1 = DENY)
 *   pad        offset 5, 1 B (always 0)
 *   pktLength  offset 6, 2 B (full packet length, truncated to 16 bits)
 */
struct event_hdr_st {
	__u16 ifId;
	__u16 ruleId;
	__u8 action;
	__u8 pad;
	__u16 pktLength;
} __attribute__((packed));

/* ------------------------------------------------------------------------ */
/* ingress_node_firewall_config_map (array, 1 entry, key __u32 0)           */
/* ------------------------------------------------------------------------ */

/* Operating mode; an all-zero config means ENFORCE. */
enum fw_mode {
	FW_MODE_ENFORCE = 0,  /* DENY drops */
	FW_MODE_AUDIT = 1,    /* DENY is counted and reported, packet passes */
	FW_MODE_DISABLED = 2, /* everything passes, no lookup, no counting */
};

/* Signed 32-bit enum (BTF ENUM, signed). Not interpreted by the program. */
enum fw_log_prio {
	FW_LOG_PRIO_LOW = -1,
	FW_LOG_PRIO_NORMAL = 0,
	FW_LOG_PRIO_HIGH = 1,
};

/*
 * Feature-disable bits. FW_FEAT_NO_DEBUG_MAP is above bit 31, so the enum is
 * 64 bits wide (sizeof == 8) and clang emits it as BTF_KIND_ENUM64.
 */
enum fw_feature64 {
	FW_FEAT_NONE = 0,
	FW_FEAT_NO_EVENTS = 0x1,            /* don't emit perf events on DENY */
	FW_FEAT_NO_IPV6 = 0x2,              /* pass IPv6 without lookup */
	FW_FEAT_NO_DEBUG_MAP = 0x100000000ULL, /* don't update the debug map */
};

/*
 * Config value, 120 bytes, natural alignment (8), NOT packed.
 *
 *  off size member
 *    0   4  mode            enum fw_mode
 *    4   4  log_prio        enum fw_log_prio (signed)
 *    8   1  verbose         __u8
 *    9   7  <hole>
 *   16   8  max_event_bytes __u64 (packet bytes appended to a DENY event;
 *                               0 = use the .data global fw_default_snaplen;
 *                               always capped at MAX_EVENT_DATA)
 *   24   8  features        enum fw_feature64 (ENUM64)
 *   32   4  log_level:3 (bits 256..258), sample_rate:5 (259..263),
 *           flags_reserved:24 (264..287)   __u32 bitfields
 *   36   2  ttl_adjust:6 (bits 288..293), prio_bias:10 (294..303)
 *           __s32 signed bitfields
 *   38   2  mgmt_port       __be16
 *   40  16  mgmt_addr       anonymous union { __be32 v4; __u8 v6[16]; }
 *   56  16  name            char[16]
 *   72   4  mgmt_netmask    __be32
 *   76   1  s8_val          __s8
 *   77   1  <hole>
 *   78   2  s16_val         __s16
 *   80   4  s32_val         __s32
 *   84   4  <hole>
 *   88   8  s64_val         __s64
 *   96   1  enabled         _Bool
 *   97   6  mac             __u8[6]
 *  103   1  <hole>
 *  104  12  port_matrix     __u16[2][3]
 *  116   1  tail_tag        __u8
 *  117   3  <trailing padding>
 */
struct fw_config_st {
	enum fw_mode mode;
	enum fw_log_prio log_prio;
	__u8 verbose;
	__u64 max_event_bytes;
	enum fw_feature64 features;
	__u32 log_level : 3, sample_rate : 5, flags_reserved : 24;
	__s32 ttl_adjust : 6;
	__s32 prio_bias : 10;
	__be16 mgmt_port;
	union {
		__be32 v4;
		__u8 v6[16];
	} mgmt_addr;
	char name[16];
	__be32 mgmt_netmask;
	__s8 s8_val;
	__s16 s16_val;
	__s32 s32_val;
	__s64 s64_val;
	_Bool enabled;
	__u8 mac[6];
	__u16 port_matrix[2][3];
	__u8 tail_tag;
};

/* ------------------------------------------------------------------------ */
/* ingress_node_firewall_debug_map (LRU hash)                               */
/* ------------------------------------------------------------------------ */

/*
 * Debug key, 8 bytes, NOT packed (1 byte trailing padding, always zero).
 *   saddr  offset 0, 4 B (IPv4 source address, network order; for IPv6 the
 *                         low 32 bits of the source address)
 *   sport  offset 4, 2 B (TCP/UDP/SCTP source port, network order, else 0)
 *   proto  offset 6, 1 B (IPPROTO_*)
 *   <pad>  offset 7, 1 B
 */
struct dbg_key_st {
	__be32 saddr;
	__be16 sport;
	__u8 proto;
};

/*
 * Debug value, 24 bytes, natural alignment (8), signed counters.
 *   packets       offset 0,  8 B
 *   bytes         offset 8,  8 B
 *   last_rule_id  offset 16, 4 B (-1 = no rule matched)
 *   last_action   offset 20, 2 B (FW_ACTION_*; 0 = no match)
 *   last_ifindex  offset 22, 2 B (truncated to 16 bits)
 */
struct dbg_val_st {
	__s64 packets;
	__s64 bytes;
	__s32 last_rule_id;
	__s16 last_action;
	__s16 last_ifindex;
};

#endif /* FIREWALL_H */
