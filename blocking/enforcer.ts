/**
 * Runs inside the sensor: keeps the kernel's block, allow and limit tables equal to what the
 * ledger holds, as far as it is valid (kernel-policy.ts). A message on the changes channel only
 * names a target to look at again: the enforcer reads that target's entries from the ledger and
 * applies them (milliseconds from decision to kernel), so a forged message can change nothing. A
 * full reconciliation on start, after every Redis reconnect and periodically adds what is
 * missing and removes what the ledger does not hold.
 *
 * Kernel entries carry the ledger's expiry, so while Redis is down the kernel keeps enforcing
 * exactly what it has until each entry ends. When Redis comes back without the ledger (restart
 * without persistence, failover to a stale replica: a new generation, or an older revision), the
 * entries the kernel holds are kept until their own expiry (marked retained) instead of being
 * dropped as orphans, and operators get an exception event.
 */
import { createHash } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { ALERTS_QUEUE, type AlertEvent } from '../common/alert-events';
import { ExceptionReporter } from '../common/exceptions';
import { connectRedis, redactUrl, type RedisTarget, type RedisClient } from '../common/redis';
import { TRAFFIC_CLASSES, type TrafficClass } from '../common/traffic';
import { monotonicNs, wallMsToMono } from '../sensor/clock';
import type { XdpIdsProgram } from '../sensor/kernel/program';
import { MAX_EPOCH_BYTES } from '../sensor/kernel/records';
import { BpfError } from '../native/bpf';
import { hostAllowRules, type AllowRule, type HostAllowOptions } from './allowlist';
import { DEFAULT_MAX_TTL_MS } from './blocker';
import type { EnforcerMetrics } from './enforcer-metrics';
import { allowProblem, blockProblem, limitProblem, type KernelPolicy } from './kernel-policy';
import { BlockLedger, CHANGES_CHANNEL, generationChanged, parseHint, type AllowEntry, type Generation, type LedgerEntry, type TargetState } from './ledger';
import { LimitLedger, type LimitEntry } from './limits';
import { normalizeTarget } from './targets';
import { widthLimitsFromEnv } from './widths';

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
  policy?: Partial<KernelPolicy>;
  metrics?: EnforcerMetrics;
}

export interface ReconcileResult {
  rev: number;
  /** Repairs: entries the kernel lacked (or held with another expiry), and entries the ledger does not have. */
  added: number;
  removed: number;
  /** Ledger entries not let into the kernel (kernel-policy.ts), and kernel writes that failed (a full table). */
  refused: number;
  failed: number;
  /** Entries kept from an earlier ledger generation until their own expiry. */
  retained: number;
}

export interface Enforcer {
  readonly ready: boolean;
  /** Also runs on its own; exposed for tests and the CLI. */
  reconcile(): Promise<ReconcileResult>;
  stop(): Promise<void>;
}

/** Kernel and ledger expiries are computed from different clock reads; closer than this is the same. */
const EXPIRY_TOLERANCE_NS = 50_000_000n;
/** Hints waiting past this many mean a flood of them (forged or not): one full reconciliation answers them all. */
const MAX_PENDING_HINTS = 2000;
const HINT_BATCH = 500;
const LOCAL_ALLOWS_MAX_AGE_MS = 1000;
const UNREADABLE = 'its entry is not a JSON object';

/** The generation as the kernel's mark holds it: a writer's epoch (a UUID) as is, a longer one (no writer's) by its digest. */
function kernelEpoch(epoch: string): string {
  return Buffer.byteLength(epoch) <= MAX_EPOCH_BYTES ? epoch : `sha256:${createHash('sha256').update(epoch).digest('hex').slice(0, MAX_EPOCH_BYTES - 7)}`;
}

function sameExpiry(a: bigint, b: bigint): boolean {
  return (a > b ? a - b : b - a) <= EXPIRY_TOLERANCE_NS;
}

function live(expiresNs: bigint, nowNs: bigint): boolean {
  return expiresNs === 0n || expiresNs > nowNs;
}

/** The kernel's name for a limit: address and traffic class. */
function limitKey(address: string, traffic: TrafficClass): string {
  return `${traffic}|${address}`;
}

type KernelLimit = ReturnType<XdpIdsProgram['listDestinationLimits']>[number];

/** The kernel's tables as read once for a reconciliation or a batch of hints. */
class Kernel {
  readonly blocks: Map<string, ReturnType<XdpIdsProgram['listBlocks']>[number]>;
  readonly allows: Map<string, ReturnType<XdpIdsProgram['listAllows']>[number]>;
  readonly limits: Map<string, KernelLimit>;

