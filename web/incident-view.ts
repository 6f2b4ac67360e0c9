/**
 * One incident as the dashboard shows it: the rule's conditions with the values seen against
 * their thresholds, every feature's last and peak value, the sampled packet headers, a timeline,
 * what was done about it, and the ledger's entry for its target as it stands now (the block or
 * limit the page can remove or extend). Numbers are formatted as in alerts (alerts/readable.ts);
 * the page escapes every string it shows.
 */
import type { Incident } from '../common/alert-events';
import { actionOf, sampleView } from '../alerts/attack-view';
import { readableComparison, readableFeature } from '../alerts/readable';
import type { LedgerEntry } from '../blocking/ledger';
import type { LimitEntry } from '../blocking/limits';

export interface TimelineEntry {
  atMs: number;
  what: string;
}

/** An incident in a list: what it is about, without its evidence. */
export function incidentRow(i: Incident) {
  return {
    id: i.id, ruleId: i.ruleId, title: i.title, severity: i.severity, scope: i.scope, key: i.key, sensors: i.sensors, openedMs: i.openedMs,
    lastSeenMs: i.lastSeenMs, ...(i.resolvedMs !== undefined ? { resolvedMs: i.resolvedMs } : {}), ...(i.resolvedBy ? { resolvedBy: i.resolvedBy } : {}), detections: i.detections, action: actionOf(i),
    ...(i.block ? { block: { status: i.block.status, target: i.block.target, ...(i.block.traffic ? { traffic: i.block.traffic } : {}) } } : {}),
    ...(i.overflow ? { overflowKeys: i.overflow.keys } : {}),
  };
}

function timelineOf(i: Incident, entry: LedgerEntry | LimitEntry | undefined): TimelineEntry[] {
  const protocol = (s: ReturnType<typeof sampleView>): string => `${s.protocol} ${s.src}${s.srcPort ? `:${s.srcPort}` : ''} → ${s.dst}${s.dstPort ? `:${s.dstPort}` : ''}${s.flags ? ` ${s.flags}` : ''}`;
  const entries: TimelineEntry[] = [
    { atMs: i.firstWindowMs, what: 'the first window in which the rule held began' },
    { atMs: i.openedMs, what: `incident opened (${i.ruleId})` },
    ...i.evidence.map((s) => ({ atMs: s.tsMs, what: `packet sampled: ${protocol(sampleView(s))}` })),
    ...(entry ? [{ atMs: entry.createdMs, what: `${'traffic' in entry ? 'limit' : 'block'} of ${entry.target} entered the ledger by ${entry.actor ?? entry.origin}` }] : []),
    { atMs: i.lastSeenMs, what: `last detection (${i.detections} in all)` },
    ...(i.resolvedMs !== undefined ? [{ atMs: i.resolvedMs, what: i.resolvedBy ? `resolved by ${i.resolvedBy}` : 'resolved: quiet for its resolve time' }] : []),
  ];
  return entries.sort((a, b) => a.atMs - b.atMs);
}

export function incidentDetail(i: Incident, ledger: { block?: LedgerEntry; limit?: LimitEntry }) {
  return {
    incident: incidentRow(i),
    description: i.description, when: i.when, windowMs: i.windowMs, groupBy: i.groupBy, mitre: i.mitre, tags: i.tags, ruleVersion: i.ruleVersion, attackId: i.attackId ?? null,
    conditions: i.conditions.map((c) => ({
      expression: c.expression, value: readableComparison(i.scope, c.expression, c.value), threshold: readableComparison(i.scope, c.expression, c.threshold), holds: c.holds,
    })),
    features: Object.keys({ ...i.features, ...i.peak }).sort().map((name) => ({
      name, value: i.features[name] === undefined ? '' : readableFeature(i.scope, name, i.features[name]), peak: i.peak[name] === undefined ? '' : readableFeature(i.scope, name, i.peak[name]),
    })),
    explanation: i.explanation?.map((e) => ({ feature: e.feature, value: readableFeature(i.scope, e.feature, e.value), percent: Math.round(e.share * 100) })) ?? [],
    samples: i.evidence.map(sampleView),
    timeline: timelineOf(i, ledger.block ?? ledger.limit),
    decision: i.block ?? null,
    ledger: { block: ledger.block ?? null, limit: ledger.limit ?? null },
    overflow: i.overflow ?? null,
  };
}
