/**
 * The pipeline on Redis deployments that survive losing a node, all real and started here: a
 * primary, a replica and 3 Sentinels (Debian's redis-sentinel), and a 3-primary Redis Cluster,
 * every server with the roles' ACL users and every part connected as its role. A sensor's
 * publisher sends windows, a detector with the default rules opens an incident and blocks
 * through the ledger, and the enforcer of a real XDP program (a veth in a namespace) puts
 * the block in its kernel. Behind Sentinel, the primary is then killed with SIGKILL: the windows
 * the sensor buffered meanwhile reach the detector in order, the kernel keeps what it enforced
 * (same ledger generation), and a block decided after the failover reaches the kernel. The same
 * on a Cluster with a replica per primary, killing the primary of the ledger and of the sensor's
 * partition. A client that hears of a failover while it asks a Sentinel for the primary still
 * reaches the new one.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import clusterKeySlot from 'cluster-key-slot';
import { ALERTS_QUEUE, type AlertEvent } from '../../common/alert-events';
import { connectRedis, type RedisClient } from '../../common/redis';
import { NO_UNTRACKED, sourceWindowOf, type SensorTick, type SourceWindow } from '../../common/sensor-tick';
import { PARTITIONS, partitionOf, partitionQueue } from '../../common/windows-jobs';
import { LedgerBlocker } from '../../blocking/blocker';
import { startEnforcer, type Enforcer } from '../../blocking/enforcer';
import { BlockLedger, NS } from '../../blocking/ledger';
import { AlertQueueNotices } from '../../blocking/notices';
import { IncidentStore } from '../../detector/incidents';
import { Detector } from '../../detector/service';
import { NetnsLab } from '../../lab/netns';
import { Sensor } from '../../sensor/daemon';
import { QueuePublisher } from '../../sensor/publisher';
import { CollectingSink } from '../support/collecting-sink';
import { quietLogger } from '../support/quiet-logger';
import { startRedisCluster, startSentinelSet, type SentinelSet, type TestCluster } from '../support/redis-ha';
import { until } from '../support/until';

const scanFrom = (src: string): SourceWindow => sourceWindowOf(src, { packets: 400, bytes: 24_000, syn: 400, distinctPorts: 380, distinctHosts: 1 });
const browsing = (i: number): SourceWindow => sourceWindowOf(`198.18.180.${100 + i}`, { packets: 40, bytes: 30_000, syn: 2, ackOnly: 30, fin: 2, distinctPorts: 1, distinctHosts: 1 });

function tick(sensor: string, window: number, sources: SourceWindow[]): SensorTick {
  const endMs = Date.now();
  return { sensor, iface: 'lab0', window, startMs: endMs - 1000, endMs, sources, destinations: [], untracked: { ...NO_UNTRACKED }, globals: {}, trackedSources: sources.length, evictedSources: 0 };
}

/** Where each part reaches Redis: the sensor's (publisher, enforcer) and the detector's URL (detector, blocker, this test's reads). */
interface PipelineUrls {
  sensor: string;
  detector: string;
}

/** A sensor (real XDP program and enforcer), its publisher, and a detector that blocks. */
class Pipeline {
  readonly redis: RedisClient;
  readonly notices: AlertQueueNotices;
  readonly alerts: Queue<AlertEvent>;
  readonly lab: NetnsLab;
  sensor?: Sensor;
  enforcer?: Enforcer;
  detector?: Detector;
  publisher?: QueuePublisher;