  constructor(program: XdpIdsProgram) {
    this.blocks = new Map(program.listBlocks().map((b) => [b.prefix, b]));
    this.allows = new Map(program.listAllows().map((a) => [a.prefix, a]));
    this.limits = new Map(program.listDestinationLimits().map((l) => [limitKey(l.address, l.traffic), l]));
  }
}

/** One reconciliation's or hint batch's counts. */
class Tally {
  added = 0;
  removed = 0;
  refused = 0;
  failed = 0;
  readonly failures: string[] = [];
}

class LedgerEnforcer implements Enforcer {
  ready = false;
  private readonly ledger: BlockLedger;
  private readonly limits: LimitLedger;
  private readonly subscriber: RedisClient;
  private readonly alerts: Queue<AlertEvent>;
  private readonly exceptions: ExceptionReporter;
  private readonly policy: KernelPolicy;
  /** The configured allow entries as last read from the ledger (the blocks they cover stay out of the kernel). */
  private configuredAllows = new Map<string, AllowEntry>();
  private local?: { atMs: number; allows: Map<string, string> };
  private readonly pending = new Set<string>();
  private resyncWanted = false;
  /** The revision and generation the last reconciliation read. */
  private lastRead?: Generation;
  private draining = false;
  private running?: Promise<ReconcileResult>;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly opts: EnforcerOptions, private readonly redis: RedisClient) {
    this.ledger = new BlockLedger(redis);
    this.limits = new LimitLedger(redis);
    this.alerts = new Queue(ALERTS_QUEUE, { connection: redis });
    this.alerts.on('error', () => undefined);
    this.exceptions = new ExceptionReporter(this.alerts, `sensor@${opts.sensorId}`, opts.log);
    this.policy = { widths: widthLimitsFromEnv(), maxTtlMs: DEFAULT_MAX_TTL_MS, clockSlackMs: 60_000, ...opts.policy };
    opts.metrics?.watch(opts.program);
    this.subscriber = connectRedis(opts.redisUrl);
    this.subscriber.on('message', (_channel: string, message: string) => this.onHint(message));
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

  private applies(entry: LedgerEntry): boolean {
    return entry.scope === 'all' || entry.scope === this.opts.sensorId;
  }

  /**
   * Reading the host's addresses, routes, resolvers and SSH sessions costs milliseconds, most of a
   * hint's way to the kernel; a second-old answer is as good for a burst of hints.
   */
  private localAllows(): Map<string, string> {
    const nowMs = Date.now();
    if (!this.local || nowMs - this.local.atMs >= LOCAL_ALLOWS_MAX_AGE_MS) {
      this.local = { atMs: nowMs, allows: new Map(hostAllowRules(this.opts.allow).map((r) => [r.prefix.text, r.reason])) };
    }
    return this.local.allows;
  }

  /** Every allow entry this sensor keeps: its own host's, and the configured ones it accepted. */
  private allowRules(local: Map<string, string>): AllowRule[] {
    const rules: AllowRule[] = [...local].map(([text, reason]) => ({ prefix: normalizeTarget(text, { keepExplicitV6Host: true }), reason }));
    for (const a of this.configuredAllows.values()) rules.push({ prefix: normalizeTarget(a.target, { keepExplicitV6Host: true }), reason: a.reason });
    return rules;
  }

  private onHint(message: string): void {
    const target = parseHint(message);
    // A reconciliation that has yet to read the ledger covers this hint too.
    if (target === undefined || this.resyncWanted) return;
    if (this.pending.size >= MAX_PENDING_HINTS) {
      this.pending.clear();
      this.resyncWanted = true;
    } else {
      this.pending.add(target);
    }
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => void this.drain());
    }
  }

  /** Follows the hints: reads what the ledger says of each target now, and applies that. */
  private async drain(): Promise<void> {
    let reconciled = false;
    try {
      while (!this.stopped && (this.pending.size > 0 || this.resyncWanted)) {
        await this.running?.catch(() => undefined);
        if (this.resyncWanted) {
          this.resyncWanted = false;
          // A flood that outlasts its reconciliation needs another only if the ledger changed since that one read it.
          if (!reconciled || await this.ledgerMoved()) await this.reconcile();
          reconciled = true;
          continue;
        }
        const batch = [...this.pending].slice(0, HINT_BATCH);
        for (const t of batch) this.pending.delete(t);
        await this.follow(batch);
      }
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'could not follow ledger hints; the next reconciliation repairs the kernel');
    } finally {
      this.draining = false;
    }
  }

  private async ledgerMoved(): Promise<boolean> {
    const { epoch, rev } = await this.ledger.generation();
    return rev !== this.lastRead?.rev || epoch !== this.lastRead.epoch;
  }

  /** Block and allow targets are prefixes (`198.18.0.66/32`), limit targets addresses (`198.18.0.1`). */
  private async follow(targets: string[]): Promise<void> {
    const prefixes = targets.filter((t) => t.includes('/'));
    const addresses = targets.filter((t) => !t.includes('/'));
    const states = await this.ledger.targetStates(prefixes);
    const limits = await this.limits.ofTargets(addresses, TRAFFIC_CLASSES);
    // Read after the states, so a ledger lost before they were read shows here.
    const generation = await this.ledger.generation();
    if (this.stopped) return;
    if (generationChanged(this.program.ledgerMark(), { ...generation, epoch: kernelEpoch(generation.epoch) })) {
      // A lost entry is no removal: the reconciliation keeps what the kernel holds (retained), and covers these targets.
      await this.reconcile();
      return;
    }
    const local = this.localAllows();
    const tally = new Tally();
    const kernel = new Kernel(this.program);
    for (const target of prefixes) this.followAllow(target, states.get(target)!, local, kernel, tally);
    const allowRules = this.allowRules(local);
    for (const target of prefixes) this.followBlock(target, states.get(target)!, allowRules, kernel, tally);
    for (const address of addresses) this.followLimits(address, limits.get(address) ?? [], kernel, tally);
    await this.report(tally);
  }

  private followAllow(target: string, state: TargetState, local: Map<string, string>, kernel: Kernel, tally: Tally): void {
    const inKernel = kernel.allows.get(target);
    const valid = state.allow && !this.refuse(allowProblem(state.allow, this.policy), 'allow', target, tally) ? state.allow : undefined;
    if (valid) {
      this.configuredAllows.set(target, valid);
      if (!inKernel && this.write(tally, () => this.program.addAllow(target), `allow ${target}`)) tally.added++;
    } else {
      this.configuredAllows.delete(target);
      if (inKernel && !local.has(target) && this.write(tally, () => this.program.deleteAllow(target), `allow ${target}`)) tally.removed++;
    }
  }

  private followBlock(target: string, state: TargetState, allowRules: AllowRule[], kernel: Kernel, tally: Tally): void {
    const inKernel = kernel.blocks.get(target);
    if (state.unreadable) this.refuse(UNREADABLE, 'block', target, tally);
    const entry = state.block && state.block.target === target && this.applies(state.block)
      && !this.refuse(blockProblem(state.block, allowRules, this.policy, Date.now()), 'block', target, tally) ? state.block : undefined;
    if (entry) {
      const expiresNs = wallMsToMono(entry.expiresMs);
      if (inKernel && !inKernel.retained && sameExpiry(inKernel.expiresNs, expiresNs)) return;
      if (this.write(tally, () => this.program.addBlock(target, expiresNs), `block ${target}`)) tally.added++;
    } else if (inKernel && (!inKernel.retained || state.removed)) {
      if (this.write(tally, () => this.program.deleteBlock(target), `block ${target}`)) tally.removed++;
    }
  }

  private followLimits(address: string, entries: LimitEntry[], kernel: Kernel, tally: Tally): void {
    const wanted = new Map(entries.filter((e) => e.target === address && !this.refuse(limitProblem(e, this.policy, Date.now()), 'limit', address, tally))
      .map((e) => [e.traffic, e]));
    for (const traffic of TRAFFIC_CLASSES) {
      const have = kernel.limits.get(limitKey(address, traffic));
      const e = wanted.get(traffic);
      if (e) this.setLimit(e, have, tally);
      else if (have && !have.retained && this.write(tally, () => this.program.deleteDestinationLimit(address, traffic), `limit ${limitKey(address, traffic)}`)) tally.removed++;
    }
  }

  private setLimit(e: LimitEntry, have: KernelLimit | undefined, tally: Tally): void {
    const expiresNs = wallMsToMono(e.expiresMs);
    if (have && !have.retained && sameExpiry(have.expiresNs, expiresNs) && have.perSecond === e.perSecond) return;
    if (this.write(tally, () => this.program.setDestinationLimit(e.target, e.traffic, { perSecond: e.perSecond, expiresNs }), `limit ${limitKey(e.target, e.traffic)}`)) tally.added++;
  }

  /** True (and counted, logged, reported) when a ledger entry is not fit for the kernel. */
  private refuse(problem: string | undefined, kind: string, target: string, tally: Tally): boolean {
    if (!problem) return false;
    tally.refused++;
    void this.exceptions.report('ledger-entry-refused', 'high',
      `a ${kind} entry for ${JSON.stringify(target)} in the ledger was not let into the kernel: ${problem}; blockers never write such entries, so check who writes to Redis`,
      { kind, target, problem }, `${kind}|${target}`);
    return true;
  }

  /** One kernel write; a failure (a full table) is counted and the rest goes on. */
  private write(tally: Tally, op: () => unknown, what: string): boolean {
    try {
      op();
      return true;
    } catch (err) {
      tally.failed++;
      if (tally.failures.length < 5) tally.failures.push(`${what}: ${err instanceof BpfError ? `${err.code} ${err.message}` : (err as Error).message}`);
      return false;
    }
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
    this.reconcile().catch((err: Error) => this.opts.log.warn({ err: err.message, why }, 'reconciliation failed (Redis unreachable?); kernel entries stay until their expiry'));
  }

  reconcile(): Promise<ReconcileResult> {
    this.running ??= this.measuredReconcile().finally(() => { this.running = undefined; });
    return this.running;
  }

  private async measuredReconcile(): Promise<ReconcileResult> {
    const startedNs = monotonicNs();
    try {
      const result = await this.reconcileOnce();
      this.opts.metrics?.reconciled(Number(monotonicNs() - startedNs) / 1e9);
      return result;
    } catch (err) {
      this.opts.metrics?.reconcileFailed();
      throw err;
    }
  }

  private async reconcileOnce(): Promise<ReconcileResult> {
    const local = this.localAllows();
    await this.ledger.publishSensorAllows(this.opts.sensorId, [...local].map(([target, reason]) => ({ target, reason })));
    const snap = await this.ledger.snapshot();
    const limits = await this.limits.read();
    this.lastRead = { rev: snap.rev, epoch: snap.epoch ?? '' };
    if (this.stopped) return { rev: snap.rev, added: 0, removed: 0, refused: 0, failed: 0, retained: 0 };
    const nowNs = monotonicNs();
    this.checkGeneration(kernelEpoch(snap.epoch ?? ''), snap.rev, nowNs);
    const tally = new Tally();

    this.configuredAllows = new Map(snap.allows.filter((a) => !this.refuse(allowProblem(a, this.policy), 'allow', a.target, tally)).map((a) => [a.target, a]));
    const allowRules = this.allowRules(local);
    for (const target of snap.unreadable) this.refuse(UNREADABLE, 'block', target, tally);
    const wantedBlocks = new Map(snap.blocks
      .filter((b) => this.applies(b) && !this.refuse(blockProblem(b, allowRules, this.policy, Date.now()), 'block', b.target, tally))
      .map((b) => [b.target, wallMsToMono(b.expiresMs)]));
    const kernel = new Kernel(this.program);
    const removedRetained = await this.removedByOperators([...kernel.blocks.values()]
      .filter((b) => b.retained && !wantedBlocks.has(b.prefix) && live(b.expiresNs, nowNs)).map((b) => b.prefix));
    for (const b of kernel.blocks.values()) {
      if (wantedBlocks.has(b.prefix) || (b.retained && live(b.expiresNs, nowNs) && !removedRetained.has(b.prefix))) continue;
      // An entry past its expiry is housekeeping, not a repair.
      if (this.write(tally, () => this.program.deleteBlock(b.prefix), `block ${b.prefix}`) && live(b.expiresNs, nowNs)) tally.removed++;
    }
    for (const [target, expiresNs] of wantedBlocks) {
      const have = kernel.blocks.get(target);
      if (have && !have.retained && sameExpiry(have.expiresNs, expiresNs)) continue;
      if (this.write(tally, () => this.program.addBlock(target, expiresNs), `block ${target}`)) tally.added++;
    }

    const retainedBlocks = [...kernel.blocks.values()].some((b) => b.retained && live(b.expiresNs, nowNs) && !removedRetained.has(b.prefix));
    const wantedAllows = new Set([...local.keys(), ...this.configuredAllows.keys()]);
    for (const a of kernel.allows.values()) {
      // While blocks of an earlier generation stay, so do its allow entries: they may be what keeps an address out of them.
      if (wantedAllows.has(a.prefix) || (a.retained && retainedBlocks)) continue;
      if (this.write(tally, () => this.program.deleteAllow(a.prefix), `allow ${a.prefix}`)) tally.removed++;
    }
    for (const target of wantedAllows) {
      const have = kernel.allows.get(target);
      if ((!have || have.retained) && this.write(tally, () => this.program.addAllow(target), `allow ${target}`)) tally.added++;
    }

    for (const member of limits.unreadable) this.refuse(UNREADABLE, 'limit', member, tally);
    this.reconcileLimits(limits.entries, nowNs, kernel, tally);
    this.ready = true;
    const retained = [...this.program.listBlocks(), ...this.program.listDestinationLimits()].filter((e) => e.retained).length;
    const drops = Object.fromEntries(this.program.listBlocks().map((b) => [b.prefix, b.drops]));
    await this.ledger.recordSensorState(this.opts.sensorId, { added: tally.added, removed: tally.removed, refused: tally.refused, failed: tally.failed, retained }, drops);
    await this.report(tally);
    if (tally.added || tally.removed) this.opts.log.info({ added: tally.added, removed: tally.removed, rev: snap.rev }, 'reconciled kernel with the block ledger');
    return { rev: snap.rev, added: tally.added, removed: tally.removed, refused: tally.refused, failed: tally.failed, retained };
  }

  /** Destination limits, like blocks: the ledger's live ones with its expiry, and those kept from an earlier generation. */
  private reconcileLimits(entries: LimitEntry[], nowNs: bigint, kernel: Kernel, tally: Tally): void {
    const wanted = new Map(entries.filter((e) => !this.refuse(limitProblem(e, this.policy, Date.now()), 'limit', e.target, tally))
      .map((e) => [limitKey(e.target, e.traffic), e]));
    for (const [key, l] of kernel.limits) {
      if (wanted.has(key) || (l.retained && live(l.expiresNs, nowNs))) continue;
      if (this.write(tally, () => this.program.deleteDestinationLimit(l.address, l.traffic), `limit ${key}`) && live(l.expiresNs, nowNs)) tally.removed++;
    }
    for (const [key, e] of wanted) this.setLimit(e, kernel.limits.get(key), tally);
  }

  /** Retained entries an operator removed since (`block del`): they go now rather than at their expiry. */
  private async removedByOperators(targets: string[]): Promise<Set<string>> {
    if (targets.length === 0) return new Set();
    const states = await this.ledger.targetStates(targets);
    return new Set(targets.filter((t) => states.get(t)?.removed));
  }

  /**
   * A ledger of another generation (or an older revision of this one) lost entries the kernel
   * still holds: they stay until their own expiry instead of being removed as orphans.
   */
  private checkGeneration(epoch: string, rev: number, nowNs: bigint): void {
    const mark = this.program.ledgerMark();
    const changed = generationChanged(mark, { epoch, rev });
    if (changed) {
      let kept = 0;
      for (const b of this.program.listBlocks()) {
        if (b.retained || !live(b.expiresNs, nowNs)) continue;
        this.program.addBlock(b.prefix, b.expiresNs, { retained: true });
        kept++;
      }
      for (const l of this.program.listDestinationLimits()) {
        if (l.retained || !live(l.expiresNs, nowNs)) continue;
        this.program.setDestinationLimit(l.address, l.traffic, { perSecond: l.perSecond, burst: l.burst, expiresNs: l.expiresNs, retained: true });
        kept++;
      }
      const local = this.localAllows();
      for (const a of this.program.listAllows()) if (!a.retained && !local.has(a.prefix)) this.program.addAllow(a.prefix, { retained: true });
      void this.exceptions.report('ledger-generation-changed', 'critical',
        `the block ledger in Redis is not the one this sensor enforced (generation ${mark.epoch || '?'} rev ${mark.rev} → ${epoch || 'none'} rev ${rev}): `
          + `Redis lost data (restart without persistence, or failover to a stale replica). The ${kept} blocks and limits in the kernel stay until their own expiry; `
          + 'check the ledger (`xdp-ids block list`) and re-add what was lost',
        { previousEpoch: mark.epoch, previousRev: mark.rev, epoch, rev, kept });
    }
    this.program.setLedgerMark({ epoch, rev: changed || epoch !== mark.epoch ? rev : Math.max(rev, mark.rev) });
  }

  private async report(tally: Tally): Promise<void> {
    this.opts.metrics?.applied(tally);
    if (tally.failed === 0) return;
    await this.exceptions.report('kernel-table-full', 'high',
      `${tally.failed} ledger entries could not be written to the kernel on sensor ${this.opts.sensorId} (the rest were): ${tally.failures.join('; ')}`,
      { failed: tally.failed, failures: tally.failures });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.subscriber.disconnect();
    await this.running?.catch(() => undefined);
    await this.alerts.close().catch(() => undefined);
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
