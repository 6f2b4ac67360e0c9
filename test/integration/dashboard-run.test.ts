/**
 * `xdp-ids run` (the built CLI, as a user starts it) on a veth lab: it serves the dashboard on
 * the loopback and prints a one-time login link, which signs a real Chromium in once; the page
 * shows the run's own sensor and detector; a token of XDP_IDS_API_TOKENS works for scripts. A
 * SIGTERM stops everything it started, the XDP program included.
 */
// Playwright's types use the browser's (DOM) types.
/// <reference lib="dom" />
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { NetnsLab } from '../../lab/netns';
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
    const env: NodeJS.ProcessEnv = { ...process.env, XDP_IDS_API_TOKENS: SCRIPT_TOKEN, XDP_IDS_LOG_LEVEL: 'warn' };
    delete env.XDP_IDS_REDIS_URL;
    delete env.XDP_IDS_REDIS_URL_FILE;
    run = spawn(process.execPath, [CLI, 'run', '--iface', lab.iface, '--no-model', '--dashboard-port', '0', '--mailbox', path.join(dir, 'alerts.mbox')],
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
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 40_000);

  test('the printed link signs in once; the page shows the run\'s sensor and detector; a SIGTERM stops it all', async () => {
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

    run.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(execFileSync('ip', ['link', 'show', lab.iface], { encoding: 'utf8' })).not.toMatch(/\bxdp/);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  }, 90_000);
});
