/**
 * One short-lived connection as the control role for an operator's command (`xdp-ids incidents`,
 * `xdp-ids status`): it fails at once when Redis is away, and every failure to reach it becomes
 * a CommanderError (exit 1) that says what to fix.
 */
import { Command, CommanderError } from 'commander';
import type { RedisClient } from '../common/redis';
import { createLogger } from '../common/log';
import { connectRedis, describeRedisError, type RedisConnection } from '../common/redis';
import { NO_REDIS, redisConnectionOf } from '../common/redis-config';
import { EXIT } from './exit-codes';

export const CONTROL_REDIS_HELP = 'the Redis every part shares, as the control role (URL without a password; default: $XDP_IDS_REDIS_URL)';

function fail(message: string): never {
  throw new CommanderError(EXIT.error, 'xdp-ids.redis', message);
}

export async function withControlRedis<T>(cmd: Command, work: (redis: RedisClient) => Promise<T>): Promise<T> {
  let target: RedisConnection | undefined;
  try {
    target = redisConnectionOf(cmd.optsWithGlobals(), createLogger('cli'));
  } catch (err) {
    fail((err as Error).message);
  }
  if (!target) fail(`${NO_REDIS} (as the control role)`);
  const redis = connectRedis(target, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  let connectionError: Error | undefined;
  redis.on('error', (err: Error) => { connectionError = err; });
  try {
    return await work(redis);
  } catch (err) {
    if (err instanceof CommanderError) throw err;
    fail(connectionError ? describeRedisError(connectionError, target) : (err as Error).message);
  } finally {
    redis.disconnect();
  }
}
