/**
 * Test packet builder: Ethernet frames as Buffers, described layer by layer from the outside in.
 *
 *   frame(ether(), vlan({ tci: 10 }), ipv4({ src: '198.18.0.1' }), tcp({ dport: 80, flags: 'S' }))
 *   tcp4({ src: '198.18.0.1', vlans: [{ tci: 10 }], dport: 80, flags: 'S' })   // the same, flat
 *
 * Every layer derives what it can from its neighbours (EtherType, IP protocol / next header,
 * lengths, checksums) unless a field is given explicitly, so bad packets are crafted by
 * overriding a derived field (ipv4({ ihl: 4 }), tcp({ dataOffset: 3 }),
 * ipv6({ payloadLength: 9000 })), by raw() bytes, or by editing the returned Buffer.
 *
 * Also here: a seeded PRNG, randomPacket() and mutate() for differential fuzzing, truncations().
 */

export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  IPV6: 0x86dd,
  PPPOE_SESSION: 0x8864,
  MPLS: 0x8847,
  MPLS_MULTICAST: 0x8848,
  LLDP: 0x88cc,
  LOCAL_EXPERIMENTAL: 0x88b5,
} as const;

export const IpProto = {
  HOPOPTS: 0,
  ICMP: 1,
  IPIP: 4,
  TCP: 6,
  UDP: 17,
  IPV6: 41,
  ROUTING: 43,
  FRAGMENT: 44,
  GRE: 47,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NONE: 59,
  DSTOPTS: 60,
  SCTP: 132,
} as const;

/** The PPP protocol field of a PPPoE session (RFC 1661 numbers). */
export const PppProtocol = {
  IPV4: 0x0021,
  IPV6: 0x0057,
  LCP: 0xc021,
} as const;

/** Ethernet frames shorter than this (without FCS) are padded by the sender. */
export const ETH_MIN_FRAME = 60;

// ------------------------------------------------------------------------------ addresses

export function ipv4Bytes(ip: string): Buffer {
  const parts = ip.split('.');
  const valid = parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
  if (!valid) throw new Error(`not an IPv4 address: ${ip}`);
  return Buffer.from(parts.map(Number));
}

/** Accepts '::' compression and a trailing dotted quad (::ffff:198.18.0.1). */
export function ipv6Bytes(ip: string): Buffer {
  const halves = ip.split('::');
  if (halves.length > 2) throw new Error(`not an IPv6 address: ${ip}`);
  const head = ipv6Groups(halves[0], ip);
  const tail = halves.length === 2 ? ipv6Groups(halves[1], ip) : [];
  const missing = 8 - head.length - tail.length;
  const compressed = halves.length === 2;
  if (compressed ? missing < 1 : missing !== 0) throw new Error(`not an IPv6 address: ${ip}`);
  if (compressed && halves[0].includes('.')) throw new Error(`not an IPv6 address: ${ip}`);
  const bytes = Buffer.alloc(16);
  [...head, ...new Array<number>(missing).fill(0), ...tail].forEach((group, i) =>
    bytes.writeUInt16BE(group, i * 2),
  );
  return bytes;
}

function ipv6Groups(text: string, whole: string): number[] {
  if (text === '') return [];
  const pieces = text.split(':');
  const last = pieces[pieces.length - 1];
  const groups = last.includes('.') ? pieces.slice(0, -1) : pieces;
  const numbers = groups.map((group) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) throw new Error(`not an IPv6 address: ${whole}`);
    return parseInt(group, 16);
  });
  if (!last.includes('.')) return numbers;
  const v4 = ipv4Bytes(last);
  return [...numbers, v4.readUInt16BE(0), v4.readUInt16BE(2)];
}

/** 4 bytes for an IPv4 address, 16 for an IPv6 one. */
export function ipBytes(ip: string): Buffer {
  return ip.includes(':') ? ipv6Bytes(ip) : ipv4Bytes(ip);
}

