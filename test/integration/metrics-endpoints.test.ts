/**
 * Every long-running part's real /metrics endpoint, as the built CLI serves it (`--metrics-listen`):
 * a sensor attached to a veth lab (its enforcer's metrics with it), a detector and an alerter on a
 * real Redis, while a real nmap scan runs inside the lab's namespaces. Each endpoint serves every
 * metric its part registers (the same registries test/unit/deploy-monitoring.test.ts checks the
 * dashboard and rules against), and the values follow the traffic: the kernel's packet count, the
 * detector's ticks and partitions, the alerter's ingested events.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { AlerterMetrics } from '../../alerts/metrics';
import { EnforcerMetrics } from '../../blocking/enforcer-metrics';
import { DetectorMetrics } from '../../detector/metrics';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { nmap } from '../../lab/traffic';
import { SensorMetrics } from '../../sensor/metrics';
import { PIN_ROOT } from '../../sensor/kernel/program';
import { testRedis, type TestRedis } from '../support/redis';
import { freePort } from '../support/free-port';
import { until } from '../support/until';

const CLI = path.resolve(__dirname, '../../dist/bin/xdp-ids.js');
const LAB = 'xiconm';

/** A scrape, as `metric{labels}` → value, and the metric names its `# TYPE` lines declare. */
async function scrape(port: number): Promise<{ values: Map<string, number>; declared: Set<string> }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const values = new Map<string, number>();
  const declared = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) declared.add(type[1]);
    const sample = /^([a-z_:][a-z0-9_:]*(?:\{[^}]*\})?) (\S+)$/i.exec(line);
    if (sample) values.set(sample[1], Number(sample[2]));
  }
  return { values, declared };
}

/** The names a part registers (its own metrics, without the process's). */
function ownNames(register: (r: Registry) => void): string[] {
  const registry = new Registry();
  register(registry);
  return registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name);
}

describe('each part serves its Prometheus metrics', () => {
  let redis: TestRedis;
  let lab: NetnsLab;
  let attacker: LabHost;
  let dir: string;
  const children: ChildProcess[] = [];

  function start(args: string[]): ChildProcess {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, XDP_IDS_REDIS_URL_FILE: path.join(dir, 'redis.url'), XDP_IDS_REDIS_URL: '' },
    });
    child.stderr!.on('data', () => undefined);
    children.push(child);
    return child;
  }

  beforeAll(async () => {
    redis = await testRedis();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-metrics-'));
    fs.writeFileSync(path.join(dir, 'redis.url'), `${redis.url}\n`, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'alerts.yaml'), `receivers: [{ name: local-mailbox, mailbox: { path: ${JSON.stringify(path.join(dir, 'mbox'))} } }]\nroutes: [{ receivers: [local-mailbox] }]\n`);
    lab = new NetnsLab(LAB, 170).create();
    attacker = lab.addHost('atk', 66);
  });

  afterAll(async () => {
    await Promise.all(children.map((child) => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(undefined);
      child.once('exit', resolve);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    })));
    lab?.destroy();
    fs.rmSync(path.join(PIN_ROOT, LAB), { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    await redis?.stop();
  });

  test('sensor (with its enforcer), detector and alerter: every registered metric is served, and the values follow a real scan', async () => {
    const [sensorPort, detectorPort, alerterPort] = [await freePort(), await freePort(), await freePort()];
    start(['sensor', '--iface', LAB, '--mode', 'generic', '--metrics-listen', `127.0.0.1:${sensorPort}`]);
    start(['detector', '--no-model', '--metrics-listen', `127.0.0.1:${detectorPort}`]);
    start(['alerter', '--config', path.join(dir, 'alerts.yaml'), '--metrics-listen', `127.0.0.1:${alerterPort}`]);
    await until('every part serves /metrics', async () => {
      for (const port of [sensorPort, detectorPort, alerterPort]) if (!(await scrape(port).catch(() => undefined))) return false;
      return true;
    }, 30_000);

    await nmap(lab, attacker, '-sS', lab.hostV4, { ports: '1-200', maxSeconds: 20 });

    const sensor = await until('the sensor counted the scan and drained windows', async () => {
      const s = await scrape(sensorPort);
      return (s.values.get('xdp_ids_sensor_packets_total') ?? 0) >= 200 && (s.values.get('xdp_ids_sensor_ticks_total') ?? 0) > 0 ? s : undefined;
    }, 30_000);
    expect(ownNames((r) => { new SensorMetrics(r); new EnforcerMetrics(r); }).filter((n) => !sensor.declared.has(n))).toEqual([]);
    expect(sensor.values.get('xdp_ids_sensor_redis_up')).toBe(1);
    // Set by every drain (sources idle for a window leave the table, so the scan's may be gone by now).
    expect(sensor.values.has('xdp_ids_sensor_tracked_sources')).toBe(true);
    expect(sensor.values.get('xdp_ids_sensor_map_fill_ratio{map="sources"}')).toBeLessThan(1);
    expect(sensor.values.get('xdp_ids_sensor_drain_seconds_count')).toBeGreaterThan(0);
    expect(sensor.values.has('xdp_ids_enforcer_kernel_entries{table="blocks"}')).toBe(true);
    expect(sensor.values.get('xdp_ids_sensor_process_cpu_seconds_total')).toBeGreaterThan(0);

    // A trip may open the incident before the detector has evaluated the scan's first tick.
    const detector = await until('the detector evaluated ticks and opened an incident', async () => {
      const s = await scrape(detectorPort);
      const opened = [...s.values].some(([k, v]) => k.startsWith('xdp_ids_detector_incidents_total{') && k.includes('phase="opened"') && v > 0);
      return opened && (s.values.get('xdp_ids_detector_ticks_total') ?? 0) > 0 ? s : undefined;
    }, 30_000);
    expect(ownNames((r) => new DetectorMetrics(r)).filter((n) => !detector.declared.has(n))).toEqual([]);
    expect(detector.values.get('xdp_ids_detector_partitions')).toBe(16);
    expect(detector.values.get('xdp_ids_detector_model_loaded')).toBe(0);
    expect(detector.values.get('xdp_ids_detector_ticks_total')).toBeGreaterThan(0);
    expect(detector.values.get('xdp_ids_detector_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(detector.values.get('xdp_ids_detector_rule_evaluation_seconds_count')).toBeGreaterThan(0);

    const alerter = await until('the alerter ingested the incident\'s events and delivered', async () => {
      const s = await scrape(alerterPort);
      return (s.values.get('xdp_ids_alerter_events_total{outcome="grouped"}') ?? 0) > 0
        && (s.values.get('xdp_ids_alerter_deliveries_total{receiver="local-mailbox",outcome="sent"}') ?? 0) > 0 ? s : undefined;
    }, 30_000);
    expect(ownNames((r) => new AlerterMetrics(r)).filter((n) => !alerter.declared.has(n))).toEqual([]);
    expect(alerter.values.get('xdp_ids_alerter_dead_letters')).toBe(0);

    // The enforcer put the detector's block of the scanner into the kernel.
    await until('the block reached the kernel', async () => ((await scrape(sensorPort)).values.get('xdp_ids_enforcer_kernel_entries{table="blocks"}') ?? 0) >= 1, 30_000);
    expect((await fetch(`http://127.0.0.1:${sensorPort}/other`)).status).toBe(404);
  }, 180_000);
});
