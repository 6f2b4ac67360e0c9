import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatProblem } from '../../detector/rules/problems';
import { RuleWatcher, type Rejected, type Reloaded } from '../../detector/rules/watcher';
import { ruleYaml } from './rules-support';

describe('hot reload', () => {
  let dir: string;
  let watcher: RuleWatcher;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-watch-'));
    fs.writeFileSync(path.join(dir, 'a.yaml'), ruleYaml({ id: 'first' }));
  });

  afterEach(() => {
    watcher?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a broken file is rejected with file:line and the last good set stays in force', () => {
    watcher = new RuleWatcher([dir]);
    const events: string[] = [];
    watcher.on('reloaded', (e: Reloaded) => events.push(`reloaded ${e.ruleSet.rules.map((r) => r.id).join(',')}`));
    watcher.on('rejected', (e: Rejected) => events.push(`rejected ${e.problems.filter((p) => p.severity === 'error').map(formatProblem).join('; ')} (kept ${e.kept?.rules.map((r) => r.id).join(',')})`));
    watcher.start();
    const good = watcher.ruleSet;
    fs.writeFileSync(path.join(dir, 'a.yaml'), ruleYaml({ id: 'first', when: 'syn >= ' }));
    watcher.reload();
    expect(watcher.ruleSet).toBe(good);
    fs.writeFileSync(path.join(dir, 'a.yaml'), ruleYaml({ id: 'second' }));
    watcher.reload();
    expect(watcher.ruleSet?.rules.map((r) => r.id)).toEqual(['second']);
    expect(events).toEqual([
      'reloaded first',
      `rejected ${path.join(dir, 'a.yaml')}:6:11: syntax error at \`>\`: the expression is incomplete here or has a stray symbol (kept first)`,
      'reloaded second',
    ]);
  });

  test('a FIFO or a symlink to /dev/zero among the rule files is refused without blocking; the last good set stays', () => {
    watcher = new RuleWatcher([dir]);
    const rejected: Rejected[] = [];
    watcher.on('rejected', (e: Rejected) => rejected.push(e));
    watcher.start();
    const good = watcher.ruleSet;
    execFileSync('mkfifo', [path.join(dir, 'fifo.yaml')]);
    fs.symlinkSync('/dev/zero', path.join(dir, 'zero.yaml'));
    watcher.reload();
    expect(watcher.ruleSet).toBe(good);
    expect(rejected.map((e) => e.problems.filter((p) => p.severity === 'error').map(formatProblem))).toEqual([[
      `${path.join(dir, 'fifo.yaml')}:1:1: a FIFO, not a regular file: refusing to read it`,
      `${path.join(dir, 'zero.yaml')}:1:1: a device, not a regular file: refusing to read it`,
    ]]);
    expect(rejected[0].kept).toBe(good);
  });

  test('an unchanged set is not reloaded again', () => {
    watcher = new RuleWatcher([dir]);
    const reloaded = jest.fn();
    watcher.on('reloaded', reloaded);
    watcher.start();
    watcher.reload();
    expect(reloaded).toHaveBeenCalledTimes(1);
  });

  test('file changes trigger a reload by themselves', async () => {
    watcher = new RuleWatcher([dir], { debounceMs: 20 });
    watcher.start();
    const next = (event: 'reloaded' | 'rejected') => new Promise<Reloaded | Rejected>((resolve) => watcher.once(event, resolve));
    const rejected = next('rejected');
    fs.writeFileSync(path.join(dir, 'b.yaml'), 'id: [broken\n');
    expect(((await rejected) as Rejected).problems.find((p) => p.severity === 'error')).toMatchObject({ file: path.join(dir, 'b.yaml'), line: 2, severity: 'error' });
    expect(watcher.ruleSet?.rules.map((r) => r.id)).toEqual(['first']);
    const reloaded = next('reloaded');
    fs.writeFileSync(path.join(dir, 'b.yaml'), ruleYaml({ id: 'added' }));
    expect(((await reloaded) as Reloaded).ruleSet.rules.map((r) => r.id)).toEqual(['first', 'added']);
  });
});
