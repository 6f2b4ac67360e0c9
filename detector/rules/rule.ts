/**
 * One rule, from its checked shape (schema.ts) to what the engine runs: durations in ms, the
 * grouping, the except list, the compiled `when`, actions, embedded test cases and a version
 * hash. Every problem found is returned with its path inside the rule document.
 */
import { createHash } from 'node:crypto';
import { LAYOUTS, vectorOf, type Scope } from '../features';
import { AddressSet, groupingContains, parseCidr, parseGrouping, type Grouping } from './addresses';
import { MAX_LIMIT_RATE } from '../../common/block-requests';
import { TRAFFIC_CLASSES, type TrafficClass } from '../../common/traffic';
import { formatDuration, parseDuration } from './durations';
import { compileExpression, type CompiledExpression } from './expression';
import type { SourcePosition } from './problems';
import { describeIssues, TEST_FIELDS, TestCaseShape, type RuleDoc, type Severity, type ShapeProblem } from './schema';
import type { DocPath } from './yaml-source';

const MAX_WINDOW_MS = 3_600_000;
const MAX_FOR_MS = 3_600_000;
const MIN_BLOCK_MS = 1000;
const MAX_BLOCK_MS = 30 * 86_400_000;
const MAX_TEST_WINDOWS = 3600;

export interface BlockAction {
  ttlMs: number;
  scope: Grouping;
}

/**
 * Caps one traffic class XDP lets through to the rule's destination key: the answer to floods
 * from forged sources or reflectors, where blocking sources is useless.
 */
export interface LimitAction {
  traffic: TrafficClass;
  perSecond: number;
  ttlMs: number;
}

export interface RuleActions {
  alert: boolean;
  block?: BlockAction;
  limit?: LimitAction;
}


export interface RuleTestCase {
  name: string;
  /** Counts per window, one window a second (`repeat` already applied); all-zero means silent. */
  windows: readonly Readonly<Record<string, number>>[];
  expect: 'fire' | 'quiet';
  /** Window index to check; without it, `fire` means "at some window" and `quiet` "at none". */
  at?: number;
  /** The source (or destination) address the windows belong to. */
  address?: string;
  position: SourcePosition;
}

export interface CompiledRule {
  id: string;
  title: string;
  description: string;
  severity: Severity;
  mitre: readonly string[];
  tags: readonly string[];
  /** Rule ids this rule subsumes (rules/README.md, `inhibits`). */
  inhibits: readonly string[];
  enabled: boolean;
  scope: Scope;
  grouping: Grouping;
  windowMs: number;
  forMs: number;
  when: CompiledExpression;
  actions: RuleActions;
  except: AddressSet;
  tests: readonly RuleTestCase[];
  /** Hash of everything that decides what the rule detects and reports (not its tests or `enabled`). */
  version: string;
  position: SourcePosition;
}

/** A problem at a path of the rule document; `offset` is a character offset inside that string value. */
export interface RuleProblem extends ShapeProblem {
  offset?: number;
  warning?: boolean;
}

/** Where a path of this rule's document is in its file. */
export type Locate = (path: DocPath) => SourcePosition;

/** What ordinary traffic looks like per second, to warn about rules that would match everyone. */
const ORDINARY_PER_SECOND: Record<Scope, Record<string, number>> = {
  source: { packets: 60, bytes: 24_000, syn: 4, ack_only: 50, fin: 4, rst: 1, udp: 2, distinct_ports: 2, distinct_hosts: 1 },
  destination: { syn: 20, udp: 10, icmp: 1, bytes: 6000, distinct_sources: 15 },
};

function duration(problems: RuleProblem[], path: DocPath, text: string, min: number, max: number): number {
  const ms = parseDuration(text);
  if (ms === undefined) {
    problems.push({ path, message: `"${text}" is not a duration: write a number and a unit (ms, s, m, h, d), e.g. 10s, 5m or 1m30s` });
    return 0;
  }
  if (ms < min || ms > max) problems.push({ path, message: `${formatDuration(ms)} is out of range: use ${formatDuration(min)} to ${formatDuration(max)}` });
  return ms;
}

