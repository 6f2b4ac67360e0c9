/**
 * Turns the kernel's cumulative counters into per-window deltas. The kernel never resets a
 * counter (so a restarted sensor, or two readers, cannot lose counts); this class remembers the
 * previous reading of every source and destination and reports what changed since.
 */
import type { DestinationWindow, SourceWindow } from '../common/sensor-tick';
import { keyToAddress } from './addresses';
import { estimateDistinct } from './sketch';
import {
  ADDR_SIZE, DST_SRC_BITS, DST_STATS_SIZE, HOST_BITS, PORT_BITS, SRC_COUNTERS, SRC_COUNTER_OFFSETS, SRC_OFFSETS,
  SRC_STATS_SIZE, readDstCounters, readDstSourceBits, srcWindowSlot, type SrcCounters,
} from './kernel/records';

export type Counts = Omit<SourceWindow, 'src' | 'distinctPorts' | 'distinctHosts' | 'firstSeenMs'>;

const COUNTERS = 2 + SRC_COUNTERS.length;
const PORT_ESTIMATES = Array.from({ length: PORT_BITS + 1 }, (_, bits) => estimateDistinct(bits, PORT_BITS));
const HOST_ESTIMATES = Array.from({ length: HOST_BITS + 1 }, (_, bits) => estimateDistinct(bits, HOST_BITS));
/**
 * Counts from deltas laid out as [packets, bytes, ...SRC_COUNTERS]: the one place that names
 * the kernel's counters for the windows. One literal keeps these objects monomorphic.
 */
function countsFrom(d: Float64Array): Counts {
  return {
    packets: d[0], bytes: d[1], syn: d[2], synAck: d[3], ackOnly: d[4], rst: d[5], fin: d[6], nullScan: d[7],
    finOnly: d[8], xmas: d[9], synFin: d[10], udp: d[11], icmp: d[12], fragments: d[13], malformed: d[14],
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
}

function isV4Mapped(key: Buffer, off: number): boolean {
  return key.readUInt32LE(off) === 0 && key.readUInt32LE(off + 4) === 0 && key.readUInt32BE(off + 8) === 0xffff;
}

/** A u64 field as a double: exact below 2^53, which counters reach only after years. */
function readU64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off + 4) * 4294967296 + buf.readUInt32LE(off);
}

/**
 * Per-source deltas. Previous readings live in flat typed arrays indexed by a slot per source,
 * because this runs over every tracked source every second (100,000 sources in well under
 * 100 ms including the kernel read).
 */
export class SourceWindows {
  /** IPv4 sources by their address as a signed 32-bit integer (a small integer to V8), IPv6 by key bytes. */
  private readonly slots = new Map<number | string, number>();
  private readonly freeSlots: number[] = [];
  private previous = new Float64Array(0);
  private generation = new Uint32Array(0);
  private current = 0;
  private readonly delta = new Float64Array(COUNTERS);

  /**
   * One window's records from a batch read of ids_src. Sources first seen before `sinceNs` that
   * this reader has never seen (a restarted sensor) only set the baseline. `wallMinusMonoMs`
   * converts kernel stamps to wall-clock ms.
   */
  drain(keys: Buffer, values: Buffer, count: number, window: number, sinceNs: bigint, idleBeforeNs: bigint, wallMinusMonoMs: number): SourceDrain {
    const windows: SourceWindow[] = [];
    const idleKeys: Buffer[] = [];
    const since = Number(sinceNs);
    const idleBefore = Number(idleBeforeNs);
    const gen = ++this.current;
    const before = this.slots.size;
    let knownSeen = 0;
    this.reserve(this.slots.size + count);
    for (let i = 0; i < count; i++) {
      const koff = i * ADDR_SIZE;
      const voff = i * SRC_STATS_SIZE;
      if (readU64(values, voff + SRC_OFFSETS.lastSeen) < idleBefore) {
        idleKeys.push(Buffer.from(keys.subarray(koff, koff + ADDR_SIZE)));
        continue;
      }
      const v4 = isV4Mapped(keys, koff);
      const id = v4 ? keys.readInt32BE(koff + 12) : keys.toString('latin1', koff, koff + ADDR_SIZE);
      let slot = this.slots.get(id);
      const known = slot !== undefined;
      if (known) knownSeen++;
      if (slot === undefined) {
        slot = this.freeSlots.pop() ?? this.slots.size;
        this.slots.set(id, slot);
      }
      this.generation[slot] = gen;
      const base = slot * COUNTERS;
      const packets = readU64(values, voff + SRC_OFFSETS.packets);
      if (known && packets === this.previous[base]) continue;
      if (!(known || readU64(values, voff + SRC_OFFSETS.firstSeen) >= since)) {
        this.readDeltas(values, voff, base, false, true);
        continue;
      }
      const w = this.windowOf(keys, koff, values, voff, window, base, known, true, wallMinusMonoMs);
      if (w.packets === 0) continue;
      windows.push(w);
    }
    if (knownSeen < before) {
      for (const [id, slot] of this.slots) {
        if (this.generation[slot] !== gen) {
          this.slots.delete(id);
          this.freeSlots.push(slot);
        }
      }
    }
    return { windows, idleKeys };
  }

