/**
 * What templates see of an attack: one item for every incident it gathers. It is named by its
 * strongest incidents (those no other subsumes) and lists every rule that fired, the strongest
 * first; who (every source), what was done about each, what the kernels dropped of the blocked
 * ones, the conditions of each naming rule, the counters of the strongest incident, and one
 * section of sampled packets from all of them. Numbers are as people read them (readable.ts);
 * strings are cleaned by view.ts.
 */
import type { Attack, AttackIncident, BlockOutcome, BlockedTarget, Incident } from '../common/alert-events';
import type { HeaderSample } from '../common/sensor-tick';
import { TRAFFIC_NAMES, type TrafficClass } from '../common/traffic';
import { leadOf, namedIncidents, rulesOf, titleOf } from './attacks';
import { readableComparison, readableDuration, readableFeature, readableNumber, readableTime } from './readable';

const PROTOCOLS: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' };
const MAX_SAMPLES = 10;
/** What a block outcome did, strongest first: a key's action is that of its strongest outcome. */
const OUTCOME_ORDER: (BlockOutcome['status'] | 'none')[] = ['blocked', 'extended', 'limited', 'would-block', 'pending', 'alert-only', 'refused', 'none'];
const OUTCOME_WORDS: Record<BlockOutcome['status'] | 'none', string> = {
  blocked: 'blocked', extended: 'blocked', limited: 'limited', 'would-block': 'would be blocked (dry run)', pending: 'block pending',
  'alert-only': 'alert only', refused: 'block refused', none: 'alert only',
};

function distinct(values: string[], max: number): string {
  const unique = [...new Set(values)];
  return unique.length <= max ? unique.join(', ') : `${unique.slice(0, max).join(', ')} +${unique.length - max} more`;
}

/** A sampled packet's header elements as people read them. */
export function sampleView(s: HeaderSample) {
  return {
    time: readableTime(s.tsMs), src: s.src, srcPort: s.srcPort || '', dst: s.dst, dstPort: s.dstPort || '',
    protocol: PROTOCOLS[s.protocol] ?? String(s.protocol), flags: s.tcpFlags || (s.icmpType ? `type ${s.icmpType}/${s.icmpCode}` : ''),
    ttl: s.ttl, window: s.protocol === 6 ? s.tcpWindow : '', dscp: s.dscp, length: s.length,
  };
}

function limitText(target: string, traffic: TrafficClass | undefined, perSecond: number | undefined): string {
  return `${TRAFFIC_NAMES[traffic ?? 'syn']} to ${target} limited to ${readableNumber(perSecond ?? 0)}/s`;
}

/** What was done about an incident, in words: `blocked 198.18.0.66/32 until …`. */
export function actionOf(i: Incident): string {
  const b = i.block;
  if (!b) return 'alert only';
  const unverified = b.evidence === 'unverified' ? ' (unverified source: one short block, no escalation)' : '';
  switch (b.status) {
    case 'blocked': return `blocked ${b.target} until ${readableTime(b.expiresMs)}${unverified}`;
    case 'extended': return `block of ${b.target} extended until ${readableTime(b.expiresMs)}`;
    case 'limited': return `${limitText(b.target, b.traffic, b.perSecond)} until ${readableTime(b.expiresMs)}`;
    case 'would-block': return b.traffic ? `would limit: ${limitText(b.target, b.traffic, b.perSecond)} (dry run)` : `would block ${b.target} (dry run)`;
    case 'alert-only': return `alert only, ${b.target} not blocked${b.reason ? `: ${b.reason}` : ''}`;
    case 'refused': return `block of ${b.target} refused${b.reason ? `: ${b.reason}` : ''}`;
    case 'pending': return `block of ${b.target} pending`;
  }
}

/** Of several incidents of one key, the one whose block outcome did most. */
function strongestBlock(incidents: readonly Incident[]): Incident {
  const rank = (i: Incident): number => OUTCOME_ORDER.indexOf(i.block?.status ?? 'none');
  return incidents.reduce((best, i) => (rank(i) < rank(best) ? i : best));
}

