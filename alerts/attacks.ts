/**
 * What the alerter tells about an incident event: its attack (detector/attacks.ts), the episode
 * the incident belongs to, which is routed, grouped, deduplicated and rendered as one item. An
 * event from a detector older than attacks carries none: its incident is an attack of its own.
 */
import type { Attack, AttackIncident, IncidentEvent } from '../common/alert-events';

export function attackOf(event: IncidentEvent): Attack {
  if (event.attack) return event.attack;
  const i = event.incident;
  return { id: i.id, phase: event.phase, openedMs: i.openedMs, ...(i.resolvedMs !== undefined ? { resolvedMs: i.resolvedMs } : {}), incidents: [i], blocked: [] };
}

/** The incidents an attack is named by (none subsumes them), strongest first. */
export function namedIncidents(a: Attack): AttackIncident[] {
  const named = a.incidents.filter((i) => !i.subsumedBy);
  return named.length ? named : a.incidents;
}

/** The strongest incident: whose rule titles the attack, whose counters and conditions lead. */
export function leadOf(a: Attack): AttackIncident {
  return namedIncidents(a)[0];
}

/** Each rule once, in the attack's order (named first). */
export function rulesOf(incidents: readonly AttackIncident[]): string[] {
  return [...new Set(incidents.map((i) => i.ruleId))];
}

const MAX_TITLES = 3;

/** The titles of the rules that name the attack: `Vertical TCP port scan + UDP port scan`. */
export function titleOf(a: Attack): string {
  const titles = [...new Set(namedIncidents(a).map((i) => i.title))];
  return titles.length <= MAX_TITLES ? titles.join(' + ') : `${titles.slice(0, MAX_TITLES).join(' + ')} +${titles.length - MAX_TITLES} more`;
}