function compileActions(problems: RuleProblem[], items: readonly unknown[], grouping: Grouping): RuleActions {
  const actions: RuleActions = { alert: false };
  if (items.length === 0) problems.push({ path: ['actions'], message: '`actions` is empty: a rule needs `alert`, `block: {...}`, `limit: {...}` or a mix' });
  items.forEach((item, i) => {
    const path = ['actions', i];
    if (item === 'alert') {
      if (actions.alert) problems.push({ path, message: '`alert` is listed twice' });
      actions.alert = true;
      return;
    }
    const [kind] = item && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length === 1 ? Object.keys(item) : [];
    const spec = kind === undefined ? undefined : (item as Record<string, unknown>)[kind];
    if ((kind !== 'block' && kind !== 'limit') || !spec || typeof spec !== 'object' || Array.isArray(spec)) {
      problems.push({ path, message: 'an action is `alert`, `block: { ttl: 10m, scope: src }` or `limit: { traffic: syn, rate: 1000, ttl: 10m }`' });
      return;
    }
    if (kind === 'block') {
      if (actions.block) problems.push({ path, message: '`block` is listed twice' });
      const block = compileBlock(problems, [...path, 'block'], spec as Record<string, unknown>, grouping);
      if (block) actions.block = block;
    } else {
      if (actions.limit) problems.push({ path, message: '`limit` is listed twice' });
      const limit = compileLimit(problems, [...path, 'limit'], spec as Record<string, unknown>, grouping);
      if (limit) actions.limit = limit;
    }
  });
  return actions;
}

function unknownFields(problems: RuleProblem[], path: DocPath, spec: Record<string, unknown>, action: string, fields: string[]): void {
  for (const key of Object.keys(spec)) {
    if (!fields.includes(key)) problems.push({ path: [...path, key], key: true, message: `unknown field \`${key}\` in ${action}; fields are ${fields.join(' and ')}` });
  }
}

function compileBlock(problems: RuleProblem[], path: DocPath, spec: Record<string, unknown>, grouping: Grouping): BlockAction | undefined {
  unknownFields(problems, path, spec, 'block', ['ttl', 'scope']);
  if (typeof spec.ttl !== 'string') {
    problems.push({ path, message: 'block needs `ttl`, how long the block lasts (e.g. 10m)' });
    return undefined;
  }
  const ttlMs = duration(problems, [...path, 'ttl'], spec.ttl, MIN_BLOCK_MS, MAX_BLOCK_MS);
  let scope = grouping;
  if (spec.scope !== undefined) {
    const parsed = typeof spec.scope === 'string' ? parseGrouping(spec.scope) : 'the block scope must be text such as src or src_prefix/24';
    if (typeof parsed === 'string') {
      problems.push({ path: [...path, 'scope'], message: parsed });
      return undefined;
    }
    scope = parsed;
  }
  if (grouping.scope === 'destination') {
    problems.push({ path, message: 'a rule grouped by destination cannot block: its sources may be spoofed, and blocking the destination would finish the attack (use limit)' });
  } else if (scope.scope !== 'source') {
    problems.push({ path: [...path, 'scope'], message: 'a block scope is src or src_prefix/<length>' });
  } else if (!groupingContains(scope, grouping)) {
    problems.push({ path: [...path, 'scope'], message: `this rule's keys are ${grouping.text} groups; blocking ${scope.text} would need one address out of many: use ${grouping.text} or a shorter prefix` });
  }
  return { ttlMs, scope };
}