/** An overflow incident names how many keys it stands for rather than its key, `*`. */
function keyText(i: Incident): string {
  return i.overflow ? `about ${i.overflow.keys.toLocaleString('en-US')} ${nounOf(i)}` : i.key;
}

function nounOf(i: Incident): string {
  return i.scope === 'source' ? 'sources' : 'destinations';
}

function foldedText(i: Incident): string | undefined {
  if (!i.overflow) return undefined;
  const examples = i.overflow.sampleKeys.length ? ` (e.g. ${distinct(i.overflow.sampleKeys, 5)})` : '';
  return `${keyText(i)} beyond the rule's maximum of open incidents${examples}; this incident never blocks`;
}

function byKey(incidents: readonly AttackIncident[]): Map<string, AttackIncident[]> {
  const out = new Map<string, AttackIncident[]>();
  for (const i of incidents) out.set(i.key, [...(out.get(i.key) ?? []), i]);
  return out;
}

/** One key: what its strongest outcome did; several: how many were blocked, limited, left alone. */
function actionSummary(keys: Map<string, AttackIncident[]>): string {
  const best = [...keys.values()].map(strongestBlock);
  if (best.length === 1) return actionOf(best[0]);
  const counts = new Map<string, number>();
  for (const i of best) counts.set(OUTCOME_WORDS[i.block?.status ?? 'none'], (counts.get(OUTCOME_WORDS[i.block?.status ?? 'none']) ?? 0) + 1);
  const latest = Math.max(...best.map((i) => i.block?.expiresMs ?? 0));
  const until = latest > 0 ? ` (the last until ${readableTime(latest)})` : '';
  return `${best.length} ${nounOf(best[0])}: ${[...counts].map(([what, n]) => `${n} ${what}`).join(', ')}${until}; see Sources`;
}

function droppedText(b: BlockedTarget, resolved: boolean): string | undefined {
  if (b.dropped === 0) return resolved ? `${b.target}: nothing dropped, it sent nothing more while blocked` : undefined;
  const grew = b.lastDropMs === undefined ? '' : `, the count last grew by ${readableTime(b.lastDropMs)}`;
  const count = `${readableNumber(b.dropped)} packet${b.dropped === 1 ? '' : 's'} dropped while blocked${grew}`;
  return `${b.target}: ${count}: ${b.knocking ? 'still knocking' : 'it stopped'}`;
}

/** Every incident's samples once, newest last. */
function samplesOf(incidents: readonly Incident[]): HeaderSample[] {
  const seen = new Map<string, HeaderSample>();
  for (const s of incidents.flatMap((i) => i.evidence)) seen.set(JSON.stringify([s.tsMs, s.src, s.srcPort, s.dst, s.dstPort, s.protocol, s.tcpFlags]), s);
  return [...seen.values()].sort((a, b) => a.tsMs - b.tsMs).slice(-MAX_SAMPLES);
}

function shown(i: Incident, name: string, value: number | undefined): string {
  return value === undefined ? '' : readableFeature(i.scope, name, value);
}

function ruleView(a: Attack, ruleId: string) {
  const of = a.incidents.filter((i) => i.ruleId === ruleId);
  const first = of[0];
  const notes = [
    of.every((i) => i.subsumedBy) ? `subsumed by ${first.subsumedBy}` : '',
    a.resolvedMs !== undefined && of.some((i) => i.resolvedMs === undefined) ? `its incident stays open until quiet for its ${readableDuration(first.windowMs)} window` : '',
  ].filter(Boolean);
  return { ruleId, title: first.title, SEVERITY: first.severity.toUpperCase(), keys: of.length > 1 ? `${of.length} ${nounOf(first)}` : keyText(first), note: notes.join('; ') };
}