  constructor(readonly urls: PipelineUrls, readonly name: string, subnet: number, readonly sensorId = `${name}-s`) {
    // Errors while a primary is down are expected here; what matters is what arrives after.
    this.redis = connectRedis(urls.detector).on('error', () => undefined);
    this.notices = new AlertQueueNotices(this.redis);
    this.alerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: this.redis });
    this.alerts.on('error', () => undefined);
    this.lab = new NetnsLab(name, subnet);
  }

  async start(): Promise<this> {
    this.lab.create();
    this.sensor = Sensor.start({ iface: this.lab.iface, pin: false, windowMs: 500 }, new CollectingSink(), quietLogger);
    // No periodic reconciliation within a test: a block reaches the kernel through the ledger's
    // broadcast, so its subscription must follow the failover, or cross the cluster's nodes.
    this.enforcer = await startEnforcer({ program: this.sensor.program, redisUrl: this.urls.sensor, sensorId: this.name, log: quietLogger, reconcileMs: 600_000 });
    const blocker = new LedgerBlocker(new BlockLedger(this.redis), { component: 'test', hostAllow: [] }, this.notices, quietLogger);
    this.detector = await Detector.start({ redisUrl: this.urls.detector, rulePaths: ['rules'], log: quietLogger, id: `${this.name}-d1`, blocker });
    await until('the detector to hold every partition', () => this.detector!.stats().partitions.length === PARTITIONS, 30_000);
    this.publisher = new QueuePublisher({ redisUrl: this.urls.sensor, sensorId: this.sensorId, log: quietLogger });
    return this;
  }

  /** Three windows of a scan from `src`, the rule's evidence for a block. */
  scan(src: string, firstWindow: number): void {
    for (let w = firstWindow; w < firstWindow + 3; w++) this.publisher!.tick(tick(this.sensorId, w, [scanFrom(src), browsing(w % 50)]));
  }

  /**
   * After a failover: the windows published across it were all evaluated, in order; the kernel
   * kept the block of `blocked` with nothing repaired (the same ledger generation as `before`);
   * a scan from `next` decided after it reaches the kernel; each scanner has one incident.
   */
  async expectCaughtUp(windows: number[], before: { rev: number }, blocked: string, next: string): Promise<void> {
    await until('the buffered windows sent', () => this.publisher!.stats().buffered === 0, 30_000);
    const queue = this.publisher!.partitionQueue;
    const completed = await until('the detector to finish the buffered windows', async () => {
      const events = await this.redis.xrange(`bull:${queue}:events`, '-', '+');
      const ids = events.map(([, fields]) => Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]])))
        .filter((e) => e.event === 'completed' && e.jobId.startsWith(`${this.sensorId}|`)).map((e) => Number(e.jobId.split('|')[1]));
      return windows.every((w) => ids.includes(w)) ? ids.filter((w) => windows.includes(w)) : undefined;
    }, 30_000);
    expect(completed).toEqual(windows);

    // Same ledger generation on the promoted replica: nothing retained, nothing lost, nothing repaired.
    const after = await this.enforcer!.reconcile();
    expect(after).toMatchObject({ retained: 0, added: 0, removed: 0 });
    expect(after.rev).toBeGreaterThanOrEqual(before.rev);
    expect(this.inKernel(`${blocked}/32`)).toBe(true);

    const decidedMs = Date.now();
    this.scan(next, 200);
    await until('the block decided after the failover in the kernel', () => this.inKernel(`${next}/32`), 30_000);
    console.log(`Block decided after the failover (${this.name}): in the kernel ${Date.now() - decidedMs} ms after its windows were published`);
    // The detector announces an incident after its block is decided, so the kernel may have the block first.
    const events = await until('the scan decided after the failover announced', async () => {
      const queued = (await this.alerts.getJobs(['waiting', 'active', 'completed'])).map((j) => j.data);
      return queued.some((e) => e.kind === 'incident' && e.phase === 'opened' && e.incident.ruleId === 'scan-tcp-vertical' && e.incident.key === next) && queued;
    }, 30_000);
    expect(events.filter((e) => e.kind === 'exception').map((e) => e.code)).not.toContain('ledger-generation-changed');
    // One incident per scanner, announced once, on either side of the failover.
    const openings = events.filter((e) => e.kind === 'incident' && e.phase === 'opened' && e.incident.ruleId === 'scan-tcp-vertical').map((e) => e.kind === 'incident' && e.incident.key);
    expect(openings.sort()).toEqual([blocked, next].sort());
    expect(this.publisher!.stats().dropped).toBe(0);
  }

  inKernel(target: string): boolean {
    return this.sensor!.program.listBlocks().some((b) => b.prefix === target);
  }

  async stop(): Promise<void> {
    await this.publisher?.close();
    await this.detector?.stop();
    await this.enforcer?.stop();
    this.sensor?.stop();
    this.lab.destroy();
    await this.alerts.close();
    await this.notices.close();
    this.redis.disconnect();
  }
}

