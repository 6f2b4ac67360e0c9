/**
 * The fleet lab: three sites, each a network namespace lab whose monitored veth an `xdp-ids
 * sensor` process watches, two `xdp-ids detector` and two `xdp-ids alerter` processes, on Redis
 * behind Sentinel (1 primary, 1 replica, 3 Sentinels) and on a 3-primary Redis Cluster, every
 * process connected as its ACL role. A real nmap in a namespace plugged into all three sites
 * scans them at once. Then parts fail with SIGKILL: a detector mid-attack, the Redis primary
 * (Sentinel), an alerter mid-delivery, and a sensor that is restarted during an attack. The
 * kernels are read from the sensors' pinned maps, the messages at a real webhook receiver.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { freePort } from '../../common/redis';
import { partitionOf, partitionQueue } from '../../common/windows-jobs';
import { IncidentStore } from '../../detector/incidents';
import { Fleet, SITES, type Scanner } from '../support/fleet';
import { startRedisCluster, startSentinelSet } from '../support/redis-ha';
import type { Role } from '../../common/redis-roles';
import { until } from '../support/until';

const CLI = path.resolve(__dirname, '../../dist/bin/xdp-ids.js');

/** The fields of a BullMQ event stream entry. */
function fieldsOf(flat: string[]): Record<string, string> {
  return Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]]));
}

/** The windows of `sensor` that a detector finished, in the order it finished them. */
async function completedWindows(fleet: Fleet, sensor: string): Promise<number[]> {
  const events = await fleet.redis.xrange(`bull:${partitionQueue(partitionOf(sensor))}:events`, '-', '+');
  return events.map(([, f]) => fieldsOf(f)).filter((e) => e.event === 'completed' && e.jobId.startsWith(`${sensor}|`) && e.jobId.split('|').length === 3)
    .map((e) => Number(e.jobId.split('|')[1]));
}

/** Every window each sensor published so far has been evaluated: nothing waits or runs in their partitions. */
async function drained(fleet: Fleet): Promise<boolean> {
  for (let i = 0; i < SITES; i++) {
    if ((await fleet.sensorMetric(i, 'xdp_ids_sensor_publisher_backlog_jobs')) > 0) return false;
    const queue = `bull:${partitionQueue(partitionOf(fleet.sensorId(i)))}`;
    const [waiting, active] = await Promise.all([fleet.redis.llen(`${queue}:wait`), fleet.redis.llen(`${queue}:active`)]);
    if (waiting + active > 0) return false;
  }
  return true;
}

/** The incidents of `address`, as the detectors stored them (one per rule that fired). */
async function incidentsOf(fleet: Fleet, address: string): Promise<Array<{ ruleId: string; id: string }>> {
  const recent = await new IncidentStore(fleet.redis).listRecent();
  return recent.filter((i) => i.key === address).map((i) => ({ ruleId: i.ruleId, id: i.id }));
}

/** One scan that every site sees: one incident per rule, one attack, one opening message, a block in every kernel. Resolves to the ms from nmap's start to the last kernel's block. */
async function scanSeenEverywhere(fleet: Fleet, scanner: Scanner): Promise<number> {
  const startedMs = Date.now();
  const scan = fleet.synScan(scanner, '1-1000');
  await until('the scanner blocked in all three kernels', () => fleet.blockedAt(scanner.address).length === SITES, 60_000);
  const blockedMs = Date.now() - startedMs;
  await scan;
  await until('every window of the scan evaluated', () => drained(fleet), 30_000);
  await until('the attack announced', () => fleet.messagesAbout(scanner.address).some((m) => m.phase === 'opened'), 30_000);
  // Time for a second opening to arrive if there were one (three of the alerters' group intervals).
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const incidents = await incidentsOf(fleet, scanner.address);
  const rules = incidents.map((i) => i.ruleId);
  expect(new Set(rules).size).toBe(rules.length);
  expect(rules).toContain('scan-tcp-vertical');
  const messages = fleet.messagesAbout(scanner.address);
  expect(new Set(messages.map((m) => m.attack)).size).toBe(1);
  expect(messages.filter((m) => m.phase === 'opened')).toHaveLength(1);
  return blockedMs;
}

/** `xdp-ids status` as an operator runs it, with the control role's URL. */
function statusCommand(url: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'status', '--json'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, XDP_IDS_REDIS_URL: url, XDP_IDS_REDIS_URL_FILE: '' } },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
  });
}

