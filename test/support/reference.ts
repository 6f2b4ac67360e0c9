/**
 * Reference model of the XDP program, written from bpf/README.md ("What happens to a packet")
 * and bpf/xdp_ids.h alone, never from the C code, so that differential tests comparing it with
 * the kernel (BPF_PROG_TEST_RUN) catch misreadings on either side.
 *
 * Scope: the insert throttle is unlimited (insert_rate 0), events are off (event_rate 0), no
 * destination limit is set, all packets fall into one window, and timestamps are not modelled.
 * Within that scope every counter the kernel keeps has an expected value here.
 *
 * Readings of the README where it leaves room (the simplest one each time):
 *  - PASS counts every XDP_PASS verdict, parse errors included: packets = pass + drop_blocked.
 *  - A third VLAN tag is recognised by the EtherType alone (no bytes needed) → ERR_VLAN_DEPTH.
 *  - A seventh extension header is recognised by its next-header value → ERR_IPV6_EXT_LIMIT,
 *    before its bytes are looked at.
 *  - Extension header errors are stage-6 parse errors: the source's `malformed` counts them.
 *  - "Every counted packet" sets a host bit: every packet counted in the source record,
 *    non-first fragments, malformed and other protocols included.
 *  - IPv4 destinations are keyed, folded and hashed in the IPv4-mapped form, like sources.
 *  - hash(dport) hashes the port number (as read big-endian from the header).
 *  - IPv4 and IPv4-mapped sources are looked up in the IPv4 tries, other sources in the IPv6
 *    ones; an IPv4-mapped CIDR of length 96 or more is an IPv4 prefix (as user space loads it).
 *  - Only the longest matching block prefix counts; an expired one lets the packet pass even if
 *    a shorter live one also matches. The longest matching allow prefix gets the hit.
 *  - Any order of extension headers is followed (hop-by-hop need not come first), and an IPv6
 *    payload length of 0 (jumbogram) is taken literally: no transport bytes.
 *  - 32-bit counters are not wrapped (tests never send 2^32 packets).
 */
import { ipBytes } from './packets';
import type { KernelConfig } from '../../sensor/kernel/records';

/** enum ids_counter, in order, lower case and without the IDS_CNT_ prefix. */
export const COUNTER_NAMES = [
  'packets',
  'bytes',
  'pass',
  'drop_blocked',
  'allowlisted',
  'block_expired',
  'drop_dst_limit',
  'ipv4',
  'ipv6',
  'non_ip',
  'fragments',
  'new_sources',
  'untracked',
  'events',
  'events_limited',
  'ringbuf_full',
  'err_eth_trunc',
  'err_vlan_trunc',
  'err_vlan_depth',
  'err_ip_version',
  'err_ipv4_trunc',
  'err_ipv4_bad_ihl',
  'err_ipv4_bad_len',
  'err_ipv6_trunc',
  'err_ipv6_bad_len',
  'err_ipv6_ext_trunc',
  'err_ipv6_ext_limit',
  'err_tcp_trunc',
  'err_tcp_bad_doff',
  'err_udp_trunc',
  'err_icmp_trunc',
] as const;

export type CounterName = (typeof COUNTER_NAMES)[number];

export const IDS_CFG_BLOCKS = 0x1;

/** struct ids_config in camelCase: what user space configures, and the flags it derives. */
export type IdsConfig = KernelConfig & { flags: number };

export interface BlockEntry {
  cidr: string;
  /** The entry's expires_ns lies in the past. */
  expired?: boolean;
}

/**
 * `flags` defaults to what user space writes: IDS_CFG_BLOCKS when `blocks` is non-empty.
 * CIDRs are loaded the way sensor/addresses.ts loads them into the tries: IPv4-mapped prefixes
 * of length 96 or more go to the IPv4 trie.
 */
export interface ReferenceConfig extends Partial<IdsConfig> {
  blocks?: BlockEntry[];
  allows?: string[];
}

