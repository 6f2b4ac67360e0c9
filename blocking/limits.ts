/**
 * Destination limits in the ledger: the response to attacks whose sources are forged or
 * reflectors (spoofed SYN floods, SYN-ACK backscatter, amplification, fragment floods), where
 * blocking sources would only block innocent addresses. A limit caps one traffic class that XDP
 * lets through to one protected address (the excess is dropped before it reaches the source
 * table), expires like a block, and is hinted and reconciled with blocks (same revision counter
 * and channel).
 *
 * Keys: `dstlimit:<traffic>|<address>` the entry (kept an hour past its expiry, so that the expiry
 * can be announced with its origin), `dstlimits` zset `<traffic>|<address>` → expiresMs.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TrafficClass } from '../common/traffic';
import { CHANGES_CHANNEL, EPOCH, EXPIRED_KEEP_MS, NS, REV, sweepIndex, type Origin } from './ledger';

const INDEX = `${NS}dstlimits`;
const PREFIX = `${NS}dstlimit:`;
/** As many as the kernel map holds. */
export const MAX_LIMITS = 1024;

export interface LimitEntry {
  /** The protected address, e.g. `198.18.0.1`. */
  target: string;
  traffic: TrafficClass;
  perSecond: number;
  origin: Origin;
  reason: string;
  ruleId?: string;
  incidentId?: string;
  actor?: string;
  createdMs: number;
  expiresMs: number;
}

export interface LimitInput {
  target: string;
  traffic: TrafficClass;
  perSecond: number;
  ttlMs: number;
  origin: Origin;
  reason: string;
  ruleId?: string;
  incidentId?: string;
  actor?: string;
}

/** A repeat keeps the earlier creation and the later expiry; the rate is the newest asked for. */
const LIMIT_SCRIPT = `
redis.call('SET', '${EPOCH}', ARGV[1], 'NX')
local now = tonumber(ARGV[3])
local existing = redis.call('GET', KEYS[1])
if existing then existing = cjson.decode(existing) end
if existing and existing.expiresMs <= now then existing = nil end
if not existing and redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[3], '+inf') >= tonumber(ARGV[6]) then return {'full'} end
local entry = cjson.decode(ARGV[4])
entry.createdMs = now
entry.expiresMs = now + tonumber(ARGV[5])
local status = 'limited'
if existing then
  entry.createdMs = existing.createdMs
  if existing.expiresMs > entry.expiresMs then entry.expiresMs = existing.expiresMs end
  status = 'extended'
end
local text = cjson.encode(entry)
redis.call('SET', KEYS[1], text, 'PX', entry.expiresMs - now + tonumber(ARGV[8]))
redis.call('ZADD', KEYS[2], entry.expiresMs, ARGV[2])
redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[7], cjson.encode({target=entry.target}))
return {status, text}
`;

/** Removes a live limit and returns its entry; an expired one is left for the sweep to announce. */
const UNLIMIT_SCRIPT = `
local text = redis.call('GET', KEYS[1])
if not text or cjson.decode(text).expiresMs <= tonumber(ARGV[3]) then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[2], cjson.encode({target=cjson.decode(text).target}))
return text
`;

export type LimitResult = { status: 'limited' | 'extended'; entry: LimitEntry } | { status: 'full' };

function member(target: string, traffic: TrafficClass): string {
  return `${traffic}|${target}`;
}

/** Ledger text that is not a JSON object is no entry. */
function parseLimit(text: string | null): LimitEntry | undefined {
  if (!text) return undefined;
  try {
    const entry = JSON.parse(text) as LimitEntry;
    return entry && typeof entry === 'object' ? entry : undefined;
  } catch {
    return undefined;
  }
}

export class LimitLedger {
  constructor(private readonly redis: Redis) {}

  async limit(input: LimitInput, nowMs = Date.now()): Promise<LimitResult> {
    const entry = {
      target: input.target, traffic: input.traffic, perSecond: input.perSecond, origin: input.origin, reason: input.reason, ruleId: input.ruleId,
      incidentId: input.incidentId, actor: input.actor,
    };
    const m = member(input.target, input.traffic);
    const reply = await this.redis.eval(LIMIT_SCRIPT, 3, PREFIX + m, INDEX, REV,
      randomUUID(), m, String(nowMs), JSON.stringify(entry), String(input.ttlMs), String(MAX_LIMITS), CHANGES_CHANNEL, String(EXPIRED_KEEP_MS)) as [string, string?];
    if (reply[0] === 'full') return { status: 'full' };
    return { status: reply[0] as 'limited' | 'extended', entry: JSON.parse(reply[1]!) as LimitEntry };
  }

  /** The removed entry; undefined when no live limit was there. */
  async unlimit(target: string, traffic: TrafficClass, nowMs = Date.now()): Promise<LimitEntry | undefined> {
    const m = member(target, traffic);
    const text = await this.redis.eval(UNLIMIT_SCRIPT, 3, PREFIX + m, INDEX, REV, m, CHANGES_CHANNEL, String(nowMs)) as string | null;
    return parseLimit(text);
  }

  /** Live limits, soonest expiry first. */
  async list(nowMs = Date.now()): Promise<LimitEntry[]> {
    return (await this.read(nowMs)).entries;
  }

  /** Live limits, and the index members (`<traffic>|<address>`) whose entry is not a JSON object: something other than a blocker wrote them. */
  async read(nowMs = Date.now()): Promise<{ entries: LimitEntry[]; unreadable: string[] }> {
    const members = await this.redis.zrangebyscore(INDEX, `(${nowMs}`, '+inf');
    const texts = members.length ? await this.redis.mget(members.map((m) => PREFIX + m)) : [];
    const entries: LimitEntry[] = [];
    const unreadable: string[] = [];
    texts.forEach((text, i) => {
      const entry = parseLimit(text);
      if (!entry) {
        if (text !== null) unreadable.push(members[i]);
      } else if (entry.expiresMs > nowMs) {
        entries.push(entry);
      }
    });
    return { entries, unreadable };
  }

  /** The live limits of each address (every traffic class), for an enforcer following hints. */
  async ofTargets(targets: readonly string[], traffics: readonly TrafficClass[], nowMs = Date.now()): Promise<Map<string, LimitEntry[]>> {
    const out = new Map<string, LimitEntry[]>();
    if (targets.length === 0) return out;
    const texts = await this.redis.mget(targets.flatMap((target) => traffics.map((t) => PREFIX + member(target, t))));
    targets.forEach((target, i) => {
      out.set(target, texts.slice(i * traffics.length, (i + 1) * traffics.length).map(parseLimit)
        .filter((e): e is LimitEntry => e !== undefined && e.expiresMs > nowMs));
    });
    return out;
  }

  /** Expired limits, each returned to exactly one caller (for its notice). */
  async sweepExpired(nowMs = Date.now()): Promise<Array<Partial<LimitEntry> & { target: string }>> {
    return sweepIndex<LimitEntry>(this.redis, INDEX, PREFIX, nowMs, { member: 'after-bar' });
  }
}