/** SIGKILL of a sensor, an attack meanwhile, and a restart: when it says it is ready, its kernel holds the blocks decided while it was away. */
async function sensorRestartedDuringAttack(fleet: Fleet, scanner: Scanner): Promise<void> {
  const site = 2;
  await fleet.sensors[site]!.kill('SIGKILL');
  const scan = fleet.synScan(scanner, '1-1000');
  await until('the scanner blocked where sensors run', () => fleet.blockedAt(scanner.address).join() === '0,1', 60_000);
  // Nothing enforces the ledger at the third site: its XDP program runs on without its sensor.
  expect(fleet.blockedAt(scanner.address)).toEqual([0, 1]);
  const restartedMs = Date.now();
  await fleet.startSensor(site);
  const ready = await until('the restarted sensor to report ready', async () => {
    const report = (await fleet.status()).sensors.find((s) => s.sensor === fleet.sensorId(site));
    return report?.status && report.status.attachedMs >= restartedMs && report.status.ready && report;
  }, 60_000);
  expect(ready.health).toBe('alive');
  expect(fleet.blockedAt(scanner.address)).toEqual([0, 1, 2]);
  await scan;
}

/** SIGKILL of the alerter whose delivery is in flight: the other delivers every message, each exactly once. */
async function alerterKilledMidDelivery(fleet: Fleet, scanner: Scanner): Promise<void> {
  // The next message hangs at the receiver, so that it is in flight when its alerter dies.
  fleet.hook.script({ status: 200, delayMs: 20_000 });
  const started = fleet.hook.started;
  const scan = fleet.synScan(scanner, '1-1000');
  await until('a delivery in flight', () => fleet.hook.started > started, 60_000);
  const holder = await until('the alerter holding it', async () => {
    const pids = await connectedPids(new URL(fleet.hook.url).port);
    return fleet.alerters.find((a) => a.running && pids.includes(a.pid));
  }, 10_000);
  await holder.kill('SIGKILL');
  await scan;
  await until('the scan announced by the other alerter', () => fleet.messagesAbout(scanner.address).some((m) => m.phase === 'opened'), 60_000);
  await until('every window of the scan evaluated', () => drained(fleet), 30_000);
  // The receiver answers the request in flight to a sender that is gone (after the kill: the holder was found within 10 s).
  await until('the request in flight answered', () => fleet.hook.requests.some((r) => !r.accepted), 30_000);
  // Time for a second copy to arrive if there were one: the alerters' takeover time, twice.
  await new Promise((resolve) => setTimeout(resolve, 6000));
  const accepted = fleet.hook.requests.filter((r) => r.accepted).map((r) => r.id);
  expect(new Set(accepted).size).toBe(accepted.length);
  // The message in flight came again from the other alerter, under the same webhook-id (a receiver could tell a repeat).
  const inFlight = fleet.hook.requests.find((r) => !r.accepted)!;
  expect(accepted.filter((id) => id === inFlight.id)).toHaveLength(1);
  expect(fleet.messagesAbout(scanner.address).filter((m) => m.phase === 'opened')).toHaveLength(1);
  fleet.startAlerter();
}

/** SIGKILL of the detector holding the first sensor's partition during a scan: its partitions move, every window is evaluated once and in order, no incident doubles. */
async function detectorKilledMidAttack(fleet: Fleet, scanner: Scanner): Promise<void> {
  const status = await fleet.status();
  const partition = partitionOf(fleet.sensorId(0));
  const victimId = status.partitions[partition]!;
  const victim = fleet.detectors.find((d) => status.detectors.find((h) => h.id === victimId)?.pid === d.pid)!;
  const survivor = status.detectors.find((h) => h.id !== victimId && h.health === 'alive')!.id;
  const windowsBefore = await completedWindows(fleet, fleet.sensorId(0));

  // nmap slows to a crawl once its probes go unanswered (dropped): --min-rate keeps it going.
  const scan = fleet.synScan(scanner, '1-3000', ['--min-rate', '500', '--max-rate', '600']);
  await until('the scan under way', async () => (await completedWindows(fleet, fleet.sensorId(0))).length > windowsBefore.length + 1, 30_000);
  const killedMs = Date.now();
  await victim.kill('SIGKILL');
  await until('the survivor to hold every partition', async () => (await fleet.status()).partitions.every((p) => p === survivor), 30_000);
  const movedMs = Date.now() - killedMs;
  console.log(`Detector SIGKILL mid-attack: its partitions consumed by the other detector ${movedMs} ms later`);

  await until('the scanner blocked in all three kernels', () => fleet.blockedAt(scanner.address).length === SITES, 60_000);
  await scan;
  await until('every window evaluated', () => drained(fleet), 60_000);
  for (let i = 0; i < SITES; i++) {
    const windows = await completedWindows(fleet, fleet.sensorId(i));
    const first = windows[0];
    // Every window since the sensor started, once each, in its order: none lost, none evaluated twice.
    expect(windows).toEqual(Array.from({ length: windows.length }, (_, k) => first + k));
  }
  const rules = (await incidentsOf(fleet, scanner.address)).map((i) => i.ruleId);
  expect(new Set(rules).size).toBe(rules.length);
  expect(fleet.messagesAbout(scanner.address).filter((m) => m.phase === 'opened')).toHaveLength(1);
  fleet.startDetector();
}

