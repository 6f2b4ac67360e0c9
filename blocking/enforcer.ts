/**
 * Runs inside the sensor: keeps the kernel's block and allow tries equal to the ledger. Ledger
 * broadcasts are applied as they arrive (milliseconds from decision to kernel); a full
 * reconciliation on start, after every Redis reconnect and periodically adds what is missing and
 * removes what is orphaned. Kernel entries carry the ledger's expiry, so while Redis is down the
 * kernel keeps enforcing exactly the blocks it has until they end, and nothing is removed for lack
 * of an answer.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { connectRedis, redactUrl, type RedisTarget } from '../common/redis';
import { monotonicNs, wallMsToMono } from '../sensor/clock';
import type { XdpIdsProgram } from '../sensor/kernel/program';
import { hostAllowRules, type HostAllowOptions } from './allowlist';
import { BlockLedger, CHANGES_CHANNEL, parseChange, type Change } from './ledger';
import { LimitLedger } from './limits';
import { AlertQueueNotices, type Notices } from './notices';

export interface EnforcerOptions {
  program: XdpIdsProgram;
  redisUrl: RedisTarget;
  sensorId: string;
  log: Logger;
  /** Default 10 s. */
  reconcileMs?: number;
  /** How long start waits for the first reconciliation before returning not ready (it keeps trying). Default 5 s. */
  readyTimeoutMs?: number;
  allow?: HostAllowOptions;
}

export interface ReconcileResult {
  rev: number;
  /** Repairs: entries the kernel lacked (or held with another expiry), and entries the ledger does not have. */
  added: number;
  removed: number;
}

export interface Enforcer {
  readonly ready: boolean;
  /** Also runs on its own; exposed for tests and the CLI. */
  reconcile(): Promise<ReconcileResult>;
  stop(): Promise<void>;
}

/** Kernel and ledger expiries are computed from different clock reads; closer than this is the same. */
const EXPIRY_TOLERANCE_NS = 50_000_000n;

function sameExpiry(a: bigint, b: bigint): boolean {
  return (a > b ? a - b : b - a) <= EXPIRY_TOLERANCE_NS;
}

