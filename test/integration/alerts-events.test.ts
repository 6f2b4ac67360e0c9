/**
 * Alert events that the alerter fails to ingest, against a real Redis, the real alerter, an SMTP
 * server and a webhook receiver: ingest is made to fail for real (the group's pending hash turned
 * into a string, so the grouping script meets WRONGTYPE). Nothing is lost, nothing doubled.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue, type JobsOptions } from 'bullmq';
import { Command } from 'commander';
import type { Redis } from 'ioredis';
import { ALERT_EVENT_JOB_OPTIONS, ALERT_EVENT_VERSION, ALERTS_QUEUE, type AlertEvent, type IncidentEvent } from '../../common/alert-events';
import { connectRedis, startEmbeddedRedis, type EmbeddedRedis } from '../../common/redis';
import { registerAlertsCommands } from '../../alerts/cli';
import { loadConfig } from '../../alerts/config';
import { listDeadLetters } from '../../alerts/dead-letters';
import { groupOf } from '../../alerts/grouping';
import { DELIVERY_QUEUE, FLUSH_QUEUE, keys } from '../../alerts/keys';
import { eventLabels } from '../../alerts/labels';
import { startAlerter, type Alerter } from '../../alerts/service';
import { readStats } from '../../alerts/stats';
import { incident, incidentEvent } from '../support/alert-fixtures';
import { quietLogger } from '../support/quiet-logger';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { until } from '../support/until';
import { startTestWebhookReceiver, type TestWebhookReceiver } from '../support/webhook-receiver';

const SECRET = 'events-test-secret-0123456789';
/** The producers' options with a short backoff: ten attempts take ten seconds, not eight minutes. */
const FAST: JobsOptions = { ...ALERT_EVENT_JOB_OPTIONS, backoff: { type: 'exponential', delay: 20 } };

let redisServer: EmbeddedRedis;
let redis: Redis;
let smtp: TestSmtpServer;
let hook: TestWebhookReceiver;
let queue: Queue<AlertEvent>;
let dir: string;
let configPath: string;
let alerter: Alerter;

async function cli(...args: string[]): Promise<string> {
  let out = '';
  const program = new Command('xdp-ids').exitOverride().configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => undefined });
  registerAlertsCommands(program);
  // The test server's URL carries its password, which --redis refuses (it would show in ps).
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

/** The pending hash of the group an incident event lands in on the `soc` route. */
function pendingKeyOf(event: IncidentEvent): string {
  const route = loadConfig(configPath).routes.find((r) => r.name === 'soc')!;
  return keys.pending(groupOf(route, eventLabels(event)).key);
}

/** Waits until no queue of the alerter has work waiting, delayed or running. */
async function settled(): Promise<void> {
  const queues = [queue, new Queue(FLUSH_QUEUE, { connection: redis }), new Queue(DELIVERY_QUEUE, { connection: redis })];
  try {
    await until('the alerter queues to settle', async () => {
      const counts = await Promise.all(queues.map((q) => q.getJobCounts('wait', 'delayed', 'active', 'prioritized')));
      return counts.every((c) => Object.values(c).every((n) => n === 0));
    });
  } finally {
    await Promise.all(queues.slice(1).map((q) => q.close()));
  }
}

const deliveredIncidents = (): string[] => hook.requests.filter((r) => r.status === 200)
  .map((r) => `${(r.body as any).alerts[0].xdp_ids.incident.id}:${(r.body as any).alerts[0].xdp_ids.phase}`);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-alerts-events-'));
  process.env.EVENTS_TEST_SMTP_PASSWORD = 'p';
  process.env.EVENTS_TEST_WEBHOOK_SECRET = SECRET;
  redisServer = await startEmbeddedRedis();
  redis = connectRedis(redisServer.url);
  smtp = await startTestSmtpServer({ user: 'u', pass: 'p' });
  hook = await startTestWebhookReceiver(SECRET);
  queue = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
  configPath = path.join(dir, 'alerts.yaml');
  fs.writeFileSync(configPath, `
defaults: { group_wait: 100ms, group_interval: 200ms, repeat_interval: 1h }
delivery: { backoff: 100ms }
receivers:
  - name: mail
    email: { host: 127.0.0.1, port: ${smtp.port}, ca_file: ${smtp.caFile}, username: u, password_env: EVENTS_TEST_SMTP_PASSWORD, from: ids@example.test, to: [ops@example.test] }
  - name: hook
    webhook: { url: '${hook.url}', allow_http: true, secret_env: EVENTS_TEST_WEBHOOK_SECRET }
routes:
  - name: ops
    matchers: [kind=exception]
    receivers: [mail]
    group_by: [code]
  - name: soc
    matchers: [kind=incident]
    receivers: [hook]
`);
  alerter = await startAlerter({ redisUrl: redisServer.url, configPath, log: quietLogger });
});

