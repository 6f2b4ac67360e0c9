/**
 * The sensor daemon: attaches the XDP program to one interface, and at every window boundary
 * turns the kernel's counters into a SensorTick; trips and samples are forwarded as soon as the
 * ring buffer delivers them. A tripped source is followed until its window ends: its counts so
 * far go out again every FOLLOW_MS while they grow, so a flood whose rule needs more than the
 * trip's count (e.g. 900 SYNs in 3 s) is judged when it gets there, not at the window's end.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import type { SensorSink, SensorTick, SourceWindow, Trip, TripKind } from '../common/sensor-tick';
import { addressKey, parsePrefix } from './addresses';
import type { RingBuffer, XdpMode } from '../native/bpf';
import { monoToWallMs, monotonicNs } from './clock';
import { XdpIdsProgram, type MapSizes } from './kernel/program';
import { HOST_BITS, PORT_BITS, decodeEvent } from './kernel/records';
import { estimateDistinct, expectedBits } from './sketch';
import type { SensorMetrics } from './metrics';
import { DestinationWindows, SourceWindows, counterDeltas } from './windows';
import type { SensorDescription } from './status';

export interface SensorOptions {
  iface: string;
  sensorId?: string;
  mode?: XdpMode | 'auto';
  windowMs?: number;
  /** Sources silent for this long are removed from the kernel map. */
  idleSeconds?: number;
  /** Fast-path trips per source per window; 0 turns one off. */
  trip?: { syn?: number; ports?: number; hosts?: number };
  events?: { perSourcePerWindow?: number; perSecondPerCpu?: number; burst?: number; sampleNewEvery?: number };
  /** New sources admitted per second per CPU; the rest are counted as untracked. */
  inserts?: { perSecondPerCpu?: number; burst?: number };
  sizes?: MapSizes;
  /** Pin maps under /sys/fs/bpf/xdp-ids/<iface> (default); off for throwaway runs. */
  pin?: boolean;
  /**
   * Protected prefixes (like Suricata's HOME_NET): only traffic towards them is judged. Default:
   * this host's own addresses, followed as they change.
   */
  protect?: string[];
  /** Drop frames encapsulated deeper than the program parses while blocks are in force (default true). */
  dropUnparsed?: boolean;
  metrics?: SensorMetrics;
}

/** How often the host's own addresses are looked at again when they are the protected set. */
const PROTECT_REFRESH_MS = 10_000;

/** This host's addresses, each as a host prefix. */
export function ownAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((addrs) => addrs ?? [])
    .map((a) => `${a.address.replace(/%.*$/, '')}/${a.family === 'IPv4' ? 32 : 128}`);
}

/** The kernel stamps with the coarse clock, up to one jiffy (4 ms at HZ=250) behind ours. */
const GRACE_MS = 10;
const COARSE_CLOCK_SLACK_NS = 10_000_000n;

const FOLLOW_MS = 100;
/** Bounds the follow-up reads (one map lookup each) under a flood of tripping sources. */
const MAX_FOLLOWED = 256;

/** The kernel counts fan-out in sketch bits; people and rules think in distinct ports and hosts. */
function tripValues(kind: TripKind, value: number, threshold: number): { value: number; threshold: number } {
  if (kind === 'syn') return { value, threshold };
  const m = kind === 'ports' ? PORT_BITS : HOST_BITS;
  return { value: estimateDistinct(value, m), threshold: estimateDistinct(threshold, m) };
}

function ifindexOf(iface: string): number {
  if (!/^[\w.:@-]{1,15}$/.test(iface)) throw new RangeError(`not an interface name: ${JSON.stringify(iface)}`);
  try {
    return Number(fs.readFileSync(`/sys/class/net/${iface}/ifindex`, 'utf8'));
  } catch {
    throw new RangeError(`no such network interface: ${iface}`);
  }
}

export class Sensor {
  readonly sensorId: string;
  readonly mode: XdpMode;
  readonly attachedMs = Date.now();
  readonly windowMs: number;
  private readonly windowNs: bigint;
  private readonly sources = new SourceWindows();
  private readonly destinations = new DestinationWindows();
  private previousGlobals?: Record<string, number>;
  private previousUntracked?: ReturnType<XdpIdsProgram['readUntracked']>;
  private lastTickNs: bigint;
  private timer?: NodeJS.Timeout;
  private ring?: RingBuffer;
  private stopped = false;
  /** Tripped sources of the current window, with the packets their last report had. */
  private readonly followed = new Map<string, { trip: Trip; packets: number }>();
  private follower?: NodeJS.Timeout;
  private protectTimer?: NodeJS.Timeout;

