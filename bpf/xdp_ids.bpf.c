// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp-ids kernel side: per-source and per-destination accounting, blocking, destination limits
 * and event sampling for every received packet (xdp_ids), and the SYN-ACKs that protected hosts
 * send, recorded as handshake challenges (ids_egress, TC egress). README.md is the
 * specification; the step numbers below are its.
 */
#include <stdbool.h>

#include <linux/pkt_cls.h>

#include "parsing.h"
#include "maps.h"

#define NSEC_PER_SEC 1000000000ULL

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the narrow-field atomics below assume a little-endian target"
#endif

/*
 * BPF atomics are 32 or 64 bits wide, so the 8- and 16-bit fields of the window slots are
 * updated through the aligned 32-bit word holding them (port_bits|host_bits,
 * events|tripped|proto_bits, src_bits|amp_src_bits). No carry crosses into a neighbour:
 * port_bits, host_bits, proto_bits, src_bits and amp_src_bits never exceed their bitmap sizes,
 * and events is only incremented while below 255.
 */
typedef __u32 __attribute__((may_alias)) word_t;
#define PORT_BITS_ONE 0x1u
#define HOST_BITS_ONE 0x10000u
#define SRC_BITS_ONE 0x1u
#define AMP_SRC_BITS_ONE 0x10000u
#define EVENTS_ONE 0x1u
#define EVENTS_MASK 0xffu
#define TRIPPED(kind) ((__u32)(kind) << 8)

#define PROTO_BITS_ONE 0x10000u
#define TCP_SARF (IDS_TCP_SYN | IDS_TCP_ACK | IDS_TCP_RST | IDS_TCP_FIN)
/* Nested block prefixes looked at when the most specific one has expired. */
#define BLOCK_DEPTH 4
#define NO_TRAFFIC 0xff

enum l4_kind {
	L4_OTHER, /* valid L3 header, protocol not parsed further */
	L4_TCP,
	L4_UDP,
	L4_ICMP,
	L4_FRAGMENT, /* non-first fragment */
	L4_MALFORMED,
	L4_PORTS, /* first fragment of TCP or UDP cut inside its header: ports known, flags not */
};

union addr {
	struct ids_addr key;
	__u32 w[4];
};

/* What the later stages need from the headers, read once while parsing. Event-only fields are
 * set only for the l4 kind they belong to. */
struct pkt {
	struct ethhdr *eth;
	void *l3; /* struct iphdr or struct ipv6hdr */
	union addr src;
	union addr dst;
	__u32 len;
	__u32 l4_len; /* IP payload bytes after the headers parsed so far */
	__be32 seq;
	__be32 ack_seq;
	__u16 vlan[2];
	__u16 ethertype;
	__be16 sport;
	__be16 dport;
	__be16 tcp_window;
	__u8 ip_version;
	__u8 proto;
	__u8 frag;
	__u8 l4; /* enum l4_kind */
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 ttl;
	struct ids_class *cls; /* set by classify() */
};

/* Per-packet state that the stages share besides the headers. */
struct run {
	struct ids_globals *g;
	const struct ids_config *cfg;
	__u64 now;
	__u32 window;
	__u32 flags;
};

static __always_inline void add32(__u32 *v, __u32 n, const bool shared)
{
	if (shared)
		__sync_fetch_and_add(v, n);
	else
		*v += n;
}

static __always_inline void add64(__u64 *v, __u64 n, const bool shared)
{
	if (shared)
		__sync_fetch_and_add(v, n);
	else
		*v += n;
}

static __always_inline __u32 ids_hash(__u32 x)
{
	x ^= x >> 16;
	x *= IDS_HASH_M1;
	x ^= x >> 13;
	x *= IDS_HASH_M2;
	x ^= x >> 16;
	return x;
}

static __always_inline __u32 fold(const union addr *a)
{
	return a->w[0] ^ a->w[1] ^ a->w[2] ^ a->w[3];
}

static __always_inline bool is_v4_mapped(const union addr *a)
{
	return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == bpf_htonl(0xffff);
}

static __always_inline bool is_syn(const struct pkt *p)
{
	return p->l4 == L4_TCP && (p->tcp_flags & TCP_SARF) == IDS_TCP_SYN;
}

/* Returns true when this call set the bit. The plain read keeps the usual case, a bit already
 * set in this window, free of locked instructions. */
static __always_inline bool set_bit(__u64 *bitmap, __u32 bit)
{
	__u64 *word = &bitmap[bit / 64];
	__u64 mask = 1ULL << (bit % 64);

	if (*word & mask)
		return false;
	return !(__sync_fetch_and_or(word, mask) & mask);
}

/* Takes one token from a per-CPU bucket. Callers skip rate 0; should a config rewrite race with
 * that check, BPF's division by zero yields 0 and the bucket simply refills. */
