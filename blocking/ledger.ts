/**
 * The block ledger: every block and allow decision of the fleet, in Redis, with its expiry. Each
 * change is one Lua script, so a decision, its budget check, its revision number and its
 * broadcast to the sensors happen atomically; the revision lets an enforcer tell a broadcast it
 * already saw in a snapshot from a newer one.
 *
 * Keys (all under `xdp-ids:`): `block:<target>` the entry (expires with the block),
 * `blocks` zset target → expiresMs, `blocks:strikes:<target>` repeat-offender count,
 * `blocks:rev`, `blocks:new:<minute>` new blocks per minute, `blocks:breaker` (set while the
 * circuit breaker is open), `blocks:stats` counters, `allow` hash of configured allow entries,
 * `sensor:<id>:allow|state|drops` what each sensor writes itself (its own default allow entries, refreshed
 * while it runs; its kernel's repairs and drops), `sensors` zset of live sensors.
 */
import type { Redis } from 'ioredis';

export const CHANGES_CHANNEL = 'xdp-ids:blocks:changes';
/** Every ledger key starts with this. */
export const NS = 'xdp-ids:';
const INDEX = `${NS}blocks`;
/** One revision counter for every ledger change (blocks, allows, destination limits). */
export const REV = `${NS}blocks:rev`;
const BREAKER = `${NS}blocks:breaker`;
const STATS = `${NS}blocks:stats`;
const ALLOW = `${NS}allow`;
/** Sensors that published their own allow entries lately (zset sensor → last refresh); a sensor's own keys are `sensor:<id>:*`. */
const LIVE_SENSORS = `${NS}sensors`;
const SHADOW = `${NS}blocks:shadow`;
const SHADOW_KEEP = 1000;
/** An expired entry stays readable this long, so its expiry can be announced with its origin and rule. */
export const EXPIRED_KEEP_MS = 3_600_000;
/** How long a sensor's default allow entries outlive its last refresh. */
export const AUTO_ALLOW_TTL_MS = 10 * 60_000;

export type Origin = 'rule' | 'model' | 'manual';

export interface LedgerEntry {
  target: string;
  /** `all`, or the one sensor that enforces it. */
  scope: string;
  origin: Origin;
  reason: string;
  ruleId?: string;
  incidentId?: string;
  /** Sensor and key that fired (rule/model blocks). */
  sensor?: string;
  key?: string;
  /** Who asked (BlockRequest.actor). */
  actor?: string;
  createdMs: number;
  updatedMs: number;
  expiresMs: number;
  /** New blocks of this target within the strike memory (escalates the TTL); re-bans of an active block do not count. */
  strikes: number;
  rev: number;
}

export interface AllowEntry {
  target: string;
  reason: string;
  /** Who added it (configured entries). */
  actor?: string;
  /** `manual`, or `sensor:<id>` for a sensor's own defaults (loopback, own addresses, gateway, resolvers). */
  source: string;
}

export type Change =
  | { op: 'block'; rev: number; target: string; scope: string; expiresMs: number }
  | { op: 'limit'; rev: number; target: string; synPerSecond: number; expiresMs: number }
  | { op: 'unblock' | 'expire' | 'allow' | 'disallow' | 'unlimit'; rev: number; target: string };

export interface BlockPolicy {
  /** TTL by strike: the n-th block within the strike memory lasts at least ladderMs[n-1] (the last step repeats). */
  ladderMs: number[];
  strikeMemoryMs: number;
  maxTtlMs: number;
  /** Budget for new blocks (extensions are always allowed); Infinity turns it off (manual blocks). */
  maxNewPerMinute: number;
  maxActive: number;
  /** How long a tripped budget refuses every new block. */
  breakerMs: number;
}

export type BlockResult =
  | { status: 'blocked' | 'extended'; entry: LedgerEntry }
  | { status: 'breaker-open'; untilMs: number }
  /** This request tripped the budget and opened the breaker. */
  | { status: 'tripped'; untilMs: number; active: number; newThisMinute: number };

export interface Snapshot {
  rev: number;
  blocks: LedgerEntry[];
  allows: AllowEntry[];
}

