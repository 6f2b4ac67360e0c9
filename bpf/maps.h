/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps of the XDP program. Sizes are defaults: user space sets max_entries before load. The
 * records shared with user space are in xdp_ids.h; the structs below are the program's own.
 */
#ifndef IDS_MAPS_H
#define IDS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdp_ids.h"

#define IDS_MAX_SOURCES 131072
#define IDS_MAX_DESTINATIONS 4096
#define IDS_MAX_BLOCK_V4 65536
#define IDS_MAX_BLOCK_V6 16384
#define IDS_MAX_ALLOW 4096
#define IDS_MAX_WATCH 1024
#define IDS_MAX_DST_LIMITS 1024
#define IDS_MAX_PROTECT 1024
#define IDS_MAX_CHALLENGES 32768
#define IDS_EVENTS_BYTES (1 << 20)

/* Per-CPU token bucket; tokens are scaled by 1e9 so that a rate in tokens per second adds
 * exactly `rate` units per nanosecond. */
struct ids_bucket {
	__u64 tokens;
	__u64 last_ns;
};

enum ids_bucket_id {
	IDS_BUCKET_INSERT,
	IDS_BUCKET_EVENTS,
	IDS_BUCKET__MAX
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, IDS_MAX_SOURCES);
	__type(key, struct ids_addr);
	__type(value, struct ids_src_stats);
} ids_src SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, IDS_MAX_DESTINATIONS);
	__type(key, struct ids_addr);
	__type(value, struct ids_dst_stats);
} ids_dst SEC(".maps");

/* Where the packets of sources refused by the insert throttle are counted. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ids_src_stats);
} ids_overflow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ids_globals);
} ids_globals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ids_config);
} ids_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, IDS_MAX_BLOCK_V4);
	__type(key, struct ids_lpm_v4);
	__type(value, struct ids_block);
} ids_block_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, IDS_MAX_BLOCK_V6);
	__type(key, struct ids_lpm_v6);
	__type(value, struct ids_block);
} ids_block_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, IDS_MAX_ALLOW);
	__type(key, struct ids_lpm_v4);
	__type(value, struct ids_allow);
} ids_allow_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, IDS_MAX_ALLOW);
	__type(key, struct ids_lpm_v6);
	__type(value, struct ids_allow);
} ids_allow_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IDS_MAX_DST_LIMITS);
	__type(key, struct ids_dst_limit_key);
	__type(value, struct ids_dst_limit);
} ids_dst_limit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, IDS_MAX_PROTECT);
	__type(key, struct ids_lpm_v4);
	__type(value, struct ids_protect);
} ids_protect_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, IDS_MAX_PROTECT);
	__type(key, struct ids_lpm_v6);
	__type(value, struct ids_protect);
} ids_protect_v6 SEC(".maps");

/* The last destination this CPU looked up in the protect tries: a host receives almost all of
 * its traffic on one or two addresses, and an exact compare is far cheaper than a trie walk. */
struct ids_protect_memo {
	struct ids_addr dst;
	__u32 gen; /* ids_config.protect_gen it was looked up under, + 1 (0: empty) */
	__u32 protected;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ids_protect_memo);
} ids_protect_cache SEC(".maps");

/* enum ids_port_class of every port (user space fills it; all ephemeral until then). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} ids_ports SEC(".maps");

/* SYN-ACKs of protected hosts, by the peer they went to: the value is the acknowledgement number
 * (host order) that completes the handshake. LRU: a SYN flood's backscatter only evicts. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, IDS_MAX_CHALLENGES);
	__type(key, struct ids_challenge_key);
	__type(value, __u32);
} ids_challenges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ids_meta);
} ids_meta SEC(".maps");

/* Sources whose every packet is sampled; the value is not used. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IDS_MAX_WATCH);
	__type(key, struct ids_addr);
	__type(value, __u8);
} ids_watch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, IDS_EVENTS_BYTES);
} ids_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IDS_BUCKET__MAX);
	__type(key, __u32);
	__type(value, struct ids_bucket);
} ids_buckets SEC(".maps");

/* The coarse clock as this CPU last read it, and the jiffies value it was read at. */
struct ids_clock {
	__u64 jiffies;
	__u64 now_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ids_clock);
} ids_clock SEC(".maps");

/*
 * What classify() decided about the packet this CPU is processing. It lives in a map value, not
 * on the stack, because the verifier follows every constant on the stack down every path: the
 * few values decided there, known exactly on each path, multiplied the paths it walks past its
 * limit, while values read back from a map are just numbers to it.
 */
struct ids_class {
	__u8 reply; /* from a service port to an ephemeral one: not a probe */
	__u8 amplifier; /* UDP from an amplifier port */
	__u8 traffic; /* enum ids_traffic, or 0xff for none */
	__u8 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ids_class);
} ids_class_scratch SEC(".maps");

/* Newly inserted sources since the last new-source sample, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ids_new_sources SEC(".maps");

#endif /* IDS_MAPS_H */
