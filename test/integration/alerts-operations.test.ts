/** Silences, inhibition, dead-letter replay and the operator CLI, against a real Redis, SMTP server and webhook receiver. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Command } from 'commander';
import { ALERT_EVENT_VERSION, ALERTS_QUEUE, type AlertEvent } from '../../common/alert-events';
import { connectRedis, startEmbeddedRedis, type EmbeddedRedis, type RedisClient } from '../../common/redis';
import { registerAlertsCommands } from '../../alerts/cli';
import { addDeadLetter, listDeadLetters, removeDeadLetter } from '../../alerts/dead-letters';
import { startAlerter, type Alerter } from '../../alerts/service';
import { incident, incidentEvent } from '../support/alert-fixtures';
import { quietLogger } from '../support/quiet-logger';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { startTestWebhookReceiver, type TestWebhookReceiver } from '../support/webhook-receiver';

const SECRET = 'ops-test-secret-0123456789';
let redisServer: EmbeddedRedis;
let redis: RedisClient;
let smtp: TestSmtpServer;
let hook: TestWebhookReceiver;
let queue: Queue<AlertEvent>;
let dir: string;
let alerter: Alerter;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const send = (e: AlertEvent): Promise<unknown> => queue.add(e.kind, e, { jobId: e.id });

/** Runs `xdp-ids alerts ...` in-process; returns what it printed, or throws its error. */
async function cli(...args: string[]): Promise<string> {
  let out = '';
  const program = new Command('xdp-ids').exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => undefined });
  registerAlertsCommands(program);
  const saved = process.env.XDP_IDS_REDIS_URL;
  process.env.XDP_IDS_REDIS_URL = redisServer.url;
  try {
    await program.parseAsync(['alerts', ...args], { from: 'user' });
  } finally {
    if (saved === undefined) delete process.env.XDP_IDS_REDIS_URL;
    else process.env.XDP_IDS_REDIS_URL = saved;
  }
  return out;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-alerts-ops-'));
  process.env.OPS_TEST_SMTP_PASSWORD = 'p';
  process.env.OPS_TEST_WEBHOOK_SECRET = SECRET;
  redisServer = await startEmbeddedRedis();
  redis = connectRedis(redisServer.url);
  smtp = await startTestSmtpServer({ user: 'u', pass: 'p' });
  hook = await startTestWebhookReceiver(SECRET);
  queue = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
  const configPath = path.join(dir, 'alerts.yaml');
  fs.writeFileSync(configPath, `
defaults: { group_wait: 100ms, group_interval: 200ms, repeat_interval: 400ms }
delivery: { backoff: 100ms }
receivers:
  - name: mail
    email: { host: 127.0.0.1, port: ${smtp.port}, ca_file: ${smtp.caFile}, username: u, password_env: OPS_TEST_SMTP_PASSWORD, from: ids@example.test, to: [soc@example.test] }
  - name: hook
    webhook: { url: '${hook.url}', allow_http: true, secret_env: OPS_TEST_WEBHOOK_SECRET }
routes:
  - matchers: [kind=exception]
    receivers: [mail]
  - matchers: [kind=incident]
    receivers: [hook]
inhibit_rules:
  - source: [kind=block, 'phase=~blocked|extended']
    target: [kind=incident, phase=updated, tag=scan]
    equal: [source]
`);
  alerter = await startAlerter({ redisUrl: redisServer.url, configPath, log: quietLogger });
});

