/**
 * The dead-letter list: deliveries that exhausted their attempts (or met a final error or a
 * disabled receiver), and events the alerter could not read. Kept in Redis until an operator
 * replays or deletes them; entries are keyed by delivery or event id, so recording one twice
 * (a crash between recording and finishing the job) keeps one.
 */
import type { RedisClient } from '../common/redis';
import { keys } from './keys';
import { deadLetterField } from './stats';

export interface DeadLetter {
  id: string;
  type: 'delivery' | 'event';
  /** For deliveries. */
  receiver?: string;
  summary: string;
  error: string;
  attempts: number;
  /** Attempts a delivery was allowed (a replay gets as many again), or an event was given. */
  maxAttempts: number;
  failedMs: number;
  /** The delivery job data or the event, as received. */
  data: unknown;
}

/** Also counts it (stats.ts). */
export async function addDeadLetter(redis: RedisClient, entry: DeadLetter): Promise<void> {
  await redis.multi().hset(keys.deadLetters, entry.id, JSON.stringify(entry)).zadd(keys.deadLetterOrder, String(entry.failedMs), entry.id)
    .hincrby(keys.stats, deadLetterField(entry.type), 1).exec();
}

/** Oldest first. */
export async function listDeadLetters(redis: RedisClient): Promise<DeadLetter[]> {
  const ids = await redis.zrange(keys.deadLetterOrder, '0', '-1');
  if (ids.length === 0) return [];
  const values = await redis.hmget(keys.deadLetters, ...ids);
  return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as DeadLetter);
}

export async function getDeadLetter(redis: RedisClient, id: string): Promise<DeadLetter | undefined> {
  const value = await redis.hget(keys.deadLetters, id);
  return value ? JSON.parse(value) as DeadLetter : undefined;
}

export async function removeDeadLetter(redis: RedisClient, id: string): Promise<void> {
  await redis.multi().hdel(keys.deadLetters, id).zrem(keys.deadLetterOrder, id).exec();
}