/**
 * A describe block's Redis deployment and the fleet on it: started before its tests, stopped after
 * them. Its `it` prints the end of every part's log when a test fails.
 */
function fleetOn<R extends { roles: Record<Role, string>; url: string; stop(): Promise<void> }>(start: () => Promise<R>, name: string, subnet: number) {
  const lab = {} as { redis: R; fleet: Fleet };
  beforeAll(async () => {
    lab.redis = await start();
    lab.fleet = await new Fleet({ name, subnet, urls: lab.redis.roles, adminUrl: lab.redis.url }).start();
  }, 180_000);
  afterAll(async () => {
    await lab.fleet?.stop();
    await lab.redis?.stop();
  }, 60_000);
  const it = (title: string, body: () => Promise<void>, timeoutMs: number): void => test(title, async () => {
    try {
      await body();
    } catch (err) {
      console.log(lab.fleet.tails());
      throw err;
    }
  }, timeoutMs);
  return { lab, it };
}

describe('the fleet on Redis Sentinel (1 primary, 1 replica, 3 Sentinels)', () => {
  const { lab, it } = fleetOn(() => startSentinelSet('xifls'), 'xifls', 182);

  it('a scan seen by all three sensors: one incident per rule, one message, a block in all three kernels', async () => {
    console.log(`A scan seen by ${SITES} sensors: blocked in all ${SITES} kernels ${await scanSeenEverywhere(lab.fleet, lab.fleet.scanner(66))} ms after nmap started`);
  }, 120_000);

  it('SIGKILL of the Redis primary: the kernels keep dropping, the sensors catch up, a block decided after the failover reaches all three', async () => {
    const blocked = lab.fleet.scanner(67);
    await lab.fleet.synScan(blocked, '1-300');
    await until('the first scanner blocked everywhere', () => lab.fleet.blockedAt(blocked.address).length === SITES, 60_000);
    const dropsBefore = lab.fleet.sites.map((_, i) => lab.fleet.kernelBlocks(i).find((b) => b.prefix === `${blocked.address}/32`)!.drops);

    const killedMs = Date.now();
    const killedPort = await lab.redis.killPrimary();
    // While Redis has no primary, the kernels enforce what they hold.
    await lab.fleet.synScan(blocked, '2000-2100');
    const dropsDuring = lab.fleet.sites.map((_, i) => lab.fleet.kernelBlocks(i).find((b) => b.prefix === `${blocked.address}/32`)!.drops);
    dropsDuring.forEach((n, i) => expect(n).toBeGreaterThan(dropsBefore[i]));

    await until('a new primary', async () => (await lab.redis.primaryPort().catch(() => killedPort)) !== killedPort, 60_000);
    await until('the sensors to catch up', () => drained(lab.fleet), 60_000);
    const caughtUpMs = Date.now();
    for (let i = 0; i < SITES; i++) expect(await lab.fleet.sensorMetric(i, 'xdp_ids_sensor_publisher_dropped_jobs_total')).toBe(0);
    console.log(`Sentinel failover under the fleet: ${caughtUpMs - killedMs} ms from SIGKILL of the primary until every sensor's windows were evaluated`);

    const blockedMs = await scanSeenEverywhere(lab.fleet, lab.fleet.scanner(68));
    console.log(`A scan after the failover: blocked in all ${SITES} kernels ${blockedMs} ms after nmap started`);
    expect(await lab.redis.aclLog()).toBe('');
  }, 240_000);

  it('SIGKILL of an alerter mid-delivery: the other delivers every message, each exactly once', async () => {
    await alerterKilledMidDelivery(lab.fleet, lab.fleet.scanner(69));
  }, 180_000);

  it('SIGKILL of a detector mid-attack: its partitions move, no window is lost or reordered, no incident doubles', async () => {
    await detectorKilledMidAttack(lab.fleet, lab.fleet.scanner(71));
  }, 180_000);

  it('a sensor restarted during an attack re-syncs its blocks before it reports ready', async () => {
    await sensorRestartedDuringAttack(lab.fleet, lab.fleet.scanner(70));
  }, 180_000);
});

