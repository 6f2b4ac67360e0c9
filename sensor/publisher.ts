/**
 * The sensor's way out: every tick becomes jobs on its partition of the `windows` queue, trips go
 * out at once, samples ride on the next tick. Redis being down never stops the sensor (the XDP
 * program keeps counting and enforcing blocks): jobs wait in a bounded buffer, the oldest are
 * dropped and counted when it is full, and the backlog is sent in order when Redis returns,
 * followed by an exception event saying how long Redis was away and what was lost.
 */
import { Queue } from 'bullmq';
import type { Logger } from 'pino';
import { ALERTS_QUEUE, type AlertEvent } from '../common/alert-events';
import { ExceptionReporter } from '../common/exceptions';
import { connectRedis, type RedisTarget, type RedisClient } from '../common/redis';
import type { HeaderSample, Sample, SensorSink, SensorTick, Trip } from '../common/sensor-tick';
import { encodeTick, JOB_FORMAT, MAX_SAMPLES_PER_JOB, partitionOf, partitionQueue, type WindowsJob } from '../common/windows-jobs';

export interface PublisherOptions {
  /** The sensor role's Redis (common/redis-roles.ts). */
  redisUrl: RedisTarget;
  sensorId: string;
  log: Logger;
  /** Jobs kept while Redis is unreachable (a tick of up to 10,000 sources is one job). */
  maxBufferedJobs?: number;
  /** Other sinks that see everything too (the live view, the demo's model learner). */
  also?: SensorSink[];
}

export interface PublisherStats {
  published: number;
  buffered: number;
  /** Jobs dropped because the buffer was full, since start. */
  dropped: number;
  connected: boolean;
}

const JOB_OPTIONS = { removeOnComplete: true, removeOnFail: 1000 } as const;

/** A job's id: the same job sent twice (a retry after an outage) is one job. BullMQ refuses `:` in ids, and IPv6 addresses are full of them. */
function jobName(job: WindowsJob): string {
  const id = job.type === 'tick' ? `${job.sensor}|${job.window}|${job.part}` : `${job.trip.sensor}|${job.trip.window}|${job.trip.kind}|${job.trip.src}`;
  return id.replaceAll(':', '_');
}

export class QueuePublisher implements SensorSink {
  private readonly connection: RedisClient;
  private readonly queue: Queue<WindowsJob>;
  private readonly alerts: Queue<AlertEvent>;
  private readonly exceptions: ExceptionReporter;
  private readonly buffer: WindowsJob[] = [];
  private samples: HeaderSample[] = [];
  private readonly maxBuffered: number;
  private flushing = false;
  private closed = false;
  private published = 0;
  private dropped = 0;
  private droppedThisOutage = 0;
  private downSinceMs?: number;

  constructor(private readonly opts: PublisherOptions) {
    this.maxBuffered = opts.maxBufferedJobs ?? 600;
    // Fail commands at once while disconnected: the buffer here is bounded, ioredis' is not.
    this.connection = connectRedis(opts.redisUrl, { enableOfflineQueue: false });
    this.connection.on('error', () => this.noteDown());
    this.connection.on('close', () => this.noteDown());
    this.connection.on('ready', () => void this.flush());
    this.queue = new Queue(partitionQueue(partitionOf(opts.sensorId)), { connection: this.connection });
    this.alerts = new Queue(ALERTS_QUEUE, { connection: this.connection });
    // The connection's errors, relayed: its own listener notes the outage; unheard, BullMQ would print each one.
    this.queue.on('error', () => undefined);
    this.alerts.on('error', () => undefined);
    this.exceptions = new ExceptionReporter(this.alerts, `sensor@${opts.sensorId}`, opts.log);
  }

  get partitionQueue(): string {
    return this.queue.name;
  }

  tick(tick: SensorTick): void {
    const samples = this.samples;
    this.samples = [];
    this.enqueue(encodeTick(tick, samples));
    this.reportBlindSpots(tick);
    for (const sink of this.opts.also ?? []) void sink.tick(tick);
  }

