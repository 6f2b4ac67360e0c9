/**
 * The loaded xdp-ids program of one interface: its maps pinned under /sys/fs/bpf/xdp-ids/<iface>/
 * so a restarted sensor keeps its counters and blocks, its XDP attachment, its configuration, its
 * block/allow/watch lists and its ring buffer. The only place that knows map names.
 */
import path from 'node:path';
import { BpfObject, RingBuffer, numPossibleCpus, type BpfMap, type TestRunOptions, type TestRunResult, type XdpAttachMode, type XdpMode } from '../../native/bpf';
import ipaddr from 'ipaddr.js';
import { addressKey, parsePrefix, type Prefix } from '../addresses';
import {
  SRC_STATS_SIZE, DST_LIMIT_MAX_RATE, ENTRY_RETAINED, encodeAllow, encodeBlock, encodeConfig, encodeDstLimit, encodeDstLimitKey, encodeMeta,
  readAllow, readBlock, readDstLimit, readDstLimitKey, readMeta, readSrcCounters, sumGlobals, SRC_COUNTERS, type KernelConfig, type LedgerMark,
  type SrcCounters,
} from './records';
import type { TrafficClass } from '../../common/traffic';
import { STRUCTS } from './layout.generated';
import { portClassTable } from '../ports';

export const PIN_ROOT = '/sys/fs/bpf/xdp-ids';

export const DEFAULT_OBJECT = path.resolve(__dirname, '..', '..', ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []), 'bpf', 'xdp_ids.bpf.o');

export interface MapSizes {
  sources?: number;
  destinations?: number;
  blocksV4?: number;
  blocksV6?: number;
  destinationLimits?: number;
}

/** The kernel's table sizes (bpf/maps.h): what the ledger may ask a sensor to hold. */
export const KERNEL_CAPACITY = { blocksV4: 65_536, blocksV6: 16_384, allows: 4096, destinationLimits: 1024, protect: 1024 } as const;

export interface OpenOptions {
  /** Interface name: pins go to PIN_ROOT/<pinName>. Omit for an unpinned program (tests, benchmarks). */
  pinName?: string;
  objectPath?: string;
  sizes?: MapSizes;
}

/** Trips and samples off until the sensor configures them; everything counted, nothing throttled. */
export const DEFAULT_KERNEL_CONFIG: KernelConfig = {
  windowNs: 1_000_000_000n, tripSyn: 0, tripPortBits: 0, tripHostBits: 0, eventsPerSrcWindow: 0, eventRate: 0,
  eventBurst: 0, insertRate: 0, insertBurst: 0, sampleNewEvery: 0, dropUnparsed: false,
};

/** Bookkeeping of an entry: `retained` ones outlived the ledger generation that wrote them. */
export interface EntryOptions {
  retained?: boolean;
}

export interface BlockEntry {
  prefix: string;
  /** CLOCK_MONOTONIC ns; 0n = no expiry. */
  expiresNs: bigint;
  drops: number;
  lastDropNs: bigint;
  retained: boolean;
}

/** A rate limit (token bucket) on one traffic class to one destination, and what it dropped. */
export interface DestinationLimit {
  address: string;
  traffic: TrafficClass;
  perSecond: number;
  burst: number;
  /** CLOCK_MONOTONIC ns; 0n = no expiry. */
  expiresNs: bigint;
  drops: number;
  retained: boolean;
}

const U32_MAX = 2 ** 32 - 1;
const U64_MAX = 2n ** 64n - 1n;

export interface AllowEntry {
  prefix: string;
  hits: number;
  retained: boolean;
}

export interface SourceBatch {
  keys: Buffer;
  values: Buffer;
  count: number;
}

const V4_KEY_SIZE = STRUCTS.ids_lpm_v4.size;
const V6_KEY_SIZE = STRUCTS.ids_lpm_v6.size;

function lpmKey(prefix: Prefix): Buffer {
  const key = Buffer.alloc(prefix.family === 4 ? V4_KEY_SIZE : V6_KEY_SIZE);
  key.writeUInt32LE(prefix.length, 0);
  prefix.bytes.copy(key, 4);
  return key;
}

function lpmKeyToText(key: Buffer): string {
  const bytes = [...key.subarray(4, key.length === V4_KEY_SIZE ? 8 : 20)];
  return `${ipaddr.fromByteArray(bytes).toString()}/${key.readUInt32LE(0)}`;
}