afterAll(async () => {
  await alerter?.stop();
  await queue?.close();
  redis?.disconnect();
  await hook?.stop();
  await smtp?.stop();
  await redisServer?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const incidentIds = (): string[] => hook.requests.map((r) => `${(r.body as any).alerts[0].xdp_ids.incident.id}:${(r.body as any).alerts[0].xdp_ids.phase}`);

test('a silence added with the CLI mutes matching incidents until it is deleted; the next update then opens the incident', async () => {
  const id = (await cli('silence', 'add', '-m', 'rule=scan.syn-ports', '-m', 'source=198.18.0.66', '-d', '1h', '--comment', 'pentest')).trim();
  expect(await cli('silence', 'list')).toMatch(new RegExp(`${id} .* rule=scan.syn-ports,source=198.18.0.66 +pentest`));
  const inc = incident({ id: 'inc-silenced' });
  await send(incidentEvent('opened', inc));
  await send(incidentEvent('opened', incident({ id: 'inc-other', key: '198.18.0.77' })));
  await hook.waitFor((r) => r.length >= 1);
  await sleep(600);
  expect(incidentIds()).toEqual(['inc-other:opened']);

  expect(await cli('silence', 'del', id)).toBe(`deleted silence ${id}\n`);
  await expect(cli('silence', 'del', id)).rejects.toThrow(/no silence/);
  await send(incidentEvent('updated', inc));
  await hook.waitFor((r) => r.length >= 2);
  expect(incidentIds()).toEqual(['inc-other:opened', 'inc-silenced:opened']);
  expect(await cli('silence', 'list')).toBe('no active silences\n');
});

test('a block of a source inhibits repeats of its scan incidents, not of other sources', async () => {
  hook.requests.length = 0;
  const blocked = incident({ id: 'inc-blocked-src', key: '198.18.0.88' });
  const free = incident({ id: 'inc-free-src', key: '198.18.0.99' });
  await send(incidentEvent('opened', blocked));
  await send(incidentEvent('opened', free));
  await hook.waitFor((r) => r.length >= 2);
  await send({ v: ALERT_EVENT_VERSION, id: 'block-88', atMs: Date.now(), kind: 'block', phase: 'blocked', target: '198.18.0.88/32', origin: 'rule', expiresMs: Date.now() + 60_000 });
  await sleep(600);
  await send(incidentEvent('updated', { ...blocked, detections: 50 }));
  await send(incidentEvent('updated', { ...free, detections: 50 }));
  await hook.waitFor((r) => r.length >= 3);
  await sleep(600);
  expect(incidentIds().sort()).toEqual(['inc-blocked-src:opened', 'inc-free-src:opened', 'inc-free-src:repeat']);
});

test('a 410 dead-letters the message; after `receiver enable`, `dlq replay --all` delivers it with the same webhook-id', async () => {
  hook.requests.length = 0;
  hook.script({ status: 410 });
  await send(incidentEvent('opened', incident({ id: 'inc-replayed' })));
  await hook.waitFor((r) => r.length >= 1);
  await smtp.waitFor(1);
  expect(smtp.messages[0].subject).toContain('receiver-disabled — alerter@');
  expect(await cli('receiver', 'list')).toMatch(/^hook +\S+ +HTTP 410 Gone/m);
  const [letter] = await listDeadLetters(redis);
  expect(await cli('dlq', 'list')).toMatch(new RegExp(`^${letter.id} +delivery +hook .* HTTP 410 Gone`, 'm'));
  expect(JSON.parse(await cli('dlq', 'show', letter.id)).data.notification.items[0].event.incident.id).toBe('inc-replayed');
  await expect(cli('dlq', 'replay')).rejects.toThrow('name the dead letters to replay, or give --all');

  await cli('receiver', 'enable', 'hook');
  expect(await cli('dlq', 'replay', '--all')).toBe('replayed 1 dead letter\n');
  await hook.waitFor((r) => r.length >= 2);
  expect(hook.requests.map((r) => [r.id, r.status])).toEqual([[letter.id, 410], [letter.id, 200]]);
  expect(await cli('dlq', 'list')).toBe('no dead letters\n');
});

test('dead-letter and silence lists print one line per entry whatever an error or a comment holds', async () => {
  await addDeadLetter(redis, {
    id: 'forged', type: 'event', summary: 's', error: 'HTTP 400 bad\nforged  delivery  hook  2025-01-01T00:00:00.000Z  1  ok\u001b[2J\u202e', attempts: 1, maxAttempts: 1, failedMs: 0, data: {},
  });
  try {
    expect((await cli('dlq', 'list')).split('\n')).toEqual([expect.stringMatching(/^ID/), expect.stringMatching(/^forged +event .* HTTP 400 bad forged delivery hook 2025-01-01T00:00:00\.000Z 1 ok\[2J$/), '']);
  } finally {
    await removeDeadLetter(redis, 'forged');
  }
  const id = (await cli('silence', 'add', '-m', 'rule=nothing', '-d', '1m', '--comment', 'pentest\nabc  2099-01-01  fake')).trim();
  try {
    const listed = (await cli('silence', 'list')).split('\n').filter(Boolean);
    expect(listed).toHaveLength(2);
    expect(listed[1]).toMatch(/pentest abc 2099-01-01 fake$/);
  } finally {
    await cli('silence', 'del', id);
  }
});