  private constructor(readonly program: XdpIdsProgram, private readonly opts: SensorOptions, mode: XdpMode,
    private readonly sink: SensorSink, private readonly log: Logger) {
    this.sensorId = opts.sensorId ?? os.hostname();
    this.mode = mode;
    this.windowMs = opts.windowMs ?? 1000;
    this.windowNs = BigInt(this.windowMs) * 1_000_000n;
    this.lastTickNs = monotonicNs();
    this.previousGlobals = program.readGlobals();
    opts.metrics?.watch(program);
  }

  static start(opts: SensorOptions, sink: SensorSink, log: Logger): Sensor {
    const ifindex = ifindexOf(opts.iface);
    const program = XdpIdsProgram.open({ pinName: opts.pin === false ? undefined : opts.iface, sizes: opts.sizes });
    let sensor: Sensor;
    try {
      program.setConfig({
        windowNs: BigInt(opts.windowMs ?? 1000) * 1_000_000n,
        tripSyn: opts.trip?.syn ?? 200,
        tripPortBits: expectedBits(opts.trip?.ports ?? 100, PORT_BITS),
        tripHostBits: expectedBits(opts.trip?.hosts ?? 64, HOST_BITS),
        eventsPerSrcWindow: opts.events?.perSourcePerWindow ?? 8,
        eventRate: opts.events?.perSecondPerCpu ?? 2000,
        eventBurst: opts.events?.burst ?? 500,
        insertRate: opts.inserts?.perSecondPerCpu ?? 50_000,
        insertBurst: opts.inserts?.burst ?? 10_000,
        sampleNewEvery: opts.events?.sampleNewEvery ?? 64,
        dropUnparsed: opts.dropUnparsed ?? true,
      });
      program.setProtected(opts.protect ?? ownAddresses());
      const mode = program.attach(ifindex, opts.mode ?? 'auto');
      sensor = new Sensor(program, opts, mode, sink, log);
    } catch (err) {
      program.close();
      throw err;
    }
    sensor.ring = program.subscribe((records) => sensor.forwardEvents(records));
    log.info({ iface: opts.iface, mode: sensor.mode, pinDir: program.pinDir, protect: program.listProtected() }, 'sensor attached');
    sensor.scheduleTick();
    if (!opts.protect) sensor.followOwnAddresses();
    return sensor;
  }

  private forwardEvents(records: Buffer[]): void {
    for (const record of records) {
      const event = decodeEvent(record, monoToWallMs);
      if (!event) continue;
      if (event.type === 'trip') {
        const trip: Trip = {
          sensor: this.sensorId, kind: event.kind, src: event.packet.src, window: event.window, ...tripValues(event.kind, event.value, event.threshold),
          packet: event.packet, sofar: this.sofar(event.packet.src, event.window),
        };
        this.send(trip);
        this.follow(trip);
      } else {
        Promise.resolve(this.sink.sample({ sensor: this.sensorId, reason: event.reason, packet: event.packet })).catch((err) => this.log.error({ err }, 'sink rejected an event'));
      }
    }
  }

  private send(trip: Trip): void {
    Promise.resolve(this.sink.trip(trip)).catch((err) => this.log.error({ err }, 'sink rejected an event'));
  }

  private follow(trip: Trip): void {
    if (!trip.sofar) return;
    // A source still followed from the window before trips again in the new one: follow the new one.
    const current = this.followed.get(trip.src);
    if (current ? current.trip.window === trip.window : this.followed.size >= MAX_FOLLOWED) return;
    this.followed.set(trip.src, { trip, packets: trip.sofar.packets });
    this.follower ??= setInterval(() => this.followUp(), FOLLOW_MS);
    this.follower.unref?.();
  }