function flagsOf(opts: EntryOptions): number {
  return opts.retained ? ENTRY_RETAINED : 0;
}

export class XdpIdsProgram {
  private readonly cpus = numPossibleCpus();
  private attachedIfindex?: number;
  private config: KernelConfig = DEFAULT_KERNEL_CONFIG;
  private protectGen = 0;
  /** Where readSources() reads every tick: memory already faulted in, not fresh pages each time. */
  private sourceBuffers?: { keys: Buffer; values: Buffer };

  private constructor(private readonly object: BpfObject, readonly pinDir?: string) {}

  static open(opts: OpenOptions = {}): XdpIdsProgram {
    const pinDir = opts.pinName ? path.join(PIN_ROOT, opts.pinName) : undefined;
    const sizes = opts.sizes ?? {};
    const maxEntries: Record<string, number> = {};
    if (sizes.sources) maxEntries.ids_src = sizes.sources;
    if (sizes.destinations) maxEntries.ids_dst = sizes.destinations;
    if (sizes.blocksV4) maxEntries.ids_block_v4 = sizes.blocksV4;
    if (sizes.blocksV6) maxEntries.ids_block_v6 = sizes.blocksV6;
    if (sizes.destinationLimits) maxEntries.ids_dst_limit = sizes.destinationLimits;
    const object = BpfObject.open(opts.objectPath ?? DEFAULT_OBJECT, { pinDir, maxEntries });
    try {
      object.load();
    } catch (err) {
      object.close();
      throw err;
    }
    const program = new XdpIdsProgram(object, pinDir);
    program.setPortClasses(portClassTable());
    return program;
  }

  /** One byte per port (sensor/ports.ts): which ports are services and which amplifiers. */
  setPortClasses(table: Uint8Array): void {
    if (table.length !== 65536) throw new RangeError(`a port class table has 65536 entries, got ${table.length}`);
    const keys = Buffer.alloc(65536 * 4);
    for (let port = 0; port < 65536; port++) keys.writeUInt32LE(port, port * 4);
    this.map('ids_ports').updateBatch(keys, Buffer.from(table));
  }

  /** How many sources the kernel's source table holds. */
  get sourceCapacity(): number {
    return this.map('ids_src').maxEntries;
  }

  private map(name: string): BpfMap {
    return this.object.map(name);
  }

  /** XDP on the way in, and the TC egress program that records the SYN-ACKs going out (handshake challenges). */
  attach(ifindex: number, mode: XdpAttachMode = 'auto'): XdpMode {
    const attached = this.object.attachXdp(ifindex, mode, 'xdp_ids');
    try {
      this.object.attachTcEgress(ifindex, 'ids_egress');
    } catch (err) {
      BpfObject.detachXdp(ifindex);
      throw err;
    }
    this.attachedIfindex = ifindex;
    return attached;
  }

  detach(): void {
    if (this.attachedIfindex !== undefined) XdpIdsProgram.detachFrom(this.attachedIfindex);
    this.attachedIfindex = undefined;
  }

  /** Removes both programs from an interface, whoever attached them (also after a crash). */
  static detachFrom(ifindex: number): void {
    BpfObject.detachXdp(ifindex);
    BpfObject.detachTcEgress(ifindex);
  }

  close(): void {
    this.object.close();
  }

  setConfig(config: KernelConfig): void {
    this.config = config;
    this.writeConfig();
  }

  getConfig(): KernelConfig {
    return this.config;
  }

  /** The kernel skips the block, allow, watch and destination limit lookups while those lists are empty. */
  private writeConfig(): void {
    const nonEmpty = (...names: string[]): boolean => names.some((name) => this.map(name).getNextKey(undefined) !== undefined);
    const lists = {
      blocks: nonEmpty('ids_block_v4', 'ids_block_v6'), allows: nonEmpty('ids_allow_v4', 'ids_allow_v6'), watch: nonEmpty('ids_watch'),
      dstLimits: nonEmpty('ids_dst_limit'), protect: nonEmpty('ids_protect_v4', 'ids_protect_v6'), protectGen: this.protectGen,
    };
    this.map('ids_config').update(Buffer.alloc(4), encodeConfig(this.config, lists), 'any');
  }

