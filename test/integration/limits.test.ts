/**
 * The destination-scoped response end to end, on the real kernel and a real Redis: a spoofed
 * random-source SYN flood (hping3 --rand-source, bounded) reaches a detector with the default
 * rules through the windows queue; flood-syn-spoofed opens one incident whose response is a SYN
 * limit on the protected address (no source is blocked); the ledger broadcasts it, the sensor's
 * enforcer puts it in the kernel, and XDP drops the excess. Operators list and remove it.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ALERTS_QUEUE, type AlertEvent, type IncidentEvent } from '../../common/alert-events';
import { connectRedis } from '../../common/redis';
import { hostAllowRules } from '../../blocking/allowlist';
import { LedgerBlocker } from '../../blocking/blocker';
import { BlockControl, InputError } from '../../blocking/control';
import { startEnforcer, type Enforcer } from '../../blocking/enforcer';
import { LedgerMaintenance } from '../../blocking/maintenance';
import { AlertQueueNotices } from '../../blocking/notices';
import { BlockLedger } from '../../blocking/ledger';
import { defaultRulesDir } from '../../detector/rules/loader';
import { Detector } from '../../detector/service';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { hping3 } from '../../lab/traffic';
import { Sensor } from '../../sensor/daemon';
import { QueuePublisher } from '../../sensor/publisher';
import { quietLogger } from '../support/quiet-logger';
import { until } from '../support/until';
import { testRedis, type TestRedis } from '../support/redis';

describe('SYN limit on a flooded destination', () => {
  let redis: TestRedis;
  let client: Redis;
  let alerts: Queue<AlertEvent>;
  let lab: NetnsLab;
  let attacker: LabHost;
  let sensor: Sensor;
  let publisher: QueuePublisher;
  let enforcer: Enforcer;
  let detector: Detector;
  let maintenance: LedgerMaintenance;
  let blocker: LedgerBlocker;

  beforeAll(async () => {
    redis = await testRedis();
    client = connectRedis(redis.url);
    alerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: client });
    lab = new NetnsLab('xilim', 21).create();
    attacker = lab.addHost('atk', 66);
    await lab.run(attacker, ['ping', '-c', '1', '-W', '2', lab.hostV4], 10_000);
    publisher = new QueuePublisher({ redisUrl: redis.url, sensorId: lab.name, log: quietLogger });
    sensor = Sensor.start({ iface: lab.iface, sensorId: lab.name, pin: false }, publisher, quietLogger);
    enforcer = await startEnforcer({ program: sensor.program, redisUrl: redis.url, sensorId: lab.name, log: quietLogger, reconcileMs: 500 });
    blocker = new LedgerBlocker(new BlockLedger(client), { component: 'test', hostAllow: hostAllowRules() }, undefined, quietLogger);
    maintenance = new LedgerMaintenance(new BlockLedger(client), new AlertQueueNotices(client), quietLogger, 200).start();
    detector = await Detector.start({ redisUrl: redis.url, rulePaths: [defaultRulesDir()], log: quietLogger, blocker });
  }, 60_000);

  afterAll(async () => {
    await maintenance?.stop();
    await detector?.stop();
    await enforcer?.stop();
    sensor?.stop();
    await publisher?.close();
    lab?.destroy();
    await alerts?.close();
    client?.disconnect();
    await redis?.stop();
  });

  test('a spoofed flood opens one destination incident whose SYN limit is enforced at XDP, and no source is blocked', async () => {
    const flood = hping3(lab, attacker, 'syn', lab.hostV4, { count: 30_000, intervalUs: 150, randSource: true });
    const opened = await until('the flood-syn-spoofed incident', async () => (await alerts.getJobs(['waiting', 'completed']))
      .map((j) => j.data).find((e): e is IncidentEvent => e.kind === 'incident' && e.phase === 'opened' && e.incident.ruleId === 'flood-syn-spoofed'), 20_000);
    expect(opened.incident.key).toBe(lab.hostV4);
    expect(opened.incident.block).toMatchObject({ status: 'limited', target: lab.hostV4, traffic: 'syn', perSecond: 1000, undo: `xdp-ids limit del ${lab.hostV4} --traffic syn` });
    const inKernel = await until('the limit in the kernel', () => sensor.program.listDestinationLimits().find((l) => l.address === lab.hostV4), 2000);
    expect(inKernel).toMatchObject({ traffic: 'syn', perSecond: 1000 });
    await until('drops by the limit', () => (sensor.program.listDestinationLimits().find((l) => l.address === lab.hostV4)?.drops ?? 0) > 100 || undefined, 10_000);
    await flood;
    expect(sensor.program.readGlobals().drop_dst_limit).toBeGreaterThan(100);
    expect(sensor.program.listBlocks()).toEqual([]);
  }, 60_000);

  test('operators list and remove limits; the enforcer repairs a kernel that lost one; bad input is refused', async () => {
    const control = new BlockControl(new BlockLedger(client), blocker);
    const limits = await control.listLimits();
    expect(limits.map((l) => [l.target, l.traffic, l.perSecond, l.origin, l.ruleId])).toEqual([[lab.hostV4, 'syn', 1000, 'rule', 'flood-syn-spoofed']]);
    // The repair may come from the enforcer's own periodic reconciliation before ours: count it in the sensor's state.
    const repairs = async (): Promise<number> => (await new BlockLedger(client).sensorStates()).find((st) => st.sensor === lab.name)?.repairs['repairs:added'] ?? 0;
    const before = await repairs();
    sensor.program.deleteDestinationLimit(lab.hostV4, 'syn');
    await enforcer.reconcile();
    await until('the limit back in the kernel', () => sensor.program.listDestinationLimits().some((l) => l.address === lab.hostV4) || undefined, 2000);
    expect(await repairs()).toBeGreaterThan(before);
    expect(sensor.program.listDestinationLimits().map((l) => l.address)).toEqual([lab.hostV4]);
    expect(await control.delLimit(lab.hostV4, 'syn', 'test')).toBe(true);
    await until('the limit gone from the kernel', () => sensor.program.listDestinationLimits().length === 0 || undefined, 1000);
    await expect(control.addLimit({ target: '198.18.21.0/24', rate: 100 }, 'test')).rejects.toThrow(/one address, not 198\.18\.21\.0\/24/);
    await expect(control.addLimit({ target: lab.hostV4, rate: 0 }, 'test')).rejects.toThrow(InputError);
    const manual = await control.addLimit({ target: lab.hostV4, rate: 50, ttl: '2m' }, 'test');
    expect(manual).toMatchObject({ status: 'limited', target: lab.hostV4, traffic: 'syn', perSecond: 50 });
    await until('the manual limit in the kernel', () => sensor.program.listDestinationLimits().find((l) => l.perSecond === 50), 1000);
  });

  test('a limit that runs out leaves the kernel and is announced once, with its rate', async () => {
    const target = '198.18.21.7';
    const outcome = await blocker.limit({
      target, traffic: 'syn', perSecond: 300, ttlMs: 1000, origin: 'rule', ruleId: 'flood-syn-spoofed', incidentId: 'i-expiry', title: 'SYN flood', severity: 'high',
      sensor: lab.name, key: target, requestedMs: Date.now(),
    });
    expect(outcome).toMatchObject({ status: 'limited', traffic: 'syn', perSecond: 300 });
    await until('the limit in the kernel', () => sensor.program.listDestinationLimits().find((l) => l.address === target), 2000);
    const expired = async () => (await alerts.getJobs(['waiting'])).map((j) => j.data).filter((e) => e.kind === 'block' && e.phase === 'expired' && e.target === target);
    await until('the expiry notice', async () => ((await expired()).length ? true : undefined), 5000);
    expect(await expired()).toEqual([expect.objectContaining({ action: 'limit', traffic: 'syn', perSecond: 300, origin: 'rule', ruleId: 'flood-syn-spoofed', incidentId: 'i-expiry' })]);
    await until('the limit gone from the kernel', () => (sensor.program.listDestinationLimits().some((l) => l.address === target) ? undefined : true), 2000);
  });
});
