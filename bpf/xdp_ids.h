/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Everything the XDP program and user space share: map records, event records, counter indexes
 * and configuration. This header is the single source of truth for those layouts: user space
 * decodes them at offsets generated from the compiled object's BTF (native/layout.generated.ts),
 * and test/unit/layout.test.ts fails if the two ever drift apart.
 *
 * Conventions
 *  - Addresses are 16 bytes in network order. IPv4 sources (and IPv4-mapped IPv6 sources,
 *    ::ffff:a.b.c.d) are stored in the IPv4-mapped form, so one map serves both families.
 *  - Times are CLOCK_MONOTONIC_COARSE nanoseconds (bpf_ktime_get_coarse_ns(), jiffy resolution,
 *    read once per jiffy and CPU); a window id is time_ns / config.window_ns. User space
 *    reads CLOCK_MONOTONIC (process.hrtime), which the coarse clock trails by at most a jiffy.
 *  - Counters in src_stats/dst_stats are cumulative since the entry was created; user space
 *    takes deltas between ticks (32-bit fields wrap; deltas are taken modulo 2^32).
 *  - Per-window fan-out uses linear counting: a bit per hash(port) / hash(address) is set in a
 *    bitmap that is cleared when a new window starts; the number of bits set in a window is kept
 *    in a small double-buffered slot (win[window & 1]) so user space reads the window that just
 *    ended while the kernel writes the next one. Estimate: n = -m * ln(1 - bits / m).
 */
#ifndef XDP_IDS_H
#define XDP_IDS_H

#define IDS_PORT_BITS 256 /* per-source distinct destination ports sketch (m) */
#define IDS_HOST_BITS 128 /* per-source distinct destination hosts sketch */
#define IDS_DST_SRC_BITS 512 /* per-destination distinct sources sketch */
#define IDS_DST_AMP_SRC_BITS 128 /* per-destination distinct amplifier (reflector) sources sketch */

/* The sketches hash with MurmurHash3's 32-bit finalizer: plain multiplicative hashing spreads
 * consecutive ports (a scan) more evenly than random, which makes linear counting overestimate
 * (+27% for 100 consecutive ports). test/support/reference.ts mirrors it. */
#define IDS_HASH_M1 0x85EBCA6Bu
#define IDS_HASH_M2 0xC2B2AE35u

/* TCP flag bits as in byte 13 of the TCP header. */
#define IDS_TCP_FIN 0x01
#define IDS_TCP_SYN 0x02
#define IDS_TCP_RST 0x04
#define IDS_TCP_PSH 0x08
#define IDS_TCP_ACK 0x10
#define IDS_TCP_URG 0x20
#define IDS_TCP_ECE 0x40
#define IDS_TCP_CWR 0x80

struct ids_addr {
	__u8 b[16];
};

/* One window's counts for a source; two of these, indexed by window & 1. 16 bytes. */
struct ids_src_window {
	__u32 window; /* window id these counts belong to */
	__u32 syn; /* SYN packets (class "syn" below) in the window: fast-path threshold */
	__u16 port_bits; /* bits newly set in port_bitmap during the window */
	__u16 host_bits; /* bits newly set in host_bitmap during the window */
	__u8 events; /* ring buffer events emitted for this source in the window */
	__u8 tripped; /* IDS_TRIP_* already reported in the window */
	__u16 proto_bits; /* bits newly set in proto_bitmap during the window */
};

/*
 * Per-source record (value of map ids_src, key struct ids_addr). 192 bytes; with the 16-byte
 * key and the kernel's 48-byte LRU hash element header, 256 bytes of kernel memory per tracked
 * source (LRU maps are preallocated: max_entries * 256 bytes).
 *
 * Only traffic towards protected destinations is counted here (ids_protect_*, README.md step
 * 5); the bitmaps and window slots belong to the window in win[window & 1].window and are
 * cleared by the CPU that starts a new window.
 *
 * TCP classes (f = flags & 0x3f; a packet may count in more than one class):
 *   syn      (f & (SYN|ACK|RST|FIN)) == SYN
 *   synack   (f & (SYN|ACK|RST|FIN)) == SYN|ACK
 *   ack      (f & (SYN|ACK|RST|FIN)) == ACK        "ACK-only"; PSH/URG allowed
 *   rst      f & RST
 *   fin      (f & (SYN|FIN)) == FIN                 closes and FIN/XMAS probes
 *   null     f == 0
 *   fin_only f == FIN
 *   xmas     f == FIN|PSH|URG
 *   synfin   (f & (SYN|FIN)) == SYN|FIN
 */
