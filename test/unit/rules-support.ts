/** Helpers for the rule tests: rule text, rule sets and ticks built in memory. */
import { destinationWindowOf, NO_UNTRACKED, sourceWindowOf, type DestinationWindow, type SensorTick, type SourceWindow } from '../../common/sensor-tick';
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
  return sourceWindowOf(src, { packets: 1, bytes: 60, ...counts });
}

export const destinationWindow = destinationWindowOf;

/** The tick of window `window` (1 s windows ending at window * 1000 ms). */
export function tick(window: number, sources: SourceWindow[] = [], destinations: DestinationWindow[] = [], sensor = 'test'): SensorTick {
  return {
    sensor, iface: 'eth0', window, startMs: (window - 1) * 1000, endMs: window * 1000, sources, destinations,
    untracked: { ...NO_UNTRACKED }, globals: {}, trackedSources: sources.length, evictedSources: 0,
  };
}