afterEach(() => {
  hook.requests.length = 0;
  smtp.messages.length = 0;
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

test('an event that meets a Redis error is retried, and delivered once when the error is gone', async () => {
  const before = await readStats(redis);
  const event = incidentEvent('opened', incident({ id: 'inc-retried' }));
  const pending = pendingKeyOf(event);
  await redis.set(pending, 'not a hash');
  await queue.add(event.kind, event, { ...FAST, jobId: event.id });

  await until('two retries', async () => (await readStats(redis))['event-retries'] >= before['event-retries'] + 2);
  expect(hook.requests).toHaveLength(0);
  await redis.del(pending);

  await hook.waitFor((r) => r.length >= 1);
  await settled();
  expect(deliveredIncidents()).toEqual(['inc-retried:opened']);
  expect(await listDeadLetters(redis)).toEqual([]);
  expect((await readStats(redis))['event-dead-letters']).toBe(before['event-dead-letters']);
});

test('an event still failing after its attempts is dead-lettered with its error, reported, counted, and delivered once by `dlq replay` after the repair', async () => {
  const before = await readStats(redis);
  const event = incidentEvent('opened', incident({ id: 'inc-dead-lettered' }));
  const pending = pendingKeyOf(event);
  await redis.set(pending, 'not a hash');
  await queue.add(event.kind, event, { ...FAST, jobId: event.id, attempts: 4 });

  const letter = await until('the dead letter', async () => (await listDeadLetters(redis)).find((l) => l.id === `event-${event.id}`));
  expect(letter).toMatchObject({ type: 'event', attempts: 4, maxAttempts: 4, data: event });
  expect(letter.error).toMatch(/WRONGTYPE/);
  expect(await readStats(redis)).toMatchObject({ 'event-retries': before['event-retries'] + 3, 'event-dead-letters': before['event-dead-letters'] + 1 });
  expect(await cli('stats')).toMatch(new RegExp(`^event-dead-letters +${before['event-dead-letters'] + 1}$`, 'm'));
  expect(await cli('dlq', 'list')).toMatch(new RegExp(`^event-${event.id} +event +- .* 4 +.*WRONGTYPE`, 'm'));
  const [report] = await smtp.waitFor(1);
  expect(report.subject).toContain('event-dead-lettered');
  expect(report.text).toContain(`xdp-ids alerts dlq show event-${event.id}`);
  expect(await queue.getFailedCount()).toBe(0);
  expect(hook.requests).toHaveLength(0);

  await redis.del(pending);
  expect(await cli('dlq', 'replay', letter.id)).toBe('replayed 1 dead letter\n');
  await hook.waitFor((r) => r.length >= 1);
  await settled();
  expect(deliveredIncidents()).toEqual(['inc-dead-lettered:opened']);
  expect(await cli('dlq', 'list')).toBe('no dead letters\n');
});

test('a malformed event is dead-lettered at once, without retries', async () => {
  const before = await readStats(redis);
  const bad = { ...incidentEvent('opened', incident({ id: 'inc-malformed' })), v: ALERT_EVENT_VERSION, phase: 'reopened' } as unknown as AlertEvent;
  await queue.add(bad.kind, bad, { ...FAST, jobId: 'malformed-event' });

  const letter = await until('the dead letter', async () => (await listDeadLetters(redis)).find((l) => l.id === 'event-malformed-event'));
  expect(letter).toMatchObject({ type: 'event', attempts: 1, maxAttempts: 1 });
  expect(letter.error).toMatch(/^malformed alert event: phase/);
  await settled();
  expect(await readStats(redis)).toMatchObject({ 'event-retries': before['event-retries'], 'event-dead-letters': before['event-dead-letters'] + 1 });
});
