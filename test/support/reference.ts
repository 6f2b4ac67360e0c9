/**
 * Reference model of the XDP program (xdp_ids) and its TC egress program (ids_egress), written
 * from bpf/README.md ("What happens to a packet") and bpf/xdp_ids.h alone, never from the C
 * code, so that differential tests comparing it with the kernel (BPF_PROG_TEST_RUN) catch
 * misreadings on either side. Header parsing is in reference-parser.ts; the port classes are
 * sensor/ports.ts's table (data: what user space writes into ids_ports).
 *
 * Scope: the insert throttle is unlimited (insert_rate 0), events are off (event_rate 0), no
 * destination limit is set (IDS_CFG_DST_LIMITS never), all packets fall into one window and one
 * handshake refresh interval (IDS_VERIFY_REFRESH units, 34 s: a verified source is not checked
 * again), no LRU table fills up, and times are not modelled (verified_at only as set or not).
 * Within that scope every counter the kernel keeps has an expected value here.
 *
 * Readings of the README where it leaves room (the simplest one each time):
 *  - PASS counts every XDP_PASS verdict, parse errors included:
 *    packets = pass + drop_blocked + drop_unparsed.
 *  - A fifth VLAN tag is recognised by the EtherType alone (no bytes needed), a fifth MPLS label
 *    by the fourth label's bottom-of-stack bit being clear → ERR_ENCAP_DEPTH. A dropped
 *    ERR_ENCAP_DEPTH frame counts both ERR_ENCAP_DEPTH and DROP_UNPARSED, and not PASS.
 *  - A PPPoE session needs its 8 bytes whatever its PPP protocol; its length field is not read.
 *    An MPLS payload's first byte is needed only after the bottom label.
 *  - A ninth extension header is recognised by its next-header value → ERR_IPV6_EXT_LIMIT,
 *    before its bytes are looked at; any order of extension headers is followed, and an IPv6
 *    payload length of 0 (jumbogram) is taken literally: no transport bytes.
 *  - Extension header errors are step-5 parse errors: the source's `malformed` counts them.
 *  - A fragment header with offset 0 and M set makes a first fragment whatever follows (even a
 *    malformed chain); one with an offset makes a non-first fragment even after such a header.
 *  - "UDP → udp" at the destination is a parsed UDP header: a UDP first fragment of kind
 *    "ports" counts udp_amp (if amplifier) and fragments there, not udp.
 *  - Kind "ports" is "not a SYN": from a service port to an ephemeral one it is a reply.
 *  - "Every counted packet" sets a host bit and a protocol bit: every packet counted in the
 *    source record, non-first fragments, malformed and other protocols included.
 *  - IPv4 destinations are keyed, folded and hashed in the IPv4-mapped form, like sources;
 *    hash(dport) and hash(protocol) hash the numbers as read from the headers (big-endian).
 *  - IPv4 and IPv4-mapped addresses are looked up in the IPv4 tries (block, allow, protect), other
 *    ones in the IPv6 tries; an IPv4-mapped CIDR of length 96 or more is an IPv4 prefix (as user
 *    space loads it). The longest matching allow prefix gets the hit.
 *  - An expired /0 block entry ends the search (nothing is shorter).
 *  - Handshakes: only TCP packets with a whole TCP header are ACKs; the challenge's number and
 *    the acknowledgement number compare as unsigned 32-bit numbers. A mirror challenge's source
 *    is looked up in the protect tries directly.
 *  - ttl_mismatch is judged for every packet of a verified tracked source, the verifying packet
 *    (off by 0) included; the destination's handshakes counts only if its record exists.
 *  - Egress: parse errors and non-TCP packets end it silently; it counts no global but CHALLENGES.
 *  - 32-bit counters are not wrapped (tests never send 2^32 packets).
 */
import { portClassTable } from '../../sensor/ports';
import type { KernelConfig } from '../../sensor/kernel/records';
import { ipBytes } from './packets';
import {
  PROTO_UDP, failed, isIpv4Mapped, parseLink, parseNetwork, parseTransport, toMapped, type Failure, type L4, type NetworkLayer,
  type Transport,
} from './reference-parser';

