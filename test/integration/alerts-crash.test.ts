/**
 * An alerter killed (SIGKILL) while a delivery is in flight, and another started on the same
 * Redis: every message reaches its receiver exactly once (a request the killed process never saw
 * answered does not count as delivered) and none is lost or dead-lettered. A kill in the instant
 * between a receiver's answer and the alerter's `sent` marker would repeat that message with the
 * same webhook-id / Message-ID (alerts/README.md); this test kills outside that instant.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { ALERTS_QUEUE, type AlertEvent } from '../../common/alert-events';
import { connectRedis, startEmbeddedRedis, type EmbeddedRedis, type RedisClient } from '../../common/redis';
import { listDeadLetters } from '../../alerts/dead-letters';
import { startAlerter, type Alerter } from '../../alerts/service';
import { incident, incidentEvent } from '../support/alert-fixtures';
import { quietLogger } from '../support/quiet-logger';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { startTestWebhookReceiver, type TestWebhookReceiver } from '../support/webhook-receiver';

const SECRET = 'crash-test-secret-0123456789';
const LOCK_MS = 1500;
/** Runs a TypeScript file in a fresh node, transpiled on load (the test must not depend on a build). */
const TS_RUNNER = `
const ts = require('typescript'); const fs = require('fs');
require.extensions['.ts'] = (m, f) => m._compile(ts.transpileModule(fs.readFileSync(f, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, f);
require(process.argv[1]);`;

let redisServer: EmbeddedRedis;
let redis: RedisClient;
let smtp: TestSmtpServer;
let hook: TestWebhookReceiver;
let dir: string;
let child: ChildProcess | undefined;
let alerter: Alerter | undefined;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-alerts-crash-'));
  redisServer = await startEmbeddedRedis();
  redis = connectRedis(redisServer.url);
  smtp = await startTestSmtpServer({ user: 'u', pass: 'p' });
  hook = await startTestWebhookReceiver(SECRET);
});

afterAll(async () => {
  child?.kill('SIGKILL');
  await alerter?.stop();
  redis?.disconnect();
  await hook?.stop();
  await smtp?.stop();
  await redisServer?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('killed mid-delivery and replaced: every message delivered exactly once', async () => {
  const configPath = path.join(dir, 'alerts.yaml');
  fs.writeFileSync(configPath, `
defaults: { group_wait: 100ms, group_interval: 200ms }
delivery: { backoff: 200ms }
receivers:
  - name: mail
    email: { host: 127.0.0.1, port: ${smtp.port}, ca_file: ${smtp.caFile}, username: u, password_env: CRASH_SMTP_PASSWORD, from: ids@example.test, to: [soc@example.test] }
  - name: hook
    webhook: { url: '${hook.url}', allow_http: true, secret_env: CRASH_WEBHOOK_SECRET, timeout: 10s }
routes:
  - receivers: [mail, hook]
`);
  const env = { ...process.env, CRASH_SMTP_PASSWORD: 'p', CRASH_WEBHOOK_SECRET: SECRET };
  process.env.CRASH_SMTP_PASSWORD = 'p';
  process.env.CRASH_WEBHOOK_SECRET = SECRET;
  hook.script({ status: 200, delayMs: 5000 });
  child = spawn(process.execPath, ['-e', TS_RUNNER, path.resolve(__dirname, '../support/alerter-process.ts')], {
    env: { ...env, TEST_ALERTER_REDIS_URL: redisServer.url, TEST_ALERTER_CONFIG: configPath, TEST_ALERTER_LOCK_MS: String(LOCK_MS) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child!.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child!.once('exit', (code) => reject(new Error(`alerter process exited with ${code}`)));
  });

  const queue = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
  const incidents = ['inc-a', 'inc-b', 'inc-c', 'inc-d', 'inc-e'];
  for (const id of incidents) {
    const e = incidentEvent('opened', incident({ id }));
    await queue.add(e.kind, e, { jobId: e.id });
  }
  // The first webhook hangs for 5 s; kill while it is in flight, once the others are through.
  await hook.waitFor((reqs, started) => started >= incidents.length && reqs.filter((r) => r.accepted).length === incidents.length - 1);
  await smtp.waitFor(incidents.length);
  await new Promise((resolve) => setTimeout(resolve, 300));
  child.kill('SIGKILL');
  await new Promise((resolve) => child!.once('exit', resolve));
  child = undefined;

  alerter = await startAlerter({ redisUrl: redisServer.url, configPath, log: quietLogger, lockDurationMs: LOCK_MS });
  const acceptedIds = (): string[] => hook.requests.filter((r) => r.accepted).map((r) => r.id);
  await hook.waitFor(() => new Set(acceptedIds()).size === incidents.length, 30_000);
  await smtp.waitFor(incidents.length, 30_000);
  // Time for a duplicate to show up if there were one.
  await new Promise((resolve) => setTimeout(resolve, 2 * LOCK_MS));
  await queue.close();

  expect(acceptedIds()).toHaveLength(incidents.length);
  const mailed = smtp.messages.map((m) => (m.text!.match(/Incident (inc-\w)/) ?? [])[1]).sort();
  expect(mailed).toEqual(incidents);
  const webhooked = hook.requests.filter((r) => r.accepted).map((r) => (r.body as any).alerts[0].xdp_ids.incident.id).sort();
  expect(webhooked).toEqual(incidents);
  expect(hook.requests.some((r) => !r.accepted)).toBe(true);
  expect(await listDeadLetters(redis)).toEqual([]);
}, 60_000);
