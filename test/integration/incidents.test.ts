/**
 * The cap on open incidents per rule, on a real redis-server: a flood of new keys opens at most
 * the cap and folds the rest into one overflow incident per rule, detectors racing on the cap never
 * pass it, and the overflow incident is announced but never blocks.
 */
import { Queue } from 'bullmq';
import { ALERTS_QUEUE, type AlertEvent, type ExceptionEvent, type IncidentEvent } from '../../common/alert-events';
import type { BlockRequest, Blocker } from '../../common/block-requests';
import { connectRedis, type RedisClient } from '../../common/redis';
import { NO_UNTRACKED, sourceWindowOf, type SensorTick, type SourceWindow } from '../../common/sensor-tick';
import { partitionOf, partitionQueue } from '../../common/windows-jobs';
import { IncidentStore, OVERFLOW_KEY, type IncidentInput, type Transition } from '../../detector/incidents';
import { Detector } from '../../detector/service';
import { QueuePublisher } from '../../sensor/publisher';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { until } from '../support/until';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const RESOLVE_AFTER_MS = 60_000;

function input(ruleId: string, key: string, syn: number): IncidentInput {
  return {
    ruleId, ruleVersion: 'v1', title: 'SYN flood', description: 'Many SYNs.', severity: 'high', mitre: [], tags: ['flood'], scope: 'source', groupBy: 'src', key,
    when: 'syn >= 100', windowMs: 1000, firstWindowMs: T0, features: { syn }, conditions: [{ expression: 'syn >= 100', value: syn, threshold: 100, holds: true }], sensor: 'sensor-a',
  };
}

/** The n-th of 65,536 distinct addresses. */
const address = (n: number): string => `10.${(n >> 8) & 255}.${n & 255}.1`;

/** Records all inputs at once, as detectors busy with one flood would. */
async function recordAll(stores: IncidentStore[], inputs: IncidentInput[], nowMs: number): Promise<Transition[]> {
  const out = await Promise.all(inputs.map((x, i) => stores[i % stores.length].record(x, [], nowMs)));
  return out.filter((t): t is Transition => t !== undefined);
}

describe('incidents per rule are capped', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let other: RedisClient;

  beforeAll(async () => {
    redis = await testRedis();
    client = connectRedis(redis.url);
    other = connectRedis(redis.url);
  });

  afterEach(async () => {
    await client.flushall();
  });

  afterAll(async () => {
    client.disconnect();
    other.disconnect();
    await redis.stop();
  });

  test('5,000 new keys of one rule open 100 incidents and one overflow incident counting the other 4,900; other rules and known keys go on; resolution frees the cap', async () => {
    const store = new IncidentStore(client, { maxOpenPerRule: 100, resolveAfterMs: RESOLVE_AFTER_MS });
    const keys = Array.from({ length: 5000 }, (_, i) => address(i));
    const transitions = await recordAll([store], keys.map((k, i) => input('flood', k, 100 + i)), T0);

    expect(transitions.map((t) => t.phase)).toEqual(Array(101).fill('opened'));
    const open = await store.listOpen();
    const own = open.filter((i) => i.key !== OVERFLOW_KEY);
    const [overflow] = open.filter((i) => i.key === OVERFLOW_KEY);
    expect(own).toHaveLength(100);
    expect(overflow).toMatchObject({ ruleId: 'flood', groupBy: 'src', title: 'SYN flood (many sources)', detections: 4900 });
    expect(overflow.overflow!.keys).toBeGreaterThan(4900 * 0.97);
    expect(overflow.overflow!.keys).toBeLessThan(4900 * 1.03);
    expect(overflow.overflow!.sampleKeys).toHaveLength(20);
    const ownKeys = new Set(own.map((i) => i.key));
    expect(overflow.overflow!.sampleKeys.filter((k) => ownKeys.has(k) || !keys.includes(k))).toEqual([]);
    expect(overflow.peak.syn).toBe(Math.max(...keys.flatMap((k, i) => (ownKeys.has(k) ? [] : [100 + i]))));
    expect(transitions.filter((t) => t.incident.key === OVERFLOW_KEY).map((t) => t.incident.id)).toEqual([overflow.id]);

    const known = [...ownKeys][0];
    expect(await store.record(input('flood', known, 1), [], T0 + 1000)).toBeUndefined();
    expect((await store.get('flood', known))!.detections).toBe(2);
    expect((await store.get('flood', OVERFLOW_KEY))!.detections).toBe(4900);
    expect(await store.record(input('other-rule', address(4999), 100), [], T0 + 1000)).toMatchObject({ phase: 'opened', incident: { key: address(4999) } });

    const resolved = await store.resolveDue(T0 + 1000 + RESOLVE_AFTER_MS, 1000);
    expect(resolved).toHaveLength(102);
    expect(await store.listOpen()).toEqual([]);
    const again = await recordAll([store], keys.slice(0, 101).map((k) => input('flood', k, 100)), T0 + 120_000);
    expect(again.filter((t) => t.incident.key !== OVERFLOW_KEY)).toHaveLength(100);
    const newOverflow = again.find((t) => t.incident.key === OVERFLOW_KEY)!;
    expect(newOverflow).toMatchObject({ phase: 'opened', incident: { detections: 1, overflow: { keys: 1 } } });
    expect(newOverflow.incident.id).not.toBe(overflow.id);
  });

  test('two stores on two connections racing on the cap never pass it', async () => {
    const stores = [client, other].map((c) => new IncidentStore(c, { maxOpenPerRule: 50, resolveAfterMs: RESOLVE_AFTER_MS }));
    for (let round = 0; round < 5; round++) {
      const keys = Array.from({ length: 400 }, (_, i) => address(round * 400 + i));
      const transitions = await recordAll(stores, keys.map((k) => input(`race-${round}`, k, 100)), T0);
      expect(transitions.filter((t) => t.phase === 'opened')).toHaveLength(51);
      const open = (await stores[0].listOpen()).filter((i) => i.ruleId === `race-${round}`);
      expect(open.filter((i) => i.key !== OVERFLOW_KEY)).toHaveLength(50);
      expect(open.find((i) => i.key === OVERFLOW_KEY)!.detections).toBe(350);
    }
  });
});

