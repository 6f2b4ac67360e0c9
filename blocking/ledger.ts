/**
 * The block ledger: every block and allow decision of the fleet, in Redis, with its expiry. Each
 * change is one Lua script, so a decision, its budget check and its broadcast happen atomically.
 * The broadcast only names what changed: an enforcer reads the ledger again before it touches its
 * kernel (a message on the channel is a hint, never an instruction), and validates what it reads.
 *
 * Keys (all under `xdp-ids:`): `block:<target>` the entry (expires with the block), `blocks`
 * zset target → expiresMs, `blocks:pool:<pool>` the same per budget pool (verified, unverified),
 * `blocks:strikes:<target>` repeat-offender count, `blocks:unverified:<target>` (set while an
 * unverified block of the target counts as its one), `blocks:tomb:<target>` (an operator removed
 * the target: sensors drop what they kept of it from an earlier generation),
 * `blocks:new:<pool>:<minute>` new blocks per minute, `blocks:breaker:<pool>` (set while that
 * pool's circuit breaker is open), `blocks:rev` revision, `blocks:stats` counters,
 * `blocks:shadow` dry-run decisions, `allow` hash of configured allow entries, `ledger:epoch`
 * the ledger's generation (a new one means Redis lost the ledger), `sensor:<id>:allow|state|drops`
 * what each sensor writes itself, `sensors` zset of live sensors.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

export const CHANGES_CHANNEL = 'xdp-ids:blocks:changes';
/** Every ledger key starts with this. */
export const NS = 'xdp-ids:';
const INDEX = `${NS}blocks`;
/** One revision counter for every ledger change (blocks, allows, destination limits). */
export const REV = `${NS}blocks:rev`;
/** The ledger's generation: created by the first write, gone when Redis loses its data. */
export const EPOCH = `${NS}ledger:epoch`;
const STATS = `${NS}blocks:stats`;
const ALLOW = `${NS}allow`;
const LIVE_SENSORS = `${NS}sensors`;
const SHADOW = `${NS}blocks:shadow`;
const SHADOW_KEEP = 1000;
/** An expired entry stays readable this long, so its expiry can be announced with its origin and rule. */
export const EXPIRED_KEEP_MS = 3_600_000;
/** How long a sensor's default allow entries outlive its last refresh. */
export const AUTO_ALLOW_TTL_MS = 10 * 60_000;

export type Origin = 'rule' | 'model' | 'manual';

/**
 * What a block rests on. `verified`: the source completed a handshake with a protected host (it
 * received our SYN-ACK), which a forger cannot do; `unverified`: everything else a packet can
 * carry, forged source addresses included; `manual`: an operator.
 */
export type Evidence = 'verified' | 'unverified' | 'manual';

