/**
 * Header parsing of bpf/README.md steps 2, 3 and 5 for the reference model (reference.ts),
 * written from the README alone: what a frame carries, layer by layer, or the error it stops at.
 */
import type { CounterName } from './reference';

export interface Failure {
  error: CounterName;
}

function fail(error: CounterName): Failure {
  return { error };
}

export function failed<T extends object>(result: T | Failure): result is Failure {
  return 'error' in result;
}

// ------------------------------------------------------------------------------ step 2: link layer

const ETH_HEADER = 14;
const VLAN_TAG = 4;
const MAX_VLAN_TAGS = 4;
const VLAN_TPIDS = new Set([0x8100, 0x88a8]);
const PPPOE_SESSION = 0x8864;
/** The PPPoE session header and the PPP protocol field after it. */
const PPPOE_HEADER = 8;
const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;
const MPLS_ETHERTYPES = new Set([0x8847, 0x8848]);
const MPLS_LABEL = 4;
const MAX_MPLS_LABELS = 4;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;

interface LinkLayer {
  version: 4 | 6;
  networkOffset: number;
}

export function parseLink(frame: Buffer): LinkLayer | Failure {
  if (frame.length < ETH_HEADER) return fail('err_eth_trunc');
  let etherType = frame.readUInt16BE(12);
  let offset = ETH_HEADER;
  for (let tags = 0; VLAN_TPIDS.has(etherType); tags++) {
    if (tags === MAX_VLAN_TAGS) return fail('err_encap_depth');
    if (offset + VLAN_TAG > frame.length) return fail('err_vlan_trunc');
    etherType = frame.readUInt16BE(offset + 2);
    offset += VLAN_TAG;
  }
  if (etherType === PPPOE_SESSION) {
    if (offset + PPPOE_HEADER > frame.length) return fail('err_pppoe_trunc');
    const ppp = frame.readUInt16BE(offset + 6);
    offset += PPPOE_HEADER;
    if (ppp === PPP_IPV4) return { version: 4, networkOffset: offset };
    if (ppp === PPP_IPV6) return { version: 6, networkOffset: offset };
    return fail('non_ip');
  }
  if (MPLS_ETHERTYPES.has(etherType)) return parseMpls(frame, offset);
  if (etherType === ETHERTYPE_IPV4) return { version: 4, networkOffset: offset };
  if (etherType === ETHERTYPE_IPV6) return { version: 6, networkOffset: offset };
  return fail('non_ip');
}

function parseMpls(frame: Buffer, start: number): LinkLayer | Failure {
  let offset = start;
  for (let labels = 0; ; labels++) {
    if (labels === MAX_MPLS_LABELS) return fail('err_encap_depth');
    if (offset + MPLS_LABEL > frame.length) return fail('err_mpls_trunc');
    const bottomOfStack = (frame[offset + 2] & 0x01) !== 0;
    offset += MPLS_LABEL;
    if (!bottomOfStack) continue;
    if (offset + 1 > frame.length) return fail('err_mpls_trunc');
    const nibble = frame[offset] >> 4;
    if (nibble === 4) return { version: 4, networkOffset: offset };
    if (nibble === 6) return { version: 6, networkOffset: offset };
    return fail('non_ip');
  }
}

// ------------------------------------------------------------------------------ step 3: IP header

const IPV4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

export function toMapped(addr: Buffer): Buffer {
  return addr.length === 4 ? Buffer.concat([IPV4_MAPPED_PREFIX, addr]) : Buffer.from(addr);
}

export function isIpv4Mapped(addr: Buffer): boolean {
  return addr.length === 16 && addr.subarray(0, 12).equals(IPV4_MAPPED_PREFIX);
}

export interface NetworkLayer {
  version: 4 | 6;
  /** 16 bytes, IPv4 in the IPv4-mapped form. */
  src: Buffer;
  dst: Buffer;
  ttl: number;
  /** IPv4 protocol or the IPv6 header's next header. */
  protocol: number;
  /** IPv4 only: fragment offset (8-byte units) and more-fragments. */
  fragmentOffset: number;
  moreFragments: boolean;
  payloadOffset: number;
  /** The lesser of the frame end and the IP payload end. */
  payloadEnd: number;
}

