/** Block and limit requests as the detector makes them, for tests of the blocker and what follows it. */
import type { BlockRequest, LimitRequest } from '../../common/block-requests';

const MIN = 60_000;

/** A rule's request to block `target` on verified evidence for 10 minutes, unless `overrides` say otherwise. */
export function blockRequest(target: string, overrides: Partial<BlockRequest> = {}): BlockRequest {
  return {
    target, ttlMs: 10 * MIN, origin: 'rule', ruleId: 'scan-tcp-vertical', incidentId: `inc-${target}-${Date.now()}`, title: 'scan', severity: 'high',
    sensor: 'test', key: target, requestedMs: Date.now(), evidence: 'verified', ...overrides,
  };
}

/** A rule's request to limit SYNs towards `target` to 500/s, unless `overrides` say otherwise. */
export function limitRequest(target: string, overrides: Partial<LimitRequest> = {}): LimitRequest {
  return { ...blockRequest(target), ruleId: 'flood-syn-spoofed', traffic: 'syn', perSecond: 500, ...overrides };
}
