/**
 * What the alerter receives on the BullMQ `alerts` queue: incident transitions from the detector,
 * block decisions from the blocker, and exception events about the system itself. Every event has
 * a unique `id` (also its BullMQ job id, so an event enqueued twice is one job) and a schema
 * version `v`; consumers reject versions they do not know.
 */
import type { JobsOptions } from 'bullmq';
import type { TrafficClass } from './traffic';
import type { HeaderSample } from './sensor-tick';

/** In braces: every key of the queue in one Redis Cluster slot (BullMQ's scripts touch several at once). */
export const ALERTS_QUEUE = '{alerts}';
export const ALERT_EVENT_VERSION = 1;

/**
 * How every producer queues an alert event (with `jobId: event.id`). An event the alerter fails to
 * ingest (Redis refusing a write, a bug) is retried for about eight minutes, then dead-lettered by
 * the alerter (`xdp-ids alerts dlq`); failed jobs are never trimmed, so nothing disappears unseen.
 */
export const ALERT_EVENT_JOB_OPTIONS = {
  attempts: 10,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: true,
  removeOnFail: false,
} as const satisfies JobsOptions;

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

/** A comparison of the rule's `when` with the values it saw. */
export interface ConditionValue {
  /** e.g. `syn >= 30` */
  expression: string;
  value: number;
  threshold: number;
  holds: boolean;
}

/** For model detections: how much each feature adds to the reconstruction error. */
export interface FeatureContribution {
  feature: string;
  value: number;
  /** Share of the anomaly score, 0..1. */
  share: number;
}

/** What the blocker did about an incident (absent when the rule does not block). */
export interface BlockOutcome {
  /**
   * `limited`: a traffic class to the target (a protected destination) capped at `perSecond`
   * (forged sources, reflectors). `alert-only`: the evidence does not allow a block (an unverified
   * source already blocked once, a partner prefix).
   */
  status: 'blocked' | 'extended' | 'limited' | 'would-block' | 'alert-only' | 'refused' | 'pending';
  traffic?: TrafficClass;
  perSecond?: number;
  /** What the block rests on (blocks only). */
  evidence?: 'verified' | 'unverified' | 'manual';
  /** The address or prefix, e.g. `198.18.0.66/32`. */
  target: string;
  expiresMs?: number;
  /** Why a block was refused (allowlist, budget) or is only recorded (dry run). */
  reason?: string;
  /** The command an operator types to undo it, e.g. `xdp-ids block del 198.18.0.66/32`. */
  undo?: string;
}

/** One incident: a rule (or the model) firing for one key, from its first to its last detection. */
export interface Incident {
  id: string;
  ruleId: string;
  /** Hash of the rule's meaning when the incident opened (rules/README.md). */
  ruleVersion: string;
  title: string;
  description: string;
  severity: Severity;
  mitre: string[];
  tags: string[];
  scope: 'source' | 'destination';
  /** The rule's group_by, e.g. `src`, `src_prefix/24`, `dst`. */
  groupBy: string;
  /** The address or prefix that fired. */
  key: string;
  /** Sensors that reported it. */
  sensors: string[];
  /** The rule's condition and its window, as written. */
  when: string;
  windowMs: number;
  /** Wall-clock ms: start of the first window that fired, incident opened, last detection, resolution. */
  firstWindowMs: number;
  openedMs: number;
  lastSeenMs: number;
  resolvedMs?: number;
  /** Who resolved it before it went quiet (`xdp-ids incidents resolve`): `cli:<user>@<host>`. */
  resolvedBy?: string;
  /** Detections so far (one per sensor window in which the rule held). */
  detections: number;
  /** The features of the last detection, and the highest value each reached during the incident. */
  features: Record<string, number>;
  peak: Record<string, number>;
  conditions: ConditionValue[];
  /** Sampled packet headers of the key (trips and samples from the sensors), newest last. */
  evidence: HeaderSample[];
  /** Model detections only. */
  explanation?: FeatureContribution[];
  block?: BlockOutcome;
  /**
   * Only on a rule's overflow incident (key `*`): detections of new keys once the rule had its
   * maximum of open incidents (`--max-incidents-per-rule`). It never blocks.
   */
  overflow?: {
    /** Distinct keys folded in (a HyperLogLog estimate, within about 1%). */
    keys: number;
    /** Up to 20 of them. */
    sampleKeys: string[];
  };
  /** The attack it belongs to, once announced (detector/attacks.ts). */
  attackId?: string;
}

