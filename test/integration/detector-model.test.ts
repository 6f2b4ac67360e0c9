/**
 * The anomaly model inside a detector, on a real redis-server: a model trained on benign windows
 * is picked up from its directory, a scanning source becomes a `model.anomaly` incident with its
 * explanation (alert only: no block), benign sources do not; a broken model directory is reported
 * once to operators and the detector goes on with its rules.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { ALERTS_QUEUE, type AlertEvent, type ExceptionEvent, type IncidentEvent } from '../../common/alert-events';
import { connectRedis, type RedisClient } from '../../common/redis';
import { NO_UNTRACKED, type SensorTick } from '../../common/sensor-tick';
import { saveModel } from '../../detector/model/files';
import { seededRandom } from '../../detector/model/random';
import { MODEL_RULE_ID } from '../../detector/model/scorer';
import { trainModel } from '../../detector/model/train';
import { Detector } from '../../detector/service';
import { QueuePublisher } from '../../sensor/publisher';
import { benignTicks, windowOf, type Profile } from '../unit/model-support';
import { quietLogger } from '../support/quiet-logger';
import { until } from '../support/until';
import { testRedis, type TestRedis } from '../support/redis';

const SCANNER = '198.18.9.200';

/** One second of the training data's benign sources (same addresses and profiles), plus a scanner from `scanFrom` on, timed now. */
function liveTicks(sensor: string, count: number, scanFrom: number): SensorTick[] {
  const random = seededRandom(4242);
  const t0 = Date.now() - count * 1000;
  return Array.from({ length: count }, (_, w) => {
    const sources = Array.from({ length: 40 }, (_, s) => {
      const profile: Profile = s % 3 === 0 ? 'web' : s % 3 === 1 ? 'dns' : random() < 0.1 ? 'bulk' : 'web';
      return windowOf(`198.18.9.${s + 10}`, profile, random);
    });
    if (w >= scanFrom) sources.push(windowOf(SCANNER, 'scan', random));
    return {
      sensor, iface: 'lab0', window: 1000 + w, startMs: t0 + w * 1000, endMs: t0 + (w + 1) * 1000, sources, destinations: [],
      untracked: { ...NO_UNTRACKED }, globals: {}, trackedSources: sources.length, evictedSources: 0,
    };
  });
}

describe('detector with the anomaly model, on a real Redis', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let alerts: Queue<AlertEvent>;
  let modelsDir: string;
  const running: { stop(): Promise<void> }[] = [];

  const events = async (): Promise<AlertEvent[]> => (await alerts.getJobs(['waiting', 'active', 'completed', 'delayed'])).map((j) => j.data);
  const modelIncidents = async (): Promise<IncidentEvent[]> => (await events())
    .filter((e): e is IncidentEvent => e.kind === 'incident' && e.incident.ruleId === MODEL_RULE_ID);

  async function detector(dir: string): Promise<Detector> {
    const d = await Detector.start({ redisUrl: redis.url, rulePaths: ['rules'], log: quietLogger, id: 'dm', resolveAfterMs: 60_000, model: { dir } });
    running.push(d);
    return d;
  }

  function publish(sensor: string, ticks: SensorTick[]): void {
    const p = new QueuePublisher({ redisUrl: redis.url, sensorId: sensor, log: quietLogger });
    running.push({ stop: () => p.close() });
    for (const t of ticks) p.tick(t);
  }

  beforeAll(async () => {
    redis = await testRedis();
    client = connectRedis(redis.url);
    alerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: client });
    modelsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-detector-model-'));
    await saveModel(await trainModel(benignTicks(1, 150, 40), { seed: 3, epochs: 30 }), path.join(modelsDir, 'good'));
  }, 120_000);

  afterEach(async () => {
    for (const r of running.splice(0).reverse()) await r.stop();
    await client.flushall();
  });

  afterAll(async () => {
    await alerts.close();
    client.disconnect();
    await redis.stop();
    fs.rmSync(modelsDir, { recursive: true, force: true });
  });

  test('a scanning source becomes one model.anomaly incident with its explanation, alert only; benign sources stay quiet', async () => {
    const d = await detector(path.join(modelsDir, 'good'));
    // The scanner starts after the model's grace time (60 s), as a new source in steady state.
    publish('sensor-m', liveTicks('sensor-m', 72, 66));
    await until('every tick evaluated', () => (d.stats().ticks >= 72 ? true : undefined));
    const opened = await until('the model incident', async () => (await modelIncidents()).find((e) => e.phase === 'opened'));
    expect(opened.incident.key).toBe(SCANNER);
    expect(opened.incident.tags).toEqual(['anomaly']);
    expect(opened.incident.explanation!.length).toBeGreaterThan(0);
    expect(opened.incident.explanation![0].share).toBeGreaterThan(0);
    expect(opened.incident.features.anomaly_score).toBeGreaterThan(opened.incident.features.anomaly_threshold);
    expect(opened.incident.block).toBeUndefined();
    expect((await modelIncidents()).filter((e) => e.incident.key !== SCANNER)).toEqual([]);
    // The rules see the same scan: both kinds of detection live side by side.
    expect((await events()).some((e) => e.kind === 'incident' && e.incident.ruleId !== MODEL_RULE_ID && e.incident.key === SCANNER)).toBe(true);
  });

  test('a corrupt model is reported once and the detector goes on with its rules', async () => {
    const broken = path.join(modelsDir, 'broken', 'model-20260101T000000Z-s1');
    fs.mkdirSync(broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'model.json'), '{"modelTopology": ');
    fs.writeFileSync(path.join(broken, 'weights.bin'), 'not weights');
    const d = await detector(path.dirname(broken));
    publish('sensor-b', liveTicks('sensor-b', 8, 2));
    await until('every tick evaluated', () => (d.stats().ticks >= 8 ? true : undefined));
    const notices = (await until('the exception events', async () => {
      const found = (await events()).filter((e): e is ExceptionEvent => e.kind === 'exception');
      return found.length >= 2 ? found : undefined;
    })).map((e) => e.code).sort();
    expect(notices).toEqual(['model-missing', 'model-reload-failed']);
    await until('a rule incident for the scanner', async () => (await events()).find((e) => e.kind === 'incident' && e.incident.key === SCANNER));
    expect(await modelIncidents()).toEqual([]);
  });
});