  /** The batch views buffers that the next readSources() overwrites. */
  readSources(): SourceBatch {
    const map = this.map('ids_src');
    this.sourceBuffers ??= { keys: Buffer.allocUnsafeSlow(map.maxEntries * map.keySize), values: Buffer.allocUnsafeSlow(map.maxEntries * map.valueBufferSize) };
    return map.lookupBatch({ into: this.sourceBuffers });
  }

  deleteSources(keys: Buffer[]): void {
    if (keys.length) this.map('ids_src').deleteBatch(Buffer.concat(keys), keys.length);
  }

  readDestinations(): SourceBatch {
    return this.map('ids_dst').lookupBatch();
  }

  /** Cumulative counters of the packets the insert throttle did not track, summed over CPUs. */
  readUntracked(): SrcCounters {
    const perCpu = this.map('ids_overflow').lookup(Buffer.alloc(4));
    const stride = Math.ceil(SRC_STATS_SIZE / 8) * 8;
    const sum = readSrcCounters(perCpu!, 0);
    for (let cpu = 1; cpu < this.cpus; cpu++) {
      const c = readSrcCounters(perCpu!, cpu * stride);
      sum.packets += c.packets;
      sum.bytes += c.bytes;
      for (const name of SRC_COUNTERS) sum[name] = (sum[name] + c[name]) >>> 0;
    }
    return sum;
  }

  readGlobals(): Record<string, number> {
    return sumGlobals(this.map('ids_globals').lookup(Buffer.alloc(4))!, this.cpus);
  }

  lookupSource(address: string): Buffer | undefined {
    return this.map('ids_src').lookup(addressKey(address));
  }

  /** Adds or replaces a block entry (its drop count is kept). */
  addBlock(cidr: string, expiresNs = 0n, opts: EntryOptions = {}): Prefix {
    const prefix = parsePrefix(cidr);
    const map = this.map(prefix.family === 4 ? 'ids_block_v4' : 'ids_block_v6');
    const key = lpmKey(prefix);
    map.update(key, encodeBlock(prefix.length, expiresNs, flagsOf(opts), map.lookup(key)), 'any');
    this.writeConfig();
    return prefix;
  }

  deleteBlock(cidr: string): boolean {
    const prefix = parsePrefix(cidr);
    const deleted = this.map(prefix.family === 4 ? 'ids_block_v4' : 'ids_block_v6').delete(lpmKey(prefix));
    this.writeConfig();
    return deleted;
  }

  listBlocks(): BlockEntry[] {
    return ['ids_block_v4', 'ids_block_v6'].flatMap((name) => [...this.map(name).entries()].map(([key, value]) => {
      const { flags, ...record } = readBlock(value);
      return { prefix: lpmKeyToText(key), ...record, retained: (flags & ENTRY_RETAINED) !== 0 };
    }));
  }

  addAllow(cidr: string, opts: EntryOptions = {}): Prefix {
    const prefix = parsePrefix(cidr);
    const map = this.map(prefix.family === 4 ? 'ids_allow_v4' : 'ids_allow_v6');
    const key = lpmKey(prefix);
    map.update(key, encodeAllow(flagsOf(opts), map.lookup(key)), 'any');
    this.writeConfig();
    return prefix;
  }

  deleteAllow(cidr: string): boolean {
    const prefix = parsePrefix(cidr);
    const deleted = this.map(prefix.family === 4 ? 'ids_allow_v4' : 'ids_allow_v6').delete(lpmKey(prefix));
    this.writeConfig();
    return deleted;
  }

  listAllows(): AllowEntry[] {
    return ['ids_allow_v4', 'ids_allow_v6'].flatMap((name) => [...this.map(name).entries()].map(([key, value]) => {
      const { hits, flags } = readAllow(value);
      return { prefix: lpmKeyToText(key), hits, retained: (flags & ENTRY_RETAINED) !== 0 };
    }));
  }

