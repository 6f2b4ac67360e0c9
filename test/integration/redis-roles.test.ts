/**
 * The per-role Redis ACL users (common/redis-roles.ts) on a real redis-server, through the real
 * code paths: a sensor cannot write the ledger (its Lua scripts fail with NOPERM and leave nothing
 * behind) but reads it, follows its broadcasts, publishes windows and exception events and keeps
 * its own keys; a detector consumes windows, opens incidents and blocks; the alerter delivers and
 * cannot touch the ledger; the control CLI changes the ledger. Every allowed path is checked
 * against Redis' ACL log, so a command a role needs and lacks cannot hide behind a retry.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Command } from 'commander';
import pino from 'pino';
import { mailboxConfig } from '../../alerts/config';
import { DELIVERY_QUEUE, keys } from '../../alerts/keys';
import { startAlerterWith } from '../../alerts/service';
import { startControlApi } from '../../blocking/api';
import { LedgerBlocker } from '../../blocking/blocker';
import { registerBlockingCommands } from '../../blocking/cli';
import { BlockLedger, CHANGES_CHANNEL, NS, type BlockPolicy } from '../../blocking/ledger';
import { LimitLedger } from '../../blocking/limits';
import { AlertQueueNotices } from '../../blocking/notices';
import { registerRedisCommands } from '../../bin/redis';
import { ALERTS_QUEUE, type AlertEvent } from '../../common/alert-events';
import { ExceptionReporter } from '../../common/exceptions';
import { serializeError } from '../../common/log';
import { connectRedis, describeRedisError, startEmbeddedRedis, urlWithCredentials, type RedisClient } from '../../common/redis';
import { resolveRedis } from '../../common/redis-config';
import { RedisMemoryWatch } from '../../common/redis-memory';
import { aclFileText, KEY_MAP, newRolePasswords, roleUrls, type Role } from '../../common/redis-roles';
import { NO_UNTRACKED, sourceWindowOf, type SensorTick, type SourceWindow } from '../../common/sensor-tick';
import { partitionQueue } from '../../common/windows-jobs';
import { INCIDENTS_PREFIX } from '../../detector/incidents';
import { Detector } from '../../detector/service';
import { QueuePublisher } from '../../sensor/publisher';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { until } from '../support/until';

const ADMIN_PASSWORD = 'test-admin-password-0123456789';
const SCANNER = '198.18.0.66';
const POLICY: BlockPolicy = {
  ladderMs: [], strikeMemoryMs: 60_000, maxTtlMs: 86_400_000, verified: { maxNewPerMinute: 100, maxActive: 100 }, unverified: { maxNewPerMinute: 100, maxActive: 100 },
  unverifiedTtlMs: 60_000, unverifiedMemoryMs: 60_000, breakerMs: 60_000, capacity: 1000,
};

function scanTick(sensor: string, window: number): SensorTick {
  const scan: SourceWindow = sourceWindowOf(SCANNER, { packets: 400, bytes: 24_000, syn: 400, distinctPorts: 380, distinctHosts: 1 });
  const endMs = Date.now();
  return { sensor, iface: 'lab0', window, startMs: endMs - 1000, endMs, sources: [scan], destinations: [], untracked: { ...NO_UNTRACKED }, globals: {}, trackedSources: 1, evictedSources: 0 };
}

interface Denial {
  username: string;
  reason: string;
  object: string;
}

describe('Redis ACL roles on a real redis-server', () => {
  let server: TestRedis;
  let urls: Record<Role, string>;
  let admin: RedisClient;
  const connections: RedisClient[] = [];

  /** A connection as a role that fails commands at once instead of waiting for a Redis that will not change its mind. */
  function as(role: Role): RedisClient {
    const c = connectRedis(urls[role], { maxRetriesPerRequest: 1 });
    connections.push(c);
    return c;
  }

  async function denials(): Promise<Denial[]> {
    const entries = await admin.call('ACL', 'LOG') as unknown[][];
    return entries.map((flat) => {
      const e: Record<string, unknown> = {};
      for (let i = 0; i < flat.length; i += 2) e[String(flat[i])] = flat[i + 1];
      return { username: String(e.username), reason: String(e.reason), object: String(e.object) };
    });
  }

  const ledgerKeys = async (): Promise<string[]> => (await Promise.all(KEY_MAP.ledger.map((pattern) => admin.keys(pattern)))).flat().sort();

  beforeAll(async () => {
    const passwords = newRolePasswords();
    server = await testRedis({ acl: `${aclFileText(passwords)}user admin on >${ADMIN_PASSWORD} ~* &* +@all\n` });
    urls = roleUrls(server.url, passwords);
    admin = connectRedis(urlWithCredentials(server.url, 'admin', ADMIN_PASSWORD));
  });

  beforeEach(async () => {
    await admin.flushall();
    await admin.call('ACL', 'LOG', 'RESET');
  });

  afterAll(async () => {
    for (const c of connections) c.disconnect();
    admin?.disconnect();
    await server?.stop();
  });

  test('without credentials nothing is allowed: the default user is off', async () => {
    const anonymous = connectRedis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => null });
    anonymous.on('error', () => undefined);
    try {
      await expect(anonymous.get(`${NS}blocks:rev`)).rejects.toThrow(/NOAUTH|NOPERM/);
    } finally {
      anonymous.disconnect();
    }
  });

  test('a refused login is logged without the password (ioredis before 6.1 put it in its error)', async () => {
    const wrong = urlWithCredentials(server.url, 'xdp-ids-sensor', 'Wr0ng-password-value');
    const redis = connectRedis(wrong, { maxRetriesPerRequest: 1, retryStrategy: () => null });
    const err = await new Promise<Error>((resolve) => redis.once('error', resolve));
    redis.disconnect();
    let line = '';
    pino({ serializers: { err: serializeError } }, { write: (text: string) => { line += text; } }).error({ err }, 'login failed');
    expect(line).toContain('WRONGPASS');
    expect(line).not.toContain('Wr0ng-password-value');
    expect(describeRedisError(err, wrong)).toMatch(/^Redis at redis:\/\/xdp-ids-sensor:\*\*\*@127\.0\.0\.1:\d+ refused the credentials: WRONGPASS/);
  });

  test('a sensor cannot write the ledger: every ledger script fails with NOPERM and leaves it as it was', async () => {
    const detectorLedger = new BlockLedger(as('detector'));
    await detectorLedger.block({ target: '198.18.9.9/32', ttlMs: 60_000, origin: 'manual', evidence: 'manual', reason: 'before' }, POLICY);
    const before = await ledgerKeys();
    const entryBefore = await admin.get(`${NS}block:198.18.9.9/32`);

    const sensor = as('sensor');
    const ledger = new BlockLedger(sensor);
    const limits = new LimitLedger(sensor);
    const attempts: [string, () => Promise<unknown>][] = [
      ['block', () => ledger.block({ target: '198.18.2.66/32', ttlMs: 60_000, origin: 'rule', evidence: 'verified', reason: 'forged' }, POLICY)],
      ['unblock', () => ledger.unblock('198.18.9.9/32', 60_000)],
      ['allow', () => ledger.allow('0.0.0.0/0', 'everyone')],
      ['disallow', () => ledger.disallow('127.0.0.0/8')],
      ['sweep', () => ledger.sweepExpired(Date.now() + 86_400_000)],
      ['limit', () => limits.limit({ target: '198.18.0.1', traffic: 'syn', perSecond: 1, ttlMs: 60_000, origin: 'manual', reason: 'forged' })],
      ['unlimit', () => limits.unlimit('198.18.0.1', 'syn')],
      ['set', () => sensor.set(`${NS}block:198.18.2.66/32`, '{}')],
      ['expire', () => sensor.pexpire(`${NS}block:198.18.9.9/32`, 1)],
      ['publish', () => sensor.publish(CHANGES_CHANNEL, JSON.stringify({ target: '0.0.0.0/0' }))],
    ];
    for (const [what, attempt] of attempts) await expect(attempt().then(() => `${what} succeeded`)).rejects.toThrow(/NOPERM/);
    // A transaction with a refused command is refused as a whole.
    await expect(ledger.recordShadow({ target: '198.18.2.66/32' })).rejects.toThrow(/EXECABORT/);
    expect(await ledgerKeys()).toEqual(before);
    expect(await admin.get(`${NS}block:198.18.9.9/32`)).toBe(entryBefore);
    expect((await denials()).every((d) => d.username === 'xdp-ids-sensor')).toBe(true);
  });

  test('a sensor cannot reach past its keys: incidents, leases, alerter state, other commands', async () => {
    const sensor = as('sensor');
    for (const attempt of [
      () => sensor.set(`${INCIDENTS_PREFIX}:inc:x|y`, '1'), () => sensor.set('xdp-ids:partition:0', 'me'), () => sensor.get(keys.deadLetters),
      () => sensor.lpush(`bull:${DELIVERY_QUEUE}:wait`, '1'), () => sensor.keys('*'), () => sensor.scan('0'), () => sensor.flushall(),
      () => sensor.config('GET', 'requirepass'), () => sensor.call('ACL', 'LIST'), () => sensor.call('CLIENT', 'LIST'), () => sensor.select(1),
    ]) await expect(attempt()).rejects.toThrow(/NOPERM/);
  });

  test('a sensor reads the ledger, follows its broadcasts and keeps its own keys', async () => {
    const sensor = as('sensor');
    const subscriber = as('sensor');
    const changes: string[] = [];
    subscriber.on('message', (_channel: string, message: string) => changes.push(message));
    await subscriber.subscribe(CHANGES_CHANNEL);

    const detectorRedis = as('detector');
    const blocked = await new BlockLedger(detectorRedis).block({ target: '198.18.2.66/32', ttlMs: 60_000, origin: 'rule', evidence: 'verified', reason: 'scan' }, POLICY);
    await new LimitLedger(detectorRedis).limit({ target: '198.18.0.1', traffic: 'syn', perSecond: 100, ttlMs: 60_000, origin: 'rule', reason: 'flood' });
    await until('the broadcasts', () => changes.length === 2);
    expect(JSON.parse(changes[0])).toEqual({ target: '198.18.2.66/32' });

    const ledger = new BlockLedger(sensor);
    const snapshot = await ledger.snapshot();
    expect(snapshot.blocks).toEqual([blocked.status === 'blocked' ? blocked.entry : undefined]);
    expect((await new LimitLedger(sensor).list()).map((l) => l.target)).toEqual(['198.18.0.1']);
    expect(await ledger.get('198.18.2.66/32')).toMatchObject({ reason: 'scan' });

    await ledger.publishSensorAllows('host1/eth0', [{ target: '10.0.0.1/32', reason: 'gateway' }]);
    await ledger.recordSensorState('host1/eth0', { added: 2, removed: 1, refused: 0, failed: 0, retained: 0 }, { '198.18.2.66/32': 7 });
    // The ledger's writers refuse to block what a sensor must keep.
    expect(await new BlockLedger(detectorRedis).allowEntries()).toContainEqual({ target: '10.0.0.1/32', reason: 'gateway', source: 'sensor:host1/eth0' });
    expect(await denials()).toEqual([]);
  });

  test('windows travel from a sensor to a detector, which opens an incident and blocks; exceptions reach the alerts queue', async () => {
    const detectorRedis = as('detector');
    const notices = new AlertQueueNotices(detectorRedis);
    const blocker = new LedgerBlocker(new BlockLedger(detectorRedis), { component: 'test', hostAllow: [] }, notices, quietLogger);
    const detector = await Detector.start({ redisUrl: urls.detector, rulePaths: ['rules'], log: quietLogger, id: 'roles', blocker });
    const publisher = new QueuePublisher({ redisUrl: urls.sensor, sensorId: 'roles-sensor', log: quietLogger });
    const sensorAlerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: as('sensor') });
    try {
      for (let w = 1; w <= 3; w++) publisher.tick(scanTick('roles-sensor', w));
      await until('the scanner blocked through the ledger', async () => (await new BlockLedger(as('sensor')).snapshot()).blocks.length === 1 || undefined);
      expect(detector.stats().ticks).toBeGreaterThanOrEqual(1);
      expect(await admin.keys(`${INCIDENTS_PREFIX}:inc:*`)).not.toEqual([]);
      await new ExceptionReporter(sensorAlerts, 'sensor@roles', quietLogger, 0).report('ring-buffer-loss', 'medium', 'test');
      const events = await until('the incident and exception events', async () => {
        const kinds = (await new Queue<AlertEvent>(ALERTS_QUEUE, { connection: admin }).getJobs(['waiting'])).map((j) => j.data.kind);
        return kinds.includes('incident') && kinds.includes('exception') ? kinds : undefined;
      });
      expect(events).toContain('incident');
    } finally {
      await sensorAlerts.close();
      await publisher.close();
      await detector.stop();
      await notices.close();
    }
    expect(await denials()).toEqual([]);
  });

  test('the alerter delivers events and cannot touch the ledger or the incidents', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-roles-'));
    const mailbox = path.join(dir, 'alerts.mbox');
    const alerter = await startAlerterWith(mailboxConfig(mailbox), { redisUrl: urls.alerter, log: quietLogger });
    const sensorAlerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: as('sensor') });
    try {
      await new ExceptionReporter(sensorAlerts, 'sensor@roles', quietLogger, 0).report('sensor-detached', 'high', 'the XDP program is gone');
      await until('the email', () => fs.existsSync(mailbox) && fs.readFileSync(mailbox, 'utf8').includes('sensor-detached'), 30_000);
    } finally {
      await sensorAlerts.close();
      await alerter.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(await denials()).toEqual([]);
    const alerterRedis = as('alerter');
    const ledger = new BlockLedger(alerterRedis);
    for (const attempt of [
      () => ledger.snapshot(), () => ledger.block({ target: '198.18.2.66/32', ttlMs: 60_000, origin: 'rule', evidence: 'verified', reason: 'x' }, POLICY),
      () => alerterRedis.get(`${NS}blocks:rev`), () => alerterRedis.hgetall(`${INCIDENTS_PREFIX}:inc:a|b`), () => alerterRedis.zrange(`${NS}sensors`, '0', '-1'),
      () => alerterRedis.lpush(`bull:${partitionQueue(0)}:wait`, 'x'), () => alerterRedis.subscribe(CHANGES_CHANNEL),
    ]) await expect(attempt()).rejects.toThrow(/NOPERM/);
    expect(await ledgerKeys()).toEqual([]);
  });

  test('the control role runs the block, limit and allow CLI and the API\'s metrics', async () => {
    const program = new Command('xdp-ids').exitOverride();
    let out = '';
    program.configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => undefined });
    registerBlockingCommands(program);
    const saved = { ...process.env };
    process.env.XDP_IDS_REDIS_URL = urls.control;
    try {
      for (const args of [['block', 'add', '198.18.2.66'], ['block', 'list'], ['limit', 'add', '198.18.0.1', '--rate', '100'], ['allow', 'add', '198.18.3.0/24'],
        ['allow', 'list'], ['block', 'del', '198.18.2.66/32'], ['limit', 'del', '198.18.0.1', '--traffic', 'syn']]) {
        await program.parseAsync(args, { from: 'user' });
      }
    } finally {
      process.env = saved;
    }
    expect(out).toMatch(/^blocked 198\.18\.2\.66\/32 until/);
    expect(out).toContain('unblocked 198.18.2.66/32');
    const api = await startControlApi({ redisUrl: urls.control, host: '127.0.0.1', port: 0, tokens: [{ name: 'test', scope: 'read', secret: 'test-token-0123456789abcdef' }], log: quietLogger });
    try {
      const metrics = await fetch(`${api.url}/metrics`, { headers: { authorization: 'Bearer test-token-0123456789abcdef' } });
      expect(metrics.status).toBe(200);
    } finally {
      await api.close();
    }
    expect(await denials()).toEqual([]);
    const control = as('control');
    for (const attempt of [() => control.set(`${INCIDENTS_PREFIX}:inc:a|b`, '1'), () => control.lpush(`bull:${partitionQueue(0)}:wait`, 'x'), () => control.get(keys.silences)]) {
      await expect(attempt()).rejects.toThrow(/NOPERM/);
    }
  });

  test('the detector role sees Redis fill up: redis-memory-high once past 80 % of maxmemory, again after it fell below', async () => {
    const detectorRedis = as('detector');
    const reported: AlertEvent[] = [];
    const alerts = { add: async (_name: string, event: AlertEvent) => { reported.push(event); } } as unknown as Queue<AlertEvent>;
    const watch = new RedisMemoryWatch(detectorRedis, new ExceptionReporter(alerts, 'detector@roles', pino({ level: 'silent' }), 0), { log: quietLogger });
    const used = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    const fill = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) await admin.set(`filler:${i}`, 'x'.repeat(100_000));
    };
    try {
      await fill();
      expect(await watch.check()).toBe(false); // no maxmemory: no bound to approach
      await admin.config('SET', 'maxmemory', String(Math.ceil((await used()) / 0.9)));
      expect(await watch.check()).toBe(true);
      expect(await watch.check()).toBe(true);
      expect(reported.map((e) => e.kind === 'exception' && e.code)).toEqual(['redis-memory-high']);
      await admin.flushall();
      expect(await watch.check()).toBe(false);
      await fill();
      expect(await watch.check()).toBe(true);
      expect(reported).toHaveLength(2);
      expect(reported[0]).toMatchObject({ severity: 'high', component: 'detector@roles', details: { share: 0.8 } });
    } finally {
      await admin.flushall();
      await admin.config('SET', 'maxmemory', '0');
    }
    expect(await denials()).toEqual([]);
  });
});

