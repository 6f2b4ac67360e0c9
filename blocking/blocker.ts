/**
 * Decides block requests (from the detector, the CLI and the API): refuses bad targets and
 * allowlisted addresses, records dry-run decisions as "would block", and otherwise writes the
 * block to the ledger under a budget. A budget trip opens a circuit breaker (shared by every
 * blocker on the Redis) and raises one exception event: a spoofed random-source flood ends up as
 * the destination-scoped incident it is, instead of thousands of blocked innocent sources.
 */
import type { Logger } from 'pino';
import type { BlockOutcome } from '../common/alert-events';
import { MAX_SYN_PER_SECOND, type BlockRequest, type Blocker, type LimitRequest } from '../common/block-requests';
import { allowConflict, hostAllowRules, type AllowRule } from './allowlist';
import { BlockLedger, type BlockPolicy } from './ledger';
import { LimitLedger } from './limits';
import type { Notices } from './notices';
import { normalizeTarget } from './targets';

export interface BlockerConfig {
  /** Shadow mode for every rule, or for the rules listed: decisions recorded as "would block". */
  dryRun?: boolean;
  dryRunRules?: string[];
  /** Default: 10 min, 1 h, 24 h. */
  ladderMs?: number[];
  /** How long a blocked target counts as a repeat offender. Default 7 days. */
  strikeMemoryMs?: number;
  /** Default 30 days; longer requests are cut (rules) or rejected (manual). */
  maxTtlMs?: number;
  /** Default 60 new blocks per minute and 10,000 active blocks. */
  maxNewPerMinute?: number;
  maxActive?: number;
  /** Default 5 min. */
  breakerMs?: number;
  /** This host's defaults (hostAllowRules()); the ledger adds configured entries and every sensor's own. */
  hostAllow?: AllowRule[];
  /** For exception events, e.g. `detector@host1`. */
  component: string;
}

export const DEFAULT_LADDER_MS = [10 * 60_000, 3_600_000, 86_400_000];
export const DEFAULT_MAX_TTL_MS = 30 * 86_400_000;

export function undoCommand(target: string): string {
  return `xdp-ids block del ${target}`;
}


export class LedgerBlocker implements Blocker {
  readonly policy: BlockPolicy;
  private readonly hostAllow: AllowRule[];
  private readonly limits: LimitLedger;

  constructor(private readonly ledger: BlockLedger, private readonly config: BlockerConfig,
    private readonly notices: Notices | undefined, private readonly log: Logger) {
    this.policy = {
      ladderMs: config.ladderMs ?? DEFAULT_LADDER_MS,
      strikeMemoryMs: config.strikeMemoryMs ?? 7 * 86_400_000,
      maxTtlMs: config.maxTtlMs ?? DEFAULT_MAX_TTL_MS,
      maxNewPerMinute: config.maxNewPerMinute ?? 60,
      maxActive: config.maxActive ?? 10_000,
      breakerMs: config.breakerMs ?? 5 * 60_000,
    };
    this.hostAllow = config.hostAllow ?? hostAllowRules();
    this.limits = new LimitLedger(ledger.redis);
  }