static __always_inline bool take_token(__u32 id, __u64 now, __u32 rate, __u32 burst)
{
	struct ids_bucket *b = bpf_map_lookup_elem(&ids_buckets, &id);
	__u64 cap = (__u64)burst * NSEC_PER_SEC;
	__u64 elapsed, tokens;

	if (!b)
		return false;
	elapsed = now - b->last_ns;
	b->last_ns = now;
	/* Compared through a division so that elapsed * rate cannot overflow. */
	if (elapsed >= cap / rate) {
		tokens = cap;
	} else {
		tokens = b->tokens + elapsed * rate;
		if (tokens > cap)
			tokens = cap;
	}
	if (tokens < NSEC_PER_SEC) {
		b->tokens = tokens;
		return false;
	}
	b->tokens = tokens - NSEC_PER_SEC;
	return true;
}

/*
 * CLOCK_MONOTONIC_COARSE, read through the kernel once per jiffy and CPU: the helper call cost
 * ~45 ns per packet under BPF_PROG_TEST_RUN here (a fifth of a blocked packet's whole cost),
 * bpf_jiffies64() next to nothing, and the coarse clock only moves on a tick. The tick bumps
 * jiffies a moment before it moves the clock, so the cache is only refreshed once the clock has
 * moved too: it is never a jiffy behind.
 */
static __always_inline __u64 coarse_now(void)
{
	struct ids_clock *c;
	__u32 zero = 0;
	__u64 j, now;

	c = bpf_map_lookup_elem(&ids_clock, &zero);
	if (!c)
		return bpf_ktime_get_coarse_ns();
	j = bpf_jiffies64();
	if (c->jiffies == j)
		return c->now_ns;
	now = bpf_ktime_get_coarse_ns();
	if (now != c->now_ns) {
		c->jiffies = j;
		c->now_ns = now;
	}
	return now;
}

static __always_inline int count_and_pass(struct ids_globals *g)
{
	g->c[IDS_CNT_PASS]++;
	return XDP_PASS;
}

/* Steps 2 and 3. Returns the IP protocol, or a negative IDS_CNT_* index to count. */
static __always_inline int parse_l3(struct hdr_cursor *nh, void *data, void *data_end, struct pkt *p)
{
	struct ipv6hdr *ip6;
	struct iphdr *ip;
	int proto;

	p->vlan[0] = 0;
	p->vlan[1] = 0;
	proto = parse_link(nh, data, data_end, &p->eth, p->vlan);
	if (proto < 0)
		return proto;
	p->ethertype = proto;

	if (proto == ETH_P_IP) {
		proto = parse_iphdr(nh, data_end, &ip, &p->l4_len);
		if (proto < 0)
			return proto;
		p->l3 = ip;
		p->ip_version = 4;
		p->src.w[0] = 0;
		p->src.w[1] = 0;
		p->src.w[2] = bpf_htonl(0xffff);
		p->src.w[3] = ip->saddr;
		p->dst.w[0] = 0;
		p->dst.w[1] = 0;
		p->dst.w[2] = bpf_htonl(0xffff);
		p->dst.w[3] = ip->daddr;
		/* DF is only needed by events, which read it from the header. */
		p->frag = (ip->frag_off & bpf_htons(IDS_IP_OFFSET) ? IDS_FRAG_NONFIRST : 0) |
			  (ip->frag_off & bpf_htons(IDS_IP_MF) ? IDS_FRAG_MF : 0);
		p->ttl = ip->ttl;
	} else if (proto == ETH_P_IPV6) {
		proto = parse_ipv6hdr(nh, data_end, &ip6, &p->l4_len);
		if (proto < 0)
			return proto;
		p->l3 = ip6;
		p->ip_version = 6;
		__builtin_memcpy(p->src.w, ip6->saddr.in6_u.u6_addr32, sizeof(p->src));
		__builtin_memcpy(p->dst.w, ip6->daddr.in6_u.u6_addr32, sizeof(p->dst));
		p->frag = 0;
		p->ttl = ip6->hop_limit;
	} else {
		return -IDS_CNT_NON_IP;
	}
	p->proto = proto;
	return proto;
}

/* Step 5, parsing. Sets p->l4; returns a negative IDS_CNT_ERR_* index for a malformed
 * L4 header. */
static __always_inline int parse_l4(struct hdr_cursor *nh, void *data, void *data_end,
				    struct pkt *p)
{
	struct icmp6hdr *ih6;
	struct icmphdr *ih;
	struct tcphdr *th;
	struct udphdr *uh;
	int proto = p->proto, err;

	if (p->ip_version == 6) {
		proto = skip_ipv6_exthdrs(nh, data, data_end, proto, &p->l4_len, &p->frag);
		if (proto < 0)
			goto malformed;
		p->proto = proto;
	}
	if (p->frag & IDS_FRAG_NONFIRST) {
		p->l4 = L4_FRAGMENT;
		return 0;
	}

