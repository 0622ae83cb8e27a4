// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * c_batch.c - the C baseline of benches/run.sh: plain libbpf on a pinned map.
 *
 *   c_batch batch      PIN N [BATCH]  bpf_map_update_batch, BATCH entries a call (4096)
 *   c_batch elem       PIN N          one bpf_map_update_elem per entry
 *   c_batch dump       PIN            bpf_map_lookup_batch of every entry, nothing printed
 *   c_batch dump-jsonl PIN            the same, printed as JSON Lines (as `ebpf-sdk dump -o jsonl`)
 *   c_batch verify     PIN N          the map holds exactly entries 0..N-1 (exit 1 if not)
 *
 * With `--rich` first (`c_batch --rich batch PIN N`), the entries are the
 * rich shape: IPv6 keys and 8 rules of 6 fields a value (struct bench_rules).
 *
 * Entries are generated in memory; entry i is the one benches/gen.py writes
 * (keep the two in step). The time of the write or read phase alone, without
 * process start or generation, goes to stderr as `phase_s=SECONDS`.
 *
 * Build: cc -O2 -Wall -o c_batch c_batch.c -lbpf
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>

#define COUNTERS 11
#define BASE_ADDR 0x0A000000u /* 10.0.0.0 */
#define PREFIX_LEN 64
#define IFINDEX 6
#define RICH_PREFIX_LEN 160
#define RULES 8
#define DEFAULT_BATCH 4096
#define READ_BATCH 4096

struct lpm_ip_key_st {
	uint32_t prefixLen;
	uint32_t ingress_ifindex;
	uint8_t ip_data[16];
} __attribute__((packed));

struct bench_val {
	uint32_t ruleId;
	uint8_t action;
	uint8_t pad[3];
	uint64_t counters[COUNTERS];
};

struct bench_rule {
	uint32_t ruleId;
	uint8_t protocol;
	uint8_t action;
	uint16_t dstPortStart;
	uint16_t dstPortEnd;
	uint16_t priority;
};

struct bench_rules {
	struct bench_rule rules[RULES];
};

/* Either value shape: both are 96 bytes, as the maps' value size. */
union bench_value {
	struct bench_val flat;
	struct bench_rules rich;
};

_Static_assert(sizeof(struct lpm_ip_key_st) == 24, "key is 24 bytes");
_Static_assert(sizeof(struct bench_val) == 96, "value is 96 bytes");
_Static_assert(sizeof(struct bench_rules) == 96, "rich value is 96 bytes");
_Static_assert(sizeof(union bench_value) == 96, "values are 96 bytes");

/* Set by --rich: generate, check and print the rich shape. */
static int rich;
static const uint8_t protos[4] = { 6, 17, 1, 58 };

static void make_entry(uint32_t i, struct lpm_ip_key_st *k, union bench_value *val)
{
	memset(k, 0, sizeof(*k));
	memset(val, 0, sizeof(*val));
	k->ingress_ifindex = IFINDEX;
	if (rich) {
		/* fd00:0:0:1:: + i, i in the last 4 bytes. */
		uint32_t low = htonl(i);

		k->prefixLen = RICH_PREFIX_LEN;
		k->ip_data[0] = 0xfd;
		k->ip_data[7] = 1;
		memcpy(&k->ip_data[12], &low, 4);
		for (uint32_t j = 0; j < RULES; j++) {
			struct bench_rule *r = &val->rich.rules[j];

			r->ruleId = 8 * i + j + 1;
			r->protocol = protos[(i + j) % 4];
			r->action = 1 + (i + j) % 2;
			r->dstPortStart = (uint16_t)((7ull * i + 1000 * j) % 65000);
			r->dstPortEnd = r->dstPortStart + 50 * j;
			r->priority = 100 * (j + 1);
		}
		return;
	}
	uint32_t addr = htonl(BASE_ADDR + i);
	struct bench_val *v = &val->flat;

	k->prefixLen = PREFIX_LEN;
	memcpy(k->ip_data, &addr, 4);
	v->ruleId = i + 1;
	v->action = 1 + i % 2;
	for (int j = 0; j < COUNTERS; j++)
		v->counters[j] = (uint64_t)i * COUNTERS + j;
}

/* The entry number of a key (as make_entry made it). */
static uint32_t entry_of(const struct lpm_ip_key_st *k)
{
	uint32_t a;

	memcpy(&a, rich ? &k->ip_data[12] : k->ip_data, 4);
	return ntohl(a) - (rich ? 0 : BASE_ADDR);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "c_batch: out of memory (%zu x %zu bytes)\n", n, size);
		exit(2);
	}
	return p;
}

