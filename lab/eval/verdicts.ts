/**
 * Judges an eval run: which case each incident, block, limit and message belongs to, and the
 * verdict of every case. Attribution is by address first (every case has its own host, forged
 * addresses, capture prefix and protected address) and by time only for keys no case owns
 * (random forged sources), when one case's traffic was on.
 */
import ipaddr from 'ipaddr.js';
import type { Incident } from '../../common/alert-events';
import type { TrafficClass } from '../../common/traffic';
import type { LabHost } from '../netns';
import { covers, type CaseAddresses } from './addresses';
import { SHORT_BLOCK_MAX_MS, type EvalCase } from './cases';
import type { EvalRun } from './harness';
import { addressesOf, incidentIdsOf } from './mailbox';

export interface CaseScope {
  id: string;
  /** Every address the case sends from or to: its host, its forged sources, its protected address. */
  addresses: string[];
  /** The attacker's own addresses: a block of any other (a decoy, a forged source, a reflector) shuts out a host the attacker chose. */
  senders: string[];
  prefix?: string;
  randomSources: boolean;
  startMs: number;
  /** Infinity while the traffic runs. */
  trafficEndMs: number;
}

export function scopeOf(c: EvalCase, a: CaseAddresses, host: LabHost, target: string, startMs: number): CaseScope {
  return {
    id: c.id, addresses: [host.v4, host.v6, ...a.forged, target], senders: [host.v4, host.v6], prefix: a.capturePrefix,
    randomSources: c.traffic.tool === 'hping3' && Boolean(c.traffic.randSource), startMs, trafficEndMs: Infinity,
  };
}

/** A detection can come from the windows just after the traffic (rule windows of up to 5 s). */
const AFTER_TRAFFIC_MS = 6000;

/** The cases a key (an address or prefix) seen at atMs belongs to. */
export function ownersOf(scopes: CaseScope[], key: string, atMs: number): CaseScope[] {
  const address = key.split('/')[0];
  const byKey = scopes.filter((s) => s.addresses.some((a) => covers(key, a)) || (s.prefix !== undefined && covers(s.prefix, address)));
  const strict = (s: CaseScope): boolean => atMs >= s.startMs && atMs <= s.trafficEndMs;
  const loose = (s: CaseScope): boolean => atMs >= s.startMs - 1000 && atMs <= s.trafficEndMs + AFTER_TRAFFIC_MS;
  const narrow = (candidates: CaseScope[]): CaseScope[] => {
    const inTraffic = candidates.filter(strict);
    if (inTraffic.length) return inTraffic;
    const near = candidates.filter(loose);
    return near.length ? near : candidates;
  };
  if (byKey.length === 1) return byKey;
  if (byKey.length > 1) return narrow(byKey);
  const active = narrow(scopes).filter(loose);
  const random = active.filter((s) => s.randomSources);
  return random.length ? random : active;
}

export function belongsTo(scope: CaseScope, scopes: CaseScope[], key: string, atMs: number): boolean {
  return ownersOf(scopes, key, atMs).includes(scope);
}

function canonical(prefixOrAddress: string): string {
  try {
    if (!prefixOrAddress.includes('/')) return ipaddr.parse(prefixOrAddress).toString();
    const [net, bits] = ipaddr.parseCIDR(prefixOrAddress);
    return `${net.toString()}/${bits}`;
  } catch {
    return prefixOrAddress;
  }
}

export type Verdict = 'named' | 'mislabeled' | 'missed' | 'error' | 'clean' | 'false-positive';

export interface CaseResult {
  id: string;
  kind: 'attack' | 'benign';
  expect?: string;
  /** Whether the expected rule is in the loaded rule set at all. */
  expectedRuleLoaded?: boolean;
  verdict: Verdict;
  error?: string;
  command?: string;
  summary?: string;
  rulesFired: string[];
  incidents: { id: string; ruleId: string; key: string; openedAfterMs: number; block?: Incident['block']; resolved: boolean }[];
  firstIncidentMs?: number;
  expectedIncidentMs?: number;
  firstDropMs?: number;
  /** strikes: the how-manyth block of the target, which picks its step on the TTL ladder. */
  blocks: { target: string; ruleId?: string; ttlS: number; strikes?: number; drops: number; firstDropAfterMs?: number; forged: boolean }[];
  limits: { target: string; traffic: TrafficClass; ruleId?: string; perSecond: number; ttlS: number; drops: number; firstDropAfterMs?: number }[];
  forgedBlocks: number;
  forgedLongBlocks: number;
  messages: number;
  messageSubjects: string[];
  arrived: { frames: number; expectedFrames?: number; sourcePackets: number; destinationPackets: number; blockDrops: number; globalPackets: number; peakPerWindow: number };
  /** The sensor's counters for the case's sources and protected address, summed over its windows (distinct_* summed per window). */
  counters: { source: Record<string, number>; destination: Record<string, number> };
  /** When the case started, from the start of the run. */
  startOffsetS: number;
  trafficSeconds: number;
  lifted: string[];
}

/** Fewer packets than this counted for a case whose tool sends no exact count means its traffic did not arrive. */
const MIN_ARRIVED = 10;
/** Of the frames a tool was told to send, at least this share must have been counted or dropped. */
const MIN_ARRIVED_SHARE = 0.5;

