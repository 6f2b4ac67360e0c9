/**
 * Announces what expired in the ledger (blocks and limits): removes the expired index entries,
 * hints the sensors, and sends each expiry to the alerter once. It writes the ledger, so it runs
 * where blockers run (detectors, the control API), never in a sensor, which may only read it.
 * Several processes may run it: each expiry is swept by exactly one.
 */
import type { Logger } from 'pino';
import { BlockLedger } from './ledger';
import { LimitLedger } from './limits';
import type { Notices } from './notices';

export class LedgerMaintenance {
  private readonly limits: LimitLedger;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly ledger: BlockLedger, private readonly notices: Notices, private readonly log: Logger, private readonly everyMs = 5000) {
    this.limits = new LimitLedger(ledger.redis);
  }

  start(): this {
    this.timer = setInterval(() => {
      this.running ??= this.sweep().catch((err: Error) => this.log.warn({ err: err.message }, 'could not sweep expired blocks (Redis unreachable?)'))
        .finally(() => { this.running = undefined; });
    }, this.everyMs);
    this.timer.unref();
    return this;
  }

  /**
   * Waits for a sweep in flight, but not for ever: with Redis unreachable its commands wait for a
   * reconnect, and shutting down must not. Abandoning a sweep loses nothing (each step is atomic
   * and the next sweep, here or elsewhere, finds what is left).
   */
  async stop(waitMs = 2000): Promise<void> {
    clearInterval(this.timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise((r) => { timer = setTimeout(r, waitMs); })]);
    clearTimeout(timer);
  }

  /** One sweep; exposed for tests. */
  async sweep(nowMs = Date.now()): Promise<void> {
    const blocks = (await this.ledger.sweepExpired(nowMs)).map((e) => ({ ...e, action: 'block' as const, traffic: undefined, perSecond: undefined }));
    const limits = (await this.limits.sweepExpired(nowMs)).map((e) => ({ ...e, action: 'limit' as const }));
    for (const e of [...blocks, ...limits]) {
      await this.notices.send({
        kind: 'block', action: e.action, phase: 'expired', target: e.target, origin: e.origin ?? 'manual', ruleId: e.ruleId, incidentId: e.incidentId,
        expiresMs: e.expiresMs, reason: e.reason, traffic: e.traffic, perSecond: e.perSecond, actor: e.actor,
      }).catch((err: Error) => this.log.error({ err: err.message, target: e.target }, 'could not queue an expiry notice'));
    }
  }
}
