/**
 * Which detector consumes which partition of the windows queue (common/windows-jobs.ts). Live
 * detectors heartbeat into a sorted set; each partition belongs to the live detector that wins
 * rendezvous hashing for it, so adding or losing a detector moves only its share. Ownership is
 * a lease in Redis (SET NX PX, renewed every heartbeat): a partition is consumed by at most one
 * detector at a time, and one that dies loses its partitions when its leases run out.
 */
import type { RedisClient } from '../common/redis';
import type { Logger } from 'pino';

export interface PartitionOptions {
  partitions: number;
  prefix?: string;
  leaseMs?: number;
  heartbeatMs?: number;
  /** Starts consuming a partition. */
  acquire(partition: number): Promise<void>;
  /** Stops consuming (after the job in progress); the lease is given up afterwards. */
  release(partition: number): Promise<void>;
  log: Logger;
}

/** How long a partition stays with a detector that stopped renewing its lease. */
export const PARTITION_LEASE_MS = 5000;

const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const GIVE_UP = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

interface Scripts {
  leaseRenew(key: string, owner: string, ms: number): Promise<number>;
  leaseGiveUp(key: string, owner: string): Promise<number>;
}

function score(member: string, partition: number): number {
  let h = 0x811c9dc5;
  const text = `${member}|${partition}`;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  return Math.imul(h, 0x85ebca6b) >>> 0;
}

/** The key of a partition's lease: its value is the detector that holds it. */
export function partitionLeaseKey(partition: number, prefix = 'xdp-ids'): string {
  return `${prefix}:partition:${partition}`;
}

/** The member that owns `partition` among `members` (rendezvous hashing). */
export function ownerOf(partition: number, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const m of members) {
    const s = score(m, partition);
    if (s > bestScore || (s === bestScore && m < best!)) {
      best = m;
      bestScore = s;
    }
  }
  return best;
}

export class PartitionOwner {
  private readonly owned = new Set<number>();
  private readonly prefix: string;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(private readonly redis: RedisClient, readonly member: string, private readonly opts: PartitionOptions) {
    this.prefix = opts.prefix ?? 'xdp-ids';
    this.leaseMs = opts.leaseMs ?? PARTITION_LEASE_MS;
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    if (!('leaseRenew' in redis)) {
      redis.defineCommand('leaseRenew', { numberOfKeys: 1, lua: RENEW });
      redis.defineCommand('leaseGiveUp', { numberOfKeys: 1, lua: GIVE_UP });
    }
  }

  get partitions(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  /** Takes this detector's share now, then keeps it up to date every heartbeat. */
  async start(): Promise<void> {
    await this.beat();
    const loop = (): void => {
      this.timer = setTimeout(() => {
        this.running = this.beat().catch((err) => this.opts.log.warn({ err }, 'partition heartbeat failed')).finally(() => {
          if (!this.stopped) loop();
        });
      }, this.heartbeatMs);
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    for (const p of this.partitions) await this.let(p);
    await this.redis.zrem(this.membersKey(), this.member).catch(() => undefined);
  }

  private membersKey(): string {
    return `${this.prefix}:detectors`;
  }

  private leaseKey(p: number): string {
    return partitionLeaseKey(p, this.prefix);
  }

  private async beat(): Promise<void> {
    const now = Date.now();
    const members = (await this.redis.multi()
      .zadd(this.membersKey(), now, this.member)
      .zremrangebyscore(this.membersKey(), '-inf', now - this.leaseMs)
      .zrange(this.membersKey(), '0', '-1')
      .exec())![2][1] as string[];
    const scripts = this.redis as unknown as Scripts;
    for (let p = 0; p < this.opts.partitions; p++) {
      const mine = ownerOf(p, members) === this.member;
      if (this.owned.has(p)) {
        const renewed = mine && (await scripts.leaseRenew(this.leaseKey(p), this.member, this.leaseMs)) === 1;
        if (!renewed) await this.let(p);
      } else if (mine && (await this.redis.set(this.leaseKey(p), this.member, 'PX', this.leaseMs, 'NX')) === 'OK') {
        this.owned.add(p);
        this.opts.log.debug({ partition: p }, 'consuming partition');
        await this.opts.acquire(p);
      }
    }
  }

  private async let(p: number): Promise<void> {
    this.owned.delete(p);
    await this.opts.release(p);
    await (this.redis as unknown as Scripts).leaseGiveUp(this.leaseKey(p), this.member).catch(() => undefined);
    this.opts.log.debug({ partition: p }, 'released partition');
  }
}
