/**
 * Attacks: the incidents of one attacker episode, grouped in Redis so that people are told about
 * an episode once rather than once per rule and address. Incidents keep their own keys and
 * lifecycle (incidents.ts); an attack only gathers them.
 *
 * An announced incident joins the open attack of its key (scope and address or prefix): every
 * rule that fires for a source while it attacks belongs to one attack. A key without one joins an
 * attack that opened at most CORRELATE_MS earlier at the same destination with an incident of the
 * same rule: nmap's decoys (-D) are separate sources on the wire, sending the same probes at the
 * same moment, and indistinguishable from the scanner itself. Otherwise the incident opens an
 * attack. An incident is subsumed when an incident of the same key in the attack has a rule that
 * `inhibits` its rule; the attack resolves once every incident that is not subsumed has resolved.
 * Joining and resolving are Lua scripts, so detectors racing on one attack see one outcome.
 *
 * The kernels' drop counters of the attack's blocked targets (what each sensor's enforcer writes
 * to Redis) are sampled every few seconds, so that the attack can say whether a blocked source
 * kept sending: its packets are dropped before they are counted, so its incidents go quiet.
 *
 * Keys: `<prefix>:attack:<id>` (a hash: status, openedMs, resolvedMs, version, and
 * `m:<rule>|<key>` = incident id per member), `...:keys` (the scope|key of its members),
 * `...:targets` (the fields it holds in the by-target index), `...:drops` (per blocked target:
 * dropped count and when it last grew); `<prefix>:attacks:by-key` (scope|key → its open attack),
 * `<prefix>:attacks:by-target` (destination|rule → attack id and opening time),
 * `<prefix>:attacks:blocked` (blocked target → its open attack, for the drop sampler).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Attack, AttackIncident, BlockedTarget, Incident, Severity } from '../common/alert-events';
import type { IncidentStore } from './incidents';

/** How long after an attack opened a key may join it by firing the same rule at the same destination. */
export const CORRELATE_MS = 5000;
/** Keys an attack takes in by correlation; a larger crowd opens further attacks (each still one message). */
const MAX_CORRELATED_KEYS = 32;
/** A drop count seen growing this recently means the source is still sending (a drop within about the last 35 s: enforcers report every 10 s, samples every 5 s). */
const KNOCKING_MS = 20_000;

export interface AttackStoreOptions {
  prefix?: string;
  /** How long a resolved attack stays readable (as its incidents do). */
  keepResolvedMs?: number;
  /** The rules a rule subsumes, from the rule set in force. */
  inhibits: (ruleId: string) => readonly string[];
  /** Packets dropped per blocked target (e.g. `198.18.0.66/32`), summed over the sensors. */
  dropped: () => Promise<Map<string, number>>;
}

// KEYS: 1 the incident's hash, 2 by-key, 3 by-target, 4 blocked, 5-6 a new attack's hash and keys set.
// ARGV: 1 now, 2 a new attack id, 3 scope|key, 4 rule id, 5 member field, 6 incident id, 7 correlate ms,
// 8 max correlated keys, 9 attack key prefix, 10 blocked target or '', 11... destinations.
const JOIN = `
local now = tonumber(ARGV[1])
local function attackKey(id) return ARGV[9] .. id end
local function isOpen(id) return id and redis.call('HGET', attackKey(id), 'status') == 'open' end
local id = redis.call('HGET', KEYS[1], 'attack')
local phase = 'updated'
if not isOpen(id) then id = redis.call('HGET', KEYS[2], ARGV[3]) end
if not isOpen(id) then
  id = nil
  for i = 11, #ARGV do
    local entry = redis.call('HGET', KEYS[3], ARGV[i] .. '|' .. ARGV[4])
    if entry then
      local candidate, opened = string.match(entry, '^(.+)|(%d+)$')
      if now - tonumber(opened) <= tonumber(ARGV[7]) and isOpen(candidate) and redis.call('SCARD', attackKey(candidate) .. ':keys') < tonumber(ARGV[8]) then
        id = candidate
        break
      end
    end
  end
end
if not id then
  id = ARGV[2]
  redis.call('HSET', KEYS[5], 'status', 'open', 'openedMs', ARGV[1], 'version', 0)
  phase = 'opened'
end
local attack = attackKey(id)
if redis.call('HGET', attack, ARGV[5]) ~= ARGV[6] then
  redis.call('HSET', attack, ARGV[5], ARGV[6])
  redis.call('HINCRBY', attack, 'version', 1)
end
redis.call('SADD', attack .. ':keys', ARGV[3])
redis.call('HSET', KEYS[2], ARGV[3], id)
redis.call('HSET', KEYS[1], 'attack', id)
local opened = redis.call('HGET', attack, 'openedMs')
for i = 11, #ARGV do
  local field = ARGV[i] .. '|' .. ARGV[4]
  local entry = redis.call('HGET', KEYS[3], field)
  if not entry or not isOpen(string.match(entry, '^(.+)|')) then
    redis.call('HSET', KEYS[3], field, id .. '|' .. opened)
    redis.call('SADD', attack .. ':targets', field)
  end
end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[4], ARGV[10], id) end
return {id, phase}
`;