const BLOCK_SCRIPT = `
local now = tonumber(ARGV[3])
local existing = redis.call('GET', KEYS[1])
if existing then
  existing = cjson.decode(existing)
  if existing.expiresMs <= now then existing = nil end
end
if not existing then
  local open = redis.call('GET', KEYS[6])
  if open then return {'breaker-open', open} end
  local active = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[3], '+inf')
  local recent = tonumber(redis.call('GET', KEYS[5]) or '0')
  if active >= tonumber(ARGV[8]) or recent >= tonumber(ARGV[7]) then
    local untilMs = now + tonumber(ARGV[9])
    redis.call('SET', KEYS[6], tostring(untilMs), 'PX', ARGV[9])
    redis.call('HINCRBY', KEYS[7], 'refused:budget', 1)
    return {'tripped', tostring(untilMs), active, recent}
  end
end
-- Only a new block is a strike: a re-ban while blocked (a second rule on the same attack) extends at the current step.
local strikes
if existing then strikes = tonumber(redis.call('GET', KEYS[3]) or '1') else strikes = redis.call('INCR', KEYS[3]) end
redis.call('PEXPIRE', KEYS[3], ARGV[6])
local ttl = tonumber(ARGV[4])
local ladder = cjson.decode(ARGV[5])
if #ladder > 0 then ttl = math.max(ttl, ladder[math.min(strikes, #ladder)]) end
ttl = math.min(ttl, tonumber(ARGV[11]))
local expires = now + ttl
local entry = cjson.decode(ARGV[2])
local status = 'blocked'
if existing then
  entry.createdMs = existing.createdMs
  if existing.expiresMs > expires then expires = existing.expiresMs end
  status = 'extended'
else
  entry.createdMs = now
  redis.call('INCR', KEYS[5])
  redis.call('PEXPIRE', KEYS[5], 120000)
end
local rev = redis.call('INCR', KEYS[4])
entry.updatedMs = now
entry.expiresMs = expires
entry.strikes = strikes
entry.rev = rev
local text = cjson.encode(entry)
redis.call('SET', KEYS[1], text, 'PXAT', string.format('%d', expires + tonumber(ARGV[12])))
redis.call('ZADD', KEYS[2], expires, ARGV[1])
redis.call('HINCRBY', KEYS[7], status .. ':' .. entry.origin, 1)
redis.call('PUBLISH', ARGV[10], cjson.encode({op='block', rev=rev, target=ARGV[1], scope=entry.scope, expiresMs=expires}))
return {status, text}
`;

const UNBLOCK_SCRIPT = `
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
if existed == 0 then return 0 end
local rev = redis.call('INCR', KEYS[4])
redis.call('HINCRBY', KEYS[5], 'unblocked', 1)
redis.call('PUBLISH', ARGV[2], cjson.encode({op='unblock', rev=rev, target=ARGV[1]}))
return 1
`;

/**
 * Removes index entries (of blocks or SYN limits) whose time is up; whoever removes one
 * broadcasts it and gets its last entry to announce (exactly once). ARGV[5]: the STATS field to
 * count them in, '' for none.
 */
const SWEEP_SCRIPT = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
local out = {}
for _, target in ipairs(due) do
  if redis.call('ZREM', KEYS[1], target) == 1 then
    local text = redis.call('GET', ARGV[3] .. target)
    redis.call('DEL', ARGV[3] .. target)
    local rev = redis.call('INCR', KEYS[2])
    if ARGV[5] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[5], 1) end
    redis.call('PUBLISH', ARGV[2], cjson.encode({op=ARGV[4], rev=rev, target=target}))
    table.insert(out, text or cjson.encode({target=target}))
  end
end
return out
`;

/** Sweeps an index (see SWEEP_SCRIPT): `prefix` names its entries, `op` the change broadcast for each. */
export async function sweepIndex<T>(redis: Redis, index: string, prefix: string, op: 'expire' | 'unlimit', nowMs: number, statsField = ''): Promise<Array<Partial<T> & { target: string }>> {
  const texts = await redis.eval(SWEEP_SCRIPT, 3, index, REV, STATS, String(nowMs), CHANGES_CHANNEL, prefix, op, statsField) as string[];
  return texts.map((text) => JSON.parse(text) as Partial<T> & { target: string });
}

const SNAPSHOT_SCRIPT = `
local rev = redis.call('GET', KEYS[2]) or '0'
local targets = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local entries = {}
for _, target in ipairs(targets) do
  local text = redis.call('GET', ARGV[2] .. target)
  if text then table.insert(entries, text) end
