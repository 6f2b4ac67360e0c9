// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Benchmark driver: rewrites the IPv4 source of the test frame on every run, then tail-calls the
 * program under test. One BPF_PROG_TEST_RUN call with repeat = n thus measures n packets from
 * many sources back to back, with the program and its maps as warm as a busy NIC keeps them,
 * which one call per frame cannot (the system call between frames evicts them). The floor is
 * this driver tail-calling an empty program.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct rr_config {
	__u32 base; /* first source address (host order) */
	__u32 sources; /* round-robin over base .. base + sources - 1; 0 = random addresses */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rr_config);
} rr_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rr_counter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} rr_target SEC(".maps");

/* MurmurHash3's finalizer: a bijection, so n runs give n distinct random addresses. */
static __always_inline __u32 mix(__u32 x)
{
	x ^= x >> 16;
	x *= 0x85EBCA6Bu;
	x ^= x >> 13;
	x *= 0xC2B2AE35u;
	x ^= x >> 16;
	return x;
}

SEC("xdp")
int xdp_round_robin(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct rr_config *cfg;
	__u32 zero = 0, *n, i;

	cfg = bpf_map_lookup_elem(&rr_config, &zero);
	n = bpf_map_lookup_elem(&rr_counter, &zero);
	if (!cfg || !n || (void *)(ip + 1) > data_end)
		return XDP_ABORTED;
	i = (*n)++;
	ip->saddr = bpf_htonl(cfg->sources ? cfg->base + i % cfg->sources : mix(i));
	bpf_tail_call(ctx, &rr_target, 0);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
