/**
 * Block decisions taken outside an incident's opening (manual, expiry, budget) told to the
 * alerter: BlockEvents and ExceptionEvents on the BullMQ alerts queue, job id = event id.
 */
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { RedisClient } from '../common/redis';
import { ALERTS_QUEUE, ALERT_EVENT_JOB_OPTIONS, ALERT_EVENT_VERSION, type AlertEvent, type BlockEvent, type ExceptionEvent } from '../common/alert-events';

type Unstamped<T> = T extends unknown ? Omit<T, 'v' | 'id' | 'atMs'> : never;

export interface Notices {
  send(event: Unstamped<BlockEvent> | Unstamped<ExceptionEvent>): Promise<void>;
  close(): Promise<void>;
}

export class AlertQueueNotices implements Notices {
  private readonly queue: Queue;

  constructor(connection: RedisClient) {
    this.queue = new Queue(ALERTS_QUEUE, { connection });
    // Connection errors reach the caller as a rejected send(); the owner of the connection logs outages.
    this.queue.on('error', () => undefined);
  }

  async send(event: Unstamped<BlockEvent> | Unstamped<ExceptionEvent>): Promise<void> {
    const stamped = { ...event, v: ALERT_EVENT_VERSION, id: randomUUID(), atMs: Date.now() } as AlertEvent;
    await this.queue.add(stamped.kind, stamped, { ...ALERT_EVENT_JOB_OPTIONS, jobId: stamped.id });
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