end
return {rev, entries, redis.call('HGETALL', KEYS[3])}
`;

const ALLOW_SCRIPT = `
local changed
if ARGV[2] == '' then changed = redis.call('HDEL', KEYS[1], ARGV[1]) else changed = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
local rev = redis.call('INCR', KEYS[2])
local op = 'allow'
if ARGV[2] == '' then op = 'disallow' end
redis.call('PUBLISH', ARGV[3], cjson.encode({op=op, rev=rev, target=ARGV[1]}))
return changed
`;

function blockKey(target: string): string {
  return `${NS}block:${target}`;
}

/** Keys a sensor writes itself (and nothing else): its own allow entries, its kernel's state and drops. */
function sensorKey(sensor: string, what: 'allow' | 'state' | 'drops'): string {
  return `${NS}sensor:${sensor}:${what}`;
}

export interface BlockInput {
  target: string;
  ttlMs: number;
  origin: Origin;
  reason: string;
  scope?: string;
  ruleId?: string;
  incidentId?: string;
  sensor?: string;
  key?: string;
  actor?: string;
}

/** A configured allow entry's hash value: JSON `{reason, actor, createdMs}`; anything else is read as the reason. */
function allowValue(text: string): { reason: string; actor?: string } {
  if (!text.startsWith('{')) return { reason: text };
  try {
    const v = JSON.parse(text) as { reason?: unknown; actor?: unknown };
    return { reason: String(v.reason ?? ''), ...(typeof v.actor === 'string' ? { actor: v.actor } : {}) };
  } catch {
    return { reason: text };
  }
}

function parseAllows(flat: string[], source: (target: string) => string): AllowEntry[] {
  const out: AllowEntry[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ target: flat[i], ...allowValue(flat[i + 1]), source: source(flat[i]) });
  return out;
}

/** Every ledger read and write; targets must already be canonical (targets.ts). */
export class BlockLedger {
  constructor(readonly redis: Redis) {}

  async block(input: BlockInput, policy: BlockPolicy, nowMs = Date.now()): Promise<BlockResult> {
    const entry = {
      target: input.target, scope: input.scope ?? 'all', origin: input.origin, reason: input.reason,
      ruleId: input.ruleId, incidentId: input.incidentId, sensor: input.sensor, key: input.key, actor: input.actor,
    };
    const finite = (n: number): string => (Number.isFinite(n) ? String(n) : String(Number.MAX_SAFE_INTEGER));
    const minute = Math.floor(nowMs / 60_000);
    const reply = await this.redis.eval(BLOCK_SCRIPT, 7,
      blockKey(input.target), INDEX, `${NS}blocks:strikes:${input.target}`, REV, `${NS}blocks:new:${minute}`, BREAKER, STATS,
      input.target, JSON.stringify(entry), String(nowMs), String(input.ttlMs), JSON.stringify(policy.ladderMs),
      String(policy.strikeMemoryMs), finite(policy.maxNewPerMinute), finite(policy.maxActive), String(policy.breakerMs),
      CHANGES_CHANNEL, String(policy.maxTtlMs), String(EXPIRED_KEEP_MS)) as [string, string, number?, number?];
    const [status] = reply;
    if (status === 'breaker-open') return { status, untilMs: Number(reply[1]) };
    if (status === 'tripped') return { status, untilMs: Number(reply[1]), active: Number(reply[2]), newThisMinute: Number(reply[3]) };
    return { status: status as 'blocked' | 'extended', entry: JSON.parse(reply[1]) as LedgerEntry };
  }

  /** Removes a block everywhere and forgets its strikes; false when there was none. */
  async unblock(target: string): Promise<boolean> {
    const removed = await this.redis.eval(UNBLOCK_SCRIPT, 5, blockKey(target), INDEX, `${NS}blocks:strikes:${target}`, REV, STATS, target, CHANGES_CHANNEL);
    return removed === 1;
  }

  async get(target: string, nowMs = Date.now()): Promise<LedgerEntry | undefined> {
    const text = await this.redis.get(blockKey(target));
    const entry = text ? JSON.parse(text) as LedgerEntry : undefined;
    return entry && entry.expiresMs > nowMs ? entry : undefined;
  }

  /**
   * The live blocks, the configured allow entries and the revision they are current at, read
   * atomically; EVAL_RO, because Redis grants a plain EVAL only to users who may write its keys
   * (the sensors may only read the ledger).
   */
  async snapshot(nowMs = Date.now()): Promise<Snapshot> {
    const [rev, entries, allows] = await this.redis.eval_ro(SNAPSHOT_SCRIPT, 3, INDEX, REV, ALLOW, String(nowMs), `${NS}block:`) as [string, string[], string[]];
    return {
      rev: Number(rev),
      blocks: entries.map((text) => JSON.parse(text) as LedgerEntry).filter((e) => e.expiresMs > nowMs),
      allows: parseAllows(allows, () => 'manual'),
    };
  }

  /** Announces blocks whose time is up (the kernel has already stopped dropping them); returns their last entries. */
  async sweepExpired(nowMs = Date.now()): Promise<Array<Partial<LedgerEntry> & { target: string }>> {
    return sweepIndex<LedgerEntry>(this.redis, INDEX, `${NS}block:`, 'expire', nowMs, 'expired');
  }

  async allow(target: string, reason: string, actor?: string, nowMs = Date.now()): Promise<void> {
    await this.redis.eval(ALLOW_SCRIPT, 2, ALLOW, REV, target, JSON.stringify({ reason, actor, createdMs: nowMs }), CHANGES_CHANNEL);
  }

  async disallow(target: string): Promise<boolean> {
    return await this.redis.eval(ALLOW_SCRIPT, 2, ALLOW, REV, target, '', CHANGES_CHANNEL) === 1;
  }

  /** Configured entries and every live sensor's own defaults, so a blocker anywhere refuses what any sensor must keep. */
  async allowEntries(nowMs = Date.now()): Promise<AllowEntry[]> {
    const sensors = await this.redis.zrangebyscore(LIVE_SENSORS, nowMs - AUTO_ALLOW_TTL_MS, '+inf');
    const pipeline = this.redis.pipeline().hgetall(ALLOW);
    for (const sensor of sensors) pipeline.hgetall(sensorKey(sensor, 'allow'));
    const replies = (await pipeline.exec()) ?? [];
    const out: AllowEntry[] = [];
    replies.forEach(([err, value], i) => {
      if (err) throw err;
      const source = i === 0 ? 'manual' : `sensor:${sensors[i - 1]}`;
      for (const [target, text] of Object.entries(value as Record<string, string>)) out.push({ target, ...(i === 0 ? allowValue(text) : { reason: text }), source });
    });
    return out;
  }

  /** A sensor's own defaults, visible to every blocker for AUTO_ALLOW_TTL_MS after the last refresh. */
  async publishSensorAllows(sensor: string, entries: { target: string; reason: string }[], nowMs = Date.now()): Promise<void> {
    const key = sensorKey(sensor, 'allow');
    const pipeline = this.redis.multi().del(key);
    if (entries.length) pipeline.hset(key, Object.fromEntries(entries.map((e) => [e.target, e.reason])));
    await pipeline.pexpire(key, AUTO_ALLOW_TTL_MS).zadd(LIVE_SENSORS, nowMs, sensor)
      .zremrangebyscore(LIVE_SENSORS, '-inf', nowMs - AUTO_ALLOW_TTL_MS).exec();
  }

  /** Dry-run decisions, newest first (capped). */
  async recordShadow(decision: Record<string, unknown>): Promise<void> {
    await this.redis.multi().lpush(SHADOW, JSON.stringify(decision)).ltrim(SHADOW, 0, SHADOW_KEEP - 1).hincrby(STATS, 'would-block', 1).exec();
  }

  async shadowDecisions(limit = 100): Promise<Record<string, unknown>[]> {
    return (await this.redis.lrange(SHADOW, 0, limit - 1)).map((text) => JSON.parse(text) as Record<string, unknown>);
  }

  async countRefusal(reason: 'allowlist' | 'invalid'): Promise<void> {
    await this.redis.hincrby(STATS, `refused:${reason}`, 1);
  }

  /** Ledger-wide counters (`blocked:<origin>`, `extended:<origin>`, `unblocked`, `expired`, `refused:<reason>`, `would-block`). */
  async stats(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(STATS);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  /** What one sensor reports about its kernel: reconciliation repairs and drops per entry. */
  async recordSensorState(sensor: string, repairs: { added: number; removed: number }, drops: Record<string, number>): Promise<void> {
    const key = sensorKey(sensor, 'state');
    const multi = this.redis.multi().hincrby(key, 'repairs:added', repairs.added).hincrby(key, 'repairs:removed', repairs.removed)
      .del(sensorKey(sensor, 'drops'));
    if (Object.keys(drops).length) multi.hset(sensorKey(sensor, 'drops'), drops);
    await multi.exec();
  }

  async sensorStates(): Promise<{ sensor: string; repairs: Record<string, number>; drops: Record<string, number> }[]> {
    const sensors = await this.redis.zrange(LIVE_SENSORS, '0', '-1');
    const pipeline = this.redis.pipeline();
    for (const sensor of sensors) pipeline.hgetall(sensorKey(sensor, 'state')).hgetall(sensorKey(sensor, 'drops'));
    const replies = (await pipeline.exec()) ?? [];
    const num = (r: unknown): Record<string, number> => Object.fromEntries(Object.entries(r as Record<string, string>).map(([k, v]) => [k, Number(v)]));
    return sensors.map((sensor, i) => ({ sensor, repairs: num(replies[2 * i][1]), drops: num(replies[2 * i + 1][1]) }));
  }
}

export function parseChange(message: string): Change {
  return JSON.parse(message) as Change;
}
