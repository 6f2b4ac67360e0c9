/**
 * Turns the kernel's cumulative counters into per-window deltas. The kernel never resets a
 * counter (so a restarted sensor, or two readers, cannot lose counts); this class remembers the
 * previous reading of every source and destination and reports what changed since.
 */
import type { DestinationWindow, SensorTick, SourceWindow } from '../common/sensor-tick';
import { keyToAddress } from './addresses';
import { estimateDistinct } from './sketch';
import {
  ADDR_SIZE, COARSE_SHIFT, DST_AMP_SRC_BITS, DST_COUNTERS, DST_SRC_BITS, DST_STATS_SIZE, HOST_BITS, PORT_BITS, PROTO_BITS, SRC_COUNTERS,
  SRC_COUNTER_OFFSETS, SRC_OFFSETS, SRC_STATS_SIZE, readDstCounters, readDstSourceBits, type DstCounters, type SrcCounters,
} from './kernel/records';

export type Counts = SensorTick['untracked'];

const COUNTERS = 2 + SRC_COUNTERS.length;
const PORT_ESTIMATES = Array.from({ length: PORT_BITS + 1 }, (_, bits) => estimateDistinct(bits, PORT_BITS));
const HOST_ESTIMATES = Array.from({ length: HOST_BITS + 1 }, (_, bits) => estimateDistinct(bits, HOST_BITS));
const PROTO_ESTIMATES = Array.from({ length: PROTO_BITS + 1 }, (_, bits) => estimateDistinct(bits, PROTO_BITS));
const COARSE_UNIT_MS = 2 ** COARSE_SHIFT / 1e6;
/**
 * A count as a small integer when it is one. Numbers read from typed arrays reach V8 as doubles,
 * and an object field that first receives a double boxes every later value in a heap number of
 * its own: 16 per window record, four times the record's own size in garbage every tick.
 */
function int(x: number): number {
  return x >= -0x40000000 && x < 0x40000000 ? x | 0 : x;
}

/**
 * Counts from deltas laid out as [packets, bytes, ...SRC_COUNTERS]. This and windowFrom are the
 * places that name the kernel's counters for the windows; one literal each keeps the objects
 * monomorphic.
 */
function countsFrom(d: Float64Array): Counts {
  return {
    packets: int(d[0]), bytes: int(d[1]), syn: int(d[2]), synAck: int(d[3]), ackOnly: int(d[4]), rst: int(d[5]), fin: int(d[6]),
    nullScan: int(d[7]), finOnly: int(d[8]), xmas: int(d[9]), synFin: int(d[10]), udp: int(d[11]), icmp: int(d[12]),
    fragments: int(d[13]), malformed: int(d[14]), firstFragments: int(d[15]), replies: int(d[16]), handshakes: int(d[17]), ttlMismatch: int(d[18]),
  };
}

/**
 * A window record, its counts laid out as in countsFrom. V8 allocates 100,000 of these per tick
 * at their final shape, where adding fields one by one would cost a transition each.
 */
function windowFrom(src: string, d: Float64Array, distinctPorts: number, distinctHosts: number, distinctProtocols: number, firstSeenMs: number,
  verifiedMs: number): SourceWindow {
  return {
    src, packets: int(d[0]), bytes: int(d[1]), syn: int(d[2]), synAck: int(d[3]), ackOnly: int(d[4]), rst: int(d[5]), fin: int(d[6]),
    nullScan: int(d[7]), finOnly: int(d[8]), xmas: int(d[9]), synFin: int(d[10]), udp: int(d[11]), icmp: int(d[12]),
    fragments: int(d[13]), malformed: int(d[14]), firstFragments: int(d[15]), replies: int(d[16]), handshakes: int(d[17]), ttlMismatch: int(d[18]),
    distinctPorts, distinctHosts, distinctProtocols, firstSeenMs, verifiedMs,
  };
}

/** Deltas of cumulative counters; 32-bit kernel counters are taken modulo 2^32. */
export function counterDeltas(now: SrcCounters, before: SrcCounters | undefined): Counts {
  const d = new Float64Array(COUNTERS);
  d[0] = now.packets - (before?.packets ?? 0);
  d[1] = now.bytes - (before?.bytes ?? 0);
  SRC_COUNTERS.forEach((name, f) => (d[2 + f] = (now[name] - (before?.[name] ?? 0)) >>> 0));
  return countsFrom(d);
}