export interface LedgerEntry {
  target: string;
  /** `all`, or the one sensor that enforces it. */
  scope: string;
  origin: Origin;
  evidence: Evidence;
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
  /** New verified blocks of this target within the strike memory (escalates the TTL); re-bans of an active block do not count. */
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

/** A budget pool's limits: spoofed sources can only ever exhaust the unverified one. */
export interface PoolBudget {
  /** Infinity turns it off. */
  maxNewPerMinute: number;
  maxActive: number;
}

export interface BlockPolicy {
  /** TTL by strike: the n-th verified block within the strike memory lasts at least ladderMs[n-1] (the last step repeats). */
  ladderMs: number[];
  strikeMemoryMs: number;
  maxTtlMs: number;
  verified: PoolBudget;
  unverified: PoolBudget;
  /** Unverified blocks last at most this long, are never extended and never escalate. */
  unverifiedTtlMs: number;
  /** After an unverified block, further unverified requests for the target are alert-only this long. */
  unverifiedMemoryMs: number;
  /** How long a tripped pool refuses every new block of that pool. */
  breakerMs: number;
  /** Active blocks the kernel can hold: past it every new block is refused. */
  capacity: number;
}

export type BlockResult =
  | { status: 'blocked' | 'extended'; entry: LedgerEntry }
  /** An active unverified block: neither extended nor escalated. */
  | { status: 'unchanged'; entry: LedgerEntry }
  | { status: 'breaker-open'; untilMs: number }
  /** This request tripped its pool's budget and opened the pool's breaker. */
  | { status: 'tripped'; untilMs: number; active: number; newThisMinute: number }
  /** The target had its unverified block within the memory: alert only until it is verified. */
  | { status: 'unverified-repeat'; untilMs: number }
  | { status: 'full'; active: number };

/** The ledger's state for one target, read by an enforcer after a hint. */
export interface TargetState {
  block?: LedgerEntry;
  allow?: AllowEntry;
  /** An operator removed the target; kept as long as the longest block may last. */
  removed: boolean;
  /** Its block entry is not a JSON object: something other than a blocker wrote it. */
  unreadable: boolean;
}

/** Which ledger an enforcer reads: its generation ('' until the first write since Redis lost the ledger) and revision. */
export interface Generation {
  epoch: string;
  rev: number;
}

/** Whether `now` is another ledger than the one `before` (what a kernel followed) was read from, or an older revision of it. */
export function generationChanged(before: Generation, now: Generation): boolean {
  return before.epoch !== '' && (before.epoch !== now.epoch || now.rev < before.rev);
}

export interface Snapshot {
  /** Undefined until the first write since Redis lost (or never had) the ledger. */
  epoch?: string;
  rev: number;
  blocks: LedgerEntry[];
  allows: AllowEntry[];
  /** Live targets whose block entry is not a JSON object: something other than a blocker wrote them. */
  unreadable: string[];
}

/** Every write script starts with this: the first write after Redis lost its data starts a new generation. */
const ENSURE_EPOCH = `redis.call('SET', '${EPOCH}', ARGV[1], 'NX')`;

const BLOCK_SCRIPT = `
${ENSURE_EPOCH}
local now = tonumber(ARGV[4])
local entry = cjson.decode(ARGV[3])
local evidence = entry.evidence
local existing = redis.call('GET', KEYS[1])
if existing then
  existing = cjson.decode(existing)
  if existing.expiresMs <= now then existing = nil end
end
if existing and evidence == 'unverified' then return {'unchanged', cjson.encode(existing)} end
if not existing then
  if evidence == 'unverified' then
    local seen = redis.call('PTTL', KEYS[9])
    if seen > 0 then return {'unverified-repeat', tostring(now + seen)} end
  end
  local active = redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[4], '+inf')
  if active >= tonumber(ARGV[14]) then
    redis.call('HINCRBY', KEYS[7], 'refused:full', 1)
    return {'full', active}
  end
  if evidence ~= 'manual' then
    local open = redis.call('GET', KEYS[6])
    if open then return {'breaker-open', open} end
    local pooled = redis.call('ZCOUNT', KEYS[8], '(' .. ARGV[4], '+inf')
    local recent = tonumber(redis.call('GET', KEYS[5]) or '0')
    if pooled >= tonumber(ARGV[9]) or recent >= tonumber(ARGV[8]) then
      local untilMs = now + tonumber(ARGV[10])
      redis.call('SET', KEYS[6], tostring(untilMs), 'PX', ARGV[10])
      redis.call('HINCRBY', KEYS[7], 'refused:budget:' .. evidence, 1)
      return {'tripped', tostring(untilMs), pooled, recent}
    end
  end
end
local ttl = tonumber(ARGV[5])
local strikes = 0
if evidence == 'unverified' then
  ttl = math.min(ttl, tonumber(ARGV[15]))
  redis.call('SET', KEYS[9], '1', 'PX', ARGV[16])
else
  -- Only a new verified block is a strike: a re-ban while blocked (a second rule on the same attack) extends at the current step.
  if existing and existing.evidence ~= 'unverified' then strikes = tonumber(redis.call('GET', KEYS[3]) or '1') else strikes = redis.call('INCR', KEYS[3]) end
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
  local ladder = cjson.decode(ARGV[6])
  if #ladder > 0 then ttl = math.max(ttl, ladder[math.min(strikes, #ladder)]) end
end
ttl = math.min(ttl, tonumber(ARGV[12]))
local expires = now + ttl
local status = 'blocked'
if existing then
  entry.createdMs = existing.createdMs
  if existing.expiresMs > expires then expires = existing.expiresMs end
  status = 'extended'
  if existing.evidence == 'unverified' then redis.call('ZREM', ARGV[17] .. 'unverified', ARGV[2]) end
else
  entry.createdMs = now
  if evidence ~= 'manual' then
    redis.call('INCR', KEYS[5])
    redis.call('PEXPIRE', KEYS[5], 120000)
  end
end
local rev = redis.call('INCR', KEYS[4])
entry.updatedMs = now
entry.expiresMs = expires
entry.strikes = strikes
entry.rev = rev
local text = cjson.encode(entry)
redis.call('SET', KEYS[1], text, 'PXAT', string.format('%d', expires + tonumber(ARGV[13])))
redis.call('ZADD', KEYS[2], expires, ARGV[2])
redis.call('ZADD', KEYS[8], expires, ARGV[2])
redis.call('DEL', KEYS[10])
redis.call('HINCRBY', KEYS[7], status .. ':' .. entry.origin, 1)
redis.call('PUBLISH', ARGV[11], cjson.encode({target=ARGV[2]}))
return {status, text}
`;

const UNBLOCK_SCRIPT = `
${ENSURE_EPOCH}
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[2])
redis.call('ZREM', KEYS[7], ARGV[2])
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[8], '1', 'PX', ARGV[4])
redis.call('INCR', KEYS[4])
if existed == 1 then redis.call('HINCRBY', KEYS[5], 'unblocked', 1) end
redis.call('PUBLISH', ARGV[3], cjson.encode({target=ARGV[2]}))
return existed
`;

/**
 * Removes index entries (of blocks or limits) whose time is up; whoever removes one gets its last
 * entry to announce (exactly once). ARGV[4]: the STATS field to count them in, '' for none;
 * ARGV[5]: how a member names its target (itself, or 'after-bar'); ARGV[6..]: further indexes
 * the member leaves.
 */
const SWEEP_SCRIPT = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
local out = {}
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local text = redis.call('GET', ARGV[3] .. member)
    redis.call('DEL', ARGV[3] .. member)
    for i = 6, #ARGV do redis.call('ZREM', ARGV[i], member) end
    redis.call('INCR', KEYS[2])
    if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[3], ARGV[4], 1) end
    local target = member
    if ARGV[5] == 'after-bar' then target = string.match(member, '|(.*)$') end
    redis.call('PUBLISH', ARGV[2], cjson.encode({target=target}))
    table.insert(out, text or cjson.encode({target=target}))
  end
