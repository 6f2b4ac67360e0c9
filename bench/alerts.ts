/**
 * bench:alerts — detections per second through the alerter (validation, silences, inhibition,
 * routing, grouping and dedup in Redis, rendering, signing, delivery) to a local SMTP server and
 * webhook receiver, against a baseline measured in the same run: the same number of messages
 * sent straight through the alerter's own transports (pooled nodemailer, signed fetch) with the
 * same concurrency, without queues, grouping or rendering; and the same events consumed from a
 * BullMQ queue by a worker that does nothing (the floor any queue consumer on this Redis has).
 * Quick by default; BENCH_ALERTS_INCIDENTS and BENCH_ALERTS_DETECTIONS scale it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import pino from 'pino';
import { ALERTS_QUEUE, type AlertEvent } from '../common/alert-events';
import { connectRedis, startEmbeddedRedis } from '../common/redis';
import { loadConfig } from '../alerts/config';
import { emailTransport } from '../alerts/email';
import { renderEmail, renderWebhookBody } from '../alerts/render';
import { startAlerter } from '../alerts/service';
import { sendWebhook } from '../alerts/webhook';
import type { Notification } from '../alerts/types';
import { incident, incidentEvent } from '../test/support/alert-fixtures';
import { startTestSmtpServer } from '../test/support/smtp-server';
import { startTestWebhookReceiver } from '../test/support/webhook-receiver';

const INCIDENTS = Number(process.env.BENCH_ALERTS_INCIDENTS ?? 100);
const DETECTIONS = Number(process.env.BENCH_ALERTS_DETECTIONS ?? 100);
const CONCURRENCY = 8;
const SECRET = 'bench-webhook-secret-0123456789';

async function pool(n: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await task(next++);
  }));
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-bench-alerts-'));
  const redisServer = await startEmbeddedRedis();
  const redis = connectRedis(redisServer.url);
  const smtp = await startTestSmtpServer({ user: 'u', pass: 'p' });
  const hook = await startTestWebhookReceiver(SECRET);
  process.env.BENCH_SMTP_PASSWORD = 'p';
  process.env.BENCH_WEBHOOK_SECRET = SECRET;
  const configPath = path.join(dir, 'alerts.yaml');
  fs.writeFileSync(configPath, `
defaults: { group_wait: 200ms, group_interval: 1s, repeat_interval: 1h }
delivery: { concurrency: ${CONCURRENCY} }
receivers:
  - name: mail
    email: { host: 127.0.0.1, port: ${smtp.port}, ca_file: ${smtp.caFile}, username: u, password_env: BENCH_SMTP_PASSWORD, from: ids@example.test, to: [soc@example.test] }
  - name: hook
    webhook: { url: '${hook.url}', allow_http: true, secret_env: BENCH_WEBHOOK_SECRET }
routes:
  - receivers: [mail, hook]
`);
  try {
    const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
    console.log(`machine: ${cpu}, ${os.cpus().length} CPUs, Linux ${os.release()}, node ${process.version}`);
    console.log(`workload: ${INCIDENTS} incidents x ${DETECTIONS} detections = ${INCIDENTS * DETECTIONS} events; delivery concurrency ${CONCURRENCY}; STARTTLS + AUTH SMTP, signed webhooks, all local`);

    // Baseline: one rendered message per incident, sent directly.
    const config = loadConfig(configPath);
    const mailReceiver = config.receivers.get('mail');
    const hookReceiver = config.receivers.get('hook');
    if (mailReceiver?.type !== 'email' || hookReceiver?.type !== 'webhook') throw new Error('the bench config lost a receiver');
    const sample: Notification = { id: 'baseline', route: 'bench', groupLabels: {}, createdMs: Date.now(), items: [{ phase: 'opened', event: incidentEvent('opened', incident()), changes: [] }] };
    const email = renderEmail(sample);
    const body = renderWebhookBody(sample, 'json');
    const transport = emailTransport(mailReceiver);
    let t = performance.now();
    await pool(INCIDENTS, CONCURRENCY, async () => {
      await transport.sendMail({ from: 'ids@example.test', to: 'soc@example.test', ...email });
    });
    const baselineEmailsPerS = INCIDENTS / ((performance.now() - t) / 1000);
    transport.close();
    t = performance.now();
    await pool(INCIDENTS, CONCURRENCY, (i) => sendWebhook(hookReceiver, body, `baseline-${i}`));
    const baselineWebhooksPerS = INCIDENTS / ((performance.now() - t) / 1000);
    smtp.messages.length = 0;
    hook.requests.length = 0;

    const events: AlertEvent[] = [];
    for (let d = 0; d < DETECTIONS; d++) {
      for (let i = 0; i < INCIDENTS; i++) {
        const inc = incident({ id: `inc-${i}`, key: `198.18.${i >> 8}.${i & 255}`, detections: d + 1 });
        events.push(incidentEvent(d === 0 ? 'opened' : 'updated', inc, `e-${i}-${d}`));
      }
    }
    const enqueue = async (q: Queue<AlertEvent>): Promise<void> => {
      for (let k = 0; k < events.length; k += 1000) await q.addBulk(events.slice(k, k + 1000).map((e) => ({ name: e.kind, data: e, opts: { jobId: e.id } })));
    };
    const drained = async (q: Queue<AlertEvent>): Promise<void> => {
      while (Object.values(await q.getJobCounts('wait', 'active', 'delayed', 'prioritized')).some((n) => n > 0)) await new Promise((r) => setTimeout(r, 20));
    };

    // The floor: the same jobs through BullMQ to a worker that does nothing.
    const floorQueue = new Queue<AlertEvent>('bench-floor', { connection: redis });
    const floorConnection = connectRedis(redisServer.url);
    const floorWorker = new Worker('bench-floor', async () => 'ok', { connection: floorConnection, concurrency: 16 });
    t = performance.now();
    await enqueue(floorQueue);
    await drained(floorQueue);
    const floorPerS = events.length / ((performance.now() - t) / 1000);
    await floorWorker.close();
    floorConnection.disconnect();
    await floorQueue.obliterate({ force: true });
    await floorQueue.close();

    // The alerter: every detection of every incident goes through the queue.
    const alerter = await startAlerter({ redisUrl: redisServer.url, configPath, log: pino({ level: 'silent' }) });
    const queue = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
    t = performance.now();
    await enqueue(queue);
    const enqueueSeconds = (performance.now() - t) / 1000;
    await drained(queue);
    const ingestSeconds = (performance.now() - t) / 1000;
    await smtp.waitFor(INCIDENTS, 600_000);
    await hook.waitFor((r) => r.length >= INCIDENTS, 600_000);
    const seconds = (performance.now() - t) / 1000;
    // Anything beyond one message per incident and receiver would be a dedup failure; give it a moment to show.
    await new Promise((r) => setTimeout(r, 1500));
    const emails = smtp.messages.length;
    const webhooks = hook.requests.length;
    await queue.close();
    await alerter.stop();

    const detectionsPerS = events.length / ingestSeconds;
    const emailsPerS = emails / seconds;
    const webhooksPerS = webhooks / seconds;
    console.log(`baseline: ${baselineEmailsPerS.toFixed(1)} emails/s (nodemailer direct), ${baselineWebhooksPerS.toFixed(1)} webhooks/s (signed POST direct), ${floorPerS.toFixed(0)} jobs/s through BullMQ to a no-op worker`);
    console.log(`alerter: ${events.length} detections queued in ${enqueueSeconds.toFixed(2)} s, all grouped by ${ingestSeconds.toFixed(2)} s = ${detectionsPerS.toFixed(0)} detections/s; every message delivered by ${seconds.toFixed(2)} s`);
    console.log(`messages: ${emails} emails + ${webhooks} webhooks for ${INCIDENTS} incidents (${(events.length / (emails + webhooks)).toFixed(0)} detections per message)`);
    console.log(`alerter detections/s vs the no-op BullMQ floor: ${(detectionsPerS / floorPerS).toFixed(2)}x`);
    console.log(`alerter message rate vs direct sending: emails ${(emailsPerS / baselineEmailsPerS).toFixed(2)}x, webhooks ${(webhooksPerS / baselineWebhooksPerS).toFixed(2)}x`);
    console.log(`wall time of the alerter run vs sending the same ${emails + webhooks} messages directly: ${(seconds / (emails / baselineEmailsPerS + webhooks / baselineWebhooksPerS)).toFixed(2)}x`);
    console.log(JSON.stringify({
      detections_per_s: Math.round(detectionsPerS), messages_sent: emails + webhooks, events_per_s: Math.round(detectionsPerS),
      emails_per_s: Number(emailsPerS.toFixed(1)), webhooks_per_s: Number(webhooksPerS.toFixed(1)),
      baseline_emails_per_s: Number(baselineEmailsPerS.toFixed(1)), baseline_webhooks_per_s: Number(baselineWebhooksPerS.toFixed(1)),
      baseline_queue_jobs_per_s: Math.round(floorPerS), ratio: Number((detectionsPerS / floorPerS).toFixed(3)),
      email_rate_ratio: Number((emailsPerS / baselineEmailsPerS).toFixed(3)), incidents: INCIDENTS, detections: events.length,
    }));
  } finally {
    redis.disconnect();
    await hook.stop();
    await smtp.stop();
    await redisServer.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench:alerts: ${err.stack}\n`);
  process.exit(1);
});
