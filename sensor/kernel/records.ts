/**
 * Decoders and encoders for the records shared with the XDP program. Offsets come from
 * layout.generated.ts (the object's BTF), so these functions only name fields, never positions.
 */
import { DEFINES, ENUMS, STRUCTS } from './layout.generated';
import { formatMac, keyToAddress } from '../addresses';
import type { HeaderSample, TripKind } from '../../common/sensor-tick';
import { TRAFFIC_CLASSES, type TrafficClass } from '../../common/traffic';

const SRC = STRUCTS.ids_src_stats.fields;
const SRC_WIN = STRUCTS.ids_src_window.fields;
const DST = STRUCTS.ids_dst_stats.fields;
const DST_WIN = STRUCTS.ids_dst_window.fields;
const EV = STRUCTS.ids_event.fields;
const CFG = STRUCTS.ids_config.fields;
const BLOCK = STRUCTS.ids_block.fields;
const DST_LIMIT = STRUCTS.ids_dst_limit.fields;

export const SRC_STATS_SIZE = STRUCTS.ids_src_stats.size;
export const DST_STATS_SIZE = STRUCTS.ids_dst_stats.size;
export const ADDR_SIZE = STRUCTS.ids_addr.size;
export const PORT_BITS = DEFINES.IDS_PORT_BITS;
export const HOST_BITS = DEFINES.IDS_HOST_BITS;
export const DST_SRC_BITS = DEFINES.IDS_DST_SRC_BITS;
export const DST_AMP_SRC_BITS = DEFINES.IDS_DST_AMP_SRC_BITS;

/** Global counter names in enum order: IDS_CNT_ERR_TCP_TRUNC becomes err_tcp_trunc. */
export const COUNTER_NAMES: readonly string[] = Object.entries(ENUMS.ids_counter)
  .filter(([name]) => name !== 'IDS_CNT__MAX')
  .sort((a, b) => a[1] - b[1])
  .map(([name]) => name.slice('IDS_CNT_'.length).toLowerCase());

/** Cumulative per-source counters, named as in struct ids_src_stats. */
export const SRC_COUNTERS = [
  'syn', 'synack', 'ack', 'rst', 'fin', 'null_scan', 'fin_only', 'xmas', 'synfin', 'udp', 'icmp', 'fragments', 'malformed',
  'first_fragments', 'replies', 'handshakes', 'ttl_mismatch',
] as const;
export type SrcCounter = (typeof SRC_COUNTERS)[number];
export type SrcCounters = Record<SrcCounter | 'packets' | 'bytes', number>;

export const SRC_COUNTER_OFFSETS = SRC_COUNTERS.map((name) => SRC[name].offset);

export function readSrcCounters(buf: Buffer, off: number): SrcCounters {
  const out = { packets: Number(buf.readBigUInt64LE(off + SRC.packets.offset)), bytes: Number(buf.readBigUInt64LE(off + SRC.bytes.offset)) } as SrcCounters;
  for (let i = 0; i < SRC_COUNTERS.length; i++) out[SRC_COUNTERS[i]] = buf.readUInt32LE(off + SRC_COUNTER_OFFSETS[i]);
  return out;
}

export const SRC_OFFSETS = {
  packets: SRC.packets.offset,
  bytes: SRC.bytes.offset,
  firstSeen: SRC.first_seen_ns.offset,
  lastSeen: SRC.last_seen_ns.offset,
  verifiedAt: SRC.verified_at.offset,
  win: SRC.win.offset,
  winSize: STRUCTS.ids_src_window.size,
  winWindow: SRC_WIN.window.offset,
  winSyn: SRC_WIN.syn.offset,
  winPortBits: SRC_WIN.port_bits.offset,
  winHostBits: SRC_WIN.host_bits.offset,
  winProtoBits: SRC_WIN.proto_bits.offset,
} as const;

/** verified_at is CLOCK_MONOTONIC ns >> COARSE_SHIFT; 0 = never. */
export const COARSE_SHIFT = DEFINES.IDS_COARSE_SHIFT;
export const PROTO_BITS = 32;

export interface SrcWindowCounts {
  window: number;
  syn: number;
  portBits: number;
  hostBits: number;
}

