/**
 * How detections ask for a block: the detector calls a Blocker with a BlockRequest when an
 * incident of a blocking rule (or, if configured, the model) opens, and puts the outcome in the
 * incident's alert. The blocker decides (allowlist, evidence, budget, dry run) and records the
 * decision in the Redis block ledger, which every sensor enforces.
 */
import type { BlockOutcome, Severity } from './alert-events';
import type { TrafficClass } from './traffic';

export interface BlockRequest {
  /** The address or prefix to block, after the rule's block scope, e.g. `198.18.0.66/32`, `fd00:18::/64`. */
  target: string;
  ttlMs: number;
  origin: 'rule' | 'model' | 'manual';
  ruleId: string;
  incidentId: string;
  title: string;
  severity: Severity;
  /** The sensor whose windows fired and the key (address or prefix) that fired. */
  sensor: string;
  key: string;
  requestedMs: number;
  /** Who asked, recorded on the ledger entry: `rule:<id>`, `model`, `api:<token name>`, `cli:<user>@<host>`. */
  actor?: string;
  /**
   * Whether the source completed a handshake with a protected host while it was seen (it received
   * our SYN-ACK, which a forger cannot), with a TTL that stayed on its path. Unverified blocks are
   * short, never escalate, come once per target, and have a budget of their own.
   */
  evidence?: 'verified' | 'unverified';
}

/** Fastest rate a destination limit may allow (the kernel's IDS_DST_LIMIT_MAX_RATE). */
export const MAX_LIMIT_RATE = 1_000_000;

/** A cap on one traffic class XDP lets through to a protected address: the response to floods from forged sources or reflectors. */
export interface LimitRequest extends BlockRequest {
  traffic: TrafficClass;
  perSecond: number;
}

export interface Blocker {
  request(req: BlockRequest): Promise<BlockOutcome>;
  limit(req: LimitRequest): Promise<BlockOutcome>;
}