	if (proto == IPPROTO_TCP) {
		err = parse_tcphdr(nh, data_end, p->l4_len, &th);
		if (err < 0)
			goto cut_err;
		p->l4 = L4_TCP;
		p->sport = th->source;
		p->dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
		p->tcp_window = th->window;
		p->seq = th->seq;
		p->ack_seq = th->ack_seq;
	} else if (proto == IPPROTO_UDP) {
		err = parse_udphdr(nh, data_end, p->l4_len, &uh);
		if (err < 0)
			goto cut_err;
		p->l4 = L4_UDP;
		p->sport = uh->source;
		p->dport = uh->dest;
	} else if (proto == IPPROTO_ICMP && p->ip_version == 4) {
		err = parse_icmphdr(nh, data_end, p->l4_len, &ih);
		if (err < 0)
			goto malformed_err;
		p->l4 = L4_ICMP;
		p->icmp_type = ih->type;
		p->icmp_code = ih->code;
	} else if (proto == IPPROTO_ICMPV6 && p->ip_version == 6) {
		err = parse_icmp6hdr(nh, data_end, p->l4_len, &ih6);
		if (err < 0)
			goto malformed_err;
		p->l4 = L4_ICMP;
		p->icmp_type = ih6->icmp6_type;
		p->icmp_code = ih6->icmp6_code;
	} else {
		p->l4 = L4_OTHER;
	}
	return 0;

cut_err:
	/* A first fragment may end inside its TCP/UDP header (nmap -f): what it carries is not
	 * malformed, and its ports are what scan detection needs. */
	if ((p->frag & IDS_FRAG_MF) && parse_ports(nh, data_end, p->l4_len, &p->sport, &p->dport)) {
		p->l4 = L4_PORTS;
		return 0;
	}
malformed_err:
	proto = err;
malformed:
	p->l4 = L4_MALFORMED;
	return proto;
}

static __always_inline __u8 port_class(__be16 port)
{
	__u32 key = bpf_ntohs(port);
	__u8 *class = bpf_map_lookup_elem(&ids_ports, &key);

	return class ? *class : IDS_PORT_EPHEMERAL;
}

static __always_inline bool is_synack(const struct pkt *p)
{
	return p->l4 == L4_TCP && (p->tcp_flags & TCP_SARF) == (IDS_TCP_SYN | IDS_TCP_ACK);
}

static __always_inline bool is_fragment(const struct pkt *p)
{
	return p->frag & (IDS_FRAG_MF | IDS_FRAG_NONFIRST);
}

/*
 * Step 5, classes: replies (a service port answering an ephemeral one: not a probe, so not
 * counted as fan-out) and the traffic class a destination limit may cap. Only a source port of
 * a service costs a second lookup. False when the scratch map is missing (never).
 */
static __always_inline bool classify(struct pkt *p)
{
	bool ports = p->l4 == L4_TCP || p->l4 == L4_UDP || p->l4 == L4_PORTS;
	__u8 sclass = IDS_PORT_EPHEMERAL;
	struct ids_class *c;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&ids_class_scratch, &zero);
	if (!c)
		return false;
	p->cls = c;
	c->reply = 0;
	c->amplifier = 0;
	if (ports) {
		sclass = port_class(p->sport);
		c->reply = sclass != IDS_PORT_EPHEMERAL && !is_syn(p) && bpf_ntohs(p->dport) >= 1024 &&
			   port_class(p->dport) == IDS_PORT_EPHEMERAL;
		c->amplifier = sclass == IDS_PORT_AMPLIFIER && p->proto == IPPROTO_UDP;
	}
	if (is_syn(p))
		c->traffic = IDS_TRAFFIC_SYN;
	else if (is_synack(p))
		c->traffic = IDS_TRAFFIC_SYNACK;
	else if (c->amplifier)
		c->traffic = IDS_TRAFFIC_UDP_AMP;
	else if (is_fragment(p))
		c->traffic = IDS_TRAFFIC_FRAGMENTS;
	else
		c->traffic = NO_TRAFFIC;
	return true;
}

/* Whether an allow entry covers the source of a packet about to be dropped (step 4, step 6's
 * limit); its hit is counted, as the drop is averted. */
static __always_inline bool allowed(const struct pkt *p, const struct run *r)
{
	struct ids_allow *allow;

	if (!(r->flags & IDS_CFG_ALLOWS))
		return false;
	if (is_v4_mapped(&p->src)) {
		struct ids_lpm_v4 key = { .prefixlen = 32 };

		__builtin_memcpy(key.addr, &p->src.w[3], sizeof(key.addr));
		allow = bpf_map_lookup_elem(&ids_allow_v4, &key);
	} else {
		struct ids_lpm_v6 key = { .prefixlen = 128 };

		__builtin_memcpy(key.addr, p->src.w, sizeof(key.addr));
		allow = bpf_map_lookup_elem(&ids_allow_v6, &key);
	}
	if (!allow)
		return false;
	__sync_fetch_and_add(&allow->hits, 1);
	r->g->c[IDS_CNT_ALLOWLISTED]++;
	return true;
}

/*
 * Step 4: the live block entry covering the source, if any. The trie returns the most specific
 * prefix; when that one has expired, a covering one (a /24 around an expired /32) still decides,
 * so the prefix above the expired entry's own length is looked up next.
 */
#define LIVE_BLOCK(map, key_type, bits, src)                                                  \
	({                                                                                     \
		key_type key = { .prefixlen = bits };                                          \
		struct ids_block *found = NULL, *b;                                            \
		int i;                                                                         \
		__builtin_memcpy(key.addr, src, sizeof(key.addr));                             \
		_Pragma("unroll") for (i = 0; i < BLOCK_DEPTH; i++)                            \
		{                                                                              \
			b = bpf_map_lookup_elem(&map, &key);                                   \
			if (!b)                                                                \
				break;                                                         \
			if (!b->expires_ns || r->now <= b->expires_ns) {                       \
				found = b;                                                     \
				break;                                                         \
			}                                                                      \
			expired = true;                                                        \
			if (!b->prefixlen || b->prefixlen > bits)                              \
				break;                                                         \
			key.prefixlen = b->prefixlen - 1;                                      \
		}                                                                              \
		found;                                                                         \
	})

