/**
 * The alerter against real parts: redis-server, an SMTP server with STARTTLS and auth (messages
 * parsed back with mailparser), and an HTTP receiver that verifies Standard Webhooks signatures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { ALERT_EVENT_VERSION, ALERTS_QUEUE, type AlertEvent } from '../../common/alert-events';
import { connectRedis, startEmbeddedRedis, type EmbeddedRedis, type RedisClient } from '../../common/redis';
import { listDeadLetters } from '../../alerts/dead-letters';
import { startAlerter, type Alerter } from '../../alerts/service';
import { DELIVERY_QUEUE, FLUSH_QUEUE, keys } from '../../alerts/keys';
import { incident, incidentEvent } from '../support/alert-fixtures';
import { quietLogger } from '../support/quiet-logger';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { startTestWebhookReceiver, type TestWebhookReceiver } from '../support/webhook-receiver';

const SECRET = 'test-webhook-secret-0123456789';
const SMTP_AUTH = { user: 'alerter', pass: 'p4ss-w0rd' };

let redisServer: EmbeddedRedis;
let redis: RedisClient;
let smtp: TestSmtpServer;
let hook: TestWebhookReceiver;
let queue: Queue<AlertEvent>;
let dir: string;
const alerters: Alerter[] = [];

function writeConfig(backlogAlert = 10_000): string {
  const file = path.join(dir, `alerts-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, `
defaults:
  group_wait: 200ms
  group_interval: 300ms
  repeat_interval: 5s
delivery:
  backoff: 100ms
  max_backoff: 2s
  backlog_alert: ${backlogAlert}
receivers:
  - name: soc-email
    email:
      host: 127.0.0.1
      port: ${smtp.port}
      ca_file: ${smtp.caFile}
      username: ${SMTP_AUTH.user}
      password_env: TEST_ALERTS_SMTP_PASSWORD
      from: xdp-ids <ids@example.test>
      to: [soc@example.test]
      timeout: 2s
    attempts: 30
  - name: siem
    webhook:
      url: ${hook.url}
      allow_http: true
      secret_env: TEST_ALERTS_WEBHOOK_SECRET
      timeout: 700ms
    attempts: 4
routes:
  - name: ops
    matchers: [kind=exception]
    receivers: [soc-email]
    group_by: [code]
  - name: soc
    matchers: ['severity=~medium|high|critical']
    receivers: [soc-email, siem]
`);
  return file;
}

async function start(configFile = writeConfig()): Promise<Alerter> {
  const a = await startAlerter({ redisUrl: redisServer.url, configPath: configFile, log: quietLogger });
  alerters.push(a);
  return a;
}

async function send(event: AlertEvent): Promise<void> {
  await queue.add(event.kind, event, { jobId: event.id });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until the delivery queue has nothing waiting, delayed or active. */
async function settled(): Promise<void> {
  const deliveries = new Queue(DELIVERY_QUEUE, { connection: redis });
  const flushes = new Queue(FLUSH_QUEUE, { connection: redis });
  try {
    for (let i = 0; i < 200; i++) {
      const [d, f, a] = await Promise.all([deliveries.getJobCounts('wait', 'delayed', 'active'), flushes.getJobCounts('wait', 'delayed', 'active'), queue.getJobCounts('wait', 'delayed', 'active')]);
      if ([...Object.values(d), ...Object.values(f), ...Object.values(a)].every((n) => n === 0)) return;
      await sleep(100);
    }
    throw new Error('queues did not settle');
  } finally {
    await deliveries.close();
    await flushes.close();
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-alerts-test-'));
  process.env.TEST_ALERTS_SMTP_PASSWORD = SMTP_AUTH.pass;
  process.env.TEST_ALERTS_WEBHOOK_SECRET = SECRET;
  redisServer = await startEmbeddedRedis();
  redis = connectRedis(redisServer.url);
  smtp = await startTestSmtpServer(SMTP_AUTH);
  hook = await startTestWebhookReceiver(SECRET);
  queue = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
});

afterEach(async () => {
  await Promise.all(alerters.splice(0).map((a) => a.stop()));
  await redis.flushall();
  smtp.messages.length = 0;
  hook.requests.length = 0;
});

