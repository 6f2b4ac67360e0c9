/**
 * Webhook `format: ocsf`: one Open Cybersecurity Schema Framework event per alert, OCSF 1.8. An
 * attack (incident events) is a Detection Finding (class 2004) whose `finding_info.uid` is the
 * attack's id: created when it opens, updated, closed when it resolves. A block decision is an
 * update of the finding of its incident (the `security_control` profile's action and
 * disposition); an exception about xdp-ids itself is an Application Error (class 6008). What OCSF
 * has no attribute for stays under `unmapped.xdp_ids`, as in the JSON payload.
 * test/unit/siem-formats.test.ts checks the events against the published schema
 * (test/fixtures/siem-schemas.json).
 */
import net from 'node:net';
import type { AlertEvent, BlockEvent, ExceptionEvent, IncidentEvent, Severity } from '../common/alert-events';
import { attackOf, leadOf, namedIncidents, titleOf } from './attacks';
import { hostOf } from './labels';
import { SEVERITY_NUMBER } from './payload';
import type { NoticeItem, NoticePhase, Notification } from './types';
import { blockTitle } from './view';

export const OCSF_VERSION = '1.8.0';
const PRODUCT = { name: 'xdp-ids', vendor_name: 'xdp-ids' };

const DETECTION_FINDING = { category_uid: 2, class_uid: 2004 };
const APPLICATION_ERROR = { category_uid: 6, class_uid: 6008 };
/** activity_id: Create, Update, Close; status_id: New, In Progress, Resolved. */
const ACTIVITY: Record<NoticePhase, number> = { opened: 1, repeat: 2, resolved: 3 };
const STATUS: Record<NoticePhase, number> = { opened: 1, repeat: 2, resolved: 4 };
/** OCSF's severity_id happens to number info … critical as 1 … 5, as ECS's does. */
const severityId = (s: Severity): number => SEVERITY_NUMBER[s];
/** observable type_id 2: IP Address. */
const IP_ADDRESS = 2;

function classOf(cls: { category_uid: number; class_uid: number }, activityId: number) {
  return { ...cls, activity_id: activityId, type_uid: cls.class_uid * 100 + activityId };
}

function metadata(event: AlertEvent, extra: Record<string, unknown> = {}) {
  return { version: OCSF_VERSION, product: PRODUCT, uid: event.id, log_name: 'alerts', ...extra };
}

const ipObservable = (name: string, value: string) => (net.isIP(value) ? [{ type_id: IP_ADDRESS, name, value }] : []);

/** MITRE ids as OCSF attacks: `T1499.001` is a sub-technique of T1499. */
function attacks(ids: string[]) {
  return ids.map((id) => {
    const [technique] = id.split('.');
    return id === technique ? { technique: { uid: id } } : { technique: { uid: technique }, sub_technique: { uid: id } };
  });
}

function incidentFinding(event: IncidentEvent, phase: NoticePhase) {
  const a = attackOf(event);
  const lead = leadOf(a);
  const addresses = [...new Set(a.incidents.filter((i) => !i.overflow).map((i) => hostOf(i.key)))];
  const endpoint = lead.scope === 'source' ? 'src_endpoint' : 'dst_endpoint';
  return {
    ...classOf(DETECTION_FINDING, ACTIVITY[phase]),
    time: event.atMs, severity_id: severityId(lead.severity), status_id: STATUS[phase], is_alert: phase !== 'resolved',
    message: titleOf(a),
    start_time: Math.min(...namedIncidents(a).map((i) => i.firstWindowMs)), ...(a.resolvedMs !== undefined ? { end_time: a.resolvedMs } : {}),
    count: a.incidents.reduce((n, i) => n + i.detections, 0),
    metadata: metadata(event, { correlation_uid: a.id }),
    finding_info: {
      uid: a.id, title: titleOf(a), desc: lead.description, types: [...new Set(a.incidents.flatMap((i) => i.tags))],
      created_time: a.openedMs, first_seen_time: lead.firstWindowMs, last_seen_time: Math.max(...a.incidents.map((i) => i.lastSeenMs)),
      analytic: { uid: lead.ruleId, name: lead.title, type_id: 1, version: lead.ruleVersion },
      ...(lead.mitre.length ? { attacks: attacks([...new Set(a.incidents.flatMap((i) => i.mitre))]) } : {}),
      related_events: a.incidents.map((i) => ({ uid: i.id, title: i.title })),
    },
    observables: addresses.flatMap((ip) => ipObservable(`${endpoint}.ip`, ip)),
    evidences: lead.evidence.slice(0, 10).map((s) => ({
      src_endpoint: { ip: s.src, ...(s.srcPort ? { port: s.srcPort } : {}) }, dst_endpoint: { ip: s.dst, ...(s.dstPort ? { port: s.dstPort } : {}) },
    })),
    ...(lead.block?.undo ? { remediation: { desc: `undo the response: ${lead.block.undo}` } } : {}),
    unmapped: { xdp_ids: { incident: lead, attack: a } },
  };
}

const DENIES = new Set<BlockEvent['phase']>(['blocked', 'extended', 'limited']);

function blockFinding(event: BlockEvent) {
  const denied = DENIES.has(event.phase);
  return {
    ...classOf(DETECTION_FINDING, ACTIVITY.repeat),
    time: event.atMs, severity_id: severityId(event.phase === 'refused' ? 'medium' : 'info'), status_id: STATUS.repeat, is_alert: false,
    message: `${blockTitle(event)}${event.actor ? ` by ${event.actor}` : ''}`,
    // security_control profile: Denied/Blocked while the block holds, else Allowed/Allowed (a would-block is only Logged).
    action_id: denied ? 2 : 1, disposition_id: event.phase === 'would-block' ? 17 : denied ? 2 : 1,
    metadata: metadata(event, { profiles: ['security_control'] }),
    finding_info: { uid: event.incidentId ?? `block:${event.target}`, title: blockTitle(event), ...(event.ruleId ? { analytic: { uid: event.ruleId, type_id: 1 } } : {}) },
    observables: ipObservable('src_endpoint.ip', hostOf(event.target)),
    unmapped: { xdp_ids: { block: event } },
  };
}

function applicationError(event: ExceptionEvent) {
  return {
    ...classOf(APPLICATION_ERROR, 1),
    time: event.atMs, severity_id: severityId(event.severity), message: event.message,
    metadata: metadata(event, { event_code: event.code }),
    unmapped: { xdp_ids: { exception: event } },
  };
}

export function ocsfEvent(item: NoticeItem): Record<string, unknown> {
  const { event } = item;
  switch (event.kind) {
    case 'incident': return incidentFinding(event, item.phase);
    case 'block': return blockFinding(event);
    case 'exception': return applicationError(event);
  }
}

/** The events of a notification, one JSON object a line. */
export function ocsfLines(n: Notification): string {
  return n.items.map((item) => `${JSON.stringify(ocsfEvent(item))}\n`).join('');
}
