/**
 * `xdp-ids run` (the built CLI, as a user starts it) on a veth lab: it serves the dashboard on
 * the loopback and prints a one-time login link, which signs a real Chromium in once; the page
 * shows the run's own sensor and detector; a token of XDP_IDS_API_TOKENS works for scripts.
 * Stdout gets plain lines, the logs go to --log-file. A SIGHUP (its terminal closed) stops
 * everything it started: the XDP program, its private redis-server.
 */
// Playwright's types use the browser's (DOM) types.
/// <reference lib="dom" />
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { NetnsLab } from '../../lab/netns';
import { PIN_ROOT } from '../../sensor/kernel/program';
import { pixelStats, screenshot } from '../support/screenshots';
import { until } from '../support/until';

const CLI = path.resolve(__dirname, '../../dist/bin/xdp-ids.js');
const LAB = 'xiwebr';
const SUBNET = 176;
const SCRIPT_TOKEN = 'script:read:script-secret-0123456789';

describe('xdp-ids run serves the dashboard on the loopback', () => {
  let lab: NetnsLab;
  let dir: string;
  let run: ChildProcess;
  let stdout = '';
  let stderr = '';
  let exited: Promise<number | null>;
  let browser: Browser;

  beforeAll(async () => {
    execFileSync('npm', ['run', '--silent', 'build:web'], { stdio: 'inherit' });
    lab = new NetnsLab(LAB, SUBNET).create();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-dashboard-run-'));
    const env: NodeJS.ProcessEnv = { ...process.env, XDP_IDS_API_TOKENS: SCRIPT_TOKEN };
    delete env.XDP_IDS_REDIS_URL;
    delete env.XDP_IDS_REDIS_URL_FILE;
    run = spawn(process.execPath, [CLI, 'run', '--iface', lab.iface, '--no-model', '--dashboard-port', '0', '--mailbox', path.join(dir, 'alerts.mbox'),
      '--log-file', path.join(dir, 'run.log'), '--log-level', 'info'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] });
    run.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    run.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    exited = new Promise((resolve) => run.once('exit', (code) => resolve(code)));
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium' });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    // SIGTERM, so that run stops its redis-server and detaches; SIGKILL only if it hangs.
    if (run && run.exitCode === null) {
      run.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 25_000))]);
      if (run.exitCode === null) run.kill('SIGKILL');
    }
    lab?.destroy();
    // run pins a real interface's maps for its next start; this interface is gone.
    fs.rmSync(path.join(PIN_ROOT, LAB), { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 40_000);

  test('the printed link signs in once; the page shows the run\'s sensor and detector; a SIGHUP stops it all', async () => {
    const printed = await until('the login link on stdout', () => /^dashboard: (http:\/\/127\.0\.0\.1:\d+)\/#login=xdpl_[\w-]+/m.exec(stdout) ?? (run.exitCode !== null ? false : undefined), 30_000)
      .catch((err: Error) => { throw new Error(`${err.message}; stderr: ${stderr}`); });
    const [line, url] = printed;
    const link = line.slice('dashboard: '.length);

    const script = await fetch(`${url}/v1/sensors`, { headers: { authorization: `Bearer ${SCRIPT_TOKEN.split(':')[2]}` } });
    expect(script.status).toBe(200);

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(link);
    await page.getByText('run (write)').waitFor();
    await page.goto(`${url}/#/sensors`);
    const row = page.getByTestId('sensors').locator('tr', { hasText: lab.iface });
    await row.getByText('attached').first().waitFor({ timeout: 15_000 });
    const png = await screenshot(page, 'dashboard-run', 'sensors');
    expect((await pixelStats(browser, png)).luminanceStdDev).toBeGreaterThan(10);
    await page.goto(`${url}/#/rules`);
    await page.getByTestId('rule-set').getByText(/\d+ passed, 0 failed/).waitFor();
    await context.close();

    const other = await browser.newPage();
    await other.goto(link);
    await other.getByText('this login link was used already or has expired').waitFor();
    await other.close();

    // As when its terminal closes.
    run.kill('SIGHUP');
    expect(await exited).toBe(0);
    expect(execFileSync('ip', ['link', 'show', lab.iface], { encoding: 'utf8' })).not.toMatch(/\bxdp/);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    // Plain lines on stdout (not a terminal here), the logs in the file.
    expect(stdout).toMatch(/^xdp-ids: starting; logs in .*run\.log$/m);
    expect(stdout).toMatch(/^\S+Z packets=\d+ drops=\d+ sources=\d+ tracked=\d+/m);
    expect(stdout).not.toMatch(/^\{/m);
    const logged = fs.readFileSync(path.join(dir, 'run.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(logged.map((l) => l.msg)).toContain('detector started');
    const redisDir = (logged.find((l) => l.msg.startsWith('started a private redis-server')) as { dir?: string } | undefined)?.dir;
    expect(redisDir).toBeDefined();
    expect(fs.existsSync(redisDir!)).toBe(false);
  }, 90_000);
});
