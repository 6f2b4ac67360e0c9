/**
 * The SIEM formats against the published schemas (test/fixtures/siem-schemas.json, extracted by
 * scripts/siem-schemas.py from elastic/ecs and ocsf/ocsf-schema): every ECS document has ECS's
 * required fields, only ECS fields of the right type outside `xdp_ids`, allowed values and
 * category/type pairs ECS expects; every OCSF event has its class's required attributes, only
 * attributes of its class (and the profiles it names), enum values OCSF defines, and objects with
 * their required attributes. For incident events of every phase and shape, blocks of every phase
 * and exceptions.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { AlertEvent, BlockEvent, ExceptionEvent } from '../../common/alert-events';
import { ecsDocument, ecsLines } from '../../alerts/ecs';
import { ocsfEvent } from '../../alerts/ocsf';
import { renderWebhookBody, webhookContentType } from '../../alerts/render';
import type { NoticeItem, NoticePhase } from '../../alerts/types';
import { incident, incidentEvent } from '../support/alert-fixtures';

interface EcsField {
  type: string;
  allowed?: string[];
  expected_event_types?: Record<string, string[]>;
}
interface OcsfObject {
  required: string[];
  attributes: string[];
  at_least_one?: string[];
}
const SCHEMAS = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../fixtures/siem-schemas.json'), 'utf8')) as {
  ecs: { version: string; required: string[]; fields: Record<string, EcsField> };
  ocsf: {
    version: string;
    classes: Record<string, { class_uid: number; category_uid: number; required: string[]; attributes: string[]; enums: Record<string, number[]> }>;
    profiles: Record<string, string[]>;
    objects: Record<string, OcsfObject>;
    enums: Record<string, number[]>;
    types: Record<string, string>;
  };
};

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const block = (over: Partial<BlockEvent>): BlockEvent => ({ v: 1, id: `b-${over.phase}`, atMs: T0, kind: 'block', phase: 'blocked', target: '198.18.0.66/32', origin: 'rule', ruleId: 'scan.syn-ports', incidentId: 'inc-1', expiresMs: T0 + 3_600_000, ...over });
const exception: ExceptionEvent = { v: 1, id: 'x-1', atMs: T0, kind: 'exception', code: 'ring-buffer-loss', severity: 'medium', component: 'sensor@host1/eth0', message: '12 samples lost' };

const EVENTS: [string, AlertEvent, NoticePhase][] = [
  ['an opened incident', incidentEvent('opened', incident()), 'opened'],
  ['an updated incident', incidentEvent('updated', incident({ mitre: ['T1499.001', 'T1046'] })), 'repeat'],
  ['a resolved incident', incidentEvent('resolved', incident({ resolvedMs: T0 + 90_000, resolvedBy: 'cli:alice@host1' })), 'resolved'],
  ['a destination incident of a prefix', incidentEvent('opened', incident({ scope: 'destination', groupBy: 'dst/24', key: '198.18.0.0/24', mitre: [], block: undefined, evidence: [] })), 'opened'],
  ['an IPv6 incident', incidentEvent('opened', incident({ key: '2001:db8::66', sensors: ['a/eth0', 'b/eth0'] })), 'opened'],
  ['an overflow incident', incidentEvent('opened', incident({ key: '*', overflow: { keys: 4900, sampleKeys: ['198.18.0.1'] }, block: undefined })), 'opened'],
  ...(['blocked', 'extended', 'unblocked', 'expired', 'refused', 'would-block'] as const).map((phase): [string, AlertEvent, NoticePhase] => [`a block ${phase}`, block({ phase }), 'opened']),
  ['a manual block', block({ phase: 'blocked', origin: 'manual', ruleId: undefined, incidentId: undefined, actor: 'cli:alice@host1' }), 'opened'],
  ['a limit', block({ phase: 'limited', action: 'limit', target: '198.18.0.1', traffic: 'syn', perSecond: 1000 }), 'opened'],
  ['an allow entry', block({ phase: 'allowed', action: 'allow', target: '10.20.0.0/16', origin: 'manual' }), 'opened'],
  ['an exception', exception, 'opened'],
];
const itemOf = (event: AlertEvent, phase: NoticePhase): NoticeItem => ({ phase, event, changes: [] });

/** Dotted paths of the leaves (arrays of values are one leaf; arrays of objects are walked). */
function leaves(value: unknown, prefix = ''): [string, unknown][] {
  if (Array.isArray(value) && value.some((v) => typeof v === 'object' && v !== null)) return value.flatMap((v) => leaves(v, prefix));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [[prefix, value]];
  return Object.entries(value).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

function ecsProblems(doc: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const flat = new Map(leaves(JSON.parse(JSON.stringify(doc))));
  for (const field of SCHEMAS.ecs.required) if (!flat.has(field)) problems.push(`missing required ${field}`);
  for (const [name, value] of flat) {
    if (name.startsWith('xdp_ids.')) continue;
    const field = SCHEMAS.ecs.fields[name] ?? (name.startsWith('labels.') ? { type: 'keyword' } : undefined);
    if (!field) {
      problems.push(`${name} is not an ECS field`);
      continue;
    }
    for (const v of Array.isArray(value) ? value : [value]) {
      const ok = field.type === 'ip' ? typeof v === 'string' && net.isIP(v) !== 0
        : field.type === 'date' ? typeof v === 'string' && !Number.isNaN(Date.parse(v)) && /T.*Z$/.test(v)
          : field.type === 'long' ? Number.isInteger(v)
            : typeof v === 'string';
      if (!ok) problems.push(`${name}: ${JSON.stringify(v)} is not a valid ${field.type}`);
      if (field.allowed && !field.allowed.includes(v as string)) problems.push(`${name}: ${JSON.stringify(v)} is not an allowed value`);
    }
  }
  const expected = SCHEMAS.ecs.fields['event.category'].expected_event_types!;
  for (const category of (flat.get('event.category') as string[]) ?? []) {
    for (const type of (flat.get('event.type') as string[]) ?? []) if (!expected[category]?.includes(type)) problems.push(`event.type ${type} is not expected with event.category ${category}`);
  }
  return problems;
}

const OBJECT_OF: Record<string, string> = {
  metadata: 'metadata', product: 'product', finding_info: 'finding_info', analytic: 'analytic', attacks: 'attack', technique: 'technique', sub_technique: 'technique',
  observables: 'observable', evidences: 'evidences', src_endpoint: 'network_endpoint', dst_endpoint: 'network_endpoint', remediation: 'remediation', related_events: 'related_event',
};

function objectProblems(where: string, kind: string, value: Record<string, unknown>): string[] {
  const rules = SCHEMAS.ocsf.objects[kind];
  const problems = [
    ...rules.required.filter((a) => value[a] === undefined).map((a) => `${where}: missing required ${a}`),
    ...Object.keys(value).filter((a) => !rules.attributes.includes(a)).map((a) => `${where}: ${a} is not an attribute of ${kind}`),
    ...(rules.at_least_one && !rules.at_least_one.some((a) => value[a] !== undefined) ? [`${where}: needs one of ${rules.at_least_one.join(', ')}`] : []),
  ];
  return [...problems, ...nestedProblems(where, value)];
}

function typeProblems(where: string, attribute: string, value: unknown): string[] {
  const type = SCHEMAS.ocsf.types[attribute];
  const ok = type === 'timestamp_t' || type === 'integer_t' || type === 'long_t' || type === 'port_t' ? Number.isInteger(value)
    : type === 'string_t' ? typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))
      : type === 'boolean_t' ? typeof value === 'boolean'
        : type === 'ip_t' ? typeof value === 'string' && net.isIP(value) !== 0 : true;
  return ok ? [] : [`${where}.${attribute}: ${JSON.stringify(value)} is not a ${type}`];
}