/** enum ids_counter, in order, lower case and without the IDS_CNT_ prefix. */
export const COUNTER_NAMES = [
  'packets',
  'bytes',
  'pass',
  'drop_blocked',
  'allowlisted',
  'block_expired',
  'drop_dst_limit',
  'drop_unparsed',
  'ipv4',
  'ipv6',
  'non_ip',
  'fragments',
  'first_fragments',
  'not_protected',
  'challenges',
  'handshakes',
  'new_sources',
  'untracked',
  'events',
  'events_limited',
  'ringbuf_full',
  'err_eth_trunc',
  'err_vlan_trunc',
  'err_encap_depth',
  'err_pppoe_trunc',
  'err_mpls_trunc',
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

/** IDS_CFG_* of bpf/xdp_ids.h. */
export const IDS_CFG_BLOCKS = 0x1;
export const IDS_CFG_ALLOWS = 0x4;
export const IDS_CFG_PROTECT = 0x10;
export const IDS_CFG_DROP_UNPARSED = 0x20;

/** IDS_TTL_SLACK */
const TTL_SLACK = 2;

/** struct ids_config in camelCase: what user space configures, and the flags it derives. */
export type IdsConfig = KernelConfig & { flags: number };

export interface BlockEntry {
  cidr: string;
  /** The entry's expires_ns lies in the past. */
  expired?: boolean;
}

/**
 * `flags` defaults to what user space writes: IDS_CFG_BLOCKS, _ALLOWS and _PROTECT when those
 * lists are non-empty, IDS_CFG_DROP_UNPARSED with `dropUnparsed`. CIDRs are loaded the way
 * sensor/addresses.ts loads them into the tries.
 */
export interface ReferenceConfig extends Partial<IdsConfig> {
  blocks?: BlockEntry[];
  allows?: string[];
  protect?: string[];
  /** ids_ports: one enum ids_port_class byte per port; default sensor/ports.ts's table. */
  portClasses?: Uint8Array;
}

/** struct ids_src_stats counters, the handshake state, and the window slot's counts. */
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
  first_fragments: number;
  replies: number;
  handshakes: number;
  ttl_mismatch: number;
  /** verified_at is set. */
  verified: boolean;
  verified_ttl: number;
  port_bits: number;
  host_bits: number;
  proto_bits: number;
  syn_window: number;
}

