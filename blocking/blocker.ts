/**
 * Decides block requests (from the detector, the CLI and the API): refuses bad and too wide
 * targets and allowlisted addresses, keeps partner prefixes to verified evidence, records dry-run
 * decisions as "would block", and otherwise writes the block to the ledger under the budget of its
 * evidence. Evidence decides how far a block may go (SECURITY.md): a source that completed a
 * handshake can be blocked for long and escalate; anything a forger could have sent gets one short
 * block per target at most, from a budget of its own, so forged traffic can neither keep an
 * innocent address blocked nor use up the blocks meant for real attackers. A tripped budget opens
 * that pool's circuit breaker (shared by every blocker on the Redis) and raises one exception.
 */
import type { Logger } from 'pino';
import type { BlockOutcome } from '../common/alert-events';
import { MAX_LIMIT_RATE, type BlockRequest, type Blocker, type LimitRequest } from '../common/block-requests';
import { TRAFFIC_CLASSES, TRAFFIC_NAMES, type TrafficClass } from '../common/traffic';
import { allowConflict, hostAllowRules, type AllowRule } from './allowlist';
import { BlockLedger, type BlockPolicy, type BlockResult, type Evidence } from './ledger';
import { LimitLedger } from './limits';
import type { Notices } from './notices';
import { contains, normalizeTarget } from './targets';
import { checkWidth, widthLimitsFromEnv, type WidthLimits } from './widths';
import { parsePrefix, type Prefix } from '../sensor/addresses';

export interface BlockerConfig {
  /** Shadow mode for every rule, or for the rules listed: decisions recorded as "would block". */
  dryRun?: boolean;
  dryRunRules?: string[];
  /** TTLs of verified repeat offenders. Default: 10 min, 1 h, 24 h. */
  ladderMs?: number[];
  /** How long a blocked target counts as a repeat offender. Default 7 days. */
  strikeMemoryMs?: number;
  /** Default 30 days; longer requests are cut (rules) or rejected (manual). */
  maxTtlMs?: number;
  /** Budgets per evidence pool. Default: verified 60 new a minute and 10,000 active; unverified 30 and 1,000. */
  verified?: Partial<BlockPolicy['verified']>;
  unverified?: Partial<BlockPolicy['unverified']>;
  /** Default 2 min: long enough to stop a scan, short enough that a forged one hurts nobody much. */
  unverifiedTtlMs?: number;
  /** Default 1 h: one unverified block per target in this time, alert-only after it. */
  unverifiedMemoryMs?: number;
  /** Default 5 min. */
  breakerMs?: number;
  /** Active blocks in all: the kernel's smaller block table (16,384 IPv6 entries). */
  capacity?: number;
  /**
   * Partner, CDN and monitoring prefixes: automatic blocks of addresses in them need verified
   * evidence (a forger picks exactly such addresses); manual blocks are not affected.
   */
  partners?: string[];
  /** Narrowest prefixes a block may cover (widths.ts); default from the environment. */
  widths?: WidthLimits;
  /** This host's defaults (hostAllowRules()); the ledger adds configured entries and every sensor's own. */
  hostAllow?: AllowRule[];
  /** For exception events, e.g. `detector@host1`. */
  component: string;
}

export const DEFAULT_LADDER_MS = [10 * 60_000, 3_600_000, 86_400_000];
export const DEFAULT_MAX_TTL_MS = 30 * 86_400_000;
export const DEFAULT_UNVERIFIED_TTL_MS = 2 * 60_000;
/** The kernel's IPv6 block table: the smaller of the two, so either family fits. */
export const DEFAULT_BLOCK_CAPACITY = 16_384;

export function undoCommand(target: string): string {
  return `xdp-ids block del ${target}`;
}

export function limitUndoCommand(target: string, traffic: TrafficClass): string {
  return `xdp-ids limit del ${target} --traffic ${traffic}`;
}