/** Offset of the double-buffered slot holding `window`, or -1 when the source was silent in it. */
export function srcWindowSlot(buf: Buffer, off: number, window: number): number {
  const slot = off + SRC_OFFSETS.win + (window & 1) * SRC_OFFSETS.winSize;
  return buf.readUInt32LE(slot + SRC_OFFSETS.winWindow) === window >>> 0 ? slot : -1;
}

export function readSrcWindow(buf: Buffer, off: number, window: number): SrcWindowCounts {
  const slot = srcWindowSlot(buf, off, window);
  if (slot < 0) return { window, syn: 0, portBits: 0, hostBits: 0 };
  return {
    window,
    syn: buf.readUInt32LE(slot + SRC_OFFSETS.winSyn),
    portBits: buf.readUInt16LE(slot + SRC_OFFSETS.winPortBits),
    hostBits: buf.readUInt16LE(slot + SRC_OFFSETS.winHostBits),
  };
}

/** Cumulative per-destination counters (u64), named as in struct ids_dst_stats. */
export const DST_COUNTERS = [
  'syn', 'udp', 'icmp', 'bytes', 'synack', 'udp_amp', 'udp_amp_bytes', 'fragments', 'fragment_bytes', 'handshakes', 'syn_out',
] as const;
export type DstCounters = Record<(typeof DST_COUNTERS)[number], number>;

const DST_COUNTER_OFFSETS = DST_COUNTERS.map((name) => DST[name].offset);

export function readDstCounters(buf: Buffer, off: number): DstCounters {
  const out = {} as DstCounters;
  DST_COUNTERS.forEach((name, i) => (out[name] = Number(buf.readBigUInt64LE(off + DST_COUNTER_OFFSETS[i]))));
  return out;
}

/** The distinct-source sketches' bit counts of the window, zero when the destination was silent in it. */
export function readDstSourceBits(buf: Buffer, off: number, window: number): { sources: number; ampSources: number } {
  const slot = off + DST.win.offset + (window & 1) * STRUCTS.ids_dst_window.size;
  if (buf.readUInt32LE(slot + DST_WIN.window.offset) !== window >>> 0) return { sources: 0, ampSources: 0 };
  return { sources: buf.readUInt16LE(slot + DST_WIN.src_bits.offset), ampSources: buf.readUInt16LE(slot + DST_WIN.amp_src_bits.offset) };
}

/** Sums a per-CPU ids_globals value (ncpu records, each rounded up to 8 bytes). */
export function sumGlobals(perCpu: Buffer, ncpu: number): Record<string, number> {
  const stride = Math.ceil(STRUCTS.ids_globals.size / 8) * 8;
  const out: Record<string, number> = {};
  COUNTER_NAMES.forEach((name, i) => {
    let sum = 0n;
    for (let cpu = 0; cpu < ncpu; cpu++) sum += perCpu.readBigUInt64LE(cpu * stride + i * 8);
    out[name] = Number(sum);
  });
  return out;
}

export interface KernelConfig {
  windowNs: bigint;
  tripSyn: number;
  tripPortBits: number;
  tripHostBits: number;
  eventsPerSrcWindow: number;
  eventRate: number;
  eventBurst: number;
  insertRate: number;
  insertBurst: number;
  sampleNewEvery: number;
  /** Drop frames encapsulated deeper than the program parses (their source is unknown) while blocks are in force. */
  dropUnparsed: boolean;
}

export interface ConfigLists {
  blocks: boolean;
  allows: boolean;
  watch: boolean;
  dstLimits: boolean;
  protect: boolean;
  /** Changed whenever the protect tries change. */
  protectGen: number;
}