static int open_map(const char *pin)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(pin);

	if (fd < 0) {
		fprintf(stderr, "c_batch: %s: %s\n", pin, strerror(errno));
		exit(2);
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		fprintf(stderr, "c_batch: %s: not a map: %s\n", pin, strerror(errno));
		exit(2);
	}
	if (info.key_size != sizeof(struct lpm_ip_key_st) ||
	    info.value_size != sizeof(struct bench_val)) {
		fprintf(stderr, "c_batch: %s: key %u B value %u B, expected 24 and 96\n",
			pin, info.key_size, info.value_size);
		exit(2);
	}
	return fd;
}

static int write_batch(int fd, uint32_t n, uint32_t batch)
{
	struct lpm_ip_key_st *keys = xcalloc(n, sizeof(*keys));
	union bench_value *vals = xcalloc(n, sizeof(*vals));
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_ANY);
	double t;

	for (uint32_t i = 0; i < n; i++)
		make_entry(i, &keys[i], &vals[i]);
	t = now();
	for (uint32_t done = 0; done < n;) {
		__u32 count = n - done < batch ? n - done : batch;

		if (bpf_map_update_batch(fd, &keys[done], &vals[done], &count, &opts)) {
			fprintf(stderr, "c_batch: update_batch at entry %u (%u applied): %s\n",
				done, count, strerror(errno));
			return 1;
		}
		done += count;
	}
	fprintf(stderr, "phase_s=%.6f\n", now() - t);
	free(keys);
	free(vals);
	return 0;
}

static int write_elem(int fd, uint32_t n)
{
	struct lpm_ip_key_st *keys = xcalloc(n, sizeof(*keys));
	union bench_value *vals = xcalloc(n, sizeof(*vals));
	double t;

	for (uint32_t i = 0; i < n; i++)
		make_entry(i, &keys[i], &vals[i]);
	t = now();
	for (uint32_t i = 0; i < n; i++) {
		if (bpf_map_update_elem(fd, &keys[i], &vals[i], BPF_ANY)) {
			fprintf(stderr, "c_batch: update_elem of entry %u: %s\n", i, strerror(errno));
			return 1;
		}
	}
	fprintf(stderr, "phase_s=%.6f\n", now() - t);
	free(keys);
	free(vals);
	return 0;
}

/* Every entry of the map: lookup_batch, or get_next_key + lookup where the
 * map type has no batch lookup. Returns the number of entries. */
static size_t read_all(int fd, struct lpm_ip_key_st **keys_out, union bench_value **vals_out)
{
	size_t cap = READ_BATCH, n = 0;
	struct lpm_ip_key_st *keys = xcalloc(cap, sizeof(*keys));
	union bench_value *vals = xcalloc(cap, sizeof(*vals));
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	/* Batch tokens: a u32 bucket for hash maps, a key for generic maps. */
	struct lpm_ip_key_st in_tok, out_tok;
	void *in = NULL;

	for (;;) {
		__u32 count = READ_BATCH;
		int err;

		if (n + READ_BATCH > cap) {
			cap *= 2;
			keys = realloc(keys, cap * sizeof(*keys));
			vals = realloc(vals, cap * sizeof(*vals));
			if (!keys || !vals) {
				fprintf(stderr, "c_batch: out of memory\n");
				exit(2);
			}
		}
		err = bpf_map_lookup_batch(fd, in, &out_tok, &keys[n], &vals[n], &count, &opts);
		if (err && errno != ENOENT) {
			if (n == 0 && (errno == EINVAL || errno == ENOTSUP || errno == EOPNOTSUPP))
				break; /* no batch lookup: fall back below */
			fprintf(stderr, "c_batch: lookup_batch: %s\n", strerror(errno));
			exit(2);
		}
		n += count;
		if (err)
			goto done;
		in_tok = out_tok;
		in = &in_tok;
	}
	/* get_next_key + lookup_elem. */
	{
		struct lpm_ip_key_st cur, next;
		void *prev = NULL;

		while (bpf_map_get_next_key(fd, prev, &next) == 0) {
			if (n == cap) {
				cap *= 2;
				keys = realloc(keys, cap * sizeof(*keys));
				vals = realloc(vals, cap * sizeof(*vals));
				if (!keys || !vals) {
					fprintf(stderr, "c_batch: out of memory\n");
					exit(2);
				}
			}
			if (bpf_map_lookup_elem(fd, &next, &vals[n]) == 0)
				keys[n++] = next;
			cur = next;
			prev = &cur;
		}
	}
done:
	*keys_out = keys;
	*vals_out = vals;
	return n;
}

