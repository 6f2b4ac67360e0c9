/**
 * Blind spots on a veth lab with real traffic: a random-source SYN burst (hping3 --rand-source,
 * bounded) at a sensor whose source table is tiny evicts tracked sources, and at a sensor whose
 * insert throttle is low leaves sources untracked. Either way the tick says so and the publisher
 * raises one `sensor-blind-spot` exception per quiet period. Traffic stays inside the lab's
 * namespaces (198.18.162.0/24; replies to the forged sources go nowhere).
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ALERTS_QUEUE, type AlertEvent, type ExceptionEvent } from '../../common/alert-events';
import { connectRedis } from '../../common/redis';
import type { SensorTick } from '../../common/sensor-tick';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { hping3 } from '../../lab/traffic';
import { Sensor, type SensorOptions } from '../../sensor/daemon';
import { QueuePublisher } from '../../sensor/publisher';
import { CollectingSink } from '../support/collecting-sink';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { until } from '../support/until';

describe('blind spots of a sensor under a random-source flood', () => {
  let server: TestRedis;
  let redis: Redis;
  let alerts: Queue<AlertEvent>;
  const lab = new NetnsLab('xitrblind', 162);
  let attacker: LabHost;
  let running: { sensor: Sensor; publisher: QueuePublisher } | undefined;

  beforeAll(async () => {
    server = await testRedis();
    redis = connectRedis(server.url);
    alerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
    lab.create();
    attacker = lab.addHost('atk', 66);
    await lab.run(attacker, ['ping', '-c', '1', '-W', '2', lab.hostV4], 10_000);
  });

  afterAll(async () => {
    await stopSensor();
    lab.destroy();
    await alerts?.close();
    redis?.disconnect();
    await server?.stop();
  });

  /** A sensor with its own publisher (and so its own quiet periods); `sink` sees its ticks too. */
  function startSensor(sensorId: string, opts: Pick<SensorOptions, 'sizes' | 'inserts'>, sink: CollectingSink): void {
    const publisher = new QueuePublisher({ redisUrl: server.url, sensorId, log: quietLogger, also: [sink] });
    running = { publisher, sensor: Sensor.start({ iface: lab.iface, sensorId, pin: false, windowMs: 500, ...opts }, publisher, quietLogger) };
  }

  async function stopSensor(): Promise<void> {
    running?.sensor.stop();
    await running?.publisher.close();
    running = undefined;
  }

  /** 1500 SYNs from random sources in about 0.3 s. */
  async function randomSourceBurst(): Promise<void> {
    await hping3(lab, attacker, 'syn', lab.hostV4, { count: 1500, intervalUs: 200, randSource: true });
  }

  async function blindSpotEvents(sensorId: string): Promise<ExceptionEvent[]> {
    return (await alerts.getJobs(['waiting'])).map((j) => j.data)
      .filter((e): e is ExceptionEvent => e.kind === 'exception' && e.code === 'sensor-blind-spot' && e.component === `sensor@${sensorId}`);
  }

  /** Waits for `n` ticks that `blind` says are blind, each after a burst of its own. */
  async function blindTicks(sink: CollectingSink, n: number, blind: (t: SensorTick) => boolean): Promise<SensorTick[]> {
    const found: SensorTick[] = [];
    for (let i = 0; i < n; i++) {
      const from = sink.ticks.length;
      await randomSourceBurst();
      found.push(await until('a blind tick after the burst', () => sink.ticks.slice(from).find(blind), 10_000));
    }
    return found;
  }

  test('a tiny source table: the ticks count evicted sources, and two blind ticks raise one exception', async () => {
    const sink = new CollectingSink();
    startSensor('xitr-evict', { sizes: { sources: 64 }, inserts: { perSecondPerCpu: 0 } }, sink);
    try {
      await sink.nextTicks(1);
      const ticks = await blindTicks(sink, 2, (t) => t.evictedSources > 0);
      expect(ticks.every((t) => t.untracked.packets === 0 && t.trackedSources <= 64)).toBe(true);
      const events = await until('the blind-spot exception', async () => {
        const found = await blindSpotEvents('xitr-evict');
        return found.length > 0 && found;
      });
      await sink.nextTicks(1);
      expect(await blindSpotEvents('xitr-evict')).toHaveLength(1);
      expect(events[0]).toMatchObject({ severity: 'medium', details: expect.objectContaining({ untrackedPackets: 0, evictedSources: expect.any(Number) }) });
      expect(events[0].details!.evictedSources).toBeGreaterThan(0);
      expect(events[0].message).toMatch(/tracked sources evicted by a full source table/);
    } finally {
      await stopSensor();
    }
  });

  test('a low insert throttle: the ticks count untracked packets, and two blind ticks raise one exception', async () => {
    const sink = new CollectingSink();
    startSensor('xitr-throttle', { sizes: { sources: 4096 }, inserts: { perSecondPerCpu: 20, burst: 20 } }, sink);
    try {
      await sink.nextTicks(1);
      const ticks = await blindTicks(sink, 2, (t) => t.untracked.packets > 0);
      expect(ticks.every((t) => t.untracked.syn > 0)).toBe(true);
      const events = await until('the blind-spot exception', async () => {
        const found = await blindSpotEvents('xitr-throttle');
        return found.length > 0 && found;
      });
      await sink.nextTicks(1);
      expect(await blindSpotEvents('xitr-throttle')).toHaveLength(1);
      expect(events[0].details!.untrackedPackets).toBeGreaterThan(0);
      expect(events[0].message).toMatch(/packets from sources the insert throttle did not track/);
    } finally {
      await stopSensor();
    }
  });
});