export interface SourceDrain {
  windows: SourceWindow[];
  /** Keys (16 bytes each) of sources idle for longer than the idle timeout: delete them. */
  idleKeys: Buffer[];
  /**
   * Sources the kernel's full table evicted: those of the last drain gone (or back as new records)
   * without being idle, and, given the kernel's insert count, those inserted and evicted again
   * between two drains (a random-source burst inside one window), which no drain ever sees.
   */
  evicted: number;
}

/**
 * The batch as 32-bit words: typed-array reads are several times cheaper than Buffer.readUInt32LE
 * over 100,000 records. The addon's buffers are malloc'ed, so aligned; a misaligned one is copied.
 */
function words(buf: Buffer): Uint32Array {
  const aligned = buf.byteOffset % 4 === 0 ? buf : new Uint8Array(buf);
  return new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >>> 2);
}

const KEY_WORDS = ADDR_SIZE / 4;
const REC_WORDS = SRC_STATS_SIZE / 4;
const W = {
  packets: SRC_OFFSETS.packets / 4,
  bytes: SRC_OFFSETS.bytes / 4,
  firstSeen: SRC_OFFSETS.firstSeen / 4,
  lastSeen: SRC_OFFSETS.lastSeen / 4,
  verifiedAt: SRC_OFFSETS.verifiedAt / 4,
  win: SRC_OFFSETS.win / 4,
  winSize: SRC_OFFSETS.winSize / 4,
  winWindow: SRC_OFFSETS.winWindow / 4,
};
const COUNTER_WORDS = SRC_COUNTER_OFFSETS.map((off) => off / 4);
/** port_bits and host_bits are 16-bit halves of 32-bit words (little-endian). */
const PORT_BITS_WORD = SRC_OFFSETS.winPortBits >> 2;
const PORT_BITS_SHIFT = (SRC_OFFSETS.winPortBits & 3) * 8;
const HOST_BITS_WORD = SRC_OFFSETS.winHostBits >> 2;
const HOST_BITS_SHIFT = (SRC_OFFSETS.winHostBits & 3) * 8;
const PROTO_BITS_WORD = SRC_OFFSETS.winProtoBits >> 2;
const PROTO_BITS_SHIFT = (SRC_OFFSETS.winProtoBits & 3) * 8;
/** ::ffff:0:0/96 as the key's third little-endian word. */
const V4_MAPPED_WORD = 0xffff0000;

/** A u64 field as a double: exact below 2^53, which counters reach only after years. */
function u64(v: Uint32Array, i: number): number {
  return v[i + 1] * 4294967296 + v[i];
}

function isV4Mapped(k: Uint32Array, i: number): boolean {
  return k[i] === 0 && k[i + 1] === 0 && k[i + 2] === V4_MAPPED_WORD;
}

/**
 * Per-source deltas. Previous readings live in flat typed arrays indexed by a slot per source,
 * because this runs over every tracked source every second (100,000 sources in well under
 * 100 ms including the kernel read).
 */
export class SourceWindows {
  /** IPv4 sources by their address word (a small integer to V8), IPv6 by key bytes. */
  private readonly slots = new Map<number | string, number>();
  private readonly freeSlots: number[] = [];
  private previous = new Float64Array(0);
  /** first_seen_ns of the record each slot's baseline was read from: another one means the kernel evicted and re-created the source. */
  private firstSeen = new Float64Array(0);
  private generation = new Uint32Array(0);
  /** Each slot's address text, built once per source rather than once per window. */
  private names: string[] = [];
  /**
   * The last batch's keys and the slot each position got (-1: none). The kernel hands back its
   * sources in hash-bucket order, so from one tick to the next most positions hold the same
   * source; comparing four words there is sequential, where 100,000 lookups in `slots` are cache
   * misses that took half the drain.
   */
  private lastKeys = new Uint32Array(0);
  private lastSlots = new Int32Array(0);
  private current = 0;
  private readonly delta = new Float64Array(COUNTERS);
  /** Records seen new that the last insert count did not include yet (inserted between its read and the batch read). */
  private insertsOwed = 0;

