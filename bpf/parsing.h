/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header-cursor parsers: each moves the cursor past one header after checking it against
 * data_end, and returns the next protocol (or 0 for L4 headers), or a negative error that is
 * the negated IDS_CNT_ERR_* counter index of README.md's reason.
 *
 * The IP parsers also return the number of IP payload bytes (l4_len): README.md bounds every
 * L4 header by the IP payload, not only by the frame. That bound is kept as a plain number
 * because the verifier learns packet ranges only from comparisons with data_end; the data_end
 * check beside each l4_len check is for the verifier (l4_len never reaches past data_end).
 */
#ifndef IDS_PARSING_H
#define IDS_PARSING_H

#include <stdbool.h>

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
/* linux/icmp.h includes linux/if.h for IFNAMSIZ alone, and linux/if.h includes glibc's
 * sys/socket.h, which cannot be compiled for the BPF target (it wants gnu/stubs-32.h). */
#define _LINUX_IF_H
#define IFNAMSIZ 16
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdp_ids.h"

/* ICMP and ICMPv6 share type, code and checksum; only those 4 bytes are required. */
#define IDS_ICMP_MIN_LEN 4

#define IDS_IP_DF 0x4000
#define IDS_IP_MF 0x2000
#define IDS_IP_OFFSET 0x1fff
#define IDS_IP6_OFFSET 0xfff8
#define IDS_IP6_MF 0x0001

struct hdr_cursor {
	void *pos;
};

/* Not in the UAPI headers. */
struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

static __always_inline int proto_is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* PPPoE session header and the PPP protocol field after it. */
struct pppoe_ppp_hdr {
	__u8 ver_type;
	__u8 code;
	__be16 session;
	__be16 length;
	__be16 ppp_proto;
};

#define IDS_PPP_IP 0x0021
#define IDS_PPP_IPV6 0x0057
#define IDS_MPLS_BOTTOM 0x100 /* bottom-of-stack bit of a label entry (host order) */

/* The EtherType of what a PPPoE session carries: IPv4, IPv6, or 0 for anything else (LCP...). */
static __always_inline int parse_pppoe(struct hdr_cursor *nh, void *data_end)
{
	struct pppoe_ppp_hdr *ph = nh->pos;

	if ((void *)(ph + 1) > data_end)
		return -IDS_CNT_ERR_PPPOE_TRUNC;
	nh->pos = ph + 1;
	if (ph->ppp_proto == bpf_htons(IDS_PPP_IP))
		return ETH_P_IP;
	if (ph->ppp_proto == bpf_htons(IDS_PPP_IPV6))
		return ETH_P_IPV6;
	return 0;
}

/* Skips an MPLS label stack (at most IDS_MAX_MPLS labels) and names its payload by the first
 * nibble, as routers do: IPv4, IPv6, or 0 for anything else (pseudowires). */
static __always_inline int parse_mpls(struct hdr_cursor *nh, void *data_end)
{
	int i;

#pragma unroll
	for (i = 0; i < IDS_MAX_MPLS; i++) {
		__be32 *entry = nh->pos;
		__u8 *payload;

		if ((void *)(entry + 1) > data_end)
			return -IDS_CNT_ERR_MPLS_TRUNC;
		nh->pos = entry + 1;
		if (!(bpf_ntohl(*entry) & IDS_MPLS_BOTTOM))
			continue;
		payload = nh->pos;
		if ((void *)(payload + 1) > data_end)
			return -IDS_CNT_ERR_MPLS_TRUNC;
		if (*payload >> 4 == 4)
			return ETH_P_IP;
		if (*payload >> 4 == 6)
			return ETH_P_IPV6;
		return 0;
	}
	return -IDS_CNT_ERR_ENCAP_DEPTH;
}

/*
 * Returns the EtherType of the network header the cursor is left at (after up to IDS_MAX_VLAN
 * VLAN tags, a PPPoE session header or an MPLS label stack), 0 when that is not IP; vlan[] gets
 * the TCIs (host order) of the two outermost tags, the caller zeroes it. Deeper encapsulation is
 * -IDS_CNT_ERR_ENCAP_DEPTH: the program cannot tell whose packet it is.
 */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end,
					struct ethhdr **ethhdr, __u16 vlan[2])
{
	struct ethhdr *eth = nh->pos;
	__be16 proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return -IDS_CNT_ERR_ETH_TRUNC;
	*ethhdr = eth;
	nh->pos = eth + 1;
	proto = eth->h_proto;

#pragma unroll
	for (i = 0; i < IDS_MAX_VLAN; i++) {
		struct vlan_hdr *vh = nh->pos;

		if (!proto_is_vlan(proto))
			break;
		if ((void *)(vh + 1) > data_end)
			return -IDS_CNT_ERR_VLAN_TRUNC;
		if (i < 2)
			vlan[i] = bpf_ntohs(vh->tci);
		proto = vh->encap_proto;
		nh->pos = vh + 1;
	}
	if (proto_is_vlan(proto))
		return -IDS_CNT_ERR_ENCAP_DEPTH;
	if (proto == bpf_htons(ETH_P_PPP_SES))
		return parse_pppoe(nh, data_end);
	if (proto == bpf_htons(ETH_P_MPLS_UC) || proto == bpf_htons(ETH_P_MPLS_MC))
		return parse_mpls(nh, data_end);
	return bpf_ntohs(proto);
}

