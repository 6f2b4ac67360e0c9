/**
 * How detections ask for a block: the detector calls a Blocker with a BlockRequest when an
 * incident of a blocking rule (or, if configured, the model) opens, and puts the outcome in the
 * incident's alert. The blocker decides (allowlist, budget, dry run) and records the decision in
 * the Redis block ledger, which every sensor enforces.
 */
import type { BlockOutcome, Severity } from './alert-events';

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
}

export interface Blocker {
  request(req: BlockRequest): Promise<BlockOutcome>;
}
