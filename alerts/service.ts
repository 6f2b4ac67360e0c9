/**
 * The alerter: three BullMQ workers on one Redis. `alerts` events are checked, silenced or
 * inhibited, and grouped (event-jobs.ts); `alerts-flush` jobs turn a group into a notification
 * and queue one delivery per receiver; `alerts-deliveries` jobs send. Any number of alerters can
 * run on the same Redis: every decision that must happen once is a job id or a Lua script.
 */
import os from 'node:os';
import { Queue, Worker, type Job } from 'bullmq';
import type { Transporter } from 'nodemailer';
import type { Logger } from 'pino';
import { ALERTS_QUEUE, type AlertEvent } from '../common/alert-events';
import { connectRedis, redactUrl, type RedisTarget } from '../common/redis';
import { HeartbeatWriter } from '../common/heartbeat';
import { loadConfig } from './config';
import { BACKOFF_TYPE, backoffStrategy, DeliveryProcessor, type DeliveryJob } from './deliveries';
import { emailTransport } from './email';
import { processEventJob } from './event-jobs';
import { takeNotification } from './grouping';
import type { AlertsConfig, FlushJob } from './types';
import { DELIVERY_QUEUE, FLUSH_QUEUE } from './keys';
import type { AlerterMetrics } from './metrics';

export interface AlerterOptions {
  /** The alerter role's Redis (common/redis-roles.ts). */
  redisUrl: RedisTarget;
  configPath: string;
  log: Logger;
  /** How long a job stays with an alerter that stopped answering before another takes it over (BullMQ lock). */
  lockDurationMs?: number;
  metrics?: AlerterMetrics;
  /** Its name in `xdp-ids status` (default host:pid). */
  id?: string;
}

/** An alerter's heartbeat (common/heartbeat.ts). */
export interface AlerterState {
  receivers: string[];
  routes: number;
}

export interface Alerter {
  stop(): Promise<void>;
}

const KEEP = { removeOnComplete: { age: 86_400, count: 10_000 } };
const BACKLOG_CHECK_MS = 30_000;
/** A backlog that persists is reported again after this long, not at every check. */
const BACKLOG_REPORT_EVERY_MS = 600_000;

export async function startAlerter(opts: AlerterOptions): Promise<Alerter> {
  const config = loadConfig(opts.configPath);
  return startAlerterWith(config, opts);
}

export async function startAlerterWith(config: AlertsConfig, opts: Omit<AlerterOptions, 'configPath'>): Promise<Alerter> {
  const log = opts.log;
  const redis = connectRedis(opts.redisUrl);
  const connection = (): ReturnType<typeof connectRedis> => connectRedis(opts.redisUrl);
  const alertsQueue = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
  const flushQueue = new Queue<FlushJob>(FLUSH_QUEUE, { connection: redis, defaultJobOptions: { ...KEEP, attempts: 10, backoff: { type: 'exponential', delay: 1000 } } });
  const deliveryQueue = new Queue<DeliveryJob>(DELIVERY_QUEUE, { connection: redis, defaultJobOptions: KEEP });
  const transports = new Map<string, Transporter>();
  for (const r of config.receivers.values()) if (r.type === 'email') transports.set(r.name, emailTransport(r));
  const lock = opts.lockDurationMs === undefined ? {} : { lockDuration: opts.lockDurationMs, stalledInterval: opts.lockDurationMs };
  const connections = [redis];
  const workerConnection = (): ReturnType<typeof connectRedis> => {
    const c = connection();
    connections.push(c);
    return c;
  };

  const processor = new DeliveryProcessor(redis, alertsQueue, config, transports, log);
  const checkBacklog = async (): Promise<void> => {
    for (const q of [alertsQueue, deliveryQueue]) {
      const counts = await q.getJobCounts('wait', 'delayed', 'prioritized');
      const waiting = Object.values(counts).reduce((a, b) => a + b, 0);
      if (waiting <= config.delivery.backlogAlert) continue;
      // Without the hash tag's braces, which only a Redis Cluster cares about (docs/redis-keys.md).
      const name = q.name.replace(/[{}]/g, '');
      await processor.report('queue-backlog', 'medium', `${waiting} jobs waiting in the ${name} queue (alert above ${config.delivery.backlogAlert})`,
        { queue: name, ...counts }, `backlog-${name}-${Math.floor(Date.now() / BACKLOG_REPORT_EVERY_MS)}`);
    }
  };
  const checkBacklogLogged = (): Promise<void> => checkBacklog().catch((err: Error) => log.warn({ err: err.message }, 'cannot check the queue backlog'));
  // Checked once before taking work, so an alerter coming back after an outage reports the pile at once.
  await checkBacklogLogged();
  const backlogTimer = setInterval(checkBacklogLogged, BACKLOG_CHECK_MS);
  backlogTimer.unref();

  const eventContext = { redis, flushQueue, config, log, report: processor.report.bind(processor) };
  const ingestWorker = new Worker<AlertEvent>(ALERTS_QUEUE, (job: Job) => processEventJob(eventContext, job), {
    connection: workerConnection(), concurrency: 16, maxStalledCount: 5, ...lock,
  });

  const flushWorker = new Worker<FlushJob>(FLUSH_QUEUE, async (job: Job<FlushJob>) => {
    const route = config.routes.find((r) => r.name === job.data.route);
    if (!route) {
      log.warn({ route: job.data.route }, 'a queued group belongs to a route that is no longer configured; its events stay in Redis');
      return 'no route';
    }
    const { notification, commit } = await takeNotification(redis, route, { ...job.data, flushId: job.id! }, Date.now());
    if (notification) {
      await deliveryQueue.addBulk(route.receivers.map((name) => ({
        name: 'deliver',
        data: { deliveryId: `${job.id}-${name}`, receiver: name, notification },
        opts: { jobId: `${job.id}-${name}`, attempts: config.receivers.get(name)!.attempts, backoff: { type: BACKOFF_TYPE } },
      })));
    }
    await commit();
    return notification ? `${notification.items.length} item(s)` : 'nothing to say';
  }, { connection: workerConnection(), concurrency: 4, maxStalledCount: 5, ...lock });

  const deliveryWorker = new Worker<DeliveryJob>(DELIVERY_QUEUE, (job) => processor.process(job), {
    connection: workerConnection(), concurrency: config.delivery.concurrency, maxStalledCount: 5, ...lock,
    settings: { backoffStrategy: backoffStrategy(config.delivery.backoffMs, config.delivery.maxBackoffMs) },
  });

  opts.metrics?.watch({ redis, alerts: alertsQueue, flush: flushQueue, deliveries: deliveryQueue }, { ingest: ingestWorker, deliveries: deliveryWorker });

  const workers = [ingestWorker, flushWorker, deliveryWorker];
  for (const w of workers) w.on('error', (err) => log.error({ queue: w.name, err: err.message }, 'alerter worker error (Redis unreachable?)'));
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  const heartbeat = new HeartbeatWriter<AlerterState>(redis, 'alerter', opts.id ?? `${os.hostname()}:${process.pid}`,
    () => ({ receivers: [...config.receivers.keys()], routes: config.routes.length }));
  heartbeat.start();
  log.info({ redis: redactUrl(opts.redisUrl), routes: config.routes.length, receivers: config.receivers.size }, 'alerter started');

  return {
    async stop() {
      clearInterval(backlogTimer);
      await heartbeat.stop();
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all([alertsQueue.close(), flushQueue.close(), deliveryQueue.close()]);
      for (const t of transports.values()) t.close();
      await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
    },
  };
}