export function encodeConfig(cfg: KernelConfig, lists: ConfigLists): Buffer {
  const buf = Buffer.alloc(STRUCTS.ids_config.size);
  buf.writeBigUInt64LE(cfg.windowNs, CFG.window_ns.offset);
  buf.writeUInt32LE(cfg.tripSyn, CFG.trip_syn.offset);
  buf.writeUInt32LE(cfg.tripPortBits, CFG.trip_port_bits.offset);
  buf.writeUInt32LE(cfg.tripHostBits, CFG.trip_host_bits.offset);
  buf.writeUInt32LE(cfg.eventsPerSrcWindow, CFG.events_per_src_window.offset);
  buf.writeUInt32LE(cfg.eventRate, CFG.event_rate.offset);
  buf.writeUInt32LE(cfg.eventBurst, CFG.event_burst.offset);
  buf.writeUInt32LE(cfg.insertRate, CFG.insert_rate.offset);
  buf.writeUInt32LE(cfg.insertBurst, CFG.insert_burst.offset);
  buf.writeUInt32LE(cfg.sampleNewEvery, CFG.sample_new_every.offset);
  const flags = (lists.blocks ? DEFINES.IDS_CFG_BLOCKS : 0) | (lists.allows ? DEFINES.IDS_CFG_ALLOWS : 0) | (lists.watch ? DEFINES.IDS_CFG_WATCH : 0) |
    (lists.dstLimits ? DEFINES.IDS_CFG_DST_LIMITS : 0) | (lists.protect ? DEFINES.IDS_CFG_PROTECT : 0) |
    (cfg.dropUnparsed ? DEFINES.IDS_CFG_DROP_UNPARSED : 0);
  buf.writeUInt32LE(flags, CFG.flags.offset);
  buf.writeUInt32LE(lists.protectGen >>> 0, CFG.protect_gen.offset);
  return buf;
}

/** Bookkeeping flags of block, allow and limit entries (IDS_ENTRY_*). */
export const ENTRY_RETAINED = DEFINES.IDS_ENTRY_RETAINED;

export interface BlockRecord {
  /** CLOCK_MONOTONIC ns; 0n = no expiry. */
  expiresNs: bigint;
  drops: number;
  lastDropNs: bigint;
  /** IDS_ENTRY_* */
  flags: number;
}

export function encodeBlock(prefixLength: number, expiresNs: bigint, flags: number, kept?: Buffer): Buffer {
  const buf = Buffer.alloc(STRUCTS.ids_block.size);
  buf.writeBigUInt64LE(expiresNs, BLOCK.expires_ns.offset);
  if (kept) {
    buf.writeBigUInt64LE(kept.readBigUInt64LE(BLOCK.drops.offset), BLOCK.drops.offset);
    buf.writeBigUInt64LE(kept.readBigUInt64LE(BLOCK.last_drop_ns.offset), BLOCK.last_drop_ns.offset);
  }
  buf.writeUInt32LE(prefixLength, BLOCK.prefixlen.offset);
  buf.writeUInt32LE(flags, BLOCK.flags.offset);
  return buf;
}

export function readBlock(buf: Buffer): BlockRecord {
  return {
    expiresNs: buf.readBigUInt64LE(BLOCK.expires_ns.offset),
    drops: Number(buf.readBigUInt64LE(BLOCK.drops.offset)),
    lastDropNs: buf.readBigUInt64LE(BLOCK.last_drop_ns.offset),
    flags: buf.readUInt32LE(BLOCK.flags.offset),
  };
}

const ALLOW = STRUCTS.ids_allow.fields;

export function encodeAllow(flags: number, kept?: Buffer): Buffer {
  const buf = Buffer.alloc(STRUCTS.ids_allow.size);
  if (kept) buf.writeBigUInt64LE(kept.readBigUInt64LE(ALLOW.hits.offset), ALLOW.hits.offset);
  buf.writeUInt32LE(flags, ALLOW.flags.offset);
  return buf;
}

export function readAllow(buf: Buffer): { hits: number; flags: number } {
  return { hits: Number(buf.readBigUInt64LE(ALLOW.hits.offset)), flags: buf.readUInt32LE(ALLOW.flags.offset) };
}

export const DST_LIMIT_MAX_RATE = DEFINES.IDS_DST_LIMIT_MAX_RATE;

const TRAFFIC_IDS: Record<TrafficClass, number> = {
  syn: ENUMS.ids_traffic.IDS_TRAFFIC_SYN,
  'udp-amp': ENUMS.ids_traffic.IDS_TRAFFIC_UDP_AMP,
  fragments: ENUMS.ids_traffic.IDS_TRAFFIC_FRAGMENTS,
  'syn-ack': ENUMS.ids_traffic.IDS_TRAFFIC_SYNACK,
};

