/**
 * What templates see: a notification flattened into plain strings, numbers and lists, so that a
 * template only places and loops, never computes. The first item's fields are also at the top
 * level for subject lines. Every string is cleaned on the way (common/text.ts): rule titles and
 * descriptions, incident keys, packet fields, reasons and actors all come from outside, and text
 * parts and Slack messages are not escaped the way HTML is.
 */
import { TRAFFIC_NAMES, type TrafficClass } from '../common/traffic';
import type { AlertEvent, Incident } from '../common/alert-events';
import type { HeaderSample } from '../common/sensor-tick';
import { oneLine, plainLines } from '../common/text';
import { readableComparison, readableDuration, readableFeature, readableNumber } from './readable';
import type { NoticeItem, Notification } from './types';

const PROTOCOLS: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' };
const PHASE_LABEL = { opened: 'OPENED', repeat: 'ONGOING', resolved: 'RESOLVED' } as const;
const MAX_SAMPLES = 10;

function iso(ms: number | undefined): string {
  return ms === undefined ? '' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function distinct(values: string[], max: number): string {
  const unique = [...new Set(values)];
  return unique.length <= max ? unique.join(', ') : `${unique.slice(0, max).join(', ')} +${unique.length - max} more`;
}

function sampleView(s: HeaderSample) {
  return {
    time: iso(s.tsMs), src: s.src, srcPort: s.srcPort || '', dst: s.dst, dstPort: s.dstPort || '',
    protocol: PROTOCOLS[s.protocol] ?? String(s.protocol), flags: s.tcpFlags || (s.icmpType ? `type ${s.icmpType}/${s.icmpCode}` : ''),
    ttl: s.ttl, window: s.protocol === 6 ? s.tcpWindow : '', dscp: s.dscp, length: s.length,
  };
}

function limitText(target: string, traffic: TrafficClass | undefined, perSecond: number | undefined): string {
  return `${TRAFFIC_NAMES[traffic ?? 'syn']} to ${target} limited to ${readableNumber(perSecond ?? 0)}/s`;
}

function actionOf(i: Incident): string {
  const b = i.block;
  if (!b) return 'alert only';
  const unverified = b.evidence === 'unverified' ? ' (unverified source: one short block, no escalation)' : '';
  switch (b.status) {
    case 'blocked': return `blocked ${b.target} until ${iso(b.expiresMs)}${unverified}`;
    case 'extended': return `block of ${b.target} extended until ${iso(b.expiresMs)}`;
    case 'limited': return `${limitText(b.target, b.traffic, b.perSecond)} until ${iso(b.expiresMs)}`;
    case 'would-block': return b.traffic ? `would limit: ${limitText(b.target, b.traffic, b.perSecond)} (dry run)` : `would block ${b.target} (dry run)`;
    case 'alert-only': return `alert only, ${b.target} not blocked${b.reason ? `: ${b.reason}` : ''}`;
    case 'refused': return `block of ${b.target} refused${b.reason ? `: ${b.reason}` : ''}`;
    case 'pending': return `block of ${b.target} pending`;
  }
}

/** An overflow incident names how many keys it stands for rather than its key, `*`. */
function keyText(i: Incident): string {
  return i.overflow ? `about ${i.overflow.keys.toLocaleString('en-US')} ${i.scope === 'source' ? 'sources' : 'destinations'}` : i.key;
}

function foldedText(i: Incident): string | undefined {
  if (!i.overflow) return undefined;
  const examples = i.overflow.sampleKeys.length ? ` (e.g. ${distinct(i.overflow.sampleKeys, 5)})` : '';
  return `${keyText(i)} beyond the rule's maximum of open incidents${examples}; this incident never blocks`;
}

function shown(i: Incident, name: string, value: number | undefined): string {
  return value === undefined ? '' : readableFeature(i.scope, name, value);
}

function incidentView(i: Incident) {
  const sources = i.scope === 'source' ? keyText(i) : distinct(i.evidence.map((s) => s.src), 3) || 'many';
  const targets = i.scope === 'destination' ? keyText(i) : distinct(i.evidence.map((s) => s.dst), 3) || 'this host';
  return {
    title: i.title, severity: i.severity, SEVERITY: i.severity.toUpperCase(), source: sources, target: targets, action: actionOf(i),
    description: i.description, ruleId: i.ruleId, ruleVersion: i.ruleVersion, incidentId: i.id, key: i.key, groupBy: i.groupBy,
    sensors: i.sensors.join(', '), mitre: i.mitre.join(', '), tags: i.tags.join(', '),
    when: i.when, window: readableDuration(i.windowMs), since: iso(i.firstWindowMs), opened: iso(i.openedMs), lastSeen: iso(i.lastSeenMs),
    resolvedAt: iso(i.resolvedMs), duration: readableDuration(Math.max(0, (i.resolvedMs ?? i.lastSeenMs) - i.firstWindowMs)), detections: i.detections,
    conditions: i.conditions.map((c) => ({
      expression: c.expression, value: readableComparison(i.scope, c.expression, c.value), threshold: readableComparison(i.scope, c.expression, c.threshold),
      verdict: c.holds ? 'tripped' : 'not met',
    })),
    features: Object.keys({ ...i.features, ...i.peak }).sort().map((name) => ({ name, value: shown(i, name, i.features[name]), peak: shown(i, name, i.peak[name]) })),
    samples: i.evidence.slice(-MAX_SAMPLES).map(sampleView),
    block: i.block ? { ...i.block, until: iso(i.block.expiresMs) } : undefined,
    explanation: i.explanation?.map((e) => ({ feature: e.feature, value: readableFeature(i.scope, e.feature, e.value), percent: `${Math.round(e.share * 100)}%` })),
    folded: foldedText(i),
  };
}

const LIMIT_PHASE_LABEL: Partial<Record<string, string>> = { limited: 'set', unlimited: 'removed' };
const ALLOW_PHASE_LABEL: Partial<Record<string, string>> = { allowed: 'added', disallowed: 'removed' };

/** `Block blocked: 198.18.0.66/32`, `Limit set: SYNs to 198.18.0.1 (1000/s)`, `Allow entry added: 10.0.0.0/8`. */
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
      action: event.action === 'allow' ? allowAction : `${event.phase}${event.expiresMs ? ` until ${iso(event.expiresMs)}` : ''}`,
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
  const body = e.kind === 'incident' ? incidentView(e.incident) : otherView(e);
  return {
    ...body, SEVERITY: body.severity.toUpperCase(), phase: PHASE_LABEL[item.phase], kind: e.kind, eventId: e.id, at: iso(e.atMs),
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
  return { ...items[0], items, count: items.length, more: items.length - 1, notificationId: oneLine(n.id), route: oneLine(n.route), created: iso(n.createdMs) };
}