/** struct ids_src_stats counters plus the window slot's sketch counts. */
export interface SrcExpected {
  packets: bigint;
  bytes: bigint;
  syn: number;
  synack: number;
  ack: number;
  rst: number;
  fin: number;
  null_scan: number;
  fin_only: number;
  xmas: number;
  synfin: number;
  udp: number;
  icmp: number;
  fragments: number;
  malformed: number;
  port_bits: number;
  host_bits: number;
  syn_window: number;
}

/** struct ids_dst_stats counters plus the window slot's src_bits. */
export interface DstExpected {
  syn: bigint;
  udp: bigint;
  icmp: bigint;
  bytes: bigint;
  src_bits: number;
}

export type Verdict = 'pass' | 'drop';

// ------------------------------------------------------------------------------ sketches

const HASH_M1 = 0x85ebca6b;
const HASH_M2 = 0xc2b2ae35;

export function sketchHash(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), HASH_M1);
  h = Math.imul(h ^ (h >>> 13), HASH_M2);
  return (h ^ (h >>> 16)) >>> 0;
}

/** XOR of the address's four 32-bit words as an x86 load sees them (little-endian). */
export function foldAddress(addr: Buffer): number {
  return (addr.readUInt32LE(0) ^ addr.readUInt32LE(4) ^ addr.readUInt32LE(8) ^ addr.readUInt32LE(12)) >>> 0;
}

/** Bit in the 256-bit per-source port sketch. */
export function portBit(dport: number): number {
  return sketchHash(dport) >>> 24;
}

/** Bit in the 128-bit per-source host sketch; `dst` is 16 bytes (IPv4-mapped for IPv4). */
export function hostBit(dst: Buffer): number {
  return sketchHash(foldAddress(dst)) >>> 25;
}

/** Bit in the 512-bit per-destination source sketch; `src` is 16 bytes. */
export function sourceBit(src: Buffer): number {
  return sketchHash(foldAddress(src)) >>> 23;
}

// ------------------------------------------------------------------------------ addresses

const IPV4_MAPPED_PREFIX = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function toMapped(addr: Buffer): Buffer {
  return addr.length === 4 ? Buffer.concat([IPV4_MAPPED_PREFIX, addr]) : Buffer.from(addr);
}

function isIpv4Mapped(addr: Buffer): boolean {
  return addr.subarray(0, 12).equals(IPV4_MAPPED_PREFIX);
}

/** Map key of an address as the kernel stores it: 16 bytes, IPv4 in the IPv4-mapped form. */
export function addrKey(ip: string): string {
  return toMapped(ipBytes(ip)).toString('hex');
}

interface Prefix {
  /** Normalized '<hex address>/<length>', the identity of a trie entry. */
  key: string;
  addr: Buffer;
  length: number;
}

function parsePrefix(cidr: string): Prefix {
  const [address, lengthText, ...rest] = cidr.split('/');
  const written = ipBytes(address);
  const maxLength = written.length * 8;
  const writtenLength = lengthText === undefined ? maxLength : Number(lengthText);
  const lengthValid = lengthText === undefined || (/^\d+$/.test(lengthText) && writtenLength <= maxLength);
  if (rest.length > 0 || !lengthValid) throw new Error(`not a CIDR: ${cidr}`);
  const mappedIpv4 = written.length === 16 && isIpv4Mapped(written) && writtenLength >= 96;
  const addr = mappedIpv4 ? written.subarray(12) : written;
  const length = mappedIpv4 ? writtenLength - 96 : writtenLength;
  const masked = maskTo(addr, length);
  return { key: `${masked.toString('hex')}/${length}`, addr: masked, length };
}

function maskTo(addr: Buffer, length: number): Buffer {
  const masked = Buffer.from(addr);
  for (let bit = length; bit < addr.length * 8; bit++) masked[bit >> 3] &= ~(0x80 >> (bit & 7));
  return masked;
}

/** Tries are per family; the key lengths keep IPv4 and IPv6 entries apart. */
function prefixMatches(prefix: Prefix, addr: Buffer): boolean {
  return prefix.addr.length === addr.length && maskTo(addr, prefix.length).equals(prefix.addr);
}