struct ids_src_stats {
	__u64 packets; /* every packet from the source that passed, malformed L4 included */
	__u64 bytes; /* frame bytes (data_end - data) */
	__u64 first_seen_ns;
	__u64 last_seen_ns;
	__u32 syn;
	__u32 synack;
	__u32 ack;
	__u32 rst;
	__u32 fin;
	__u32 null_scan;
	__u32 fin_only;
	__u32 xmas;
	__u32 synfin;
	__u32 udp;
	__u32 icmp; /* ICMP and ICMPv6 */
	__u32 fragments; /* non-first fragments (never parsed past L3) */
	__u32 malformed; /* valid L3 header, truncated or invalid L4 header */
	__u32 first_fragments; /* first fragments (more-fragments set, offset 0) */
	__u32 replies; /* TCP/UDP from a service port to an ephemeral port: answers, not probes */
	__u32 handshakes; /* ACKs of a SYN-ACK of ours (the challenge's sequence number + 1) */
	__u32 ttl_mismatch; /* packets since the first handshake whose TTL is off verified_ttl by > 2 */
	__u32 verified_at; /* coarse time (ns >> IDS_COARSE_SHIFT) of the last handshake; 0 = never */
	__u32 proto_bitmap; /* IP protocols (after IPv6 extension headers), current window */
	__u8 verified_ttl; /* TTL / hop limit of the packet that completed the last handshake */
	__u8 _pad[3];
	struct ids_src_window win[2];
	__u64 port_bitmap[IDS_PORT_BITS / 64]; /* TCP/UDP destination ports of probes, current window */
	__u64 host_bitmap[IDS_HOST_BITS / 64]; /* destination addresses, current window */
};

/* verified_at's unit: 2^30 ns (1.07 s), so a u32 lasts 146 years of uptime. */
#define IDS_COARSE_SHIFT 30
/* A verified source's ACKs are checked against the challenges again only after this many units. */
#define IDS_VERIFY_REFRESH 32
/* TTLs this close to the verified one count as the same path. */
#define IDS_TTL_SLACK 2

struct ids_dst_window {
	__u32 window;
	__u16 src_bits; /* bits newly set in src_bitmap during the window */
	__u16 amp_src_bits; /* bits newly set in amp_src_bitmap during the window */
};

/*
 * Per-destination record (map ids_dst, key struct ids_addr) for attacks whose sources are
 * spoofed or reflectors: floods, reflection and amplification, backscatter. Only the classes
 * below update it (README.md step 6); src_bitmap belongs to the window in
 * win[window & 1].window.
 */
struct ids_dst_stats {
	__u64 syn;
	__u64 udp;
	__u64 icmp;
	__u64 bytes; /* frame bytes of every packet counted here */
	__u64 synack; /* SYN-ACKs arriving: backscatter of SYNs spoofed in our name, or reflection */
	__u64 udp_amp; /* UDP from amplifier service ports (ids_ports: IDS_PORT_AMPLIFIER) */
	__u64 udp_amp_bytes;
	__u64 fragments; /* IP fragments, first and later */
	__u64 fragment_bytes;
	__u64 handshakes; /* handshakes completed with this destination (its SYN-ACKs ACKed) */
	__u64 syn_out; /* SYNs this address sent (TC egress): what SYN-ACKs may legitimately answer */
	struct ids_dst_window win[2];
	__u64 src_bitmap[IDS_DST_SRC_BITS / 64];
	/* Sources of udp_amp only: a resolver answering a busy host is one source, a reflection
	 * attack hundreds, whatever else the host receives. */
	__u64 amp_src_bitmap[IDS_DST_AMP_SRC_BITS / 64];
};