  /**
   * Limits one traffic class to one destination address; over budget its packets are dropped
   * unless their source is allowlisted. Replacing an entry keeps its drop count and bucket state,
   * so refreshing a limit grants no new burst. expiresNs is CLOCK_MONOTONIC ns (0n = never).
   */
  setDestinationLimit(address: string, traffic: TrafficClass, opts: { perSecond: number; burst?: number; expiresNs?: bigint } & EntryOptions): void {
    const key = encodeDstLimitKey(addressKey(address), traffic);
    const { perSecond, burst = perSecond, expiresNs = 0n } = opts;
    if (!Number.isInteger(perSecond) || perSecond < 1 || perSecond > DST_LIMIT_MAX_RATE) {
      throw new RangeError(`perSecond must be an integer in 1..${DST_LIMIT_MAX_RATE}, got ${perSecond}`);
    }
    if (!Number.isInteger(burst) || burst < 1 || burst > U32_MAX) throw new RangeError(`burst must be an integer in 1..${U32_MAX}, got ${burst}`);
    if (typeof expiresNs !== 'bigint' || expiresNs < 0n || expiresNs > U64_MAX) throw new RangeError(`expiresNs must be a bigint in 0..2^64-1, got ${String(expiresNs)}`);
    const map = this.map('ids_dst_limit');
    const previous = map.lookup(key);
    const { drops, tatNs } = previous ? readDstLimit(previous) : { drops: 0, tatNs: 0n };
    map.update(key, encodeDstLimit({ perSecond, burst, expiresNs, drops, tatNs, flags: flagsOf(opts) }), 'any');
    this.writeConfig();
  }

  deleteDestinationLimit(address: string, traffic: TrafficClass): boolean {
    const deleted = this.map('ids_dst_limit').delete(encodeDstLimitKey(addressKey(address), traffic));
    this.writeConfig();
    return deleted;
  }

  listDestinationLimits(): DestinationLimit[] {
    return [...this.map('ids_dst_limit').entries()].map(([key, value]) => {
      const { perSecond, burst, expiresNs, drops, flags } = readDstLimit(value);
      return { ...readDstLimitKey(key), perSecond, burst, expiresNs, drops, retained: (flags & ENTRY_RETAINED) !== 0 };
    });
  }

  /**
   * The protected prefixes (like Suricata's HOME_NET): only traffic towards them is judged per
   * source and destination; none means every destination. Replaces the whole set.
   */
  setProtected(cidrs: readonly string[]): void {
    const wanted = new Map(cidrs.map((c) => parsePrefix(c)).map((p) => [p.text, p]));
    for (const name of ['ids_protect_v4', 'ids_protect_v6']) {
      const map = this.map(name);
      for (const [key] of [...map.entries()]) if (!wanted.has(lpmKeyToText(key))) map.delete(key);
    }
    for (const prefix of wanted.values()) {
      this.map(prefix.family === 4 ? 'ids_protect_v4' : 'ids_protect_v6').update(lpmKey(prefix), Buffer.alloc(STRUCTS.ids_protect.size), 'any');
    }
    this.protectGen++;
    this.writeConfig();
  }

  listProtected(): string[] {
    return ['ids_protect_v4', 'ids_protect_v6'].flatMap((name) => [...this.map(name).entries()].map(([key]) => lpmKeyToText(key)));
  }

  /** Which ledger generation the block, allow and limit entries come from (pinned with them). */
  ledgerMark(): LedgerMark {
    return readMeta(this.map('ids_meta').lookup(Buffer.alloc(4))!);
  }

  setLedgerMark(mark: LedgerMark): void {
    this.map('ids_meta').update(Buffer.alloc(4), encodeMeta(mark), 'any');
  }

  /** Watched sources get a header sample for every packet (within the event limits). */
  watch(address: string): void {
    this.map('ids_watch').update(addressKey(address), Buffer.from([1]), 'any');
    this.writeConfig();
  }

  unwatch(address: string): void {
    this.map('ids_watch').delete(addressKey(address));
    this.writeConfig();
  }

  /** Delivers ring buffer records in batches, from libbpf's poll thread. */
  subscribe(onRecords: (records: Buffer[]) => void): RingBuffer {
    return new RingBuffer(this.map('ids_events'), onRecords);
  }

  /** BPF_PROG_TEST_RUN: runs the XDP program (or, with programName 'ids_egress', the egress one) on one frame without attaching it. */
  testRun(frame: Buffer, opts: TestRunOptions = {}): TestRunResult {
    return this.object.testRun(frame, { programName: 'xdp_ids', ...opts });
  }

  /** For a benchmark driver that tail-calls the program. */
  programFd(): number {
    return this.object.programFd('xdp_ids');
  }
}
