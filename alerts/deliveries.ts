/**
 * One delivery job = one notification to one receiver. Jobs live in a BullMQ queue in Redis, so
 * nothing is lost while a receiver is down or the alerter restarts. A job is retried with
 * exponential backoff and jitter (or the receiver's Retry-After); on a final error, or when its
 * attempts are spent, it is dead-lettered and operators are told through an exception event. A
 * `sent` marker written right after the receiver accepts makes a job that is run again (a crash
 * before BullMQ recorded the completion, a flush retried) a no-op.
 */
import os from 'node:os';
import type { Job, Queue } from 'bullmq';
import type { RedisClient } from '../common/redis';
import type { Logger } from 'pino';
import type { Transporter } from 'nodemailer';
import { ALERT_EVENT_JOB_OPTIONS, ALERT_EVENT_VERSION, type AlertEvent, type ExceptionCode } from '../common/alert-events';
import { addDeadLetter } from './dead-letters';
import { sendEmail } from './email';
import { ITEM_STATE_TTL_MS, keys } from './keys';
import { appendToMailbox } from './mailbox';
import { renderEmail, renderWebhookBody } from './render';
import { PermanentError, ReceiverGoneError, RetryableError } from './send-errors';
import { countRetry } from './stats';
import type { AlertsConfig, Notification } from './types';
import { sendSyslog } from './syslog';
import { syslogFrames } from './syslog-message';
import { sendWebhook } from './webhook';

export interface DeliveryJob {
  deliveryId: string;
  receiver: string;
  notification: Notification;
}

export const BACKOFF_TYPE = 'alerts-backoff';

/** Exponential from `baseMs`, ±50% jitter so that receivers coming back are not hit in lockstep; Retry-After wins. */
export function backoffStrategy(baseMs: number, maxMs: number) {
  return (attemptsMade: number, _type?: string, err?: Error): number => {
    if (err instanceof RetryableError && err.retryAfterMs !== undefined) return Math.min(err.retryAfterMs, maxMs);
    return Math.round(Math.min(baseMs * 2 ** Math.max(0, attemptsMade - 1), maxMs) * (0.5 + Math.random()));
  };
}

export interface DisabledReceiver {
  atMs: number;
  reason: string;
}

export async function disabledReceiver(redis: RedisClient, name: string): Promise<DisabledReceiver | undefined> {
  const v = await redis.hget(keys.disabledReceivers, name);
  return v ? JSON.parse(v) as DisabledReceiver : undefined;
}

/** Messages about failed deliveries are not themselves reported when they fail: that would never end. */
function isAboutDelivery(n: Notification): boolean {
  return n.items.every((i) => i.event.kind === 'exception' && (i.event.code === 'delivery-failed' || i.event.code === 'receiver-disabled'));
}

export class DeliveryProcessor {
  private readonly component = `alerter@${os.hostname()}:${process.pid}`;

  constructor(
    private readonly redis: RedisClient,
    private readonly alertsQueue: Queue<AlertEvent>,
    private readonly config: AlertsConfig,
    private readonly transports: Map<string, Transporter>,
    private readonly log: Logger,
  ) {}

  async process(job: Job<DeliveryJob>): Promise<string> {
    const { deliveryId, receiver: name, notification } = job.data;
    if (await this.redis.exists(keys.sent(deliveryId))) return 'already sent';
    const receiver = this.config.receivers.get(name);
    if (!receiver) return this.deadLetter(job, `no receiver named ${name} in the current config`);
    const disabled = await disabledReceiver(this.redis, name);
    if (disabled) return this.deadLetter(job, `receiver ${name} is disabled since ${new Date(disabled.atMs).toISOString()}: ${disabled.reason}`);
    try {
      if (receiver.type === 'email') {
        await sendEmail(this.transports.get(name)!, receiver, renderEmail(notification, receiver.subject), `<${deliveryId}@xdp-ids>`);
      } else if (receiver.type === 'mailbox') {
        await appendToMailbox(receiver, renderEmail(notification), `<${deliveryId}@xdp-ids>`);
      } else if (receiver.type === 'syslog') {
        await sendSyslog(receiver, syslogFrames(notification, receiver));
      } else {
        await sendWebhook(receiver, renderWebhookBody(notification, receiver.format), deliveryId);
      }
    } catch (err) {
      const e = err as Error;
      const attempt = job.attemptsMade + 1;
      const maxAttempts = job.opts.attempts ?? 1;
      if (e instanceof ReceiverGoneError) {
        await this.redis.hset(keys.disabledReceivers, name, JSON.stringify({ atMs: Date.now(), reason: e.message }));
        await this.report('receiver-disabled', 'high', `receiver ${name} disabled: ${e.message}; re-enable with \`xdp-ids alerts receiver enable ${name}\``, { receiver: name }, `disabled-${name}-${deliveryId}`);
        return this.deadLetter(job, e.message);
      }
      if (e instanceof RetryableError && attempt < maxAttempts) {
        this.log.warn({ receiver: name, deliveryId, attempt, err: e.message }, 'delivery failed, will retry');
        await countRetry(this.redis, 'delivery');
        throw e;
      }
      if (!(e instanceof RetryableError) && !(e instanceof PermanentError)) this.log.error({ receiver: name, deliveryId, err: e }, 'delivery failed unexpectedly');
      return this.deadLetter(job, e.message);
    }
    await this.redis.set(keys.sent(deliveryId), String(Date.now()), 'PX', ITEM_STATE_TTL_MS);
    this.log.info({ receiver: name, deliveryId, items: notification.items.length }, 'delivered');
    return 'sent';
  }

  private async deadLetter(job: Job<DeliveryJob>, error: string): Promise<string> {
    const { deliveryId, receiver, notification } = job.data;
    const first = notification.items[0].event;
    const summary = `${notification.items.length} item(s), first: ${first.kind} ${first.id}`;
    await addDeadLetter(this.redis, { id: deliveryId, type: 'delivery', receiver, summary, error, attempts: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1, failedMs: Date.now(), data: job.data });
    this.log.error({ receiver, deliveryId, err: error }, 'delivery dead-lettered');
    if (!isAboutDelivery(notification)) {
      await this.report('delivery-failed', 'high', `delivery ${deliveryId} to ${receiver} failed and was dead-lettered: ${error}; see \`xdp-ids alerts dlq show ${deliveryId}\``,
        { receiver, deliveryId, error }, `failed-${deliveryId}`);
    }
    return 'dead-lettered';
  }

  /**
   * `id` makes the report idempotent: the same failure reported twice (a retried job, a backlog
   * seen again in the same period) is one event, as long as its finished job is kept (a day).
   */
  async report(code: ExceptionCode, severity: 'medium' | 'high', message: string, details: Record<string, unknown>, id: string): Promise<void> {
    const event: AlertEvent = { v: ALERT_EVENT_VERSION, id, atMs: Date.now(), kind: 'exception', code, severity, component: this.component, message, details };
    await this.alertsQueue.add(code, event, { ...ALERT_EVENT_JOB_OPTIONS, jobId: id, removeOnComplete: { age: 86_400 } });
  }
}