/** One of an attack's incidents; `subsumedBy` names the rule of the attack that subsumes it (`inhibits`, same key). */
export interface AttackIncident extends Incident {
  subsumedBy?: string;
}

/** What the kernels dropped of one blocked target of an attack. */
export interface BlockedTarget {
  /** The block's target, e.g. `198.18.0.66/32`. */
  target: string;
  /** Packets its kernel entries dropped, summed over the sensors (each reports every 10 s). */
  dropped: number;
  /** When that count was last seen growing (sampled every 5 s): a drop came within about 15 s before. */
  lastDropMs?: number;
  /** Whether it grew within the last 20 s: the source was still sending while blocked. */
  knocking: boolean;
}

/**
 * One attacker episode (detector/attacks.ts): every incident of one key, and of keys that began
 * firing the same rule at the same destination within seconds of it (a scanner's decoys). It
 * opens with its first incident and resolves once every incident that no other subsumes has.
 */
export interface Attack {
  id: string;
  /** What the event that carries it did to it: opened it, updated it (an incident joined, changed or resolved), resolved it. */
  phase: 'opened' | 'updated' | 'resolved';
  openedMs: number;
  resolvedMs?: number;
  /** Strongest first: the incidents no other subsumes, by severity and then opening; then the subsumed ones. */
  incidents: AttackIncident[];
  blocked: BlockedTarget[];
}

interface EventBase {
  v: typeof ALERT_EVENT_VERSION;
  id: string;
  atMs: number;
}

export interface IncidentEvent extends EventBase {
  kind: 'incident';
  /** `updated` is sent at most once per update interval while the incident stays open. */
  phase: 'opened' | 'updated' | 'resolved';
  incident: Incident;
  /**
   * The incident's attack as it stands after this event: what the alerter tells people about.
   * Events of detectors from before attacks have none; their incident is an attack of its own.
   */
  attack?: Attack;
}

/**
 * A block, destination limit or allow-entry decision taken outside an incident's opening (manual,
 * expiry, refusal, budget). `action` says which (no action: a block); a limit's phases are
 * `limited`, `extended`, `unlimited` and `expired`, an allow entry's `allowed` and `disallowed`
 * (always manual).
 */
export interface BlockEvent extends EventBase {
  kind: 'block';
  phase: 'blocked' | 'extended' | 'unblocked' | 'expired' | 'refused' | 'would-block' | 'limited' | 'unlimited' | 'allowed' | 'disallowed';
  target: string;
  origin: 'rule' | 'model' | 'manual';
  ruleId?: string;
  incidentId?: string;
  expiresMs?: number;
  reason?: string;
  action?: 'block' | 'limit' | 'allow';
  /** A limit's traffic class and rate, when known. */
  traffic?: TrafficClass;
  perSecond?: number;
  /** Who asked, for operator changes: `cli:<user>@<host>` or `api:<token name>` (BlockRequest.actor). */
  actor?: string;
}

export type ExceptionCode =
  | 'redis-unreachable' | 'windows-dropped' | 'sensor-silent' | 'sensor-detached' | 'ring-buffer-loss'
  | 'queue-backlog' | 'rule-reload-failed' | 'model-missing' | 'model-reload-failed' | 'delivery-failed'
  | 'block-budget-exceeded' | 'receiver-disabled' | 'event-dead-lettered' | 'incident-cap-reached' | 'sensor-blind-spot'
  | 'ledger-generation-changed' | 'kernel-table-full' | 'ledger-entry-refused' | 'redis-memory-high';

/** Something wrong with xdp-ids itself; routed to operators, not to the SOC. */
export interface ExceptionEvent extends EventBase {
  kind: 'exception';
  code: ExceptionCode;
  severity: Severity;
  /** Which part and which instance, e.g. `sensor@host1/eth0`, `detector@host1:4242`. */
  component: string;
  message: string;
  details?: Record<string, unknown>;
}

export type AlertEvent = IncidentEvent | BlockEvent | ExceptionEvent;
