/**
 * One job of the alerts queue: the event is checked, then ingested. An event the alerter cannot
 * read is dead-lettered at once (running it again cannot help). Any other failure (Redis refusing
 * a write, a bug) is retried with the backoff its producer gave it (ALERT_EVENT_JOB_OPTIONS), and
 * once the attempts are spent the event is dead-lettered with its error, so that an operator can
 * replay it after fixing the cause. Retries and dead letters are counted (stats.ts), and every
 * dead letter is reported to operators.
 */
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AlertEvent } from '../common/alert-events';
import { addDeadLetter } from './dead-letters';
import type { DeliveryProcessor } from './deliveries';
import { BadEventError, parseEvent } from './event-shape';
import { ingest } from './ingest';
import { countRetry } from './stats';
import type { AlertsConfig, FlushJob } from './types';

/** The job name of a dead letter queued again (operations.ts). */
export const REPLAY_JOB_NAME = 'replay';

export interface EventJobContext {
  redis: Redis;
  flushQueue: Queue<FlushJob>;
  config: AlertsConfig;
  log: Logger;
  report: DeliveryProcessor['report'];
}

/** A report about a dead-lettered report is not made: when ingest itself is broken, that would never end. */
function isDeadLetterReport(data: unknown): boolean {
  const e = data as Partial<AlertEvent> | null;
  return e?.kind === 'exception' && e.code === 'event-dead-lettered';
}

async function deadLetter(ctx: EventJobContext, job: Job, error: string, attempts: number, maxAttempts: number): Promise<string> {
  const id = `event-${job.id}`;
  await addDeadLetter(ctx.redis, { id, type: 'event', summary: `event ${job.id}`, error, attempts, maxAttempts, failedMs: Date.now(), data: job.data });
  ctx.log.error({ jobId: job.id, attempts, err: error }, 'alert event dead-lettered');
  if (!isDeadLetterReport(job.data)) {
    await ctx.report('event-dead-lettered', 'high', `alert event ${job.id} was dead-lettered after ${attempts} attempt(s): ${error}; see \`xdp-ids alerts dlq show ${id}\``,
      { eventId: job.id, attempts, error }, `dead-${id}`);
  }
  return 'dead-lettered';
}

export async function processEventJob(ctx: EventJobContext, job: Job): Promise<string> {
  let event: AlertEvent;
  try {
    event = parseEvent(job.data);
  } catch (err) {
    if (!(err instanceof BadEventError)) throw err;
    return deadLetter(ctx, job, err.message, job.attemptsMade + 1, job.attemptsMade + 1);
  }
  try {
    // A retry or a replay may follow a run that scheduled a flush in Redis but died before queueing its job.
    const rerun = job.attemptsStarted > 1 || job.name === REPLAY_JOB_NAME;
    const outcome = await ingest(ctx.redis, ctx.flushQueue, ctx.config, event, Date.now(), rerun);
    ctx.log.debug({ eventId: event.id, ...outcome }, 'event ingested');
    return outcome.result;
  } catch (err) {
    const error = (err as Error).message;
    const attempt = job.attemptsMade + 1;
    const maxAttempts = job.opts.attempts ?? 1;
    if (attempt >= maxAttempts) return deadLetter(ctx, job, error, attempt, maxAttempts);
    ctx.log.warn({ eventId: event.id, attempt, maxAttempts, err: error }, 'alert event not ingested, will retry');
    await countRetry(ctx.redis, 'event');
    throw err;
  }
}