/* Step 4: true when the packet must be dropped. */
static __always_inline bool blocked(const struct pkt *p, const struct run *r)
{
	bool expired = false;
	struct ids_block *b;

	if (is_v4_mapped(&p->src))
		b = LIVE_BLOCK(ids_block_v4, struct ids_lpm_v4, 32, &p->src.w[3]);
	else
		b = LIVE_BLOCK(ids_block_v6, struct ids_lpm_v6, 128, p->src.w);
	if (!b) {
		if (expired)
			r->g->c[IDS_CNT_BLOCK_EXPIRED]++;
		return false;
	}
	if (allowed(p, r))
		return false;
	__sync_fetch_and_add(&b->drops, 1);
	b->last_drop_ns = r->now;
	r->g->c[IDS_CNT_DROP_BLOCKED]++;
	return true;
}

static __always_inline bool in_protect(const union addr *a)
{
	if (is_v4_mapped(a)) {
		struct ids_lpm_v4 key = { .prefixlen = 32 };

		__builtin_memcpy(key.addr, &a->w[3], sizeof(key.addr));
		return bpf_map_lookup_elem(&ids_protect_v4, &key) != NULL;
	} else {
		struct ids_lpm_v6 key = { .prefixlen = 128 };

		__builtin_memcpy(key.addr, a->w, sizeof(key.addr));
		return bpf_map_lookup_elem(&ids_protect_v6, &key) != NULL;
	}
}

/* Step 5, direction: whether the destination is protected (always, while no protect prefix is set). */
static __always_inline bool protected_dst(const struct pkt *p, const struct run *r)
{
	struct ids_protect_memo *m;
	__u32 zero = 0, gen;
	const __u32 *d;
	bool yes;

	if (!(r->flags & IDS_CFG_PROTECT))
		return true;
	gen = r->cfg->protect_gen + 1;
	m = bpf_map_lookup_elem(&ids_protect_cache, &zero);
	if (!m)
		return in_protect(&p->dst);
	d = (const __u32 *)&m->dst;
	if (m->gen == gen && d[0] == p->dst.w[0] && d[1] == p->dst.w[1] && d[2] == p->dst.w[2] &&
	    d[3] == p->dst.w[3])
		return m->protected;
	yes = in_protect(&p->dst);
	m->dst = p->dst.key;
	m->gen = gen;
	m->protected = yes;
	return yes;
}

/* A SYN-ACK of a protected host, to `peer`: the ACK that completes it must carry seq + 1, which
 * only the host the SYN-ACK reached can know (README.md: verified sources). */
static __always_inline void record_challenge(const struct pkt *p, struct ids_globals *g)
{
	struct ids_challenge_key key = { .peer = p->dst.key, .peer_port = p->dport, .local_port = p->sport };
	__u32 ack = bpf_ntohl(p->seq) + 1;

	if (!bpf_map_update_elem(&ids_challenges, &key, &ack, BPF_ANY))
		g->c[IDS_CNT_CHALLENGES]++;
}

static __always_inline struct ids_src_stats *insert_source(const struct pkt *p,
							   const struct run *r, bool *inserted)
{
	struct ids_src_stats init = { .first_seen_ns = r->now };
	__u32 rate = r->cfg->insert_rate;

	if (rate && !take_token(IDS_BUCKET_INSERT, r->now, rate, r->cfg->insert_burst))
		return NULL;
	/* Fails with EEXIST when another CPU inserted the source first; its record is used. */
	if (!bpf_map_update_elem(&ids_src, &p->src.key, &init, BPF_NOEXIST)) {
		r->g->c[IDS_CNT_NEW_SOURCES]++;
		*inserted = true;
	}
	return bpf_map_lookup_elem(&ids_src, &p->src.key);
}

/* Step 7: the source's record, inserted when the insert throttle allows; NULL sends the
 * packet to ids_overflow. */
static __always_inline struct ids_src_stats *track_source(const struct pkt *p,
							  const struct run *r, bool *inserted)
{
	struct ids_src_stats *s = bpf_map_lookup_elem(&ids_src, &p->src.key);

	return s ? s : insert_source(p, r, inserted);
}

static __always_inline void count_tcp_classes(struct ids_src_stats *s, __u8 flags,
					      const bool shared)
{
	__u8 f = flags & 0x3f;

	/* syn, synack and ack exclude every other class. */
	switch (f & TCP_SARF) {
	case IDS_TCP_SYN:
		add32(&s->syn, 1, shared);
		return;
	case IDS_TCP_SYN | IDS_TCP_ACK:
		add32(&s->synack, 1, shared);
		return;
	case IDS_TCP_ACK:
		add32(&s->ack, 1, shared);
		return;
	}
	if (f & IDS_TCP_RST)
		add32(&s->rst, 1, shared);
	if ((f & (IDS_TCP_SYN | IDS_TCP_FIN)) == IDS_TCP_FIN)
		add32(&s->fin, 1, shared);
	if (f == 0)
		add32(&s->null_scan, 1, shared);
	if (f == IDS_TCP_FIN)
		add32(&s->fin_only, 1, shared);
	if (f == (IDS_TCP_FIN | IDS_TCP_PSH | IDS_TCP_URG))
		add32(&s->xmas, 1, shared);
	if ((f & (IDS_TCP_SYN | IDS_TCP_FIN)) == (IDS_TCP_SYN | IDS_TCP_FIN))
		add32(&s->synfin, 1, shared);
}

