/**
 * What templates see: a notification flattened into plain strings, numbers and lists, so that a
 * template only places and loops, never computes. An incident event is shown as its attack
 * (attack-view.ts); block and exception events as themselves. The first item's fields are also at
 * the top level for subject lines. Every string is cleaned on the way (common/text.ts): rule titles and
 * descriptions, incident keys, packet fields, reasons and actors all come from outside, and text
 * parts and Slack messages are not escaped the way HTML is.
 */
import { TRAFFIC_NAMES } from '../common/traffic';
import type { AlertEvent } from '../common/alert-events';
import { oneLine, plainLines } from '../common/text';
import { attackView } from './attack-view';
import { attackOf } from './attacks';
import { readableNumber, readableTime } from './readable';
import type { NoticeItem, Notification } from './types';

const PHASE_LABEL = { opened: 'OPENED', repeat: 'ONGOING', resolved: 'RESOLVED' } as const;

const LIMIT_PHASE_LABEL: Partial<Record<string, string>> = { limited: 'set', unlimited: 'removed' };
const ALLOW_PHASE_LABEL: Partial<Record<string, string>> = { allowed: 'added', disallowed: 'removed' };

/** `Block blocked: 198.18.0.66/32`, `Limit set: SYNs to 198.18.0.1 (1,000/s)`, `Allow entry added: 10.0.0.0/8`. */
export function blockTitle(event: Extract<AlertEvent, { kind: 'block' }>): string {
  switch (event.action) {
    case 'limit': return `Limit ${LIMIT_PHASE_LABEL[event.phase] ?? event.phase}: ${TRAFFIC_NAMES[event.traffic ?? 'syn']} to ${event.target}${event.perSecond ? ` (${readableNumber(event.perSecond)}/s)` : ''}`;
    case 'allow': return `Allow entry ${ALLOW_PHASE_LABEL[event.phase] ?? event.phase}: ${event.target}`;
    default: return `Block ${event.phase}: ${event.target}`;
  }
}

function otherView(event: Exclude<AlertEvent, { kind: 'incident' }>) {
  if (event.kind === 'block') {
    const limit = event.action === 'limit';
    const allowAction = event.phase === 'allowed' ? 'allowed: never blocked from now on' : 'allow entry removed: blockable again';
    return {
      title: blockTitle(event),
      severity: event.phase === 'refused' ? 'medium' : 'info', source: limit ? 'any' : event.target, target: limit ? event.target : 'this host',
      action: event.action === 'allow' ? allowAction : `${event.phase}${event.expiresMs ? ` until ${readableTime(event.expiresMs)}` : ''}`,
      description: event.reason ?? '', ruleId: event.ruleId ?? '', incidentId: event.incidentId ?? '', origin: event.origin, actor: event.actor ?? '',
    };
  }
  return {
    title: event.code, severity: event.severity, source: event.component, target: 'xdp-ids', action: 'system exception',
    description: event.message, code: event.code, details: event.details ? JSON.stringify(event.details, null, 2) : '',
  };
}

function itemView(item: NoticeItem) {
  const e = item.event;
  const body = e.kind === 'incident' ? attackView(attackOf(e)) : otherView(e);
  return {
    ...body, SEVERITY: body.severity.toUpperCase(), phase: PHASE_LABEL[item.phase], kind: e.kind, eventId: e.id, at: readableTime(e.atMs),
    changes: item.changes, isIncident: e.kind === 'incident', isException: e.kind === 'exception', resolved: item.phase === 'resolved',
  };
}

/** Every string becomes one line of plain text; exception details keep their line breaks. */
function cleaned<T>(value: T, key = ''): T {
  if (typeof value === 'string') return (key === 'details' ? plainLines(value) : oneLine(value)) as T;
  if (Array.isArray(value)) return value.map((v) => cleaned(v)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cleaned(v, k)])) as T;
  return value;
}

export function notificationView(n: Notification) {
  const items = n.items.map((item) => cleaned(itemView(item)));
  return { ...items[0], items, count: items.length, more: items.length - 1, notificationId: oneLine(n.id), route: oneLine(n.route), created: readableTime(n.createdMs) };
}