function compileLimit(problems: RuleProblem[], path: DocPath, spec: Record<string, unknown>, grouping: Grouping): LimitAction | undefined {
  unknownFields(problems, path, spec, 'limit', ['traffic', 'rate', 'ttl']);
  if (grouping.text !== 'dst') {
    problems.push({ path, message: 'limit caps traffic to one destination: the rule must be grouped by dst' });
    return undefined;
  }
  if (typeof spec.traffic !== 'string' || !(TRAFFIC_CLASSES as readonly string[]).includes(spec.traffic)) {
    problems.push({ path: [...path, 'traffic'], message: `limit needs \`traffic\`, what it caps: ${TRAFFIC_CLASSES.join(', ')}` });
    return undefined;
  }
  if (typeof spec.rate !== 'number' || !Number.isInteger(spec.rate) || spec.rate < 1 || spec.rate > MAX_LIMIT_RATE) {
    problems.push({ path: [...path, 'rate'], message: `limit needs \`rate\`, the packets a second still let through (a whole number from 1 to ${MAX_LIMIT_RATE})` });
    return undefined;
  }
  if (typeof spec.ttl !== 'string') {
    problems.push({ path, message: 'limit needs `ttl`, how long the limit lasts (e.g. 10m)' });
    return undefined;
  }
  return { traffic: spec.traffic as TrafficClass, perSecond: spec.rate, ttlMs: duration(problems, [...path, 'ttl'], spec.ttl, MIN_BLOCK_MS, MAX_BLOCK_MS) };
}

function compileExcept(problems: RuleProblem[], entries: readonly string[]): AddressSet {
  const good: string[] = [];
  entries.forEach((entry, i) => {
    try {
      parseCidr(entry);
      good.push(entry);
    } catch (err) {
      problems.push({ path: ['except', i], message: (err as Error).message });
    }
  });
  return new AddressSet(good);
}

function compileTests(problems: RuleProblem[], items: readonly unknown[], scope: Scope, locate: Locate): RuleTestCase[] {
  const counters = new Set(LAYOUTS[scope].counters.map((c) => c.name));
  const out: RuleTestCase[] = [];
  items.forEach((item, i) => {
    const base = ['tests', i];
    const parsed = TestCaseShape.safeParse(item);
    if (!parsed.success) {
      for (const p of describeIssues(parsed.error.issues, item, TEST_FIELDS)) problems.push({ ...p, path: [...base, ...p.path] });
      return;
    }
    const t = parsed.data;
    const before = problems.length;
    if ((t.features === undefined) === (t.windows === undefined)) {
      problems.push({ path: base, message: 'a test case has either `features` (one window) or `windows` (a list, one per second)' });
      return;
    }
    const once = t.windows ?? [t.features!];
    const windows = Array.from({ length: t.repeat ?? 1 }, () => once).flat();
    if (windows.length > MAX_TEST_WINDOWS) problems.push({ path: [...base, 'repeat'], message: `the case plays ${windows.length} windows; the limit is ${MAX_TEST_WINDOWS}` });
    once.forEach((w, wi) => {
      for (const name of Object.keys(w)) {
        if (counters.has(name)) continue;
        const path = t.windows ? [...base, 'windows', wi, name] : [...base, 'features', name];
        const derived = LAYOUTS[scope].derived.some((d) => d.name === name);
        problems.push({ path, key: true, message: derived
          ? `\`${name}\` is computed from counts; a test gives counts only (${[...counters].join(', ')})`
          : `unknown ${scope} counter \`${name}\`; counts are ${[...counters].join(', ')}` });
      }
    });
    if (t.at !== undefined && t.at >= windows.length) problems.push({ path: [...base, 'at'], message: `\`at: ${t.at}\` is past the last window (index ${windows.length - 1})` });
    const addressField = scope === 'source' ? 'src' : 'dst';
    const wrongField = scope === 'source' ? 'dst' : 'src';
    if (t[wrongField] !== undefined) problems.push({ path: [...base, wrongField], key: true, message: `this rule groups by ${scope}: give the test's address as \`${addressField}\`` });
    const address = t[addressField];
    if (address !== undefined) {
      try {
        if (address.includes('/')) throw new Error(`"${address}" is a prefix; a test's ${addressField} is one address`);
        parseCidr(address);
      } catch (err) {
        problems.push({ path: [...base, addressField], message: (err as Error).message });
      }
    }
    if (problems.length > before) return;
    out.push({ name: t.name ?? `case ${i + 1}`, windows, expect: t.expect, at: t.at, address, position: locate(base) });
  });
  return out;
}

