/** Helpers for the rule tests: rule text, rule sets and ticks built in memory. */
import type { DestinationWindow, SensorTick, SourceWindow } from '../../common/sensor-tick';
import { compileRuleSources, type RuleSet } from '../../detector/rules/loader';
import { formatProblem } from '../../detector/rules/problems';

/** A rule's YAML with sensible defaults; `fields` replaces or adds top-level fields (YAML text). */
export function ruleYaml(fields: Record<string, string> = {}): string {
  const all: Record<string, string> = {
    id: 'test-rule', title: 'Test rule', description: 'A rule for tests.', severity: 'medium', group_by: 'src', when: 'syn >= 10', ...fields,
  };
  return Object.entries(all).filter(([, v]) => v !== '').map(([k, v]) => `${k}: ${v}`).join('\n') + '\n';
}

/** Compiles rule files given as text; throws with the problems if the set does not load. */
export function ruleSet(files: Record<string, string>): RuleSet {
  const result = compileRuleSources(Object.entries(files).map(([file, text]) => ({ file, text })));
  if (!result.ruleSet) throw new Error(result.problems.map(formatProblem).join('\n'));
  return result.ruleSet;
}

export function sourceWindow(src: string, counts: Partial<Omit<SourceWindow, 'src'>> = {}): SourceWindow {
  return {
    src, packets: 1, bytes: 60, syn: 0, synAck: 0, ackOnly: 0, rst: 0, fin: 0, nullScan: 0, finOnly: 0, xmas: 0, synFin: 0,
    udp: 0, icmp: 0, fragments: 0, malformed: 0, distinctPorts: 0, distinctHosts: 0, firstSeenMs: 0, ...counts,
  };
}

export function destinationWindow(dst: string, counts: Partial<Omit<DestinationWindow, 'dst'>> = {}): DestinationWindow {
  return { dst, syn: 0, udp: 0, icmp: 0, bytes: 0, distinctSources: 0, ...counts };
}

/** The tick of window `window` (1 s windows ending at window * 1000 ms). */
export function tick(window: number, sources: SourceWindow[] = [], destinations: DestinationWindow[] = [], sensor = 'test'): SensorTick {
  return {
    sensor, iface: 'eth0', window, startMs: (window - 1) * 1000, endMs: window * 1000, sources, destinations,
    untracked: { packets: 0, bytes: 0, syn: 0, synAck: 0, ackOnly: 0, rst: 0, fin: 0, nullScan: 0, finOnly: 0, xmas: 0, synFin: 0, udp: 0, icmp: 0, fragments: 0, malformed: 0 },
    globals: {}, trackedSources: sources.length,
  };
}