  /**
   * One window's records from a batch read of ids_src. Sources first seen before `sinceNs` that
   * this reader has never seen (a restarted sensor) only set the baseline. `wallMinusMonoMs`
   * converts kernel stamps to wall-clock ms. `inserted`: the kernel's count of records inserted
   * since the last drain (IDS_CNT_NEW_SOURCES), read just before this batch.
   */
  drain(keys: Buffer, values: Buffer, count: number, window: number, sinceNs: bigint, idleBeforeNs: bigint, wallMinusMonoMs: number, inserted?: number): SourceDrain {
    const windows: SourceWindow[] = [];
    const idleKeys: Buffer[] = [];
    const k = words(keys);
    const v = words(values);
    const since = Number(sinceNs);
    const idleBefore = Number(idleBeforeNs);
    const gen = ++this.current;
    const before = this.slots.size;
    let knownSeen = 0;
    let recreated = 0;
    let created = 0;
    const slots = new Int32Array(count).fill(-1);
    this.reserve(this.slots.size + count);
    for (let i = 0; i < count; i++) {
      const ki = i * KEY_WORDS;
      const vi = i * REC_WORDS;
      if (u64(v, vi + W.lastSeen) < idleBefore) {
        idleKeys.push(Buffer.from(keys.subarray(i * ADDR_SIZE, (i + 1) * ADDR_SIZE)));
        // Seen, so not evicted; its slot goes with the record the caller deletes.
        const idle = this.slots.get(this.idOf(keys, k, ki));
        if (idle !== undefined) {
          this.generation[idle] = gen;
          this.slots.delete(this.idOf(keys, k, ki));
          this.freeSlots.push(idle);
          knownSeen++;
        }
        continue;
      }
      let slot = this.lastSlot(k, ki, i);
      if (slot < 0) slot = this.slots.get(this.idOf(keys, k, ki)) ?? -1;
      const known = slot >= 0;
      if (known) {
        knownSeen++;
      } else {
        slot = this.freeSlots.pop() ?? this.slots.size;
        this.slots.set(this.idOf(keys, k, ki), slot);
        this.names[slot] = keyToAddress(keys, i * ADDR_SIZE);
      }
      slots[i] = slot;
      this.generation[slot] = gen;
      const base = slot * COUNTERS;
      const firstSeen = u64(v, vi + W.firstSeen);
      // A record evicted and created again between two drains starts from zero: against the old
      // baseline its counters would go negative (and 32-bit ones wrap to ~4.29e9).
      const sameRecord = known && this.firstSeen[slot] === firstSeen && u64(v, vi + W.packets) >= this.previous[base];
      if (known && !sameRecord) recreated++;
      if (!sameRecord && firstSeen >= since) created++;
      this.firstSeen[slot] = firstSeen;
      if (sameRecord && u64(v, vi + W.packets) === this.previous[base]) continue;
      if (!(known || firstSeen >= since)) {
        this.readDeltas(v, vi, base, false, true);
        continue;
      }
      const w = this.windowOf(this.names[slot], v, vi, window, base, sameRecord, true, wallMinusMonoMs);
      if (w.packets === 0) continue;
      windows.push(w);
    }
    let evicted = recreated;
    if (knownSeen < before) {
      for (const [id, slot] of this.slots) {
        if (this.generation[slot] !== gen) {
          evicted++;
          this.slots.delete(id);
          this.freeSlots.push(slot);
        }
      }
    }
    if (inserted !== undefined) {
      const unseen = inserted - created - this.insertsOwed;
      this.insertsOwed = Math.max(0, -unseen);
      evicted += Math.max(0, unseen);
    }
    this.lastKeys = k.slice(0, count * KEY_WORDS);
    this.lastSlots = slots;
    return { windows, idleKeys, evicted };
  }

  /** The slot of the source at position i when the last batch had the same source there, else -1. */
  private lastSlot(k: Uint32Array, ki: number, i: number): number {
    const last = this.lastKeys;
    if (i >= this.lastSlots.length || k[ki] !== last[ki] || k[ki + 1] !== last[ki + 1] || k[ki + 2] !== last[ki + 2] || k[ki + 3] !== last[ki + 3]) return -1;
    return this.lastSlots[i];
  }

  /**
   * The counts of one source (a 16-byte key and its ids_src value) since the last drain, without
   * moving the baseline: what a trip's source has done so far in the current window.
   */
  sinceLastDrain(key: Buffer, value: Buffer, window: number, wallMinusMonoMs: number): SourceWindow {
    const slot = this.slots.get(this.idOf(key, words(key), 0));
    const v = words(value);
    const sameRecord = slot !== undefined && this.firstSeen[slot] === u64(v, W.firstSeen) && u64(v, W.packets) >= this.previous[slot * COUNTERS];
    return this.windowOf(keyToAddress(key, 0), v, 0, window, (slot ?? 0) * COUNTERS, sameRecord, false, wallMinusMonoMs);
  }

  private idOf(keys: Buffer, k: Uint32Array, ki: number): number | string {
    return isV4Mapped(k, ki) ? k[ki + 3] | 0 : keys.toString('latin1', ki * 4, ki * 4 + ADDR_SIZE);
  }