describe('behind Redis Sentinel (1 primary, 1 replica, 3 Sentinels), each part as its ACL role', () => {
  let set: SentinelSet;
  let pipeline: Pipeline;

  beforeAll(async () => {
    set = await startSentinelSet();
    pipeline = await new Pipeline(set.roles, 'xiflta', 180).start();
  }, 120_000);

  afterAll(async () => {
    await pipeline?.stop();
    await set?.stop();
  });

  test('a scan seen through Sentinel is blocked in the sensor\'s kernel', async () => {
    pipeline.scan('198.18.180.66', 1);
    await until('the block in the kernel', () => pipeline.inKernel('198.18.180.66/32'), 30_000);
    expect(pipeline.enforcer!.ready).toBe(true);
  });

  test('after SIGKILL of the primary: buffered windows arrive in order, the kernel keeps its blocks, a new block reaches it', async () => {
    const before = await pipeline.enforcer!.reconcile();
    expect(before.added + before.removed).toBe(0);
    // The replica has every write so far (the failover under test loses nothing by itself).
    const admin = connectRedis(set.url).on('error', () => undefined);
    try {
      expect(await admin.call('WAIT', '1', '5000')).toBe(1);
    } finally {
      admin.disconnect();
    }

    const killedMs = Date.now();
    const killedPort = await set.killPrimary();
    await until('the publisher to notice', () => !pipeline.publisher!.stats().connected, 10_000);
    const windows = Array.from({ length: 10 }, (_, i) => 100 + i);
    for (const w of windows) pipeline.publisher!.tick(tick('xiflta-s', w, [browsing(w - 100)]));
    expect(pipeline.publisher!.stats().buffered).toBeGreaterThanOrEqual(windows.length);

    // The first write through the Sentinels' URL that succeeds ends the gap.
    const probe = connectRedis(set.url).on('error', () => undefined);
    try {
      await until('a new primary', async () => (await set.primaryPort()) !== killedPort, 60_000);
      await probe.set('xiflt:probe', String(killedMs));
    } finally {
      probe.disconnect();
    }
    const gapMs = Date.now() - killedMs;
    console.log(`Sentinel failover gap (SIGKILL of the primary → first write on the new primary): ${gapMs} ms`);

    await pipeline.expectCaughtUp(windows, before, '198.18.180.66', '198.18.180.67');
    // Every part ran as its role, before and after the failover, and nothing was refused.
    expect(await set.aclLog()).toBe('');
  }, 120_000);
});

describe('a client behind Sentinel that hears of the failover while it asks a Sentinel for the primary', () => {
  let set: SentinelSet;

  beforeAll(async () => {
    set = await startSentinelSet();
  }, 60_000);

  afterAll(async () => {
    await set?.stop();
  });

  test('reconnects to the promoted replica instead of giving up', async () => {
    // The Sentinels announce +switch-master while the clients of the dead primary retry; on a busy
    // machine a client may then be waiting for a Sentinel's answer. ioredis 6.0 ended such a client
    // for good (a sensor then buffers until it drops windows). Holding each answer until the
    // announcement makes that overlap certain here.
    const announcements = new Redis({ host: '127.0.0.1', port: set.sentinelPorts[0] }).on('error', () => undefined);
    let announced = false;
    announcements.on('message', () => {
      announced = true;
    });
    await announcements.subscribe('+switch-master');
    const client = connectRedis(set.roles.sensor, { enableOfflineQueue: false }).on('error', () => undefined);
    try {
      await until('the client connected', () => client.status === 'ready');
      const connector = (client as unknown as { connector: { resolve(sentinel: unknown): Promise<unknown> } }).connector;
      const askSentinel = connector.resolve.bind(connector);
      connector.resolve = async (sentinel) => {
        const primary = await askSentinel(sentinel);
        await until('the failover announced', () => announced, 60_000);
        return primary;
      };
      let reconnected = false;
      client.once('ready', () => {
        reconnected = true;
      });
      const killedPort = await set.killPrimary();
      await until('the client on the new primary', () => {
        if (client.status === 'end') throw new Error('the client gave up reconnecting');
        return reconnected;
      }, 60_000);
      expect(await set.primaryPort()).not.toBe(killedPort);
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
      announcements.disconnect();
    }
  }, 120_000);
});