describe('the fleet on a 3-primary Redis Cluster', () => {
  const { lab, it } = fleetOn(startRedisCluster, 'xiflc', 186);

  it('`xdp-ids status` reads the whole fleet off the cluster', async () => {
    const { code, out } = await statusCommand(lab.redis.roles.control);
    expect(out).not.toMatch(/CROSSSLOT|error/i);
    expect(code).toBe(0);
    const status = JSON.parse(out);
    expect(status.sensors.map((s: { health: string }) => s.health)).toEqual(['alive', 'alive', 'alive']);
    expect(status.partitions.every((p: string | null) => p !== null)).toBe(true);
  }, 60_000);

  it('a scan seen by all three sensors: one incident per rule, one message, a block in all three kernels', async () => {
    console.log(`A scan seen by ${SITES} sensors: blocked in all ${SITES} kernels ${await scanSeenEverywhere(lab.fleet, lab.fleet.scanner(66))} ms after nmap started`);
  }, 120_000);

  it('the control API behind the dashboard reads the fleet off the cluster, and a block made there reaches every kernel', async () => {
    const port = await freePort();
    const secret = randomBytes(24).toString('hex');
    lab.fleet.spawn('api', 'control', ['api', '--listen', `127.0.0.1:${port}`], { XDP_IDS_API_TOKENS: `ops:write:${secret}` });
    const call = async (method: string, route: string, body?: unknown): Promise<{ status: number; json: any }> => {
      const res = await fetch(`http://127.0.0.1:${port}${route}`, {
        method, headers: { authorization: `Bearer ${secret}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, json: await res.json() };
    };
    await until('the API up', async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok, 30_000);
    // Every listing the dashboard's pages read.
    for (const route of ['/v1/incidents', '/v1/rules', '/v1/blocks', '/v1/limits', '/v1/allows', '/v1/alerts/deliveries', '/v1/alerts/dead-letters']) {
      expect([route, (await call('GET', route)).status]).toEqual([route, 200]);
    }
    const { json: { sensors } } = await call('GET', '/v1/sensors');
    expect(sensors.map((s: { sensor: string; status?: { ready: boolean } }) => [s.sensor, s.status?.ready]).sort()).toEqual([0, 1, 2].map((i) => [lab.fleet.sensorId(i), true]));
    const { json: { incidents } } = await call('GET', '/v1/incidents');
    expect(incidents.some((i: { key: string }) => i.key === '198.18.189.66')).toBe(true);
    const detail = await call('GET', '/v1/incidents/scan-tcp-vertical/198.18.189.66');
    expect(detail.status).toBe(200);
    expect(detail.json.ledger.block.target).toBe('198.18.189.66/32');

    const target = '198.18.189.99';
    const added = await call('POST', '/v1/blocks', { target, ttl: '10m', reason: 'fleet lab' });
    expect(added.status).toBe(201);
    await until('the block in every kernel', () => lab.fleet.blockedAt(target).length === SITES, 30_000);
    expect((await call('DELETE', `/v1/blocks/${target}/32`)).status).toBe(200);
    await until('the block gone from every kernel', () => lab.fleet.blockedAt(target).length === 0, 30_000);
  }, 60_000);

  it('SIGKILL of a detector mid-attack: its partitions move, no window is lost or reordered, no incident doubles', async () => {
    await detectorKilledMidAttack(lab.fleet, lab.fleet.scanner(67));
  }, 180_000);

  it('SIGKILL of an alerter mid-delivery: the other delivers every message, each exactly once', async () => {
    await alerterKilledMidDelivery(lab.fleet, lab.fleet.scanner(69));
  }, 180_000);

  it('a sensor restarted during an attack re-syncs its blocks before it reports ready', async () => {
    await sensorRestartedDuringAttack(lab.fleet, lab.fleet.scanner(68));
    expect(await lab.redis.aclLog()).toBe('');
  }, 180_000);
});

/** The processes with an established TCP connection to a local port. */
async function connectedPids(port: string): Promise<number[]> {
  const out = await new Promise<string>((resolve, reject) => execFile('ss', ['-Htnp', 'state', 'established', 'dport', '=', `:${port}`], { encoding: 'utf8' },
    (err, stdout) => (err ? reject(err) : resolve(stdout))));
  return [...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}
