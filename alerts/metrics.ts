/**
 * The alerter's Prometheus metrics. Counters are this process's own (its workers' completed and
 * failed jobs): deliveries by receiver and outcome, events by outcome, retries. Gauges read the
 * shared state in Redis at scrape time, so every alerter on one Redis reports the same: dead
 * letters waiting for an operator, groups waiting for their flush, jobs waiting in the queues.
 */
import type { Job, Queue, Worker } from 'bullmq';
import type { RedisClient } from '../common/redis';
import { Counter, Gauge, type Registry } from 'prom-client';
import { keys } from './keys';

const DELIVERY_OUTCOMES: Record<string, string> = { sent: 'sent', 'already sent': 'duplicate', 'dead-lettered': 'dead_letter' };
const EVENT_OUTCOMES = new Set(['grouped', 'silenced', 'inhibited', 'unrouted', 'dead-lettered']);

export interface AlerterQueues {
  redis: RedisClient;
  alerts: Queue;
  flush: Queue;
  deliveries: Queue;
}

export class AlerterMetrics {
  private readonly deliveries: Counter;
  private readonly events: Counter;
  private readonly retries: Counter;
  private queues?: AlerterQueues;

  constructor(registry: Registry) {
    const registers = [registry];
    const metrics = this;
    this.deliveries = new Counter({
      name: 'xdp_ids_alerter_deliveries_total', help: 'Delivery attempts by receiver and outcome (sent, retry, dead_letter, duplicate, failed)',
      labelNames: ['receiver', 'outcome'], registers,
    });
    this.events = new Counter({ name: 'xdp_ids_alerter_events_total', help: 'Alert events ingested, by outcome', labelNames: ['outcome'], registers });
    this.retries = new Counter({ name: 'xdp_ids_alerter_retries_total', help: 'Events and deliveries that failed and will be tried again', labelNames: ['work'], registers });
    new Gauge({
      name: 'xdp_ids_alerter_dead_letters', help: 'Dead letters waiting for an operator (all alerters on this Redis)', registers,
      async collect() {
        if (metrics.queues) this.set(await metrics.queues.redis.zcard(keys.deadLetterOrder));
      },
    });
    new Gauge({
      name: 'xdp_ids_alerter_groups_pending', help: 'Alert groups waiting for their next flush (all alerters on this Redis)', registers,
      async collect() {
        if (metrics.queues) this.set(sum(await metrics.queues.flush.getJobCounts('wait', 'delayed', 'prioritized')));
      },
    });
    new Gauge({
      name: 'xdp_ids_alerter_queue_jobs', help: 'Jobs waiting in the alerter\'s queues (all alerters on this Redis)', labelNames: ['queue'], registers,
      async collect() {
        if (!metrics.queues) return;
        for (const q of [metrics.queues.alerts, metrics.queues.deliveries]) this.set({ queue: q.name }, sum(await q.getJobCounts('wait', 'delayed', 'prioritized')));
      },
    });
  }

  /** Counts what the workers finish, and reads the shared state through these queues. */
  watch(queues: AlerterQueues, workers: { ingest: Worker; deliveries: Worker }): void {
    this.queues = queues;
    workers.deliveries.on('completed', (job: Job, result: string) => this.deliveries.inc({ receiver: job.data.receiver, outcome: DELIVERY_OUTCOMES[result] ?? 'other' }));
    workers.deliveries.on('failed', (job: Job | undefined) => {
      if (!job) return;
      const retried = job.attemptsMade < (job.opts.attempts ?? 1);
      this.deliveries.inc({ receiver: job.data.receiver, outcome: retried ? 'retry' : 'failed' });
      if (retried) this.retries.inc({ work: 'delivery' });
    });
    workers.ingest.on('completed', (_job: Job, result: string) => this.events.inc({ outcome: EVENT_OUTCOMES.has(result) ? result.replace('-', '_') : 'other' }));
    workers.ingest.on('failed', () => this.retries.inc({ work: 'event' }));
  }
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
