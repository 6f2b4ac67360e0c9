/**
 * At its maxmemory Redis refuses writes (noeviction, which BullMQ needs): windows, incidents,
 * blocks and alerts would stop. The watch compares used_memory with maxmemory (of any Redis that
 * sets one) and raises `redis-memory-high` when it passes 80 %, once, and again only after it has
 * fallen below.
 */
import type { RedisClient } from './redis';
import type { Logger } from 'pino';
import type { ExceptionReporter } from './exceptions';

export const MEMORY_HIGH_SHARE = 0.8;

export interface RedisMemory {
  usedBytes: number;
  /** 0: no bound. */
  maxBytes: number;
}

/** The two fields of `INFO memory` that matter here. */
export function parseMemoryInfo(info: string): RedisMemory {
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:(\\d+)\\r?$`, 'm').exec(info);
    if (!match) throw new Error(`INFO memory has no ${name}`);
    return Number(match[1]);
  };
  return { usedBytes: field('used_memory'), maxBytes: field('maxmemory') };
}

export interface RedisMemoryWatchOptions {
  log: Logger;
  /** Default 30 s. */
  everyMs?: number;
  /** Default MEMORY_HIGH_SHARE. */
  share?: number;
}

const mib = (bytes: number): string => `${(bytes / 1_048_576).toFixed(1)} MiB`;

export class RedisMemoryWatch {
  private high = false;
  private timer?: NodeJS.Timeout;
  private running = false;
  private readonly share: number;

  constructor(private readonly redis: RedisClient, private readonly exceptions: ExceptionReporter, private readonly opts: RedisMemoryWatchOptions) {
    this.share = opts.share ?? MEMORY_HIGH_SHARE;
  }

  /** One look (reported when memory has just become high); true while it is high. */
  async check(): Promise<boolean> {
    const { usedBytes, maxBytes } = parseMemoryInfo(await this.redis.info('memory'));
    const high = maxBytes > 0 && usedBytes >= this.share * maxBytes;
    if (high && !this.high) {
      await this.exceptions.report('redis-memory-high', 'high',
        `Redis uses ${mib(usedBytes)} of its maxmemory ${mib(maxBytes)} (${Math.round((100 * usedBytes) / maxBytes)} %); at the bound it refuses every write (windows, incidents, blocks, alerts)`,
        { usedBytes, maxBytes, share: this.share });
    }
    this.high = high;
    return high;
  }

  /** Checks now and then every `everyMs`. */
  start(): void {
    this.running = true;
    const look = (): void => {
      this.check().catch((err: Error) => this.opts.log.debug({ err: err.message }, 'cannot read Redis memory')).finally(() => {
        if (!this.running) return;
        this.timer = setTimeout(look, this.opts.everyMs ?? 30_000);
        this.timer.unref();
      });
    };
    look();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
  }
}