  /**
   * The counts of one source (a 16-byte key and its ids_src value) since the last drain, without
   * moving the baseline: what a trip's source has done so far in the current window.
   */
  sinceLastDrain(key: Buffer, value: Buffer, window: number, wallMinusMonoMs: number): SourceWindow {
    const v4 = isV4Mapped(key, 0);
    const slot = this.slots.get(v4 ? key.readInt32BE(12) : key.toString('latin1', 0, ADDR_SIZE));
    return this.windowOf(key, 0, value, 0, window, (slot ?? 0) * COUNTERS, slot !== undefined, false, wallMinusMonoMs);
  }

  /** Fills `delta` with the counts minus the baseline at `base` (if there is one), optionally moving the baseline there. */
  private readDeltas(values: Buffer, voff: number, base: number, hasBase: boolean, update: boolean): Float64Array {
    const d = this.delta;
    const packets = readU64(values, voff + SRC_OFFSETS.packets);
    const bytes = readU64(values, voff + SRC_OFFSETS.bytes);
    d[0] = packets - (hasBase ? this.previous[base] : 0);
    d[1] = bytes - (hasBase ? this.previous[base + 1] : 0);
    if (update) {
      this.previous[base] = packets;
      this.previous[base + 1] = bytes;
    }
    for (let f = 0; f < SRC_COUNTER_OFFSETS.length; f++) {
      const now = values.readUInt32LE(voff + SRC_COUNTER_OFFSETS[f]);
      d[2 + f] = (now - (hasBase ? this.previous[base + 2 + f] : 0)) >>> 0;
      if (update) this.previous[base + 2 + f] = now;
    }
    return d;
  }

  private windowOf(keys: Buffer, koff: number, values: Buffer, voff: number, window: number, base: number, hasBase: boolean, update: boolean, wallMinusMonoMs: number): SourceWindow {
    const d = this.readDeltas(values, voff, base, hasBase, update);
    const winSlot = srcWindowSlot(values, voff, window);
    // Fields are always added in this order, so every window shares one hidden class.
    const w = countsFrom(d) as SourceWindow;
    w.src = isV4Mapped(keys, koff) ? `${keys[koff + 12]}.${keys[koff + 13]}.${keys[koff + 14]}.${keys[koff + 15]}` : keyToAddress(keys, koff);
    w.distinctPorts = winSlot < 0 ? 0 : PORT_ESTIMATES[values.readUInt16LE(winSlot + SRC_OFFSETS.winPortBits)];
    w.distinctHosts = winSlot < 0 ? 0 : HOST_ESTIMATES[values.readUInt16LE(winSlot + SRC_OFFSETS.winHostBits)];
    w.firstSeenMs = readU64(values, voff + SRC_OFFSETS.firstSeen) / 1e6 + wallMinusMonoMs;
    return w;
  }

  private reserve(slots: number): void {
    if (this.generation.length >= slots) return;
    const size = Math.max(slots, this.generation.length * 2, 1024);
    const previous = new Float64Array(size * COUNTERS);
    previous.set(this.previous);
    const generation = new Uint32Array(size);
    generation.set(this.generation);
    this.previous = previous;
    this.generation = generation;
  }
}

interface DstPrevious {
  syn: number;
  udp: number;
  icmp: number;
  bytes: number;
}

export class DestinationWindows {
  private readonly previous = new Map<string, DstPrevious>();
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
      const before = this.previous.get(id) ?? (this.primed ? { syn: 0, udp: 0, icmp: 0, bytes: 0 } : now);
      this.previous.set(id, now);
      const d = { syn: now.syn - before.syn, udp: now.udp - before.udp, icmp: now.icmp - before.icmp, bytes: now.bytes - before.bytes };
      if (d.syn + d.udp + d.icmp === 0) continue;
      out.push({ dst: keyToAddress(keys, koff), ...d, distinctSources: estimateDistinct(readDstSourceBits(values, voff, window), DST_SRC_BITS) });
    }
    for (const id of this.previous.keys()) if (!seen.has(id)) this.previous.delete(id);
    this.primed = true;
    return out;
  }
}