describe('a detector at the cap', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let alerts: Queue<AlertEvent>;

  beforeAll(async () => {
    redis = await testRedis();
    client = connectRedis(redis.url);
    alerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: client });
  });

  afterAll(async () => {
    await alerts.close();
    client.disconnect();
    await redis.stop();
  });

  const events = async (): Promise<AlertEvent[]> => (await alerts.getJobs(['waiting', 'active', 'completed', 'delayed'])).map((j) => j.data);

  function scanner(src: string): SourceWindow {
    return sourceWindowOf(src, { packets: 400, bytes: 24_000, syn: 400, distinctPorts: 380, distinctHosts: 1 });
  }

  test('blocks the keys of its own incidents only; the overflow incident is announced without a block, and the cap is reported once', async () => {
    const requests: BlockRequest[] = [];
    const blocker: Blocker = {
      async request(req) {
        requests.push(req);
        return { status: 'blocked', target: req.target };
      },
      async limit(req) {
        requests.push(req);
        return { status: 'limited', target: req.target, traffic: req.traffic, perSecond: req.perSecond };
      },
    };
    const detector = await Detector.start({ redisUrl: redis.url, rulePaths: ['rules'], log: quietLogger, id: 'capped', maxIncidentsPerRule: 3, blocker });
    const publisher = new QueuePublisher({ redisUrl: redis.url, sensorId: 'sensor-c', log: quietLogger });
    try {
      const sources = Array.from({ length: 40 }, (_, i) => scanner(`198.18.2.${i + 1}`));
      for (let w = 0; w < 3; w++) {
        const endMs = Date.now() + w * 1000;
        const tick: SensorTick = {
          sensor: 'sensor-c', iface: 'lab0', window: 500 + w, startMs: endMs - 1000, endMs, sources, destinations: [],
          untracked: { ...NO_UNTRACKED }, globals: {}, trackedSources: sources.length, evictedSources: 0,
        };
        publisher.tick(tick);
      }
      const windows = new Queue(partitionQueue(partitionOf('sensor-c')), { connection: client });
      await until('three ticks evaluated and answered', async () => detector.stats().ticks === 3
        && Object.values(await windows.getJobCounts('wait', 'active', 'delayed')).every((n) => n === 0));
      await windows.close();
      const overflow = await until('the overflow incident of scan-tcp-vertical', async () => (await events())
        .find((e): e is IncidentEvent => e.kind === 'incident' && e.phase === 'opened' && e.incident.ruleId === 'scan-tcp-vertical' && e.incident.key === OVERFLOW_KEY));
      expect(overflow.incident.block).toBeUndefined();
      expect(Math.abs(overflow.incident.overflow!.keys - 37)).toBeLessThanOrEqual(1);

      const opened = (await events()).filter((e): e is IncidentEvent => e.kind === 'incident' && e.phase === 'opened');
      const rules = [...new Set(opened.map((e) => e.incident.ruleId))];
      for (const rule of rules) {
        const ofRule = opened.filter((e) => e.incident.ruleId === rule);
        expect(ofRule.filter((e) => e.incident.key !== OVERFLOW_KEY)).toHaveLength(3);
        expect(ofRule.filter((e) => e.incident.key === OVERFLOW_KEY)).toHaveLength(1);
      }
      expect(requests.every((r) => r.key !== OVERFLOW_KEY && opened.some((e) => e.incident.id === r.incidentId && e.incident.key === r.key))).toBe(true);
      expect(requests.length).toBeGreaterThan(0);
      expect(requests.length).toBeLessThanOrEqual(3 * rules.length);

      const capReports = await until('a cap report per rule', async () => {
        const reports = (await events()).filter((e): e is ExceptionEvent => e.kind === 'exception' && e.code === 'incident-cap-reached');
        return reports.length === rules.length ? reports : undefined;
      });
      expect(capReports.map((e) => e.details!.rule).sort()).toEqual([...rules].sort());
    } finally {
      await publisher.close();
      await detector.stop();
    }
  });
});