export function macBytes(mac: string): Buffer {
  const parts = mac.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new Error(`not a MAC address: ${mac}`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

// ------------------------------------------------------------------------------ layers

export interface EtherLayer {
  kind: 'ether';
  dst: string;
  src: string;
  /** Derived from the next layer (VLAN TPID, IPv4, IPv6); required before anything else. */
  etherType?: number;
}

/** One 802.1Q/802.1ad tag: the TPID is written by the layer before, the TCI and the next
 * EtherType by this one. */
export interface VlanLayer {
  kind: 'vlan';
  tpid: number;
  tci: number;
  etherType?: number;
}

/** PPPoE session header (RFC 2516) and the PPP protocol field that follows it: 8 bytes. */
export interface PppoeLayer {
  kind: 'pppoe';
  sessionId: number;
  /** Derived from the next layer (IPv4, IPv6); required before anything else. */
  pppProtocol?: number;
  /** The PPPoE payload length (the PPP protocol field included); derived. */
  length?: number;
}

/** One MPLS label stack entry (RFC 3032). */
export interface MplsLayer {
  kind: 'mpls';
  label: number;
  trafficClass: number;
  ttl: number;
  /** Bottom of stack; derived: set unless another label follows. */
  bottom?: boolean;
}

export interface Ipv4Layer {
  kind: 'ipv4';
  src: string;
  dst: string;
  tos: number;
  id: number;
  df: boolean;
  mf: boolean;
  /** In 8-byte units; non-zero makes a non-first fragment. */
  fragOffset: number;
  ttl: number;
  /** Padded with End-of-Options to a multiple of 4 bytes, at most 40. */
  options: Buffer;
  version: number;
  protocol?: number;
  ihl?: number;
  totalLength?: number;
  checksum?: number;
}

export interface Ipv6Layer {
  kind: 'ipv6';
  src: string;
  dst: string;
  trafficClass: number;
  flowLabel: number;
  hopLimit: number;
  version: number;
  nextHeader?: number;
  payloadLength?: number;
}

/** Hop-by-hop or destination options: `options` are TLVs, padded with Pad1/PadN to 8n bytes. */
export interface OptionsHeaderLayer {
  kind: 'hop-by-hop' | 'dest-opts';
  options: Buffer;
  nextHeader?: number;
  hdrExtLen?: number;
}

export interface RoutingLayer {
  kind: 'routing';
  routingType: number;
  segmentsLeft: number;
  addresses: string[];
  nextHeader?: number;
  hdrExtLen?: number;
}

/** Authentication header; its length field counts 4-byte units minus 2, unlike the others. */
export interface AhLayer {
  kind: 'ah';
  spi: number;
  seq: number;
  icv: Buffer;
  nextHeader?: number;
  payloadLen?: number;
}

export interface Fragment6Layer {
  kind: 'frag6';
  /** In 8-byte units; non-zero makes a non-first fragment. */
  offset: number;
  more: boolean;
  id: number;
  nextHeader?: number;
}

export interface TcpLayer {
  kind: 'tcp';
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  /** The whole flags byte (byte 13), CWR and ECE included. */
  flags: number;
  window: number;
  urgent: number;
  /** Padded with End-of-Options to a multiple of 4 bytes, at most 40. */
  options: Buffer;
  dataOffset?: number;
  checksum?: number;
}

export interface UdpLayer {
  kind: 'udp';
  sport: number;
  dport: number;
  length?: number;
  checksum?: number;
}

/** ICMP and ICMPv6 share the layout; `id` and `seq` are the 4 rest-of-header bytes (echo). */
export interface IcmpLayer {
  kind: 'icmp' | 'icmpv6';
  type: number;
  code: number;
  id: number;
  seq: number;
  checksum?: number;
}

/** Bytes as they are; etherType/protocol tell the layer before what to announce for them. */
export interface RawLayer {
  kind: 'raw';
  bytes: Buffer;
  etherType?: number;
  protocol?: number;
}

export type Layer =
  | EtherLayer
  | VlanLayer
  | PppoeLayer
  | MplsLayer
  | Ipv4Layer
  | Ipv6Layer
  | OptionsHeaderLayer
  | RoutingLayer
  | AhLayer
  | Fragment6Layer
  | TcpLayer
  | UdpLayer
  | IcmpLayer
  | RawLayer;

type Fields<L extends Layer> = Partial<Omit<L, 'kind'>>;

export const DEFAULTS = {
  srcMac: '02:00:00:00:00:01',
  dstMac: '02:00:00:00:00:02',
  src4: '198.18.0.1',
  dst4: '198.19.0.1',
  src6: 'fd00::1',
  dst6: 'fd00::1:1',
} as const;

export function ether(o: Fields<EtherLayer> = {}): EtherLayer {
  return {
    kind: 'ether',
    dst: o.dst ?? DEFAULTS.dstMac,
    src: o.src ?? DEFAULTS.srcMac,
    etherType: o.etherType,
  };
}

export function vlan(o: Fields<VlanLayer> = {}): VlanLayer {
  return { kind: 'vlan', tpid: o.tpid ?? EtherType.VLAN, tci: o.tci ?? 0, etherType: o.etherType };
}

export function pppoe(o: Fields<PppoeLayer> = {}): PppoeLayer {
  return { kind: 'pppoe', sessionId: o.sessionId ?? 1, pppProtocol: o.pppProtocol, length: o.length };
}

export function mpls(o: Fields<MplsLayer> = {}): MplsLayer {
  return { kind: 'mpls', label: o.label ?? 16, trafficClass: o.trafficClass ?? 0, ttl: o.ttl ?? 64, bottom: o.bottom };
}

export function ipv4(o: Fields<Ipv4Layer> = {}): Ipv4Layer {
  return {
    kind: 'ipv4',
    src: o.src ?? DEFAULTS.src4,
    dst: o.dst ?? DEFAULTS.dst4,
    tos: o.tos ?? 0,
    id: o.id ?? 0,
    df: o.df ?? false,
    mf: o.mf ?? false,
    fragOffset: o.fragOffset ?? 0,
    ttl: o.ttl ?? 64,
    options: o.options ?? Buffer.alloc(0),
    version: o.version ?? 4,
    protocol: o.protocol,
    ihl: o.ihl,
    totalLength: o.totalLength,
    checksum: o.checksum,
  };
}

export function ipv6(o: Fields<Ipv6Layer> = {}): Ipv6Layer {
  return {
    kind: 'ipv6',
    src: o.src ?? DEFAULTS.src6,
    dst: o.dst ?? DEFAULTS.dst6,
    trafficClass: o.trafficClass ?? 0,
    flowLabel: o.flowLabel ?? 0,
    hopLimit: o.hopLimit ?? 64,
    version: o.version ?? 6,
    nextHeader: o.nextHeader,
    payloadLength: o.payloadLength,
  };
}

export function hopByHop(o: Fields<OptionsHeaderLayer> = {}): OptionsHeaderLayer {
  return optionsHeader('hop-by-hop', o);
}

export function destOpts(o: Fields<OptionsHeaderLayer> = {}): OptionsHeaderLayer {
  return optionsHeader('dest-opts', o);
}

function optionsHeader(kind: OptionsHeaderLayer['kind'], o: Fields<OptionsHeaderLayer>): OptionsHeaderLayer {
  return { kind, options: o.options ?? Buffer.alloc(0), nextHeader: o.nextHeader, hdrExtLen: o.hdrExtLen };
}

export function routing(o: Fields<RoutingLayer> = {}): RoutingLayer {
  return {
    kind: 'routing',
    routingType: o.routingType ?? 0,
    segmentsLeft: o.segmentsLeft ?? 0,
    addresses: o.addresses ?? [],
    nextHeader: o.nextHeader,
    hdrExtLen: o.hdrExtLen,
  };
}

export function ah(o: Fields<AhLayer> = {}): AhLayer {
  return {
    kind: 'ah',
    spi: o.spi ?? 0x100,
    seq: o.seq ?? 1,
    icv: o.icv ?? Buffer.alloc(12), // HMAC-96: 24-byte header, a multiple of 8 as IPv6 requires
    nextHeader: o.nextHeader,
    payloadLen: o.payloadLen,
  };
}

export function fragment6(o: Fields<Fragment6Layer> = {}): Fragment6Layer {
  return {
    kind: 'frag6',
    offset: o.offset ?? 0,
    more: o.more ?? false,
    id: o.id ?? 1,
    nextHeader: o.nextHeader,
  };
}

export type TcpOptions = Omit<Fields<TcpLayer>, 'flags'> & {
  /** Letters F S R P A U E C (ECE, CWR) or the byte itself; default 'S'. */
  flags?: string | number;
};

export function tcp(o: TcpOptions = {}): TcpLayer {
  return {
    kind: 'tcp',
    sport: o.sport ?? 40000,
    dport: o.dport ?? 80,
    seq: o.seq ?? 0,
    ack: o.ack ?? 0,
    flags: typeof o.flags === 'number' ? o.flags : tcpFlagBits(o.flags ?? 'S'),
    window: o.window ?? 64240,
    urgent: o.urgent ?? 0,
    options: o.options ?? Buffer.alloc(0),
    dataOffset: o.dataOffset,
    checksum: o.checksum,
  };
}

export type UdpOptions = Fields<UdpLayer>;

export function udp(o: UdpOptions = {}): UdpLayer {
  return {
    kind: 'udp',
    sport: o.sport ?? 40000,
    dport: o.dport ?? 53,
    length: o.length,
    checksum: o.checksum,
  };
}

export type IcmpOptions = Fields<IcmpLayer>;

/** ICMP for IPv4; defaults to an echo request. */
export function icmp(o: IcmpOptions = {}): IcmpLayer {
  return icmpLayer('icmp', 8, o);
}

/** ICMPv6; defaults to an echo request. */
export function icmpv6(o: IcmpOptions = {}): IcmpLayer {
  return icmpLayer('icmpv6', 128, o);
}

function icmpLayer(kind: IcmpLayer['kind'], echoRequest: number, o: IcmpOptions): IcmpLayer {
  return {
    kind,
    type: o.type ?? echoRequest,
    code: o.code ?? 0,
    id: o.id ?? 1,
    seq: o.seq ?? 1,
    checksum: o.checksum,
  };
}

export function raw(
  bytes: Buffer | string,
  announce: { etherType?: number; protocol?: number } = {},
): RawLayer {
  return { kind: 'raw', bytes: Buffer.from(bytes), ...announce };
}

const TCP_FLAG_LETTERS = 'FSRPAUEC';

/** 'SA' → 0x12; letters in any order, as tcpdump prints them (E = ECE, C = CWR). */
export function tcpFlagBits(letters: string): number {
  let bits = 0;
  for (const letter of letters) {
    const bit = TCP_FLAG_LETTERS.indexOf(letter);
    if (bit < 0) throw new Error(`unknown TCP flag '${letter}' in '${letters}'`);
    bits |= 1 << bit;
  }
  return bits;
}

// ------------------------------------------------------------------------------ encoding

/** Serializes the layers, innermost first, so each one knows the length of what it carries. */
export function frame(...layers: Layer[]): Buffer {
  let packet: Buffer = Buffer.alloc(0);
  for (let i = layers.length - 1; i >= 0; i--) {
    packet = encodeLayer(layers[i], packet, layers[i + 1], enclosingIp(layers, i));
  }
  return packet;
}

/** Trailing bytes outside the IP packet, as a NIC's minimum-size padding adds them. */
export function withPadding(packet: Buffer, bytes: number, fill = 0): Buffer {
  return Buffer.concat([packet, Buffer.alloc(bytes, fill)]);
}

type IpLayer = Ipv4Layer | Ipv6Layer;

function enclosingIp(layers: Layer[], index: number): IpLayer | undefined {
  for (let i = index - 1; i >= 0; i--) {
    const layer = layers[i];
    if (layer.kind === 'ipv4' || layer.kind === 'ipv6') return layer;
  }
  return undefined;
}

function encodeLayer(layer: Layer, inner: Buffer, next: Layer | undefined, ip: IpLayer | undefined): Buffer {
  switch (layer.kind) {
    case 'ether':
      return encodeEther(layer, inner, next);
    case 'vlan':
      return encodeVlan(layer, inner, next);
    case 'pppoe':
      return encodePppoe(layer, inner, next);
    case 'mpls':
      return encodeMpls(layer, inner, next);
    case 'ipv4':
      return encodeIpv4(layer, inner, next);
    case 'ipv6':
      return encodeIpv6(layer, inner, next);
    case 'hop-by-hop':
    case 'dest-opts':
      return encodeOptionsHeader(layer, inner, next);
    case 'routing':
      return encodeRouting(layer, inner, next);
    case 'ah':
      return encodeAh(layer, inner, next);
    case 'frag6':
      return encodeFragment6(layer, inner, next);
    case 'tcp':
      return encodeTcp(layer, inner, ip);
    case 'udp':
      return encodeUdp(layer, inner, ip);
    case 'icmp':
    case 'icmpv6':
      return encodeIcmp(layer, inner, ip);
    case 'raw':
      return Buffer.concat([layer.bytes, inner]);
  }
}

function etherTypeOf(next: Layer | undefined): number {
  switch (next?.kind) {
    case 'vlan':
      return next.tpid;
    case 'pppoe':
      return EtherType.PPPOE_SESSION;
    case 'mpls':
      return EtherType.MPLS;
    case 'ipv4':
      return EtherType.IPV4;
    case 'ipv6':
      return EtherType.IPV6;
  }
  if (next?.kind === 'raw' && next.etherType !== undefined) return next.etherType;
  throw new Error('ether/vlan: give etherType when the next layer is not VLAN, PPPoE, MPLS, IP or raw with etherType');
}

function pppProtocolOf(next: Layer | undefined): number {
  if (next?.kind === 'ipv4') return PppProtocol.IPV4;
  if (next?.kind === 'ipv6') return PppProtocol.IPV6;
  throw new Error('pppoe: give pppProtocol when the next layer is not IP');
}

const EXTENSION_NUMBERS = {
  'hop-by-hop': IpProto.HOPOPTS,
  'dest-opts': IpProto.DSTOPTS,
  routing: IpProto.ROUTING,
  ah: IpProto.AH,
  frag6: IpProto.FRAGMENT,
} as const;

function protocolOf(next: Layer | undefined): number {
  switch (next?.kind) {
    case undefined:
      return IpProto.NONE;
    case 'tcp':
      return IpProto.TCP;
    case 'udp':
      return IpProto.UDP;
    case 'icmp':
      return IpProto.ICMP;
    case 'icmpv6':
      return IpProto.ICMPV6;
    case 'ipv4':
      return IpProto.IPIP;
    case 'ipv6':
      return IpProto.IPV6;
    case 'raw':
      return next.protocol ?? IpProto.NONE;
    case 'hop-by-hop':
    case 'dest-opts':
    case 'routing':
    case 'ah':
    case 'frag6':
      return EXTENSION_NUMBERS[next.kind];
    case 'ether':
    case 'vlan':
    case 'pppoe':
    case 'mpls':
      throw new Error(`no IP protocol number for a ${next.kind} layer; use raw() with protocol`);
  }
}

function encodeEther(layer: EtherLayer, inner: Buffer, next: Layer | undefined): Buffer {
  const header = Buffer.alloc(14);
  macBytes(layer.dst).copy(header, 0);
  macBytes(layer.src).copy(header, 6);
  header.writeUInt16BE(layer.etherType ?? etherTypeOf(next), 12);
  return Buffer.concat([header, inner]);
}

function encodeVlan(layer: VlanLayer, inner: Buffer, next: Layer | undefined): Buffer {
  const tag = Buffer.alloc(4);
  tag.writeUInt16BE(layer.tci, 0);
  tag.writeUInt16BE(layer.etherType ?? etherTypeOf(next), 2);
  return Buffer.concat([tag, inner]);
}

function encodePppoe(layer: PppoeLayer, inner: Buffer, next: Layer | undefined): Buffer {
  const header = Buffer.alloc(8);
  header[0] = 0x11; // version 1, type 1
  header[1] = 0x00; // session data
  header.writeUInt16BE(layer.sessionId, 2);
  header.writeUInt16BE(layer.length ?? 2 + inner.length, 4);
  header.writeUInt16BE(layer.pppProtocol ?? pppProtocolOf(next), 6);
  return Buffer.concat([header, inner]);
}

function encodeMpls(layer: MplsLayer, inner: Buffer, next: Layer | undefined): Buffer {
  const bottom = layer.bottom ?? next?.kind !== 'mpls';
  const entry = Buffer.alloc(4);
  entry.writeUInt32BE((((layer.label & 0xfffff) << 12) | ((layer.trafficClass & 7) << 9) | (bottom ? 0x100 : 0) | (layer.ttl & 0xff)) >>> 0);
  return Buffer.concat([entry, inner]);
}

function encodeIpv4(layer: Ipv4Layer, inner: Buffer, next: Layer | undefined): Buffer {
  const options = padTo(layer.options, 4, 0);
  if (options.length > 40) throw new Error('IPv4 options longer than 40 bytes');
  const header = Buffer.alloc(20 + options.length);
  header[0] = ((layer.version & 0xf) << 4) | ((layer.ihl ?? header.length / 4) & 0xf);
  header[1] = layer.tos;
  header.writeUInt16BE(layer.totalLength ?? header.length + inner.length, 2);
  header.writeUInt16BE(layer.id, 4);
  header.writeUInt16BE((layer.df ? 0x4000 : 0) | (layer.mf ? 0x2000 : 0) | layer.fragOffset, 6);
  header[8] = layer.ttl;
  header[9] = layer.protocol ?? protocolOf(next);
  ipv4Bytes(layer.src).copy(header, 12);
  ipv4Bytes(layer.dst).copy(header, 16);
  options.copy(header, 20);
  header.writeUInt16BE(layer.checksum ?? internetChecksum(header), 10);
  return Buffer.concat([header, inner]);
}

function encodeIpv6(layer: Ipv6Layer, inner: Buffer, next: Layer | undefined): Buffer {
  const header = Buffer.alloc(40);
  const firstWord = ((layer.version & 0xf) << 28) | (layer.trafficClass << 20) | layer.flowLabel;
  header.writeUInt32BE(firstWord >>> 0, 0);
  header.writeUInt16BE(layer.payloadLength ?? inner.length, 4);
  header[6] = layer.nextHeader ?? protocolOf(next);
  header[7] = layer.hopLimit;
  ipv6Bytes(layer.src).copy(header, 8);
  ipv6Bytes(layer.dst).copy(header, 24);
  return Buffer.concat([header, inner]);
}

function encodeOptionsHeader(layer: OptionsHeaderLayer, inner: Buffer, next: Layer | undefined): Buffer {
  const body = Buffer.concat([layer.options, ipv6OptionPadding(layer.options.length)]);
  const header = Buffer.concat([Buffer.alloc(2), body]);
  header[0] = layer.nextHeader ?? protocolOf(next);
  header[1] = layer.hdrExtLen ?? header.length / 8 - 1;
  return Buffer.concat([header, inner]);
}

/** Pad1 or PadN (RFC 8200 4.2) filling the 2-byte header plus `used` option bytes to 8n. */
function ipv6OptionPadding(used: number): Buffer {
  const missing = (8 - ((2 + used) % 8)) % 8;
  if (missing <= 1) return Buffer.alloc(missing);
  const padN = Buffer.alloc(missing);
  padN[0] = 1;
  padN[1] = missing - 2;
  return padN;
}

function encodeRouting(layer: RoutingLayer, inner: Buffer, next: Layer | undefined): Buffer {
  const header = Buffer.alloc(8);
  header[0] = layer.nextHeader ?? protocolOf(next);
  header[1] = layer.hdrExtLen ?? layer.addresses.length * 2;
  header[2] = layer.routingType;
  header[3] = layer.segmentsLeft;
  return Buffer.concat([header, ...layer.addresses.map(ipv6Bytes), inner]);
}

function encodeAh(layer: AhLayer, inner: Buffer, next: Layer | undefined): Buffer {
  const header = Buffer.alloc(12);
  header[0] = layer.nextHeader ?? protocolOf(next);
  header[1] = layer.payloadLen ?? (header.length + layer.icv.length) / 4 - 2;
  header.writeUInt32BE(layer.spi, 4);
  header.writeUInt32BE(layer.seq, 8);
  return Buffer.concat([header, layer.icv, inner]);
}

function encodeFragment6(layer: Fragment6Layer, inner: Buffer, next: Layer | undefined): Buffer {
  const header = Buffer.alloc(8);
  header[0] = layer.nextHeader ?? protocolOf(next);
  header.writeUInt16BE(((layer.offset << 3) | (layer.more ? 1 : 0)) & 0xffff, 2);
  header.writeUInt32BE(layer.id, 4);
  return Buffer.concat([header, inner]);
}

function encodeTcp(layer: TcpLayer, inner: Buffer, ip: IpLayer | undefined): Buffer {
  const options = padTo(layer.options, 4, 0);
  if (options.length > 40) throw new Error('TCP options longer than 40 bytes');
  const header = Buffer.alloc(20 + options.length);
  header.writeUInt16BE(layer.sport, 0);
  header.writeUInt16BE(layer.dport, 2);
  header.writeUInt32BE(layer.seq, 4);
  header.writeUInt32BE(layer.ack, 8);
  header[12] = ((layer.dataOffset ?? header.length / 4) & 0xf) << 4;
  header[13] = layer.flags;
  header.writeUInt16BE(layer.window, 14);
  header.writeUInt16BE(layer.urgent, 18);
  options.copy(header, 20);
  const segment = Buffer.concat([header, inner]);
  segment.writeUInt16BE(layer.checksum ?? transportChecksum(segment, IpProto.TCP, ip), 16);
  return segment;
}

function encodeUdp(layer: UdpLayer, inner: Buffer, ip: IpLayer | undefined): Buffer {
  const datagram = Buffer.concat([Buffer.alloc(8), inner]);
  datagram.writeUInt16BE(layer.sport, 0);
  datagram.writeUInt16BE(layer.dport, 2);
  datagram.writeUInt16BE(layer.length ?? datagram.length, 4);
  // A computed zero is sent as all ones: zero means "no checksum" for UDP.
  const checksum = layer.checksum ?? (transportChecksum(datagram, IpProto.UDP, ip) || 0xffff);
  datagram.writeUInt16BE(checksum, 6);
  return datagram;
}

function encodeIcmp(layer: IcmpLayer, inner: Buffer, ip: IpLayer | undefined): Buffer {
  const message = Buffer.concat([Buffer.alloc(8), inner]);
  message[0] = layer.type;
  message[1] = layer.code;
  message.writeUInt16BE(layer.id, 4);
  message.writeUInt16BE(layer.seq, 6);
  // ICMPv6 covers a pseudo-header like TCP and UDP; ICMP for IPv4 covers the message alone.
  const computed =
    layer.kind === 'icmpv6' ? transportChecksum(message, IpProto.ICMPV6, ip) : internetChecksum(message);
  message.writeUInt16BE(layer.checksum ?? computed, 2);
  return message;
}

function padTo(bytes: Buffer, multiple: number, fill: number): Buffer {
  const missing = (multiple - (bytes.length % multiple)) % multiple;
  return Buffer.concat([bytes, Buffer.alloc(missing, fill)]);
}

/** RFC 1071 one's-complement sum of the buffers taken as one byte string. */
export function internetChecksum(...parts: Buffer[]): number {
  const data = padTo(Buffer.concat(parts), 2, 0);
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) sum += data.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Checksum with the IPv4 or IPv6 pseudo-header of the enclosing IP layer (none: bare sum). */
function transportChecksum(segment: Buffer, protocol: number, ip: IpLayer | undefined): number {
  if (!ip) return internetChecksum(segment);
  if (ip.kind === 'ipv4') {
    const pseudo = Buffer.alloc(12);
    ipv4Bytes(ip.src).copy(pseudo, 0);
    ipv4Bytes(ip.dst).copy(pseudo, 4);
    pseudo[9] = protocol;
    pseudo.writeUInt16BE(segment.length & 0xffff, 10);
    return internetChecksum(pseudo, segment);
  }
  const pseudo = Buffer.alloc(40);
  ipv6Bytes(ip.src).copy(pseudo, 0);
  ipv6Bytes(ip.dst).copy(pseudo, 16);
  pseudo.writeUInt32BE(segment.length, 32);
  pseudo[39] = protocol;
  return internetChecksum(pseudo, segment);
}

// ------------------------------------------------------------------------------ whole frames

export interface LinkOptions {
  eth?: Fields<EtherLayer>;
  /** Outermost first. */
  vlans?: Array<Fields<VlanLayer>>;
  /** A PPPoE session header after the tags. */
  pppoe?: Fields<PppoeLayer>;
  /** MPLS labels after the tags (and PPPoE), outermost first. */
  mpls?: Array<Fields<MplsLayer>>;
  /** Zero bytes after the IP packet, outside its total length. */
  padding?: number;
}

export interface Ipv4FrameOptions extends LinkOptions {
  src?: string;
  dst?: string;
  ip?: Omit<Fields<Ipv4Layer>, 'src' | 'dst'>;
  payload?: Buffer | string;
}

export interface Ipv6FrameOptions extends LinkOptions {
  src?: string;
  dst?: string;
  ip?: Omit<Fields<Ipv6Layer>, 'src' | 'dst'>;
  /** Extension headers between the IPv6 header and the transport header, in order. */
  ext?: Layer[];
  payload?: Buffer | string;
}

export function tcp4(o: Ipv4FrameOptions & TcpOptions = {}): Buffer {
  return ipv4Frame(o, tcp(o));
}

export function tcp6(o: Ipv6FrameOptions & TcpOptions = {}): Buffer {
  return ipv6Frame(o, tcp(o));
}

export function udp4(o: Ipv4FrameOptions & UdpOptions = {}): Buffer {
  return ipv4Frame(o, udp(o));
}

export function udp6(o: Ipv6FrameOptions & UdpOptions = {}): Buffer {
  return ipv6Frame(o, udp(o));
}

export function icmp4(o: Ipv4FrameOptions & IcmpOptions = {}): Buffer {
  return ipv4Frame(o, icmp(o));
}

export function icmp6(o: Ipv6FrameOptions & IcmpOptions = {}): Buffer {
  return ipv6Frame(o, icmpv6(o));
}

/** Ethernet, the VLAN tags, PPPoE, MPLS labels and padding of `o` around the given layers. */
export function linkFrame(o: LinkOptions, layers: Layer[]): Buffer {
  const tags = (o.vlans ?? []).map((tag) => vlan(tag));
  const session = o.pppoe ? [pppoe(o.pppoe)] : [];
  const labels = (o.mpls ?? []).map((label) => mpls(label));
  return withPadding(frame(ether(o.eth), ...tags, ...session, ...labels, ...layers), o.padding ?? 0);
}

function ipv4Frame(o: Ipv4FrameOptions, transport: Layer): Buffer {
  const ip = ipv4({ ...o.ip, src: o.src, dst: o.dst });
  return linkFrame(o, [ip, transport, ...payloadLayer(o.payload)]);
}

function ipv6Frame(o: Ipv6FrameOptions, transport: Layer): Buffer {
  const ip = ipv6({ ...o.ip, src: o.src, dst: o.dst });
  return linkFrame(o, [ip, ...(o.ext ?? []), transport, ...payloadLayer(o.payload)]);
}

function payloadLayer(payload: Buffer | string | undefined): Layer[] {
  return payload === undefined ? [] : [raw(payload)];
}

/** What `ip` carries when it carries `transport` (checksums included), and its protocol number. */
function ipPayload(ip: IpLayer, transport: Layer[]): { bytes: Buffer; protocol: number } {
  const packet = frame(ip, ...transport);
  if (ip.kind === 'ipv4') return { bytes: packet.subarray((packet[0] & 0x0f) * 4), protocol: packet[9] };
  return { bytes: packet.subarray(40), protocol: packet[6] };
}

export interface FragmentOptions {
  /** Payload bytes per fragment, a multiple of 8; the last fragment takes the rest. */
  bytesPerFragment: number;
  /** IPv6: extension headers before the fragment header. */
  ext?: Layer[];
  /** IPv6: the fragment header's identification (IPv4 fragments keep the header's id). */
  id?: number;
}

/**
 * The layers of each fragment of `ip` carrying `transport`, as `nmap -f` (8 bytes: the first
 * fragment ends inside a TCP header) or a router with a small MTU cuts them.
 */
export function fragmentLayers(ip: IpLayer, transport: Layer[], o: FragmentOptions): Layer[][] {
  const { bytesPerFragment, ext = [], id = 0x1d5 } = o;
  if (bytesPerFragment <= 0 || bytesPerFragment % 8 !== 0) throw new RangeError(`fragments carry a multiple of 8 bytes, not ${bytesPerFragment}`);
  const { bytes, protocol } = ipPayload(ip, transport);
  const fragments: Layer[][] = [];
  for (let start = 0; start === 0 || start < bytes.length; start += bytesPerFragment) {
    const more = start + bytesPerFragment < bytes.length;
    const chunk = raw(bytes.subarray(start, start + bytesPerFragment), { protocol });
    const offset = start / 8;
    fragments.push(ip.kind === 'ipv4'
      ? [{ ...ip, protocol, mf: more, fragOffset: offset }, chunk]
      : [ip, ...ext, fragment6({ offset, more, id }), chunk]);
  }
  return fragments;
}

/** The frames of an IPv4 packet cut into fragments (see fragmentLayers). */
export function fragments4(o: Ipv4FrameOptions & { bytesPerFragment: number }, transport: Layer): Buffer[] {
  const ip = ipv4({ id: 0x1d5, ...o.ip, src: o.src, dst: o.dst });
  return fragmentLayers(ip, [transport, ...payloadLayer(o.payload)], o).map((layers) => linkFrame(o, layers));
}

/** The frames of an IPv6 packet cut into fragments (see fragmentLayers). */
export function fragments6(o: Ipv6FrameOptions & FragmentOptions, transport: Layer): Buffer[] {
  const ip = ipv6({ ...o.ip, src: o.src, dst: o.dst });
  return fragmentLayers(ip, [transport, ...payloadLayer(o.payload)], o).map((layers) => linkFrame(o, layers));
}

/** Every proper prefix of the packet, lengths 0 .. length-1 (copies). */
export function truncations(packet: Buffer): Buffer[] {
  return Array.from({ length: packet.length }, (_, n) => Buffer.from(packet.subarray(0, n)));
}

// ------------------------------------------------------------------------------ crafted corpus

function allExtensionHeaders(): Layer[] {
  return [hopByHop(), routing({ addresses: ['fd00::99'] }), destOpts(), ah(), fragment6()];
}

/**
 * One frame of every protocol and header shape the XDP program distinguishes, each path of
 * bpf/README.md's order of checks included: TCP flag classes, VLAN depths, PPPoE and MPLS,
 * IPv4 options and fragments (first fragments cut inside their TCP or UDP header included),
 * every IPv6 extension header and the limit, replies and amplifier traffic, and the bad
 * headers of every error.
 */
export function craftedCorpus(): Buffer[] {
  return [...wellFormedFrames(), ...encapsulatedFrames(), ...fragmentFrames(), ...portClassFrames(), ...badLinkAndIpFrames(), ...badTransportFrames()];
}

function wellFormedFrames(): Buffer[] {
  const flagCases = [
    ...['S', 'SA', 'A', 'PA', 'UA', 'R', 'RA', 'SR', 'F', 'FA', 'FR'],
    ...['FPU', 'FPUA', '', 'C', 'SF', 'SFR', 'SEC', 'SAEC', 'AEC'],
  ];
  return [
    ...flagCases.map((flags) => tcp4({ flags, dport: 80 })),
    ...flagCases.map((flags) => tcp6({ flags, dport: 443 })),
    tcp4({ options: Buffer.from([2, 4, 5, 0xb4, 1, 1, 4, 2]) }), // MSS, NOP, NOP, SACK permitted
    tcp6({ src: '::ffff:198.18.0.7', flags: 'S' }),
    tcp6({ src: '::ffff:198.18.0.7', dst: '::ffff:198.19.0.7', flags: 'S' }),
    udp4({ dport: 9, payload: 'discard me' }),
    udp6({ dport: 123 }),
    icmp4(),
    icmp6(),
    linkFrame({}, [ipv4(), raw('gre', { protocol: IpProto.GRE })]),
    linkFrame({}, [ipv4(), raw('icmpv6 in ipv4', { protocol: IpProto.ICMPV6 })]),
    linkFrame({}, [ipv6(), raw('icmp in ipv6', { protocol: IpProto.ICMP })]),
    linkFrame({}, [ipv6(), raw('esp', { protocol: IpProto.ESP })]),
    linkFrame({}, [ipv6()]),
    linkFrame({ eth: { etherType: EtherType.ARP } }, [raw(Buffer.alloc(28))]),
    tcp4({ ip: { options: Buffer.alloc(4, 1) } }),
    tcp4({ ip: { options: Buffer.alloc(40, 1) } }),
    tcp4({ padding: 6 }),
    withPadding(udp4(), 18, 0xaa),
    ...allExtensionHeaders().map((header) => tcp6({ ext: [header] })),
    udp6({ ext: allExtensionHeaders() }),
    udp6({ ext: [...allExtensionHeaders(), hopByHop(), destOpts(), routing()] }), // eight: the most the parser follows
    udp6({ ext: [...allExtensionHeaders(), hopByHop(), destOpts(), routing(), destOpts()] }), // nine
    icmp6({ ext: [hopByHop({ options: Buffer.concat([Buffer.from([0x1e, 18]), Buffer.alloc(18)]) })] }),
  ];
}

/** VLAN stacks up to one tag too many, PPPoE sessions and MPLS label stacks, alone and combined. */
function encapsulatedFrames(): Buffer[] {
  const tags = (n: number): LinkOptions['vlans'] => Array.from({ length: n }, (_, i) => ({ tpid: i === 0 ? EtherType.QINQ : EtherType.VLAN, tci: i + 1 }));
  const labels = (n: number): LinkOptions['mpls'] => Array.from({ length: n }, (_, i) => ({ label: 100 + i }));
  return [
    ...[1, 2, 3, 4, 5].map((n) => tcp4({ vlans: tags(n) })),
    tcp6({ vlans: tags(4) }),
    frame(ether(), ...tags(3)!.map((t) => vlan(t)), vlan({ tci: 4, etherType: EtherType.VLAN })), // a fifth tag without its bytes
    tcp4({ pppoe: {} }),
    tcp6({ pppoe: { sessionId: 0xbeef } }),
    linkFrame({ pppoe: { pppProtocol: PppProtocol.LCP } }, [raw(Buffer.alloc(10))]),
    udp4({ vlans: tags(2), pppoe: {} }),
    ...[1, 2, 3, 4, 5].map((n) => udp4({ mpls: labels(n) })),
    tcp6({ mpls: labels(2) }),
    tcp4({ vlans: tags(1), mpls: labels(4) }),
    frame(ether({ etherType: EtherType.MPLS_MULTICAST }), mpls(), ipv4(), udp()),
    linkFrame({ mpls: labels(1) }, [raw(Buffer.from('\x00\x01 ethernet pseudowire'))]),
    linkFrame({ mpls: [{ bottom: false }, { bottom: false }] }, []), // labels end without a bottom
    linkFrame({ mpls: labels(1) }, []), // the payload's first byte missing
  ];
}

/** IPv4 and IPv6 fragments: first fragments cut inside or after their TCP/UDP header, later ones. */
function fragmentFrames(): Buffer[] {
  const syn = tcp({ sport: 40001, dport: 22, flags: 'S' });
  return [
    udp4({ ip: { mf: true, id: 7 }, payload: Buffer.alloc(16) }),
    udp4({ ip: { fragOffset: 2, id: 7 } }),
    tcp4({ ip: { fragOffset: 0x1fff, mf: true }, flags: 'S' }),
    ...fragments4({ bytesPerFragment: 8 }, syn), // nmap -f: ports and sequence number, then the rest
    ...fragments4({ bytesPerFragment: 16 }, syn),
    ...fragments4({ bytesPerFragment: 8 }, udp({ sport: 53, dport: 40000 })),
    ...fragments4({ bytesPerFragment: 8, payload: Buffer.alloc(100) }, udp({ sport: 123, dport: 40000 })),
    ...fragments6({ bytesPerFragment: 8 }, tcp({ dport: 443, flags: 'S' })),
    ...fragments6({ bytesPerFragment: 16, ext: [hopByHop()] }, udp({ sport: 53, dport: 50000 })),
    linkFrame({}, [ipv4({ mf: true, protocol: IpProto.TCP }), raw(Buffer.from([0x9c, 0x41]))]), // not even the ports
    linkFrame({}, [ipv4({ mf: true, protocol: IpProto.ICMP }), raw(Buffer.from([8, 0]))]), // ICMP gets no such leniency
    udp6({ ext: [fragment6({ more: true }), fragment6({ offset: 4 })] }),
    udp6({ ext: [fragment6({ more: true }), hopByHop({ hdrExtLen: 9 })] }),
  ];
}

/** Replies (a service port answering an ephemeral one) and amplifier UDP, and the cases just beside them. */
function portClassFrames(): Buffer[] {
  return [
    tcp4({ sport: 443, dport: 50000, flags: 'A' }),
    tcp4({ sport: 443, dport: 50000, flags: 'SA' }),
    tcp4({ sport: 80, dport: 50000, flags: 'S' }), // a SYN is never a reply
    tcp4({ sport: 80, dport: 1023, flags: 'A' }), // below 1024
    tcp4({ sport: 80, dport: 8080, flags: 'A' }), // to a service port
    tcp4({ sport: 53, dport: 50000, flags: 'PA' }), // TCP from an amplifier port: a reply, not amplifier traffic
    tcp6({ sport: 8443, dport: 41000, flags: 'FA' }),
    udp4({ sport: 53, dport: 50000, payload: Buffer.alloc(400) }),
    udp4({ sport: 123, dport: 123 }),
    udp4({ sport: 11211, dport: 40000 }),
    udp6({ sport: 1900, dport: 50000 }),
    udp4({ sport: 40000, dport: 53 }),
  ];
}

function badLinkAndIpFrames(): Buffer[] {
  return [
    Buffer.alloc(13),
    frame(ether({ etherType: EtherType.VLAN }), raw(Buffer.alloc(3))),
    tcp4({ ip: { version: 6 } }),
    tcp6({ ip: { version: 4 } }),
    tcp4({ ip: { ihl: 4 } }),
    tcp4({ ip: { ihl: 0 } }),
    linkFrame({}, [ipv4({ ihl: 15 })]),
    tcp4({ ip: { totalLength: 19 } }),
    tcp4({ ip: { totalLength: 41 } }),
    tcp4({ ip: { totalLength: 2000 } }),
    tcp4({ pppoe: {}, ip: { totalLength: 2000 } }),
    tcp6({ ip: { payloadLength: 21 } }),
    linkFrame({}, [raw(Buffer.alloc(39, 0x60), { etherType: EtherType.IPV6 })]),
    linkFrame({}, [raw(Buffer.alloc(19, 0x45), { etherType: EtherType.IPV4 })]),
  ];
}

function badTransportFrames(): Buffer[] {
  return [
    tcp4({ dataOffset: 4 }),
    tcp4({ dataOffset: 0 }),
    tcp4({ dataOffset: 6 }),
    tcp4({ ip: { totalLength: 39 } }),
    tcp4({ ip: { totalLength: 39 }, padding: 20 }), // the frame has the bytes, the IP packet not
    tcp6({ ip: { payloadLength: 19 } }),
    udp4({ ip: { totalLength: 27 } }),
    udp6({ ip: { payloadLength: 7 } }),
    icmp4({ ip: { totalLength: 23 } }),
    icmp6({ ip: { payloadLength: 3 } }),
    udp6({ ext: [hopByHop({ hdrExtLen: 5 })] }),
    udp6({ ext: [ah({ payloadLen: 9 })] }),
    udp6({ ext: [hopByHop()], ip: { payloadLength: 1 } }),
    udp6({ ext: [fragment6()], ip: { payloadLength: 7 } }),
  ];
}

// ------------------------------------------------------------------------------ randomness

export interface Rng {
  /** Uniform 32-bit unsigned integer. */
  u32(): number;
  /** Uniform integer in [min, max], both included. */
  int(min: number, max: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
  bytes(count: number): Buffer;
}

/** mulberry32: small, fast, and the same sequence for the same seed on every platform. */
export function rng(seed: number): Rng {
  let state = seed >>> 0;
  const u32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const int = (min: number, max: number): number => min + Math.floor((u32() / 2 ** 32) * (max - min + 1));
  return {
    u32,
    int,
    chance: (probability) => u32() / 2 ** 32 < probability,
    pick: (items) => items[int(0, items.length - 1)],
    bytes: (count) => Buffer.from(Array.from({ length: count }, () => int(0, 255))),
  };
}

/*
 * Address pools: mostly a few dozen sources and destinations so that per-source counters and
 * sketches accumulate, plus rare random ones (kept rare so that map sizes are never the limit).
 */
function randomIpv4Source(random: Rng): string {
  if (random.chance(0.9)) return `198.18.0.${random.int(1, 32)}`;
  if (random.chance(0.7)) return `198.${random.int(18, 19)}.${random.int(0, 255)}.${random.int(0, 255)}`;
  return ipv4FromNumber(random.u32());
}

function randomIpv4Destination(random: Rng): string {
  if (random.chance(0.9)) return `198.19.0.${random.int(1, 32)}`;
  if (random.chance(0.7)) return `198.${random.int(18, 19)}.${random.int(0, 255)}.${random.int(0, 255)}`;
  return ipv4FromNumber(random.u32());
}

function randomIpv6Address(random: Rng, subnet: number): string {
  if (random.chance(0.9)) return `fd00:0:0:${subnet}::${random.int(1, 32).toString(16)}`;
  const groups = Array.from({ length: 7 }, () => random.int(0, 0xffff).toString(16));
  const first = random.chance(0.7) ? 'fd00' : random.pick(['2001', '2a00', 'fe80', 'ff02']);
  return [first, ...groups].join(':');
}

function randomIpv6Source(random: Rng): string {
  // IPv4-mapped sources share their records with the same IPv4 source.
  return random.chance(0.2) ? `::ffff:${randomIpv4Source(random)}` : randomIpv6Address(random, 1);
}

function ipv4FromNumber(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

const COMMON_PORTS = [22, 23, 25, 53, 80, 123, 443, 445, 3389, 8080] as const;

const COMMON_TCP_FLAGS = ['S', 'SA', 'A', 'PA', 'FA', 'R', 'RA', 'F', '', 'FPU', 'SF', 'SEC', 'SAEC'] as const;

/** Services and amplifiers answer from these (sensor/ports.ts), 37810 inside Linux's ephemeral range. */
const SERVER_PORTS = [22, 53, 80, 123, 443, 1900, 3306, 8080, 11211, 37810] as const;

function randomPort(random: Rng): number {
  return random.chance(0.5) ? random.pick(COMMON_PORTS) : random.int(0, 0xffff);
}

/** Mostly a client's ephemeral port; sometimes a server's, so that replies and amplifier traffic occur. */
function randomSourcePort(random: Rng): number {
  return random.chance(0.3) ? random.pick(SERVER_PORTS) : random.int(1024, 0xffff);
}

/** Up to one VLAN tag more than the parser takes; for IP, sometimes a PPPoE session or an MPLS stack of up to one label too many. */
function randomLink(random: Rng, ip: boolean): LinkOptions {
  const roll = random.int(0, 199);
  const tagCount = roll < 140 ? 0 : roll < 170 ? 1 : roll < 186 ? 2 : roll < 192 ? 3 : roll < 197 ? 4 : 5;
  const vlans = Array.from({ length: tagCount }, () => ({
    tpid: random.pick([EtherType.VLAN, EtherType.QINQ]),
    tci: random.int(0, 0xffff),
  }));
  const link: LinkOptions = { eth: { src: randomMac(random), dst: randomMac(random) }, vlans };
  const encapsulation = ip ? random.int(0, 99) : 99;
  if (encapsulation < 6) link.pppoe = { sessionId: random.int(0, 0xffff), ...(random.chance(0.1) ? { pppProtocol: PppProtocol.LCP } : {}) };
  else if (encapsulation < 12) link.mpls = Array.from({ length: random.int(1, 5) }, () => ({ label: random.int(0, 0xfffff), ttl: random.int(0, 255) }));
  return link;
}

function randomMac(random: Rng): string {
  const bytes = random.bytes(6);
  bytes[0] = (bytes[0] & 0xfe) | 0x02; // unicast, locally administered
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function randomTransport(random: Rng, version: 4 | 6): Layer[] {
  const payload = raw(random.bytes(random.chance(0.5) ? 0 : random.int(1, 64)));
  const roll = random.int(0, 99);
  if (roll < 45) {
    const flags = random.chance(0.5) ? tcpFlagBits(random.pick(COMMON_TCP_FLAGS)) : random.int(0, 255);
    const options = random.chance(0.3) ? Buffer.alloc(random.int(1, 10) * 4, 1) : Buffer.alloc(0); // NOPs
    const ports = { sport: randomSourcePort(random), dport: randomPort(random) };
    const numbers = { seq: random.u32(), ack: random.u32(), window: random.int(0, 0xffff) };
    return [tcp({ ...ports, ...numbers, flags, options }), payload];
  }
  if (roll < 75) return [udp({ sport: randomSourcePort(random), dport: randomPort(random) }), payload];
  if (roll < 90) {
    const echo = { id: random.int(0, 0xffff), seq: random.int(0, 0xffff) };
    return [version === 4 ? icmp(echo) : icmpv6(echo), payload];
  }
  const protocol = random.pick([IpProto.GRE, IpProto.ESP, IpProto.SCTP, IpProto.NONE]);
  return [raw(random.bytes(random.int(0, 64)), { protocol })];
}

/** One fragment of the packet (the first more often than not: it carries the ports). */
function randomFragment(random: Rng, ip: IpLayer, transport: Layer[], ext: Layer[] = []): Layer[] {
  const pieces = fragmentLayers(ip, transport, { bytesPerFragment: random.pick([8, 16, 24]), ext, id: random.u32() });
  return random.chance(0.6) ? pieces[0] : random.pick(pieces);
}

function randomIpv4Packet(random: Rng): Layer[] {
  const roll = random.int(0, 99);
  const nonFirstFragment = roll < 8;
  const firstFragment = roll >= 8 && roll < 13;
  const cut = roll >= 13 && roll < 18;
  const ip = ipv4({
    src: randomIpv4Source(random),
    dst: randomIpv4Destination(random),
    tos: random.int(0, 255),
    id: random.int(0, 0xffff),
    ttl: random.int(1, 255),
    df: !nonFirstFragment && !firstFragment && random.chance(0.5),
    mf: firstFragment || (nonFirstFragment && random.chance(0.5)),
    fragOffset: nonFirstFragment ? random.int(1, 0x1fff) : 0,
    options: random.chance(0.15) ? Buffer.alloc(random.int(1, 10) * 4, 1) : Buffer.alloc(0), // NOPs
  });
  return cut ? randomFragment(random, ip, randomTransport(random, 4)) : [ip, ...randomTransport(random, 4)];
}

function randomIpv6Packet(random: Rng): Layer[] {
  const ip = ipv6({
    src: randomIpv6Source(random),
    dst: randomIpv6Address(random, 2),
    trafficClass: random.int(0, 255),
    flowLabel: random.int(0, 0xfffff),
    hopLimit: random.int(1, 255),
  });
  const ext = randomExtensionChain(random);
  if (random.chance(0.05)) return randomFragment(random, ip, randomTransport(random, 6), ext.slice(0, 2));
  return [ip, ...ext, ...randomTransport(random, 6)];
}

/** Mostly none; sometimes up to and just past the parser's limit of eight. */
function randomExtensionChain(random: Rng): Layer[] {
  const roll = random.int(0, 99);
  const count = roll < 60 ? 0 : roll < 92 ? random.int(1, 3) : random.int(4, 9);
  return Array.from({ length: count }, () => randomExtension(random));
}

function randomExtension(random: Rng): Layer {
  switch (random.int(0, 4)) {
    case 0:
      return hopByHop({ options: experimentalOption(random) });
    case 1:
      return destOpts({ options: experimentalOption(random) });
    case 2:
      const addresses = Array.from({ length: random.int(0, 2) }, () => randomIpv6Address(random, 3));
      return routing({ addresses });
    case 3:
      return ah({ spi: random.u32(), seq: random.u32(), icv: random.bytes(random.pick([4, 12, 20])) });
    default:
      return fragment6({
        offset: random.chance(0.5) ? 0 : random.int(1, 0x1fff),
        more: random.chance(0.5),
        id: random.u32(),
      });
  }
}

/** An option of type 0x1e (RFC 4727 experiment; "skip if unknown") with random data. */
function experimentalOption(random: Rng): Buffer {
  const length = random.int(0, 20);
  return Buffer.concat([Buffer.from([0x1e, length]), random.bytes(length)]);
}

function randomNonIpLayers(random: Rng): Layer[] {
  const etherType = random.pick([EtherType.ARP, EtherType.LLDP, EtherType.LOCAL_EXPERIMENTAL]);
  return [raw(random.bytes(random.int(0, 46)), { etherType })];
}

/**
 * A well-formed frame of a random kind: IPv4 (options, fragments, packets cut into 8-24 byte
 * fragments), IPv6 (IPv4-mapped sources, extension header chains, fragments), TCP with any
 * flags byte, UDP, ICMP/ICMPv6, other protocols, non-IP; from clients' and servers' ports; 0-5
 * VLAN tags, PPPoE, MPLS stacks of 1-5 labels, and sometimes minimum-size or extra trailing
 * padding. "Well-formed" is the wire format's view: a fifth VLAN tag or MPLS label or a ninth
 * extension header are legal and deliberately included, although the XDP parser rejects them.
 */
export function randomPacket(random: Rng): Buffer {
  const roll = random.int(0, 99);
  const ip = roll < 96;
  const layers = roll < 50 ? randomIpv4Packet(random) : ip ? randomIpv6Packet(random) : randomNonIpLayers(random);
  const packet = linkFrame(randomLink(random, ip), layers);
  const padRoll = random.int(0, 99);
  if (padRoll < 25) return withPadding(packet, Math.max(0, ETH_MIN_FRAME - packet.length));
  if (padRoll < 35) return withPadding(packet, random.int(1, 32), random.int(0, 255));
  return packet;
}

/** Values that steer parsers into other paths: version nibbles, EtherTypes, protocols, lengths. */
const INTERESTING_BYTES = [
  0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x0f, 0x11, 0x10, 0x12, 0x29, 0x2b, 0x2c, 0x33, 0x3a,
  0x3b, 0x3c, 0x3f, 0x40, 0x44, 0x45, 0x4f, 0x50, 0x60, 0x7f, 0x80, 0x81, 0x86, 0x88, 0xa8, 0xdd,
  0xf0, 0xff,
] as const;

/** The first bytes hold the headers the XDP program reads (tags, PPPoE or MPLS, IPv6, extensions, TCP). */
const HEADER_AREA = 160;

/**
 * A changed copy of the packet: one to three of bit flips and byte changes within the header
 * area, truncation, or random bytes appended.
 */
export function mutate(packet: Buffer, random: Rng): Buffer {
  let result: Buffer = Buffer.from(packet);
  const count = random.int(1, 3);
  for (let i = 0; i < count; i++) result = mutateOnce(result, random);
  return result;
}

function mutateOnce(packet: Buffer, random: Rng): Buffer {
  const area = Math.min(packet.length, HEADER_AREA);
  const roll = area === 0 ? 99 : random.int(0, 99);
  if (roll < 35) {
    packet[random.int(0, area - 1)] ^= 1 << random.int(0, 7);
    return packet;
  }
  if (roll < 70) {
    const value = random.chance(0.7) ? random.pick(INTERESTING_BYTES) : random.int(0, 255);
    packet[random.int(0, area - 1)] = value;
    return packet;
  }
  if (roll < 90) return packet.subarray(0, random.int(0, packet.length - 1));
  return Buffer.concat([packet, random.bytes(random.int(1, 64))]);
}
