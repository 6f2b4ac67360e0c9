/**
 * Turns the kernel's cumulative counters into per-window deltas. The kernel never resets a
 * counter (so a restarted sensor, or two readers, cannot lose counts); this class remembers the
 * previous reading of every source and destination and reports what changed since.
 */
import type { DestinationWindow, SourceWindow } from '../common/sensor-tick';
import { keyToAddress } from './addresses';
import { estimateDistinct } from './sketch';
import {
  ADDR_SIZE, DST_SRC_BITS, DST_STATS_SIZE, HOST_BITS, PORT_BITS, SRC_COUNTERS, SRC_OFFSETS, SRC_STATS_SIZE,
  readDstCounters, readDstSourceBits, readSrcCounters, readSrcWindow, type SrcCounters,
} from './kernel/records';

export type Counts = Omit<SourceWindow, 'src' | 'distinctPorts' | 'distinctHosts' | 'firstSeenMs'>;

const FIELD_NAMES: Record<SrcCounter | 'packets' | 'bytes', keyof Counts> = {
  packets: 'packets', bytes: 'bytes', syn: 'syn', synack: 'synAck', ack: 'ackOnly', rst: 'rst', fin: 'fin',
  null_scan: 'nullScan', fin_only: 'finOnly', xmas: 'xmas', synfin: 'synFin', udp: 'udp', icmp: 'icmp',
  fragments: 'fragments', malformed: 'malformed',
};
type SrcCounter = (typeof SRC_COUNTERS)[number];

/** Deltas of cumulative counters; 32-bit kernel counters are taken modulo 2^32. */
export function counterDeltas(now: SrcCounters, before: SrcCounters | undefined): Counts {
  const out = {} as Counts;
  out.packets = now.packets - (before?.packets ?? 0);
  out.bytes = now.bytes - (before?.bytes ?? 0);
  for (const name of SRC_COUNTERS) out[FIELD_NAMES[name]] = ((now[name] - (before?.[name] ?? 0)) >>> 0);
  return out;
}

export interface SourceDrain {
  windows: SourceWindow[];
  /** Keys (16 bytes each) of sources idle for longer than the idle timeout: delete them. */
  idleKeys: Buffer[];
}

export class SourceWindows {
  private readonly previous = new Map<string, SrcCounters>();

  constructor(private readonly monoToWallMs: (ns: bigint) => number) {}

  /**
   * One window's records from a batch read of ids_src. Sources first seen before `sinceNs` that
   * this reader has never seen (a restarted sensor) only set the baseline.
   */
  drain(keys: Buffer, values: Buffer, count: number, window: number, sinceNs: bigint, idleBeforeNs: bigint): SourceDrain {
    const windows: SourceWindow[] = [];
    const idleKeys: Buffer[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < count; i++) {
      const koff = i * ADDR_SIZE;
      const voff = i * SRC_STATS_SIZE;
      const id = keys.toString('latin1', koff, koff + ADDR_SIZE);
      const lastSeen = values.readBigUInt64LE(voff + SRC_OFFSETS.lastSeen);
      if (lastSeen < idleBeforeNs) {
        idleKeys.push(Buffer.from(keys.subarray(koff, koff + ADDR_SIZE)));
        continue;
      }
      seen.add(id);
      const now = readSrcCounters(values, voff);
      const before = this.previous.get(id);
      this.previous.set(id, now);
      const firstSeen = values.readBigUInt64LE(voff + SRC_OFFSETS.firstSeen);
      if (!before && firstSeen < sinceNs) continue;
      const delta = counterDeltas(now, before);
      if (delta.packets === 0) continue;
      const slot = readSrcWindow(values, voff, window);
      windows.push({
        src: keyToAddress(keys, koff),
        ...delta,
        distinctPorts: estimateDistinct(slot.portBits, PORT_BITS),
        distinctHosts: estimateDistinct(slot.hostBits, HOST_BITS),
        firstSeenMs: this.monoToWallMs(firstSeen),
      });
    }
    for (const id of this.previous.keys()) if (!seen.has(id)) this.previous.delete(id);
    return { windows, idleKeys };
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