/* Beyond the longest link layer parsed: Ethernet, four VLAN tags and four MPLS labels. */
#define IDS_MAX_L2_OFFSET 64

/*
 * The cursor after the link layer, rebuilt from the frame start plus a bounded offset: each
 * combination of tags and labels would otherwise reach the network parsers as a packet pointer
 * with a constant offset of its own, and the verifier would walk the rest of the program once
 * per combination.
 */
static __always_inline int parse_link(struct hdr_cursor *nh, void *data, void *data_end,
				      struct ethhdr **ethhdr, __u16 vlan[2])
{
	int proto = parse_ethhdr(nh, data_end, ethhdr, vlan);
	__u64 off;

	if (proto < 0)
		return proto;
	off = nh->pos - data;
	if (off > IDS_MAX_L2_OFFSET)
		return -IDS_CNT_ERR_ENCAP_DEPTH;
	nh->pos = data + off;
	return proto;
}

static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end,
				       struct iphdr **iphdr, __u32 *l4_len)
{
	struct iphdr *ip = nh->pos;
	__u32 hlen, tot_len;

	if ((void *)(ip + 1) > data_end)
		return -IDS_CNT_ERR_IPV4_TRUNC;
	if (ip->version != 4)
		return -IDS_CNT_ERR_IP_VERSION;
	hlen = ip->ihl * 4;
	if (hlen < sizeof(*ip))
		return -IDS_CNT_ERR_IPV4_BAD_IHL;
	if (nh->pos + hlen > data_end)
		return -IDS_CNT_ERR_IPV4_TRUNC;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < hlen || nh->pos + tot_len > data_end)
		return -IDS_CNT_ERR_IPV4_BAD_LEN;

	*iphdr = ip;
	*l4_len = tot_len - hlen;
	nh->pos += hlen;
	return ip->protocol;
}

static __always_inline int parse_ipv6hdr(struct hdr_cursor *nh, void *data_end,
					 struct ipv6hdr **ip6hdr, __u32 *l4_len)
{
	struct ipv6hdr *ip6 = nh->pos;
	__u32 payload_len;

	if ((void *)(ip6 + 1) > data_end)
		return -IDS_CNT_ERR_IPV6_TRUNC;
	if (ip6->version != 6)
		return -IDS_CNT_ERR_IP_VERSION;
	payload_len = bpf_ntohs(ip6->payload_len);
	if ((void *)(ip6 + 1) + payload_len > data_end)
		return -IDS_CNT_ERR_IPV6_BAD_LEN;

	*ip6hdr = ip6;
	*l4_len = payload_len;
	nh->pos = ip6 + 1;
	return ip6->nexthdr;
}

static __always_inline int ipv6_is_ext(int nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
	       nexthdr == IPPROTO_DSTOPTS || nexthdr == IPPROTO_AH || nexthdr == IPPROTO_FRAGMENT;
}

/* Far above the IPv6 header plus IDS_IPV6_MAX_EXT headers of at most 2048 bytes, and low
 * enough that the verifier still learns packet ranges after it (offset + 20 <= 0xffff). */
#define IDS_MAX_EXT_OFFSET 0x3fff

/*
 * Walks at most IDS_IPV6_MAX_EXT extension headers and returns the protocol after them. A
 * fragment header adds IDS_FRAG_* to *frag; after one with a non-zero offset the walk stops
 * (IDS_FRAG_NONFIRST) and returns that header's next header, which the caller must not parse.
 *
 * After each header the cursor is rebuilt from data plus a bounded offset. The verifier would
 * otherwise carry every combination of header lengths as a state of its own (thousands of
 * them) through the rest of the parse; the bound never fails at run time.
 */