/* Step 7, counting. shared: the record is in ids_src, not the per-CPU overflow. */
static __always_inline void account_source(struct ids_src_stats *s, const struct pkt *p,
					   __u64 now, const bool shared)
{
	add64(&s->packets, 1, shared);
	add64(&s->bytes, p->len, shared);
	s->last_seen_ns = now;

	switch (p->l4) {
	case L4_TCP:
		count_tcp_classes(s, p->tcp_flags, shared);
		break;
	case L4_UDP:
		add32(&s->udp, 1, shared);
		break;
	case L4_ICMP:
		add32(&s->icmp, 1, shared);
		break;
	case L4_FRAGMENT:
		add32(&s->fragments, 1, shared);
		break;
	case L4_MALFORMED:
		add32(&s->malformed, 1, shared);
		break;
	}
	if ((p->frag & (IDS_FRAG_MF | IDS_FRAG_NONFIRST)) == IDS_FRAG_MF)
		add32(&s->first_fragments, 1, shared);
	if (p->cls->reply)
		add32(&s->replies, 1, shared);
}

/*
 * Step 8: an ACK that answers a challenge proves the source received our SYN-ACK,
 * so it is not forged. Checked only while the source is not freshly verified; the TTL of the
 * verifying packet is the source's path length from then on.
 */
static __always_inline void check_handshake(struct ids_src_stats *s, const struct pkt *p,
					    const struct run *r)
{
	struct ids_challenge_key key = { .peer = p->src.key, .peer_port = p->sport, .local_port = p->dport };
	__u64 units = r->now >> IDS_COARSE_SHIFT;
	/* At least 1 (0 means never verified), without a branch: units - 1 wraps only at 0. */
	__u32 now = units + ((units - 1) >> 63), *ack;
	__u32 verified = s->verified_at;
	struct ids_dst_stats *d;
	int off;

	if (p->l4 == L4_TCP && (p->tcp_flags & (IDS_TCP_SYN | IDS_TCP_ACK | IDS_TCP_RST)) == IDS_TCP_ACK &&
	    (!verified || now - verified >= IDS_VERIFY_REFRESH)) {
		ack = bpf_map_lookup_elem(&ids_challenges, &key);
		if (ack && *ack == bpf_ntohl(p->ack_seq)) {
			bpf_map_delete_elem(&ids_challenges, &key);
			s->verified_ttl = p->ttl;
			s->verified_at = verified = now;
			__sync_fetch_and_add(&s->handshakes, 1);
			r->g->c[IDS_CNT_HANDSHAKES]++;
			d = bpf_map_lookup_elem(&ids_dst, &p->dst.key);
			if (d)
				__sync_fetch_and_add(&d->handshakes, 1);
		}
	}
	if (!verified)
		return;
	off = (int)p->ttl - (int)s->verified_ttl;
	if (off > IDS_TTL_SLACK || off < -IDS_TTL_SLACK)
		__sync_fetch_and_add(&s->ttl_mismatch, 1);
}

/* The slot of this window; one CPU wins the exchange and clears the counts of the window two
 * back, and the sketches of the last one. */
static __always_inline struct ids_src_window *src_window(struct ids_src_stats *s, __u32 window)
{
	struct ids_src_window *w = &s->win[window & 1];
	__u32 seen = w->window;

	if (seen != window && __sync_val_compare_and_swap(&w->window, seen, window) == seen) {
		w->syn = 0;
		w->port_bits = 0;
		w->host_bits = 0;
		w->events = 0;
		w->tripped = 0;
		w->proto_bits = 0;
		__builtin_memset(s->port_bitmap, 0, sizeof(s->port_bitmap));
		__builtin_memset(s->host_bitmap, 0, sizeof(s->host_bitmap));
		s->proto_bitmap = 0;
	}
	return w;
}

static __always_inline bool set_bit32(__u32 *word, __u32 bit)
{
	__u32 mask = 1U << bit;

	if (*word & mask)
		return false;
	return !(__sync_fetch_and_or(word, mask) & mask);
}

/* Step 9. Ports count only probes: replies go to whatever ephemeral port the peer chose. */
static __always_inline struct ids_src_window *fan_out(struct ids_src_stats *s,
						      const struct pkt *p, __u32 window)
{
	struct ids_src_window *w = src_window(s, window);

	if (set_bit(s->host_bitmap, ids_hash(fold(&p->dst)) >> 25))
		__sync_fetch_and_add((word_t *)&w->port_bits, HOST_BITS_ONE);
	if ((p->l4 == L4_TCP || p->l4 == L4_UDP || p->l4 == L4_PORTS) && !p->cls->reply &&
	    set_bit(s->port_bitmap, ids_hash(bpf_ntohs(p->dport)) >> 24))
		__sync_fetch_and_add((word_t *)&w->port_bits, PORT_BITS_ONE);
	if (set_bit32(&s->proto_bitmap, ids_hash(p->proto) >> 27))
		__sync_fetch_and_add((word_t *)&w->events, PROTO_BITS_ONE);
	if (is_syn(p))
		__sync_fetch_and_add(&w->syn, 1);
	return w;
}