/** struct ids_dst_stats counters plus the window slot's src_bits and amp_src_bits. */
export interface DstExpected {
  syn: bigint;
  udp: bigint;
  icmp: bigint;
  bytes: bigint;
  synack: bigint;
  udp_amp: bigint;
  udp_amp_bytes: bigint;
  fragments: bigint;
  fragment_bytes: bigint;
  handshakes: bigint;
  syn_out: bigint;
  src_bits: number;
  amp_src_bits: number;
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

/** Bit in the 32-bit per-source protocol sketch. */
export function protoBit(protocol: number): number {
  return sketchHash(protocol) >>> 27;
}

/** Bit in the 512-bit per-destination source sketch; `src` is 16 bytes. */
export function sourceBit(src: Buffer): number {
  return sketchHash(foldAddress(src)) >>> 23;
}

/** Bit in the 128-bit per-destination amplifier source sketch. */
export function ampSourceBit(src: Buffer): number {
  return sketchHash(foldAddress(src)) >>> 25;
}

// ------------------------------------------------------------------------------ prefixes

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
  const mappedIpv4 = isIpv4Mapped(written) && writtenLength >= 96;
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

/** The address as the tries see it: IPv4 and IPv4-mapped addresses in the IPv4 ones. */
function trieAddress(addr: Buffer): Buffer {
  return isIpv4Mapped(addr) ? addr.subarray(12) : addr;
}

/** The longest entry matching `addr` no longer than `maxLength`; tries are per family (key lengths). */
function longestMatch<T extends Prefix>(entries: Iterable<T>, addr: Buffer, maxLength = Infinity): T | undefined {
  let best: T | undefined;
  for (const entry of entries) {
    const matches = entry.addr.length === addr.length && entry.length <= maxLength && maskTo(addr, entry.length).equals(entry.addr);
    if (matches && (!best || entry.length > best.length)) best = entry;
  }
  return best;
}

// ------------------------------------------------------------------------------ classes

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;
const URG = 0x20;
const SARF = SYN | ACK | RST | FIN;

type TcpClass = 'syn' | 'synack' | 'ack' | 'rst' | 'fin' | 'null_scan' | 'fin_only' | 'xmas' | 'synfin';

/** The classes of xdp_ids.h; ECE and CWR never matter. */
function tcpClasses(flags: number): TcpClass[] {
  const f = flags & 0x3f;
  const handshake = f & SARF;
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

type TcpL4 = Extract<L4, { kind: 'tcp' }>;

function isSyn(l4: L4): l4 is TcpL4 {
  return l4.kind === 'tcp' && (l4.flags & SARF) === SYN;
}

function isSynAck(l4: L4): l4 is TcpL4 {
  return l4.kind === 'tcp' && (l4.flags & SARF) === (SYN | ACK);
}

/** enum ids_port_class */
const PORT_EPHEMERAL = 0;
const PORT_AMPLIFIER = 2;

/** Step 5's classes of one packet. */
interface Classes {
  reply: boolean;
  amplifier: boolean;
  fragment: boolean;
}

function classify(transport: Transport, portClasses: Uint8Array): Classes {
  const { l4 } = transport;
  const fragment = transport.fragment !== 'none';
  if (l4.kind !== 'tcp' && l4.kind !== 'udp' && l4.kind !== 'ports') return { reply: false, amplifier: false, fragment };
  const sourceClass = portClasses[l4.sport];
  const reply = sourceClass !== PORT_EPHEMERAL && !isSyn(l4) && l4.dport >= 1024 && portClasses[l4.dport] === PORT_EPHEMERAL;
  const amplifier = sourceClass === PORT_AMPLIFIER && transport.protocol === PROTO_UDP;
  return { reply, amplifier, fragment };
}

// ------------------------------------------------------------------------------ the model

interface SourceRecord {
  counters: Omit<SrcExpected, 'port_bits' | 'host_bits' | 'proto_bits'>;
  portBits: Set<number>;
  hostBits: Set<number>;
  protoBits: Set<number>;
}

interface DestinationRecord {
  counters: Omit<DstExpected, 'src_bits' | 'amp_src_bits'>;
  sourceBits: Set<number>;
  ampSourceBits: Set<number>;
}

interface BlockRecord extends Prefix {
  expired: boolean;
  drops: bigint;
}

interface AllowRecord extends Prefix {
  hits: bigint;
}

/** Nested block entries looked at when the most specific ones have expired. */
const BLOCK_DEPTH = 4;

export class ReferenceModel {
  private readonly counters = Object.fromEntries(COUNTER_NAMES.map((name) => [name, 0n])) as Record<CounterName, bigint>;
  private readonly sourceRecords = new Map<string, SourceRecord>();
  private readonly destinationRecords = new Map<string, DestinationRecord>();
  private readonly blockRecords = new Map<string, BlockRecord>();
  private readonly allowRecords = new Map<string, AllowRecord>();
  private readonly protectPrefixes = new Map<string, Prefix>();
  /** ids_challenges: '<peer hex>/<peer port>/<local port>' → the acknowledgement number that completes it. */
  private readonly challenges = new Map<string, number>();
  private readonly portClasses: Uint8Array;
  private readonly flags: number;

  constructor(config: ReferenceConfig = {}) {
    if ((config.insertRate ?? 0) !== 0) throw new Error('ReferenceModel: insert throttle not modelled');
    if ((config.eventRate ?? 0) !== 0) throw new Error('ReferenceModel: events not modelled');
    const blocks = config.blocks ?? [];
    const allows = config.allows ?? [];
    const protect = config.protect ?? [];
    this.flags = config.flags ??
      ((blocks.length > 0 ? IDS_CFG_BLOCKS : 0) | (allows.length > 0 ? IDS_CFG_ALLOWS : 0) | (protect.length > 0 ? IDS_CFG_PROTECT : 0) |
        (config.dropUnparsed ? IDS_CFG_DROP_UNPARSED : 0));
    // Like map updates: a later entry for the same prefix replaces the earlier one.
    for (const entry of blocks) {
      const prefix = parsePrefix(entry.cidr);
      this.blockRecords.set(prefix.key, { ...prefix, expired: entry.expired ?? false, drops: 0n });
    }
    for (const cidr of allows) {
      const prefix = parsePrefix(cidr);
      this.allowRecords.set(prefix.key, { ...prefix, hits: 0n });
    }
    for (const cidr of protect) {
      const prefix = parsePrefix(cidr);
      this.protectPrefixes.set(prefix.key, prefix);
    }
    this.portClasses = config.portClasses ?? portClassTable();
  }

  /** One frame through xdp_ids (steps 1-10). */
  process(frame: Buffer): Verdict {
    this.count('packets');
    this.count('bytes', BigInt(frame.length));
    const ip = this.parseIp(frame);
    if (ip === 'drop') return 'drop';
    if (!ip) return this.pass();
    if (this.blocked(ip)) return 'drop';

    const transport = parseTransport(frame, ip);
    if (transport.l4.kind === 'malformed') this.count(transport.l4.error);
    if (transport.fragment === 'later') this.count('fragments');
    if (transport.fragment === 'first') this.count('first_fragments');
    const classes = classify(transport, this.portClasses);
    if (this.isSet(IDS_CFG_PROTECT) && !this.isProtected(ip.dst)) {
      if (isSynAck(transport.l4) && this.isProtected(ip.src)) this.recordChallenge(ip, transport.l4);
      this.count('not_protected');
      return this.pass();
    }

    this.countDestination(ip, transport, classes, frame.length);
    const source = this.source(ip.src);
    this.countSource(source, transport, classes, frame.length);
    this.checkHandshake(source, ip, transport.l4);
    this.fanOut(source, ip, transport, classes);
    return this.pass();
  }

  /** One frame through ids_egress (step 11): it never changes a packet, so there is no verdict. */
  egress(frame: Buffer): void {
    const link = parseLink(frame);
    if (failed(link)) return;
    const ip = parseNetwork(frame, link);
    if (failed(ip)) return;
    const { l4 } = parseTransport(frame, ip);
    if (l4.kind !== 'tcp' || (!isSyn(l4) && !isSynAck(l4))) return;
    if (this.isSet(IDS_CFG_PROTECT) && !this.isProtected(ip.src)) return;
    if (isSynAck(l4)) {
      this.recordChallenge(ip, l4);
      return;
    }
    const record = this.destinationRecords.get(ip.src.toString('hex'));
    if (record) record.counters.syn_out++;
  }

  globals(): Record<CounterName, bigint> {
    return { ...this.counters };
  }

  sources(): Map<string, SrcExpected> {
    const result = new Map<string, SrcExpected>();
    for (const [key, record] of this.sourceRecords) {
      const bits = { port_bits: record.portBits.size, host_bits: record.hostBits.size, proto_bits: record.protoBits.size };
      result.set(key, { ...record.counters, ...bits });
    }
    return result;
  }

  destinations(): Map<string, DstExpected> {
    const result = new Map<string, DstExpected>();
    for (const [key, record] of this.destinationRecords) {
      result.set(key, { ...record.counters, src_bits: record.sourceBits.size, amp_src_bits: record.ampSourceBits.size });
    }
    return result;
  }

  blockDrops(cidr: string): bigint {
    return this.listEntry(this.blockRecords, cidr).drops;
  }

  allowHits(cidr: string): bigint {
    return this.listEntry(this.allowRecords, cidr).hits;
  }

  /** Challenges waiting for their ACK. */
  pendingChallenges(): number {
    return this.challenges.size;
  }

  private listEntry<T>(records: Map<string, T>, cidr: string): T {
    const record = records.get(parsePrefix(cidr).key);
    if (!record) throw new Error(`ReferenceModel: ${cidr} is not in the list`);
    return record;
  }

  private isSet(flag: number): boolean {
    return (this.flags & flag) !== 0;
  }

  private count(name: CounterName, amount = 1n): void {
    this.counters[name] += amount;
  }

  private pass(): Verdict {
    this.count('pass');
    return 'pass';
  }

  /** Steps 2-3: undefined when the packet is passed without reaching step 4, 'drop' for DROP_UNPARSED. */
  private parseIp(frame: Buffer): NetworkLayer | undefined | 'drop' {
    const link = parseLink(frame);
    if (failed(link)) {
      this.countError(link);
      if (link.error === 'err_encap_depth' && this.isSet(IDS_CFG_BLOCKS) && this.isSet(IDS_CFG_DROP_UNPARSED)) {
        this.count('drop_unparsed');
        return 'drop';
      }
      return undefined;
    }
    const ip = parseNetwork(frame, link);
    if (failed(ip)) return this.countError(ip);
    this.count(ip.version === 4 ? 'ipv4' : 'ipv6');
    return ip;
  }

  private countError(failure: Failure): undefined {
    this.count(failure.error);
    return undefined;
  }

  /** Step 4: a live entry decides; expired ones hand over to the covering entries, up to BLOCK_DEPTH deep. */
  private blocked(ip: NetworkLayer): boolean {
    if (!this.isSet(IDS_CFG_BLOCKS)) return false;
    const addr = trieAddress(ip.src);
    let live: BlockRecord | undefined;
    let expired = false;
    let maxLength = Infinity;
    for (let depth = 0; depth < BLOCK_DEPTH && !live; depth++) {
      const entry = longestMatch(this.blockRecords.values(), addr, maxLength);
      if (!entry) break;
      if (!entry.expired) live = entry;
      else {
        expired = true;
        if (entry.length === 0) break;
        maxLength = entry.length - 1;
      }
    }
    if (!live) {
      if (expired) this.count('block_expired');
      return false;
    }
    if (this.allowed(addr)) return false;
    live.drops += 1n;
    this.count('drop_blocked');
    return true;
  }

  private allowed(addr: Buffer): boolean {
    if (!this.isSet(IDS_CFG_ALLOWS)) return false;
    const allow = longestMatch(this.allowRecords.values(), addr);
    if (!allow) return false;
    allow.hits += 1n;
    this.count('allowlisted');
    return true;
  }

  private isProtected(addr: Buffer): boolean {
    return longestMatch(this.protectPrefixes.values(), trieAddress(addr)) !== undefined;
  }

  /** Step 11's record of a SYN-ACK `ip.src` sent to `ip.dst`. */
  private recordChallenge(ip: NetworkLayer, synAck: TcpL4): void {
    this.challenges.set(challengeKey(ip.dst, synAck.dport, synAck.sport), (synAck.seq + 1) >>> 0);
    this.count('challenges');
  }

  /** Step 6, without destination limits. */
  private countDestination(ip: NetworkLayer, transport: Transport, classes: Classes, frameLength: number): void {
    const field = destinationCounter(transport.l4);
    if (!field && !classes.amplifier && !classes.fragment) return;
    const key = ip.dst.toString('hex');
    let record = this.destinationRecords.get(key);
    if (!record) {
      record = { counters: emptyDestinationCounters(), sourceBits: new Set(), ampSourceBits: new Set() };
      this.destinationRecords.set(key, record);
    }
    const counters = record.counters;
    const length = BigInt(frameLength);
    if (field) counters[field]++;
    if (classes.amplifier) {
      counters.udp_amp++;
      counters.udp_amp_bytes += length;
      record.ampSourceBits.add(ampSourceBit(ip.src));
    }
    if (classes.fragment) {
      counters.fragments++;
      counters.fragment_bytes += length;
    }
    counters.bytes += length;
    record.sourceBits.add(sourceBit(ip.src));
  }

  /** Step 7's lookup, with an unlimited insert throttle: every new source is inserted. */
  private source(src: Buffer): SourceRecord {
    const key = src.toString('hex');
    let record = this.sourceRecords.get(key);
    if (!record) {
      record = { counters: emptySourceCounters(), portBits: new Set(), hostBits: new Set(), protoBits: new Set() };
      this.sourceRecords.set(key, record);
      this.count('new_sources');
    }
    return record;
  }

  /** Step 7's counting. */
  private countSource(source: SourceRecord, transport: Transport, classes: Classes, frameLength: number): void {
    const counters = source.counters;
    counters.packets += 1n;
    counters.bytes += BigInt(frameLength);
    const { l4 } = transport;
    if (l4.kind === 'tcp') for (const tcpClass of tcpClasses(l4.flags)) counters[tcpClass]++;
    else if (l4.kind === 'udp') counters.udp++;
    else if (l4.kind === 'icmp') counters.icmp++;
    else if (l4.kind === 'fragment') counters.fragments++;
    else if (l4.kind === 'malformed') counters.malformed++;
    if (transport.fragment === 'first') counters.first_fragments++;
    if (classes.reply) counters.replies++;
  }

  /** Step 8, within one refresh interval: a verified source is not checked against the challenges again. */
  private checkHandshake(source: SourceRecord, ip: NetworkLayer, l4: L4): void {
    const counters = source.counters;
    if (l4.kind === 'tcp' && (l4.flags & (SYN | ACK | RST)) === ACK && !counters.verified) {
      const key = challengeKey(ip.src, l4.sport, l4.dport);
      if (this.challenges.get(key) === l4.ack) {
        this.challenges.delete(key);
        counters.handshakes++;
        this.count('handshakes');
        counters.verified = true;
        counters.verified_ttl = ip.ttl;
        const destination = this.destinationRecords.get(ip.dst.toString('hex'));
        if (destination) destination.counters.handshakes++;
      }
    }
    if (counters.verified && Math.abs(ip.ttl - counters.verified_ttl) > TTL_SLACK) counters.ttl_mismatch++;
  }

  /** Step 9, all packets in one window. Ports count only probes: replies go to whatever port the peer chose. */
  private fanOut(source: SourceRecord, ip: NetworkLayer, transport: Transport, classes: Classes): void {
    const { l4 } = transport;
    source.hostBits.add(hostBit(ip.dst));
    source.protoBits.add(protoBit(transport.protocol));
    if ((l4.kind === 'tcp' || l4.kind === 'udp' || l4.kind === 'ports') && !classes.reply) source.portBits.add(portBit(l4.dport));
    if (isSyn(l4)) source.counters.syn_window++;
  }
}

function challengeKey(peer: Buffer, peerPort: number, localPort: number): string {
  return `${peer.toString('hex')}/${peerPort}/${localPort}`;
}

function destinationCounter(l4: L4): 'syn' | 'synack' | 'udp' | 'icmp' | undefined {
  if (isSyn(l4)) return 'syn';
  if (isSynAck(l4)) return 'synack';
  if (l4.kind === 'udp' || l4.kind === 'icmp') return l4.kind;
  return undefined;
}

function emptyDestinationCounters(): DestinationRecord['counters'] {
  return {
    syn: 0n, udp: 0n, icmp: 0n, bytes: 0n, synack: 0n, udp_amp: 0n, udp_amp_bytes: 0n, fragments: 0n, fragment_bytes: 0n, handshakes: 0n,
    syn_out: 0n,
  };
}

function emptySourceCounters(): SourceRecord['counters'] {
  return {
    packets: 0n, bytes: 0n, syn: 0, synack: 0, ack: 0, rst: 0, fin: 0, null_scan: 0, fin_only: 0, xmas: 0, synfin: 0, udp: 0, icmp: 0,
    fragments: 0, malformed: 0, first_fragments: 0, replies: 0, handshakes: 0, ttl_mismatch: 0, verified: false, verified_ttl: 0,
    syn_window: 0,
  };
}
