/**
 * What each detector and alerter says about itself, for `xdp-ids status`: one hash per part,
 * `xdp-ids:heartbeat:<part>`, process id → JSON with `atMs`, rewritten every HEARTBEAT_MS. An
 * entry older than STALE_MS belongs to a process that stopped answering (a crash: a clean stop
 * removes its own); such entries are dropped by the writers after FORGET_MS, so the hash stays
 * as small as the fleet. Writes are best effort: Redis being away must not stop a detector.
 */
import os from 'node:os';
import type { RedisClient } from './redis';

export type HeartbeatPart = 'detector' | 'alerter';

export const HEARTBEAT_MS = 5_000;
/** Three beats missed. */
export const STALE_MS = 3 * HEARTBEAT_MS;
const FORGET_MS = 86_400_000;

export function heartbeatKey(part: HeartbeatPart): string {
  return `xdp-ids:heartbeat:${part}`;
}

export interface Heartbeat<T> {
  id: string;
  host: string;
  pid: number;
  startedMs: number;
  atMs: number;
  state: T;
}

export class HeartbeatWriter<T> {
  private timer?: NodeJS.Timeout;
  private beating?: Promise<void>;
  private readonly startedMs = Date.now();

  constructor(private readonly redis: RedisClient, private readonly part: HeartbeatPart, private readonly id: string, private readonly state: () => T) {}

  start(): void {
    const beat = (): void => {
      this.beating ??= this.beat().finally(() => { this.beating = undefined; });
    };
    beat();
    this.timer = setInterval(beat, HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Removes this process's entry, after a beat in flight (which would otherwise write it back). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    await this.redis.hdel(heartbeatKey(this.part), this.id).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    const beat: Heartbeat<T> = { id: this.id, host: os.hostname(), pid: process.pid, startedMs: this.startedMs, atMs: now, state: this.state() };
    try {
      await this.redis.hset(heartbeatKey(this.part), this.id, JSON.stringify(beat));
      const forgotten = (await readHeartbeats<T>(this.redis, this.part)).filter((b) => now - b.atMs > FORGET_MS).map((b) => b.id);
      if (forgotten.length) await this.redis.hdel(heartbeatKey(this.part), ...forgotten);
    } catch {
      // Best effort: the next beat tries again.
    }
  }
}

export async function readHeartbeats<T>(redis: RedisClient, part: HeartbeatPart): Promise<Heartbeat<T>[]> {
  const all = await redis.hgetall(heartbeatKey(part));
  return Object.values(all).flatMap((text) => {
    try {
      return [JSON.parse(text) as Heartbeat<T>];
    } catch {
      return [];
    }
  }).sort((a, b) => a.id.localeCompare(b.id));
}