function nestedProblems(where: string, value: Record<string, unknown>): string[] {
  return Object.entries(value).flatMap(([attribute, v]) => {
    if (attribute === 'unmapped') return [];
    const kind = OBJECT_OF[attribute];
    if (kind) return (Array.isArray(v) ? v : [v]).flatMap((o, i) => objectProblems(`${where}.${attribute}${Array.isArray(v) ? `[${i}]` : ''}`, kind, o as Record<string, unknown>));
    return typeProblems(where, attribute, v);
  });
}

function ocsfProblems(event: Record<string, unknown>): string[] {
  const cls = Object.entries(SCHEMAS.ocsf.classes).find(([, c]) => c.class_uid === event.class_uid);
  if (!cls) return [`class_uid ${String(event.class_uid)} is none of the classes checked`];
  const [name, c] = cls;
  const profiles = ((event.metadata as { profiles?: string[] }).profiles ?? []).flatMap((p) => SCHEMAS.ocsf.profiles[p] ?? [`unknown profile ${p}`]);
  return [
    ...(event.category_uid === c.category_uid ? [] : [`category_uid ${String(event.category_uid)} is not ${name}'s ${c.category_uid}`]),
    ...(event.type_uid === c.class_uid * 100 + (event.activity_id as number) ? [] : [`type_uid ${String(event.type_uid)} is not class_uid × 100 + activity_id`]),
    ...c.required.filter((a) => event[a] === undefined).map((a) => `missing required ${a}`),
    ...Object.keys(event).filter((a) => !c.attributes.includes(a) && !profiles.includes(a)).map((a) => `${a} is not an attribute of ${name} or its profiles`),
    ...Object.entries(c.enums).filter(([a]) => event[a] !== undefined && !c.enums[a].includes(event[a] as number)).map(([a]) => `${a} ${String(event[a])} is not defined`),
    ...Object.entries(SCHEMAS.ocsf.enums).filter(([a]) => event[a] !== undefined && !SCHEMAS.ocsf.enums[a].includes(event[a] as number)).map(([a]) => `${a} ${String(event[a])} is not defined`),
    ...nestedProblems(name, event),
  ];
}

