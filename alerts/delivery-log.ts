/**
 * What the alerter delivered lately, for operators (the dashboard's alerts page): the jobs of the
 * `alerts-deliveries` queue, which keeps finished ones for a day (service.ts), newest first, each
 * with its receiver, what it said, how it ended and how many attempts it took.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { DeliveryJob } from './deliveries';
import { DELIVERY_QUEUE } from './keys';
import { notificationView } from './view';

export interface DeliveryRecord {
  id: string;
  receiver: string;
  /** `sent`, `dead-lettered`, `already sent` once finished; else the job's state (`waiting`, `delayed`: retrying, `active`). */
  state: string;
  /** e.g. `OPENED Vertical TCP port scan (+1 more)`. */
  summary: string;
  attempts: number;
  createdMs: number;
  finishedMs?: number;
  /** The last attempt's error, while it is retried. */
  error?: string;
}

const STATES = ['active', 'waiting', 'delayed', 'completed', 'failed'] as const;

function summaryOf(job: DeliveryJob): string {
  const view = notificationView(job.notification);
  return `${view.phase} ${view.title}${view.more > 0 ? ` (+${view.more} more)` : ''}`;
}

export async function recentDeliveries(redis: Redis, limit = 50): Promise<DeliveryRecord[]> {
  const queue = new Queue<DeliveryJob>(DELIVERY_QUEUE, { connection: redis });
  try {
    const jobs = await queue.getJobs([...STATES], 0, limit - 1, false);
    const records = await Promise.all(jobs.filter((job) => job?.data?.notification).map(async (job): Promise<DeliveryRecord> => {
      const state = job.finishedOn && typeof job.returnvalue === 'string' ? job.returnvalue : await job.getState();
      return {
        id: job.data.deliveryId, receiver: job.data.receiver, state, summary: summaryOf(job.data), attempts: job.attemptsMade, createdMs: job.timestamp,
        ...(job.finishedOn ? { finishedMs: job.finishedOn } : {}), ...(job.failedReason && !job.finishedOn ? { error: job.failedReason } : {}),
      };
    }));
    return records.sort((a, b) => b.createdMs - a.createdMs).slice(0, limit);
  } finally {
    await queue.close();
  }
}
