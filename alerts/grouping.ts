/**
 * Grouping and dedup, with all state in Redis so that any number of alerter processes share it.
 *
 * An event lands in its group's pending hash (one entry per item; the event with the latest
 * `atMs` wins whatever order events arrive in, and a resolution or opening is never downgraded to
 * an update). The first event of a quiet group
 * schedules a flush job at `group_wait` (later ones at `group_interval` after the last flush);
 * the scheduling and the flush's take of the pending hash are Lua scripts, so an event either
 * makes the running flush or schedules the next one. The flush decides per item, against the
 * item's notification state, what to say: opened (once), a repeat with what changed (after
 * `repeat_interval`, or at the next flush when a new rule names the item or its severity rose),
 * resolved (once, when send_resolved). It enqueues the deliveries under ids
 * derived from the flush job before it records the state, so a flush retried after a crash adds
 * the same deliveries again, which BullMQ ignores, and never says anything twice.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { AlertEvent } from '../common/alert-events';
import { attackOf, leadOf, namedIncidents, rulesOf } from './attacks';
import { itemKey, itemPhase } from './labels';
import { ITEM_STATE_TTL_MS, keys } from './keys';
import type { Labels } from './matchers';
import { readableFeature, readableNumber } from './readable';
import type { FlushJob, NoticeItem, Notification, Route } from './types';

const ADD_PENDING = `
local rank = { updated = 0, opened = 1, resolved = 2 }
local old = redis.call('HGET', KEYS[1], ARGV[1])
local phase = ARGV[2]
local value = ARGV[3]
if old then
  local oldPhase, oldAt = string.match(old, '^(%a+)\\n(%d+)\\n')
  if rank[oldPhase] > rank[phase] then phase = oldPhase end
  if tonumber(oldAt) > tonumber(string.match(value, '^(%d+)\\n')) then value = string.sub(old, string.len(oldPhase) + 2) end
end
redis.call('HSET', KEYS[1], ARGV[1], phase .. '\\n' .. value)
local nextAt = redis.call('GET', KEYS[2])
if nextAt then return { nextAt, 0 } end
local now = tonumber(ARGV[4])
local at = now + tonumber(ARGV[5])
local last = redis.call('GET', KEYS[3])
if last and tonumber(last) + tonumber(ARGV[6]) > at then at = tonumber(last) + tonumber(ARGV[6]) end
redis.call('SET', KEYS[2], at)
return { tostring(at), 1 }
`;

const TAKE_PENDING = `
if redis.call('EXISTS', KEYS[5]) == 1 then return {} end
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end
  redis.call('DEL', KEYS[3])
  redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[2])
end
return redis.call('HGETALL', KEYS[2])
`;

/**
 * The group an event belongs to on a route: the route and the values of its group_by labels,
 * hashed into a key that is safe in Redis keys and BullMQ job ids.
 */
export function groupOf(route: Route, labels: Labels): { key: string; labels: Record<string, string> } {
  const values: Record<string, string> = {};
  for (const name of route.groupBy) values[name] = (labels[name] ?? []).join(',');
  const key = createHash('sha256').update(JSON.stringify([route.name, route.groupBy.map((name) => values[name])])).digest('hex').slice(0, 24);
  return { key, labels: values };
}

/** Adds an event to its group; returns when the group's flush is due, and whether this call scheduled it. */
export async function addPending(redis: Redis, route: Route, group: string, event: AlertEvent, nowMs: number): Promise<{ flushAt: number; scheduled: boolean }> {
  const [at, scheduled] = await redis.eval(ADD_PENDING, 3, keys.pending(group), keys.nextFlush(group), keys.lastFlush(group),
    itemKey(event), itemPhase(event), `${Math.round(event.atMs)}\n${JSON.stringify(event)}`, nowMs, route.groupWaitMs, route.groupIntervalMs) as [string, number];
  return { flushAt: Number(at), scheduled: scheduled === 1 };
}

interface ItemState {
  opened?: string;
  resolved?: string;
  last?: string;
  snapshot?: string;
}

