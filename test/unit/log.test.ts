import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../common/log';

describe('createLogger', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-log-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const linesOf = (file: string): { level: number; msg: string }[] => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

  test('writes JSON lines of its level into a file (creating its directory, appending), and hands warnings and errors to a live screen', () => {
    const file = path.join(dir, 'logs', 'run.log');
    const warnings: string[] = [];
    const log = createLogger('t', { file, level: 'info', warnings: { write: (line) => warnings.push(line) } });
    log.debug('hidden');
    log.info('started');
    log.warn('slow');
    log.error('failed');
    createLogger('t', { file, level: 'info' }).info('again');
    expect(linesOf(file).map((l) => l.msg)).toEqual(['started', 'slow', 'failed', 'again']);
    expect(warnings.map((w) => JSON.parse(w).msg)).toEqual(['slow', 'failed']);
  });

  test('at debug the file gets debug lines; the screen still only warnings', () => {
    const file = path.join(dir, 'run.log');
    const warnings: string[] = [];
    const log = createLogger('t', { file, level: 'debug', warnings: { write: (line) => warnings.push(line) } });
    log.debug('detail');
    log.warn('slow');
    expect(linesOf(file).map((l) => l.msg)).toEqual(['detail', 'slow']);
    expect(warnings).toHaveLength(1);
  });

  test('silent: nothing in the file, warnings still on the screen', () => {
    const file = path.join(dir, 'run.log');
    const warnings: string[] = [];
    const log = createLogger('t', { file, level: 'silent', warnings: { write: (line) => warnings.push(line) } });
    log.warn('slow');
    expect(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').toBe('');
    expect(warnings).toHaveLength(1);
  });

  test('a file it cannot create is an error at once', () => {
    fs.writeFileSync(path.join(dir, 'plain'), '');
    expect(() => createLogger('t', { file: path.join(dir, 'plain', 'run.log') })).toThrow(/ENOTDIR|EEXIST/);
  });
});
