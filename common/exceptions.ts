/**
 * Exception events about xdp-ids itself, for the operators' route of the alerter. Each is also
 * logged; repeats of one code (about one subject, e.g. a rule) from one component are held back
 * for `quietMs` so that a flapping dependency does not flood anyone.
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { ALERT_EVENT_JOB_OPTIONS, ALERT_EVENT_VERSION, type AlertEvent, type ExceptionCode, type ExceptionEvent, type Severity } from './alert-events';

export class ExceptionReporter {
  private readonly lastSent = new Map<string, number>();

  constructor(private readonly alerts: Queue<AlertEvent>, readonly component: string, private readonly log: Logger, private readonly quietMs = 300_000) {}

  /** Resolves once the event is queued (or held back, or failed to queue, which is logged). */
  async report(code: ExceptionCode, severity: Severity, message: string, details?: Record<string, unknown>, subject = ''): Promise<void> {
    const level = severity === 'critical' || severity === 'high' ? 'error' : 'warn';
    this.log[level]({ code, ...details }, message);
    const now = Date.now();
    const quietKey = `${code}|${subject}`;
    if (now - (this.lastSent.get(quietKey) ?? -Infinity) < this.quietMs) return;
    this.lastSent.set(quietKey, now);
    const event: ExceptionEvent = { v: ALERT_EVENT_VERSION, id: `exc-${randomUUID()}`, atMs: now, kind: 'exception', code, severity, component: this.component, message, details };
    try {
      await this.alerts.add(event.kind, event, { ...ALERT_EVENT_JOB_OPTIONS, jobId: event.id });
    } catch (err) {
      this.log.error({ err, code }, 'could not queue an exception event');
    }
  }
}
