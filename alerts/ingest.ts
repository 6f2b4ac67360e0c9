/**
 * What happens to one event from the alerts queue: silences and inhibition first, then every
 * matching route adds it to its group and makes sure the group's flush is scheduled. An event
 * that is itself an inhibition source (a block) is recorded as one, for as long as the block lasts.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AlertEvent } from '../common/alert-events';
import { addPending, groupOf } from './grouping';
import { eventLabels } from './labels';
import { keys } from './keys';
import { matchesAll, type Labels } from './matchers';
import { listSilences, silencedBy } from './silences';
import type { AlertsConfig, FlushJob, InhibitRule, Route } from './types';

export type IngestOutcome = { result: 'silenced'; silence: string } | { result: 'inhibited' } | { result: 'unrouted' } | { result: 'grouped'; routes: string[] };

function inhibitValues(rule: InhibitRule, labels: Labels): string | undefined {
  const values = rule.equal.map((name) => (labels[name] ?? []).join(','));
  return values.every((v) => v !== '') ? JSON.stringify(values) : undefined;
}

function sourceTtlMs(rule: InhibitRule, event: AlertEvent, nowMs: number): number {
  const expires = event.kind === 'block' ? event.expiresMs : event.kind === 'incident' ? event.incident.block?.expiresMs : undefined;
  return expires !== undefined && expires > nowMs ? expires - nowMs : rule.durationMs;
}

async function inhibited(redis: Redis, config: AlertsConfig, event: AlertEvent, labels: Labels, nowMs: number): Promise<boolean> {
  let isTarget = false;
  for (const [index, rule] of config.inhibitRules.entries()) {
    const values = inhibitValues(rule, labels);
    if (values === undefined) continue;
    if (!isTarget && matchesAll(rule.target, labels) && (await redis.exists(keys.inhibit(index, values))) === 1) isTarget = true;
    if (matchesAll(rule.source, labels)) await redis.set(keys.inhibit(index, values), event.id, 'PX', sourceTtlMs(rule, event, nowMs));
  }
  return isTarget;
}

export function matchingRoutes(config: AlertsConfig, labels: Labels): Route[] {
  const out: Route[] = [];
  for (const route of config.routes) {
    if (!matchesAll(route.matchers, labels)) continue;
    out.push(route);
    if (!route.continue) break;
  }
  return out;
}

/**
 * `rerun` is for an event whose earlier run may have died between scheduling a flush in Redis
 * and queueing its job: the job is queued again (same id, so at most once).
 */
export async function ingest(redis: Redis, flushQueue: Queue<FlushJob>, config: AlertsConfig, event: AlertEvent, nowMs: number, rerun: boolean): Promise<IngestOutcome> {
  const labels = eventLabels(event);
  const silence = silencedBy(await listSilences(redis, nowMs), labels, nowMs);
  if (silence) return { result: 'silenced', silence: silence.id };
  if (await inhibited(redis, config, event, labels, nowMs)) return { result: 'inhibited' };
  const routes = matchingRoutes(config, labels);
  if (routes.length === 0) return { result: 'unrouted' };
  for (const route of routes) {
    const group = groupOf(route, labels);
    const { flushAt, scheduled } = await addPending(redis, route, group.key, event, nowMs);
    if (scheduled || rerun) {
      await flushQueue.add('flush', { route: route.name, group: group.key, groupLabels: group.labels }, { jobId: `f-${group.key}-${flushAt}`, delay: Math.max(0, flushAt - Date.now()) });
    }
  }
  return { result: 'grouped', routes: routes.map((r) => r.name) };
}