const DST_LIMIT_KEY = STRUCTS.ids_dst_limit_key.fields;

export function encodeDstLimitKey(addressKey: Buffer, traffic: TrafficClass): Buffer {
  const buf = Buffer.alloc(STRUCTS.ids_dst_limit_key.size);
  addressKey.copy(buf, DST_LIMIT_KEY.dst.offset);
  buf.writeUInt32LE(TRAFFIC_IDS[traffic], DST_LIMIT_KEY.traffic.offset);
  return buf;
}

export function readDstLimitKey(buf: Buffer): { address: string; traffic: TrafficClass } {
  const id = buf.readUInt32LE(DST_LIMIT_KEY.traffic.offset);
  const traffic = TRAFFIC_CLASSES.find((t) => TRAFFIC_IDS[t] === id);
  if (!traffic) throw new RangeError(`unknown traffic class ${id} in a destination limit key`);
  return { address: keyToAddress(buf, DST_LIMIT_KEY.dst.offset), traffic };
}

export interface DstLimitRecord {
  perSecond: number;
  burst: number;
  /** CLOCK_MONOTONIC ns; 0n = no expiry. */
  expiresNs: bigint;
  drops: number;
  /** The bucket's state (struct ids_dst_limit.tat_ns), carried over when an entry is replaced. */
  tatNs: bigint;
  /** IDS_ENTRY_* */
  flags: number;
}

export function encodeDstLimit(limit: DstLimitRecord): Buffer {
  const buf = Buffer.alloc(STRUCTS.ids_dst_limit.size);
  buf.writeBigUInt64LE(limit.expiresNs, DST_LIMIT.expires_ns.offset);
  buf.writeBigUInt64LE(limit.tatNs, DST_LIMIT.tat_ns.offset);
  buf.writeBigUInt64LE(BigInt(limit.drops), DST_LIMIT.drops.offset);
  buf.writeUInt32LE(limit.perSecond, DST_LIMIT.per_sec.offset);
  buf.writeUInt32LE(limit.burst, DST_LIMIT.burst.offset);
  buf.writeUInt32LE(limit.flags, DST_LIMIT.flags.offset);
  return buf;
}

export function readDstLimit(buf: Buffer): DstLimitRecord {
  return {
    perSecond: buf.readUInt32LE(DST_LIMIT.per_sec.offset),
    burst: buf.readUInt32LE(DST_LIMIT.burst.offset),
    expiresNs: buf.readBigUInt64LE(DST_LIMIT.expires_ns.offset),
    drops: Number(buf.readBigUInt64LE(DST_LIMIT.drops.offset)),
    tatNs: buf.readBigUInt64LE(DST_LIMIT.tat_ns.offset),
    flags: buf.readUInt32LE(DST_LIMIT.flags.offset),
  };
}

const META = STRUCTS.ids_meta.fields;

/** Which ledger generation the kernel's entries come from (struct ids_meta). */
export interface LedgerMark {
  epoch: string;
  rev: number;
}

/** The longest epoch a mark holds (its field ends with a NUL). */
export const MAX_EPOCH_BYTES = META.ledger_epoch.size - 1;

export function encodeMeta(mark: LedgerMark): Buffer {
  const buf = Buffer.alloc(STRUCTS.ids_meta.size);
  const epoch = Buffer.from(mark.epoch, 'utf8');
  if (epoch.length > MAX_EPOCH_BYTES) throw new RangeError(`ledger epoch too long: ${mark.epoch.length} bytes`);
  epoch.copy(buf, META.ledger_epoch.offset);
  buf.writeBigUInt64LE(BigInt(mark.rev), META.ledger_rev.offset);
  return buf;
}

export function readMeta(buf: Buffer): LedgerMark {
  const raw = buf.subarray(META.ledger_epoch.offset, META.ledger_epoch.offset + META.ledger_epoch.size);
  const end = raw.indexOf(0);
  return { epoch: raw.subarray(0, end < 0 ? raw.length : end).toString('utf8'), rev: Number(buf.readBigUInt64LE(META.ledger_rev.offset)) };
}

const TCP_FLAG_LETTERS = 'FSRPAUEC';

