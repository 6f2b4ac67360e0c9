/**
 * Silences: matchers with an expiry, stored in Redis so every alerter honours them at once.
 * A silenced event is dropped before grouping; an incident that is still open when its silence
 * ends is announced by its next update.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../common/redis';
import { keys } from './keys';
import { matchesAll, type Labels, type Matcher } from './matchers';

export interface Silence {
  id: string;
  matchers: Matcher[];
  startsMs: number;
  endsMs: number;
  createdBy: string;
  comment: string;
}

export async function addSilence(redis: RedisClient, s: Omit<Silence, 'id'>): Promise<Silence> {
  if (s.matchers.length === 0) throw new Error('a silence needs at least one matcher (it would silence everything)');
  if (s.endsMs <= s.startsMs) throw new Error('a silence must end after it starts');
  const silence = { id: randomUUID(), ...s };
  await redis.hset(keys.silences, silence.id, JSON.stringify(silence));
  return silence;
}

/** Active and future silences; expired ones are removed on the way. */
export async function listSilences(redis: RedisClient, nowMs: number): Promise<Silence[]> {
  const all = Object.values(await redis.hgetall(keys.silences)).map((v) => JSON.parse(v) as Silence);
  const expired = all.filter((s) => s.endsMs <= nowMs).map((s) => s.id);
  if (expired.length > 0) await redis.hdel(keys.silences, ...expired);
  return all.filter((s) => s.endsMs > nowMs).sort((a, b) => a.startsMs - b.startsMs);
}

/** True when the silence existed. */
export async function deleteSilence(redis: RedisClient, id: string): Promise<boolean> {
  return (await redis.hdel(keys.silences, id)) === 1;
}

export function silencedBy(silences: readonly Silence[], labels: Labels, nowMs: number): Silence | undefined {
  return silences.find((s) => s.startsMs <= nowMs && nowMs < s.endsMs && matchesAll(s.matchers, labels));
}