export function parseNetwork(frame: Buffer, link: LinkLayer): NetworkLayer | Failure {
  return link.version === 4 ? parseIpv4(frame, link.networkOffset) : parseIpv6(frame, link.networkOffset);
}

function parseIpv4(frame: Buffer, offset: number): NetworkLayer | Failure {
  if (frame.length - offset < 20) return fail('err_ipv4_trunc');
  if (frame[offset] >> 4 !== 4) return fail('err_ip_version');
  const headerLength = (frame[offset] & 0x0f) * 4;
  if (headerLength < 20) return fail('err_ipv4_bad_ihl');
  if (offset + headerLength > frame.length) return fail('err_ipv4_trunc');
  const totalLength = frame.readUInt16BE(offset + 2);
  if (totalLength < headerLength || offset + totalLength > frame.length) return fail('err_ipv4_bad_len');
  const flagsAndOffset = frame.readUInt16BE(offset + 6);
  return {
    version: 4,
    src: toMapped(frame.subarray(offset + 12, offset + 16)),
    dst: toMapped(frame.subarray(offset + 16, offset + 20)),
    ttl: frame[offset + 8],
    protocol: frame[offset + 9],
    fragmentOffset: flagsAndOffset & 0x1fff,
    moreFragments: (flagsAndOffset & 0x2000) !== 0,
    payloadOffset: offset + headerLength,
    payloadEnd: Math.min(frame.length, offset + totalLength),
  };
}

function parseIpv6(frame: Buffer, offset: number): NetworkLayer | Failure {
  if (frame.length - offset < 40) return fail('err_ipv6_trunc');
  if (frame[offset] >> 4 !== 6) return fail('err_ip_version');
  const payloadEnd = offset + 40 + frame.readUInt16BE(offset + 4);
  if (payloadEnd > frame.length) return fail('err_ipv6_bad_len');
  return {
    version: 6,
    src: Buffer.from(frame.subarray(offset + 8, offset + 24)),
    dst: Buffer.from(frame.subarray(offset + 24, offset + 40)),
    ttl: frame[offset + 7],
    protocol: frame[offset + 6],
    fragmentOffset: 0,
    moreFragments: false,
    payloadOffset: offset + 40,
    payloadEnd: Math.min(frame.length, payloadEnd),
  };
}

// ------------------------------------------------------------------------------ step 5: L4

export type L4 =
  | { kind: 'tcp'; flags: number; sport: number; dport: number; seq: number; ack: number }
  | { kind: 'udp'; sport: number; dport: number }
  /** A first fragment cut inside its TCP or UDP header: ports known, flags not. */
  | { kind: 'ports'; sport: number; dport: number }
  | { kind: 'icmp' }
  /** A non-first fragment: never parsed past its IP header (and extension headers). */
  | { kind: 'fragment' }
  | { kind: 'other' }
  | { kind: 'malformed'; error: CounterName };

export interface Transport {
  l4: L4;
  /** The IP protocol after the extension headers (the IPv6 header's next header when their walk fails). */
  protocol: number;
  fragment: 'none' | 'first' | 'later';
}

const PROTO_ICMP = 1;
const PROTO_TCP = 6;
export const PROTO_UDP = 17;
const PROTO_ICMPV6 = 58;
const EXT_FRAGMENT = 44;
const EXT_AH = 51;
const EXTENSION_HEADERS = new Set([0, 43, 60, EXT_AH, EXT_FRAGMENT]);
const MAX_EXTENSION_HEADERS = 8;

