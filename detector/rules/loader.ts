/**
 * Rule files to a RuleSet: read a directory (or files), check every file and every rule, and
 * hand back either a complete set or the reasons there is none. A set with any error is never
 * partly loaded; warnings come along with a good set.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FileReadError, readBoundedFile } from '../../common/files';
import { hasErrors, sortProblems, type Problem, type SourcePosition } from './problems';
import { compileRule, type CompiledRule } from './rule';
import { describeIssues, RULE_FIELDS, RuleShape } from './schema';
import { YamlSource, type DocPath } from './yaml-source';

export interface RuleLimits {
  fileBytes: number;
  rules: number;
  files: number;
}

export const LIMITS: RuleLimits = { fileBytes: 1 << 20, rules: 10_000, files: 1000 };

export interface RuleSet {
  rules: readonly CompiledRule[];
  /** Hash of the rules' versions: changes whenever any rule's behaviour does. */
  version: string;
  files: readonly string[];
}

export interface LoadResult {
  /** Present only when there are no errors. */
  ruleSet?: RuleSet;
  problems: Problem[];
}

export interface RuleSource {
  file: string;
  text: string;
}

const RULE_FILE = /\.ya?ml$/;

/** The repository's rules/ directory (found from this file, in the sources or in dist/). */
export function defaultRulesDir(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root above ' + __dirname);
    dir = parent;
  }
  return path.join(dir, 'rules');
}

function problem(file: string, message: string): Problem {
  return { file, line: 1, column: 1, severity: 'error', message };
}

function tooBig(file: string, bytes: number, limits: RuleLimits): Problem | undefined {
  return bytes > limits.fileBytes ? problem(file, `the file is ${bytes} bytes; the limit is ${limits.fileBytes} (split it into several files)`) : undefined;
}

/** The rule files named by `paths` (directories: their *.yaml and *.yml files, sorted). */
export function readRuleSources(paths: readonly string[], limits: RuleLimits = LIMITS): { sources: RuleSource[]; problems: Problem[] } {
  const files: string[] = [];
  const problems: Problem[] = [];
  for (const p of paths) {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(p);
    } catch {
      problems.push(problem(p, 'no such file or directory'));
      continue;
    }
    if (stat.isDirectory()) {
      files.push(...fs.readdirSync(p).filter((name) => RULE_FILE.test(name)).sort().map((name) => path.join(p, name)));
    } else {
      files.push(p);
    }
  }
  if (files.length > limits.files) return { sources: [], problems: [...problems, problem(paths[0] ?? '.', `${files.length} rule files; the limit is ${limits.files}`)] };
  const sources: RuleSource[] = [];
  for (const file of files) {
    try {
      sources.push({ file, text: readBoundedFile(file, { maxBytes: limits.fileBytes }) });
    } catch (err) {
      const big = err instanceof FileReadError && err.reason === 'too-big';
      problems.push(problem(file, `${(err as Error).message}${big ? ' (split it into several files)' : ''}`));
    }
  }
  return { sources, problems };
}

/**
 * `inhibits` across the set: a rule it names that is not in the set is a warning (a typo
 * subsumes nothing); rules that inhibit each other, directly or around a circle, are an error,
 * since neither could be named first.
 */
function inhibitionProblems(rules: readonly CompiledRule[], positions: ReadonlyMap<string, SourcePosition[]>): Problem[] {
  const byId = new Map(rules.map((r) => [r.id, r]));
  const out: Problem[] = [];
  const reaches = (from: string, to: string, seen = new Set<string>()): boolean => {
    if (from === to) return true;
    if (seen.has(from)) return false;
    seen.add(from);
    return (byId.get(from)?.inhibits ?? []).some((next) => reaches(next, to, seen));
  };
  for (const rule of rules) {
    rule.inhibits.forEach((id, i) => {
      const at = positions.get(rule.id)![i];
      if (!byId.has(id)) {
        out.push({ ...at, severity: 'warning', message: `rule ${rule.id} inhibits \`${id}\`, which is not in this rule set: it subsumes nothing` });
      } else if (reaches(id, rule.id)) {
        out.push({ ...at, severity: 'error', message: `rules ${rule.id} and ${id} inhibit each other (directly or through others): neither could be named first` });
      }
    });
  }
  return out;
}

