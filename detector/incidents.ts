/**
 * Incident state in Redis, shared by every detector process. A rule (or the model) firing for a
 * key opens an incident; later detections update it (count, last values, peaks, sensors); it
 * resolves once the key has been quiet for the resolve time. Every transition is one Lua script,
 * so when two detectors (fed by two sensors that see the same attacker) report the same rule and
 * key at once, exactly one of them opens the incident and the other updates it.
 *
 * A rule has at most `maxOpenPerRule` open incidents: each spoofed source could otherwise open
 * its own, and an attacker forging 100,000 sources would make 100,000 incidents, alerts and sets
 * of keys. A detection of a new key of a rule at its maximum is folded into the rule's one
 * overflow incident (key `*`), which counts the distinct keys folded in and keeps a few of them;
 * keys with an open incident of their own go on updating it. The check and the opening are one
 * script, so detectors racing on the last free place never open one too many.
 *
 * Keys (the prefix `xdp-ids:{incidents}` puts them, and the attacks', in one Redis Cluster slot:
 * a detection's script touches the incident, its rule's open set, the open index and the rule's
 * overflow incident), per incident: `<prefix>:inc:<rule>|<key>` (a hash; its `attack` field is written by
 * detector/attacks.ts when the incident joins an attack), `...:peak` (highest feature values),
 * `...:sensors` (a set), and for an overflow incident `...:keys` (a HyperLogLog of the keys folded
 * in) and `...:samples` (a few of them); `<prefix>:incidents:open` indexes open incidents by
 * resolve deadline, `<prefix>:incidents:open:<rule>` holds a rule's open incidents (not its overflow
 * incident), `<prefix>:incidents:recent` the newest RECENT_KEEP incidents by opening time (open or
 * resolved, for operators' lists), `<prefix>:incident-requests` operators' requests to resolve an
 * incident now, which a detector carries out (`xdp-ids incidents resolve`).
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../common/redis';
import type { BlockOutcome, Incident } from '../common/alert-events';
import type { HeaderSample } from '../common/sensor-tick';
import type { Detection } from './rules/engine';

export interface IncidentStoreOptions {
  prefix?: string;
  /** Quiet time after which an incident resolves (at least the rule's window). */
  resolveAfterMs?: number;
  /** `updated` transitions at most this often per incident. */
  updateEveryMs?: number;
  /** How long a resolved incident stays readable. */
  keepResolvedMs?: number;
  /** Open incidents per rule, its overflow incident aside (default 500). */
  maxOpenPerRule?: number;
}

/** The key of a rule's overflow incident: no address or prefix looks like it. */
export const OVERFLOW_KEY = '*';
/** Keys an overflow incident keeps as examples. */
const OVERFLOW_SAMPLES = 20;
/** Incidents the recent index keeps, newest by opening time. */
export const RECENT_KEEP = 1000;

export type Phase = 'opened' | 'updated' | 'resolved';

export interface Transition {
  phase: Phase;
  incident: Incident;
}

// KEYS: 1-5 the key's incident (hash, peak, sensors, folded keys, sample keys), 6 the open index,
// 7 the rule's open incidents, 8-12 the rule's overflow incident (as 1-5), 13 the recent index.
// ARGV: 1 a new id, 2 now, 3 quiet ms, 4 update every ms, 5 static, 6 last, 7 evidence, 8 sensor,
// 9 the rule's maximum, 10 a new id and 11 static for its overflow incident, 12 the key, 13... peaks.
const RECORD = `
local now = tonumber(ARGV[2])
local function record(base, id, static)
  local inc = KEYS[base]
  local phase = 'quiet'
  if redis.call('HGET', inc, 'status') ~= 'open' then
    redis.call('DEL', inc, KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4])
    redis.call('HSET', inc, 'id', id, 'status', 'open', 'openedMs', ARGV[2], 'detections', 0, 'notifiedMs', ARGV[2], 'static', static)
    redis.call('ZADD', KEYS[13], ARGV[2], inc)
    redis.call('ZREMRANGEBYRANK', KEYS[13], 0, -${RECENT_KEEP + 1})
    phase = 'opened'
  elseif now - tonumber(redis.call('HGET', inc, 'notifiedMs')) >= tonumber(ARGV[4]) then
    redis.call('HSET', inc, 'notifiedMs', ARGV[2])
    phase = 'updated'
  end
  redis.call('HINCRBY', inc, 'detections', 1)
  redis.call('HSET', inc, 'lastSeenMs', ARGV[2], 'quietMs', ARGV[3], 'last', ARGV[6])
  if ARGV[7] ~= '[]' then redis.call('HSET', inc, 'evidence', ARGV[7]) end
  redis.call('SADD', KEYS[base + 2], ARGV[8])
  for i = 13, #ARGV, 2 do
    local current = redis.call('HGET', KEYS[base + 1], ARGV[i])
    if not current or tonumber(ARGV[i + 1]) > tonumber(current) then redis.call('HSET', KEYS[base + 1], ARGV[i], ARGV[i + 1]) end
  end
  redis.call('ZADD', KEYS[6], now + tonumber(ARGV[3]), inc)
  return phase
end
if redis.call('HGET', KEYS[1], 'status') == 'open' or redis.call('SCARD', KEYS[7]) < tonumber(ARGV[9]) then
  redis.call('SADD', KEYS[7], KEYS[1])
  return {record(1, ARGV[1], ARGV[5]), 0}
end
local phase = record(8, ARGV[10], ARGV[11])
redis.call('PFADD', KEYS[11], ARGV[12])
if redis.call('SCARD', KEYS[12]) < ${OVERFLOW_SAMPLES} then redis.call('SADD', KEYS[12], ARGV[12]) end
return {phase, 1}
`;