function longestMatch<T extends Prefix>(entries: Iterable<T>, addr: Buffer): T | undefined {
  let best: T | undefined;
  for (const entry of entries) {
    if (prefixMatches(entry, addr) && (!best || entry.length > best.length)) best = entry;
  }
  return best;
}

// ------------------------------------------------------------------------------ parsing

interface Failure {
  error: CounterName;
}

function fail(error: CounterName): Failure {
  return { error };
}

function failed<T extends object>(result: T | Failure): result is Failure {
  return 'error' in result;
}

const ETH_HEADER = 14;
const VLAN_TAG = 4;
const MAX_VLAN_TAGS = 2;
const VLAN_TPIDS = new Set([0x8100, 0x88a8]);
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;

interface LinkLayer {
  etherType: number;
  networkOffset: number;
}

function parseLink(frame: Buffer): LinkLayer | Failure {
  if (frame.length < ETH_HEADER) return fail('err_eth_trunc');
  let etherType = frame.readUInt16BE(12);
  let offset = ETH_HEADER;
  for (let tags = 0; VLAN_TPIDS.has(etherType); tags++) {
    if (tags === MAX_VLAN_TAGS) return fail('err_vlan_depth');
    if (offset + VLAN_TAG > frame.length) return fail('err_vlan_trunc');
    etherType = frame.readUInt16BE(offset + 2);
    offset += VLAN_TAG;
  }
  return { etherType, networkOffset: offset };
}

interface NetworkLayer {
  version: 4 | 6;
  /** 16 bytes, IPv4 in the IPv4-mapped form. */
  src: Buffer;
  dst: Buffer;
  /** IPv4 protocol or the IPv6 header's next header. */
  protocol: number;
  /** Non-zero for IPv4 non-first fragments; IPv6 fragments are found among the extensions. */
  fragmentOffset: number;
  payloadOffset: number;
  /** The lesser of the frame end and the IP payload end. */
  payloadEnd: number;
}

function parseIpv4(frame: Buffer, offset: number): NetworkLayer | Failure {
  if (frame.length - offset < 20) return fail('err_ipv4_trunc');
  if (frame[offset] >> 4 !== 4) return fail('err_ip_version');
  const headerLength = (frame[offset] & 0x0f) * 4;
  if (headerLength < 20) return fail('err_ipv4_bad_ihl');
  if (offset + headerLength > frame.length) return fail('err_ipv4_trunc');
  const totalLength = frame.readUInt16BE(offset + 2);
  if (totalLength < headerLength || offset + totalLength > frame.length) return fail('err_ipv4_bad_len');
  return {
    version: 4,
    src: toMapped(frame.subarray(offset + 12, offset + 16)),
    dst: toMapped(frame.subarray(offset + 16, offset + 20)),
    protocol: frame[offset + 9],
    fragmentOffset: frame.readUInt16BE(offset + 6) & 0x1fff,
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
    protocol: frame[offset + 6],
    fragmentOffset: 0,
    payloadOffset: offset + 40,
    payloadEnd: Math.min(frame.length, payloadEnd),
  };
}

type Transport =
  | { kind: 'tcp'; flags: number; dport: number }
  | { kind: 'udp'; dport: number }
  | { kind: 'icmp' }
  | { kind: 'fragment' }
  | { kind: 'other' }
  | { kind: 'malformed'; error: CounterName };

const PROTO_ICMP = 1;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_ICMPV6 = 58;
const EXT_FRAGMENT = 44;
const EXT_AH = 51;
const EXTENSION_HEADERS = new Set([0, 43, 60, EXT_AH, EXT_FRAGMENT]);
const MAX_EXTENSION_HEADERS = 6;