/* Step 6: the classes counted per destination (classify() gave them a traffic class, or they
 * are UDP or ICMP). */
static __always_inline bool counts_for_destination(const struct pkt *p)
{
	return p->cls->traffic != NO_TRAFFIC || p->l4 == L4_UDP || p->l4 == L4_ICMP;
}

/* Step 6. */
static __always_inline void account_destination(const struct pkt *p, const struct run *r)
{
	struct ids_dst_stats *d = bpf_map_lookup_elem(&ids_dst, &p->dst.key);
	struct ids_dst_window *w;
	__u32 seen;

	if (!d) {
		struct ids_dst_stats init = {};

		bpf_map_update_elem(&ids_dst, &p->dst.key, &init, BPF_NOEXIST);
		d = bpf_map_lookup_elem(&ids_dst, &p->dst.key);
		if (!d)
			return;
	}

	if (is_syn(p))
		__sync_fetch_and_add(&d->syn, 1);
	else if (is_synack(p))
		__sync_fetch_and_add(&d->synack, 1);
	else if (p->l4 == L4_UDP)
		__sync_fetch_and_add(&d->udp, 1);
	else if (p->l4 == L4_ICMP)
		__sync_fetch_and_add(&d->icmp, 1);
	if (p->cls->amplifier) {
		__sync_fetch_and_add(&d->udp_amp, 1);
		__sync_fetch_and_add(&d->udp_amp_bytes, p->len);
	}
	if (is_fragment(p)) {
		__sync_fetch_and_add(&d->fragments, 1);
		__sync_fetch_and_add(&d->fragment_bytes, p->len);
	}
	__sync_fetch_and_add(&d->bytes, p->len);

	w = &d->win[r->window & 1];
	seen = w->window;
	if (seen != r->window && __sync_val_compare_and_swap(&w->window, seen, r->window) == seen) {
		w->src_bits = 0;
		w->amp_src_bits = 0;
		__builtin_memset(d->src_bitmap, 0, sizeof(d->src_bitmap));
		__builtin_memset(d->amp_src_bitmap, 0, sizeof(d->amp_src_bitmap));
	}
	if (set_bit(d->src_bitmap, ids_hash(fold(&p->src)) >> 23))
		__sync_fetch_and_add((word_t *)&w->src_bits, SRC_BITS_ONE);
	if (p->cls->amplifier && set_bit(d->amp_src_bitmap, ids_hash(fold(&p->src)) >> 25))
		__sync_fetch_and_add((word_t *)&w->src_bits, AMP_SRC_BITS_ONE);
}

/*
 * Step 6's limit: true when a packet of a limited traffic class to its destination is over the
 * budget. The bucket is GCRA's (struct ids_dst_limit): admitting moves tat_ns one interval on;
 * refused packets only read it, so under a flood the word is written about per_sec times a
 * second, not per packet. A CPU whose exchange loses to another CPU's admits its packet anyway
 * and pays for it with an add: the budget stays exact over time, and at most one packet per
 * other CPU can pass early; retrying instead would need a loop, and refusing would drop
 * legitimate packets well under the limit.
 */
static __always_inline bool dst_limited(const struct pkt *p, const struct run *r)
{
	struct ids_dst_limit_key key = { .dst = p->dst.key, .traffic = p->cls->traffic };
	struct ids_dst_limit *l = bpf_map_lookup_elem(&ids_dst_limit, &key);
	__u64 expires, interval, tat, from;
	__u32 rate;

	if (!l)
		return false;
	expires = l->expires_ns;
	rate = l->per_sec;
	if ((expires && r->now > expires) || !rate)
		return false;
	interval = NSEC_PER_SEC / rate;
	tat = l->tat_ns;
	from = tat > r->now ? tat : r->now;
	if (from - r->now + interval <= (__u64)l->burst * interval) {
		if (__sync_val_compare_and_swap(&l->tat_ns, tat, from + interval) != tat)
			__sync_fetch_and_add(&l->tat_ns, interval);
		return false;
	}
	if (allowed(p, r))
		return false;
	__sync_fetch_and_add(&l->drops, 1);
	r->g->c[IDS_CNT_DROP_DST_LIMIT]++;
	return true;
}

