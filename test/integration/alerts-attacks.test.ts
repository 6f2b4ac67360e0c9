/**
 * One attacker episode, one thread of messages: the detector with the default rule pack and the
 * real alerter (default grouping, short timings) on a real redis-server, delivering to an SMTP
 * server and a mailbox. The windows of an nmap -sS (three rules fire for one source) and of a
 * decoy scan (six sources fire two rules at one destination at once) give an OPENED and a RESOLVED
 * message each; a rule that names the attack later is one repeat, not a new thread. The RESOLVED
 * message says what the kernel dropped of a blocked source and whether it was still sending.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ParsedMail } from 'mailparser';
import { ALERTS_QUEUE } from '../../common/alert-events';
import type { Blocker } from '../../common/block-requests';
import { connectRedis } from '../../common/redis';
import { NO_UNTRACKED, sourceWindowOf, type SensorTick, type SourceWindow } from '../../common/sensor-tick';
import { parseConfig } from '../../alerts/config';
import { DELIVERY_QUEUE, FLUSH_QUEUE } from '../../alerts/keys';
import { startAlerterWith, type Alerter } from '../../alerts/service';
import { BlockLedger } from '../../blocking/ledger';
import { Detector } from '../../detector/service';
import { QueuePublisher } from '../../sensor/publisher';
import { headerSample } from '../support/alert-fixtures';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { until } from '../support/until';

const SENSOR = 'sensor-k';

let redis: TestRedis;
let client: Redis;
let smtp: TestSmtpServer;
let dir: string;
let mailbox: string;
let detector: Detector;
let alerter: Alerter;
let publisher: QueuePublisher;
let window = 1000;

/** Blocks every source it is asked to, for two minutes, as an unverified block would. */
const blocker: Blocker = {
  async request(req) {
    return { status: 'blocked', target: req.target, evidence: 'unverified', expiresMs: Date.now() + 120_000, undo: `xdp-ids block del ${req.target}` };
  },
  async limit(req) {
    return { status: 'limited', target: req.target, traffic: req.traffic, perSecond: req.perSecond };
  },
};

/** One sensor window of these sources, with a sampled SYN from each to `target` (what a trip or sample carries). */
function send(target: string, sources: SourceWindow[]): void {
  for (const s of sources) publisher.sample({ sensor: SENSOR, reason: 'new-source', packet: headerSample({ src: s.src, dst: target, tsMs: Date.now() }) });
  const endMs = Date.now();
  const tick: SensorTick = {
    sensor: SENSOR, iface: 'lab0', window: window++, startMs: endMs - 1000, endMs, sources, destinations: [],
    untracked: { ...NO_UNTRACKED }, globals: {}, trackedSources: sources.length, evictedSources: 0,
  };
  publisher.tick(tick);
}

const scanner = (src: string, probes: number): SourceWindow => sourceWindowOf(src, { packets: probes, bytes: probes * 60, syn: probes, distinctPorts: probes, distinctHosts: 1 });

/** The messages (SMTP) that name an address. */
const about = (address: string): ParsedMail[] => smtp.messages.filter((m) => `${m.subject}\n${m.text}`.includes(address));

function mailboxMessages(): string[] {
  return fs.existsSync(mailbox) ? fs.readFileSync(mailbox, 'utf8').split(/^From xdp-ids .*\n/m).slice(1) : [];
}

/** Until the alerter has nothing waiting, delayed or running: every message it will send about what came is sent. */
async function settled(): Promise<void> {
  const queues = [ALERTS_QUEUE, FLUSH_QUEUE, DELIVERY_QUEUE].map((name) => new Queue(name, { connection: client }));
  try {
    await until('the alerter queues to settle', async () => {
      const counts = await Promise.all(queues.map((q) => q.getJobCounts('wait', 'delayed', 'active', 'prioritized')));
      return counts.every((c) => Object.values(c).every((n) => n === 0));
    }, 30_000);
  } finally {
    await Promise.all(queues.map((q) => q.close()));
  }
}

/** Until the RESOLVED message about an address has arrived and nothing more is on its way. */
async function resolvedAbout(address: string): Promise<ParsedMail[]> {
  await until(`the RESOLVED message about ${address}`, () => about(address).some((m) => m.subject!.includes('RESOLVED')), 45_000);
  await settled();
  return about(address);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-alerts-attacks-'));
  mailbox = path.join(dir, 'alerts.mbox');
  process.env.ATTACKS_TEST_SMTP_PASSWORD = 'p';
  redis = await testRedis();
  client = connectRedis(redis.url);
  smtp = await startTestSmtpServer({ user: 'u', pass: 'p' });
  // The built-in grouping (by attack), with timings short enough for a test.
  const config = parseConfig(`
defaults: { group_wait: 2s, group_interval: 2s }
receivers:
  - name: mail
    email: { host: 127.0.0.1, port: ${smtp.port}, ca_file: ${smtp.caFile}, username: u, password_env: ATTACKS_TEST_SMTP_PASSWORD, from: ids@example.test, to: [soc@example.test] }
  - name: box
    mailbox: { path: ${JSON.stringify(mailbox)} }
routes: [{ matchers: [kind=incident], receivers: [mail, box] }]
`, 'alerts.yaml');
  alerter = await startAlerterWith(config, { redisUrl: redis.url, log: quietLogger });
  detector = await Detector.start({ redisUrl: redis.url, rulePaths: ['rules'], log: quietLogger, id: 'attacks', resolveAfterMs: 1000, blocker });
  publisher = new QueuePublisher({ redisUrl: redis.url, sensorId: SENSOR, log: quietLogger });
});