afterAll(async () => {
  await queue?.close();
  redis?.disconnect();
  await hook?.stop();
  await smtp?.stop();
  await redisServer?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a burst of 1,000 detections of one incident, seen by two alerters, gives one opened message per receiver, then one repeat with what changed, then one resolved', async () => {
  await start();
  await start();
  const inc = incident({ title: 'SYN scan <script>alert("x")</script> & co' });
  await send(incidentEvent('opened', inc));
  const burst: Promise<void>[] = [];
  for (let n = 0; n < 1000; n++) burst.push(send(incidentEvent('updated', { ...inc, detections: 3 + n, lastSeenMs: inc.lastSeenMs + n })));
  await Promise.all(burst);
  await smtp.waitFor(1);
  const firstMessageMs = Date.now();
  await hook.waitFor((r) => r.length >= 1);
  await settled();
  expect(smtp.messages).toHaveLength(1);
  expect(hook.requests).toHaveLength(1);
  const mail = smtp.messages[0];
  expect(mail.subject).toBe('[HIGH] OPENED: SYN scan <script>alert("x")</script> & co — 198.18.0.66 → 198.18.0.10 — blocked 198.18.0.66/32 until 2025-01-01T13:00:00Z');
  expect(mail.from?.value).toEqual([{ name: 'xdp-ids', address: 'ids@example.test' }]);
  expect((mail.to as { text: string }).text).toBe('soc@example.test');
  expect(mail.messageId).toMatch(/@xdp-ids>$/);
  const text = mail.text!;
  expect(text).toContain('Who:      198.18.0.66 → 198.18.0.10');
  expect(text).toContain('Undo:     xdp-ids block del 198.18.0.66/32');
  expect(text).toContain('Rule scan.syn-ports (version a1b2c3d4)');
  expect(text).toContain('syn >= 30: saw 120, threshold 30 (tripped)');
  expect(text).toMatch(/syn: \d+ \/ 150/);
  expect(text).toContain('198.18.0.66:40001 → 198.18.0.10:23  TCP S  48 1024 10 54');
  const html = mail.html as string;
  expect(html).not.toContain('<script>');
  expect(html).toContain('SYN scan &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co');
  expect(html).toMatch(/<table class="samples"[\s\S]*<td>198\.18\.0\.66<\/td><td>40001<\/td><td>198\.18\.0\.10<\/td><td>22<\/td><td>TCP<\/td><td>S<\/td><td>49<\/td><td>1024<\/td><td>10<\/td>/);
  expect(html).toContain('<code class="undo">xdp-ids block del 198.18.0.66/32</code>');

  const payload = hook.requests[0].body as { schema: string; alerts: Array<Record<string, any>> };
  expect(payload.schema).toBe('xdp-ids.alert.v1');
  expect(payload.alerts).toHaveLength(1);
  const alert = payload.alerts[0];
  expect(alert.event).toMatchObject({ kind: 'alert', type: ['start'], action: 'incident-opened', severity: 4 });
  expect(alert.rule).toEqual({ id: 'scan.syn-ports', name: inc.title, version: 'a1b2c3d4', description: inc.description });
  expect(alert.source).toEqual({ ip: '198.18.0.66' });
  expect(alert.threat.technique.id).toEqual(['T1046']);
  expect(alert.xdp_ids.incident.block.undo).toBe('xdp-ids block del 198.18.0.66/32');

  await sleep(Math.max(0, firstMessageMs + 5100 - Date.now()));
  await send(incidentEvent('updated', { ...inc, detections: 2000, peak: { syn: 900, distinct_ports: 110 } }));
  await smtp.waitFor(2);
  await hook.waitFor((r) => r.length >= 2);
  expect(smtp.messages[1].subject).toMatch(/^\[HIGH\] ONGOING: /);
  expect(smtp.messages[1].text).toMatch(/detections: \d+ → 2000/);
  expect(smtp.messages[1].text).toContain('peak syn: 150 → 900');

  await send(incidentEvent('resolved', { ...inc, resolvedMs: inc.lastSeenMs + 5000 }));
  await send(incidentEvent('updated', inc));
  await smtp.waitFor(3);
  await settled();
  expect(smtp.messages.map((m) => m.subject!.split(':')[0])).toEqual(['[HIGH] OPENED', '[HIGH] ONGOING', '[HIGH] RESOLVED']);
  expect(hook.requests.map((r) => (r.body as any).alerts[0].event.type[0])).toEqual(['start', 'info', 'end']);
  expect(hook.rejected).toBe(0);
}, 40_000);

test('a webhook answering 500 then 200 gets the same signed message again; 429 waits for Retry-After; a slow receiver times out and is retried', async () => {
  hook.script({ status: 500 }, { status: 429, retryAfter: '1' }, { status: 200, delayMs: 1500 });
  await start();
  await send(incidentEvent('opened', incident()));
  await hook.waitFor((r) => r.some((x) => x.status === 200) && r.length >= 4);
  await settled();
  const statuses = hook.requests.map((r) => r.status);
  expect(statuses).toEqual([500, 429, 200, 200]);
  expect(new Set(hook.requests.map((r) => r.id)).size).toBe(1);
  expect(hook.requests[2].atMs - hook.requests[1].atMs).toBeGreaterThanOrEqual(950);
  expect(await listDeadLetters(redis)).toEqual([]);
}, 30_000);

