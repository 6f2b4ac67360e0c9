/**
 * Windows jobs left active by a detector that died (SIGKILL, a lost host) while it evaluated
 * them. BullMQ hands such a job back only after two stalled checks, behind the windows that
 * arrived meanwhile, and a window evaluated after a later one of its sensor resets that sensor's
 * rule state (the engine reads a window id going back as a restarted sensor). The detector that
 * takes a partition over therefore puts them back at the head of its queue, oldest first, before
 * it consumes anything, once their locks have expired: proof that no live detector holds them.
 */
import type { Job, Queue } from 'bullmq';
import type { RedisClient } from '../common/redis';

/** The ids of the jobs put back, oldest first; none when a lock outlives `waitMs` (a live holder: BullMQ's stalled checks then decide). */
export async function requeueOrphans(queue: Queue, redis: RedisClient, waitMs: number, cancelled: () => boolean): Promise<string[]> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const active = (await queue.getJobs(['active'])).filter((j): j is Job & { id: string } => j?.id !== undefined);
    if (active.length === 0 || cancelled()) return [];
    const locked = await Promise.all(active.map((j) => redis.exists(queue.toKey(`${j.id}:lock`))));
    if (locked.every((n) => n === 0)) {
      // Each goes to the head of the line, so the newest goes first and the oldest ends in front.
      const newestFirst = active.sort((a, b) => b.timestamp - a.timestamp || b.id.localeCompare(a.id, 'en', { numeric: true }));
      for (const job of newestFirst) await job.moveToWait('0');
      return newestFirst.map((j) => j.id).reverse();
    }
    if (Date.now() > deadline) return [];
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
