/**
 * Destination SYN limits in the ledger: the response to a SYN flood with spoofed sources, where
 * blocking sources would only block forged addresses. A limit caps the SYNs XDP lets through to
 * one protected address (the excess is dropped before it reaches the source table), expires like
 * a block, and is broadcast and reconciled with blocks (same revision counter and channel).
 *
 * Keys: `dstlimit:<address>` the entry (kept an hour past its expiry, so that the expiry can be
 * announced with its origin), `dstlimits` zset address → expiresMs.
 */
import type { Redis } from 'ioredis';
import { CHANGES_CHANNEL, EXPIRED_KEEP_MS, NS, REV, sweepIndex, type Origin } from './ledger';

const INDEX = `${NS}dstlimits`;
/** As many as the kernel map holds. */
export const MAX_LIMITS = 1024;

export interface LimitEntry {
  /** The protected address, e.g. `198.18.0.1`. */
  target: string;
  synPerSecond: number;
  origin: Origin;
  reason: string;
  ruleId?: string;
  incidentId?: string;
  createdMs: number;
  expiresMs: number;
}

export interface LimitInput {
  target: string;
  synPerSecond: number;
  ttlMs: number;
  origin: Origin;
  reason: string;
  ruleId?: string;
  incidentId?: string;
}

/** A repeat keeps the earlier creation and the later expiry; the rate is the newest asked for. */
const LIMIT_SCRIPT = `
local now = tonumber(ARGV[2])
local existing = redis.call('GET', KEYS[1])
if existing then existing = cjson.decode(existing) end
if existing and existing.expiresMs <= now then existing = nil end
if not existing and redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[2], '+inf') >= tonumber(ARGV[5]) then return {'full'} end
local entry = cjson.decode(ARGV[3])
entry.createdMs = now
entry.expiresMs = now + tonumber(ARGV[4])
local status = 'limited'
if existing then
  entry.createdMs = existing.createdMs
  if existing.expiresMs > entry.expiresMs then entry.expiresMs = existing.expiresMs end
  status = 'extended'
end
local text = cjson.encode(entry)
redis.call('SET', KEYS[1], text, 'PX', entry.expiresMs - now + tonumber(ARGV[7]))
redis.call('ZADD', KEYS[2], entry.expiresMs, ARGV[1])
local rev = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[6], cjson.encode({op='limit', rev=rev, target=ARGV[1], synPerSecond=entry.synPerSecond, expiresMs=entry.expiresMs}))
return {status, text}
`;

/** Removes a live limit and returns its entry; an expired one is left for the sweep to announce. */
const UNLIMIT_SCRIPT = `
local text = redis.call('GET', KEYS[1])
if not text or cjson.decode(text).expiresMs <= tonumber(ARGV[3]) then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local rev = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[2], cjson.encode({op='unlimit', rev=rev, target=ARGV[1]}))
return text
`;

export type LimitResult = { status: 'limited' | 'extended'; entry: LimitEntry } | { status: 'full' };

export class LimitLedger {
  constructor(private readonly redis: Redis) {}

  async limit(input: LimitInput, nowMs = Date.now()): Promise<LimitResult> {
    const entry = { target: input.target, synPerSecond: input.synPerSecond, origin: input.origin, reason: input.reason, ruleId: input.ruleId, incidentId: input.incidentId };
    const reply = await this.redis.eval(LIMIT_SCRIPT, 3, `${NS}dstlimit:${input.target}`, INDEX, REV,
      input.target, String(nowMs), JSON.stringify(entry), String(input.ttlMs), String(MAX_LIMITS), CHANGES_CHANNEL, String(EXPIRED_KEEP_MS)) as [string, string?];
    if (reply[0] === 'full') return { status: 'full' };
    return { status: reply[0] as 'limited' | 'extended', entry: JSON.parse(reply[1]!) as LimitEntry };
  }

  /** The removed entry; undefined when no live limit was there. */
  async unlimit(target: string, nowMs = Date.now()): Promise<LimitEntry | undefined> {
    const text = await this.redis.eval(UNLIMIT_SCRIPT, 3, `${NS}dstlimit:${target}`, INDEX, REV, target, CHANGES_CHANNEL, String(nowMs)) as string | null;
    return text ? JSON.parse(text) as LimitEntry : undefined;
  }

  /** Live limits, soonest expiry first. */
  async list(nowMs = Date.now()): Promise<LimitEntry[]> {
    const targets = await this.redis.zrangebyscore(INDEX, `(${nowMs}`, '+inf');
    if (targets.length === 0) return [];
    const texts = await this.redis.mget(targets.map((t) => `${NS}dstlimit:${t}`));
    return texts.flatMap((t) => (t ? [JSON.parse(t) as LimitEntry] : [])).filter((e) => e.expiresMs > nowMs);
  }

  /** Expired limits, each returned to exactly one caller (for its notice). */
  async sweepExpired(nowMs = Date.now()): Promise<Array<Partial<LimitEntry> & { target: string }>> {
    return sweepIndex<LimitEntry>(this.redis, INDEX, `${NS}dstlimit:`, 'unlimit', nowMs);
  }
}
