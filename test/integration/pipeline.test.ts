/**
 * The pipeline on a real redis-server: sensor ticks and trips through the partitioned windows
 * queue, detectors with the default rule pack, incidents in Redis, events on the alerts queue.
 */
import { Queue, Worker } from 'bullmq';
import { ALERTS_QUEUE, type AlertEvent, type IncidentEvent } from '../../common/alert-events';
import type { BlockRequest, Blocker } from '../../common/block-requests';
import { connectRedis, type RedisClient } from '../../common/redis';
import { NO_UNTRACKED, sourceWindowOf, type SensorTick, type SourceWindow } from '../../common/sensor-tick';
import { JOB_FORMAT, PARTITIONS, partitionOf, partitionQueue } from '../../common/windows-jobs';
import { INCIDENTS_PREFIX } from '../../detector/incidents';
import { ownerOf } from '../../detector/partitions';
import { Detector } from '../../detector/service';
import { QueuePublisher } from '../../sensor/publisher';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { until } from '../support/until';

const RULES = ['rules'];
const SCANNER = '198.18.0.66';

const scan = (src = SCANNER): SourceWindow => sourceWindowOf(src, { packets: 400, bytes: 24_000, syn: 400, rst: 0, distinctPorts: 380, distinctHosts: 1 });
const browsing = (i: number): SourceWindow => sourceWindowOf(`198.18.1.${i}`, { packets: 40, bytes: 30_000, syn: 2, ackOnly: 30, fin: 2, distinctPorts: 1, distinctHosts: 1 });

function tick(sensor: string, window: number, sources: SourceWindow[], endMs = Date.now()): SensorTick {
  return {
    sensor, iface: 'lab0', window, startMs: endMs - 1000, endMs, sources, destinations: [],
    untracked: { ...NO_UNTRACKED }, globals: {}, trackedSources: sources.length, evictedSources: 0,
  };
}