export function judge(run: EvalRun, loadedRules: Set<string>): { cases: CaseResult[]; unattributedMessages: string[]; unattributedIncidents: string[] } {
  const scopes = run.runs.map((r) => r.scope);
  const latest = new Map<string, Incident>();
  const resolved = new Set<string>();
  for (const e of run.observer.incidents) {
    latest.set(e.incident.id, { ...e.incident, block: e.incident.block ?? latest.get(e.incident.id)?.block });
    if (e.phase === 'resolved') resolved.add(e.incident.id);
  }
  const incidentOwners = new Map<string, CaseScope[]>();
  for (const i of latest.values()) incidentOwners.set(i.id, ownersOf(scopes, i.key, i.firstWindowMs));
  const ownersBy = (incidentId: string | undefined, key: string, atMs: number): CaseScope[] =>
    (incidentId && incidentOwners.get(incidentId)) || ownersOf(scopes, key, atMs);

  const messageOwners = run.messages.map((m) => {
    const ids = incidentIdsOf(m).filter((id) => incidentOwners.has(id));
    if (ids.length) return new Set(ids.flatMap((id) => incidentOwners.get(id)!));
    return new Set(addressesOf(m).flatMap((a) => scopes.filter((s) => s.addresses.some((x) => covers(a, x)))));
  });

  const cases = run.runs.map((r): CaseResult => {
    const s = r.scope;
    const c = r.case;
    const incidents = [...latest.values()].filter((i) => incidentOwners.get(i.id)!.includes(s))
      .sort((a, b) => a.openedMs - b.openedMs)
      .map((i) => ({ id: i.id, ruleId: i.ruleId, key: i.key, openedAfterMs: i.openedMs - s.startMs, block: i.block, resolved: resolved.has(i.id) }));
    const blocks = run.observer.blocks.filter((b) => ownersBy(b.incidentId, b.target, b.createdMs).includes(s)).map((b) => {
      const drops = run.observer.blockDrops.get(canonical(b.target));
      return {
        target: b.target, ruleId: b.ruleId, ttlS: Math.round(b.ttlMs / 1000), strikes: b.strikes, drops: drops?.drops ?? 0,
        firstDropAfterMs: drops?.firstDropMs === undefined ? undefined : drops.firstDropMs - s.startMs,
        forged: !s.senders.some((a) => covers(b.target, a)),
      };
    });
    const forgedTtls = run.observer.blocks.filter((b) => ownersBy(b.incidentId, b.target, b.createdMs).includes(s) && !s.senders.some((a) => covers(b.target, a))).map((b) => b.ttlMs);
    const limits = run.observer.limits.filter((l) => ownersBy(l.incidentId, l.target, l.createdMs).includes(s)).map((l) => {
      const drops = run.observer.limitDrops.get(canonical(l.target));
      return {
        target: l.target, traffic: l.traffic, ruleId: l.ruleId, perSecond: l.perSecond, ttlS: Math.round(l.ttlMs / 1000), drops: drops?.drops ?? 0,
        firstDropAfterMs: drops?.firstDropMs === undefined ? undefined : drops.firstDropMs - s.startMs,
      };
    });
    const rulesFired = [...new Set([...incidents.map((i) => i.ruleId), ...blocks.flatMap((b) => (b.ruleId ? [b.ruleId] : [])), ...limits.flatMap((l) => (l.ruleId ? [l.ruleId] : []))])];
    const blockDrops = blocks.reduce((n, b) => n + b.drops, 0);
    const a = r.arrivals;
    const frames = s.randomSources ? r.global.packets : Math.max(a.sourcePackets, a.destinationPackets) + blockDrops;
    const expectedFrames = r.traffic?.frames;
    let error = r.error;
    if (!error && (expectedFrames === undefined ? frames < MIN_ARRIVED : frames < MIN_ARRIVED_SHARE * expectedFrames)) {
      error = `traffic did not arrive: the sensor counted ${frames} packets${expectedFrames !== undefined ? ` of ${expectedFrames} frames sent` : ''}`;
    }
    const mine = run.messages.filter((_, i) => messageOwners[i].has(s));
    const drops = [...blocks, ...limits].flatMap((x) => (x.firstDropAfterMs === undefined ? [] : [x.firstDropAfterMs]));
    const expected = c.expect ? incidents.find((i) => i.ruleId === c.expect) : undefined;
    let verdict: Verdict;
    if (error) verdict = 'error';
    else if (c.kind === 'benign') verdict = incidents.length || blocks.length || limits.length ? 'false-positive' : 'clean';
    else verdict = rulesFired.includes(c.expect!) ? 'named' : rulesFired.length ? 'mislabeled' : 'missed';
    return {
      id: c.id, kind: c.kind, expect: c.expect, expectedRuleLoaded: c.expect ? loadedRules.has(c.expect) : undefined, verdict, error,
      command: r.traffic?.command, summary: r.traffic?.summary, rulesFired, incidents,
      firstIncidentMs: incidents[0]?.openedAfterMs, expectedIncidentMs: expected?.openedAfterMs,
      firstDropMs: drops.length ? Math.min(...drops) : undefined, blocks, limits,
      forgedBlocks: forgedTtls.length, forgedLongBlocks: forgedTtls.filter((t) => t > SHORT_BLOCK_MAX_MS).length,
      messages: mine.length, messageSubjects: mine.map((m) => m.subject),
      arrived: { frames, expectedFrames, sourcePackets: a.sourcePackets, destinationPackets: a.destinationPackets, blockDrops, globalPackets: r.global.packets,
        peakPerWindow: s.randomSources ? r.global.peakPerWindow : a.peakPerWindow },
      counters: { source: a.sourceCounters, destination: a.destinationCounters },
      startOffsetS: (s.startMs - run.startedMs) / 1000, trafficSeconds: (s.trafficEndMs - s.startMs) / 1000, lifted: r.lifted,
    };
  });
  return {
    cases,
    unattributedMessages: run.messages.filter((_, i) => messageOwners[i].size === 0).map((m) => m.subject),
    unattributedIncidents: [...latest.values()].filter((i) => incidentOwners.get(i.id)!.length === 0).map((i) => `${i.ruleId} ${i.key}`),
  };
}
