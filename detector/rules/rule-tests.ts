/**
 * Runs the test cases embedded in rule files: each case feeds its windows, one a second, through
 * a fresh engine holding only the rule under test (enabled, whatever the file says), and checks
 * whether the rule fired where the case expects.
 */
import { destinationWindowOf, NO_UNTRACKED, sourceWindowOf, type DestinationWindow, type SensorTick, type SourceWindow } from '../../common/sensor-tick';
import { LAYOUTS, vectorOf } from '../features';
import { formatDuration } from './durations';
import { RuleEngine } from './engine';
import type { SourcePosition } from './problems';
import type { CompiledRule, RuleTestCase } from './rule';

export interface CaseResult {
  ruleId: string;
  name: string;
  passed: boolean;
  /** Why it failed (empty when it passed). */
  detail: string;
  position: SourcePosition;
}

const TEST_SOURCE = '192.0.2.1';
const TEST_DESTINATION = '198.51.100.1';
const TEST_SENSOR = 'rule-test';
/** Any window id works; a large one keeps bucket arithmetic away from zero. */
const FIRST_WINDOW = 1_000_000;

function sourceWindow(src: string, counts: Readonly<Record<string, number>>): SourceWindow {
  const w = sourceWindowOf(src);
  for (const c of LAYOUTS.source.counters) (w[c.field] as number) = counts[c.name] ?? 0;
  return w;
}

function destinationWindow(dst: string, counts: Readonly<Record<string, number>>): DestinationWindow {
  const w = destinationWindowOf(dst);
  for (const c of LAYOUTS.destination.counters) (w[c.field] as number) = counts[c.name] ?? 0;
  return w;
}

/** The tick the sensor would send for window `i` of a case. */
function tickOf(rule: CompiledRule, c: RuleTestCase, i: number): SensorTick {
  const counts = c.windows[i];
  // The sensor reports no window for a key without traffic.
  const silent = Object.values(counts).every((n) => n === 0);
  const source = rule.scope === 'source';
  return {
    sensor: TEST_SENSOR, iface: 'test', window: FIRST_WINDOW + i, startMs: i * 1000, endMs: (i + 1) * 1000,
    sources: source && !silent ? [sourceWindow(c.address ?? TEST_SOURCE, counts)] : [],
    destinations: !source && !silent ? [destinationWindow(c.address ?? TEST_DESTINATION, counts)] : [],
    untracked: NO_UNTRACKED, globals: {}, trackedSources: 1, evictedSources: 0,
  };
}

/** The comparisons of `when` over the window ending at index i, for a failure message. */
function explain(rule: CompiledRule, c: RuleTestCase, i: number): string {
  const windows = Math.max(1, Math.ceil(rule.windowMs / 1000));
  const sums: Record<string, number> = {};
  for (const w of c.windows.slice(Math.max(0, i - windows + 1), i + 1)) for (const [k, v] of Object.entries(w)) sums[k] = (sums[k] ?? 0) + v;
  const v = vectorOf(rule.scope, sums, windows);
  const parts = rule.when.comparisons.map((cmp) => `${cmp.text} (${round(cmp.left(v))} vs ${round(cmp.right(v))}: ${cmp.holds(v) ? 'true' : 'false'})`);
  const hold = rule.forMs > 0 ? `; \`for: ${formatDuration(rule.forMs)}\` needs it to hold that long` : '';
  return parts.length ? `at window ${i}: ${parts.join(', ')}${hold}` : '';
}

function round(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toPrecision(4);
}

function runCase(rule: CompiledRule, c: RuleTestCase): CaseResult {
  const engine = new RuleEngine({ rules: [{ ...rule, enabled: true }], version: 'test', files: [] }, { windowMs: 1000 });
  const fired: number[] = [];
  c.windows.forEach((_, i) => {
    if (engine.process(tickOf(rule, c, i)).some((d) => d.ruleId === rule.id)) fired.push(i);
  });
  const wantFire = c.expect === 'fire';
  const firedWhere = fired.length ? `it fired at window${fired.length > 1 ? 's' : ''} ${fired.join(', ')}` : 'it never fired';
  let passed: boolean;
  let detail = '';
  if (c.at !== undefined) {
    passed = fired.includes(c.at) === wantFire;
    if (!passed) detail = `expected to ${wantFire ? 'fire' : 'stay quiet'} at window ${c.at}, but ${firedWhere}; ${explain(rule, c, c.at)}`;
  } else {
    passed = (fired.length > 0) === wantFire;
    if (!passed) detail = wantFire ? `expected to fire, but it never did; ${explain(rule, c, c.windows.length - 1)}` : `expected to stay quiet, but ${firedWhere}; ${explain(rule, c, fired[0])}`;
  }
  return { ruleId: rule.id, name: c.name, passed, detail, position: c.position };
}

export function runRuleTests(rules: readonly CompiledRule[]): CaseResult[] {
  return rules.flatMap((rule) => rule.tests.map((c) => runCase(rule, c)));
}