// KEYS: 1-5 the incident (as RECORD's), 6 the open index, 7 its rule's open incidents.
// ARGV: 1 now, 2 keep ms; for an operator's request 3 who and 4 the incident's id (which the key
// may no longer hold), else '' and '' (resolved when quiet for its resolve time).
const RESOLVE = `
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'open' then
  redis.call('ZREM', KEYS[6], KEYS[1])
  redis.call('SREM', KEYS[7], KEYS[1])
  return 0
end
if ARGV[3] == '' then
  local due = tonumber(redis.call('HGET', KEYS[1], 'lastSeenMs')) + tonumber(redis.call('HGET', KEYS[1], 'quietMs'))
  if due > tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[6], due, KEYS[1])
    return 0
  end
else
  if redis.call('HGET', KEYS[1], 'id') ~= ARGV[4] then return 0 end
  redis.call('HSET', KEYS[1], 'resolvedBy', ARGV[3])
end
redis.call('HSET', KEYS[1], 'status', 'resolved', 'resolvedMs', ARGV[1])
redis.call('ZREM', KEYS[6], KEYS[1])
redis.call('SREM', KEYS[7], KEYS[1])
for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
`;

/** Operators' resolve requests waiting for a detector; more are dropped, oldest first. */
const MAX_REQUESTS = 1000;

interface ResolveRequest {
  id: string;
  actor: string;
}

function parseRequest(text: string): ResolveRequest | undefined {
  try {
    const { id, actor } = JSON.parse(text) as Partial<ResolveRequest>;
    return typeof id === 'string' && typeof actor === 'string' ? { id, actor } : undefined;
  } catch {
    return undefined;
  }
}

interface Scripts {
  /** The phase, and 1 when the detection was folded into the overflow incident. */
  incidentRecord(...keysAndArgs: (string | number)[]): Promise<[string, number]>;
  incidentResolve(...keysAndArgs: (string | number)[]): Promise<number>;
}

/** The keys of one incident, in the order the scripts take them. */
function incidentKeys(key: string): string[] {
  return [key, `${key}:peak`, `${key}:sensors`, `${key}:keys`, `${key}:samples`];
}

type Static = Pick<Incident, 'ruleId' | 'ruleVersion' | 'title' | 'description' | 'severity' | 'mitre' | 'tags' | 'scope' | 'groupBy' | 'key' | 'when' | 'windowMs' | 'firstWindowMs'>;
type Last = Pick<Incident, 'features' | 'conditions'> & { explanation?: Incident['explanation'] };

/** What an incident is about, whichever detector reports it (rules or the model). */
export type IncidentInput = Static & Last & { sensor: string };

export function inputOf(d: Detection): IncidentInput {
  return {
    ruleId: d.ruleId, ruleVersion: d.ruleVersion, title: d.title, description: d.description, severity: d.severity, mitre: [...d.mitre], tags: [...d.tags],
    scope: d.scope, groupBy: d.groupBy, key: d.key, when: d.when, windowMs: d.windowMs, firstWindowMs: d.firstWindowMs,
    features: d.features, conditions: d.conditions, sensor: d.sensor, ...(d.explanation ? { explanation: d.explanation } : {}),
  };
}

/** Where incidents and attacks live; `{incidents}` is their hash tag (docs/redis-keys.md). */
export const INCIDENTS_PREFIX = 'xdp-ids:{incidents}';

export class IncidentStore {
  private readonly prefix: string;
  private readonly openIndex: string;
  private readonly recentIndex: string;
  private readonly requests: string;
  private readonly resolveAfterMs: number;
  private readonly updateEveryMs: number;
  private readonly keepResolvedMs: number;
  readonly maxOpenPerRule: number;