describe('windows → detectors → incidents → alerts, on a real Redis', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let alerts: Queue<AlertEvent>;
  const running: { stop(): Promise<void> }[] = [];

  const incidentEvents = async (): Promise<IncidentEvent[]> => (await alerts.getJobs(['waiting', 'active', 'completed', 'delayed']))
    .map((j) => j.data).filter((e): e is IncidentEvent => e.kind === 'incident');

  async function detector(id: string, extra: Partial<Parameters<typeof Detector.start>[0]> = {}): Promise<Detector> {
    const d = await Detector.start({ redisUrl: redis.url, rulePaths: RULES, log: quietLogger, id, resolveAfterMs: 1500, ...extra });
    running.push(d);
    return d;
  }

  function publisher(sensorId: string, maxBufferedJobs?: number): QueuePublisher {
    const p = new QueuePublisher({ redisUrl: redis.url, sensorId, log: quietLogger, maxBufferedJobs });
    running.push({ stop: () => p.close() });
    return p;
  }

  beforeAll(async () => {
    redis = await testRedis();
    client = connectRedis(redis.url);
    alerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: client });
  });

  afterEach(async () => {
    for (const r of running.splice(0).reverse()) await r.stop();
    await client.flushall();
  });

  afterAll(async () => {
    await alerts.close();
    client.disconnect();
    await redis.stop();
  });

  test('a scan opens exactly one incident, announced once with its block request, and resolves when quiet', async () => {
    await detector('d1');
    const pub = publisher('sensor-a');
    const benign = Array.from({ length: 50 }, (_, i) => browsing(i + 1));
    for (let w = 100; w < 104; w++) pub.tick(tick('sensor-a', w, [scan(), ...benign]));
    const opened = await until('the opened event', async () => (await incidentEvents()).find((e) => e.phase === 'opened' && e.incident.ruleId === 'scan-tcp-vertical'));
    expect(opened.incident.key).toBe(SCANNER);
    expect(opened.incident.sensors).toEqual(['sensor-a']);
    expect(opened.incident.conditions.map((c) => c.expression)).toContain('syn >= 30');
    expect(opened.incident.block).toMatchObject({ status: 'pending', target: `${SCANNER}/32` });
    const resolved = await until('the resolved event', async () => (await incidentEvents()).find((e) => e.phase === 'resolved' && e.incident.id === opened.incident.id));
    expect(resolved.incident.detections).toBe(4);
    expect(resolved.incident.peak.syn).toBe(1600);
    const forScanner = (await incidentEvents()).filter((e) => e.incident.key === SCANNER && e.incident.ruleId === opened.incident.ruleId);
    expect(forScanner.map((e) => e.phase).sort()).toEqual(['opened', 'resolved']);
    expect((await incidentEvents()).filter((e) => e.incident.key.startsWith('198.18.1.'))).toEqual([]);
  });

  test('two detectors fed by two sensors that see the same attacker open one incident between them', async () => {
    const [d1, d2] = [await detector('d1'), await detector('d2')];
    await until('partitions split between the detectors', () =>
      d1.stats().partitions.length + d2.stats().partitions.length === PARTITIONS && d1.stats().partitions.length > 0 && d2.stats().partitions.length > 0);
    // Two sensors whose partitions belong to different detectors.
    const names = Array.from({ length: 64 }, (_, i) => `sensor-${i}`);
    const a = names.find((n) => ownerOf(partitionOf(n), ['d1', 'd2']) === 'd1')!;
    const b = names.find((n) => ownerOf(partitionOf(n), ['d1', 'd2']) === 'd2')!;
    const [pa, pb] = [publisher(a), publisher(b)];
    for (let w = 200; w < 203; w++) {
      pa.tick(tick(a, w, [scan()]));
      pb.tick(tick(b, w, [scan()]));
    }
    await until('both detectors to see the scan', () => d1.stats().detections >= 3 && d2.stats().detections >= 3);
    const openedBy = () => d1.stats().incidentsOpened + d2.stats().incidentsOpened;
    const opened = await until('every opening announced', async () => {
      const rules = (await incidentEvents()).filter((e) => e.phase === 'opened').map((e) => e.incident.ruleId).sort();
      return rules.length === openedBy() ? rules : undefined;
    });
    expect(opened).toEqual([...new Set(opened)]);
    expect(opened).toContain('scan-tcp-vertical');
    const incident = (await incidentEvents()).find((e) => e.incident.ruleId === 'scan-tcp-vertical')!.incident;
    await until('both sensors on the incident', async () => (await client.smembers(`${INCIDENTS_PREFIX}:inc:scan-tcp-vertical|${SCANNER}:sensors`)).length === 2 || undefined);
    expect(incident.key).toBe(SCANNER);
  });

  test('a fast-path trip opens the incident before its window ends', async () => {
    const d = await detector('d1');
    const pub = publisher('sensor-t');
    const packet = {
      tsMs: Date.now(), src: SCANNER, dst: '198.18.0.1', srcMac: '02:00:00:00:00:42', dstMac: '02:00:00:00:00:01', etherType: 0x800, vlans: [],
      ipVersion: 4 as const, protocol: 6, length: 60, ttl: 44, dscp: 0, ecn: 0, ipId: 1, flowLabel: 0, fragment: { df: false, mf: false, nonFirst: false },
      srcPort: 40000, dstPort: 443, tcpFlags: 'S', seq: 1, ack: 0, tcpWindow: 1024, icmpType: 0, icmpCode: 0,
    };
    pub.trip({ sensor: 'sensor-t', kind: 'ports', src: SCANNER, window: 300, value: 100, threshold: 100, packet, sofar: sourceWindowOf(SCANNER, { packets: 120, syn: 120, distinctPorts: 110 }) });
    const opened = await until('the opened event', async () => (await incidentEvents()).find((e) => e.phase === 'opened' && e.incident.ruleId === 'scan-tcp-vertical'));
    expect(opened.incident.evidence).toEqual([packet]);
    expect(d.stats()).toMatchObject({ ticks: 0, trips: 1, earlyDetections: expect.any(Number) });
  });

  test('an IPv6 trip (colons in its address) goes out like any other, and the ticks after it too', async () => {
    const d = await detector('d6');
    const pub = publisher('sensor-6');
    const src = 'fd00:18::66';
    const packet = {
      tsMs: Date.now(), src, dst: 'fd00:18::1', srcMac: '02:00:00:00:00:42', dstMac: '02:00:00:00:00:01', etherType: 0x86dd, vlans: [],
      ipVersion: 6 as const, protocol: 6, length: 74, ttl: 44, dscp: 0, ecn: 0, ipId: 0, flowLabel: 0, fragment: { df: false, mf: false, nonFirst: false },
      srcPort: 40000, dstPort: 443, tcpFlags: 'S', seq: 1, ack: 0, tcpWindow: 1024, icmpType: 0, icmpCode: 0,
    };
    pub.trip({ sensor: 'sensor-6', kind: 'ports', src, window: 400, value: 100, threshold: 100, packet, sofar: sourceWindowOf(src, { packets: 120, syn: 120, distinctPorts: 110 }) });
    pub.tick(tick('sensor-6', 401, [browsing(7)]));
    await until('the trip and the next tick evaluated', () => d.stats().trips === 1 && d.stats().ticks === 1);
    expect(pub.stats()).toMatchObject({ dropped: 0, buffered: 0 });
  });

  test('Redis down: the sensor keeps its newest windows within the bound, counts the dropped, and catches up', async () => {
    const pub = publisher('sensor-r', 5);
    const queue = new Queue(partitionQueue(partitionOf('sensor-r')), { connection: client });
    pub.tick(tick('sensor-r', 400, [scan()]));
    await until('the first tick in Redis', async () => (await queue.getWaitingCount()) === 1 || undefined);
    await redis.kill();
    await until('the publisher to notice', () => !pub.stats().connected);
    for (let w = 401; w <= 408; w++) pub.tick(tick('sensor-r', w, [scan()]));
    expect(pub.stats()).toMatchObject({ buffered: 5, dropped: 3 });
    await redis.start();
    await until('the backlog sent', () => pub.stats().buffered === 0 && pub.stats().connected);
    const windows = (await queue.getWaiting()).map((j) => (j.data as { window: number }).window).sort((x, y) => x - y);
    expect(windows).toEqual([400, 404, 405, 406, 407, 408]);
    const exception = await until('the exception event', async () => (await alerts.getJobs(['waiting'])).map((j) => j.data).find((e) => e.kind === 'exception'));
    expect(exception).toMatchObject({ code: 'windows-dropped', details: { droppedJobs: 3 } });
    await queue.close();
  });

  test('a window that a killed detector was evaluating is evaluated first by the detector that takes the partition over', async () => {
    const sensor = 'sensor-k';
    const name = partitionQueue(partitionOf(sensor));
    const queue = new Queue(name, { connection: client });
    const pub = publisher(sensor);
    pub.tick(tick(sensor, 700, [scan()]));
    await until('the first window queued', async () => (await queue.getWaitingCount()) === 1 || undefined);
    // A detector that took the window and died holding it: its lock is never renewed.
    const dyingConnection = connectRedis(redis.url);
    const dying = new Worker(name, null, { connection: dyingConnection, lockDuration: 1000 });
    const orphan = await dying.getNextJob('killed-detector');
    expect(orphan?.id).toBe(`${sensor}|700|0`);
    await dying.close(true);
    dyingConnection.disconnect();
    for (const w of [701, 702]) pub.tick(tick(sensor, w, [scan()]));
    await until('the later windows queued', async () => (await queue.getWaitingCount()) === 2 || undefined);

    await detector('d1');
    const completed = await until('every window evaluated', async () => {
      const ids = (await client.xrange(`bull:${name}:events`, '-', '+')).map(([, f]) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]])))
        .filter((e) => e.event === 'completed').map((e) => Number(e.jobId.split('|')[1]));
      return ids.length === 3 && ids;
    }, 30_000);
    // In the sensor's order: evaluated after a later window, it would reset the sensor's rule state.
    expect(completed).toEqual([700, 701, 702]);
    await queue.close();
  });

  test('a detector working through a backlog judges a source\'s handshake on the sensor\'s clock: one in the detecting window verifies it', async () => {
    const requests: BlockRequest[] = [];
    const blocker: Blocker = {
      request: async (r) => { requests.push(r); return { status: 'blocked', target: r.target, evidence: r.evidence }; },
      limit: async (r) => ({ status: 'limited', target: r.target }),
    };
    const pub = publisher('sensor-b');
    // Windows that ended a minute ago, as a detector reads them after a failover or a takeover.
    const endMs = Date.now() - 60_000;
    const connectScan = sourceWindowOf(SCANNER, { packets: 400, syn: 400, rst: 0, handshakes: 1, distinctPorts: 380, distinctHosts: 1, verifiedMs: endMs - 500 });
    const forged = sourceWindowOf('198.18.0.67', { packets: 400, syn: 400, distinctPorts: 380, distinctHosts: 1, verifiedMs: endMs - 3000 });
    pub.tick(tick('sensor-b', 800, [sourceWindowOf('198.18.0.67', { packets: 4, syn: 1, handshakes: 1, verifiedMs: endMs - 3000 })], endMs - 2000));
    pub.tick(tick('sensor-b', 801, [], endMs - 1000));
    pub.tick(tick('sensor-b', 802, [connectScan, forged], endMs));
    const queue = new Queue(partitionQueue(partitionOf('sensor-b')), { connection: client });
    await until('the partition\'s backlog queued', async () => (await queue.getWaitingCount()) === 3 || undefined);
    await queue.close();
    await detector('d1', { blocker });
    const evidence = await until('both sources answered', () => {
      const bySource = new Map(requests.filter((r) => r.ruleId === 'scan-tcp-vertical').map((r) => [r.key, r.evidence]));
      return bySource.size === 2 && bySource;
    });
    expect(evidence.get(SCANNER)).toBe('verified');
    // Its handshake came two windows before the scan: that only proves the address has a real owner.
    expect(evidence.get('198.18.0.67')).toBe('unverified');
  });

  test('a malformed job fails alone, with the reason, and the partition goes on', async () => {
    const d = await detector('d1');
    const queue = new Queue(partitionQueue(partitionOf('sensor-m')), { connection: client });
    await queue.add('tick', { f: 99, type: 'tick' } as never, { jobId: 'bad-1' });
    await queue.add('tick', { f: JOB_FORMAT, type: 'tick', sensor: 'sensor-m', window: 1, startMs: 0, endMs: 1, part: 0, parts: 1, src: ['x'], s: [1], dst: [], d: [] } as never, { jobId: 'bad-2' });
    const pub = publisher('sensor-m');
    pub.tick(tick('sensor-m', 500, [scan()]));
    await until('the good tick processed', () => d.stats().ticks === 1);
    const failed = await queue.getFailed();
    expect(failed.map((j) => [j.id, j.failedReason]).sort()).toEqual([
      ['bad-1', `malformed windows job: format 99 (this detector reads format ${JOB_FORMAT})`],
      ['bad-2', 'malformed windows job: source columns of different lengths'],
    ]);
    expect(d.stats().badJobs).toBe(2);
    await queue.close();
  });
});
