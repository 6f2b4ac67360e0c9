/**
 * `xdp-ids rules check|test|list [paths...]`. Each command is a function from paths to what it
 * prints and its exit code, so tests call them directly; registerRulesCommands wires them into
 * commander, writing through the program's output configuration and failing with a
 * CommanderError (exit code 1) when there are errors or failing cases.
 */
import { Command, CommanderError } from 'commander';
import path from 'node:path';
import { oneLine } from '../../common/text';
import { defaultRulesDir, loadRules, type LoadResult } from './loader';
import { formatProblem, type Problem } from './problems';
import { runRuleTests } from './rule-tests';

export interface CommandOutcome {
  stdout: string;
  stderr: string;
  exitCode: 0 | 1;
  /** One line saying why the command failed (exitCode 1). */
  failure?: string;
}

function count(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/** Rule files are anyone's text: every line printed is one line of plain text (no escapes for the terminal, no forged lines). */
function problemLines(problems: readonly Problem[]): string {
  return problems.map((p) => `${oneLine(formatProblem(p))}\n`).join('');
}

function load(paths: readonly string[]): { result: LoadResult; paths: readonly string[] } {
  const resolved = paths.length > 0 ? paths : [defaultRulesDir()];
  return { result: loadRules(resolved), paths: resolved };
}

function loadFailure(result: LoadResult): CommandOutcome {
  const errors = result.problems.filter((p) => p.severity === 'error').length;
  const warnings = result.problems.length - errors;
  return { stdout: '', stderr: problemLines(result.problems), exitCode: 1, failure: `rules rejected: ${count(errors, 'error')}${warnings ? `, ${count(warnings, 'warning')}` : ''}` };
}

/** Validates rule files: every error and warning with its file:line:column. */
export function checkRules(paths: readonly string[]): CommandOutcome {
  const { result } = load(paths);
  if (!result.ruleSet) return loadFailure(result);
  const { rules, files } = result.ruleSet;
  const warnings = result.problems.length;
  return {
    stdout: `${count(rules.length, 'rule')} in ${count(files.length, 'file')}: OK${warnings ? ` (${count(warnings, 'warning')})` : ''}\n`,
    stderr: problemLines(result.problems),
    exitCode: 0,
  };
}

/** Runs the test cases embedded in rule files. */
export function testRules(paths: readonly string[]): CommandOutcome {
  const { result } = load(paths);
  if (!result.ruleSet) return loadFailure(result);
  const cases = runRuleTests(result.ruleSet.rules);
  const lines = cases.map((c) => (c.passed
    ? `PASS ${c.ruleId}: ${oneLine(c.name)}\n`
    : `FAIL ${c.ruleId}: ${oneLine(c.name)}\n  ${oneLine(`${c.position.file}:${c.position.line}:${c.position.column}: ${c.detail}`)}\n`));
  const failed = cases.filter((c) => !c.passed).length;
  const stdout = `${lines.join('')}${cases.length - failed} passed, ${failed} failed\n`;
  return failed > 0
    ? { stdout, stderr: problemLines(result.problems), exitCode: 1, failure: `${count(failed, 'rule test')} failed` }
    : { stdout, stderr: problemLines(result.problems), exitCode: 0 };
}

/** One line per rule: id, severity, title, enabled, and where it is defined. */
export function listRules(paths: readonly string[]): CommandOutcome {
  const { result } = load(paths);
  if (!result.ruleSet) return loadFailure(result);
  const rows = [['ID', 'SEVERITY', 'TITLE', 'ENABLED', 'FILE'], ...result.ruleSet.rules.map((r) => [
    r.id, r.severity, r.title, r.enabled ? 'yes' : 'no', `${path.relative(process.cwd(), r.position.file) || r.position.file}:${r.position.line}`,
  ].map(oneLine))];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const stdout = rows.map((row) => `${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')}\n`).join('');
  return { stdout, stderr: problemLines(result.problems), exitCode: 0 };
}

function run(cmd: Command, outcome: CommandOutcome): void {
  const out = cmd.configureOutput();
  if (outcome.stdout) out.writeOut?.(outcome.stdout);
  if (outcome.stderr) out.writeErr?.(outcome.stderr);
  if (outcome.exitCode !== 0) throw new CommanderError(outcome.exitCode, 'xdp-ids.rules.failed', outcome.failure ?? 'failed');
}

export function registerRulesCommands(program: Command): Command {
  const rules = program.command('rules').description(`check, test and list detection rules (default: ${path.relative(process.cwd(), defaultRulesDir()) || '.'})`);
  rules.command('check')
    .description('validate rule files; prints errors and warnings as file:line:column: message, exits 1 on errors')
    .argument('[paths...]', 'rule files or directories of *.yaml files')
    .action(function (this: Command, paths: string[]) {
      run(this, checkRules(paths));
    });
  rules.command('test')
    .description('run the test cases embedded in rule files; exits 1 if any fails')
    .argument('[paths...]', 'rule files or directories of *.yaml files')
    .action(function (this: Command, paths: string[]) {
      run(this, testRules(paths));
    });
  rules.command('list')
    .description('list rules: id, severity, title, enabled, file')
    .argument('[paths...]', 'rule files or directories of *.yaml files')
    .action(function (this: Command, paths: string[]) {
      run(this, listRules(paths));
    });
  return rules;
}