// KEYS: 1-4 the attack's hash, keys, targets and drops, 5 by-key, 6 by-target, 7 blocked.
// ARGV: 1 the version its members were judged at, 2 now, 3 keep ms, 4 attack id, 5... its blocked targets.
const RESOLVE = `
if redis.call('HGET', KEYS[1], 'status') ~= 'open' or redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', 'resolved', 'resolvedMs', ARGV[2])
for _, k in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('HGET', KEYS[5], k) == ARGV[4] then redis.call('HDEL', KEYS[5], k) end
end
local mine = ARGV[4] .. '|'
for _, f in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if string.sub(redis.call('HGET', KEYS[6], f) or '', 1, #mine) == mine then redis.call('HDEL', KEYS[6], f) end
end
for i = 5, #ARGV do
  if redis.call('HGET', KEYS[7], ARGV[i]) == ARGV[4] then redis.call('HDEL', KEYS[7], ARGV[i]) end
end
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
`;

// KEYS: 1 an attack's drops hash. ARGV: 1 target, 2 dropped now, 3 now.
const SAMPLE = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old and tonumber(string.match(old, '^(%d+)|')) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return 1
`;

interface Scripts {
  attackJoin(...keysAndArgs: (string | number)[]): Promise<[string, 'opened' | 'updated']>;
  attackResolve(...keysAndArgs: (string | number)[]): Promise<number>;
  attackSample(...keysAndArgs: (string | number)[]): Promise<number>;
}

const SEVERITY_RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** The destinations an incident's traffic went to: its sampled packets' (source scope) or its key (destination scope). */
export function destinationsOf(incident: Incident): string[] {
  if (incident.scope === 'destination') return [incident.key];
  return [...new Set(incident.evidence.filter((s) => s.src === incident.key).map((s) => s.dst))];
}

/** Marks the subsumed incidents and puts the strongest first. */
export function arrange(incidents: readonly Incident[], inhibits: (ruleId: string) => readonly string[]): AttackIncident[] {
  const marked: AttackIncident[] = incidents.map((i) => {
    const by = incidents.find((o) => o !== i && o.scope === i.scope && o.key === i.key && inhibits(o.ruleId).includes(i.ruleId));
    return by ? { ...i, subsumedBy: by.ruleId } : { ...i };
  });
  return marked.sort((a, b) => Number(a.subsumedBy !== undefined) - Number(b.subsumedBy !== undefined)
    || SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || a.openedMs - b.openedMs || (a.id < b.id ? -1 : 1));
}

function isBlocked(i: Incident): boolean {
  return i.block?.status === 'blocked' || i.block?.status === 'extended';
}

export class AttackStore {
  private readonly prefix: string;
  private readonly byKey: string;
  private readonly byTarget: string;
  private readonly blockedIndex: string;
  private readonly keepResolvedMs: number;

  constructor(private readonly redis: Redis, private readonly incidents: IncidentStore, private readonly opts: AttackStoreOptions) {
    this.prefix = opts.prefix ?? 'xdp-ids';
    this.byKey = `${this.prefix}:attacks:by-key`;
    this.byTarget = `${this.prefix}:attacks:by-target`;
    this.blockedIndex = `${this.prefix}:attacks:blocked`;
    this.keepResolvedMs = opts.keepResolvedMs ?? 7 * 86_400_000;
    if (!('attackJoin' in redis)) {
      redis.defineCommand('attackJoin', { numberOfKeys: 6, lua: JOIN });
      redis.defineCommand('attackResolve', { numberOfKeys: 7, lua: RESOLVE });
      redis.defineCommand('attackSample', { numberOfKeys: 1, lua: SAMPLE });
    }
  }

  /** The attack of an incident that opened or was updated, which it joins if it is in no open attack. */
  async join(incident: Incident, nowMs = Date.now()): Promise<Attack> {
    const id = `att-${randomUUID()}`;
    const [attackId, phase] = await (this.redis as unknown as Scripts).attackJoin(
      this.incidents.keyOf(incident.ruleId, incident.key), this.byKey, this.byTarget, this.blockedIndex, this.keyOf(id), `${this.keyOf(id)}:keys`,
      nowMs, id, `${incident.scope}|${incident.key}`, incident.ruleId, memberField(incident), incident.id, CORRELATE_MS, MAX_CORRELATED_KEYS,
      this.keyOf(''), isBlocked(incident) ? incident.block!.target : '', ...destinationsOf(incident),
    );
    return this.attackOf((await this.load(attackId, nowMs))!, phase);
  }

  /**
   * After one of its incidents resolved: the attack, resolved when no incident that is not
   * subsumed is still open; undefined when it had resolved before (nothing more to say about it).
   */
  async settle(incident: Incident & { attackId: string }, nowMs = Date.now()): Promise<Attack | undefined> {
    const loaded = await this.load(incident.attackId, nowMs);
    if (!loaded || loaded.resolvedMs !== undefined) return undefined;
    if (loaded.incidents.some((i) => !i.subsumedBy && i.resolvedMs === undefined)) return this.attackOf(loaded, 'updated');
    // The resolution says what the kernels dropped up to now, not up to the last sample.
    await this.sampleDrops(nowMs);
    const key = this.keyOf(loaded.id);
    const won = await (this.redis as unknown as Scripts).attackResolve(
      key, `${key}:keys`, `${key}:targets`, `${key}:drops`, this.byKey, this.byTarget, this.blockedIndex,
      loaded.version, nowMs, this.keepResolvedMs, loaded.id, ...loaded.blocked.map((b) => b.target),
    );
    const now = await this.load(loaded.id, nowMs);
    if (won === 1) return this.attackOf(now!, 'resolved');
    // An incident joined meanwhile (its own resolution settles the attack again), or another detector resolved it.
    return now && now.resolvedMs === undefined ? this.attackOf(now, 'updated') : undefined;
  }

  /** Records the drop counts of the open attacks' blocked targets that grew since the last sample. */
  async sampleDrops(nowMs = Date.now()): Promise<void> {
    const blocked = Object.entries(await this.redis.hgetall(this.blockedIndex));
    if (blocked.length === 0) return;
    const dropped = await this.opts.dropped();
    await Promise.all(blocked.map(([target, id]) => (this.redis as unknown as Scripts).attackSample(`${this.keyOf(id)}:drops`, target, dropped.get(target) ?? 0, nowMs)));
  }

  async get(id: string, nowMs = Date.now()): Promise<Attack | undefined> {
    const loaded = await this.load(id, nowMs);
    return loaded && this.attackOf(loaded, loaded.resolvedMs === undefined ? 'updated' : 'resolved');
  }

  private keyOf(id: string): string {
    return `${this.prefix}:attack:${id}`;
  }

  private attackOf({ version: _version, ...attack }: Loaded, phase: Attack['phase']): Attack {
    return { ...attack, phase };
  }

  /**
   * The attack with its member incidents as they are now (a member whose incident has since
   * reopened as another is gone), and the version of its membership they were read at.
   */
  private async load(id: string, nowMs: number): Promise<Loaded | undefined> {
    const key = this.keyOf(id);
    const [[, hash], [, drops]] = (await this.redis.multi().hgetall(key).hgetall(`${key}:drops`).exec()) as [[null, Record<string, string>], [null, Record<string, string>]];
    if (!hash.status) return undefined;
    const members = await Promise.all(Object.entries(hash).filter(([field]) => field.startsWith('m:')).map(async ([field, incidentId]) => {
      const [ruleId, ...rest] = field.slice(2).split('|');
      const incident = await this.incidents.get(ruleId, rest.join('|'));
      return incident?.id === incidentId ? incident : undefined;
    }));
    const incidents = arrange(members.filter((i): i is Incident => i !== undefined), this.opts.inhibits);
    const targets = [...new Set(incidents.filter(isBlocked).map((i) => i.block!.target))];
    const blocked = targets.map((target): BlockedTarget => {
      const [count, grewMs] = (drops[target] ?? '0|0').split('|').map(Number);
      return count > 0 ? { target, dropped: count, lastDropMs: grewMs, knocking: nowMs - grewMs <= KNOCKING_MS } : { target, dropped: 0, knocking: false };
    });
    return {
      id, version: hash.version, openedMs: Number(hash.openedMs), ...(hash.resolvedMs ? { resolvedMs: Number(hash.resolvedMs) } : {}), incidents, blocked,
    };
  }
}

type Loaded = Omit<Attack, 'phase'> & { version: string };

/** A member's field in its attack's hash: rule ids and keys contain no `|` (incidents.ts). */
function memberField(incident: Incident): string {
  return `m:${incident.ruleId}|${incident.key}`;
}
