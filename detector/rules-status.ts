/**
 * What each detector says about the rules it runs, in Redis for operators (the dashboard's rules
 * page): the set in force (version, files, rules), the result of every embedded test case of it,
 * and the last reload that was rejected (its problems as file:line:column, and which set stayed).
 * One hash, `xdp-ids:rules:status`, detector id → JSON; a detector rewrites its entry on every
 * load and rejection and refreshes it while it runs, so an entry older than STALE_MS belongs to a
 * detector that stopped answering, and a stopping detector removes its own.
 */
import type { Redis } from 'ioredis';
import type { Severity } from '../common/alert-events';
import type { RuleSet } from './rules/loader';
import { formatProblem, type Problem } from './rules/problems';
import { runRuleTests } from './rules/rule-tests';

export const RULE_STATUS_KEY = 'xdp-ids:rules:status';
const REFRESH_MS = 30_000;
/** Three refreshes missed. */
export const STALE_MS = 3 * REFRESH_MS;

export interface RuleStatus {
  id: string;
  title: string;
  severity: Severity;
  enabled: boolean;
  scope: 'source' | 'destination';
  groupBy: string;
  when: string;
  /** Hash of the rule's meaning (rules/README.md). */
  version: string;
  /** `file:line`. */
  where: string;
  actions: string[];
  tests: { passed: number; failed: { name: string; detail: string }[] };
}

export interface RuleSetStatus {
  detector: string;
  /** When the entry was last written or refreshed. */
  atMs: number;
  version: string;
  loadedMs: number;
  files: string[];
  rules: RuleStatus[];
  /** The last rejected reload since the set in force was loaded. */
  lastError?: { atMs: number; problems: string[]; keptVersion?: string };
}

function actionsOf(rule: RuleSet['rules'][number]): string[] {
  const a = rule.actions;
  return [...(a.alert ? ['alert'] : []), ...(a.block ? ['block'] : []), ...(a.limit ? [`limit ${a.limit.traffic}`] : [])];
}

/** The status of a rule set, with its embedded test cases run now. */
export function ruleSetStatus(detector: string, ruleSet: RuleSet, nowMs = Date.now()): RuleSetStatus {
  const results = runRuleTests(ruleSet.rules);
  return {
    detector, atMs: nowMs, version: ruleSet.version, loadedMs: nowMs, files: [...ruleSet.files],
    rules: ruleSet.rules.map((rule) => {
      const own = results.filter((r) => r.ruleId === rule.id);
      return {
        id: rule.id, title: rule.title, severity: rule.severity, enabled: rule.enabled, scope: rule.scope, groupBy: rule.grouping.text, when: rule.when.source,
        version: rule.version, where: `${rule.position.file}:${rule.position.line}`, actions: actionsOf(rule),
        tests: { passed: own.filter((r) => r.passed).length, failed: own.filter((r) => !r.passed).map((r) => ({ name: r.name, detail: r.detail })) },
      };
    }),
  };
}

/** Keeps one detector's entry current. Writes are best effort: Redis being away must not stop a detector. */
export class RuleStatusPublisher {
  private status?: RuleSetStatus;
  private timer?: NodeJS.Timeout;

  constructor(private readonly redis: Redis, private readonly detector: string) {}

  loaded(ruleSet: RuleSet): Promise<void> {
    this.status = ruleSetStatus(this.detector, ruleSet);
    return this.write();
  }

  rejected(problems: readonly Problem[], kept: RuleSet | undefined): Promise<void> {
    if (!this.status) return Promise.resolve();
    this.status.lastError = { atMs: Date.now(), problems: problems.map(formatProblem), ...(kept ? { keptVersion: kept.version } : {}) };
    return this.write();
  }

  start(): this {
    this.timer = setInterval(() => void this.write(), REFRESH_MS);
    this.timer.unref();
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.hdel(RULE_STATUS_KEY, this.detector).catch(() => undefined);
  }

  private async write(): Promise<void> {
    if (!this.status) return;
    this.status.atMs = Date.now();
    await this.redis.hset(RULE_STATUS_KEY, this.detector, JSON.stringify(this.status)).catch(() => undefined);
  }
}

/** Every detector's entry that is still refreshed, newest first. */
export async function readRuleStatuses(redis: Redis, nowMs = Date.now()): Promise<RuleSetStatus[]> {
  const entries = Object.values(await redis.hgetall(RULE_STATUS_KEY)).map((text) => JSON.parse(text) as RuleSetStatus);
  return entries.filter((s) => nowMs - s.atMs <= STALE_MS).sort((a, b) => b.atMs - a.atMs);
}