export class LedgerBlocker implements Blocker {
  readonly policy: BlockPolicy;
  private readonly hostAllow: AllowRule[];
  private readonly partners: Prefix[];
  private readonly widths: WidthLimits;
  private readonly limits: LimitLedger;

  constructor(private readonly ledger: BlockLedger, private readonly config: BlockerConfig,
    private readonly notices: Notices | undefined, private readonly log: Logger) {
    this.policy = {
      ladderMs: config.ladderMs ?? DEFAULT_LADDER_MS,
      strikeMemoryMs: config.strikeMemoryMs ?? 7 * 86_400_000,
      maxTtlMs: config.maxTtlMs ?? DEFAULT_MAX_TTL_MS,
      verified: { maxNewPerMinute: 60, maxActive: 10_000, ...config.verified },
      unverified: { maxNewPerMinute: 30, maxActive: 1000, ...config.unverified },
      unverifiedTtlMs: config.unverifiedTtlMs ?? DEFAULT_UNVERIFIED_TTL_MS,
      unverifiedMemoryMs: config.unverifiedMemoryMs ?? 3_600_000,
      breakerMs: config.breakerMs ?? 5 * 60_000,
      capacity: config.capacity ?? DEFAULT_BLOCK_CAPACITY,
    };
    this.hostAllow = config.hostAllow ?? hostAllowRules();
    this.partners = (config.partners ?? []).map((p) => normalizeTarget(p, { keepExplicitV6Host: true }));
    this.widths = config.widths ?? widthLimitsFromEnv();
    this.limits = new LimitLedger(ledger.redis);
  }

