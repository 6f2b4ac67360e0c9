/**
 * RFC 5424 syslog messages of a notification, one per event, framed for a TCP stream (RFC 6587):
 * `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`. MSG is the event's ECS document as
 * JSON (alerts/ecs.ts) or a CEF line (alerts/cef.ts), both one line of UTF-8 without a BOM
 * (RFC 5424's MSG-ANY: many collectors would take a BOM into the JSON). PRI is the receiver's
 * facility with the event's severity; MSGID says the event's kind and phase.
 */
import os from 'node:os';
import type { AlertEvent, Severity } from '../common/alert-events';
import { cefLine } from './cef';
import { ecsDocument } from './ecs';
import type { NoticeItem, Notification, SyslogReceiver } from './types';

/** RFC 5424 severities: 2 critical, 3 error, 4 warning, 5 notice, 6 informational. */
const SEVERITY: Record<Severity, number> = { critical: 2, high: 3, medium: 4, low: 5, info: 6 };

function severityOf(event: AlertEvent): Severity {
  switch (event.kind) {
    case 'incident': return event.incident.severity;
    case 'block': return event.phase === 'refused' ? 'medium' : 'info';
    case 'exception': return event.severity;
  }
}

/** RFC 5424 header fields are printable US-ASCII without spaces; `-` when empty. */
function token(text: string, max: number): string {
  return text.replace(/[^!-~]/g, '_').slice(0, max) || '-';
}

export function syslogMessage(item: NoticeItem, r: Pick<SyslogReceiver, 'facility' | 'appName' | 'format'>, host = os.hostname()): string {
  const { event } = item;
  const pri = r.facility * 8 + SEVERITY[severityOf(event)];
  const msg = r.format === 'cef' ? cefLine(item) : JSON.stringify(ecsDocument(item));
  return `<${pri}>1 ${new Date(event.atMs).toISOString()} ${token(host, 255)} ${token(r.appName, 48)} ${process.pid} ${token(`${event.kind}-${item.phase}`, 32)} - ${msg}`;
}

/** RFC 6587 framing: `LEN SP MSG` (octet counting) or `MSG LF` (non-transparent framing; MSG has no LF). */
export function frame(message: string, framing: SyslogReceiver['framing']): string {
  return framing === 'octet-counting' ? `${Buffer.byteLength(message, 'utf8')} ${message}` : `${message}\n`;
}

export function syslogFrames(n: Notification, r: SyslogReceiver): string {
  return n.items.map((item) => frame(syslogMessage(item, r), r.framing)).join('');
}