/* One rich entry as `ebpf-sdk dump -o jsonl` prints it. */
static void print_rich(const struct lpm_ip_key_st *k, const struct bench_rules *v)
{
	char ip[INET6_ADDRSTRLEN];

	inet_ntop(AF_INET6, k->ip_data, ip, sizeof(ip));
	printf("{\"key\":{\"prefixLen\":%u,\"ingress_ifindex\":%u,\"ip_data\":\"%s\"},"
	       "\"value\":{\"rules\":[", k->prefixLen, k->ingress_ifindex, ip);
	for (int j = 0; j < RULES; j++) {
		const struct bench_rule *r = &v->rules[j];

		printf("%s{\"ruleId\":%u,\"protocol\":%u,\"action\":%u,\"dstPortStart\":%u,"
		       "\"dstPortEnd\":%u,\"priority\":%u}", j ? "," : "", r->ruleId, r->protocol,
		       r->action, r->dstPortStart, r->dstPortEnd, r->priority);
	}
	fputs("]}}\n", stdout);
}

static int dump(int fd, int print)
{
	struct lpm_ip_key_st *keys;
	union bench_value *vals;
	double t = now();
	size_t n = read_all(fd, &keys, &vals);

	if (print) {
		static char buf[1 << 16];

		setvbuf(stdout, buf, _IOFBF, sizeof(buf));
		for (size_t i = 0; i < n; i++) {
			const struct lpm_ip_key_st *k = &keys[i];
			const struct bench_val *v = &vals[i].flat;

			if (rich) {
				print_rich(k, &vals[i].rich);
				continue;
			}
			printf("{\"key\":{\"prefixLen\":%u,\"ingress_ifindex\":%u,\"ip_data\":\"%u.%u.%u.%u\"},"
			       "\"value\":{\"ruleId\":%u,\"action\":%u,\"pad\":[%u,%u,%u],\"counters\":[",
			       k->prefixLen, k->ingress_ifindex, k->ip_data[0], k->ip_data[1],
			       k->ip_data[2], k->ip_data[3], v->ruleId, v->action, v->pad[0],
			       v->pad[1], v->pad[2]);
			for (int j = 0; j < COUNTERS; j++)
				printf(j ? ",%llu" : "%llu", (unsigned long long)v->counters[j]);
			fputs("]}}\n", stdout);
		}
		if (fflush(stdout)) {
			fprintf(stderr, "c_batch: write: %s\n", strerror(errno));
			return 1;
		}
	}
	fprintf(stderr, "phase_s=%.6f\nentries=%zu\n", now() - t, n);
	free(keys);
	free(vals);
	return 0;
}

static int verify(int fd, uint32_t n)
{
	struct lpm_ip_key_st *keys, ek;
	union bench_value *vals, ev;
	size_t got = read_all(fd, &keys, &vals);
	uint8_t *seen = xcalloc(n ? n : 1, 1);
	size_t bad = 0;

	for (size_t e = 0; e < got; e++) {
		uint32_t i = entry_of(&keys[e]);

		if (i >= n || seen[i]) {
			bad++;
			continue;
		}
		seen[i] = 1;
		make_entry(i, &ek, &ev);
		if (memcmp(&ek, &keys[e], sizeof(ek)) || memcmp(&ev, &vals[e], sizeof(ev)))
			bad++;
	}
	if (got != n || bad) {
		fprintf(stderr, "c_batch: verify: %zu entries, expected %u; %zu wrong\n", got, n, bad);
		return 1;
	}
	fprintf(stderr, "entries=%zu\n", got);
	free(seen);
	free(keys);
	free(vals);
	return 0;
}

static uint32_t parse_u32(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > UINT32_MAX) {
		fprintf(stderr, "c_batch: %s: `%s` is not a positive number\n", what, s);
		exit(2);
	}
	return (uint32_t)v;
}

static int usage(void)
{
	fputs("usage: c_batch [--rich] batch PIN N [BATCH] | elem PIN N | dump PIN"
	      " | dump-jsonl PIN | verify PIN N\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	const char *mode, *pin;
	int fd;

	if (argc > 1 && !strcmp(argv[1], "--rich")) {
		rich = 1;
		argc--;
		argv++;
	}
	if (argc < 3)
		return usage();
	mode = argv[1];
	pin = argv[2];
	if (!strcmp(mode, "batch") && (argc == 4 || argc == 5)) {
		uint32_t n = parse_u32(argv[3], "N");
		uint32_t batch = argc == 5 ? parse_u32(argv[4], "BATCH") : DEFAULT_BATCH;

		fd = open_map(pin);
		return write_batch(fd, n, batch);
	}
	if (!strcmp(mode, "elem") && argc == 4) {
		uint32_t n = parse_u32(argv[3], "N");

		fd = open_map(pin);
		return write_elem(fd, n);
	}
	if ((!strcmp(mode, "dump") || !strcmp(mode, "dump-jsonl")) && argc == 3) {
		fd = open_map(pin);
		return dump(fd, !strcmp(mode, "dump-jsonl"));
	}
	if (!strcmp(mode, "verify") && argc == 4) {
		uint32_t n = parse_u32(argv[3], "N");

		fd = open_map(pin);
		return verify(fd, n);
	}
	return usage();
}