afterAll(async () => {
  await publisher?.close();
  await detector?.stop();
  await alerter?.stop();
  client?.disconnect();
  await smtp?.stop();
  await redis?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an nmap -sS (vertical scan, slow scan and SYN flood on one source) is one OPENED and one RESOLVED, naming the scan; the RESOLVED says the blocked source kept sending', async () => {
  const src = '198.18.3.100';
  send('198.18.3.1', [scanner(src, 1000)]);
  const [opened] = await until('the OPENED message', () => (about(src).length ? about(src) : undefined));
  expect(opened.subject).toMatch(new RegExp(`^\\[MEDIUM\\] OPENED: Vertical TCP port scan — ${src} → 198\\.18\\.3\\.1 — blocked ${src}/32 until `));
  expect(opened.text).toContain('scan-tcp-vertical [MEDIUM] Vertical TCP port scan: 198.18.3.100\n');
  expect(opened.text).toContain('flood-syn [HIGH] SYN flood from one source: 198.18.3.100 (subsumed by scan-tcp-vertical)');
  expect(opened.text).toContain('scan-tcp-slow [LOW] Slow TCP port scan: 198.18.3.100 (subsumed by scan-tcp-vertical)');
  expect(opened.text).toContain('  distinct_ports >= 30: saw 1,000, threshold 30 (tripped)');
  expect(opened.text!.match(/^Sampled packet headers/gm)).toHaveLength(1);
  expect(opened.text!.match(/^Incident inc-\S+ \((scan-tcp-vertical|flood-syn|scan-tcp-slow), 198\.18\.3\.100\)$/gm)).toHaveLength(3);

  // The enforcer of a sensor reports what its kernel dropped of the block.
  const ledger = new BlockLedger(client);
  await ledger.publishSensorAllows(SENSOR, []);
  await ledger.recordSensorState(SENSOR, { added: 1, removed: 0, refused: 0, failed: 0, retained: 0 }, { [`${src}/32`]: 4321 });

  const messages = await resolvedAbout(src);
  expect(messages.map((m) => m.subject!.split(':')[0])).toEqual(['[MEDIUM] OPENED', '[MEDIUM] RESOLVED']);
  expect(messages[1].text).toMatch(new RegExp(`^Dropped:  ${src}/32: 4,321 packets dropped while blocked, the count last grew by \\S+Z: still knocking$`, 'm'));
  expect(messages[1].text).toContain('(subsumed by scan-tcp-vertical; its incident stays open until quiet for its 5 min window)');
  expect(mailboxMessages().filter((m) => m.includes(src))).toHaveLength(2);
}, 90_000);

test('a decoy scan (six sources, the same probes, one destination) is one OPENED and one RESOLVED naming every source', async () => {
  const sources = ['198.18.4.110', '198.18.4.254', '198.18.4.253', '198.18.4.252', '198.18.4.251', '198.18.4.250'];
  send('198.18.4.1', sources.map((s) => scanner(s, 170)));
  await until('the OPENED message', () => about(sources[0]).length > 0);
  const messages = await resolvedAbout(sources[0]);
  expect(messages.map((m) => m.subject!.split(':')[0])).toEqual(['[MEDIUM] OPENED', '[MEDIUM] RESOLVED']);
  for (const s of sources) expect(smtp.messages.filter((m) => m.text!.includes(s))).toHaveLength(2);
  expect(messages[0].text).toContain('scan-tcp-vertical [MEDIUM] Vertical TCP port scan: 6 sources\n');
  expect(messages[0].text).toContain('scan-tcp-slow [LOW] Slow TCP port scan: 6 sources (subsumed by scan-tcp-vertical)');
  expect(messages[0].text).toContain('Action:   6 sources: 6 blocked');
  for (const s of sources) expect(messages[0].text).toContain(`  ${s}: scan-tcp-vertical, scan-tcp-slow; blocked ${s}/32 until `);
}, 90_000);

test('a rule that names the attack later is one repeat of it with what changed, not a new thread', async () => {
  const src = '198.18.5.100';
  send('198.18.5.1', [scanner(src, 200)]);
  await until('the OPENED message', () => about(src).length > 0);
  send('198.18.5.1', [sourceWindowOf(src, { packets: 200, bytes: 12_000, udp: 200, distinctPorts: 200, distinctHosts: 1 })]);
  const messages = await resolvedAbout(src);
  expect(messages.map((m) => m.subject!.split(':')[0])).toEqual(['[MEDIUM] OPENED', '[MEDIUM] ONGOING', '[MEDIUM] RESOLVED']);
  expect(messages[1].subject).toContain('Vertical TCP port scan + UDP port scan');
  expect(messages[1].text).toContain('  - rules: scan-tcp-vertical → scan-tcp-vertical, scan-udp');
}, 90_000);