describe('SIEM formats follow the published schemas', () => {
  test.each(EVENTS)('ECS %s: required fields, ECS fields only, valid values', (_what, event, phase) => {
    const doc = ecsDocument(itemOf(event, phase));
    expect(ecsProblems(doc)).toEqual([]);
    expect(doc).toMatchObject({ ecs: { version: SCHEMAS.ecs.version }, event: { id: event.id } });
  });

  test.each(EVENTS)('OCSF %s: required attributes, attributes of its class only, defined enums, valid objects', (_what, event, phase) => {
    const e = ocsfEvent(itemOf(event, phase));
    expect(ocsfProblems(e)).toEqual([]);
    expect(e).toMatchObject({ metadata: { version: SCHEMAS.ocsf.version, uid: event.id } });
  });

  test('the checks catch what they are for', () => {
    const doc = ecsDocument(itemOf(EVENTS[0][1], 'opened'));
    expect(ecsProblems({ ...doc, ecs: undefined, source: { ip: '198.18.0.0/24' }, event: { ...(doc.event as object), type: ['start'], kind: 'incident' }, incident: 1 })).toEqual([
      'missing required ecs.version', 'source.ip: "198.18.0.0/24" is not a valid ip', 'event.kind: "incident" is not an allowed value', 'incident is not an ECS field',
      'event.type start is not expected with event.category intrusion_detection',
    ]);
    const e = ocsfEvent(itemOf(EVENTS[0][1], 'opened'));
    expect(ocsfProblems({ ...e, time: '2025-01-01', type_uid: 1, status_id: 7, finding_info: { title: 't' }, observables: [{ value: 'x' }], threat: 1 })).toEqual([
      'type_uid 1 is not class_uid × 100 + activity_id', 'threat is not an attribute of detection_finding or its profiles', 'status_id 7 is not defined',
      'detection_finding.time: "2025-01-01" is not a timestamp_t', 'detection_finding.finding_info: missing required uid', 'detection_finding.observables[0]: missing required type_id',
    ]);
  });

  test('an attack is one Detection Finding: created, updated and closed under one uid, with its addresses, MITRE techniques and undo', () => {
    const events = (['opened', 'updated', 'resolved'] as const).map((p, i) => ocsfEvent(itemOf(incidentEvent(p, incident({ mitre: ['T1499.001'] })), (['opened', 'repeat', 'resolved'] as const)[i])));
    expect(events.map((e) => [e.activity_id, e.status_id, (e.finding_info as { uid: string }).uid])).toEqual([[1, 1, 'inc-1'], [2, 2, 'inc-1'], [3, 4, 'inc-1']]);
    expect(events[0]).toMatchObject({
      class_uid: 2004, severity_id: 4, observables: [{ type_id: 2, value: '198.18.0.66' }], remediation: { desc: 'undo the response: xdp-ids block del 198.18.0.66/32' },
      finding_info: { attacks: [{ technique: { uid: 'T1499' }, sub_technique: { uid: 'T1499.001' } }], analytic: { uid: 'scan.syn-ports', type_id: 1 } },
    });
  });

  test('ECS: a prefix or overflow key is no address field, and several sensors are no one observer name', () => {
    const prefix = ecsDocument(itemOf(EVENTS[3][1], 'opened'));
    expect(prefix.destination).toBeUndefined();
    expect(ecsDocument(itemOf(EVENTS[4][1], 'opened'))).toMatchObject({ source: { ip: '2001:db8::66' }, observer: { type: 'ids' }, xdp_ids: { observers: ['a/eth0', 'b/eth0'] } });
    expect((ecsDocument(itemOf(EVENTS[4][1], 'opened')).observer as { name?: string }).name).toBeUndefined();
  });

  test('webhook bodies: ecs and ocsf are one JSON event a line (application/x-ndjson); json stays one object', () => {
    const n = { id: 'n1', route: 'soc', groupLabels: {}, createdMs: T0, items: EVENTS.slice(0, 3).map(([, e, p]) => itemOf(e, p)) };
    for (const format of ['ecs', 'ocsf'] as const) {
      const lines = renderWebhookBody(n, format).split('\n');
      expect(lines.pop()).toBe('');
      expect(lines.map((l) => (JSON.parse(l) as { metadata?: { uid: string }; event?: { id: string } }))).toHaveLength(3);
      expect(webhookContentType(format)).toBe('application/x-ndjson');
    }
    expect(renderWebhookBody(n, 'ecs')).toBe(ecsLines(n));
    expect(webhookContentType('json')).toBe('application/json');
  });
});