function parseTransport(frame: Buffer, ip: NetworkLayer): Transport {
  if (ip.version === 4) {
    if (ip.fragmentOffset !== 0) return { kind: 'fragment' };
    return parseUpperLayer(frame, ip.protocol, ip.payloadOffset, ip.payloadEnd, PROTO_ICMP);
  }
  const upper = skipExtensionHeaders(frame, ip.protocol, ip.payloadOffset, ip.payloadEnd);
  if ('kind' in upper) return upper;
  return parseUpperLayer(frame, upper.protocol, upper.offset, ip.payloadEnd, PROTO_ICMPV6);
}

function skipExtensionHeaders(
  frame: Buffer,
  firstHeader: number,
  start: number,
  end: number,
): Transport | { protocol: number; offset: number } {
  let protocol = firstHeader;
  let offset = start;
  for (let seen = 0; EXTENSION_HEADERS.has(protocol); seen++) {
    if (seen === MAX_EXTENSION_HEADERS) return { kind: 'malformed', error: 'err_ipv6_ext_limit' };
    if (offset + 2 > end) return { kind: 'malformed', error: 'err_ipv6_ext_trunc' };
    const length = extensionLength(protocol, frame[offset + 1]);
    if (offset + length > end) return { kind: 'malformed', error: 'err_ipv6_ext_trunc' };
    if (protocol === EXT_FRAGMENT && frame.readUInt16BE(offset + 2) >> 3 !== 0) return { kind: 'fragment' };
    protocol = frame[offset];
    offset += length;
  }
  return { protocol, offset };
}

function extensionLength(header: number, lengthField: number): number {
  if (header === EXT_FRAGMENT) return 8;
  if (header === EXT_AH) return (lengthField + 2) * 4;
  return (lengthField + 1) * 8;
}

function parseUpperLayer(
  frame: Buffer,
  protocol: number,
  offset: number,
  end: number,
  icmpProtocol: number,
): Transport {
  switch (protocol) {
    case PROTO_TCP:
      return parseTcp(frame, offset, end);
    case PROTO_UDP:
      if (offset + 8 > end) return { kind: 'malformed', error: 'err_udp_trunc' };
      return { kind: 'udp', dport: frame.readUInt16BE(offset + 2) };
    case icmpProtocol:
      if (offset + 4 > end) return { kind: 'malformed', error: 'err_icmp_trunc' };
      return { kind: 'icmp' };
    default:
      return { kind: 'other' };
  }
}

function parseTcp(frame: Buffer, offset: number, end: number): Transport {
  if (offset + 20 > end) return { kind: 'malformed', error: 'err_tcp_trunc' };
  const dataOffset = frame[offset + 12] >> 4;
  if (dataOffset < 5 || offset + dataOffset * 4 > end) {
    return { kind: 'malformed', error: 'err_tcp_bad_doff' };
  }
  return { kind: 'tcp', flags: frame[offset + 13], dport: frame.readUInt16BE(offset + 2) };
}

// ------------------------------------------------------------------------------ TCP classes

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;
const URG = 0x20;

type TcpClass = 'syn' | 'synack' | 'ack' | 'rst' | 'fin' | 'null_scan' | 'fin_only' | 'xmas' | 'synfin';

/** The classes of xdp_ids.h; ECE and CWR never matter. */
function tcpClasses(flags: number): TcpClass[] {
  const f = flags & 0x3f;
  const handshake = f & (SYN | ACK | RST | FIN);
  const classes: Array<[TcpClass, boolean]> = [
    ['syn', handshake === SYN],
    ['synack', handshake === (SYN | ACK)],
    ['ack', handshake === ACK],
    ['rst', (f & RST) !== 0],
    ['fin', (f & (SYN | FIN)) === FIN],
    ['null_scan', f === 0],
    ['fin_only', f === FIN],
    ['xmas', f === (FIN | PSH | URG)],
    ['synfin', (f & (SYN | FIN)) === (SYN | FIN)],
  ];
  return classes.filter(([, member]) => member).map(([name]) => name);
}

function isSynClass(transport: Transport): boolean {
  return transport.kind === 'tcp' && tcpClasses(transport.flags).includes('syn');
}

// ------------------------------------------------------------------------------ the model