test('a webhook answering 410 is disabled, its message dead-lettered, and operators are told by email; a 400 is not retried', async () => {
  hook.script({ status: 410 });
  await start();
  await send(incidentEvent('opened', incident({ id: 'inc-gone' })));
  await smtp.waitFor(2);
  await settled();
  expect(hook.requests.map((r) => r.status)).toEqual([410]);
  expect(await redis.hget(keys.disabledReceivers, 'siem')).toContain('410');
  const letters = await listDeadLetters(redis);
  expect(letters.map((l) => [l.receiver, l.error])).toEqual([['siem', 'HTTP 410 Gone: the receiver says it is gone']]);
  const ops = smtp.messages.find((m) => m.subject!.includes('receiver-disabled'));
  expect(ops?.text).toContain('re-enable with `xdp-ids alerts receiver enable siem`');

  await redis.hdel(keys.disabledReceivers, 'siem');
  hook.script({ status: 400 });
  await send(incidentEvent('opened', incident({ id: 'inc-bad-request' })));
  await hook.waitFor((r) => r.length >= 2);
  await settled();
  expect(hook.requests.map((r) => r.status)).toEqual([410, 400]);
  expect((await listDeadLetters(redis)).map((l) => l.error)).toEqual(['HTTP 410 Gone: the receiver says it is gone', 'HTTP 400 Bad Request']);
  await smtp.waitFor(4);
  expect(smtp.messages.filter((m) => m.subject!.includes('delivery-failed'))).toHaveLength(1);
}, 30_000);

test('mail queued while the SMTP server is down is delivered once when it comes back', async () => {
  await smtp.down();
  await start();
  await send(incidentEvent('opened', incident({ id: 'inc-smtp-down' })));
  await hook.waitFor((r) => r.length >= 1);
  await sleep(1500);
  expect(smtp.messages).toHaveLength(0);
  await smtp.up();
  await smtp.waitFor(1);
  await settled();
  expect(smtp.messages).toHaveLength(1);
  expect(smtp.messages[0].subject).toContain('OPENED');
}, 30_000);

test('an event of an unknown version is dead-lettered with the reason and reported to operators, and the alerter goes on', async () => {
  await start();
  await queue.add('incident', { ...incidentEvent('opened', incident()), v: 2 } as unknown as AlertEvent, { jobId: 'future-event' });
  await send(incidentEvent('opened', incident({ id: 'inc-after-bad' })));
  await smtp.waitFor(2);
  await settled();
  const letters = await listDeadLetters(redis);
  expect(letters.map((l) => [l.id, l.type, l.error])).toEqual([['event-future-event', 'event', 'unsupported alert event version 2 (this alerter reads version 1)']]);
  expect(smtp.messages.map((m) => m.subject).sort()).toEqual([
    expect.stringMatching(/^\[HIGH\] OPENED: SYN port scan — /),
    expect.stringMatching(/^\[HIGH\] OPENED: event-dead-lettered — alerter@/),
  ]);
});

test('exception events go to the ops route, grouped by code', async () => {
  await start();
  for (const component of ['sensor@a/eth0', 'sensor@b/eth0']) {
    await send({ v: ALERT_EVENT_VERSION, id: `silent-${component.replace(/\W/g, '')}`, atMs: Date.now(), kind: 'exception', code: 'sensor-silent', severity: 'high', component, message: `${component} sent no windows for 30s` });
  }
  await smtp.waitFor(1);
  await settled();
  expect(smtp.messages).toHaveLength(1);
  expect(smtp.messages[0].subject).toBe('[HIGH] OPENED: sensor-silent — sensor@a/eth0 → xdp-ids — system exception (+1 more)');
  expect(smtp.messages[0].text).toContain('sensor@b/eth0 sent no windows for 30s');
  expect(hook.requests).toHaveLength(0);
});

test('an alerter that starts on a backlog reports it to the ops route', async () => {
  for (const id of ['inc-q1', 'inc-q2', 'inc-q3', 'inc-q4', 'inc-q5']) await send(incidentEvent('opened', incident({ id })));
  await start(writeConfig(3));
  await smtp.waitFor(6);
  await settled();
  const backlog = smtp.messages.filter((m) => m.subject!.includes('queue-backlog'));
  expect(backlog).toHaveLength(1);
  expect(backlog[0].subject).toMatch(/^\[MEDIUM\] OPENED: queue-backlog — alerter@/);
  expect(backlog[0].text).toContain('5 jobs waiting in the alerts queue (alert above 3)');
  expect(smtp.messages).toHaveLength(6);
});
