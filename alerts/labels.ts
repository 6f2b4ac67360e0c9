/**
 * The labels an event is routed, grouped, silenced and inhibited by, and the item it is about:
 * the attack for incident events (one item however many incidents and sources it gathers), the
 * one decision for block events, and the component and code for exception events (so a flapping
 * sensor repeats per repeat_interval instead of flooding).
 */
import type { AlertEvent } from '../common/alert-events';
import { attackOf, leadOf, namedIncidents, rulesOf } from './attacks';
import type { Labels } from './matchers';

/** `198.18.0.66/32` and `198.18.0.66` are the same source for inhibition and silences. */
export function hostOf(addressOrPrefix: string): string {
  return addressOrPrefix.replace(/\/(32|128)$/, '');
}

const distinct = (values: string[]): string[] => [...new Set(values)];

export function eventLabels(event: AlertEvent): Labels {
  switch (event.kind) {
    case 'incident': {
      // An attack's rule labels are the rules it is named by: silencing or routing a subsumed rule leaves the attack alone.
      const a = attackOf(event);
      const lead = leadOf(a);
      const keysOf = (scope: string): string[] => distinct(a.incidents.filter((i) => i.scope === scope).map((i) => hostOf(i.key)));
      return {
        kind: ['incident'], phase: [a.phase], severity: [lead.severity], rule: rulesOf(namedIncidents(a)), title: [lead.title],
        tag: distinct(a.incidents.flatMap((i) => i.tags)), mitre: distinct(a.incidents.flatMap((i) => i.mitre)), sensor: distinct(a.incidents.flatMap((i) => i.sensors)),
        scope: distinct(a.incidents.map((i) => i.scope)), incident: a.incidents.map((i) => i.id), attack: [a.id],
        source: keysOf('source'), target: keysOf('destination'), key: distinct(a.incidents.map((i) => hostOf(i.key))),
        blocked: [a.incidents.some((i) => i.block?.status === 'blocked' || i.block?.status === 'extended') ? 'true' : 'false'],
      };
    }
    case 'block':
      return {
        kind: ['block'], phase: [event.phase], severity: [event.phase === 'refused' ? 'medium' : 'info'],
        rule: event.ruleId ? [event.ruleId] : [], incident: event.incidentId ? [event.incidentId] : [],
        source: [hostOf(event.target)], key: [hostOf(event.target)], origin: [event.origin],
      };
    case 'exception':
      return { kind: ['exception'], phase: ['updated'], severity: [event.severity], code: [event.code], component: [event.component] };
  }
}

/** What one notification is about; repeats and resolutions of the same item are deduplicated. */
export function itemKey(event: AlertEvent): string {
  switch (event.kind) {
    case 'incident': return `attack:${attackOf(event).id}`;
    case 'block': return `block:${event.id}`;
    case 'exception': return `exception:${event.code}:${event.component}`;
  }
}

/** Block events are one-off notices; exceptions behave like an incident that never resolves. */
export function itemPhase(event: AlertEvent): 'opened' | 'updated' | 'resolved' {
  switch (event.kind) {
    case 'incident': return attackOf(event).phase;
    case 'block': return 'opened';
    case 'exception': return 'updated';
  }
}
