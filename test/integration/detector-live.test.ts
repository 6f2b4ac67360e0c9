/**
 * End to end on real parts: the sensor on a veth lab, its windows through a real Redis, a
 * detector with the default rule pack. Ordinary traffic (many short HTTP connections, a wrk load
 * test, an iperf3 transfer) opens no incident; a real nmap SYN scan opens exactly one vertical
 * scan incident, and the test reports how long that took.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { AlertEvent, IncidentEvent } from '../../common/alert-events';
import { connectRedis } from '../../common/redis';
import { DEFAULT_UNVERIFIED_TTL_MS, LedgerBlocker } from '../../blocking/blocker';
import { startEnforcer, type Enforcer } from '../../blocking/enforcer';
import { BlockLedger } from '../../blocking/ledger';
import { Detector } from '../../detector/service';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { IPERF_PORT, startLabServices, type LabServices } from '../../lab/services';
import { curl, nmap } from '../../lab/traffic';
import { Sensor } from '../../sensor/daemon';
import { QueuePublisher } from '../../sensor/publisher';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';

const LAB = 'xidet';
const SUBNET = 1;

describe('sensor → Redis → detector on a veth lab with real traffic', () => {
  let redis: TestRedis;
  let client: Redis;
  let alerts: Queue<AlertEvent>;
  let lab: NetnsLab;
  let services: LabServices;
  let attacker: LabHost;
  let web: LabHost;
  let detector: Detector;
  let publisher: QueuePublisher;
  let sensor: Sensor;
  let enforcer: Enforcer;
  const seen: IncidentEvent[] = [];

  beforeAll(async () => {
    redis = await testRedis();
    client = connectRedis(redis.url);
    alerts = new Queue<AlertEvent>('alerts', { connection: client });
    lab = new NetnsLab(LAB, SUBNET).create();
    attacker = lab.addHost('atk', 66);
    web = lab.addHost('web', 10);
    services = await startLabServices(lab);
    const blocker = new LedgerBlocker(new BlockLedger(client), { component: 'test' }, undefined, quietLogger);
    detector = await Detector.start({ redisUrl: redis.url, rulePaths: ['rules'], log: quietLogger, id: 'live', blocker, onIncident: (e) => seen.push(e) });
    publisher = new QueuePublisher({ redisUrl: redis.url, sensorId: 'live-sensor', log: quietLogger });
    sensor = Sensor.start({ iface: lab.iface, sensorId: 'live-sensor', windowMs: 1000, pin: false }, publisher, quietLogger);
    enforcer = await startEnforcer({ program: sensor.program, redisUrl: redis.url, sensorId: 'live-sensor', log: quietLogger });
  });

  afterAll(async () => {
    await enforcer?.stop();
    sensor?.stop();
    await publisher?.close();
    await detector?.stop();
    await services?.close();
    lab?.destroy();
    await alerts?.close();
    client?.disconnect();
    await redis?.stop();
  });

  async function ticksPassed(n: number): Promise<void> {
    const target = detector.stats().ticks + n;
    const deadline = Date.now() + n * 1000 + 10_000;
    while (detector.stats().ticks < target) {
      if (Date.now() > deadline) throw new Error('the detector stopped receiving ticks');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('curl, wrk and iperf3 open no incident', async () => {
    await Promise.all([
      curl(lab, web, services.httpUrl, 150),
      lab.run(web, ['wrk', '-t', '2', '-c', '20', '-d', '4s', services.httpUrl], 20_000),
      lab.run(web, ['iperf3', '-c', lab.hostV4, '-p', String(IPERF_PORT), '-t', '3', '-b', '200M'], 20_000),
    ]);
    await ticksPassed(3);
    expect(detector.stats().windows).toBeGreaterThan(0);
    expect(seen).toEqual([]);
  });

  test('nmap -sS opens exactly one vertical scan incident, quickly, and the scanner is then dropped at XDP', async () => {
    const started = Date.now();
    await nmap(lab, attacker, '-sS', lab.hostV4, { ports: '1-1000', timing: 'T4', maxSeconds: 15 });
    const deadline = Date.now() + 10_000;
    while (!seen.some((e) => e.incident.ruleId === 'scan-tcp-vertical') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await ticksPassed(2);
    const vertical = seen.filter((e) => e.incident.ruleId === 'scan-tcp-vertical');
    expect(vertical.map((e) => e.phase)).toEqual(['opened']);
    const incident = vertical[0].incident;
    expect(incident.key).toBe(attacker.v4);
    // A SYN scan never completes a handshake: its source is unverified, so the block is the short one
    // (another rule on the same scan, flood-syn, may have blocked it a moment earlier).
    expect(incident.block).toMatchObject({ status: 'blocked', evidence: 'unverified', target: `${attacker.v4}/32`, undo: `xdp-ids block del ${attacker.v4}/32` });
    expect(incident.block!.expiresMs).toBeLessThanOrEqual(Date.now() + DEFAULT_UNVERIFIED_TTL_MS);
    const kernelBlock = sensor.program.listBlocks().find((b) => b.prefix === `${attacker.v4}/32`);
    expect(kernelBlock).toBeDefined();
    await expect(lab.run(attacker, ['ping', '-c', '3', '-i', '0.2', '-W', '1', lab.hostV4], 10_000)).rejects.toThrow();
    expect(sensor.program.listBlocks().find((b) => b.prefix === `${attacker.v4}/32`)!.drops).toBeGreaterThanOrEqual(kernelBlock!.drops + 3);
    expect(incident.evidence.some((p) => p.src === attacker.v4 && p.tcpFlags === 'S')).toBe(true);
    const opened = (await alerts.getJobs(['waiting'])).map((j) => j.data).filter((e): e is IncidentEvent => e.kind === 'incident' && e.phase === 'opened' && e.incident.ruleId === 'scan-tcp-vertical');
    expect(opened).toHaveLength(1);
    // Nothing about the benign host, during the scan either.
    expect(seen.filter((e) => e.incident.key === web.v4)).toEqual([]);
    const delayMs = vertical[0].atMs - started;
    process.stdout.write(`scan → incident: ${delayMs} ms from starting nmap (early detection from a trip: ${detector.stats().earlyDetections > 0})\n`);
  });
});
