/**
 * The web dashboard in real Chromium (Debian's, driven by playwright-core), served by the control
 * API on a real redis-server with one ACL user per part, fed by the real pipeline on a veth lab:
 * the XDP sensor with its status writer and block enforcer, a detector with the default rule pack
 * that blocks through the ledger, an alerter with a real webhook receiver. A real nmap scan opens
 * the incident the page shows live; the page removes its block and the kernel's entry goes, and
 * replays the alert that the receiver refused until it was dead-lettered. Every page is saved as a screenshot under
 * test-output/dashboard/ and checked not to be blank.
 */
// Playwright's types and the functions it runs in the page use the browser's (DOM) types.
/// <reference lib="dom" />
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startControlApi, type ControlApi } from '../../blocking/api';
import { LedgerBlocker } from '../../blocking/blocker';
import { startEnforcer, type Enforcer } from '../../blocking/enforcer';
import { BlockLedger } from '../../blocking/ledger';
import type { ApiToken } from '../../blocking/tokens';
import { parseConfig } from '../../alerts/config';
import { startAlerterWith, type Alerter } from '../../alerts/service';
import { connectRedis, type RedisClient, type RedisTarget } from '../../common/redis';
import { aclFileText, newRolePasswords, roleUrls, type Role } from '../../common/redis-roles';
import { Detector } from '../../detector/service';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { nmap } from '../../lab/traffic';
import { Sensor } from '../../sensor/daemon';
import { QueuePublisher } from '../../sensor/publisher';
import { SensorStatusWriter } from '../../sensor/status';
import { Sessions } from '../../web/sessions';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { pixelStats, screenshot } from '../support/screenshots';
import { makeTestCertificates } from '../support/tls';
import { until } from '../support/until';
import { startTestWebhookReceiver, type TestWebhookReceiver } from '../support/webhook-receiver';

const LAB = 'xiweb';
const SUBNET = 175;
const SENSOR = 'xiweb-sensor';
const CHROMIUM = '/usr/bin/chromium';
const OPS: ApiToken = { name: 'ops', scope: 'write', secret: 'ops-secret-0123456789abcdef' };
const VIEWER: ApiToken = { name: 'viewer', scope: 'read', secret: 'viewer-secret-0123456789ab' };
const WEBHOOK_SECRET = 'dashboard-webhook-secret-0123456789';

