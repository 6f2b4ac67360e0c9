/**
 * The webhook payload, schema `xdp-ids.alert.v1` (documented in alerts/README.md). Field names
 * follow the Elastic Common Schema where one fits (`@timestamp`, `event.*`, `rule.*`, `source.ip`,
 * `destination.ip`, `threat.technique.id`, `observer.name`, `user.name`, `tags`, `message`);
 * everything xdp-ids knows beyond that is under `xdp_ids`, including the full incident. The
 * fields people read as they are (`message`, `rule.name`, `rule.description`) are one line of
 * plain text; `xdp_ids` keeps every value as it came. Adding fields keeps the version; renaming
 * or removing one makes a v2.
 */
import type { AlertEvent, Severity } from '../common/alert-events';
import { oneLine } from '../common/text';
import type { NoticeItem, Notification } from './types';
import { hostOf } from './labels';
import { blockTitle } from './view';

export const PAYLOAD_SCHEMA = 'xdp-ids.alert.v1';

/** ECS event.severity is numeric; higher is worse. */
const SEVERITY_NUMBER: Record<Severity, number> = { info: 1, low: 2, medium: 3, high: 4, critical: 5 };
const EVENT_TYPE = { opened: 'start', repeat: 'info', resolved: 'end' } as const;

function ecsOf(event: AlertEvent) {
  switch (event.kind) {
    case 'incident': {
      const i = event.incident;
      // An overflow incident's key, `*`, is no address: ECS consumers would reject it as source.ip.
      const address = i.overflow ? undefined : hostOf(i.key);
      return {
        message: oneLine(i.title),
        event: { severity: SEVERITY_NUMBER[i.severity], start: new Date(i.firstWindowMs).toISOString(), end: i.resolvedMs ? new Date(i.resolvedMs).toISOString() : undefined },
        rule: { id: i.ruleId, name: oneLine(i.title), version: i.ruleVersion, description: oneLine(i.description) },
        source: address && i.scope === 'source' ? { ip: address } : undefined,
        destination: address && i.scope === 'destination' ? { ip: address } : undefined,
        threat: i.mitre.length ? { framework: 'MITRE ATT&CK', technique: { id: i.mitre } } : undefined,
        observer: { name: i.sensors },
        tags: i.tags,
        xdp_ids: { severity: i.severity, incident: i },
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

function alertOf(item: NoticeItem) {
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
    alerts: n.items.map(alertOf),
  };
}