/* Value of ids_ports, indexed by port number: what a port is to the reply/probe and
 * amplification classifications. */
enum ids_port_class {
	IDS_PORT_EPHEMERAL = 0, /* clients' source ports */
	IDS_PORT_SERVICE = 1, /* a well-known service: traffic from it to an ephemeral port is a reply */
	IDS_PORT_AMPLIFIER = 2, /* a UDP service that answers small requests with large ones */
};

/* Key of ids_challenges: a SYN-ACK we sent, waiting for the ACK that completes its handshake. */
struct ids_challenge_key {
	struct ids_addr peer;
	__be16 peer_port;
	__be16 local_port;
};

/* LPM trie keys for the block and allow lists (prefixlen first, as the kernel requires). */
struct ids_lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct ids_lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Value of ids_block_v4/ids_block_v6. The kernel stops dropping once expires_ns has passed,
 * even if user space is gone; a packet whose most specific entry has expired is judged by the
 * next covering entry (prefixlen tells where to look). */
struct ids_block {
	__u64 expires_ns; /* CLOCK_MONOTONIC deadline; 0 = no expiry */
	__u64 drops; /* packets dropped by this entry */
	__u64 last_drop_ns;
	__u32 prefixlen; /* the entry's own prefix length, as in its key */
	__u32 flags; /* IDS_ENTRY_*: user space's bookkeeping, not read by the program */
};

/* Value of ids_allow_v4/ids_allow_v6: the allowlist always wins over the blocklist and the
 * destination limits. */
struct ids_allow {
	__u64 hits; /* packets that a live block entry or an exhausted destination limit would have
		     * dropped and that passed because of this entry */
	__u32 flags; /* IDS_ENTRY_* */
	__u32 _pad;
};

/* The entry outlived the ledger generation that wrote it (Redis lost its data): it stays until
 * its own expiry or an operator's removal (blocking/enforcer.ts). */
#define IDS_ENTRY_RETAINED 0x1

/* Protected prefixes (ids_protect_v4/_v6), like a HOME_NET: only traffic towards them is judged. */
struct ids_protect {
	__u8 unused;
};

/* Value of ids_meta[0]: which ledger generation the block, allow and limit entries come from
 * (user space only; pinned with them, so a restarted sensor knows). */
struct ids_meta {
	char ledger_epoch[40];
	__u64 ledger_rev;
};

/* The traffic classes a destination limit caps: the answers to attacks whose sources are
 * forged or reflectors, where blocking sources cannot help. A packet is in at most one. */
enum ids_traffic {
	IDS_TRAFFIC_SYN = 0, /* TCP SYN (class "syn") */
	IDS_TRAFFIC_UDP_AMP = 1, /* UDP from an amplifier service port */
	IDS_TRAFFIC_FRAGMENTS = 2, /* IP fragments, first or later, in none of the other classes */
	IDS_TRAFFIC_SYNACK = 3, /* TCP SYN-ACK */
	IDS_TRAFFIC__MAX
};

struct ids_dst_limit_key {
	struct ids_addr dst; /* in the form ids_dst uses */
	__u32 traffic; /* enum ids_traffic */
};

/*
 * Value of ids_dst_limit: a token bucket for one traffic class sent to one destination. The
 * bucket is kept as the time its budget is spent up to (GCRA's theoretical arrival time): each
 * admitted packet moves tat_ns 1e9 / per_sec ns further, and a packet is admitted while tat_ns
 * stays within burst intervals of now. One 64-bit word holds the whole state, so CPUs share it
 * with a compare-and-exchange and no lock (README.md: accuracy).
 */
struct ids_dst_limit {
	__u64 expires_ns; /* CLOCK_MONOTONIC deadline; 0 = no expiry */
	__u64 tat_ns; /* the budget is spent up to this time; 0 = full burst */
	__u64 drops; /* packets dropped by this entry */
	__u32 per_sec; /* 1..IDS_DST_LIMIT_MAX_RATE */
	__u32 burst; /* >= 1 */
	__u32 flags; /* IDS_ENTRY_* */
	__u32 _pad;
};