describe('xdp-ids redis acl', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-acl-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function acl(args: string[]): Promise<{ out: string; error?: string }> {
    const program = new Command('xdp-ids').exitOverride();
    let out = '';
    program.configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => undefined });
    registerRedisCommands(program);
    try {
      await program.parseAsync(['redis', 'acl', ...args], { from: 'user' });
      return { out };
    } catch (err) {
      return { out, error: (err as Error).message };
    }
  }

  test('writes an ACL file redis-server loads and one URL file per role that the components use', async () => {
    const probe = await startEmbeddedRedis();
    const port = Number(new URL(probe.url).port);
    await probe.stop();
    const out = path.join(dir, 'secrets', 'users.acl');
    const written = await acl(['--out', out, '--url', `redis://127.0.0.1:${port}`]);
    expect(written.error).toBeUndefined();
    expect(written.out).toContain(`aclfile ${out}`);
    expect(fs.statSync(out).mode & 0o777).toBe(0o644);
    const aclText = fs.readFileSync(out, 'utf8');
    expect(aclText).toMatch(/^user default reset off\n/);
    const server = await startEmbeddedRedis({ acl: aclText, port });
    try {
      for (const role of ['sensor', 'detector', 'alerter', 'control']) {
        const file = path.join(dir, 'secrets', `redis-${role}.url`);
        expect(fs.statSync(file).mode & 0o777).toBe(0o600);
        const password = new URL(fs.readFileSync(file, 'utf8').trim()).password;
        expect(aclText).not.toContain(password);
        const connection = resolveRedis({}, { XDP_IDS_REDIS_URL_FILE: file })!.connection;
        const redis = connectRedis(connection, { maxRetriesPerRequest: 1 });
        try {
          expect(await redis.ping()).toBe('PONG');
        } finally {
          redis.disconnect();
        }
      }
    } finally {
      await server.stop();
    }
    expect((await acl(['--out', out])).error).toMatch(/already exist.*--force replaces them/);
    expect((await acl(['--out', out, '--force'])).error).toBeUndefined();
    expect(fs.readFileSync(out, 'utf8')).not.toBe(aclText);
    expect((await acl(['--out', path.join(dir, 'other.acl'), '--url', 'redis://u:pw@10.0.0.5:6379'])).error).toMatch(/leave the credentials out/);
  });

  test('behind Sentinel it also writes how replicas and Sentinels authenticate, as users with only their own rights', async () => {
    const out = path.join(dir, 'sentinel', 'users.acl');
    const written = await acl(['--out', out, '--url', 'redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/ids']);
    expect(written.error).toBeUndefined();
    const replication = path.join(dir, 'sentinel', 'redis-replication.conf');
    const sentinel = path.join(dir, 'sentinel', 'sentinel-auth.conf');
    expect(written.out).toContain(`${replication}: (0600) for every redis-server that may become a replica`);
    for (const file of [replication, sentinel]) expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const replicaPassword = /^masterauth (\S+)$/m.exec(fs.readFileSync(replication, 'utf8'))![1];
    expect(fs.readFileSync(replication, 'utf8')).toMatch(/^masteruser xdp-ids-replica$/m);
    expect(fs.readFileSync(sentinel, 'utf8')).toMatch(/^sentinel auth-user ids xdp-ids-sentinel\nsentinel auth-pass ids [\w-]{43}\n$/m);
    const aclText = fs.readFileSync(out, 'utf8');
    expect(aclText).not.toContain(replicaPassword);
    expect(aclText).toMatch(/^user xdp-ids-replica reset on #[0-9a-f]{64} resetkeys resetchannels -@all \+psync \+replconf \+ping$/m);
    // A Cluster's replicas need the replica user; there are no Sentinels.
    const cluster = path.join(dir, 'cluster', 'users.acl');
    expect((await acl(['--out', cluster, '--url', 'redis+cluster://10.0.0.5:6379'])).error).toBeUndefined();
    expect(fs.existsSync(path.join(dir, 'cluster', 'redis-replication.conf'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'cluster', 'sentinel-auth.conf'))).toBe(false);
  });

  test('the unix socket URLs of docker-compose.yml reach a redis-server that listens on no port', async () => {
    const socketDir = path.join(dir, 'socket');
    const out = path.join(socketDir, 'users.acl');
    const socket = path.join(socketDir, 'redis.sock');
    expect((await acl(['--out', out, '--url', `unix://${socket}`])).error).toBeUndefined();
    const server = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '600', '--aclfile', out, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    try {
      await until('the socket', () => fs.existsSync(socket));
      const sensorFile = path.join(socketDir, 'redis-sensor.url');
      expect(fs.readFileSync(sensorFile, 'utf8')).toMatch(new RegExp(`^unix://${socket}\\?username=xdp-ids-sensor&password=[\\w-]{43}\n$`));
      const resolved = resolveRedis({ redisUrlFile: sensorFile }, {})!;
      expect(resolved.warnings).toEqual([]);
      const redis = connectRedis(resolved.connection, { maxRetriesPerRequest: 1 });
      try {
        expect(await new BlockLedger(redis).snapshot()).toMatchObject({ rev: 0, blocks: [] });
        await expect(redis.set(`${NS}blocks:rev`, '1')).rejects.toThrow(/NOPERM/);
      } finally {
        redis.disconnect();
      }
    } finally {
      server.kill();
    }
  });
});
