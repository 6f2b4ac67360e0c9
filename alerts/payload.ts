/**
 * The webhook payload, schema `xdp-ids.alert.v1` (documented in alerts/README.md). Field names
 * follow the Elastic Common Schema where one fits (`@timestamp`, `event.*`, `rule.*`, `source.ip`,
 * `destination.ip`, `related.ip`, `threat.technique.id`, `observer.name`, `user.name`, `tags`,
 * `message`); everything xdp-ids knows beyond that is under `xdp_ids`: for incidents the attack
 * with all its incidents, and its strongest incident as `incident`. The fields people read as
 * they are (`message`, `event.reason`, `rule.name`, `rule.description`) are one line of plain
 * text, numbers rounded as people read them; `xdp_ids` keeps every value as it came. Adding
 * fields keeps the version; renaming or removing one makes a v2.
 */
import type { AlertEvent, Incident, Severity } from '../common/alert-events';
import { oneLine } from '../common/text';
import { attackOf, leadOf, namedIncidents, titleOf } from './attacks';
import { hostOf } from './labels';
import { readableComparison } from './readable';
import type { NoticeItem, Notification } from './types';
import { blockTitle } from './view';

export const PAYLOAD_SCHEMA = 'xdp-ids.alert.v1';

/** ECS event.severity is numeric; higher is worse. */
export const SEVERITY_NUMBER: Record<Severity, number> = { info: 1, low: 2, medium: 3, high: 4, critical: 5 };
const EVENT_TYPE = { opened: 'start', repeat: 'info', resolved: 'end' } as const;

/** Why the strongest rule fired, as people read it: `syn_per_s >= 300: 312/s; ack_per_syn < 0.2: 0`. */
function reasonOf(i: Incident): string {
  return i.conditions.filter((c) => c.holds).map((c) => `${c.expression}: ${readableComparison(i.scope, c.expression, c.value)}`).join('; ');
}

function ecsOf(event: AlertEvent) {
  switch (event.kind) {
    case 'incident': {
      const a = attackOf(event);
      const lead = leadOf(a);
      // An overflow incident's key, `*`, is no address: ECS consumers would reject it as source.ip.
      const address = lead.overflow ? undefined : hostOf(lead.key);
      const addresses = [...new Set(a.incidents.filter((i) => !i.overflow).map((i) => hostOf(i.key)))];
      return {
        message: oneLine(titleOf(a)),
        event: {
          severity: SEVERITY_NUMBER[lead.severity], start: new Date(Math.min(...namedIncidents(a).map((i) => i.firstWindowMs))).toISOString(),
          end: a.resolvedMs ? new Date(a.resolvedMs).toISOString() : undefined, reason: oneLine(reasonOf(lead)),
        },
        rule: { id: lead.ruleId, name: oneLine(lead.title), version: lead.ruleVersion, description: oneLine(lead.description) },
        source: address && lead.scope === 'source' ? { ip: address } : undefined,
        destination: address && lead.scope === 'destination' ? { ip: address } : undefined,
        related: addresses.length ? { ip: addresses } : undefined,
        threat: lead.mitre.length ? { framework: 'MITRE ATT&CK', technique: { id: [...new Set(a.incidents.flatMap((i) => i.mitre))] } } : undefined,
        observer: { name: [...new Set(a.incidents.flatMap((i) => i.sensors))] },
        tags: [...new Set(a.incidents.flatMap((i) => i.tags))],
        xdp_ids: { severity: lead.severity, incident: lead, attack: a },
      };
    }
    case 'block':
      return {
        message: oneLine(`${blockTitle(event)}${event.actor ? ` by ${event.actor}` : ''}`),
        event: { severity: SEVERITY_NUMBER[event.phase === 'refused' ? 'medium' : 'info'], end: event.expiresMs ? new Date(event.expiresMs).toISOString() : undefined },
        rule: event.ruleId ? { id: event.ruleId } : undefined,
        source: { ip: hostOf(event.target) },
        user: event.actor ? { name: event.actor } : undefined,
        xdp_ids: { block: event },
      };
    case 'exception':
      return {
        message: oneLine(event.message),
        event: { severity: SEVERITY_NUMBER[event.severity], code: event.code },
        observer: { name: [event.component] },
        xdp_ids: { severity: event.severity, exception: event },
      };
  }
}

/** One item of the payload, as alerts/README.md documents it; alerts/ecs.ts builds on it. */
export function payloadAlert(item: NoticeItem) {
  const { event: ecsEvent, xdp_ids: extra, ...rest } = ecsOf(item.event);
  return {
    '@timestamp': new Date(item.event.atMs).toISOString(),
    ...rest,
    event: {
      kind: item.event.kind === 'exception' ? 'event' : 'alert',
      category: item.event.kind === 'exception' ? ['host'] : ['network', 'intrusion_detection'],
      type: [EVENT_TYPE[item.phase]],
      action: `${item.event.kind}-${item.phase}`,
      id: item.event.id,
      ...ecsEvent,
    },
    xdp_ids: { kind: item.event.kind, phase: item.phase, changes: item.changes, ...extra },
  };
}

export function webhookPayload(n: Notification) {
  return {
    schema: PAYLOAD_SCHEMA,
    id: n.id,
    created: new Date(n.createdMs).toISOString(),
    route: n.route,
    group: n.groupLabels,
    alerts: n.items.map(payloadAlert),
  };
}