/* 1e9 / rate is the interval in whole ns: at most 0.1% fast up to this rate. */
#define IDS_DST_LIMIT_MAX_RATE 1000000

/* Global counters: one struct ids_globals per CPU in ids_globals[0]; user space sums. */
enum ids_counter {
	IDS_CNT_PACKETS,
	IDS_CNT_BYTES,
	IDS_CNT_PASS,
	IDS_CNT_DROP_BLOCKED, /* drops by reason: blocklist */
	IDS_CNT_ALLOWLISTED, /* a block entry or destination limit would drop it; allowlisted */
	IDS_CNT_BLOCK_EXPIRED, /* matched only an expired block entry, passed */
	IDS_CNT_DROP_DST_LIMIT, /* drops by reason: over its destination's limit for its traffic */
	IDS_CNT_DROP_UNPARSED, /* drops by reason: encapsulated deeper than parsed while blocks are in force */
	IDS_CNT_IPV4,
	IDS_CNT_IPV6,
	IDS_CNT_NON_IP,
	IDS_CNT_FRAGMENTS, /* non-first fragments */
	IDS_CNT_FIRST_FRAGMENTS, /* first fragments */
	IDS_CNT_NOT_PROTECTED, /* packets to a destination outside the protected prefixes: not judged */
	IDS_CNT_CHALLENGES, /* SYN-ACKs of protected hosts recorded as challenges (egress or mirror) */
	IDS_CNT_HANDSHAKES, /* challenges answered: a source completed a handshake */
	IDS_CNT_NEW_SOURCES, /* sources inserted into ids_src */
	IDS_CNT_UNTRACKED, /* packets aggregated into ids_overflow by the insert throttle */
	IDS_CNT_EVENTS, /* ring buffer events submitted */
	IDS_CNT_EVENTS_LIMITED, /* events suppressed by the per-source or global limit */
	IDS_CNT_RINGBUF_FULL, /* ring buffer reservation failures */
	/* Parse errors by reason; the packet is passed. */
	IDS_CNT_ERR_ETH_TRUNC,
	IDS_CNT_ERR_VLAN_TRUNC,
	IDS_CNT_ERR_ENCAP_DEPTH, /* more than IDS_MAX_VLAN VLAN tags or IDS_MAX_MPLS MPLS labels */
	IDS_CNT_ERR_PPPOE_TRUNC,
	IDS_CNT_ERR_MPLS_TRUNC,
	IDS_CNT_ERR_IP_VERSION, /* version field does not match the EtherType */
	IDS_CNT_ERR_IPV4_TRUNC, /* fewer than 20 bytes, or fewer than IHL*4 */
	IDS_CNT_ERR_IPV4_BAD_IHL, /* IHL < 5 */
	IDS_CNT_ERR_IPV4_BAD_LEN, /* total length < IHL*4 or beyond the frame */
	IDS_CNT_ERR_IPV6_TRUNC,
	IDS_CNT_ERR_IPV6_BAD_LEN, /* 40 + payload length beyond the frame */
	IDS_CNT_ERR_IPV6_EXT_TRUNC, /* extension header beyond the frame or the payload */
	IDS_CNT_ERR_IPV6_EXT_LIMIT, /* more than IDS_IPV6_MAX_EXT extension headers */
	IDS_CNT_ERR_TCP_TRUNC,
	IDS_CNT_ERR_TCP_BAD_DOFF, /* data offset < 5 or beyond the IP payload */
	IDS_CNT_ERR_UDP_TRUNC,
	IDS_CNT_ERR_ICMP_TRUNC, /* ICMP or ICMPv6 header (4 bytes) truncated */
	IDS_CNT__MAX
};

#define IDS_IPV6_MAX_EXT 8
#define IDS_MAX_VLAN 4
#define IDS_MAX_MPLS 4

