/**
 * Whether a case's traffic reached the sensor, from the sensor's own windows: the packets of the
 * case's known sources (its host, its forged addresses, its capture's source prefix) and the
 * SYN/UDP/ICMP packets the kernel counted towards its protected address from any source (forged
 * random sources included). SYN-ACKs and other packets from random forged sources are neither:
 * for those cases the kernel's global packet count over the traffic's windows stands in (cases
 * send one at a time). A case that "detects nothing" without its traffic arriving is an error,
 * not a miss.
 */
import ipaddr from 'ipaddr.js';
import type { SensorSink, SensorTick } from '../../common/sensor-tick';

export interface Arrivals {
  /** Packets of the case's known sources that the sensor counted (blocked ones are counted by the block's drops instead). */
  sourcePackets: number;
  /** SYN, UDP and ICMP packets to the case's protected address, from any source. */
  destinationPackets: number;
  /** The most of either in one window. */
  peakPerWindow: number;
  /** The sensor's counters of those sources and of the protected address, summed over the case's windows: what rules could see. */
  sourceCounters: Record<string, number>;
  destinationCounters: Record<string, number>;
}

function addCounters(into: Record<string, number>, window: object, skip: string[]): void {
  for (const [name, value] of Object.entries(window)) {
    if (typeof value === 'number' && !skip.includes(name)) into[name] = (into[name] ?? 0) + value;
  }
}

interface Watched {
  sources: Set<string>;
  prefix?: [ipaddr.IPv4 | ipaddr.IPv6, number];
  target: string;
  arrivals: Arrivals;
}

export class ArrivalCounter implements SensorSink {
  private readonly watched = new Map<string, Watched>();
  private readonly bySource = new Map<string, Watched>();
  private readonly byTarget = new Map<string, Watched>();
  /** Every window's global packet count. */
  private readonly timeline: { startMs: number; endMs: number; packets: number }[] = [];
  private waiting: (() => void)[] = [];

  /** Counts from now on for `id`, until forget(id). */
  watch(id: string, opts: { sources: string[]; prefix?: string; target: string }): Arrivals {
    const w: Watched = {
      sources: new Set(opts.sources), prefix: opts.prefix ? ipaddr.parseCIDR(opts.prefix) : undefined, target: opts.target,
      arrivals: { sourcePackets: 0, destinationPackets: 0, peakPerWindow: 0, sourceCounters: {}, destinationCounters: {} },
    };
    this.watched.set(id, w);
    for (const s of opts.sources) this.bySource.set(s, w);
    this.byTarget.set(opts.target, w);
    return w.arrivals;
  }

  forget(id: string): void {
    const w = this.watched.get(id);
    if (!w) return;
    this.watched.delete(id);
    for (const s of w.sources) if (this.bySource.get(s) === w) this.bySource.delete(s);
    if (this.byTarget.get(w.target) === w) this.byTarget.delete(w.target);
  }

  /** Resolves at the sensor's next window (whether or not Redis takes it). */
  nextTick(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Packets the kernel saw in the windows that overlap [fromMs, toMs], and the most in one of them. */
  globalPackets(fromMs: number, toMs: number): { packets: number; peakPerWindow: number } {
    const windows = this.timeline.filter((w) => w.endMs > fromMs && w.startMs < toMs);
    return { packets: windows.reduce((n, w) => n + w.packets, 0), peakPerWindow: Math.max(0, ...windows.map((w) => w.packets)) };
  }

  tick(tick: SensorTick): void {
    this.timeline.push({ startMs: tick.startMs, endMs: tick.endMs, packets: tick.globals.packets ?? 0 });
    for (const resolve of this.waiting.splice(0)) resolve();
    const perWindow = new Map<Watched, { src: number; dst: number }>();
    const window = (w: Watched) => perWindow.get(w) ?? perWindow.set(w, { src: 0, dst: 0 }).get(w)!;
    const prefixed = [...this.watched.values()].filter((w) => w.prefix);
    for (const s of tick.sources) {
      const w = this.bySource.get(s.src) ?? (prefixed.length ? this.inPrefix(prefixed, s.src) : undefined);
      if (!w) continue;
      w.arrivals.sourcePackets += s.packets;
      addCounters(w.arrivals.sourceCounters, s, ['firstSeenMs']);
      window(w).src += s.packets;
    }
    for (const d of tick.destinations) {
      const w = this.byTarget.get(d.dst);
      if (!w) continue;
      const packets = d.syn + d.udp + d.icmp;
      w.arrivals.destinationPackets += packets;
      addCounters(w.arrivals.destinationCounters, d, []);
      window(w).dst += packets;
    }
    for (const [w, n] of perWindow) w.arrivals.peakPerWindow = Math.max(w.arrivals.peakPerWindow, n.src, n.dst);
  }

  trip(): void {}

  sample(): void {}

  private inPrefix(prefixed: Watched[], src: string): Watched | undefined {
    let address: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      address = ipaddr.parse(src);
    } catch {
      return undefined;
    }
    return prefixed.find((w) => w.prefix![0].kind() === address.kind() && address.match(w.prefix!));
  }
}
