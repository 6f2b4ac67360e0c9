/**
 * Incident state in Redis, shared by every detector process. A rule (or the model) firing for a
 * key opens an incident; later detections update it (count, last values, peaks, sensors); it
 * resolves once the key has been quiet for the resolve time. Every transition is one Lua script,
 * so when two detectors (fed by two sensors that see the same attacker) report the same rule and
 * key at once, exactly one of them opens the incident and the other updates it.
 *
 * Keys, per incident: `<prefix>:inc:{<rule>|<key>}` (a hash), `...:peak` (highest feature values)
 * and `...:sensors` (a set); `<prefix>:incidents:open` indexes open incidents by resolve deadline.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
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
}

export type Phase = 'opened' | 'updated' | 'resolved';

export interface Transition {
  phase: Phase;
  incident: Incident;
}

const RECORD = `
local status = redis.call('HGET', KEYS[1], 'status')
local now = tonumber(ARGV[2])
local phase = 'quiet'
if status ~= 'open' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', 'open', 'openedMs', ARGV[2], 'detections', 0, 'notifiedMs', ARGV[2], 'static', ARGV[5])
  phase = 'opened'
elseif now - tonumber(redis.call('HGET', KEYS[1], 'notifiedMs')) >= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'notifiedMs', ARGV[2])
  phase = 'updated'
end
redis.call('HINCRBY', KEYS[1], 'detections', 1)
redis.call('HSET', KEYS[1], 'lastSeenMs', ARGV[2], 'quietMs', ARGV[3], 'last', ARGV[6])
if ARGV[7] ~= '[]' then redis.call('HSET', KEYS[1], 'evidence', ARGV[7]) end
redis.call('SADD', KEYS[3], ARGV[8])
for i = 9, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[2], ARGV[i])
  if not current or tonumber(ARGV[i + 1]) > tonumber(current) then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[3]), KEYS[1])
return {phase, redis.call('HGET', KEYS[1], 'id')}
`;

const RESOLVE = `
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then
  redis.call('ZREM', KEYS[4], KEYS[1])
  return 0
end
local due = tonumber(redis.call('HGET', KEYS[1], 'lastSeenMs')) + tonumber(redis.call('HGET', KEYS[1], 'quietMs'))
if due > tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[4], due, KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'resolved', 'resolvedMs', ARGV[1])
redis.call('ZREM', KEYS[4], KEYS[1])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
`;

interface Scripts {
  incidentRecord(inc: string, peak: string, sensors: string, open: string, ...args: (string | number)[]): Promise<[string, string]>;
  incidentResolve(inc: string, peak: string, sensors: string, open: string, now: number, keepMs: number): Promise<number>;
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

export class IncidentStore {
  private readonly prefix: string;
  private readonly openIndex: string;
  private readonly resolveAfterMs: number;
  private readonly updateEveryMs: number;
  private readonly keepResolvedMs: number;

  constructor(private readonly redis: Redis, opts: IncidentStoreOptions = {}) {
    this.prefix = opts.prefix ?? 'xdp-ids';
    this.openIndex = `${this.prefix}:incidents:open`;
    this.resolveAfterMs = opts.resolveAfterMs ?? 60_000;
    this.updateEveryMs = opts.updateEveryMs ?? 60_000;
    this.keepResolvedMs = opts.keepResolvedMs ?? 7 * 86_400_000;
    if (!('incidentRecord' in redis)) {
      redis.defineCommand('incidentRecord', { numberOfKeys: 4, lua: RECORD });
      redis.defineCommand('incidentResolve', { numberOfKeys: 4, lua: RESOLVE });
    }
  }

  /** Records one detection; returns the transition to announce, if any (`updated` is rate-limited). */
  async record(input: IncidentInput, evidence: readonly HeaderSample[], nowMs = Date.now()): Promise<Transition | undefined> {
    const key = this.keyOf(input.ruleId, input.key);
    const { ruleId, ruleVersion, title, description, severity, mitre, tags, scope, groupBy, when, windowMs, firstWindowMs, features, conditions, explanation } = input;
    const staticPart: Static = { ruleId, ruleVersion, title, description, severity, mitre, tags, scope, groupBy, key: input.key, when, windowMs, firstWindowMs };
    const last: Last = { features, conditions, ...(explanation ? { explanation } : {}) };
    // A rule sees a key only in windows in which it has traffic: a slow scan's probes may be a window apart.
    const quietMs = Math.max(this.resolveAfterMs, windowMs);
    const peaks = Object.entries(features).filter(([, v]) => Number.isFinite(v)).flatMap(([k, v]) => [k, v]);
    const [phase] = await (this.redis as unknown as Scripts).incidentRecord(
      key, `${key}:peak`, `${key}:sensors`, this.openIndex,
      `inc-${randomUUID()}`, nowMs, quietMs, this.updateEveryMs, JSON.stringify(staticPart), JSON.stringify(last), JSON.stringify(evidence), input.sensor, ...peaks,
    );
    if (phase === 'quiet') return undefined;
    return { phase: phase as Phase, incident: (await this.read(key))! };
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
      const won = await (this.redis as unknown as Scripts).incidentResolve(key, `${key}:peak`, `${key}:sensors`, this.openIndex, nowMs, this.keepResolvedMs);
      if (won !== 1) continue;
      const incident = await this.read(key);
      if (incident) out.push({ phase: 'resolved', incident });
    }
    return out;
  }

  async get(ruleId: string, key: string): Promise<Incident | undefined> {
    return this.read(this.keyOf(ruleId, key));
  }

  async listOpen(): Promise<Incident[]> {
    const keys = await this.redis.zrange(this.openIndex, '0', '-1');
    const all = await Promise.all(keys.map((k) => this.read(k)));
    return all.filter((i): i is Incident => i !== undefined);
  }

  private keyOf(ruleId: string, key: string): string {
    return `${this.prefix}:inc:{${ruleId}|${key}}`;
  }

  private async read(key: string): Promise<Incident | undefined> {
    const [[, h], [, peak], [, sensors]] = (await this.redis.multi().hgetall(key).hgetall(`${key}:peak`).smembers(`${key}:sensors`).exec()) as [
      [null, Record<string, string>], [null, Record<string, string>], [null, string[]],
    ];
    if (!h.id) return undefined;
    const s = JSON.parse(h.static) as Static;
    const last = JSON.parse(h.last) as Last;
    return {
      id: h.id, ...s, sensors: sensors.sort(), openedMs: Number(h.openedMs), lastSeenMs: Number(h.lastSeenMs),
      ...(h.resolvedMs ? { resolvedMs: Number(h.resolvedMs) } : {}), detections: Number(h.detections),
      features: last.features, conditions: last.conditions, ...(last.explanation ? { explanation: last.explanation } : {}),
      peak: Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Number(v)])),
      evidence: h.evidence ? JSON.parse(h.evidence) as HeaderSample[] : [],
      ...(h.block ? { block: JSON.parse(h.block) as BlockOutcome } : {}),
    };
  }
}
