/**
 * Checks what arrives on the alerts queue before anything uses it: the schema version first (a
 * newer detector's events are refused with a clear reason, not misread), then the fields the
 * alerter routes and renders by. Fields it only passes on are not checked here.
 */
import { z } from 'zod';
import { TRAFFIC_CLASSES } from '../common/traffic';
import { ALERT_EVENT_VERSION, type AlertEvent } from '../common/alert-events';

const severity = z.enum(['info', 'low', 'medium', 'high', 'critical']);
const ms = z.number().finite();

const IncidentShape = z.looseObject({
  id: z.string().min(1), ruleId: z.string().min(1), ruleVersion: z.string(), title: z.string(), description: z.string(), severity,
  mitre: z.array(z.string()), tags: z.array(z.string()), scope: z.enum(['source', 'destination']), groupBy: z.string(), key: z.string().min(1),
  sensors: z.array(z.string()), when: z.string(), windowMs: ms, firstWindowMs: ms, openedMs: ms, lastSeenMs: ms, resolvedMs: ms.optional(),
  detections: z.number(), features: z.record(z.string(), z.number()), peak: z.record(z.string(), z.number()),
  conditions: z.array(z.looseObject({ expression: z.string(), value: z.number(), threshold: z.number(), holds: z.boolean() })),
  evidence: z.array(z.looseObject({ tsMs: ms, src: z.string(), dst: z.string(), protocol: z.number() })),
  explanation: z.array(z.looseObject({ feature: z.string(), value: z.number(), share: z.number() })).optional(),
  block: z.looseObject({ status: z.enum(['blocked', 'extended', 'limited', 'would-block', 'alert-only', 'refused', 'pending']), target: z.string() }).optional(),
});

const AttackShape = z.looseObject({
  id: z.string().min(1), phase: z.enum(['opened', 'updated', 'resolved']), openedMs: ms, resolvedMs: ms.optional(),
  incidents: z.array(IncidentShape.extend({ subsumedBy: z.string().optional() })).min(1),
  blocked: z.array(z.looseObject({ target: z.string(), dropped: z.number(), lastDropMs: ms.optional(), knocking: z.boolean() })),
});

const base = { v: z.literal(ALERT_EVENT_VERSION), id: z.string().min(1), atMs: ms };

const EventShape = z.discriminatedUnion('kind', [
  z.looseObject({ ...base, kind: z.literal('incident'), phase: z.enum(['opened', 'updated', 'resolved']), incident: IncidentShape, attack: AttackShape.optional() }),
  z.looseObject({
    ...base, kind: z.literal('block'), phase: z.enum(['blocked', 'extended', 'unblocked', 'expired', 'refused', 'would-block', 'limited', 'unlimited', 'allowed', 'disallowed']),
    target: z.string().min(1), origin: z.enum(['rule', 'model', 'manual']), action: z.enum(['block', 'limit', 'allow']).optional(),
    traffic: z.enum(TRAFFIC_CLASSES).optional(), perSecond: z.number().int().positive().optional(), actor: z.string().optional(),
  }),
  z.looseObject({ ...base, kind: z.literal('exception'), code: z.string().min(1), severity, component: z.string().min(1), message: z.string() }),
]);

export class BadEventError extends Error {}

export function parseEvent(data: unknown): AlertEvent {
  const v = (data as { v?: unknown } | null)?.v;
  if (v !== ALERT_EVENT_VERSION) throw new BadEventError(`unsupported alert event version ${JSON.stringify(v)} (this alerter reads version ${ALERT_EVENT_VERSION})`);
  const parsed = EventShape.safeParse(data);
  if (!parsed.success) {
    throw new BadEventError(`malformed alert event: ${parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data as unknown as AlertEvent;
}