end
return out
`;

/**
 * Sweeps an index (see SWEEP_SCRIPT): `prefix` + member names its entries; `member` says how a
 * member names its target (itself, or the part after a `|`); `alsoFrom` are indexes the member
 * leaves too.
 */
export async function sweepIndex<T>(redis: Redis, index: string, prefix: string, nowMs: number, opts: { statsField?: string; member?: 'target' | 'after-bar'; alsoFrom?: string[] } = {}): Promise<Array<Partial<T> & { target: string }>> {
  const texts = await redis.eval(SWEEP_SCRIPT, 3, index, REV, STATS, String(nowMs), CHANGES_CHANNEL, prefix, opts.statsField ?? '',
    opts.member ?? 'target', ...(opts.alsoFrom ?? [])) as string[];
  return texts.map((text) => JSON.parse(text) as Partial<T> & { target: string });
}

const SNAPSHOT_SCRIPT = `
local rev = redis.call('GET', KEYS[2]) or '0'
local targets = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
local entries = {}
for _, target in ipairs(targets) do
  local text = redis.call('GET', ARGV[2] .. target)
  if text then
    table.insert(entries, target)
    table.insert(entries, text)
  end
end
return {rev, entries, redis.call('HGETALL', KEYS[3]), redis.call('GET', KEYS[4]) or ''}
`;

const ALLOW_SCRIPT = `
${ENSURE_EPOCH}
local changed
if ARGV[3] == '' then
  changed = redis.call('HDEL', KEYS[1], ARGV[2])