/** The conditions of a rule that names the attack, for its strongest incident. */
function conditionsView(named: readonly AttackIncident[], ruleId: string) {
  const of = named.filter((i) => i.ruleId === ruleId);
  const i = of[0];
  return {
    ruleId, ruleVersion: i.ruleVersion, groupBy: i.groupBy, key: `${keyText(i)}${of.length > 1 ? ` (and ${of.length - 1} more)` : ''}`, window: readableDuration(i.windowMs), when: i.when,
    conditions: i.conditions.map((c) => ({
      expression: c.expression, value: readableComparison(i.scope, c.expression, c.value), threshold: readableComparison(i.scope, c.expression, c.threshold),
      verdict: c.holds ? 'tripped' : 'not met',
    })),
  };
}

export function attackView(a: Attack) {
  const named = namedIncidents(a);
  const lead = leadOf(a);
  const keys = byKey(a.incidents);
  const sourceKeys = a.incidents.filter((i) => i.scope === 'source').map(keyText);
  const destinationKeys = a.incidents.filter((i) => i.scope === 'destination').map(keyText);
  const evidence = a.incidents.flatMap((i) => i.evidence);
  const sinceMs = Math.min(...named.map((i) => i.firstWindowMs));
  const lastSeenMs = Math.max(...a.incidents.map((i) => i.lastSeenMs));
  const best = keys.size === 1 ? strongestBlock(a.incidents) : undefined;
  const resolved = a.resolvedMs !== undefined;
  return {
    title: titleOf(a),
    severity: lead.severity, SEVERITY: lead.severity.toUpperCase(),
    source: sourceKeys.length ? distinct(sourceKeys, 3) : distinct(evidence.map((s) => s.src), 3) || 'many',
    target: destinationKeys.length ? distinct(destinationKeys, 3) : distinct(evidence.map((s) => s.dst), 3) || 'this host',
    action: actionSummary(keys), block: best?.block ? { ...best.block, until: readableTime(best.block.expiresMs) } : undefined,
    dropped: a.blocked.flatMap((b) => droppedText(b, resolved) ?? []),
    description: lead.description, ruleId: lead.ruleId, ruleVersion: lead.ruleVersion, incidentId: lead.id, attackId: a.id, key: lead.key, groupBy: lead.groupBy,
    sensors: [...new Set(a.incidents.flatMap((i) => i.sensors))].sort().join(', '), mitre: [...new Set(a.incidents.flatMap((i) => i.mitre))].join(', '),
    tags: [...new Set(a.incidents.flatMap((i) => i.tags))].join(', '),
    when: lead.when, window: readableDuration(lead.windowMs), since: readableTime(sinceMs), opened: readableTime(a.openedMs), lastSeen: readableTime(lastSeenMs),
    resolvedAt: readableTime(a.resolvedMs), resolvedBy: [...new Set(a.incidents.flatMap((i) => i.resolvedBy ?? []))].join(', '), duration: readableDuration(Math.max(0, (a.resolvedMs ?? lastSeenMs) - sinceMs)),
    detections: a.incidents.reduce((n, i) => n + i.detections, 0),
    rules: rulesOf(a.incidents).map((ruleId) => ruleView(a, ruleId)),
    manySources: keys.size > 1,
    sources: [...keys.values()].map((of) => {
      const strongest = strongestBlock(of);
      return { key: keyText(of[0]), rules: rulesOf(of).join(', '), action: actionOf(strongest), undo: strongest.block?.undo ?? '' };
    }),
    named: rulesOf(named).map((ruleId) => conditionsView(named, ruleId)),
    conditions: conditionsView(named, lead.ruleId).conditions,
    counterKey: keyText(lead),
    features: Object.keys({ ...lead.features, ...lead.peak }).sort().map((name) => ({ name, value: shown(lead, name, lead.features[name]), peak: shown(lead, name, lead.peak[name]) })),
    samples: samplesOf(a.incidents).map(sampleView),
    explanation: lead.explanation?.map((e) => ({ feature: e.feature, value: readableFeature(lead.scope, e.feature, e.value), percent: `${Math.round(e.share * 100)}%` })),
    folded: foldedText(lead),
    incidents: a.incidents.map((i) => ({ id: i.id, ruleId: i.ruleId, key: keyText(i) })),
  };
}