describe('the dashboard in Chromium, on the real pipeline', () => {
  let redis: TestRedis;
  let urls: Record<Role, RedisTarget>;
  let admin: RedisClient;
  let lab: NetnsLab;
  let attacker: LabHost;
  let detectorRedis: RedisClient;
  let rulesDir: string;
  let detector: Detector;
  let status: SensorStatusWriter;
  let publisher: QueuePublisher;
  let sensor: Sensor;
  let enforcer: Enforcer;
  let hook: TestWebhookReceiver;
  let audit: TestWebhookReceiver;
  let alerter: Alerter;
  let sessions: Sessions;
  let api: ControlApi;
  let browser: Browser;
  let operator: BrowserContext;
  let page: Page;

  const kernelBlock = (prefix: string) => sensor.program.listBlocks().find((b) => b.prefix === prefix);

  async function signInWith(context: BrowserContext, secret: string): Promise<Page> {
    const p = await context.newPage();
    await p.goto(api.url);
    await p.getByPlaceholder('API token secret').fill(secret);
    await p.getByRole('button', { name: 'Sign in' }).click();
    return p;
  }

  /** Follows a link or hash route and waits for the page's own content. */
  async function open(hash: string, ready: string): Promise<void> {
    await page.goto(`${api.url}/${hash}`);
    await page.locator(ready).first().waitFor();
  }

  async function expectNotBlank(name: string): Promise<void> {
    const png = await screenshot(page, 'dashboard', name);
    const stats = await pixelStats(browser, png);
    expect(stats.width).toBeGreaterThan(0);
    expect(stats.luminanceStdDev).toBeGreaterThan(10);
    expect(stats.inkShare).toBeGreaterThan(0.01);
  }

  beforeAll(async () => {
    // The API serves the built client: build it from the sources under test.
    execFileSync('npm', ['run', '--silent', 'build:web'], { stdio: 'inherit' });
    const passwords = newRolePasswords();
    redis = await testRedis({ acl: `${aclFileText(passwords)}user admin on >admin-password-0123456789 ~* &* +@all\n` });
    urls = roleUrls(redis.url, passwords);
    const adminUrl = new URL(redis.url);
    adminUrl.username = 'admin';
    adminUrl.password = 'admin-password-0123456789';
    admin = connectRedis(adminUrl.toString());
    lab = new NetnsLab(LAB, SUBNET).create();
    attacker = lab.addHost('atk', 66);
    detectorRedis = connectRedis(urls.detector);
    const blocker = new LedgerBlocker(new BlockLedger(detectorRedis), { component: 'test' }, undefined, quietLogger);
    // A copy of the default rule pack, which the rules page's test breaks.
    rulesDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-dashboard-rules-'));
    for (const file of fs.readdirSync('rules').filter((f) => f.endsWith('.yaml'))) fs.copyFileSync(path.join('rules', file), path.join(rulesDir, file));
    detector = await Detector.start({ redisUrl: urls.detector, rulePaths: [rulesDir], log: quietLogger, id: 'web', blocker });
    status = new SensorStatusWriter(urls.sensor, quietLogger);
    publisher = new QueuePublisher({ redisUrl: urls.sensor, sensorId: SENSOR, log: quietLogger, also: [status] });
    sensor = Sensor.start({ iface: lab.iface, sensorId: SENSOR, windowMs: 1000, pin: false }, publisher, quietLogger);
    enforcer = await startEnforcer({ program: sensor.program, redisUrl: urls.sensor, sensorId: SENSOR, log: quietLogger });
    status.describe(sensor.description(), () => enforcer.ready);
    hook = await startTestWebhookReceiver(WEBHOOK_SECRET);
    audit = await startTestWebhookReceiver(WEBHOOK_SECRET);
    // The receiver refuses the first request, which has one attempt: it ends in the dead letters.
    hook.script({ status: 500 });
    const alertsConfig = parseConfig(`
defaults: { group_wait: 100ms }
delivery: { backoff: 100ms }
receivers:
  - name: soc-hook
    attempts: 1
    webhook: { url: '${hook.url}', allow_http: true, secret_env: DASHBOARD_WEBHOOK_SECRET }
  - name: audit-hook
    webhook: { url: '${audit.url}', allow_http: true, secret_env: DASHBOARD_WEBHOOK_SECRET }
routes:
  - matchers: [kind=incident]
    receivers: [soc-hook]
  - matchers: [kind=block]
    receivers: [audit-hook]
`, 'dashboard-alerts.yaml', { DASHBOARD_WEBHOOK_SECRET: WEBHOOK_SECRET });
    alerter = await startAlerterWith(alertsConfig, { redisUrl: urls.alerter, log: quietLogger });
    sessions = new Sessions();
    api = await startControlApi({ redisUrl: urls.control, host: '127.0.0.1', port: 0, tokens: [OPS, VIEWER], log: quietLogger, sessions });
    browser = await chromium.launch({ executablePath: CHROMIUM });
    operator = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await enforcer?.stop();
    sensor?.stop();
    await publisher?.close();
    await status?.close();
    await alerter?.stop();
    await hook?.stop();
    await audit?.stop();
    await detector?.stop();
    detectorRedis?.disconnect();
    lab?.destroy();
    if (rulesDir) fs.rmSync(rulesDir, { recursive: true, force: true });
    admin?.disconnect();
    await redis?.stop();
  });

  test('without a token or session everything but the page itself is refused', async () => {
    const context = await browser.newContext();
    try {
      for (const path of ['/v1/incidents', '/v1/sensors', '/v1/rules', '/v1/blocks', '/v1/live', '/v1/alerts/dead-letters']) {
        expect((await context.request.get(`${api.url}${path}`)).status()).toBe(401);
      }
      const p = await context.newPage();
      await p.goto(api.url);
      await p.getByTestId('login').waitFor();
      expect(await p.locator('#nav').isHidden()).toBe(true);
      await p.getByPlaceholder('API token secret').fill('not-a-token-of-this-api');
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByText('invalid token').waitFor();
      expect(await context.cookies()).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test('a read-scoped session sees the pages but cannot change anything, and a change without the CSRF header is refused', async () => {
    const context = await browser.newContext();
    try {
      const p = await signInWith(context, VIEWER.secret);
      await p.getByText('viewer (read)').waitFor();
      const [cookie] = await context.cookies();
      expect(cookie).toMatchObject({ name: 'xdp-ids-session', httpOnly: true, sameSite: 'Strict' });
      // The page's own scripts cannot read the cookie.
      expect(await p.evaluate(() => document.cookie)).toBe('');
      const refused = await p.evaluate(async () => {
        const session = await (await fetch('/v1/session')).json() as { csrf: string };
        const post = (headers: Record<string, string>) => fetch('/v1/blocks', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ target: '198.18.175.99', ttl: '1h' }) })
          .then(async (r) => ({ status: r.status, error: (await r.json() as { error: string }).error }));
        return { withCsrf: await post({ 'x-csrf-token': session.csrf }), withoutCsrf: await post({}) };
      });
      expect(refused.withCsrf).toMatchObject({ status: 403, error: expect.stringMatching(/scope read; POST \/v1\/blocks needs a token with scope write/) });
      expect(refused.withoutCsrf).toMatchObject({ status: 403, error: 'missing or wrong x-csrf-token header' });
      expect(await admin.exists('xdp-ids:block:198.18.175.99/32')).toBe(0);
      // Bad filters and unknown incidents get a clear answer.
      const bad = await p.evaluate(async () => Promise.all(['/v1/incidents?severity=urgent', '/v1/incidents?colour=red', '/v1/incidents/scan-tcp-vertical/198.18.175.250']
        .map(async (url) => { const r = await fetch(url); return { status: r.status, error: (await r.json() as { error: string }).error }; })));
      expect(bad).toEqual([
        { status: 400, error: expect.stringMatching(/severity/) },
        { status: 400, error: expect.stringMatching(/colour/) },
        { status: 404, error: 'no incident of rule scan-tcp-vertical for 198.18.175.250' },
      ]);
    } finally {
      await context.close();
    }
  });

  test('over HTTPS the session cookie is Secure and host-only (__Host-)', async () => {
    const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-dashboard-tls-'));
    const certs = makeTestCertificates(certDir);
    const tlsApi = await startControlApi({ redisUrl: urls.control, host: '127.0.0.1', port: 0, tokens: [OPS], log: quietLogger, tls: { cert: certs.cert, key: certs.key } });
    // The test's own CA is not in Chromium's store.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    try {
      const p = await context.newPage();
      await p.goto(tlsApi.url);
      await p.getByPlaceholder('API token secret').fill(OPS.secret);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByText('ops (write)').waitFor();
      expect(await context.cookies()).toEqual([expect.objectContaining({ name: '__Host-xdp-ids-session', secure: true, httpOnly: true, sameSite: 'Strict', path: '/' })]);
    } finally {
      await context.close();
      await tlsApi.close();
      fs.rmSync(certDir, { recursive: true, force: true });
    }
  });

  test('another site on this host cannot make changes with a signed-in operator\'s cookie', async () => {
    const context = await browser.newContext();
    // Same host, other port: the same "site", so SameSite=Strict still sends the cookie.
    const evil = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<form id="f" method="POST" action="${api.url}/v1/blocks" enctype="text/plain"><input name='{"target":"198.18.175.98","ttl":"1h","x":"' value='"}'></form>
        <script>fetch(${JSON.stringify(`${api.url}/v1/blocks`)}, { method: 'POST', credentials: 'include', mode: 'no-cors', headers: { 'content-type': 'text/plain' },
          body: JSON.stringify({ target: '198.18.175.97', ttl: '1h' }) }).finally(() => document.getElementById('f').submit());</script>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const p = await signInWith(context, OPS.secret);
      await p.getByText('ops (write)').waitFor();
      // The fetch's answer never reaches the other site (Cross-Origin-Resource-Policy): it fails in the browser after the API answered.
      const forged: string[] = [];
      p.on('requestfinished', async (r) => { if (r.url().endsWith('/v1/blocks')) forged.push(`${r.method()} ${(await r.response())?.status()}`); });
      p.on('requestfailed', (r) => { if (r.url().endsWith('/v1/blocks')) forged.push(`${r.method()} failed: ${r.failure()?.errorText}`); });
      await p.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      await until('both forged requests answered', () => forged.length >= 2 || undefined);
      expect(forged.sort()).toEqual(['POST 403', 'POST failed: net::ERR_BLOCKED_BY_RESPONSE.NotSameOrigin']);
      expect(await admin.keys('xdp-ids:block:198.18.175.9*')).toEqual([]);
    } finally {
      evil.close();
      await context.close();
    }
  });

  test('an operator signs in with a one-time link, a real scan\'s incident appears live, and removing its block from the page removes the kernel entry', async () => {
    const link = `${api.url}/#login=${sessions.issueLoginToken({ name: 'run', scope: 'write' })}`;
    page = await operator.newPage();
    await page.goto(link);
    await page.getByText('run (write)').waitFor();
    // The link's token is gone from the address bar, and it signs in only once.
    expect(page.url()).toBe(`${api.url}/#/`);
    const again = await browser.newContext();
    const second = await again.newPage();
    await second.goto(link);
    await second.getByText('this login link was used already or has expired').waitFor();
    await again.close();

    await page.getByTestId('chart-packets').locator('canvas').waitFor();
    const scanStarted = Date.now();
    const banner = page.getByTestId('opened-banner').filter({ hasText: attacker.v4 }).first();
    const [, bannerMs] = await Promise.all([
      nmap(lab, attacker, '-sS', lab.hostV4, { ports: '1-1000', timing: 'T4', maxSeconds: 15 }),
      banner.waitFor({ timeout: 20_000 }).then(() => Date.now() - scanStarted),
    ]);
    await page.getByTestId('incidents-opening').getByText(attacker.v4).first().waitFor();
    await page.getByTestId('top-sources').getByText(attacker.v4).first().waitFor({ timeout: 10_000 });
    const target = `${attacker.v4}/32`;
    expect(kernelBlock(target)).toBeDefined();
    // Blocked, the scanner's pings are dropped in the kernel, and the page's drops go up.
    await expect(lab.run(attacker, ['ping', '-c', '10', '-i', '0.1', '-W', '1', lab.hostV4], 10_000)).rejects.toThrow();
    expect(kernelBlock(target)!.drops).toBeGreaterThanOrEqual(10);
    await until('the drops on the live page', async () => (await page.getByTestId('drops-peak').textContent()) !== '0' || undefined, 10_000);
    await expectNotBlank('live');

    await page.getByTestId('opened-banner').getByRole('link', { name: 'Vertical TCP port scan' }).first().click();
    const ledgerState = page.getByTestId('ledger-state');
    await ledgerState.and(page.locator('[data-state="blocked"]')).waitFor();
    await page.getByTestId('conditions').getByText('syn >= 30').waitFor();
    await page.getByTestId('samples').getByText(attacker.v4).first().waitFor();
    expect(await page.getByTestId('timeline').locator('li').count()).toBeGreaterThanOrEqual(3);
    await expectNotBlank('incident');

    const remove = page.getByTestId('remove-block');
    await remove.click();
    const removeClicked = Date.now();
    await page.getByRole('button', { name: 'Confirm: remove block' }).click();
    await until('the kernel entry gone', () => kernelBlock(target) === undefined || undefined, 10_000);
    process.stdout.write(`dashboard: nmap start → incident banner on the page ${bannerMs} ms; confirm click → kernel entry gone ${Date.now() - removeClicked} ms\n`);
    await ledgerState.and(page.locator('[data-state="none"]')).waitFor();
    // The change is the session's: announced with its actor.
    await audit.waitFor((requests) => requests.some((r) => {
      const text = JSON.stringify(r.body);
      return text.includes(target) && text.includes('by api:run');
    }));
  }, 90_000);

  test('every page shows what it lists, and none is blank', async () => {
    await open('#/incidents', '[data-testid="incidents"]');
    await page.getByTestId('incidents').getByText(attacker.v4).first().waitFor();
    await expectNotBlank('incidents');
    const filters = page.getByTestId('incident-filters');
    await filters.getByPlaceholder('rule id').fill('scan-tcp-vertical');
    await filters.getByPlaceholder('address or part').fill('198.18.175.');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await until('only the vertical scan listed', async () => (await page.getByTestId('incidents').locator('tbody tr').allTextContents()).join('|').match(/^[^|]*scan-tcp-vertical[^|]*$/) || undefined, 10_000);
    await filters.getByPlaceholder('sensor id').fill('another-sensor');
    await filters.getByRole('button', { name: 'Filter' }).click();
    await page.getByTestId('incidents').getByText('No incident matches.').waitFor();

    await open('#/blocks', '[data-testid="add-block"]');
    await page.getByTestId('add-block').getByPlaceholder('203.0.113.7').fill('198.18.175.200');
    await page.getByTestId('add-block').getByRole('button', { name: 'Block' }).click();
    await page.getByTestId('blocks').getByText('198.18.175.200/32').waitFor();
    await until('the manual block in the kernel', () => kernelBlock('198.18.175.200/32') !== undefined || undefined, 10_000);
    const manual = page.getByTestId('blocks').locator('tr', { hasText: '198.18.175.200/32' });
    await manual.getByRole('textbox', { name: 'time to live' }).fill('3h');
    await manual.getByRole('button', { name: 'Extend' }).click();
    // The row is drawn again with the new expiry (its status note goes with the old row).
    await until('the block extended in the ledger', async () => ((await new BlockLedger(admin).get('198.18.175.200/32'))!.expiresMs > Date.now() + 2 * 3_600_000) || undefined, 10_000);

    const limitForm = page.getByTestId('add-limit');
    await limitForm.getByPlaceholder('198.51.100.10').fill(lab.hostV4);
    await limitForm.getByPlaceholder('1000').fill('500');
    await limitForm.getByRole('button', { name: 'Limit' }).click();
    const kernelLimit = () => sensor.program.listDestinationLimits().find((l) => l.address === lab.hostV4 && l.traffic === 'syn');
    await until('the limit in the kernel', () => kernelLimit()?.perSecond === 500 || undefined, 10_000);
    await page.getByTestId('limits').getByText(lab.hostV4).waitFor();
    await expectNotBlank('blocks');
    await page.getByTestId('remove-limit').click();
    await page.getByRole('button', { name: 'Confirm: remove limit' }).click();
    await until('the limit gone from the kernel', () => kernelLimit() === undefined || undefined, 10_000);
    await page.getByTestId('limits').getByText('No active limits.').waitFor();

    await open('#/allow', '[data-testid="add-allow"]');
    await page.getByTestId('add-allow').getByPlaceholder('10.20.0.0/16').fill('198.18.175.50');
    await page.getByTestId('add-allow').getByRole('button', { name: 'Allow' }).click();
    await page.getByTestId('allows').getByText('198.18.175.50/32').waitFor();
    const kernelAllow = () => sensor.program.listAllows().find((a) => a.prefix === '198.18.175.50/32');
    await until('the allow entry in the kernel', () => kernelAllow() !== undefined || undefined, 10_000);
    await expectNotBlank('allow');
    await page.getByTestId('allows').locator('tr', { hasText: '198.18.175.50/32' }).getByTestId('remove-allow').click();
    await page.getByRole('button', { name: 'Confirm: remove' }).click();
    await until('the allow entry gone from the kernel', () => kernelAllow() === undefined || undefined, 10_000);

    await open('#/sensors', '[data-testid="sensors"]');
    const row = page.getByTestId('sensors').locator('tr', { hasText: SENSOR });
    await row.getByText('attached').first().waitFor();
    await row.getByText(lab.iface, { exact: true }).waitFor();
    await row.getByText(/blocked [1-9]/).waitFor();
    await expectNotBlank('sensors');

    await open('#/rules', '[data-testid="rule-set"]');
    await page.getByTestId('rule-set').getByText(/\d+ passed, 0 failed/).waitFor();
    await page.getByTestId('rules').getByText('scan-tcp-vertical').waitFor();
    const version = (await page.getByTestId('rule-set').locator('dd').first().textContent())!;
    // A broken rule file: the detector keeps its set, and the page says why it refused the new one.
    fs.writeFileSync(path.join(rulesDir, 'broken.yaml'), [
      '- id: half-written', '  title: Half-written rule', '  description: Saved before it was finished.', '  severity: high', '  group_by: src', '  when: syn >=', '',
    ].join('\n'));
    await until('the rejected reload on the page', async () => {
      await page.reload();
      return (await page.getByTestId('rule-set').getByText(`rejected; kept ${version}`).count()) > 0 || undefined;
    }, 20_000);
    await page.getByTestId('rule-set').getByText(/broken\.yaml:6:\d+: syntax error/).first().waitFor();
    await expectNotBlank('rules');

    await open('#/alerts', '[data-testid="dead-letters"]');
    await until('the refused alert among the dead letters', async () => {
      await page.reload();
      return (await page.getByTestId('dead-letters').getByText('soc-hook').count()) > 0 || undefined;
    }, 20_000);
    await page.getByTestId('deliveries').locator('[data-state="dead-lettered"]').first().waitFor();
    await expectNotBlank('alerts');
    const accepted = hook.requests.filter((r) => r.accepted).length;
    await page.getByTestId('replay').first().click();
    await page.getByTestId('replay-status').getByText('queued again').waitFor();
    await page.getByTestId('dead-letters').getByText('No dead letters.').waitFor();
    await hook.waitFor((requests) => requests.filter((r) => r.accepted).length > accepted);
    await until('the replayed alert delivered', async () => {
      await page.reload();
      return (await page.getByTestId('deliveries').locator('[data-state="sent"]').count()) > 0 || undefined;
    }, 20_000);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByTestId('login').waitFor();
    expect(await operator.cookies()).toEqual([]);
    expect(await page.getByTestId('opened-banner').count()).toBe(0);
    await expectNotBlank('login');
  }, 60_000);
});