  /** `scope` limits a block to one sensor (manual blocks); rule and model blocks apply fleet-wide. */
  async request(req: BlockRequest, scope = 'all'): Promise<BlockOutcome> {
    const manual = req.origin === 'manual';
    let target: string;
    try {
      target = normalizeTarget(req.target, { keepExplicitV6Host: manual }).text;
      if (!Number.isFinite(req.ttlMs) || req.ttlMs <= 0) throw new RangeError(`TTL must be a positive number of ms, got ${req.ttlMs}`);
      if (manual && req.ttlMs > this.policy.maxTtlMs) throw new RangeError(`TTL ${req.ttlMs} ms exceeds the maximum of ${this.policy.maxTtlMs} ms`);
    } catch (err) {
      await this.ledger.countRefusal('invalid');
      return this.refused(req, req.target, `invalid request: ${(err as Error).message}`);
    }
    const conflict = await this.allowlistConflict(target);
    if (conflict) {
      await this.ledger.countRefusal('allowlist');
      return this.refused(req, target, `allowlisted: ${conflict}`);
    }
    const shadow = await this.shadow(req, target);
    if (shadow) return shadow;
    const policy = manual ? { ...this.policy, ladderMs: [], maxNewPerMinute: Infinity, maxActive: Infinity } : this.policy;
    const result = await this.ledger.block({
      target, scope, ttlMs: Math.min(req.ttlMs, this.policy.maxTtlMs), origin: req.origin, reason: req.title, ruleId: req.ruleId || undefined,
      incidentId: req.incidentId || undefined, sensor: req.sensor || undefined, key: req.key || undefined, actor: req.actor ?? `${req.origin}${req.ruleId ? `:${req.ruleId}` : ''}`,
    }, policy);
    if (result.status === 'tripped' || result.status === 'breaker-open') {
      const until = new Date(result.untilMs).toISOString();
      if (result.status === 'tripped') await this.raiseBudgetException(req, target, result);
      return this.refused(req, target, `blocking budget exhausted (max ${this.policy.maxNewPerMinute} new per minute, ${this.policy.maxActive} active): new blocks suspended until ${until}`);
    }
    const outcome: BlockOutcome = { status: result.status, target, expiresMs: result.entry.expiresMs, undo: undoCommand(target) };
    this.log.info({ target, status: result.status, origin: req.origin, ruleId: req.ruleId, expiresMs: result.entry.expiresMs, strikes: result.entry.strikes }, 'block decided');
    if (manual) await this.notify({ kind: 'block', phase: result.status, target, origin: 'manual', expiresMs: result.entry.expiresMs, reason: req.title });
    return outcome;
  }

  /**
   * Caps the SYNs every sensor lets through to one protected address. The allowlist does not
   * apply: the address is ours to protect, and allowlisted sources still get through in the kernel.
   */
  async limit(req: LimitRequest): Promise<BlockOutcome> {
    let target: string;
    try {
      const prefix = normalizeTarget(req.target, { keepExplicitV6Host: true });
      if (prefix.length !== (prefix.family === 4 ? 32 : 128)) throw new RangeError(`a SYN limit protects one address, not ${prefix.text}`);
      target = prefix.text.split('/')[0];
      if (!Number.isInteger(req.synPerSecond) || req.synPerSecond < 1 || req.synPerSecond > MAX_SYN_PER_SECOND) {
        throw new RangeError(`SYN rate must be a whole number from 1 to ${MAX_SYN_PER_SECOND} per second, got ${req.synPerSecond}`);
      }
      if (!Number.isFinite(req.ttlMs) || req.ttlMs <= 0) throw new RangeError(`TTL must be a positive number of ms, got ${req.ttlMs}`);
    } catch (err) {
      await this.ledger.countRefusal('invalid');
      return this.refused(req, req.target, `invalid request: ${(err as Error).message}`);
    }
    const shadow = await this.shadow(req, target);
    if (shadow) return shadow;
    const ttlMs = Math.min(req.ttlMs, this.policy.maxTtlMs);
    const result = await this.limits.limit({
      target, synPerSecond: req.synPerSecond, ttlMs, origin: req.origin, reason: req.title, ruleId: req.ruleId || undefined, incidentId: req.incidentId || undefined,
    });
    if (result.status === 'full') return this.refused(req, target, 'too many destination limits in force');
    this.log.info({ target, status: result.status, synPerSecond: req.synPerSecond, ruleId: req.ruleId, expiresMs: result.entry.expiresMs }, 'destination SYN limit decided');
    if (req.origin === 'manual') {
      await this.notify({ kind: 'block', action: 'syn-limit', phase: result.status, target, origin: 'manual', synPerSecond: result.entry.synPerSecond, expiresMs: result.entry.expiresMs, reason: req.title });
    }
    return { status: 'limited', target, synPerSecond: result.entry.synPerSecond, expiresMs: result.entry.expiresMs, undo: `xdp-ids limit del ${target}` };
  }

