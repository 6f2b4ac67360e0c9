/**
 * The labels an event is routed, grouped, silenced and inhibited by, and the item it is about:
 * the incident for incident events, the one decision for block events, and the component and
 * code for exception events (so a flapping sensor repeats per repeat_interval instead of flooding).
 */
import type { AlertEvent } from '../common/alert-events';
import type { Labels } from './matchers';

/** `198.18.0.66/32` and `198.18.0.66` are the same source for inhibition and silences. */
export function hostOf(addressOrPrefix: string): string {
  return addressOrPrefix.replace(/\/(32|128)$/, '');
}

export function eventLabels(event: AlertEvent): Labels {
  switch (event.kind) {
    case 'incident': {
      const i = event.incident;
      const key = hostOf(i.key);
      return {
        kind: ['incident'], phase: [event.phase], severity: [i.severity], rule: [i.ruleId], title: [i.title],
        tag: i.tags, mitre: i.mitre, sensor: i.sensors, scope: [i.scope], incident: [i.id],
        source: i.scope === 'source' ? [key] : [], target: i.scope === 'destination' ? [key] : [],
        key: [key], blocked: [i.block?.status === 'blocked' || i.block?.status === 'extended' ? 'true' : 'false'],
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
    case 'incident': return `incident:${event.incident.id}`;
    case 'block': return `block:${event.id}`;
    case 'exception': return `exception:${event.code}:${event.component}`;
  }
}

/** Block events are one-off notices; exceptions behave like an incident that never resolves. */
export function itemPhase(event: AlertEvent): 'opened' | 'updated' | 'resolved' {
  switch (event.kind) {
    case 'incident': return event.phase;
    case 'block': return 'opened';
    case 'exception': return 'updated';
  }
}
