/**
 * `xdp-ids incidents` and `xdp-ids status`, the built CLI as an operator runs it, as the control
 * role on a real redis-server with per-role ACL users, against a real detector and alerter: a
 * scan's incident is listed and shown, resolved by the CLI through a detector (with the RESOLVED
 * event queued for the alerter), and the status shows every part alive until one stops; the
 * exit codes say which (bin/exit-codes.ts).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RedisClient } from '../../common/redis';
import { parseConfig } from '../../alerts/config';
import { startAlerterWith, type Alerter } from '../../alerts/service';
import { startControlApi } from '../../blocking/api';
import { BlockLedger, sensorKey } from '../../blocking/ledger';
import { heartbeatKey } from '../../common/heartbeat';
import { connectRedis, urlWithCredentials } from '../../common/redis';
import { aclFileText, newRolePasswords, roleUrls, type Role } from '../../common/redis-roles';
import { NO_UNTRACKED, sourceWindowOf, type SensorTick } from '../../common/sensor-tick';
import { Detector } from '../../detector/service';
import { QueuePublisher } from '../../sensor/publisher';
import { SensorStatusWriter } from '../../sensor/status';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { until } from '../support/until';

const CLI = path.resolve(__dirname, '../../dist/bin/xdp-ids.js');
const ADMIN_PASSWORD = 'test-admin-password-0123456789';
const SCANNER = '198.18.170.66';
const SENSOR = 'console-host/lab0';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('incidents and status from the CLI', () => {
  let server: TestRedis;
  let urls: Record<Role, string>;
  let admin: RedisClient;
  let dir: string;
  let urlFiles: Record<Role, string>;

  /** Runs the CLI without blocking this process, where the detector and alerter run. */
  function cli(...args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, XDP_IDS_REDIS_URL_FILE: urlFiles.control, XDP_IDS_REDIS_URL: '' } },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
    });
  }

  function scanTick(window: number): SensorTick {
    const endMs = Date.now();
    return {
      sensor: SENSOR, iface: 'lab0', window, startMs: endMs - 1000, endMs, destinations: [], untracked: { ...NO_UNTRACKED }, globals: { packets: 400 }, trackedSources: 1, evictedSources: 0,
      sources: [sourceWindowOf(SCANNER, { packets: 400, bytes: 24_000, syn: 400, distinctPorts: 380, distinctHosts: 1 })],
    };
  }

  beforeAll(async () => {
    const passwords = newRolePasswords();
    server = await testRedis({ acl: `${aclFileText(passwords)}user admin on >${ADMIN_PASSWORD} ~* &* +@all\n` });
    urls = roleUrls(server.url, passwords);
    admin = connectRedis(urlWithCredentials(server.url, 'admin', ADMIN_PASSWORD));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-console-'));
    urlFiles = Object.fromEntries(Object.entries(urls).map(([role, url]) => {
      const file = path.join(dir, `redis-${role}.url`);
      fs.writeFileSync(file, `${url}\n`, { mode: 0o600 });
      return [role, file];
    })) as Record<Role, string>;
  });

  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a scan\'s incident is listed, shown and resolved by the CLI through a detector; status is ok with every part alive and degraded (exit 3) when one is gone', async () => {
    const detector = await Detector.start({ redisUrl: urls.detector, rulePaths: ['rules'], log: quietLogger, id: 'console-detector', resolveAfterMs: 600_000 });
    let alerter: Alerter | undefined = await startAlerterWith(parseConfig(`
defaults: { group_wait: 1s, group_interval: 1s }
receivers: [{ name: local-mailbox, mailbox: { path: ${JSON.stringify(path.join(dir, 'mbox'))} } }]
routes: [{ receivers: [local-mailbox] }]
`, 'test'), { redisUrl: urls.alerter, log: quietLogger, id: 'console-alerter' });
    const publisher = new QueuePublisher({ redisUrl: urls.sensor, sensorId: SENSOR, log: quietLogger });
    const status = new SensorStatusWriter(urls.sensor, quietLogger);
    const sensorLedger = connectRedis(urls.sensor);
    let detectorRunning = true;
    let ticking: NodeJS.Timeout | undefined;
    try {
      // What a running sensor writes: its status (sensor/status.ts) and, through its enforcer, its place in the live sensors.
      status.describe({ sensor: SENSOR, iface: 'lab0', mode: 'generic', attachedMs: Date.now(), windowMs: 1000, sourceCapacity: 65_536 }, () => true);
      await new BlockLedger(sensorLedger).publishSensorAllows(SENSOR, []);
      for (let w = 0; w < 3; w++) {
        const tick = scanTick(w);
        status.tick(tick);
        publisher.tick(tick);
      }
      // The sensor goes on ticking, quietly, while it lives.
      let window = 3;
      ticking = setInterval(() => status.tick({ ...scanTick(window++), sources: [] }), 1000);
      const listed = await until('the scan\'s incident is listed', async () => {
        const r = await cli('incidents', 'list', '--json');
        const rows = r.code === 0 ? JSON.parse(r.stdout) as { id: string; key: string; ruleId: string }[] : [];
        return rows.find((row) => row.key.startsWith(SCANNER));
      });

      // The CLI's JSON is the control API's (GET /v1/incidents, GET /v1/incidents/<rule>/<key>).
      const api = await startControlApi({ redisUrl: urls.control, host: '127.0.0.1', port: 0, tokens: [{ name: 'ops', scope: 'read', secret: 'console-test-token-0123456789' }], log: quietLogger });
      try {
        const get = async (route: string): Promise<unknown> => (await fetch(`${api.url}${route}`, { headers: { authorization: 'Bearer console-test-token-0123456789' } })).json();
        const [fromCli, fromApi] = await Promise.all([cli('incidents', 'list', '--json'), get('/v1/incidents')]);
        expect({ incidents: JSON.parse(fromCli.stdout) }).toEqual(fromApi);
        const [oneCli, oneApi] = await Promise.all([cli('incidents', 'show', listed.id, '--json'), get(`/v1/incidents/${listed.ruleId}/${listed.key}`)]);
        expect(JSON.parse(oneCli.stdout)).toEqual(oneApi);
      } finally {
        await api.close();
      }

      const table = await cli('incidents', 'list');
      expect(table.code).toBe(0);
      expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+SEVERITY\s+RULE\s+KEY\s+OPENED\s+DETECTIONS\s+STATUS\s+ACTION$/);
      expect(table.stdout).toContain(listed.id);
      expect((await cli('incidents', 'list', '--rule', 'no-such-rule', '--json')).stdout.trim()).toBe('[]');

      const shown = await cli('incidents', 'show', listed.id);
      expect(shown.code).toBe(0);
      expect(shown.stdout).toContain(listed.ruleId);
      expect(shown.stdout).toMatch(/^Conditions$/m);
      expect(shown.stdout).toMatch(/status\s+open/);
      const missing = await cli('incidents', 'show', 'inc-00000000-0000-0000-0000-000000000000');
      expect(missing.code).toBe(3);
      expect(missing.stderr).toMatch(/no incident inc-0{8}/);

      await until('the sensor is reported', async () => (await admin.exists(sensorKey(SENSOR, 'status'))) === 1);
      const ok = await cli('status');
      expect(ok).toEqual({ code: 0, stderr: '', stdout: expect.stringMatching(/status: ok\n$/) });
      expect(ok.stdout).toMatch(new RegExp(`^${SENSOR.replace('/', '\\/')}\\s+alive\\s+lab0\\s+generic`, 'm'));
      expect(ok.stdout).toMatch(/^console-detector\s+alive\s+[\d.]+ m?s ago\s+16\s/m);
      expect(ok.stdout).toMatch(/^console-alerter\s+alive\s.*local-mailbox$/m);
      expect(ok.stdout).toMatch(/partitions: 16 of 16 consumed\nstatus: ok\n$/);
      const json = JSON.parse((await cli('status', '--json')).stdout) as { detectors: { id: string; state: { partitions: number[]; lagSeconds?: number; model: string | null } }[]; partitions: string[]; problems: string[] };
      expect(json.problems).toEqual([]);
      expect(json.partitions).toEqual(Array(16).fill('console-detector'));
      expect(json.detectors[0].state.partitions).toHaveLength(16);
      expect(json.detectors[0].state.lagSeconds).toBeGreaterThanOrEqual(0);
      expect(json.detectors[0].state.model).toBeNull();

      const resolved = await cli('incidents', 'resolve', listed.id);
      expect(resolved.stderr).toBe('');
      expect(resolved.code).toBe(0);
      expect(resolved.stdout).toMatch(new RegExp(`^resolved ${listed.id} \\(.*\\) at \\S+ by cli:\\S+@\\S+\\n$`));
      const after = JSON.parse((await cli('incidents', 'show', listed.id, '--json')).stdout) as { incident: { resolvedBy?: string; resolvedMs?: number } };
      expect(after.incident.resolvedBy).toMatch(/^cli:/);
      expect((await cli('incidents', 'list', '--json')).stdout).not.toContain(listed.id);
      expect((await cli('incidents', 'list', '--all', '--json')).stdout).toContain(listed.id);
      expect((await cli('incidents', 'resolve', listed.id)).stdout).toMatch(/^already resolved/);
      // The attack (its three rules' incidents) is over when all its incidents are: then the alerter says so.
      const others = (JSON.parse((await cli('incidents', 'list', '--source', SCANNER, '--json')).stdout) as { id: string }[]).map((i) => i.id);
      expect(others.length).toBeGreaterThan(0);
      expect((await cli('incidents', 'resolve', ...others)).stdout.split('\n').filter((l) => l.startsWith('resolved '))).toHaveLength(others.length);
      await until('the alerter delivered the RESOLVED alert', async () => /RESOLVED/.test(fs.readFileSync(path.join(dir, 'mbox'), 'utf8')) || undefined);
      // Quoted-printable may break the line anywhere: the text part, joined.
      expect(fs.readFileSync(path.join(dir, 'mbox'), 'utf8').replace(/=\n/g, '')).toMatch(/resolved \S+ by cli:\S+@\S+/);

      await alerter.stop();
      alerter = undefined;
      const noAlerter = await cli('status');
      expect(noAlerter.code).toBe(3);
      expect(noAlerter.stdout).toMatch(/status: degraded:\n {2}- no alerter is running/);

      // A detector that crashed leaves its heartbeat behind, ageing.
      await admin.hset(heartbeatKey('detector'), 'crashed-detector', JSON.stringify({ id: 'crashed-detector', host: 'h', pid: 1, startedMs: 0, atMs: Date.now() - 60_000, state: { partitions: [], model: null, rulesVersion: null } }));
      const crashed = await cli('status');
      expect(crashed.code).toBe(3);
      expect(crashed.stdout).toMatch(/^crashed-detector\s+late\s/m);
      expect(crashed.stdout).toMatch(/- detector crashed-detector stopped reporting \d+ s ago/);

      // With no detector, a resolve request is refused rather than left waiting.
      for (let w = 100; w < 103; w++) publisher.tick({ ...scanTick(w), sources: [sourceWindowOf('198.18.170.67', { packets: 400, bytes: 24_000, syn: 400, distinctPorts: 380, distinctHosts: 1 })] });
      const second = await until('a second incident', async () => (JSON.parse((await cli('incidents', 'list', '--json')).stdout) as { id: string }[])[0]);
      await detector.stop();
      detectorRunning = false;
      const refused = await cli('incidents', 'resolve', second.id);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/no detector is running to resolve/);
      const down = await cli('status', '--json');
      expect(down.code).toBe(3);
      expect((JSON.parse(down.stdout) as { problems: string[] }).problems).toEqual(expect.arrayContaining([expect.stringMatching(/^no detector is running/), expect.stringMatching(/^16 of 16 windows partitions have no detector/)]));
    } finally {
      clearInterval(ticking);
      await publisher.close();
      await status.close();
      sensorLedger.disconnect();
      await alerter?.stop();
      if (detectorRunning) await detector.stop();
    }
  }, 120_000);

  test('an unreachable Redis is exit 1 with what to fix, never a hang', async () => {
    const unreachable = path.join(dir, 'unreachable.url');
    fs.writeFileSync(unreachable, 'redis://xdp-ids-control:pw@127.0.0.1:1\n', { mode: 0o600 });
    const r = await new Promise<Run>((resolve) => execFile(process.execPath, [CLI, 'status', '--redis-url-file', unreachable], { encoding: 'utf8', timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, stdout, stderr })));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach Redis at redis:\/\/xdp-ids-control:\*+@127\.0\.0\.1:1/);
    expect(r.stderr).not.toContain(':pw@');
  });
});