  /** Fills `delta` with the counts minus the baseline at `base` (if there is one), optionally moving the baseline there. */
  private readDeltas(v: Uint32Array, vi: number, base: number, hasBase: boolean, update: boolean): Float64Array {
    const d = this.delta;
    const prev = this.previous;
    const packets = u64(v, vi + W.packets);
    const bytes = u64(v, vi + W.bytes);
    d[0] = packets - (hasBase ? prev[base] : 0);
    d[1] = bytes - (hasBase ? prev[base + 1] : 0);
    if (update) {
      prev[base] = packets;
      prev[base + 1] = bytes;
    }
    for (let f = 0; f < COUNTER_WORDS.length; f++) {
      const now = v[vi + COUNTER_WORDS[f]];
      d[2 + f] = (now - (hasBase ? prev[base + 2 + f] : 0)) >>> 0;
      if (update) prev[base + 2 + f] = now;
    }
    return d;
  }

  private windowOf(src: string, v: Uint32Array, vi: number, window: number, base: number, hasBase: boolean, update: boolean, wallMinusMonoMs: number): SourceWindow {
    const d = this.readDeltas(v, vi, base, hasBase, update);
    const slot = vi + W.win + (window & 1) * W.winSize;
    const current = v[slot + W.winWindow] === window >>> 0;
    const verifiedAt = v[vi + W.verifiedAt];
    return windowFrom(src, d,
      current ? PORT_ESTIMATES[(v[slot + PORT_BITS_WORD] >>> PORT_BITS_SHIFT) & 0xffff] : 0,
      current ? HOST_ESTIMATES[(v[slot + HOST_BITS_WORD] >>> HOST_BITS_SHIFT) & 0xffff] : 0,
      current ? PROTO_ESTIMATES[(v[slot + PROTO_BITS_WORD] >>> PROTO_BITS_SHIFT) & 0xffff] : 0,
      u64(v, vi + W.firstSeen) / 1e6 + wallMinusMonoMs,
      verifiedAt ? verifiedAt * COARSE_UNIT_MS + wallMinusMonoMs : 0);
  }

  private reserve(slots: number): void {
    if (this.generation.length >= slots) return;
    const size = Math.max(slots, this.generation.length * 2, 1024);
    const previous = new Float64Array(size * COUNTERS);
    previous.set(this.previous);
    const firstSeen = new Float64Array(size);
    firstSeen.set(this.firstSeen);
    const generation = new Uint32Array(size);
    generation.set(this.generation);
    this.previous = previous;
    this.firstSeen = firstSeen;
    this.generation = generation;
  }
}

const ZERO_DST = Object.fromEntries(DST_COUNTERS.map((name) => [name, 0])) as DstCounters;
const AMP_SOURCE_ESTIMATES = Array.from({ length: DST_AMP_SRC_BITS + 1 }, (_, bits) => estimateDistinct(bits, DST_AMP_SRC_BITS));

export class DestinationWindows {
  private readonly previous = new Map<string, DstCounters>();
  private primed = false;

  /** The first drain only sets the baseline: counts from before this reader started are not news. */
  drain(keys: Buffer, values: Buffer, count: number, window: number): DestinationWindow[] {
    const out: DestinationWindow[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
      const koff = i * ADDR_SIZE;
      const voff = i * DST_STATS_SIZE;
      const id = keys.toString('latin1', koff, koff + ADDR_SIZE);
      seen.add(id);
      const now = readDstCounters(values, voff);
      let before = this.previous.get(id) ?? (this.primed ? ZERO_DST : now);
      // Evicted and created again since the last drain: everything it holds is new.
      if (DST_COUNTERS.some((name) => now[name] < before[name])) before = ZERO_DST;
      this.previous.set(id, now);
      const d = {} as DstCounters;
      let any = 0;
      for (const name of DST_COUNTERS) any += d[name] = now[name] - before[name];
      if (any === 0) continue;
      const bits = readDstSourceBits(values, voff, window);
      out.push({
        dst: keyToAddress(keys, koff), syn: d.syn, udp: d.udp, icmp: d.icmp, bytes: d.bytes, synAck: d.synack, udpAmp: d.udp_amp,
        udpAmpBytes: d.udp_amp_bytes, fragments: d.fragments, fragmentBytes: d.fragment_bytes, handshakes: d.handshakes, synOut: d.syn_out,
        distinctSources: estimateDistinct(bits.sources, DST_SRC_BITS), ampSources: AMP_SOURCE_ESTIMATES[bits.ampSources],
      });
    }
    for (const id of this.previous.keys()) if (!seen.has(id)) this.previous.delete(id);
    this.primed = true;
    return out;
  }
}