interface SourceRecord {
  counters: Omit<SrcExpected, 'port_bits' | 'host_bits'>;
  portBits: Set<number>;
  hostBits: Set<number>;
}

interface DestinationRecord {
  counters: Omit<DstExpected, 'src_bits'>;
  sourceBits: Set<number>;
}

interface BlockRecord extends Prefix {
  expired: boolean;
  drops: bigint;
}

interface AllowRecord extends Prefix {
  hits: bigint;
}

export class ReferenceModel {
  private readonly counters = Object.fromEntries(COUNTER_NAMES.map((name) => [name, 0n])) as Record<
    CounterName,
    bigint
  >;
  private readonly sourceRecords = new Map<string, SourceRecord>();
  private readonly destinationRecords = new Map<string, DestinationRecord>();
  private readonly blockRecords = new Map<string, BlockRecord>();
  private readonly allowRecords = new Map<string, AllowRecord>();
  private readonly flags: number;

  constructor(config: ReferenceConfig = {}) {
    if ((config.insertRate ?? 0) !== 0) throw new Error('ReferenceModel: insert throttle not modelled');
    if ((config.eventRate ?? 0) !== 0) throw new Error('ReferenceModel: events not modelled');
    const blocks = config.blocks ?? [];
    this.flags = config.flags ?? (blocks.length > 0 ? IDS_CFG_BLOCKS : 0);
    // Like map updates: a later entry for the same prefix replaces the earlier one.
    for (const entry of blocks) {
      const prefix = parsePrefix(entry.cidr);
      this.blockRecords.set(prefix.key, { ...prefix, expired: entry.expired ?? false, drops: 0n });
    }
    for (const cidr of config.allows ?? []) {
      const prefix = parsePrefix(cidr);
      this.allowRecords.set(prefix.key, { ...prefix, hits: 0n });
    }
  }

  process(frame: Buffer): Verdict {
    this.count('packets');
    this.count('bytes', BigInt(frame.length));
    const ip = this.parseNetwork(frame);
    if (!ip) return this.pass();
    if (this.blocked(ip)) return 'drop';
    const source = this.source(ip.src);
    source.counters.packets += 1n;
    source.counters.bytes += BigInt(frame.length);
    const transport = parseTransport(frame, ip);
    this.countTransport(source, transport);
    this.setSketchBits(source, ip, transport);
    this.countDestination(ip, transport, frame.length);
    return this.pass();
  }

  globals(): Record<CounterName, bigint> {
    return { ...this.counters };
  }

  sources(): Map<string, SrcExpected> {
    const result = new Map<string, SrcExpected>();
    for (const [key, record] of this.sourceRecords) {
      const bits = { port_bits: record.portBits.size, host_bits: record.hostBits.size };
      result.set(key, { ...record.counters, ...bits });
    }
    return result;
  }

  destinations(): Map<string, DstExpected> {
    const result = new Map<string, DstExpected>();
    for (const [key, record] of this.destinationRecords) {
      result.set(key, { ...record.counters, src_bits: record.sourceBits.size });
    }
    return result;
  }

  blockDrops(cidr: string): bigint {
    return this.listEntry(this.blockRecords, cidr).drops;
  }

  allowHits(cidr: string): bigint {
    return this.listEntry(this.allowRecords, cidr).hits;
  }

  private listEntry<T>(records: Map<string, T>, cidr: string): T {
    const record = records.get(parsePrefix(cidr).key);
    if (!record) throw new Error(`ReferenceModel: ${cidr} is not in the list`);
    return record;
  }

  private count(name: CounterName, amount = 1n): void {
    this.counters[name] += amount;
  }

  private pass(): Verdict {
    this.count('pass');
    return 'pass';
  }

