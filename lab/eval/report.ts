/** The eval's table (one line per case), its notes, and the summary whose JSON is the last line of stdout. */
import type { CaseResult } from './verdicts';

export interface Summary {
  attack_cases: number;
  named_correctly: number;
  missed: number;
  mislabeled: number;
  attack_errors: number;
  benign_cases: number;
  benign_incidents: number;
  benign_blocks: number;
  benign_false_positive_cases: number;
  benign_errors: number;
  messages_per_attack_max: number;
  /** Over attack cases that opened at least one incident. */
  messages_per_attack_mean: number;
  messages_total: number;
  messages_unattributed: number;
  forged_blocks: number;
  forged_long_blocks: number;
  time_to_incident_median_ms: number | null;
  time_to_drop_median_ms: number | null;
  expected_rules_not_loaded: string[];
  unresolved_incidents: number;
  resolve_after_s: number;
  duration_s: number;
}

function median(values: number[]): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

export function summarize(cases: CaseResult[], extra: { messagesTotal: number; messagesUnattributed: number; unresolved: number; resolveAfterS: number; durationS: number }): Summary {
  const attacks = cases.filter((c) => c.kind === 'attack');
  const benign = cases.filter((c) => c.kind === 'benign');
  const detected = attacks.filter((c) => c.incidents.length > 0);
  const count = (list: CaseResult[], verdict: CaseResult['verdict']): number => list.filter((c) => c.verdict === verdict).length;
  return {
    attack_cases: attacks.length,
    named_correctly: count(attacks, 'named'),
    missed: count(attacks, 'missed'),
    mislabeled: count(attacks, 'mislabeled'),
    attack_errors: count(attacks, 'error'),
    benign_cases: benign.length,
    benign_incidents: benign.reduce((n, c) => n + c.incidents.length, 0),
    benign_blocks: benign.reduce((n, c) => n + c.blocks.length + c.limits.length, 0),
    benign_false_positive_cases: count(benign, 'false-positive'),
    benign_errors: count(benign, 'error'),
    messages_per_attack_max: Math.max(0, ...attacks.map((c) => c.messages)),
    messages_per_attack_mean: detected.length ? Math.round((detected.reduce((n, c) => n + c.messages, 0) / detected.length) * 100) / 100 : 0,
    messages_total: extra.messagesTotal,
    messages_unattributed: extra.messagesUnattributed,
    forged_blocks: cases.reduce((n, c) => n + c.forgedBlocks, 0),
    forged_long_blocks: cases.reduce((n, c) => n + c.forgedLongBlocks, 0),
    time_to_incident_median_ms: median(attacks.flatMap((c) => (c.firstIncidentMs === undefined ? [] : [c.firstIncidentMs]))),
    time_to_drop_median_ms: median(attacks.flatMap((c) => (c.firstDropMs === undefined ? [] : [c.firstDropMs]))),
    expected_rules_not_loaded: [...new Set(attacks.filter((c) => c.expectedRuleLoaded === false).map((c) => c.expect!))],
    unresolved_incidents: extra.unresolved,
    resolve_after_s: extra.resolveAfterS,
    duration_s: extra.durationS,
  };
}

const seconds = (ms: number | undefined): string => (ms === undefined ? '-' : (ms / 1000).toFixed(1));

function ttl(s: number): string {
  return s >= 3600 && s % 3600 === 0 ? `${s / 3600}h` : s >= 60 && s % 60 === 0 ? `${s / 60}m` : `${s}s`;
}

/** Few responses are listed one by one; many (a flood of reflectors blocked one by one) are summed up. */
function responses(c: CaseResult): string {
  const limits = c.limits.map((l) => `limit ${l.traffic} ${l.target} ${l.perSecond}/s ${ttl(l.ttlS)}`);
  if (c.blocks.length > 6) {
    const ttls = c.blocks.map((b) => b.ttlS);
    const range = Math.min(...ttls) === Math.max(...ttls) ? ttl(ttls[0]) : `${ttl(Math.min(...ttls))}-${ttl(Math.max(...ttls))}`;
    return [`${c.blocks.length} blocks (${c.forgedBlocks} !) ${range}`, ...limits].join(', ');
  }
  const blocks = c.blocks.map((b) => `${b.forged ? '!' : ''}${b.target.replace(/\/(32|128)$/, '')} ${ttl(b.ttlS)}`);
  return [...blocks, ...limits].join(', ') || '-';
}

export function table(cases: CaseResult[]): string[] {
  const rows = cases.map((c) => [
    c.id, c.kind === 'attack' ? `${c.expect}${c.expectedRuleLoaded ? '' : ' (no such rule)'}` : '(none)', c.verdict,
    c.rulesFired.join(',') || '-', seconds(c.firstIncidentMs), seconds(c.firstDropMs), String(c.messages),
    `${c.arrived.frames}${c.arrived.expectedFrames !== undefined ? `/${c.arrived.expectedFrames}` : ''} (${c.arrived.peakPerWindow}/s)`, responses(c),
  ]);
  const header = ['case', 'expected rule', 'verdict', 'rules fired', 'incident s', 'drop s', 'msgs', 'arrived (peak)', 'blocks and limits (! = not the attacker: decoy, forged, reflector)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** What the table has no room for: errors, blocks of addresses that are not the attacker's, refusals, incidents the detector opened on keys no case owns. */
export function notes(cases: CaseResult[], unattributedIncidents: string[], unattributedMessages: string[]): string[] {
  const out: string[] = [];
  for (const c of cases) {
    if (c.error) out.push(`${c.id}: ${c.error}`);
    const forged = c.blocks.filter((b) => b.forged);
    const byRule = new Map<string, typeof forged>();
    for (const b of forged) {
      const how = `${b.ruleId ?? 'no rule'} for ${ttl(b.ttlS)}`;
      byRule.set(how, [...(byRule.get(how) ?? []), b]);
    }
    for (const [how, blocks] of byRule) {
      const who = blocks.length <= 6 ? blocks.map((b) => b.target.replace(/\/(32|128)$/, '')).join(', ') : `${blocks.length} addresses`;
      out.push(`${c.id}: blocked ${who}, not the attacker's, by ${how}`);
    }
    const refused = new Map<string, number>();
    for (const i of c.incidents.filter((x) => x.block?.status === 'refused')) {
      const reason = `${i.ruleId}: ${i.block!.reason!.replace(/ until .*$/, '')}`;
      refused.set(reason, (refused.get(reason) ?? 0) + 1);
    }
    for (const [reason, n] of refused) out.push(`${c.id}: ${n} block request${n > 1 ? 's' : ''} refused (${reason})`);
    if (c.blocks.length && c.firstDropMs === undefined) out.push(`${c.id}: no packet dropped: nothing more came from the blocked addresses once the blocks were in the kernel (the traffic lasted ${c.trafficSeconds.toFixed(1)} s)`);
  }
  if (unattributedIncidents.length) out.push(`incidents no case owns: ${unattributedIncidents.join('; ')}`);
  if (unattributedMessages.length) out.push(`messages about no case (${unattributedMessages.length}): ${[...new Set(unattributedMessages)].join('; ')}`);
  return out;
}