/** Checks and compiles rule files given as text (no file system). */
export function compileRuleSources(sources: readonly RuleSource[], limits: RuleLimits = LIMITS): LoadResult {
  const problems: Problem[] = [];
  const rules: CompiledRule[] = [];
  const firstById = new Map<string, string>();
  const inhibitsAt = new Map<string, SourcePosition[]>();
  let count = 0;
  for (const { file, text } of sources) {
    const big = tooBig(file, Buffer.byteLength(text), limits);
    if (big) {
      problems.push(big);
      continue;
    }
    const yaml = new YamlSource(file, text);
    const syntax = yaml.syntaxProblems();
    if (syntax.length > 0) {
      problems.push(...syntax);
      continue;
    }
    let root: unknown;
    try {
      root = yaml.value();
    } catch (err) {
      problems.push(problem(file, `YAML: ${(err as Error).message}`));
      continue;
    }
    if (root === null || root === undefined) continue;
    if (typeof root !== 'object') {
      problems.push({ ...yaml.position([]), severity: 'error', message: 'a rule file holds one rule (a mapping of fields) or a list of rules' });
      continue;
    }
    const docs: [unknown, DocPath][] = Array.isArray(root) ? root.map((r, i) => [r, [i]]) : [[root, []]];
    count += docs.length;
    if (count > limits.rules) {
      problems.push({ ...yaml.position([]), severity: 'error', message: `more than ${limits.rules} rules in the set` });
      break;
    }
    for (const [doc, base] of docs) {
      const at = (p: DocPath): DocPath => [...base, ...p];
      const shape = RuleShape.safeParse(doc);
      if (!shape.success) {
        const located = doc && typeof doc === 'object' && !Array.isArray(doc) ? describeIssues(shape.error.issues, doc, RULE_FIELDS) : [{ path: [], message: 'a rule is a mapping of fields (id, title, when, ...)' }];
        for (const p of located) problems.push({ ...yaml.position(at(p.path), { key: p.key }), severity: 'error', message: p.message });
        continue;
      }
      const { rule, problems: ruleProblems } = compileRule(shape.data, (p) => yaml.position(at(p)));
      for (const p of ruleProblems) {
        const position = p.offset !== undefined ? yaml.positionInScalar(at(p.path), p.offset) : yaml.position(at(p.path), { key: p.key });
        problems.push({ ...position, severity: p.warning ? 'warning' : 'error', message: p.message });
      }
      if (!rule) continue;
      const first = firstById.get(rule.id);
      if (first) {
        problems.push({ ...yaml.position(at(['id'])), severity: 'error', message: `duplicate rule id \`${rule.id}\` (first defined at ${first})` });
        continue;
      }
      firstById.set(rule.id, `${rule.position.file}:${rule.position.line}:${rule.position.column}`);
      rules.push(rule);
      inhibitsAt.set(rule.id, rule.inhibits.map((_, i) => yaml.position(at(['inhibits', i]))));
    }
  }
  problems.push(...inhibitionProblems(rules, inhibitsAt));
  sortProblems(problems);
  if (hasErrors(problems)) return { problems };
  const version = createHash('sha256').update(rules.map((r) => `${r.id}@${r.version}:${r.enabled}`).join('\n')).digest('hex').slice(0, 16);
  return { ruleSet: { rules, version, files: sources.map((s) => s.file) }, problems };
}

/** Reads and compiles the rule files named by `paths`. */
export function loadRules(paths: readonly string[], limits: RuleLimits = LIMITS): LoadResult {
  const { sources, problems } = readRuleSources(paths, limits);
  const result = compileRuleSources(sources, limits);
  const all = sortProblems([...problems, ...result.problems]);
  return hasErrors(all) ? { problems: all } : { ruleSet: result.ruleSet, problems: all };
}