  /** `scope` limits a block to one sensor (manual blocks); rule and model blocks apply fleet-wide. */
  async request(req: BlockRequest, scope = 'all'): Promise<BlockOutcome> {
    const manual = req.origin === 'manual';
    const evidence: Evidence = manual ? 'manual' : req.evidence ?? 'unverified';
    let target: string;
    try {
      const prefix = normalizeTarget(req.target, { keepExplicitV6Host: manual });
      checkWidth(prefix, 'block', this.widths);
      target = prefix.text;
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
    const partner = evidence === 'unverified' ? this.partnerOf(target) : undefined;
    if (partner) {
      await this.ledger.countRefusal('partner');
      return this.alertOnly(req, target, `partner prefix ${partner}: blocks need a verified source (a completed handshake), and this one is unverified`);
    }
    const shadow = await this.shadow(req, target);
    if (shadow) return shadow;
    const result = await this.ledger.block({
      target, scope, ttlMs: Math.min(req.ttlMs, this.policy.maxTtlMs), origin: req.origin, evidence, reason: req.title, ruleId: req.ruleId || undefined,
      incidentId: req.incidentId || undefined, sensor: req.sensor || undefined, key: req.key || undefined,
      actor: req.actor ?? `${req.origin}${req.ruleId ? `:${req.ruleId}` : ''}`,
    }, manual ? { ...this.policy, ladderMs: [] } : this.policy);
    return await this.outcome(req, target, evidence, result);
  }

  private async outcome(req: BlockRequest, target: string, evidence: Evidence, result: BlockResult): Promise<BlockOutcome> {
    switch (result.status) {
      case 'tripped':
      case 'breaker-open': {
        const pool = evidence === 'unverified' ? this.policy.unverified : this.policy.verified;
        if (result.status === 'tripped') await this.raiseBudgetException(req, target, evidence, result);
        return this.refused(req, target, `${evidence} blocking budget exhausted (max ${pool.maxNewPerMinute} new per minute, ${pool.maxActive} active): `
          + `new ${evidence} blocks suspended until ${new Date(result.untilMs).toISOString()}`);
      }
      case 'full':
        return this.refused(req, target, `the ledger holds ${result.active} active blocks, all the kernel tables can take: remove some or raise the capacity`);
      case 'unverified-repeat':
        await this.ledger.countRefusal('unverified-repeat');
        return this.alertOnly(req, target, `unverified source, already blocked once: alert only until ${new Date(result.untilMs).toISOString()} unless it completes a handshake`);
      default: {
        const entry = result.entry;
        const outcome: BlockOutcome = {
          status: result.status === 'unchanged' ? 'blocked' : result.status, target, expiresMs: entry.expiresMs, evidence: entry.evidence, undo: undoCommand(target),
          ...(entry.evidence === 'unverified' ? { reason: 'unverified source (no handshake completed): one short block, no escalation' } : {}),
        };
        this.log.info({ target, status: result.status, origin: req.origin, evidence: entry.evidence, ruleId: req.ruleId, expiresMs: entry.expiresMs, strikes: entry.strikes }, 'block decided');
        if (req.origin === 'manual') {
          await this.notify({ kind: 'block', phase: outcome.status as 'blocked' | 'extended', target, origin: 'manual', expiresMs: entry.expiresMs, reason: req.title, actor: req.actor });
        }
        return outcome;
      }
    }
  }

  /**
   * Caps one traffic class every sensor lets through to one protected address. The allowlist does
   * not apply: the address is ours to protect, and allowlisted sources still get through in the kernel.
   */
  async limit(req: LimitRequest): Promise<BlockOutcome> {
    let target: string;
    try {
      // One address, as written: an IPv6 address is not widened to its /64 as a block target would be.
      const prefix = parsePrefix(req.target);
      if (prefix.length !== (prefix.family === 4 ? 32 : 128)) throw new RangeError(`a limit protects one address, not ${prefix.text}`);
      target = prefix.text.split('/')[0];
      if (!TRAFFIC_CLASSES.includes(req.traffic)) throw new RangeError(`traffic must be one of ${TRAFFIC_CLASSES.join(', ')}, got ${JSON.stringify(req.traffic)}`);
      if (!Number.isInteger(req.perSecond) || req.perSecond < 1 || req.perSecond > MAX_LIMIT_RATE) {
        throw new RangeError(`rate must be a whole number from 1 to ${MAX_LIMIT_RATE} per second, got ${req.perSecond}`);
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
      target, traffic: req.traffic, perSecond: req.perSecond, ttlMs, origin: req.origin, reason: req.title, ruleId: req.ruleId || undefined,
      incidentId: req.incidentId || undefined, actor: req.actor,
    });
    if (result.status === 'full') return this.refused(req, target, 'too many destination limits in force');
    const { perSecond, expiresMs } = result.entry;
    this.log.info({ target, traffic: req.traffic, status: result.status, perSecond, ruleId: req.ruleId, expiresMs }, 'destination limit decided');
    if (req.origin === 'manual') {
      await this.notify({ kind: 'block', action: 'limit', phase: result.status, target, origin: 'manual', traffic: req.traffic, perSecond, expiresMs, reason: req.title, actor: req.actor });
    }
    return { status: 'limited', target, traffic: req.traffic, perSecond, expiresMs, undo: limitUndoCommand(target, req.traffic) };
  }

  async unlimit(text: string, traffic: TrafficClass, reason = 'manual removal', actor?: string): Promise<boolean> {
    const target = text.split('/')[0];
    const removed = await this.limits.unlimit(target, traffic);
    if (removed) await this.notify({ kind: 'block', action: 'limit', phase: 'unlimited', target, origin: 'manual', traffic, perSecond: removed.perSecond, reason, actor });
    return removed !== undefined;
  }

  async listLimits(): ReturnType<LimitLedger['list']> {
    return this.limits.list();
  }

  /** Removes a block everywhere; false when the ledger had none (sensors still drop what they kept of it). */
  async unblock(text: string, reason = 'manual unblock', actor?: string): Promise<boolean> {
    const target = normalizeTarget(text, { keepExplicitV6Host: true }).text;
    const removed = await this.ledger.unblock(target, this.policy.maxTtlMs);
    if (removed) await this.notify({ kind: 'block', phase: 'unblocked', target, origin: 'manual', reason, actor });
    return removed;
  }

  /** In dry run (global, or for the request's rule), the decision is recorded as "would block" and nothing else happens; manual requests are never shadowed. */
  private async shadow(req: BlockRequest | LimitRequest, target: string): Promise<BlockOutcome | undefined> {
    if (req.origin === 'manual' || !(this.config.dryRun || this.config.dryRunRules?.includes(req.ruleId))) return undefined;
    const expiresMs = Date.now() + Math.min(req.ttlMs, this.policy.maxTtlMs);
    const limit = 'traffic' in req ? { traffic: req.traffic, perSecond: req.perSecond } : {};
    await this.ledger.recordShadow({ target, ...limit, ruleId: req.ruleId, incidentId: req.incidentId, origin: req.origin, evidence: req.evidence, expiresMs, atMs: Date.now() });
    return { status: 'would-block', target, ...limit, expiresMs, reason: `dry run (${this.config.dryRun ? 'global' : `rule ${req.ruleId}`})` };
  }

  private partnerOf(target: string): string | undefined {
    const prefix = normalizeTarget(target, { keepExplicitV6Host: true });
    return this.partners.find((p) => contains(p, prefix) || contains(prefix, p))?.text;
  }

  private async allowlistConflict(target: string): Promise<string | undefined> {
    const configured = (await this.ledger.allowEntries()).flatMap((e) => {
      try {
        const prefix = normalizeTarget(e.target, { keepExplicitV6Host: true });
        checkWidth(prefix, 'allow', this.widths);
        return [{ prefix, reason: `${e.reason}, ${e.source}` }];
      } catch {
        // Unreadable or too wide (an `allow 0.0.0.0/0` written into Redis): enforcers refuse it, so it protects nothing and must not stop every block.
        return [];
      }
    });
    const conflict = allowConflict(normalizeTarget(target, { keepExplicitV6Host: true }), [...this.hostAllow, ...configured]);
    return conflict && `${conflict.prefix.text} (${conflict.reason})`;
  }

  private alertOnly(req: BlockRequest, target: string, reason: string): BlockOutcome {
    this.log.info({ target, origin: req.origin, ruleId: req.ruleId, reason }, 'block not taken: alert only');
    return { status: 'alert-only', target, evidence: 'unverified', reason };
  }

  private async refused(req: BlockRequest, target: string, reason: string): Promise<BlockOutcome> {
    this.log.warn({ target, origin: req.origin, ruleId: req.ruleId, reason }, 'block refused');
    if (req.origin === 'manual') await this.notify({ kind: 'block', phase: 'refused', target, origin: 'manual', reason, actor: req.actor });
    return { status: 'refused', target, reason };
  }

  private async raiseBudgetException(req: BlockRequest, target: string, evidence: Evidence, trip: { untilMs: number; active: number; newThisMinute: number }): Promise<void> {
    const pool = evidence === 'unverified' ? this.policy.unverified : this.policy.verified;
    await this.notify({
      kind: 'exception', code: 'block-budget-exceeded', severity: 'high', component: this.config.component,
      message: `${evidence} blocking budget exceeded (${trip.newThisMinute} new blocks this minute, ${trip.active} active): new ${evidence} blocks suspended until `
        + `${new Date(trip.untilMs).toISOString()}${evidence === 'unverified'
          ? '; likely forged sources: blocks of verified sources go on, see the destination-scoped incidents and their limits'
          : ''}`,
      details: { target, evidence, ruleId: req.ruleId, incidentId: req.incidentId, sensor: req.sensor, ...trip, ...pool },
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

/** A limit's one-line summary for people, e.g. `SYNs to 198.18.0.1 limited to 1000/s`. */
export function limitSummary(target: string, traffic: TrafficClass, perSecond: number): string {
  return `${TRAFFIC_NAMES[traffic]} to ${target} limited to ${perSecond}/s`;
}
