/**
 * The loaded xdp-ids program of one interface: its maps pinned under /sys/fs/bpf/xdp-ids/<iface>/
 * so a restarted sensor keeps its counters and blocks, its XDP attachment, its configuration, its
 * block/allow/watch lists and its ring buffer. The only place that knows map names.
 */
import path from 'node:path';
import { BpfObject, RingBuffer, numPossibleCpus, type BpfMap, type TestRunOptions, type TestRunResult, type XdpAttachMode, type XdpMode } from '../../native/bpf';
import ipaddr from 'ipaddr.js';
import { addressKey, keyToAddress, parsePrefix, type Prefix } from '../addresses';
import {
  SRC_STATS_SIZE, DST_LIMIT_MAX_RATE, encodeBlock, encodeConfig, encodeDstLimit, readAllowHits, readBlock, readDstLimit, readSrcCounters,
  sumGlobals, SRC_COUNTERS, type KernelConfig, type SrcCounters,
} from './records';
import { STRUCTS } from './layout.generated';

export const PIN_ROOT = '/sys/fs/bpf/xdp-ids';

export const DEFAULT_OBJECT = path.resolve(__dirname, '..', '..', ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []), 'bpf', 'xdp_ids.bpf.o');

export interface MapSizes {
  sources?: number;
  destinations?: number;
  blocksV4?: number;
  blocksV6?: number;
  destinationLimits?: number;
}

export interface OpenOptions {
  /** Interface name: pins go to PIN_ROOT/<pinName>. Omit for an unpinned program (tests, benchmarks). */
  pinName?: string;
  objectPath?: string;
  sizes?: MapSizes;
}

/** Trips and samples off until the sensor configures them; everything counted, nothing throttled. */
export const DEFAULT_KERNEL_CONFIG: KernelConfig = {
  windowNs: 1_000_000_000n, tripSyn: 0, tripPortBits: 0, tripHostBits: 0, eventsPerSrcWindow: 0, eventRate: 0,
  eventBurst: 0, insertRate: 0, insertBurst: 0, sampleNewEvery: 0,
};

export interface BlockEntry {
  prefix: string;
  /** CLOCK_MONOTONIC ns; 0n = no expiry. */
  expiresNs: bigint;
  drops: number;
  lastDropNs: bigint;
}

/** A per-destination TCP SYN rate limit (token bucket) and the SYNs it dropped. */
export interface DestinationLimit {
  address: string;
  synPerSecond: number;
  burst: number;
  /** CLOCK_MONOTONIC ns; 0n = no expiry. */
  expiresNs: bigint;
  drops: number;
}

const U32_MAX = 2 ** 32 - 1;
const U64_MAX = 2n ** 64n - 1n;

export interface AllowEntry {
  prefix: string;
  hits: number;
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

export class XdpIdsProgram {
  private readonly cpus = numPossibleCpus();
  private attachedIfindex?: number;
  private config: KernelConfig = DEFAULT_KERNEL_CONFIG;
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
    return new XdpIdsProgram(object, pinDir);
  }

  private map(name: string): BpfMap {
    return this.object.map(name);
  }

  attach(ifindex: number, mode: XdpAttachMode = 'auto'): XdpMode {
    const attached = this.object.attachXdp(ifindex, mode);
    this.attachedIfindex = ifindex;
    return attached;
  }

  detach(): void {
    if (this.attachedIfindex !== undefined) BpfObject.detachXdp(this.attachedIfindex);
    this.attachedIfindex = undefined;
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
      dstLimits: nonEmpty('ids_dst_limit'),
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

  addBlock(cidr: string, expiresNs = 0n): Prefix {
    const prefix = parsePrefix(cidr);
    this.map(prefix.family === 4 ? 'ids_block_v4' : 'ids_block_v6').update(lpmKey(prefix), encodeBlock(expiresNs), 'any');
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
    return ['ids_block_v4', 'ids_block_v6'].flatMap((name) =>
      [...this.map(name).entries()].map(([key, value]) => ({ prefix: lpmKeyToText(key), ...readBlock(value) })));
  }

  addAllow(cidr: string): Prefix {
    const prefix = parsePrefix(cidr);
    this.map(prefix.family === 4 ? 'ids_allow_v4' : 'ids_allow_v6').update(lpmKey(prefix), Buffer.alloc(STRUCTS.ids_allow.size), 'any');
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
    return ['ids_allow_v4', 'ids_allow_v6'].flatMap((name) =>
      [...this.map(name).entries()].map(([key, value]) => ({ prefix: lpmKeyToText(key), hits: readAllowHits(value) })));
  }

  /**
   * Limits the TCP SYNs (SYN without ACK) to one destination address; over budget they are dropped
   * unless their source is allowlisted. Replacing an entry keeps its drop count and bucket state,
   * so refreshing a limit grants no new burst. expiresNs is CLOCK_MONOTONIC ns (0n = never).
   */
  setDestinationLimit(address: string, opts: { synPerSecond: number; burst?: number; expiresNs?: bigint }): void {
    const key = addressKey(address);
    const { synPerSecond, burst = synPerSecond, expiresNs = 0n } = opts;
    if (!Number.isInteger(synPerSecond) || synPerSecond < 1 || synPerSecond > DST_LIMIT_MAX_RATE) {
      throw new RangeError(`synPerSecond must be an integer in 1..${DST_LIMIT_MAX_RATE}, got ${synPerSecond}`);
    }
    if (!Number.isInteger(burst) || burst < 1 || burst > U32_MAX) throw new RangeError(`burst must be an integer in 1..${U32_MAX}, got ${burst}`);
    if (typeof expiresNs !== 'bigint' || expiresNs < 0n || expiresNs > U64_MAX) throw new RangeError(`expiresNs must be a bigint in 0..2^64-1, got ${String(expiresNs)}`);
    const map = this.map('ids_dst_limit');
    const previous = map.lookup(key);
    const { drops, tatNs } = previous ? readDstLimit(previous) : { drops: 0, tatNs: 0n };
    map.update(key, encodeDstLimit({ synPerSecond, burst, expiresNs, drops, tatNs }), 'any');
    this.writeConfig();
  }

  deleteDestinationLimit(address: string): boolean {
    const deleted = this.map('ids_dst_limit').delete(addressKey(address));
    this.writeConfig();
    return deleted;
  }

  listDestinationLimits(): DestinationLimit[] {
    return [...this.map('ids_dst_limit').entries()].map(([key, value]) => {
      const { synPerSecond, burst, expiresNs, drops } = readDstLimit(value);
      return { address: keyToAddress(key), synPerSecond, burst, expiresNs, drops };
    });
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

  /** BPF_PROG_TEST_RUN: runs the program on one frame without attaching it. */
  testRun(frame: Buffer, opts: TestRunOptions = {}): TestRunResult {
    return this.object.testRun(frame, opts);
  }

  /** For a benchmark driver that tail-calls the program. */
  programFd(): number {
    return this.object.programFd();
  }
}
