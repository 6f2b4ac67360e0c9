/**
 * What a sensor tells operators about itself, in Redis (the dashboard reads it through the
 * control API): its status (interface, attach mode, last tick, source-table fill, ring buffer
 * losses, drops by reason) and a short history of every tick's totals and top sources, which the
 * API pushes to open dashboards. Writes are best effort: Redis being away never slows the sensor.
 *
 * Keys (the sensor role's own, in the ledger's slot with the sensor's other keys, so that one
 * MGET or XREAD reads every sensor's on a Redis Cluster): `sensorKey(id, 'status')` (JSON; expires
 * when the sensor stops ticking, kept a while with `detachedMs` after a clean stop) and
 * `sensorKey(id, 'ticks')` (a stream of the newest TICKS_KEEP tick summaries). Sensors are listed
 * by the enforcer's LIVE_SENSORS index.
 */
import type { Logger } from 'pino';
import { connectRedis, type RedisClient, type RedisTarget } from '../common/redis';
import type { SensorSink, SensorTick } from '../common/sensor-tick';
import type { XdpMode } from '../native/bpf';
import { LIVE_SENSORS, sensorKey } from '../blocking/ledger';

const TICKS_KEEP = 600;
const TOP_SOURCES = 10;
/** A status outlives the sensor's last tick by this much (or ten windows, if longer). */
const STATUS_GRACE_MS = 30_000;
/** How long a cleanly stopped sensor's last status and history stay readable. */
const DETACHED_KEEP_MS = 10 * 60_000;

function statusKey(sensor: string): string {
  return sensorKey(sensor, 'status');
}

function ticksKey(sensor: string): string {
  return sensorKey(sensor, 'ticks');
}

/** The sensor id in a ticksKey. */
function sensorOfTicks(key: string): string {
  return key.slice(sensorKey('', 'ticks').length - ':ticks'.length, -':ticks'.length);
}

/** Kernel drop counters by reason (bpf/xdp_ids.h, ids_counter). */
export const DROP_REASONS = { blocked: 'drop_blocked', 'destination-limit': 'drop_dst_limit', unparsed: 'drop_unparsed' } as const;
export type DropReason = keyof typeof DROP_REASONS;

/** Packets the kernel dropped in a tick, every reason. */
export function dropsOf(globals: Readonly<Record<string, number>>): number {
  return Object.values(DROP_REASONS).reduce((sum, counter) => sum + (globals[counter] ?? 0), 0);
}

export interface SensorDescription {
  sensor: string;
  iface: string;
  mode: XdpMode;
  attachedMs: number;
  windowMs: number;
  /** Sources the kernel's table holds. */
  sourceCapacity: number;
}

export interface TopSource {
  src: string;
  packets: number;
  bytes: number;
  syn: number;
  ports: number;
}

/** One tick, as dashboards chart it. */
export interface TickSummary {
  sensor: string;
  endMs: number;
  /** The tick's length. */
  seconds: number;
  packets: number;
  bytes: number;
  drops: number;
  /** Sources active in the tick. */
  sources: number;
  top: TopSource[];
}

export interface SensorStatus extends SensorDescription {
  lastTickMs: number;
  /** Whether its kernel holds the block ledger: false until the enforcer's first re-sync after a start (or with no ledger to enforce). */
  ready: boolean;
  trackedSources: number;
  /** Since the sensor started. */
  totals: {
    packets: number;
    drops: Record<DropReason, number>;
    /** Ring buffer reservations that failed: header samples and trips lost. */
    ringBufferLosses: number;
    /** Events the kernel's per-source and global limits suppressed (by design, not a loss). */
    eventsLimited: number;
    untrackedPackets: number;
    evictedSources: number;
  };
  /** Set by a clean stop. */
  detachedMs?: number;
}

export function summarize(tick: SensorTick): TickSummary {
  const top = [...tick.sources].sort((a, b) => b.packets - a.packets).slice(0, TOP_SOURCES)
    .map((s) => ({ src: s.src, packets: s.packets, bytes: s.bytes, syn: s.syn, ports: s.distinctPorts }));
  return {
    sensor: tick.sensor, endMs: tick.endMs, seconds: Math.max(0.001, (tick.endMs - tick.startMs) / 1000), packets: tick.globals.packets ?? 0,
    bytes: tick.globals.bytes ?? 0, drops: dropsOf(tick.globals), sources: tick.sources.length, top,
  };
}

/** A sink beside the queue publisher; `describe` it once the sensor is attached. */
export class SensorStatusWriter implements SensorSink {
  private readonly redis: RedisClient;
  private description?: SensorDescription;
  private ready: () => boolean = () => false;
  private status?: SensorStatus;

  constructor(redisUrl: RedisTarget, private readonly log: Logger) {
    // Commands fail at once while Redis is away: a status is worth nothing once it is late.
    this.redis = connectRedis(redisUrl, { enableOfflineQueue: false });
    this.redis.on('error', () => undefined);
  }

