// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * layout_check.c - print the C layout of every type in firewall.h, as seen
 * by the host C compiler, one JSON object per line, so that tests can
 * cross-check a BTF-based layout extraction of firewall.bpf.o.
 *
 * Build and run:  make layout
 *   (or: gcc -std=gnu11 -I/work/main/firewall-ebpf -o /tmp/lc layout_check.c)
 *
 * Line formats:
 *   {"kind":"struct"|"union","name":N,"size":S,"align":A,"members":[M...]}
 *     M = {"name":N,"offset":O,"size":S}             (byte offset)
 *     M = {"name":N,"bitfield":true,"bit_offset":B,"bit_size":W}
 *         (no offsetof/sizeof for bitfields; B is the bit offset from the
 *          start of the struct in little-endian bit numbering, as in BTF,
 *          measured by setting the field to all ones in a zeroed struct)
 *   The anonymous union member fw_config_st.mgmt_addr is reported as
 *   {"kind":"union","name":"fw_config_st.mgmt_addr","anonymous":true,...}.
 *   {"kind":"enum","name":N,"size":S,"signed":B,"values":{NAME:V,...}}
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "firewall.h"

static int first_member;

static void begin(const char *kind, const char *name, size_t size,
		  size_t align, int anonymous)
{
	printf("{\"kind\":\"%s\",\"name\":\"%s\",", kind, name);
	if (anonymous)
		printf("\"anonymous\":true,");
	printf("\"size\":%zu,\"align\":%zu,\"members\":[", size, align);
	first_member = 1;
}

static void member(const char *name, size_t offset, size_t size)
{
	printf("%s{\"name\":\"%s\",\"offset\":%zu,\"size\":%zu}",
	       first_member ? "" : ",", name, offset, size);
	first_member = 0;
}

/* Find the run of set bits in buf (little-endian bit order). */
static void bitfield(const char *name, const unsigned char *buf, size_t len)
{
	long lo = -1, hi = -1;
	size_t i;
	int b;

	for (i = 0; i < len; i++)
		for (b = 0; b < 8; b++)
			if (buf[i] & (1u << b)) {
				if (lo < 0)
					lo = (long)(i * 8 + b);
				hi = (long)(i * 8 + b);
			}
	printf("%s{\"name\":\"%s\",\"bitfield\":true,\"bit_offset\":%ld,"
	       "\"bit_size\":%ld}",
	       first_member ? "" : ",", name, lo, hi - lo + 1);
	first_member = 0;
}

static void end(void)
{
	printf("]}\n");
}

