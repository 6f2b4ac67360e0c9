import { Command, CommanderError } from 'commander';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkRules, listRules, registerRulesCommands, testRules } from '../../detector/rules/cli';
import { ruleYaml } from './rules-support';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-cli-'));
});

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  fs.writeFileSync(path.join(dir, name), text);
  return path.join(dir, name);
}

const passing = '[{features: {syn: 10}, expect: fire}, {features: {syn: 9}, expect: quiet}]';

describe('rules check', () => {
  test('exit 0 and a summary for good rules; warnings on stderr', () => {
    write('a.yaml', ruleYaml({ tests: passing }));
    write('b.yaml', ruleYaml({ id: 'untested' }));
    const out = checkRules([dir]);
    expect(out).toMatchObject({ exitCode: 0, stdout: '2 rules in 2 files: OK (1 warning)\n' });
    expect(out.stderr).toMatch(/b\.yaml:1:5: warning: rule untested has no tests/);
  });

  test('exit 1 with file:line:column errors', () => {
    const file = write('a.yaml', ruleYaml({ when: 'syn >= 10 && bogus > 1', tests: passing }));
    expect(checkRules([dir])).toEqual({
      exitCode: 1, stdout: '', failure: 'rules rejected: 1 error',
      stderr: `${file}:6:20: unknown feature \`bogus\`; rules/FEATURES.md lists the source features\n`,
    });
  });

  test('the default path is the repository rules/ directory', () => {
    expect(checkRules([])).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^\d+ rules in \d+ files: OK\n$/) });
  });
});

describe('rules test', () => {
  test('prints each case with its rule id; exit 1 when one fails', () => {
    write('a.yaml', ruleYaml({ tests: '[{name: ten SYNs, features: {syn: 10}, expect: fire}, {name: nine SYNs, features: {syn: 9}, expect: fire}]' }));
    const out = testRules([dir]);
    expect(out.exitCode).toBe(1);
    expect(out.failure).toBe('1 rule test failed');
    expect(out.stdout.split('\n')).toEqual([
      'PASS test-rule: ten SYNs',
      'FAIL test-rule: nine SYNs',
      `  ${path.join(dir, 'a.yaml')}:7:62: expected to fire, but it never did; at window 0: syn >= 10 (9 vs 10: false)`,
      '1 passed, 1 failed',
      '',
    ]);
  });

  test('exit 0 when all pass; load errors exit 1 before any case runs', () => {
    write('a.yaml', ruleYaml({ tests: passing }));
    expect(testRules([dir])).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/2 passed, 0 failed\n$/) });
    write('b.yaml', 'id: [\n');
    expect(testRules([dir])).toMatchObject({ exitCode: 1, stdout: '', failure: 'rules rejected: 1 error' });
  });
});

describe('rules list', () => {
  test('id, severity, title, enabled and file', () => {
    write('a.yaml', ruleYaml({ tests: passing }));
    write('b.yaml', ruleYaml({ id: 'off', title: 'Disabled rule', severity: 'low', enabled: 'false', tests: passing }));
    const lines = listRules([dir]).stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+SEVERITY\s+TITLE\s+ENABLED\s+FILE$/);
    expect(lines[1]).toMatch(/^test-rule\s+medium\s+Test rule\s+yes\s+\S*a\.yaml:1$/);
    expect(lines[2]).toMatch(/^off\s+low\s+Disabled rule\s+no\s+\S*b\.yaml:1$/);
  });

  test('titles and case names from rule files print as one line of plain text', () => {
    write('a.yaml', ruleYaml({ title: '"Scan\\r\\nfake-rule  critical  Pwned  yes  x.yaml:1\\u001b[2J\\u202e"', tests: '[{name: "fires\\nPASS other: forged", features: {syn: 10}, expect: fire}, {features: {syn: 9}, expect: quiet}]' }));
    const lines = listRules([dir]).stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^test-rule\s+medium\s+Scan fake-rule critical Pwned yes x\.yaml:1\[2J\s+yes\s+\S*a\.yaml:1$/);
    expect(testRules([dir]).stdout.split('\n')[0]).toBe('PASS test-rule: fires PASS other: forged');
  });
});

describe('registerRulesCommands', () => {
  async function run(...args: string[]): Promise<{ out: string; err: string; exitCode: number }> {
    let out = '';
    let err = '';
    const program = new Command('xdp-ids').exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
    registerRulesCommands(program);
    try {
      await program.parseAsync(['node', 'xdp-ids', ...args]);
      return { out, err, exitCode: 0 };
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
      return { out, err, exitCode: e.exitCode };
    }
  }

  test('check, test and list through commander, with exit codes', async () => {
    write('a.yaml', ruleYaml({ tests: passing }));
    expect(await run('rules', 'check', dir)).toEqual({ out: '1 rule in 1 file: OK\n', err: '', exitCode: 0 });
    expect(await run('rules', 'test', dir)).toMatchObject({ out: expect.stringContaining('2 passed, 0 failed'), exitCode: 0 });
    expect((await run('rules', 'list', dir)).out).toContain('test-rule');
    write('b.yaml', ruleYaml({ id: 'b', window: 'soon' }));
    expect(await run('rules', 'check', dir)).toMatchObject({ err: expect.stringMatching(/b\.yaml:7:9: "soon" is not a duration/), exitCode: 1 });
    expect(await run('rules', 'test', dir)).toMatchObject({ exitCode: 1 });
  });
});