export function parseTransport(frame: Buffer, ip: NetworkLayer): Transport {
  if (ip.version === 4) {
    if (ip.fragmentOffset !== 0) return { l4: { kind: 'fragment' }, protocol: ip.protocol, fragment: 'later' };
    const fragment = ip.moreFragments ? 'first' : 'none';
    const l4 = parseUpperLayer(frame, { protocol: ip.protocol, offset: ip.payloadOffset, end: ip.payloadEnd, fragment, icmp: PROTO_ICMP });
    return { l4, protocol: ip.protocol, fragment };
  }
  const walk = walkExtensionHeaders(frame, ip.protocol, ip.payloadOffset, ip.payloadEnd);
  if ('l4' in walk) return walk;
  const l4 = parseUpperLayer(frame, { ...walk, end: ip.payloadEnd, icmp: PROTO_ICMPV6 });
  return { l4, protocol: walk.protocol, fragment: walk.fragment };
}

function walkExtensionHeaders(
  frame: Buffer,
  firstHeader: number,
  start: number,
  end: number,
): Transport | { protocol: number; offset: number; fragment: Transport['fragment'] } {
  let protocol = firstHeader;
  let offset = start;
  let fragment: Transport['fragment'] = 'none';
  const malformed = (error: CounterName): Transport => ({ l4: { kind: 'malformed', error }, protocol: firstHeader, fragment });
  for (let seen = 0; EXTENSION_HEADERS.has(protocol); seen++) {
    if (seen === MAX_EXTENSION_HEADERS) return malformed('err_ipv6_ext_limit');
    if (offset + 2 > end) return malformed('err_ipv6_ext_trunc');
    const length = extensionLength(protocol, frame[offset + 1]);
    if (offset + length > end) return malformed('err_ipv6_ext_trunc');
    const next = frame[offset];
    if (protocol === EXT_FRAGMENT) {
      const offsetAndFlags = frame.readUInt16BE(offset + 2);
      if (offsetAndFlags >> 3 !== 0) return { l4: { kind: 'fragment' }, protocol: next, fragment: 'later' };
      if (offsetAndFlags & 1) fragment = 'first';
    }
    protocol = next;
    offset += length;
  }
  return { protocol, offset, fragment };
}

function extensionLength(header: number, lengthField: number): number {
  if (header === EXT_FRAGMENT) return 8;
  if (header === EXT_AH) return (lengthField + 2) * 4;
  return (lengthField + 1) * 8;
}

interface UpperLayer {
  protocol: number;
  offset: number;
  end: number;
  fragment: Transport['fragment'];
  /** ICMP's protocol number in this IP version. */
  icmp: number;
}

function parseUpperLayer(frame: Buffer, { protocol, offset, end, fragment, icmp }: UpperLayer): L4 {
  const ports = (): L4 => ({ kind: 'ports', sport: frame.readUInt16BE(offset), dport: frame.readUInt16BE(offset + 2) });
  // A first fragment cut inside its TCP or UDP header still tells its ports.
  const cut = (error: CounterName): L4 => (fragment === 'first' && offset + 4 <= end ? ports() : { kind: 'malformed', error });
  switch (protocol) {
    case PROTO_TCP: {
      if (offset + 20 > end) return cut('err_tcp_trunc');
      const dataOffset = frame[offset + 12] >> 4;
      if (dataOffset < 5 || offset + dataOffset * 4 > end) return cut('err_tcp_bad_doff');
      return {
        kind: 'tcp',
        flags: frame[offset + 13],
        sport: frame.readUInt16BE(offset),
        dport: frame.readUInt16BE(offset + 2),
        seq: frame.readUInt32BE(offset + 4),
        ack: frame.readUInt32BE(offset + 8),
      };
    }
    case PROTO_UDP:
      if (offset + 8 > end) return cut('err_udp_trunc');
      return { kind: 'udp', sport: frame.readUInt16BE(offset), dport: frame.readUInt16BE(offset + 2) };
  }
  if (protocol !== icmp) return { kind: 'other' };
  return offset + 4 > end ? { kind: 'malformed', error: 'err_icmp_trunc' } : { kind: 'icmp' };
}