static __always_inline int skip_ipv6_exthdrs(struct hdr_cursor *nh, void *data, void *data_end,
					     int nexthdr, __u32 *l4_len, __u8 *frag)
{
	int i;

#pragma unroll
	for (i = 0; i < IDS_IPV6_MAX_EXT; i++) {
		struct ipv6_opt_hdr *opt = nh->pos;
		struct ipv6_frag_hdr *fh = nh->pos;
		__u16 frag_off;
		__u32 hlen;
		__u64 off;

		if (!ipv6_is_ext(nexthdr))
			return nexthdr;

		if (nexthdr == IPPROTO_FRAGMENT) {
			if (*l4_len < sizeof(*fh) || (void *)(fh + 1) > data_end)
				return -IDS_CNT_ERR_IPV6_EXT_TRUNC;
			frag_off = bpf_ntohs(fh->frag_off);
			nexthdr = fh->nexthdr;
			*l4_len -= sizeof(*fh);
			if (frag_off & IDS_IP6_MF)
				*frag |= IDS_FRAG_MF;
			if (frag_off & IDS_IP6_OFFSET) {
				*frag |= IDS_FRAG_NONFIRST;
				return nexthdr;
			}
			off = (void *)(fh + 1) - data;
			if (off > IDS_MAX_EXT_OFFSET)
				return -IDS_CNT_ERR_IPV6_EXT_TRUNC;
			nh->pos = data + off;
			continue;
		}

		if (*l4_len < sizeof(*opt) || (void *)(opt + 1) > data_end)
			return -IDS_CNT_ERR_IPV6_EXT_TRUNC;
		if (nexthdr == IPPROTO_AH)
			hlen = (opt->hdrlen + 2) * 4;
		else
			hlen = (opt->hdrlen + 1) * 8;
		if (hlen > *l4_len || nh->pos + hlen > data_end)
			return -IDS_CNT_ERR_IPV6_EXT_TRUNC;
		nexthdr = opt->nexthdr;
		*l4_len -= hlen;
		off = nh->pos + hlen - data;
		if (off > IDS_MAX_EXT_OFFSET)
			return -IDS_CNT_ERR_IPV6_EXT_TRUNC;
		nh->pos = data + off;
	}
	if (ipv6_is_ext(nexthdr))
		return -IDS_CNT_ERR_IPV6_EXT_LIMIT;
	return nexthdr;
}

static __always_inline int parse_tcphdr(struct hdr_cursor *nh, void *data_end, __u32 l4_len,
					struct tcphdr **tcphdr)
{
	struct tcphdr *th = nh->pos;
	__u32 hlen;

	if (l4_len < sizeof(*th) || (void *)(th + 1) > data_end)
		return -IDS_CNT_ERR_TCP_TRUNC;
	hlen = th->doff * 4;
	if (hlen < sizeof(*th) || hlen > l4_len)
		return -IDS_CNT_ERR_TCP_BAD_DOFF;

	*tcphdr = th;
	nh->pos += hlen;
	return 0;
}

static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end, __u32 l4_len,
					struct udphdr **udphdr)
{
	struct udphdr *uh = nh->pos;

	if (l4_len < sizeof(*uh) || (void *)(uh + 1) > data_end)
		return -IDS_CNT_ERR_UDP_TRUNC;

	*udphdr = uh;
	nh->pos = uh + 1;
	return 0;
}

/* The ports of a first fragment too short for its whole TCP or UDP header (they are its first
 * four bytes); false when even they are cut. */
static __always_inline bool parse_ports(struct hdr_cursor *nh, void *data_end, __u32 l4_len,
					__be16 *sport, __be16 *dport)
{
	__be16 *ports = nh->pos;

	if (l4_len < 4 || (void *)(ports + 2) > data_end)
		return false;
	*sport = ports[0];
	*dport = ports[1];
	return true;
}

static __always_inline int parse_icmphdr(struct hdr_cursor *nh, void *data_end, __u32 l4_len,
					 struct icmphdr **icmphdr)
{
	struct icmphdr *ih = nh->pos;

	if (l4_len < IDS_ICMP_MIN_LEN || nh->pos + IDS_ICMP_MIN_LEN > data_end)
		return -IDS_CNT_ERR_ICMP_TRUNC;

	*icmphdr = ih;
	nh->pos += IDS_ICMP_MIN_LEN;
	return 0;
}

static __always_inline int parse_icmp6hdr(struct hdr_cursor *nh, void *data_end, __u32 l4_len,
					  struct icmp6hdr **icmp6hdr)
{
	struct icmp6hdr *ih = nh->pos;

	if (l4_len < IDS_ICMP_MIN_LEN || nh->pos + IDS_ICMP_MIN_LEN > data_end)
		return -IDS_CNT_ERR_ICMP_TRUNC;

	*icmp6hdr = ih;
	nh->pos += IDS_ICMP_MIN_LEN;
	return 0;
}

#endif /* IDS_PARSING_H */