  private followUp(): void {
    const window = Number((monotonicNs() / this.windowNs) & 0xffffffffn);
    for (const [src, f] of this.followed) {
      const sofar = f.trip.window === window ? this.sofar(src, window) : undefined;
      if (!sofar) {
        this.followed.delete(src);
        continue;
      }
      // A blocked source stops growing (XDP drops it before counting): nothing more to say.
      if (sofar.packets <= f.packets) continue;
      f.packets = sofar.packets;
      this.send({ ...f.trip, sofar });
    }
    if (this.followed.size === 0) {
      clearInterval(this.follower);
      this.follower = undefined;
    }
  }

  private sofar(src: string, window: number): SourceWindow | undefined {
    const value = this.program.lookupSource(src);
    return value && this.sources.sinceLastDrain(addressKey(src), value, window, Date.now() - Number(monotonicNs()) / 1e6);
  }

  private followOwnAddresses(): void {
    const canonical = (cidrs: string[]): string => cidrs.map((c) => parsePrefix(c).text).sort().join(',');
    this.protectTimer = setInterval(() => {
      const own = ownAddresses();
      if (canonical(own) === canonical(this.program.listProtected())) return;
      this.program.setProtected(own);
      this.log.info({ protect: this.program.listProtected() }, 'protected addresses changed');
    }, PROTECT_REFRESH_MS);
    this.protectTimer.unref();
  }

  private scheduleTick(): void {
    if (this.stopped) return;
    const now = monotonicNs();
    const next = (now / this.windowNs + 1n) * this.windowNs;
    this.timer = setTimeout(() => {
      try {
        const startedNs = monotonicNs();
        const tick = this.collect();
        this.opts.metrics?.drained(Number(monotonicNs() - startedNs) / 1e9, tick);
        Promise.resolve(this.sink.tick(tick)).catch((err) => this.log.error({ err }, 'sink rejected a tick'));
      } catch (err) {
        this.log.error({ err }, 'tick failed');
      }
      this.scheduleTick();
    }, Number(next - now) / 1e6 + GRACE_MS);
    this.timer.unref?.();
  }

  /** What operators see of this sensor besides its ticks (sensor/status.ts). */
  description(): SensorDescription {
    return { sensor: this.sensorId, iface: this.opts.iface, mode: this.mode, attachedMs: this.attachedMs, windowMs: this.windowMs, sourceCapacity: this.program.sourceCapacity };
  }

  /** Reads the kernel maps once and returns the window that just ended. */
  collect(): SensorTick {
    const now = monotonicNs();
    const window = Number((now / this.windowNs - 1n) & 0xffffffffn);
    const idleBefore = now - BigInt(this.opts.idleSeconds ?? 120) * 1_000_000_000n;
    // Before the sources: every insert it counts is then either in the batch or evicted (SourceDrain.evicted).
    const globalsNow = this.program.readGlobals();
    const globals: Record<string, number> = {};
    for (const [name, value] of Object.entries(globalsNow)) globals[name] = value - (this.previousGlobals?.[name] ?? value);
    this.previousGlobals = globalsNow;
    const src = this.program.readSources();
    const drained = this.sources.drain(src.keys, src.values, src.count, window, this.lastTickNs - COARSE_CLOCK_SLACK_NS, idleBefore,
      Date.now() - Number(monotonicNs()) / 1e6, globals.new_sources);
    this.program.deleteSources(drained.idleKeys);
    const dst = this.program.readDestinations();
    const destinations = this.destinations.drain(dst.keys, dst.values, dst.count, window);
    const untrackedNow = this.program.readUntracked();
    const untracked = counterDeltas(untrackedNow, this.previousUntracked ?? untrackedNow);
    this.previousUntracked = untrackedNow;
    const startMs = monoToWallMs(this.lastTickNs);
    this.lastTickNs = now;
    return {
      sensor: this.sensorId, iface: this.opts.iface, window, startMs, endMs: monoToWallMs(now),
      sources: drained.windows, destinations, untracked, globals, trackedSources: src.count - drained.idleKeys.length, evictedSources: drained.evicted,
    };
  }

  /** Stops ticking; detaches unless told to leave the program enforcing blocks (pins stay either way). */
  stop(opts: { detach?: boolean } = {}): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.follower);
    clearInterval(this.protectTimer);
    this.ring?.close();
    if (opts.detach !== false) this.program.detach();
    this.program.close();
    this.log.info({ iface: this.opts.iface, detached: opts.detach !== false }, 'sensor stopped');
  }
}