#define STRUCT(T, kind, name) begin(kind, name, sizeof(T), _Alignof(T), 0)
#define M(T, f) member(#f, offsetof(T, f), sizeof(((T *)0)->f))
#define BF(T, f)                                                               \
	do {                                                                   \
		T s_;                                                          \
		memset(&s_, 0, sizeof(s_));                                    \
		s_.f = -1;                                                     \
		bitfield(#f, (const unsigned char *)&s_, sizeof(s_));          \
	} while (0)

static int first_value;

static void enum_begin(const char *name, size_t size, int is_signed)
{
	printf("{\"kind\":\"enum\",\"name\":\"%s\",\"size\":%zu,"
	       "\"signed\":%s,\"values\":{",
	       name, size, is_signed ? "true" : "false");
	first_value = 1;
}

static void enum_value_s(const char *name, long long v)
{
	printf("%s\"%s\":%lld", first_value ? "" : ",", name, v);
	first_value = 0;
}

static void enum_value_u(const char *name, unsigned long long v)
{
	printf("%s\"%s\":%llu", first_value ? "" : ",", name, v);
	first_value = 0;
}

static void enum_end(void)
{
	printf("}}\n");
}

/* An enum type is compatible with its underlying integer type. */
#define ENUM_SIGNED(T)                                                         \
	_Generic((T)0, signed char: 1, short: 1, int: 1, long: 1,              \
		 long long: 1, default: 0)
#define EV(T, v)                                                               \
	(ENUM_SIGNED(T) ? enum_value_s(#v, (long long)(v))                     \
			: enum_value_u(#v, (unsigned long long)(v)))

typedef __typeof__(((struct fw_config_st *)0)->mgmt_addr) fw_mgmt_addr_t;

int main(void)
{
	/* ---- ingress_node_firewall_table_map ---- */
#define T struct lpm_ip_key_st
	STRUCT(T, "struct", "lpm_ip_key_st");
	M(T, prefixLen);
	M(T, ingress_ifindex);
	M(T, ip_data);
	end();
#undef T

#define T struct ruleType_st
	STRUCT(T, "struct", "ruleType_st");
	M(T, ruleId);
	M(T, protocol);
	M(T, dstPortStart);
	M(T, dstPortEnd);
	M(T, icmpType);
	M(T, icmpCode);
	M(T, action);
	end();
#undef T

#define T struct rulesVal_st
	STRUCT(T, "struct", "rulesVal_st");
	M(T, rules);
	end();
#undef T

	/* ---- ingress_node_firewall_statistics_map ---- */
#define T struct ruleStatistics_st
	STRUCT(T, "struct", "ruleStatistics_st");
	M(T, allow_stats);
	M(T, deny_stats);
	end();
#undef T

#define T struct allow_stats_st
	STRUCT(T, "struct", "allow_stats_st");
	M(T, packets);
	M(T, bytes);
	end();
#undef T

#define T struct deny_stats_st
	STRUCT(T, "struct", "deny_stats_st");
	M(T, packets);
	M(T, bytes);
	end();
#undef T

	/* ---- ingress_node_firewall_events_map ---- */
#define T struct event_hdr_st
	STRUCT(T, "struct", "event_hdr_st");
	M(T, ifId);
	M(T, ruleId);
	M(T, action);
	M(T, pad);
	M(T, pktLength);
	end();
#undef T

	/* ---- ingress_node_firewall_config_map ---- */
#define T struct fw_config_st
	STRUCT(T, "struct", "fw_config_st");
	M(T, mode);
	M(T, log_prio);
	M(T, verbose);
	M(T, max_event_bytes);
	M(T, features);
	BF(T, log_level);
	BF(T, sample_rate);
	BF(T, flags_reserved);
	BF(T, ttl_adjust);
	BF(T, prio_bias);
	M(T, mgmt_port);
	M(T, mgmt_addr);
	M(T, name);
	M(T, mgmt_netmask);
	M(T, s8_val);
	M(T, s16_val);
	M(T, s32_val);
	M(T, s64_val);
	M(T, enabled);
	M(T, mac);
	M(T, port_matrix);
	M(T, tail_tag);
	end();
#undef T

	begin("union", "fw_config_st.mgmt_addr", sizeof(fw_mgmt_addr_t),
	      _Alignof(fw_mgmt_addr_t), 1);
	M(fw_mgmt_addr_t, v4);
	M(fw_mgmt_addr_t, v6);
	end();

	/* ---- ingress_node_firewall_debug_map ---- */
#define T struct dbg_key_st
	STRUCT(T, "struct", "dbg_key_st");
	M(T, saddr);
	M(T, sport);
	M(T, proto);
	end();
#undef T

#define T struct dbg_val_st
	STRUCT(T, "struct", "dbg_val_st");
	M(T, packets);
	M(T, bytes);
	M(T, last_rule_id);
	M(T, last_action);
	M(T, last_ifindex);
	end();
#undef T

	/* ---- enums ---- */
	enum_begin("fw_mode", sizeof(enum fw_mode), ENUM_SIGNED(enum fw_mode));
	EV(enum fw_mode, FW_MODE_ENFORCE);
	EV(enum fw_mode, FW_MODE_AUDIT);
	EV(enum fw_mode, FW_MODE_DISABLED);
	enum_end();

	enum_begin("fw_log_prio", sizeof(enum fw_log_prio),
		   ENUM_SIGNED(enum fw_log_prio));
	EV(enum fw_log_prio, FW_LOG_PRIO_LOW);
	EV(enum fw_log_prio, FW_LOG_PRIO_NORMAL);
	EV(enum fw_log_prio, FW_LOG_PRIO_HIGH);
	enum_end();

	enum_begin("fw_feature64", sizeof(enum fw_feature64),
		   ENUM_SIGNED(enum fw_feature64));
	EV(enum fw_feature64, FW_FEAT_NONE);
	EV(enum fw_feature64, FW_FEAT_NO_EVENTS);
	EV(enum fw_feature64, FW_FEAT_NO_IPV6);
	EV(enum fw_feature64, FW_FEAT_NO_DEBUG_MAP);
	enum_end();

	return 0;
}