export function tcpFlagsText(flags: number): string {
  let out = '';
  for (let i = 0; i < 8; i++) if (flags & (1 << i)) out += TCP_FLAG_LETTERS[i];
  return out || '.';
}

export type KernelEvent =
  | { type: 'trip'; kind: TripKind; window: number; value: number; threshold: number; packet: HeaderSample }
  | { type: 'sample'; reason: 'new-source' | 'watched'; window: number; packet: HeaderSample };

const TRIP_KINDS: Record<number, TripKind> = {
  [ENUMS.ids_trip.IDS_TRIP_SYN]: 'syn',
  [ENUMS.ids_trip.IDS_TRIP_PORTS]: 'ports',
  [ENUMS.ids_trip.IDS_TRIP_HOSTS]: 'hosts',
};

/**
 * Decodes one ring buffer record. `monoToWallMs` converts the kernel's CLOCK_MONOTONIC stamp.
 * Returns undefined for records of a type this version does not know (a newer kernel object).
 */
export function decodeEvent(buf: Buffer, monoToWallMs: (ns: bigint) => number): KernelEvent | undefined {
  if (buf.length < STRUCTS.ids_event.size) return undefined;
  const frag = buf.readUInt8(EV.frag.offset);
  const tos = buf.readUInt8(EV.tos.offset);
  const vlans = [buf.readUInt16LE(EV.vlan.offset), buf.readUInt16LE(EV.vlan.offset + 2)].filter((v) => v !== 0);
  const packet: HeaderSample = {
    tsMs: monoToWallMs(buf.readBigUInt64LE(EV.ts_ns.offset)),
    src: keyToAddress(buf, EV.src.offset),
    dst: keyToAddress(buf, EV.dst.offset),
    srcMac: formatMac(buf, EV.smac.offset),
    dstMac: formatMac(buf, EV.dmac.offset),
    etherType: buf.readUInt16LE(EV.ethertype.offset),
    vlans,
    ipVersion: buf.readUInt8(EV.ip_version.offset) === 6 ? 6 : 4,
    protocol: buf.readUInt8(EV.proto.offset),
    length: buf.readUInt16LE(EV.pkt_len.offset),
    ttl: buf.readUInt8(EV.ttl.offset),
    dscp: tos >> 2,
    ecn: tos & 3,
    ipId: buf.readUInt16LE(EV.ip_id.offset),
    flowLabel: buf.readUInt32LE(EV.flow_label.offset),
    fragment: {
      df: (frag & DEFINES.IDS_FRAG_DF) !== 0,
      mf: (frag & DEFINES.IDS_FRAG_MF) !== 0,
      nonFirst: (frag & DEFINES.IDS_FRAG_NONFIRST) !== 0,
    },
    srcPort: buf.readUInt16LE(EV.sport.offset),
    dstPort: buf.readUInt16LE(EV.dport.offset),
    tcpFlags: buf.readUInt8(EV.proto.offset) === 6 ? tcpFlagsText(buf.readUInt8(EV.tcp_flags.offset)) : '',
    seq: buf.readUInt32LE(EV.seq.offset),
    ack: buf.readUInt32LE(EV.ack_seq.offset),
    tcpWindow: buf.readUInt16LE(EV.tcp_window.offset),
    icmpType: buf.readUInt8(EV.icmp_type.offset),
    icmpCode: buf.readUInt8(EV.icmp_code.offset),
  };
  const type = buf.readUInt8(EV.type.offset);
  const reason = buf.readUInt8(EV.reason.offset);
  const window = buf.readUInt32LE(EV.window.offset);
  if (type === ENUMS.ids_event_type.IDS_EV_TRIP && TRIP_KINDS[reason]) {
    return { type: 'trip', kind: TRIP_KINDS[reason], window, value: buf.readUInt32LE(EV.value.offset), threshold: buf.readUInt32LE(EV.threshold.offset), packet };
  }
  if (type === ENUMS.ids_event_type.IDS_EV_SAMPLE) {
    return { type: 'sample', reason: reason === ENUMS.ids_sample_reason.IDS_SAMPLE_WATCHED ? 'watched' : 'new-source', window, packet };
  }
  return undefined;
}
