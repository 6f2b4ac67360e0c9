/**
 * What the pipeline did, as it happened: every incident event, every block and limit the ledger
 * decided (read after each change hint, as the enforcers do), and the kernel's
 * per-entry drop counters polled every few milliseconds, so that the first drop of each block or
 * limit is timed without assuming when the attacker stops sending.
 */
import { connectRedis, type RedisClient } from '../../common/redis';
import type { IncidentEvent } from '../../common/alert-events';
import { CHANGES_CHANNEL, parseHint } from '../../blocking/ledger';
import { TRAFFIC_CLASSES, type TrafficClass } from '../../common/traffic';
import type { Pipeline } from './pipeline';

export interface SeenBlock {
  target: string;
  ruleId?: string;
  incidentId?: string;
  createdMs: number;
  /** The latest expiry announced (an extension moves it). */
  expiresMs: number;
  /** expiresMs − createdMs when first seen: the TTL the ledger gave. */
  ttlMs: number;
  strikes?: number;
}

export interface SeenLimit {
  target: string;
  traffic: TrafficClass;
  perSecond: number;
  ruleId?: string;
  incidentId?: string;
  createdMs: number;
  expiresMs: number;
  ttlMs: number;
}

export interface KernelDrops {
  drops: number;
  firstDropMs?: number;
}

const KERNEL_POLL_MS = 20;

export class ResponseObserver {
  readonly incidents: IncidentEvent[] = [];
  readonly blocks: SeenBlock[] = [];
  readonly limits: SeenLimit[] = [];
  /** By kernel prefix (blocks) and address (limits); counts add up across an entry's removal and return. */
  readonly blockDrops = new Map<string, KernelDrops>();
  readonly limitDrops = new Map<string, KernelDrops>();
  private readonly lastKernel = new Map<string, number>();
  private subscriber?: RedisClient;
  private poller?: NodeJS.Timeout;
  private pending = Promise.resolve();
  private pipeline?: Pipeline;

  readonly onIncident = (event: IncidentEvent): void => {
    this.incidents.push(event);
  };

  async start(pipeline: Pipeline): Promise<void> {
    this.pipeline = pipeline;
    this.subscriber = connectRedis(pipeline.redisUrl);
    this.subscriber.on('message', (_channel: string, message: string) => {
      // In order, so an extension never overtakes the block it extends.
      this.pending = this.pending.then(() => this.record(message)).catch(() => undefined);
    });
    await this.subscriber.subscribe(CHANGES_CHANNEL);
    this.poller = setInterval(() => this.pollKernel(), KERNEL_POLL_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.poller);
    this.pollKernel();
    await this.pending;
    this.subscriber?.disconnect();
  }

  private async record(message: string): Promise<void> {
    const target = parseHint(message);
    if (target === undefined) return;
    if (target.includes('/')) {
      const entry = await this.pipeline!.ledger.get(target);
      if (!entry) return;
      const known = this.blocks.find((b) => b.target === entry.target && b.createdMs === entry.createdMs);
      if (known) known.expiresMs = Math.max(known.expiresMs, entry.expiresMs);
      else this.blocks.push({
        target: entry.target, ruleId: entry.ruleId, incidentId: entry.incidentId, createdMs: entry.createdMs,
        expiresMs: entry.expiresMs, ttlMs: entry.expiresMs - entry.createdMs, strikes: entry.strikes,
      });
      return;
    }
    for (const entry of (await this.pipeline!.limits.ofTargets([target], TRAFFIC_CLASSES)).get(target) ?? []) {
      const known = this.limits.find((l) => l.target === entry.target && l.traffic === entry.traffic && l.createdMs === entry.createdMs);
      if (known) known.expiresMs = Math.max(known.expiresMs, entry.expiresMs);
      else this.limits.push({
        target: entry.target, traffic: entry.traffic, perSecond: entry.perSecond, ruleId: entry.ruleId, incidentId: entry.incidentId,
        createdMs: entry.createdMs, expiresMs: entry.expiresMs, ttlMs: entry.expiresMs - entry.createdMs,
      });
    }
  }

  private pollKernel(): void {
    const program = this.pipeline!.program;
    const now = Date.now();
    for (const b of program.listBlocks()) this.count(this.blockDrops, `block ${b.prefix}`, b.prefix, b.drops, now);
    for (const l of program.listDestinationLimits()) this.count(this.limitDrops, `limit ${l.address}`, l.address, l.drops, now);
  }

  /** A kernel entry that was removed and added again starts from zero: count what it added since the last poll. */
  private count(into: Map<string, KernelDrops>, entryKey: string, key: string, drops: number, now: number): void {
    const last = this.lastKernel.get(entryKey) ?? 0;
    const added = drops >= last ? drops - last : drops;
    this.lastKernel.set(entryKey, drops);
    if (added === 0) return;
    const seen = into.get(key) ?? { drops: 0 };
    seen.drops += added;
    seen.firstDropMs ??= now;
    into.set(key, seen);
  }
}