  async unlimit(text: string, reason = 'manual removal'): Promise<boolean> {
    const target = text.split('/')[0];
    const removed = await this.limits.unlimit(target);
    if (removed) await this.notify({ kind: 'block', action: 'syn-limit', phase: 'unlimited', target, origin: 'manual', synPerSecond: removed.synPerSecond, reason });
    return removed !== undefined;
  }

  async listLimits(): ReturnType<LimitLedger['list']> {
    return this.limits.list();
  }

  /** Removes a block everywhere; false when there was none. */
  async unblock(text: string, reason = 'manual unblock'): Promise<boolean> {
    const target = normalizeTarget(text, { keepExplicitV6Host: true }).text;
    const removed = await this.ledger.unblock(target);
    if (removed) await this.notify({ kind: 'block', phase: 'unblocked', target, origin: 'manual', reason });
    return removed;
  }

  /** In dry run (global, or for the request's rule), the decision is recorded as "would block" and nothing else happens; manual requests are never shadowed. */
  private async shadow(req: BlockRequest | LimitRequest, target: string): Promise<BlockOutcome | undefined> {
    if (req.origin === 'manual' || !(this.config.dryRun || this.config.dryRunRules?.includes(req.ruleId))) return undefined;
    const expiresMs = Date.now() + Math.min(req.ttlMs, this.policy.maxTtlMs);
    const synPerSecond = 'synPerSecond' in req ? { synPerSecond: req.synPerSecond } : {};
    await this.ledger.recordShadow({ target, ...synPerSecond, ruleId: req.ruleId, incidentId: req.incidentId, origin: req.origin, expiresMs, atMs: Date.now() });
    return { status: 'would-block', target, ...synPerSecond, expiresMs, reason: `dry run (${this.config.dryRun ? 'global' : `rule ${req.ruleId}`})` };
  }

  private async allowlistConflict(target: string): Promise<string | undefined> {
    const configured = (await this.ledger.allowEntries()).map((e) => ({ prefix: normalizeTarget(e.target, { keepExplicitV6Host: true }), reason: `${e.reason}, ${e.source}` }));
    const conflict = allowConflict(normalizeTarget(target, { keepExplicitV6Host: true }), [...this.hostAllow, ...configured]);
    return conflict && `${conflict.prefix.text} (${conflict.reason})`;
  }

  private async refused(req: BlockRequest, target: string, reason: string): Promise<BlockOutcome> {
    this.log.warn({ target, origin: req.origin, ruleId: req.ruleId, reason }, 'block refused');
    if (req.origin === 'manual') await this.notify({ kind: 'block', phase: 'refused', target, origin: 'manual', reason });
    return { status: 'refused', target, reason };
  }

  private async raiseBudgetException(req: BlockRequest, target: string, trip: { untilMs: number; active: number; newThisMinute: number }): Promise<void> {
    await this.notify({
      kind: 'exception', code: 'block-budget-exceeded', severity: 'high', component: this.config.component,
      message: `blocking budget exceeded (${trip.newThisMinute} new blocks this minute, ${trip.active} active): new blocks suspended until `
        + `${new Date(trip.untilMs).toISOString()}; likely a spoofed-source flood: see the destination-scoped incidents and their SYN limits`,
      details: { target, ruleId: req.ruleId, incidentId: req.incidentId, sensor: req.sensor, ...trip, maxNewPerMinute: this.policy.maxNewPerMinute, maxActive: this.policy.maxActive },
    });
  }

  private async notify(event: Parameters<Notices['send']>[0]): Promise<void> {
    try {
      await this.notices?.send(event);
    } catch (err) {
      this.log.error({ err, event }, 'could not queue a block notice');
    }
  }
}