  /** `ready`: whether the kernel holds the block ledger now (the enforcer has re-synced). */
  describe(description: SensorDescription, ready: () => boolean): void {
    this.description = description;
    this.ready = ready;
  }

  tick(tick: SensorTick): void {
    const d = this.description;
    if (!d) return;
    const g = tick.globals;
    const before = this.status?.totals;
    const drops = Object.fromEntries(Object.entries(DROP_REASONS).map(([reason, counter]) => [reason, (before?.drops[reason as DropReason] ?? 0) + (g[counter] ?? 0)])) as Record<DropReason, number>;
    this.status = {
      ...d, lastTickMs: tick.endMs, ready: this.ready(), trackedSources: tick.trackedSources,
      totals: {
        packets: (before?.packets ?? 0) + (g.packets ?? 0), drops,
        ringBufferLosses: (before?.ringBufferLosses ?? 0) + (g.ringbuf_full ?? 0),
        eventsLimited: (before?.eventsLimited ?? 0) + (g.events_limited ?? 0),
        untrackedPackets: (before?.untrackedPackets ?? 0) + tick.untracked.packets,
        evictedSources: (before?.evictedSources ?? 0) + tick.evictedSources,
      },
    };
    const keepMs = Math.max(STATUS_GRACE_MS, 10 * d.windowMs);
    this.redis.multi().set(statusKey(d.sensor), JSON.stringify(this.status), 'PX', keepMs)
      .xadd(ticksKey(d.sensor), 'MAXLEN', '~', TICKS_KEEP, '*', 's', JSON.stringify(summarize(tick)))
      .pexpire(ticksKey(d.sensor), DETACHED_KEEP_MS)
      .exec()
      .catch((err: Error) => this.log.debug({ err: err.message }, 'sensor status not written'));
  }

  trip(): void {}

  sample(): void {}

  /** Records the clean stop (the dashboard shows the sensor detached), then disconnects. */
  async close(): Promise<void> {
    if (this.status) {
      const stopped = { ...this.status, detachedMs: Date.now() };
      await this.redis.set(statusKey(stopped.sensor), JSON.stringify(stopped), 'PX', DETACHED_KEEP_MS).catch(() => undefined);
    }
    this.redis.disconnect();
  }
}

/** A sensor as the control API lists it: its status is gone when it stopped ticking without a clean stop. */
export interface SensorListing {
  sensor: string;
  /** When its enforcer last reported (the LIVE_SENSORS index). */
  seenMs: number;
  status?: SensorStatus;
}

/** Reads what the sensors write; a stream id cursor per sensor follows their ticks. */
export class SensorStatusReader {
  constructor(private readonly redis: RedisClient) {}

  async list(): Promise<SensorListing[]> {
    const flat = await this.redis.zrange(LIVE_SENSORS, '0', '-1', 'WITHSCORES');
    const sensors: { sensor: string; seenMs: number }[] = [];
    for (let i = 0; i < flat.length; i += 2) sensors.push({ sensor: flat[i], seenMs: Number(flat[i + 1]) });
    if (sensors.length === 0) return [];
    const texts = await this.redis.mget(sensors.map((s) => statusKey(s.sensor)));
    return sensors.map((s, i) => (texts[i] ? { ...s, status: JSON.parse(texts[i]!) as SensorStatus } : s));
  }

  /** Each sensor's newest `count` tick summaries, oldest first. */
  async history(sensors: readonly string[], count: number): Promise<TickSummary[]> {
    const pipeline = this.redis.pipeline();
    for (const sensor of sensors) pipeline.xrevrange(ticksKey(sensor), '+', '-', 'COUNT', count);
    const replies = (await pipeline.exec()) ?? [];
    return replies.flatMap(([, entries]) => (entries as [string, string[]][] ?? []).map(summaryOf)).sort((a, b) => a.endMs - b.endMs);
  }

  /**
   * Tick summaries after each sensor's cursor (a stream id; a sensor without one starts at
   * `fromMs`), and the cursors to pass next time.
   */
  async since(cursors: ReadonlyMap<string, string>, sensors: readonly string[], fromMs: number): Promise<{ summaries: TickSummary[]; cursors: Map<string, string> }> {
    const next = new Map(sensors.map((s) => [s, cursors.get(s) ?? `${fromMs}-0`]));
    if (next.size === 0) return { summaries: [], cursors: next };
    const reply = await this.redis.xread('COUNT', 100, 'STREAMS', ...[...next.keys()].map(ticksKey), ...next.values()) as [string, [string, string[]][]][] | null;
    const summaries: TickSummary[] = [];
    for (const [key, entries] of reply ?? []) {
      const sensor = sensorOfTicks(key);
      for (const entry of entries) summaries.push(summaryOf(entry));
      if (entries.length) next.set(sensor, entries[entries.length - 1][0]);
    }
    return { summaries: summaries.sort((a, b) => a.endMs - b.endMs), cursors: next };
  }
}

function summaryOf([, fields]: [string, string[]]): TickSummary {
  return JSON.parse(fields[fields.indexOf('s') + 1]) as TickSummary;
}