class LedgerEnforcer implements Enforcer {
  ready = false;
  private readonly ledger: BlockLedger;
  private readonly limits: LimitLedger;
  private readonly subscriber: Redis;
  private readonly notices: Notices;
  /** Revision of the newest change applied per target, so a slower snapshot never undoes it. */
  private readonly changeRevs = new Map<string, number>();
  private snapshotRev = 0;
  private running?: Promise<ReconcileResult>;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly opts: EnforcerOptions, private readonly redis: Redis) {
    this.ledger = new BlockLedger(redis);
    this.limits = new LimitLedger(redis);
    this.notices = new AlertQueueNotices(redis);
    this.subscriber = connectRedis(opts.redisUrl);
    this.subscriber.on('message', (_channel: string, message: string) => this.onChange(message));
    this.subscriber.on('error', () => { /* reconnects on its own; the reconcile logs the outage */ });
    this.redis.on('error', () => { /* as above */ });
    let connectedBefore = false;
    this.subscriber.on('ready', () => {
      if (connectedBefore) this.reconcileQuietly('redis reconnected');
      connectedBefore = true;
    });
  }

  private get program(): XdpIdsProgram {
    return this.opts.program;
  }

  private applies(scope: string): boolean {
    return scope === 'all' || scope === this.opts.sensorId;
  }

  private onChange(message: string): void {
    let change: Change;
    try {
      change = parseChange(message);
    } catch (err) {
      this.opts.log.error({ err, message }, 'unreadable ledger change');
      return;
    }
    if (change.rev <= this.snapshotRev || change.rev <= (this.changeRevs.get(change.target) ?? 0)) return;
    this.changeRevs.set(change.target, change.rev);
    try {
      this.apply(change);
    } catch (err) {
      this.opts.log.error({ err, change }, 'could not apply a ledger change to the kernel');
    }
  }

  private apply(change: Change): void {
    switch (change.op) {
      case 'block':
        if (this.applies(change.scope)) this.program.addBlock(change.target, wallMsToMono(change.expiresMs));
        break;
      case 'unblock':
      case 'expire':
        this.program.deleteBlock(change.target);
        break;
      case 'allow':
        this.program.addAllow(change.target);
        break;
      case 'disallow':
        if (!this.localAllows().has(change.target)) this.program.deleteAllow(change.target);
        break;
      case 'limit':
        this.program.setDestinationLimit(change.target, { synPerSecond: change.synPerSecond, expiresNs: wallMsToMono(change.expiresMs) });
        break;
      case 'unlimit':
        this.program.deleteDestinationLimit(change.target);
        break;
    }
  }

  private localAllows(): Map<string, string> {
    return new Map(hostAllowRules(this.opts.allow).map((r) => [r.prefix.text, r.reason]));
  }

  async start(): Promise<void> {
    this.pushLocalAllows();
    const first = (async () => {
      await this.subscriber.subscribe(CHANGES_CHANNEL);
      await this.reconcile();
    })();
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), this.opts.readyTimeoutMs ?? 5000).unref());
    const outcome = await Promise.race([first.then(() => 'done' as const, (err: Error) => err), timeout]);
    if (outcome !== 'done') {
      this.opts.log.warn({ redis: redactUrl(this.opts.redisUrl), err: outcome === 'timeout' ? undefined : outcome },
        'block ledger unreachable: enforcing the kernel\'s existing blocks until their expiry, retrying');
      first.catch(() => undefined);
    }
    this.timer = setInterval(() => this.reconcileQuietly('periodic'), this.opts.reconcileMs ?? 10_000);
    this.timer.unref();
  }

  /** The host's own allow entries go to the kernel before anything else, Redis or not. */
  private pushLocalAllows(): void {
    for (const target of this.localAllows().keys()) this.program.addAllow(target);
  }

  private reconcileQuietly(why: string): void {
    this.reconcile().catch((err: Error) => this.opts.log.warn({ err: err.message, why }, 'reconciliation failed; kernel blocks stay until their expiry'));
  }

  reconcile(): Promise<ReconcileResult> {
    this.running ??= this.reconcileOnce().finally(() => { this.running = undefined; });
    return this.running;
  }

  private async reconcileOnce(): Promise<ReconcileResult> {
    const local = this.localAllows();
    await this.ledger.publishSensorAllows(this.opts.sensorId, [...local].map(([target, reason]) => ({ target, reason })));
    const snap = await this.ledger.snapshot();
    if (this.stopped) return { rev: snap.rev, added: 0, removed: 0 };
    const newer = (target: string): boolean => (this.changeRevs.get(target) ?? 0) > snap.rev;
    const now = monotonicNs();
    let added = 0;
    let removed = 0;

    const wanted = new Map(snap.blocks.filter((b) => this.applies(b.scope)).map((b) => [b.target, wallMsToMono(b.expiresMs)]));
    const inKernel = new Map(this.program.listBlocks().map((b) => [b.prefix, b]));
    for (const [prefix, entry] of inKernel) {
      if (wanted.has(prefix) || newer(prefix)) continue;
      this.program.deleteBlock(prefix);
      // An entry past its expiry is housekeeping, not a repair.
      if (entry.expiresNs === 0n || entry.expiresNs > now) removed++;
    }
    for (const [target, expiresNs] of wanted) {
      if (newer(target)) continue;
      const have = inKernel.get(target);
      if (have && sameExpiry(have.expiresNs, expiresNs)) continue;
      this.program.addBlock(target, expiresNs);
      added++;
    }

    const allowed = new Set([...local.keys(), ...snap.allows.map((a) => a.target)]);
    const allowsInKernel = new Set(this.program.listAllows().map((a) => a.prefix));
    for (const prefix of allowsInKernel) {
      if (!allowed.has(prefix) && !newer(prefix)) {
        this.program.deleteAllow(prefix);
        removed++;
      }
    }
    for (const target of allowed) {
      if (!allowsInKernel.has(target) && !newer(target)) {
        this.program.addAllow(target);
        added++;
      }
    }

    const repaired = this.reconcileLimits(await this.limits.list(), newer);
    added += repaired.added;
    removed += repaired.removed;

    this.snapshotRev = Math.max(this.snapshotRev, snap.rev);
    for (const [target, rev] of this.changeRevs) if (rev <= this.snapshotRev) this.changeRevs.delete(target);
    if (added || removed) this.opts.log.info({ added, removed, rev: snap.rev }, 'reconciled kernel with the block ledger');
    this.ready = true;

    const drops = Object.fromEntries(this.program.listBlocks().map((b) => [b.prefix, b.drops]));
    await this.ledger.recordSensorState(this.opts.sensorId, { added, removed }, drops);
    await this.announceExpired();
    return { rev: snap.rev, added, removed };
  }

  /** Destination SYN limits, like blocks: the ledger's live ones with its expiry, nothing else. */
  private reconcileLimits(wanted: Awaited<ReturnType<LimitLedger['list']>>, newer: (target: string) => boolean): { added: number; removed: number } {
    let added = 0;
    let removed = 0;
    const byTarget = new Map(wanted.map((l) => [l.target, l]));
    const inKernel = new Map(this.program.listDestinationLimits().map((l) => [l.address, l]));
    for (const address of inKernel.keys()) {
      if (byTarget.has(address) || newer(address)) continue;
      this.program.deleteDestinationLimit(address);
      removed++;
    }
    for (const [target, limit] of byTarget) {
      if (newer(target)) continue;
      const expiresNs = wallMsToMono(limit.expiresMs);
      const have = inKernel.get(target);
      if (have && sameExpiry(have.expiresNs, expiresNs) && have.synPerSecond === limit.synPerSecond) continue;
      this.program.setDestinationLimit(target, { synPerSecond: limit.synPerSecond, expiresNs });
      added++;
    }
    return { added, removed };
  }

  private async announceExpired(): Promise<void> {
    const expired = [
      ...(await this.ledger.sweepExpired()).map((e) => ({ ...e, action: 'block' as const, synPerSecond: undefined })),
      ...(await this.limits.sweepExpired()).map((e) => ({ ...e, action: 'syn-limit' as const })),
    ];
    for (const e of expired) {
      await this.notices.send({
        kind: 'block', action: e.action, phase: 'expired', target: e.target, origin: e.origin ?? 'manual', ruleId: e.ruleId, incidentId: e.incidentId,
        expiresMs: e.expiresMs, reason: e.reason, synPerSecond: e.synPerSecond,
      }).catch((err: Error) => this.opts.log.error({ err: err.message, target: e.target }, 'could not queue an expiry notice'));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.subscriber.disconnect();
    await this.running?.catch(() => undefined);
    await this.notices.close().catch(() => undefined);
    this.redis.disconnect();
  }
}

/** Starts enforcing the ledger at `program`; resolves once resynced (ready), or after readyTimeoutMs if Redis does not answer. */
export async function startEnforcer(opts: EnforcerOptions): Promise<Enforcer> {
  // Commands fail within a second while Redis is down, so a reconciliation never hangs.
  const enforcer = new LedgerEnforcer(opts, connectRedis(opts.redisUrl, { maxRetriesPerRequest: 1 }));
  await enforcer.start();
  return enforcer;
}