  /** Steps 2-3: undefined when the packet is passed without reaching the source record. */
  private parseNetwork(frame: Buffer): NetworkLayer | undefined {
    const link = parseLink(frame);
    if (failed(link)) return this.countError(link);
    let ip: NetworkLayer | Failure;
    if (link.etherType === ETHERTYPE_IPV4) ip = parseIpv4(frame, link.networkOffset);
    else if (link.etherType === ETHERTYPE_IPV6) ip = parseIpv6(frame, link.networkOffset);
    else return this.countError(fail('non_ip'));
    if (failed(ip)) return this.countError(ip);
    this.count(ip.version === 4 ? 'ipv4' : 'ipv6');
    return ip;
  }

  private countError(failure: Failure): undefined {
    this.count(failure.error);
    return undefined;
  }

  /** Step 4. IPv4 and IPv4-mapped sources are looked up in the IPv4 tries. */
  private blocked(ip: NetworkLayer): boolean {
    if ((this.flags & IDS_CFG_BLOCKS) === 0) return false;
    const addr = isIpv4Mapped(ip.src) ? ip.src.subarray(12) : ip.src;
    const block = longestMatch(this.blockRecords.values(), addr);
    if (!block) return false;
    if (block.expired) {
      this.count('block_expired');
      return false;
    }
    const allow = longestMatch(this.allowRecords.values(), addr);
    if (allow) {
      allow.hits += 1n;
      this.count('allowlisted');
      return false;
    }
    block.drops += 1n;
    this.count('drop_blocked');
    return true;
  }

  /** Step 5, with an unlimited insert throttle: every new source is inserted. */
  private source(src: Buffer): SourceRecord {
    const key = src.toString('hex');
    let record = this.sourceRecords.get(key);
    if (!record) {
      record = { counters: emptySourceCounters(), portBits: new Set(), hostBits: new Set() };
      this.sourceRecords.set(key, record);
      this.count('new_sources');
    }
    return record;
  }

  /** Step 6. */
  private countTransport(source: SourceRecord, transport: Transport): void {
    const counters = source.counters;
    switch (transport.kind) {
      case 'fragment':
        counters.fragments++;
        this.count('fragments');
        return;
      case 'malformed':
        counters.malformed++;
        this.count(transport.error);
        return;
      case 'tcp':
        for (const tcpClass of tcpClasses(transport.flags)) counters[tcpClass]++;
        return;
      case 'udp':
        counters.udp++;
        return;
      case 'icmp':
        counters.icmp++;
        return;
      case 'other':
        return;
    }
  }

  /** Step 7, all packets in one window. */
  private setSketchBits(source: SourceRecord, ip: NetworkLayer, transport: Transport): void {
    source.hostBits.add(hostBit(ip.dst));
    if (transport.kind === 'tcp' || transport.kind === 'udp') source.portBits.add(portBit(transport.dport));
    if (isSynClass(transport)) source.counters.syn_window++;
  }

  /** Step 8. */
  private countDestination(ip: NetworkLayer, transport: Transport, frameLength: number): void {
    const field = destinationCounter(transport);
    if (!field) return;
    const key = ip.dst.toString('hex');
    let record = this.destinationRecords.get(key);
    if (!record) {
      record = { counters: { syn: 0n, udp: 0n, icmp: 0n, bytes: 0n }, sourceBits: new Set() };
      this.destinationRecords.set(key, record);
    }
    record.counters[field] += 1n;
    record.counters.bytes += BigInt(frameLength);
    record.sourceBits.add(sourceBit(ip.src));
  }
}

function destinationCounter(transport: Transport): 'syn' | 'udp' | 'icmp' | undefined {
  if (isSynClass(transport)) return 'syn';
  if (transport.kind === 'udp' || transport.kind === 'icmp') return transport.kind;
  return undefined;
}

function emptySourceCounters(): SourceRecord['counters'] {
  return {
    packets: 0n,
    bytes: 0n,
    syn: 0,
    synack: 0,
    ack: 0,
    rst: 0,
    fin: 0,
    null_scan: 0,
    fin_only: 0,
    xmas: 0,
    synfin: 0,
    udp: 0,
    icmp: 0,
    fragments: 0,
    malformed: 0,
    syn_window: 0,
  };
}