function versionOf(doc: RuleDoc, grouping: Grouping, windowMs: number, forMs: number, actions: RuleActions): string {
  const normalized = {
    id: doc.id, title: doc.title, description: doc.description, severity: doc.severity, mitre: doc.mitre, tags: doc.tags, inhibits: doc.inhibits,
    group_by: grouping.text, when: doc.when.trim(), window_ms: windowMs, for_ms: forMs, except: doc.except,
    actions: {
      alert: actions.alert, block: actions.block && { ttl_ms: actions.block.ttlMs, scope: actions.block.scope.text },
      limit: actions.limit && { traffic: actions.limit.traffic, rate: actions.limit.perSecond, ttl_ms: actions.limit.ttlMs },
    },
  };
  return createHash('sha256').update(JSON.stringify(normalized)).digest('hex').slice(0, 16);
}

/** What one rule can say about its own `inhibits`; rules it names that are not in the set are the loader's to find. */
function checkInhibits(problems: RuleProblem[], doc: RuleDoc): void {
  doc.inhibits.forEach((id, i) => {
    if (id === doc.id) problems.push({ path: ['inhibits', i], message: `a rule cannot inhibit itself (\`${id}\`)` });
    else if (doc.inhibits.indexOf(id) < i) problems.push({ path: ['inhibits', i], message: `\`${id}\` is listed twice` });
  });
}

/** Warnings for a rule that compiled: no tests, or a condition that holds for everyone. */
function warnings(rule: CompiledRule): RuleProblem[] {
  const out: RuleProblem[] = [];
  if (rule.tests.length === 0) out.push({ path: ['id'], warning: true, message: `rule ${rule.id} has no tests: add a case that fires and one that stays quiet` });
  const seconds = rule.windowMs / 1000;
  const ordinary = Object.fromEntries(Object.entries(ORDINARY_PER_SECOND[rule.scope]).map(([k, v]) => [k, v * seconds]));
  if (rule.when.holds(vectorOf(rule.scope, {}, seconds)) && rule.when.holds(vectorOf(rule.scope, ordinary, seconds))) {
    out.push({ path: ['when'], warning: true, message: `\`when\` holds for an idle key and for ordinary traffic (${Object.entries(ORDINARY_PER_SECOND[rule.scope]).map(([k, v]) => `${k} ${v}`).join(', ')} per second): rule ${rule.id} would fire for every key` });
  }
  return out;
}

/** The rule, or undefined if it has errors; problems include warnings either way. */
export function compileRule(doc: RuleDoc, locate: Locate): { rule?: CompiledRule; problems: RuleProblem[] } {
  const problems: RuleProblem[] = [];
  const grouping = parseGrouping(doc.group_by);
  if (typeof grouping === 'string') {
    problems.push({ path: ['group_by'], message: grouping });
    return { problems };
  }
  const windowMs = duration(problems, ['window'], doc.window, 1, MAX_WINDOW_MS);
  const forMs = duration(problems, ['for'], doc.for, 0, MAX_FOR_MS);
  const compiled = compileExpression(doc.when, grouping.scope);
  if (!compiled.ok) for (const p of compiled.problems) problems.push({ path: ['when'], offset: p.offset, message: p.message });
  const actions = compileActions(problems, doc.actions, grouping);
  const except = compileExcept(problems, doc.except);
  const tests = compileTests(problems, doc.tests, grouping.scope, locate);
  checkInhibits(problems, doc);
  if (problems.length > 0 || !compiled.ok) return { problems };
  const rule: CompiledRule = {
    id: doc.id, title: doc.title, description: doc.description, severity: doc.severity, mitre: doc.mitre, tags: doc.tags, inhibits: doc.inhibits,
    enabled: doc.enabled, scope: grouping.scope, grouping, windowMs, forMs, when: compiled.expression, actions, except, tests,
    version: versionOf(doc, grouping, windowMs, forMs, actions), position: locate([]),
  };
  return { rule, problems: warnings(rule) };
}