describe('on a 3-primary Redis Cluster, each part as its ACL role', () => {
  let cluster: TestCluster;
  let pipeline: Pipeline;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    pipeline = await new Pipeline(cluster.roles, 'xifltb', 181).start();
  }, 120_000);

  afterAll(async () => {
    await pipeline?.stop();
    await cluster?.stop();
  });

  test('the windows partitions are spread over all three primaries', async () => {
    const owners = await cluster.slotOwners();
    const nodeOf = (key: string): number => owners.find((r) => r.from <= clusterKeySlot(key) && clusterKeySlot(key) <= r.to)!.port;
    const perNode = new Map<number, number>();
    for (let p = 0; p < PARTITIONS; p++) {
      const port = nodeOf(`bull:${partitionQueue(p)}:wait`);
      perNode.set(port, (perNode.get(port) ?? 0) + 1);
    }
    expect([...perNode.values()].sort()).toEqual([5, 5, 6]);
  });

  test('sensor publisher → detector → incident → ledger block → enforcer\'s kernel', async () => {
    pipeline.scan('198.18.181.66', 1);
    await until('the block in the kernel', () => pipeline.inKernel('198.18.181.66/32'), 30_000);
    const incidents = new IncidentStore(pipeline.redis);
    expect(await pipeline.redis.hget(incidents.keyOf('scan-tcp-vertical', '198.18.181.66'), 'status')).toBe('open');
    // Announced after the block is decided: the kernel may have the block first.
    await until('the scan announced', async () => (await pipeline.alerts.getJobs(['waiting'])).some((j) => j.data.kind === 'incident' && j.data.phase === 'opened' && j.data.incident.ruleId === 'scan-tcp-vertical' && j.data.incident.key === '198.18.181.66'), 30_000);
    expect(pipeline.publisher!.stats()).toMatchObject({ dropped: 0, buffered: 0 });
    // The roles' rules are enough on a cluster (CLUSTER SLOTS included): no node refused anything.
    expect(await cluster.aclLog()).toBe('');
    // And they still confine: the sensor's user cannot write the ledger, and the node says so.
    const sensor = connectRedis(cluster.roles.sensor, { maxRetriesPerRequest: 1 });
    try {
      await expect(sensor.set(`${NS}blocks:rev`, '0')).rejects.toThrow(/NOPERM/);
    } finally {
      sensor.disconnect();
    }
    expect(await cluster.aclLog()).toMatch(/xdp-ids-sensor/);
  }, 60_000);
});

describe('on a Redis Cluster with a replica per primary, each part as its ACL role', () => {
  const LEDGER_KEY = `${NS}blocks:rev`;
  let cluster: TestCluster;
  let pipeline: Pipeline;

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicas: true });
    // A sensor whose windows partition shares the ledger's primary: losing that node takes both away.
    const ledgerNode = await cluster.primaryOf(LEDGER_KEY);
    let sensorId: string | undefined;
    for (let i = 0; !sensorId; i++) {
      const candidate = `xifltc-s${i}`;
      if (await cluster.primaryOf(`bull:${partitionQueue(partitionOf(candidate))}:wait`) === ledgerNode) sensorId = candidate;
    }
    pipeline = await new Pipeline(cluster.roles, 'xifltc', 200, sensorId).start();
  }, 120_000);

  afterAll(async () => {
    await pipeline?.stop();
    await cluster?.stop();
  });

  test('after SIGKILL of the primary of the ledger and the sensor\'s partition: its replica takes over, windows arrive in order, the kernel keeps its blocks, a new block reaches it', async () => {
    pipeline.scan('198.18.200.66', 1);
    await until('the block in the kernel', () => pipeline.inKernel('198.18.200.66/32'), 30_000);
    const before = await pipeline.enforcer!.reconcile();
    expect(before.added + before.removed).toBe(0);
    // The replicas have every write so far (the failover under test loses nothing by itself).
    await cluster.replicated();

    const killedMs = Date.now();
    const killedPort = await cluster.killPrimaryOf(LEDGER_KEY);
    // A window a second or so while the node is gone and after its replica took over: the sensor never waits for Redis.
    const windows: number[] = [];
    let w = 100;
    const ticking = setInterval(() => {
      windows.push(w);
      pipeline.publisher!.tick(tick(pipeline.sensorId, w++, [browsing(w % 50)]));
    }, 250);
    let gapMs: number;
    try {
      // The first write in the ledger's slot that succeeds ends the gap.
      const probe = connectRedis(cluster.url).on('error', () => undefined);
      try {
        await until('a primary for the ledger\'s slot', async () => ![undefined, killedPort].includes(await cluster.primaryOf(LEDGER_KEY)), 60_000);
        await probe.set('xiflt:probe{ledger}', String(killedMs));
      } finally {
        probe.disconnect();
      }
      gapMs = Date.now() - killedMs;
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      clearInterval(ticking);
    }
    console.log(`Cluster failover gap (SIGKILL of the ledger's primary → first write on its promoted replica): ${gapMs} ms`);

    await pipeline.expectCaughtUp(windows, before, '198.18.200.66', '198.18.200.67');
    expect(await cluster.aclLog()).toBe('');
  }, 120_000);
});