/** What a repeat reports as changed; the numbers a SOC compares between two messages, as people read them. */
function snapshotOf(event: AlertEvent): Record<string, string | number> {
  if (event.kind === 'incident') {
    const a = attackOf(event);
    const lead = leadOf(a);
    const keys = new Set(a.incidents.map((i) => i.key));
    const out: Record<string, string | number> = {
      severity: lead.severity, rules: rulesOf(namedIncidents(a)).join(', '), [lead.scope === 'source' ? 'sources' : 'destinations']: keys.size,
      detections: a.incidents.reduce((n, i) => n + i.detections, 0), sensors: [...new Set(a.incidents.flatMap((i) => i.sensors))].sort().join(', '),
    };
    const blocks = a.incidents.flatMap((i) => (i.block ? [`${i.block.status} ${i.block.target}${i.block.expiresMs ? ` until ${new Date(i.block.expiresMs).toISOString()}` : ''}`] : []));
    if (blocks.length) out.block = [...new Set(blocks)].join('; ');
    const dropped = a.blocked.reduce((n, b) => n + b.dropped, 0);
    if (dropped > 0) out['dropped while blocked'] = readableNumber(dropped);
    for (const [name, value] of Object.entries(lead.peak)) out[`peak ${name}`] = readableFeature(lead.scope, name, value);
    return out;
  }
  if (event.kind === 'exception') return { severity: event.severity, message: event.message };
  return {};
}

const SEVERITY_RANK: Record<string, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/**
 * News that is worth a message before repeat_interval, at the group's next flush (as
 * Alertmanager re-notifies a group that changed): a rule the item was not named by, or a higher
 * severity. Counters growing, sources joining and incidents resolving wait for the repeat.
 */
function escalated(before: Record<string, string | number>, after: Record<string, string | number>): boolean {
  const rules = (s: Record<string, string | number>): string[] => (typeof s.rules === 'string' && s.rules ? s.rules.split(', ') : []);
  const known = new Set(rules(before));
  return rules(after).some((r) => !known.has(r)) || (SEVERITY_RANK[after.severity] ?? 0) > (SEVERITY_RANK[before.severity] ?? 0);
}

function changesBetween(before: Record<string, string | number>, after: Record<string, string | number>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(after)) {
    if (before[name] !== value) out.push(before[name] === undefined ? `${name}: ${value}` : `${name}: ${before[name]} → ${value}`);
  }
  return out;
}

/**
 * Takes a group's pending items and turns them into a notification (or nothing when every item
 * is a too-early repeat or an unwanted resolution). `commit` records what was said; call it
 * after the deliveries are queued.
 */
export async function takeNotification(redis: Redis, route: Route, job: FlushJob & { flushId: string }, nowMs: number):
  Promise<{ notification?: Notification; commit(): Promise<void> }> {
  const flat = await redis.eval(TAKE_PENDING, 5, keys.pending(job.group), keys.taken(job.flushId), keys.nextFlush(job.group), keys.lastFlush(job.group),
    keys.flushDone(job.flushId), nowMs, route.groupIntervalMs + ITEM_STATE_TTL_MS) as string[];
  const items: NoticeItem[] = [];
  const writes: Array<[string, Record<string, string>]> = [];
  for (let i = 0; i < flat.length; i += 2) {
    const item = flat[i];
    const [, phase, json] = /^(\w+)\n\d+\n([\s\S]*)$/.exec(flat[i + 1])!;
    const event = JSON.parse(json) as AlertEvent;
    const stateKey = keys.item(route.name, item);
    const state = await redis.hgetall(stateKey) as ItemState;
    const snapshot = snapshotOf(event);
    const said = { last: String(nowMs), snapshot: JSON.stringify(snapshot) };
    if (state.resolved) continue;
    if (phase === 'resolved') {
      if (route.sendResolved) items.push({ phase: 'resolved', event, changes: [] });
      writes.push([stateKey, { ...said, resolved: String(nowMs), opened: state.opened ?? String(nowMs) }]);
    } else if (!state.opened) {
      items.push({ phase: 'opened', event, changes: [] });
      writes.push([stateKey, { ...said, opened: String(nowMs) }]);
    } else {
      const before = state.snapshot ? JSON.parse(state.snapshot) as Record<string, string | number> : {};
      if (nowMs - Number(state.last) < route.repeatIntervalMs && !escalated(before, snapshot)) continue;
      items.push({ phase: 'repeat', event, changes: changesBetween(before, snapshot) });
      writes.push([stateKey, said]);
    }
  }
  const commit = async (): Promise<void> => {
    const tx = redis.multi();
    for (const [key, fields] of writes) tx.hset(key, fields).pexpire(key, ITEM_STATE_TTL_MS);
    tx.del(keys.taken(job.flushId)).set(keys.flushDone(job.flushId), '1', 'PX', ITEM_STATE_TTL_MS);
    await tx.exec();
  };
  if (items.length === 0) return { commit };
  items.sort((a, b) => a.event.atMs - b.event.atMs || (a.event.id < b.event.id ? -1 : 1));
  return { notification: { id: job.flushId, route: route.name, groupLabels: job.groupLabels, items, createdMs: nowMs }, commit };
}