  constructor(private readonly redis: RedisClient, opts: IncidentStoreOptions = {}) {
    this.prefix = opts.prefix ?? INCIDENTS_PREFIX;
    this.openIndex = `${this.prefix}:incidents:open`;
    this.recentIndex = `${this.prefix}:incidents:recent`;
    this.requests = `${this.prefix}:incident-requests`;
    this.resolveAfterMs = opts.resolveAfterMs ?? 60_000;
    this.updateEveryMs = opts.updateEveryMs ?? 60_000;
    this.keepResolvedMs = opts.keepResolvedMs ?? 7 * 86_400_000;
    this.maxOpenPerRule = opts.maxOpenPerRule ?? 500;
    if (!('incidentRecord' in redis)) {
      redis.defineCommand('incidentRecord', { numberOfKeys: 13, lua: RECORD });
      redis.defineCommand('incidentResolve', { numberOfKeys: 7, lua: RESOLVE });
    }
  }

  /**
   * Records one detection; returns the transition to announce, if any (`updated` is rate-limited).
   * It is the overflow incident's when the key was folded into it.
   */
  async record(input: IncidentInput, evidence: readonly HeaderSample[], nowMs = Date.now()): Promise<Transition | undefined> {
    const key = this.keyOf(input.ruleId, input.key);
    const overflowKey = this.keyOf(input.ruleId, OVERFLOW_KEY);
    const { ruleId, ruleVersion, title, description, severity, mitre, tags, scope, groupBy, when, windowMs, firstWindowMs, features, conditions, explanation } = input;
    const staticPart: Static = { ruleId, ruleVersion, title, description, severity, mitre, tags, scope, groupBy, key: input.key, when, windowMs, firstWindowMs };
    const overflowPart: Static = { ...staticPart, key: OVERFLOW_KEY, title: `${title} (many ${scope === 'source' ? 'sources' : 'destinations'})` };
    const last: Last = { features, conditions, ...(explanation ? { explanation } : {}) };
    // A rule sees a key only in windows in which it has traffic: a slow scan's probes may be a window apart.
    const quietMs = Math.max(this.resolveAfterMs, windowMs);
    const peaks = Object.entries(features).filter(([, v]) => Number.isFinite(v)).flatMap(([k, v]) => [k, v]);
    const [phase, folded] = await (this.redis as unknown as Scripts).incidentRecord(
      ...incidentKeys(key), this.openIndex, this.openOfRule(ruleId), ...incidentKeys(overflowKey), this.recentIndex,
      `inc-${randomUUID()}`, nowMs, quietMs, this.updateEveryMs, JSON.stringify(staticPart), JSON.stringify(last), JSON.stringify(evidence), input.sensor,
      this.maxOpenPerRule, `inc-${randomUUID()}`, JSON.stringify(overflowPart), input.key, ...peaks,
    );
    if (phase === 'quiet') return undefined;
    return { phase: phase as Phase, incident: (await this.read(folded === 1 ? overflowKey : key))! };
  }

  /** Stores what the blocker did, and returns the incident with it. */
  async setBlock(ruleId: string, key: string, outcome: BlockOutcome): Promise<Incident | undefined> {
    const k = this.keyOf(ruleId, key);
    await this.redis.hset(k, 'block', JSON.stringify(outcome));
    return this.read(k);
  }

  /** Resolves the incidents whose quiet time has passed; each is returned to exactly one caller. */
  async resolveDue(nowMs = Date.now(), limit = 100): Promise<Transition[]> {
    const due = await this.redis.zrangebyscore(this.openIndex, '-inf', String(nowMs), 'LIMIT', '0', String(limit));
    const out: Transition[] = [];
    for (const key of due) {
      const resolved = await this.resolve(key, nowMs);
      if (resolved) out.push(resolved);
    }
    return out;
  }

  /**
   * Asks the detectors to resolve an open incident now: the control role's way, which may not
   * write incidents. A detector carries it out like a quiet one (same transition, attack, alert).
   */
  async requestResolve(id: string, actor: string): Promise<void> {
    await this.redis.multi().lpush(this.requests, JSON.stringify({ id, actor })).ltrim(this.requests, 0, MAX_REQUESTS - 1).exec();
  }

  /** Carries out operators' requests; each is taken by one detector, and an incident resolves once. */
  async resolveRequested(nowMs = Date.now()): Promise<Transition[]> {
    const taken = await this.redis.rpop(this.requests, MAX_REQUESTS) ?? [];
    const out: Transition[] = [];
    for (const request of taken.map(parseRequest)) {
      const key = request && await this.keyOfId(request.id);
      const resolved = key && await this.resolve(key, nowMs, request);
      if (resolved) out.push(resolved);
    }
    return out;
  }