  /**
   * Sources the kernel could not follow are invisible to every rule: new ones the insert throttle
   * refused (counted only in sum) and tracked ones its full table evicted. Both are what a flood of
   * forged sources causes, and operators must know the sensor is partly blind.
   */
  private reportBlindSpots(tick: SensorTick): void {
    const untracked = tick.untracked.packets;
    if (untracked === 0 && tick.evictedSources === 0) return;
    void this.exceptions.report('sensor-blind-spot', 'medium',
      `sensor partly blind in window ${tick.window}: ${untracked} packets from sources the insert throttle did not track, `
        + `${tick.evictedSources} tracked sources evicted by a full source table (${tick.trackedSources} tracked); `
        + 'likely a flood of forged sources: see the destination-scoped incidents',
      { untrackedPackets: untracked, evictedSources: tick.evictedSources, trackedSources: tick.trackedSources, window: tick.window });
  }

  trip(trip: Trip): void {
    this.enqueue([{ f: JOB_FORMAT, type: 'trip', trip }]);
    for (const sink of this.opts.also ?? []) void sink.trip(trip);
  }

  sample(sample: Sample): void {
    this.samples.push(sample.packet);
    if (this.samples.length > MAX_SAMPLES_PER_JOB) this.samples.shift();
    for (const sink of this.opts.also ?? []) void sink.sample(sample);
  }

  stats(): PublisherStats {
    return { published: this.published, buffered: this.buffer.length, dropped: this.dropped, connected: this.connection.status === 'ready' };
  }

  /** Sends what is buffered (waiting up to `timeoutMs` for Redis), then closes the connections. */
  async close(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length > 0 && Date.now() < deadline) {
      await this.flush();
      if (this.buffer.length > 0) await new Promise((r) => setTimeout(r, 50));
    }
    this.closed = true;
    if (this.buffer.length > 0) this.opts.log.warn({ jobs: this.buffer.length }, 'windows not sent before exit');
    await Promise.allSettled([this.queue.close(), this.alerts.close()]);
    this.connection.disconnect();
  }

  private enqueue(jobs: WindowsJob[]): void {
    this.buffer.push(...jobs);
    const excess = this.buffer.length - this.maxBuffered;
    if (excess > 0) {
      this.buffer.splice(0, excess);
      this.dropped += excess;
      this.droppedThisOutage += excess;
    }
    void this.flush();
  }

  private noteDown(): void {
    if (this.closed || this.downSinceMs !== undefined) return;
    this.downSinceMs = Date.now();
    this.opts.log.error({ buffered: this.buffer.length }, 'Redis unreachable: buffering windows');
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.closed) return;
    this.flushing = true;
    try {
      // One job at a time, each sent once the one before it is in: a pipeline (BullMQ's addBulk) that
      // fails part way, as one does while a Cluster node fails over, has added some of its jobs, and
      // sent again the rest would land after them, out of the order the rules read them in.
      while (this.buffer.length > 0 && this.connection.status === 'ready') {
        const job = this.buffer[0];
        try {
          await this.queue.add(job.type, job, { ...JOB_OPTIONS, jobId: jobName(job) });
        } catch (err) {
          this.noteDown();
          this.opts.log.debug({ err }, 'publishing failed; will retry when Redis is back');
          break;
        }
        // The buffer may have lost its oldest jobs to overflow while we waited.
        const i = this.buffer.indexOf(job);
        if (i >= 0) this.buffer.splice(i, 1);
        this.published++;
      }
      if (this.buffer.length === 0 && this.downSinceMs !== undefined) this.recovered();
    } finally {
      this.flushing = false;
    }
  }

  private recovered(): void {
    const downForMs = Date.now() - this.downSinceMs!;
    const dropped = this.droppedThisOutage;
    this.downSinceMs = undefined;
    this.droppedThisOutage = 0;
    this.opts.log.info({ downForMs, dropped }, 'Redis reachable again: backlog sent');
    void this.exceptions.report(dropped > 0 ? 'windows-dropped' : 'redis-unreachable', dropped > 0 ? 'high' : 'medium',
      `Redis was unreachable for ${(downForMs / 1000).toFixed(1)} s; ${dropped} window jobs were dropped (buffer of ${this.maxBuffered})`,
      { downForMs, droppedJobs: dropped, bufferJobs: this.maxBuffered });
  }
}