struct ids_globals {
	__u64 c[IDS_CNT__MAX];
};

/* Configuration (ids_config[0]); user space may rewrite it at any time, no reload needed. */
#define IDS_CFG_BLOCKS 0x1 /* block lists are non-empty: look them up */
#define IDS_CFG_WATCH 0x2 /* ids_watch is non-empty: look sources up in it */
#define IDS_CFG_ALLOWS 0x4 /* allow lists are non-empty: a source about to be dropped looks them up */
#define IDS_CFG_DST_LIMITS 0x8 /* ids_dst_limit is non-empty: look limited classes' destinations up */
#define IDS_CFG_PROTECT 0x10 /* protect tries are non-empty: judge only traffic towards them */
#define IDS_CFG_DROP_UNPARSED 0x20 /* drop frames encapsulated deeper than parsed while blocks exist */

struct ids_config {
	__u64 window_ns; /* window length; 0 means 1 s */
	__u32 trip_syn; /* SYN-class packets per source per window that trip; 0 = off */
	__u32 trip_port_bits; /* port-bitmap bits per source per window that trip; 0 = off */
	__u32 trip_host_bits; /* host-bitmap bits per source per window that trip; 0 = off */
	__u32 events_per_src_window; /* max events per source per window (<= 255) */
	__u32 event_rate; /* events per second per CPU (token bucket); 0 = no events */
	__u32 event_burst;
	__u32 insert_rate; /* new sources per second per CPU; 0 = unlimited */
	__u32 insert_burst;
	__u32 sample_new_every; /* sample one in N newly tracked sources; 0 = off */
	__u32 flags; /* IDS_CFG_* */
	__u32 protect_gen; /* changed by user space with the protect tries: invalidates ids_protect_cache */
	__u32 _pad;
};

/* Ring buffer events. */
enum ids_event_type {
	IDS_EV_SAMPLE = 1, /* header elements of one packet */
	IDS_EV_TRIP = 2, /* a source crossed a fast-path threshold in this window */
};

enum ids_sample_reason {
	IDS_SAMPLE_NEW_SOURCE = 1,
	IDS_SAMPLE_WATCHED = 2,
};

enum ids_trip {
	IDS_TRIP_SYN = 0x1,
	IDS_TRIP_PORTS = 0x2,
	IDS_TRIP_HOSTS = 0x4,
};

#define IDS_FRAG_DF 0x1
#define IDS_FRAG_MF 0x2 /* more fragments follow */
#define IDS_FRAG_NONFIRST 0x4 /* fragment offset > 0 */

/* One event: the header elements of the packet that caused it. Multi-byte fields are in host
 * order; addresses in network order. Fields that do not apply are zero. */
struct ids_event {
	__u64 ts_ns;
	__u8 type; /* IDS_EV_* */
	__u8 reason; /* IDS_SAMPLE_* or IDS_TRIP_* */
	__u8 ip_version; /* 4 or 6 */
	__u8 proto; /* L4 protocol (after IPv6 extension headers) */
	__u32 window;
	__u32 value; /* trips: the count that crossed the threshold */
	__u32 threshold; /* trips: the configured threshold */
	struct ids_addr src;
	struct ids_addr dst;
	__u8 smac[6];
	__u8 dmac[6];
	__u16 ethertype; /* innermost EtherType */
	__u16 vlan[2]; /* TCIs of the two outermost VLAN tags; 0 = none */
	__u16 pkt_len; /* frame length */
	__u8 ttl; /* TTL or hop limit */
	__u8 tos; /* DSCP << 2 | ECN (IPv4 TOS / IPv6 traffic class) */
	__u16 ip_id; /* IPv4 identification */
	__u8 frag; /* IDS_FRAG_* */
	__u8 tcp_flags;
	__u16 sport;
	__u16 dport;
	__u16 tcp_window;
	__u32 seq;
	__u32 ack_seq;
	__u8 icmp_type;
	__u8 icmp_code;
	__u16 _pad;
	__u32 flow_label; /* IPv6 flow label */
};

#endif /* XDP_IDS_H */