  private async resolve(key: string, nowMs: number, request?: ResolveRequest): Promise<Transition | undefined> {
    const won = await (this.redis as unknown as Scripts).incidentResolve(...incidentKeys(key), this.openIndex, this.openOfRule(this.ruleOf(key)),
      nowMs, this.keepResolvedMs, request?.actor ?? '', request?.id ?? '');
    if (won !== 1) return undefined;
    const incident = await this.read(key);
    return incident && { phase: 'resolved', incident };
  }

  /** An incident by its id, open or in the recent index. */
  async byId(id: string): Promise<Incident | undefined> {
    const key = await this.keyOfId(id);
    const incident = key ? await this.read(key) : undefined;
    return incident?.id === id ? incident : undefined;
  }

  /**
   * Where an incident id lives: incidents are stored by rule and key, and ids are for people, so
   * this reads the ids of the recent and the open incidents (a few thousand at most) in one round trip.
   */
  private async keyOfId(id: string): Promise<string | undefined> {
    const [recent, open] = await Promise.all([this.redis.zrange(this.recentIndex, '0', '-1'), this.redis.zrange(this.openIndex, '0', '-1')]);
    const keys = [...new Set([...recent, ...open])];
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.hget(key, 'id');
    const ids = (await pipeline.exec()) ?? [];
    const at = ids.findIndex(([, value]) => value === id);
    return at < 0 ? undefined : keys[at];
  }

  async get(ruleId: string, key: string): Promise<Incident | undefined> {
    return this.read(this.keyOf(ruleId, key));
  }

  /** Every open incident; or the `limit` most recently active ones (latest resolve deadline first). */
  async listOpen(limit?: number): Promise<Incident[]> {
    return this.readAll(limit === undefined ? await this.redis.zrange(this.openIndex, '0', '-1') : await this.redis.zrevrange(this.openIndex, 0, limit - 1));
  }

  /** The newest incidents by opening time, open or resolved (at most RECENT_KEEP; resolved ones while they are kept). */
  async listRecent(limit = RECENT_KEEP): Promise<Incident[]> {
    return this.readAll(await this.redis.zrevrange(this.recentIndex, 0, limit - 1));
  }

  /** Incidents that opened after `sinceMs` (for a live feed), oldest first. */
  async openedSince(sinceMs: number): Promise<Incident[]> {
    return this.readAll(await this.redis.zrangebyscore(this.recentIndex, `(${sinceMs}`, '+inf'));
  }

  private async readAll(keys: string[]): Promise<Incident[]> {
    const all = await Promise.all(keys.map((k) => this.read(k)));
    return all.filter((i): i is Incident => i !== undefined);
  }

  /** The Redis key of a rule's incident for a key (attacks.ts writes the incident's attack there). */
  keyOf(ruleId: string, key: string): string {
    return `${this.prefix}:inc:${ruleId}|${key}`;
  }

  /** The rule of an incident's Redis key (neither rule ids nor keys contain `|`). */
  private ruleOf(incidentKey: string): string {
    return incidentKey.slice(`${this.prefix}:inc:`.length, incidentKey.indexOf('|'));
  }

  private openOfRule(ruleId: string): string {
    return `${this.openIndex}:${ruleId}`;
  }

  private async read(key: string): Promise<Incident | undefined> {
    const [hash, peaks, members, folded, samples] = incidentKeys(key);
    const [[, h], [, peak], [, sensors], [, keys], [, sampleKeys]] = (await this.redis.multi().hgetall(hash).hgetall(peaks).smembers(members).pfcount(folded).smembers(samples).exec()) as [
      [null, Record<string, string>], [null, Record<string, string>], [null, string[]], [null, number], [null, string[]],
    ];
    if (!h.id) return undefined;
    const s = JSON.parse(h.static) as Static;
    const last = JSON.parse(h.last) as Last;
    return {
      id: h.id, ...s, sensors: sensors.sort(), openedMs: Number(h.openedMs), lastSeenMs: Number(h.lastSeenMs),
      ...(h.resolvedMs ? { resolvedMs: Number(h.resolvedMs) } : {}), ...(h.resolvedBy ? { resolvedBy: h.resolvedBy } : {}), detections: Number(h.detections),
      features: last.features, conditions: last.conditions, ...(last.explanation ? { explanation: last.explanation } : {}),
      peak: Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Number(v)])),
      evidence: h.evidence ? JSON.parse(h.evidence) as HeaderSample[] : [],
      ...(h.block ? { block: JSON.parse(h.block) as BlockOutcome } : {}),
      ...(s.key === OVERFLOW_KEY ? { overflow: { keys, sampleKeys: sampleKeys.sort() } } : {}),
      ...(h.attack ? { attackId: h.attack } : {}),
    };
  }
}
