/**
 * What the alerter retried and dead-lettered, counted in one Redis hash shared by every alerter
 * process (`xdp-ids alerts stats`), so an operator sees trouble that retries hid.
 */
import type { RedisClient } from '../common/redis';
import { keys } from './keys';

/** Events are jobs of the alerts queue, deliveries one message to one receiver. */
export type Work = 'event' | 'delivery';

export type AlerterStats = Record<`${Work}-retries` | `${Work}-dead-letters`, number>;

export const deadLetterField = (work: Work): keyof AlerterStats => `${work}-dead-letters`;

export async function countRetry(redis: RedisClient, work: Work): Promise<void> {
  await redis.hincrby(keys.stats, `${work}-retries`, 1);
}

export async function readStats(redis: RedisClient): Promise<AlerterStats> {
  const h = await redis.hgetall(keys.stats);
  const n = (field: keyof AlerterStats): number => Number(h[field] ?? 0);
  return {
    'event-retries': n('event-retries'), 'event-dead-letters': n('event-dead-letters'),
    'delivery-retries': n('delivery-retries'), 'delivery-dead-letters': n('delivery-dead-letters'),
  };
}