else
  if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then return -1 end
  changed = redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
end
redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[4], cjson.encode({target=ARGV[2]}))
return changed
`;

function blockKey(target: string): string {
  return `${NS}block:${target}`;
}

const POOL_INDEX = `${NS}blocks:pool:`;

/** Keys a sensor writes itself (and nothing else): its own allow entries, its kernel's state and drops. */
function sensorKey(sensor: string, what: 'allow' | 'state' | 'drops'): string {
  return `${NS}sensor:${sensor}:${what}`;
}

/** Configured allow entries the ledger takes: the kernel's allow tries hold 4096, and each sensor's own defaults need room. */
export const ALLOW_CAPACITY = 3584;

export interface BlockInput {
  target: string;
  ttlMs: number;
  origin: Origin;
  evidence: Evidence;
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

function parseAllows(flat: string[]): AllowEntry[] {
  const out: AllowEntry[] = [];
  for (let i = 0; i < flat.length; i += 2) out.push({ target: flat[i], ...allowValue(flat[i + 1]), source: 'manual' });
  return out;
}

/** Ledger text that does not parse is no entry (the enforcer refuses what it cannot read). */
function parseEntry(text: string | null | undefined): LedgerEntry | undefined {
  if (!text) return undefined;
  try {
    const entry = JSON.parse(text) as LedgerEntry;
    return entry && typeof entry === 'object' ? entry : undefined;
  } catch {
    return undefined;
  }
}

function finite(n: number): string {
  return Number.isFinite(n) ? String(n) : String(Number.MAX_SAFE_INTEGER);
}

/** Every ledger read and write; targets must already be canonical (targets.ts). */
export class BlockLedger {
  constructor(readonly redis: Redis) {}

  async block(input: BlockInput, policy: BlockPolicy, nowMs = Date.now()): Promise<BlockResult> {
    const entry = {
      target: input.target, scope: input.scope ?? 'all', origin: input.origin, evidence: input.evidence, reason: input.reason,
      ruleId: input.ruleId, incidentId: input.incidentId, sensor: input.sensor, key: input.key, actor: input.actor,
    };
    const pool = input.evidence === 'unverified' ? policy.unverified : policy.verified;
    const poolName = input.evidence === 'manual' ? 'manual' : input.evidence;
    const minute = Math.floor(nowMs / 60_000);
    const reply = await this.redis.eval(BLOCK_SCRIPT, 10,
      blockKey(input.target), INDEX, `${NS}blocks:strikes:${input.target}`, REV, `${NS}blocks:new:${poolName}:${minute}`,
      `${NS}blocks:breaker:${poolName}`, STATS, POOL_INDEX + poolName, `${NS}blocks:unverified:${input.target}`, `${NS}blocks:tomb:${input.target}`,
      randomUUID(), input.target, JSON.stringify(entry), String(nowMs), String(input.ttlMs), JSON.stringify(policy.ladderMs),
      String(policy.strikeMemoryMs), finite(pool.maxNewPerMinute), finite(pool.maxActive), String(policy.breakerMs),
      CHANGES_CHANNEL, String(policy.maxTtlMs), String(EXPIRED_KEEP_MS), finite(policy.capacity), String(policy.unverifiedTtlMs),
      String(policy.unverifiedMemoryMs), POOL_INDEX) as [string, string, number?, number?];
    const [status] = reply;
    if (status === 'breaker-open' || status === 'unverified-repeat') return { status, untilMs: Number(reply[1]) };
    if (status === 'tripped') return { status, untilMs: Number(reply[1]), active: Number(reply[2]), newThisMinute: Number(reply[3]) };
    if (status === 'full') return { status, active: Number(reply[1]) };
    return { status: status as 'blocked' | 'extended' | 'unchanged', entry: JSON.parse(reply[1]) as LedgerEntry };
  }

  /**
   * Removes a block everywhere and forgets its strikes; false when the ledger had none. Either way
   * the target is marked removed for as long as the longest block may last, so sensors also drop
   * what they kept of it from an earlier ledger generation.
   */
  async unblock(target: string, maxTtlMs: number): Promise<boolean> {
    const removed = await this.redis.eval(UNBLOCK_SCRIPT, 8, blockKey(target), INDEX, `${NS}blocks:strikes:${target}`, REV, STATS,
      `${POOL_INDEX}verified`, `${POOL_INDEX}unverified`, `${NS}blocks:tomb:${target}`, randomUUID(), target, CHANGES_CHANNEL, String(maxTtlMs));
    return removed === 1;
  }

  async get(target: string, nowMs = Date.now()): Promise<LedgerEntry | undefined> {
    const entry = parseEntry(await this.redis.get(blockKey(target)));
    return entry && entry.expiresMs > nowMs ? entry : undefined;
  }

  /** What the ledger says about each target (a hint's), read in one round trip; expired blocks are absent. */
  async targetStates(targets: readonly string[], nowMs = Date.now()): Promise<Map<string, TargetState>> {
    const pipeline = this.redis.pipeline();
    for (const t of targets) pipeline.get(blockKey(t)).hget(ALLOW, t).exists(`${NS}blocks:tomb:${t}`);
    const replies = (await pipeline.exec()) ?? [];
    const out = new Map<string, TargetState>();
    targets.forEach((target, i) => {
      const [[e1, block], [e2, allow], [e3, tomb]] = replies.slice(3 * i, 3 * i + 3) as [Error | null, unknown][];
      if (e1 ?? e2 ?? e3) throw e1 ?? e2 ?? e3;
      const entry = parseEntry(block as string | null);
      out.set(target, {
        ...(entry && entry.expiresMs > nowMs ? { block: entry } : {}),
        ...(typeof allow === 'string' ? { allow: { target, ...allowValue(allow), source: 'manual' } } : {}),
        removed: tomb === 1,
        unreadable: typeof block === 'string' && entry === undefined,
      });
    });
    return out;
  }

  /**
   * The live blocks, the configured allow entries, the revision and the generation, read
   * atomically; EVAL_RO, because Redis grants a plain EVAL only to users who may write its keys
   * (the sensors may only read the ledger).
   */
  async snapshot(nowMs = Date.now()): Promise<Snapshot> {
    const [rev, targetsAndTexts, allows, epoch] = await this.redis.eval_ro(SNAPSHOT_SCRIPT, 4, INDEX, REV, ALLOW, EPOCH, String(nowMs), `${NS}block:`) as
      [string, string[], string[], string];
    const blocks: LedgerEntry[] = [];
    const unreadable: string[] = [];
    for (let i = 0; i < targetsAndTexts.length; i += 2) {
      const entry = parseEntry(targetsAndTexts[i + 1]);
      if (!entry) unreadable.push(targetsAndTexts[i]);
      else if (entry.expiresMs > nowMs) blocks.push(entry);
    }
    return { ...(epoch ? { epoch } : {}), rev: Number(rev), blocks, allows: parseAllows(allows), unreadable };
  }

  async generation(): Promise<Generation> {
    const [rev, epoch] = await this.redis.mget(REV, EPOCH);
    return { epoch: epoch ?? '', rev: Number(rev ?? 0) };
  }

  /** Announces blocks whose time is up (the kernel has already stopped dropping them); returns their last entries. */
  async sweepExpired(nowMs = Date.now()): Promise<Array<Partial<LedgerEntry> & { target: string }>> {
    return sweepIndex<LedgerEntry>(this.redis, INDEX, `${NS}block:`, nowMs, { statsField: 'expired', alsoFrom: [`${POOL_INDEX}verified`, `${POOL_INDEX}unverified`] });
  }

  /** Adds or replaces a configured allow entry; false when the ledger already holds ALLOW_CAPACITY of them. */
  async allow(target: string, reason: string, actor?: string, nowMs = Date.now()): Promise<boolean> {
    return await this.redis.eval(ALLOW_SCRIPT, 2, ALLOW, REV, randomUUID(), target, JSON.stringify({ reason, actor, createdMs: nowMs }), CHANGES_CHANNEL,
      String(ALLOW_CAPACITY)) !== -1;
  }

  async disallow(target: string): Promise<boolean> {
    return await this.redis.eval(ALLOW_SCRIPT, 2, ALLOW, REV, randomUUID(), target, '', CHANGES_CHANNEL, String(ALLOW_CAPACITY)) === 1;
  }

  /** Configured entries and every live sensor's own defaults, so a blocker anywhere refuses what any sensor must keep. */
  async allowEntries(nowMs = Date.now()): Promise<AllowEntry[]> {
    const sensors = await this.liveSensors(nowMs);
    const pipeline = this.redis.pipeline().hgetall(ALLOW);
    for (const sensor of sensors) pipeline.hgetall(sensorKey(sensor, 'allow'));
    const replies = (await pipeline.exec()) ?? [];
    const out: AllowEntry[] = [];
    replies.forEach(([err, value], i) => {
      if (err) throw err;
      for (const [target, text] of Object.entries(value as Record<string, string>)) {
        out.push(i === 0 ? { target, ...allowValue(text), source: 'manual' } : { target, reason: text, source: `sensor:${sensors[i - 1]}` });
      }
    });
    return out;
  }

  /** Sensors that refreshed their own allow entries within AUTO_ALLOW_TTL_MS: the ones a manual block can be scoped to. */
  async liveSensors(nowMs = Date.now()): Promise<string[]> {
    return this.redis.zrangebyscore(LIVE_SENSORS, nowMs - AUTO_ALLOW_TTL_MS, '+inf');
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

  async countRefusal(reason: 'allowlist' | 'invalid' | 'partner' | 'unverified-repeat'): Promise<void> {
    await this.redis.hincrby(STATS, `refused:${reason}`, 1);
  }

  /** Ledger-wide counters (`blocked:<origin>`, `extended:<origin>`, `unblocked`, `expired`, `refused:<reason>`, `would-block`). */
  async stats(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(STATS);
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  /** What one sensor reports about its kernel: repairs, entries it refused or could not write, and drops per entry. */
  async recordSensorState(sensor: string, state: { added: number; removed: number; refused: number; failed: number; retained: number }, drops: Record<string, number>): Promise<void> {
    const key = sensorKey(sensor, 'state');
    const multi = this.redis.multi().hincrby(key, 'repairs:added', state.added).hincrby(key, 'repairs:removed', state.removed)
      .hset(key, 'refused', state.refused, 'failed', state.failed, 'retained', state.retained).del(sensorKey(sensor, 'drops'));
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

/** A hint names the target whose ledger state changed; anything else on the channel is noise. */
export function parseHint(message: string): string | undefined {
  if (message.length > 256) return undefined;
  try {
    const { target } = JSON.parse(message) as { target?: unknown };
    return typeof target === 'string' && target.length > 0 && target.length <= 64 ? target : undefined;
  } catch {
    return undefined;
  }
}
