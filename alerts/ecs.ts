/**
 * Webhook `format: ecs` and syslog `format: json`: one Elastic Common Schema document per event,
 * for Elastic (and every SIEM that reads ECS). Built on the versioned payload's alert
 * (payload.ts), made strict where ECS is: `ecs.version`, `event.kind`, `event.category` and
 * `event.type` from ECS's allowed values and their expected pairs, address fields only with a
 * bare address (a prefix stays under `xdp_ids`), `observer.name` one keyword. What ECS has no
 * field for stays under `xdp_ids`, as in the JSON payload. test/unit/siem-formats.test.ts checks
 * the documents against the published schema (test/fixtures/siem-schemas.json).
 */
import net from 'node:net';
import type { AlertEvent, BlockEvent } from '../common/alert-events';
import { payloadAlert } from './payload';
import type { NoticeItem, Notification } from './types';

export const ECS_VERSION = '8.17.0';

const BLOCK_TYPE: Record<BlockEvent['phase'], 'denied' | 'allowed' | 'info'> = {
  blocked: 'denied', extended: 'denied', limited: 'denied', 'would-block': 'denied',
  unblocked: 'allowed', expired: 'allowed', unlimited: 'allowed', refused: 'allowed',
  allowed: 'info', disallowed: 'info',
};

/** ECS's kind, categories and type of an event: a type every category expects. */
function classification(event: AlertEvent): { kind: string; category: string[]; type: string[] } {
  switch (event.kind) {
    case 'incident': return { kind: 'alert', category: ['intrusion_detection', 'network'], type: ['info'] };
    case 'block': return { kind: 'event', category: ['intrusion_detection', 'network'], type: [BLOCK_TYPE[event.phase]] };
    case 'exception': return { kind: 'event', category: ['host'], type: ['info'] };
  }
}

const address = (text: string | undefined): string | undefined => (text !== undefined && net.isIP(text) ? text : undefined);

export function ecsDocument(item: NoticeItem): Record<string, unknown> {
  const alert = payloadAlert(item);
  const observers = alert.observer?.name ?? [];
  const related = (alert.related?.ip ?? []).filter((ip) => address(ip));
  return {
    ...alert,
    ecs: { version: ECS_VERSION },
    event: { ...alert.event, ...classification(item.event), module: 'xdp_ids', dataset: 'xdp_ids.alerts' },
    source: address(alert.source?.ip) ? alert.source : undefined,
    destination: address(alert.destination?.ip) ? alert.destination : undefined,
    related: related.length ? { ip: related } : undefined,
    observer: { type: 'ids', vendor: 'xdp-ids', product: 'xdp-ids', ...(observers.length === 1 ? { name: observers[0] } : {}) },
    xdp_ids: { ...alert.xdp_ids, ...(observers.length ? { observers } : {}) },
  };
}

/** The documents of a notification, one JSON object a line (Elastic's `_bulk` style, Logstash's json_lines). */
export function ecsLines(n: Notification): string {
  return n.items.map((item) => `${JSON.stringify(ecsDocument(item))}\n`).join('');
}