static __noinline void fill_event(struct ids_event *e, const struct pkt *p)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->ip_version = p->ip_version;
	e->proto = p->proto;
	e->src = p->src.key;
	e->dst = p->dst.key;
	__builtin_memcpy(e->smac, p->eth->h_source, ETH_ALEN);
	__builtin_memcpy(e->dmac, p->eth->h_dest, ETH_ALEN);
	e->ethertype = p->ethertype;
	e->vlan[0] = p->vlan[0];
	e->vlan[1] = p->vlan[1];
	e->pkt_len = p->len;
	e->frag = p->frag;

	if (p->ip_version == 4) {
		const struct iphdr *ip = p->l3;

		e->ttl = ip->ttl;
		e->tos = ip->tos;
		e->ip_id = bpf_ntohs(ip->id);
		if (ip->frag_off & bpf_htons(IDS_IP_DF))
			e->frag |= IDS_FRAG_DF;
		if (ip->frag_off & bpf_htons(IDS_IP_MF))
			e->frag |= IDS_FRAG_MF;
	} else {
		const struct ipv6hdr *ip6 = p->l3;
		__u32 first = bpf_ntohl(*(const __be32 *)ip6); /* version, class, flow label */

		e->ttl = ip6->hop_limit;
		e->tos = first >> 20;
		e->flow_label = first & 0xfffff;
	}

	switch (p->l4) {
	case L4_TCP:
		e->tcp_flags = p->tcp_flags;
		e->tcp_window = bpf_ntohs(p->tcp_window);
		e->seq = bpf_ntohl(p->seq);
		e->ack_seq = bpf_ntohl(p->ack_seq);
		/* fall through */
	case L4_UDP:
		e->sport = bpf_ntohs(p->sport);
		e->dport = bpf_ntohs(p->dport);
		break;
	case L4_ICMP:
		e->icmp_type = p->icmp_type;
		e->icmp_code = p->icmp_code;
		break;
	}
}

/* Counts the event in the source's slot. A lost exchange (another CPU changed the word) loses
 * the count rather than carrying into tripped. */
static __always_inline void count_src_event(struct ids_src_window *w)
{
	word_t *word = (word_t *)&w->events;
	__u32 old = *word;

	if ((old & EVENTS_MASK) != EVENTS_MASK)
		__sync_val_compare_and_swap(word, old, old + EVENTS_ONE);
}

static __always_inline void emit(const struct pkt *p, const struct run *r,
				 struct ids_src_window *w, __u8 type, __u8 reason, __u32 value,
				 __u32 threshold)
{
	const struct ids_config *cfg = r->cfg;
	__u32 limit = cfg->events_per_src_window;
	struct ids_event *e;

	if (limit > EVENTS_MASK)
		limit = EVENTS_MASK;
	if (w->events >= limit ||
	    !take_token(IDS_BUCKET_EVENTS, r->now, cfg->event_rate, cfg->event_burst)) {
		r->g->c[IDS_CNT_EVENTS_LIMITED]++;
		return;
	}
	e = bpf_ringbuf_reserve(&ids_events, sizeof(*e), 0);
	if (!e) {
		r->g->c[IDS_CNT_RINGBUF_FULL]++;
		return;
	}
	fill_event(e, p);
	e->ts_ns = r->now;
	e->type = type;
	e->reason = reason;
	e->window = r->window;
	e->value = value;
	e->threshold = threshold;
	bpf_ringbuf_submit(e, 0);
	count_src_event(w);
	r->g->c[IDS_CNT_EVENTS]++;
}

/* A kind trips once per window: the CPU whose fetch_or sets the bit reports it. */
static __always_inline void trip(const struct pkt *p, const struct run *r,
				 struct ids_src_window *w, __u8 kind, __u32 value, __u32 threshold)
{
	if (!threshold || value < threshold || (w->tripped & kind))
		return;
	if (__sync_fetch_and_or((word_t *)&w->events, TRIPPED(kind)) & TRIPPED(kind))
		return;
	emit(p, r, w, IDS_EV_TRIP, kind, value, threshold);
}

static __always_inline bool sample_new_source(__u32 every)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&ids_new_sources, &zero);

	if (!n || ++*n < every)
		return false;
	*n = 0;
	return true;
}

/* Step 10. */
static __always_inline void report(const struct pkt *p, const struct run *r,
				   struct ids_src_window *w, bool inserted)
{
	const struct ids_config *cfg = r->cfg;
	__u32 every;

	trip(p, r, w, IDS_TRIP_SYN, w->syn, cfg->trip_syn);
	trip(p, r, w, IDS_TRIP_PORTS, w->port_bits, cfg->trip_port_bits);
	trip(p, r, w, IDS_TRIP_HOSTS, w->host_bits, cfg->trip_host_bits);

	if ((r->flags & IDS_CFG_WATCH) && bpf_map_lookup_elem(&ids_watch, &p->src.key))
		emit(p, r, w, IDS_EV_SAMPLE, IDS_SAMPLE_WATCHED, 0, 0);
	every = cfg->sample_new_every;
	if (inserted && every && sample_new_source(every))
		emit(p, r, w, IDS_EV_SAMPLE, IDS_SAMPLE_NEW_SOURCE, 0, 0);
}

SEC("xdp")
int xdp_ids(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct hdr_cursor nh = { .pos = data };
	struct ids_src_window *w = NULL;
	struct ids_src_stats *s;
	bool inserted = false;
	__u32 zero = 0;
	struct run r;
	struct pkt p;
	__u64 window_ns;
	int err;

	r.g = bpf_map_lookup_elem(&ids_globals, &zero);
	r.cfg = bpf_map_lookup_elem(&ids_config, &zero);
	if (!r.g || !r.cfg)
		return XDP_PASS;
	r.flags = r.cfg->flags;

	/* 1 */
	p.len = data_end - data;
	r.g->c[IDS_CNT_PACKETS]++;
	r.g->c[IDS_CNT_BYTES] += p.len;

	/* 2, 3 */
	err = parse_l3(&nh, data, data_end, &p);
	if (err < 0) {
		r.g->c[-err]++;
		/* Nobody can tell whose packet this is, so neither can the block list. */
		if (err == -IDS_CNT_ERR_ENCAP_DEPTH &&
		    (r.flags & (IDS_CFG_BLOCKS | IDS_CFG_DROP_UNPARSED)) == (IDS_CFG_BLOCKS | IDS_CFG_DROP_UNPARSED)) {
			r.g->c[IDS_CNT_DROP_UNPARSED]++;
			return XDP_DROP;
		}
		return count_and_pass(r.g);
	}
	r.g->c[p.ip_version == 4 ? IDS_CNT_IPV4 : IDS_CNT_IPV6]++;
	/* Windows, expiries and stamps need only milliseconds: the coarse clock (jiffy resolution,
	 * 4 ms at HZ=250) will do. */
	r.now = coarse_now();

	/* 4 */
	if ((r.flags & IDS_CFG_BLOCKS) && blocked(&p, &r))
		return XDP_DROP;

	/* 5, parsing and classes */
	err = parse_l4(&nh, data, data_end, &p);
	if (err < 0)
		r.g->c[-err]++;
	else if (p.l4 == L4_FRAGMENT)
		r.g->c[IDS_CNT_FRAGMENTS]++;
	if ((p.frag & (IDS_FRAG_MF | IDS_FRAG_NONFIRST)) == IDS_FRAG_MF)
		r.g->c[IDS_CNT_FIRST_FRAGMENTS]++;
	if (!classify(&p))
		return count_and_pass(r.g);

	/* 5, direction: a mirror port or a gateway also sees protected hosts answering. */
	if (!protected_dst(&p, &r)) {
		if (is_synack(&p) && in_protect(&p.src))
			record_challenge(&p, r.g);
		r.g->c[IDS_CNT_NOT_PROTECTED]++;
		return count_and_pass(r.g);
	}

	window_ns = r.cfg->window_ns;
	r.window = r.now / (window_ns ? window_ns : NSEC_PER_SEC);

	/* 6, ahead of 7-9, which it does not depend on: its locked adds would otherwise wait for the
	 * source record's cache misses (a locked instruction drains the store buffer): tens of ns
	 * per packet with 10,000 sources. */
	if (counts_for_destination(&p))
		account_destination(&p, &r);
	/* After the accounting, so the detector sees the whole flood and its incident stays open
	 * while the limit works; before 7, so that dropped (forged) sources never reach ids_src. */
	if ((r.flags & IDS_CFG_DST_LIMITS) && p.cls->traffic != NO_TRAFFIC && dst_limited(&p, &r))
		return XDP_DROP;

	/* 7, 8 and 9 */
	s = track_source(&p, &r, &inserted);
	if (s) {
		account_source(s, &p, r.now, true);
		check_handshake(s, &p, &r);
		w = fan_out(s, &p, r.window);
	} else {
		s = bpf_map_lookup_elem(&ids_overflow, &zero);
		if (s) {
			if (!s->first_seen_ns)
				s->first_seen_ns = r.now;
			account_source(s, &p, r.now, false);
		}
		r.g->c[IDS_CNT_UNTRACKED]++;
	}

	/* 10 */
	if (w && r.cfg->event_rate)
		report(&p, &r, w, inserted);
	return count_and_pass(r.g);
}

/*
 * Step 11: the SYN-ACKs a protected host sends become challenges (the ACK that completes the
 * handshake proves its source is real), and its SYNs are counted, so SYN-ACKs that answer
 * nothing it sent stand out. Runs at TC egress of the same interface; never changes a packet.
 */
SEC("tc")
int ids_egress(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct hdr_cursor nh = { .pos = data };
	const struct ids_config *cfg;
	struct ids_dst_stats *d;
	struct ids_globals *g;
	__u32 zero = 0;
	struct pkt p;
	__u8 flags;

	g = bpf_map_lookup_elem(&ids_globals, &zero);
	cfg = bpf_map_lookup_elem(&ids_config, &zero);
	if (!g || !cfg || parse_l3(&nh, data, data_end, &p) < 0 || parse_l4(&nh, data, data_end, &p) < 0 ||
	    p.l4 != L4_TCP)
		return TC_ACT_OK;
	flags = p.tcp_flags & TCP_SARF;
	if (flags != (IDS_TCP_SYN | IDS_TCP_ACK) && flags != IDS_TCP_SYN)
		return TC_ACT_OK;
	if ((cfg->flags & IDS_CFG_PROTECT) && !in_protect(&p.src))
		return TC_ACT_OK;
	if (flags == IDS_TCP_SYN) {
		d = bpf_map_lookup_elem(&ids_dst, &p.src.key);
		if (d)
			__sync_fetch_and_add(&d->syn_out, 1);
		return TC_ACT_OK;
	}
	record_challenge(&p, g);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
