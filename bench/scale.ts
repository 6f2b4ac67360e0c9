/**
 * npm run bench:scale [-- --sensors N --ticks N --sources N --steady-seconds N --rounds N --blocks N]:
 * the pipeline on Redis set-ups that scale out, all real and local: a 3-primary Redis Cluster and
 * a primary with a replica behind 3 Sentinels (test/support/redis-ha.ts). About 5 minutes.
 *
 * - windows/s, with 1 and then 2 detector processes (`xdp-ids detector --no-model`, separate node
 *   processes), taking turns --rounds times (medians reported): N synthetic sensors (real
 *   QueuePublishers, generated windows of --sources sources) publish --ticks ticks each while the
 *   partition queues are paused (the publishers' encoding is timed apart, and does not share the
 *   cores with the detectors being timed); then the queues resume and the clock runs until every
 *   one is empty. Sensors are picked so that each detector owns the partitions of as many of them.
 * - detector lag at a steady load (every sensor one tick a second for --steady-seconds): from a
 *   job's `added` to its `completed` event (BullMQ's event streams, ids in ms), p95. Behind
 *   Sentinel (one server) also Redis memory per queued window (used_memory over the paused
 *   backlog) and Redis commands per sensor tick at the steady load (total_commands_processed:
 *   the publishers', the detectors' and their leases' together).
 * - block → every sensor: 3 sensors (real XDP programs on veths in namespaces xifltc…xiflte,
 *   198.18.182-184.0/24, each with its enforcer) and a LedgerBlocker; from the request to the first
 *   1 ms poll that finds the entry in all 3 kernels, --blocks times, p95.
 * - failover gap (Sentinel): SIGKILL of the primary → the first write through the Sentinels' URL
 *   that succeeds on the promoted replica.
 * - detector takeover (Cluster): SIGKILL of one of 2 detectors → every partition's lease held by
 *   the other (the dead one's leases run out: 5 s).
 *
 * Everything shares this machine's cores: Redis nodes, detectors and this process, so the
 * 2-detector figure says how much a second process gains here, not on 2 hosts. The very last
 * stdout line is JSON (top-level figures from the Cluster; block p95 the worse of the two
 * set-ups); loggers are silent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import pino from 'pino';
import { LedgerBlocker } from '../blocking/blocker';
import { startEnforcer, type Enforcer } from '../blocking/enforcer';
import { BlockLedger } from '../blocking/ledger';
import { connectRedis, type RedisClient } from '../common/redis';
import { NO_UNTRACKED, sourceWindowOf, type SensorTick, type SourceWindow } from '../common/sensor-tick';
import { PARTITIONS, partitionOf, partitionQueue } from '../common/windows-jobs';
import { partitionLeaseKey } from '../detector/partitions';
import { NetnsLab } from '../lab/netns';
import { Sensor } from '../sensor/daemon';
import { QueuePublisher } from '../sensor/publisher';
import { blockRequest } from '../test/support/block-requests';
import { CollectingSink } from '../test/support/collecting-sink';
import { startRedisCluster, startSentinelSet } from '../test/support/redis-ha';
import { until } from '../test/support/until';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const SENSORS = arg('sensors', 8);
const TICKS = arg('ticks', 20);
const SOURCES = arg('sources', 5000);
const BLOCKS = arg('blocks', 20);
const ROUNDS = arg('rounds', 3);
const log = pino({ level: 'silent' });
const CLI = path.join(__dirname, '..', 'bin', 'xdp-ids.js');

function p95(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)];
}

/** A sensor's windows: every source a light TCP client, different per sensor and tick. */
function tickOf(sensor: string, s: number, window: number): SensorTick {
  const sources: SourceWindow[] = Array.from({ length: SOURCES }, (_, i) => sourceWindowOf(`10.${s}.${(i >> 8) & 255}.${i & 255}`, {
    packets: 20 + ((i + window) % 50), bytes: 12_000, syn: 1, ackOnly: 15, fin: 1, distinctPorts: 1, distinctHosts: 1,
  }));
  const endMs = Date.now();
  return { sensor, iface: 'bench0', window, startMs: endMs - 1000, endMs, sources, destinations: [], untracked: { ...NO_UNTRACKED }, globals: {}, trackedSources: SOURCES, evictedSources: 0 };
}

/** Who holds each partition's lease now. */
async function leaseHolders(redis: RedisClient): Promise<Array<string | null>> {
  return await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => redis.get(partitionLeaseKey(p))));
}

function startDetectors(url: string, n: number): ChildProcess[] {
  return Array.from({ length: n }, () => spawn(process.execPath, [CLI, 'detector', '--no-model'], {
    env: { ...process.env, XDP_IDS_REDIS_URL: url, XDP_IDS_LOG_LEVEL: 'error' }, stdio: ['ignore', 'ignore', 'inherit'],
  }));
}

async function stopDetectors(detectors: ChildProcess[]): Promise<void> {
  await Promise.all(detectors.map((d) => new Promise<void>((resolve) => {
    if (d.exitCode !== null || d.signalCode !== null) return resolve();
    d.once('exit', () => resolve());
    d.kill('SIGTERM');
  })));
}

/** Sensor ids, SENSORS of them, each on its own partition, shared equally by the lease holders. */
function balancedSensors(holders: Array<string | null>, run: string): string[] {
  const owners = [...new Set(holders)];
  const perOwner = new Map(owners.map((o) => [o, 0]));
  const usedPartitions = new Set<number>();
  const out: string[] = [];
  for (let k = 0; out.length < SENSORS && k < 100_000; k++) {
    const id = `${run}-${k}`;
    const p = partitionOf(id);
    const owner = holders[p];
    if (usedPartitions.has(p) || perOwner.get(owner)! >= Math.ceil(SENSORS / owners.length)) continue;
    usedPartitions.add(p);
    perOwner.set(owner, perOwner.get(owner)! + 1);
    out.push(id);
  }
  return out;
}

/** Event stream fields as an object. */
function fieldsOf(fields: string[]): Record<string, string> {
  return Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]));
}

/** Per job: `completed` minus `added` event time, over every partition queue. */
async function detectorLagsMs(redis: RedisClient, sinceMs: number): Promise<number[]> {
  const lags: number[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const added = new Map<string, number>();
    for (const [id, fields] of await redis.xrange(`bull:${partitionQueue(p)}:events`, String(sinceMs), '+')) {
      const e = fieldsOf(fields);
      const at = Number(id.split('-')[0]);
      if (e.event === 'added') added.set(e.jobId, at);
      else if (e.event === 'completed' && added.has(e.jobId)) lags.push(at - added.get(e.jobId)!);
    }
  }
  return lags;
}

interface Throughput {
  windowsPerS: number;
  publishWindowsPerS: number;
  lagP95Ms: number;
  windows: number;
  /** On one server (behind Sentinel): Redis memory per queued window, and commands per sensor tick at the steady load. */
  bytesPerWindow?: number;
  commandsPerTick?: number;
}

/** A field of INFO of the server behind `redis` (a Cluster's nodes differ: undefined there). */
async function infoField(redis: RedisClient, section: string, field: string): Promise<number | undefined> {
  if (redis instanceof Cluster) return undefined;
  return Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(await redis.info(section))?.[1]);
}

const STEADY_SECONDS = arg('steady-seconds', 10);

/**
 * With `detectorCount` detector processes on `url`: their throughput on a backlog (published while
 * the partition queues are paused, so that the publishers' encoding does not share the cores with
 * the detectors being timed), then their lag at a steady load (every sensor one tick a second).
 */
async function throughput(url: string, detectorCount: number, run: string): Promise<Throughput> {
  const redis = connectRedis(url);
  const queues = Array.from({ length: PARTITIONS }, (_, p) => new Queue(partitionQueue(p), { connection: redis }));
  await Promise.all(queues.map((q) => q.pause()));
  const detectors = startDetectors(url, detectorCount);
  const drained = (): Promise<boolean> => until('every partition queue drained', async () => {
    const counts = await Promise.all(queues.map((q) => q.getJobCounts('wait', 'active', 'delayed', 'prioritized')));
    return counts.every((c) => Object.values(c).every((n) => n === 0));
  }, 600_000);
  const publish = async (sensors: string[], ticks: number, firstWindow: number, everyMs: number): Promise<void> => {
    const publishers = sensors.map((id) => new QueuePublisher({ redisUrl: url, sensorId: id, log, maxBufferedJobs: 100_000 }));
    for (let t = 0; t < ticks; t++) {
      const due = performance.now() + everyMs;
      for (const [s, pub] of publishers.entries()) pub.tick(tickOf(sensors[s], s, firstWindow + t));
      if (everyMs > 0) await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
    }
    for (const pub of publishers) await pub.close(120_000);
  };
  try {
    const holders = await until('the detectors to share every partition', async () => {
      const h = await leaseHolders(redis);
      return h.every((x) => x !== null) && new Set(h).size === detectorCount ? h : undefined;
    }, 60_000);
    const windows = SENSORS * TICKS * SOURCES;
    const memoryBefore = await infoField(redis, 'memory', 'used_memory');
    const publishing = performance.now();
    await publish(balancedSensors(holders, `${run}-backlog`), TICKS, 1000, 0);
    const publishWindowsPerS = windows / ((performance.now() - publishing) / 1000);
    const memoryQueued = await infoField(redis, 'memory', 'used_memory');
    const started = performance.now();
    await Promise.all(queues.map((q) => q.resume()));
    await drained();
    const windowsPerS = windows / ((performance.now() - started) / 1000);

    const steadyFromMs = Date.now();
    const commandsBefore = await infoField(redis, 'stats', 'total_commands_processed');
    await publish(balancedSensors(holders, `${run}-steady`), STEADY_SECONDS, 5000, 1000);
    await drained();
    const commandsAfter = await infoField(redis, 'stats', 'total_commands_processed');
    return {
      windowsPerS, publishWindowsPerS, lagP95Ms: p95(await detectorLagsMs(redis, steadyFromMs)), windows,
      ...(memoryBefore !== undefined && memoryQueued !== undefined ? { bytesPerWindow: (memoryQueued - memoryBefore) / windows } : {}),
      ...(commandsBefore !== undefined && commandsAfter !== undefined ? { commandsPerTick: (commandsAfter - commandsBefore) / (SENSORS * STEADY_SECONDS) } : {}),
    };
  } finally {
    await stopDetectors(detectors);
    await Promise.all(queues.map((q) => q.close()));
    redis.disconnect();
  }
}

/** Request → entry in all 3 kernels, BLOCKS times. */
async function blockPropagation(url: string, subnetBase: number): Promise<number[]> {
  const redis = connectRedis(url);
  const labs: NetnsLab[] = [];
  const sensors: Sensor[] = [];
  const enforcers: Enforcer[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const lab = new NetnsLab(`xiflt${'cde'[i]}`, subnetBase + i).create();
      labs.push(lab);
      sensors.push(Sensor.start({ iface: lab.iface, pin: false }, new CollectingSink(), log));
      enforcers.push(await startEnforcer({ program: sensors[i].program, redisUrl: url, sensorId: lab.name, log }));
    }
    const blocker = new LedgerBlocker(new BlockLedger(redis), { component: 'bench', hostAllow: [], verified: { maxNewPerMinute: 10_000 } }, undefined, log);
    const times: number[] = [];
    for (let i = 0; i < BLOCKS; i++) {
      const target = `198.18.185.${i + 1}/32`;
      const start = performance.now();
      await blocker.request(blockRequest(target.replace('/32', ''), { ruleId: 'bench' }));
      while (!sensors.every((s) => s.program.listBlocks().some((b) => b.prefix === target))) await new Promise((r) => setTimeout(r, 1));
      times.push(performance.now() - start);
    }
    return times;
  } finally {
    for (const e of enforcers) await e.stop();
    for (const s of sensors) s.stop();
    for (const lab of labs) lab.destroy();
    redis.disconnect();
  }
}

/** 2 detectors share the partitions; SIGKILL of one → every partition held by the other (its leases run out, the survivor takes them). */
async function detectorTakeoverS(url: string): Promise<number> {
  const redis = connectRedis(url);
  const detectors = startDetectors(url, 2);
  try {
    const holders = await until('the detectors to share every partition', async () => {
      const h = await leaseHolders(redis);
      return h.every((x) => x !== null) && new Set(h).size === 2 ? h : undefined;
    }, 60_000);
    const killed = performance.now();
    detectors[0].kill('SIGKILL');
    // Which holder was the killed process is not known from outside; the survivor ends up with all.
    await until('one detector holding every partition', async () => new Set(await leaseHolders(redis)).size === 1, 60_000);
    const survivor = (await leaseHolders(redis))[0];
    if (survivor === null || !holders.includes(survivor)) throw new Error('a partition went to a detector that was not running');
    return (performance.now() - killed) / 1000;
  } finally {
    await stopDetectors(detectors);
    redis.disconnect();
  }
}

async function failoverGapS(set: Awaited<ReturnType<typeof startSentinelSet>>): Promise<number> {
  const probe = connectRedis(set.url).on('error', () => undefined);
  try {
    await probe.set('xiflt:probe', '0');
    const killed = performance.now();
    const port = await set.killPrimary();
    await until('a new primary', async () => (await set.primaryPort()) !== port, 60_000);
    await probe.set('xiflt:probe', '1');
    return (performance.now() - killed) / 1000;
  } finally {
    probe.disconnect();
  }
}

interface SetupFigures {
  one: Throughput;
  two: Throughput;
  blocksMs: number[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The median of each figure over the rounds. */
function medianOf(runs: Throughput[]): Throughput {
  return {
    windowsPerS: median(runs.map((r) => r.windowsPerS)), publishWindowsPerS: median(runs.map((r) => r.publishWindowsPerS)),
    lagP95Ms: median(runs.map((r) => r.lagP95Ms)), windows: runs[0].windows,
    ...(runs[0].bytesPerWindow !== undefined ? { bytesPerWindow: median(runs.map((r) => r.bytesPerWindow!)), commandsPerTick: median(runs.map((r) => r.commandsPerTick!)) } : {}),
  };
}

/** 1 and 2 detectors take turns, ROUNDS times, so that other work on the machine weighs on both alike. */
async function measureSetup(name: string, url: string, subnetBase: number): Promise<SetupFigures> {
  const ones: Throughput[] = [];
  const twos: Throughput[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    ones.push(await throughput(url, 1, `${name}-1-${r}`));
    twos.push(await throughput(url, 2, `${name}-2-${r}`));
    process.stdout.write(`${name}, round ${r + 1}: 1 detector ${Math.round(ones[r].windowsPerS).toLocaleString('en')} windows/s (lag p95 ${ones[r].lagP95Ms} ms), `
      + `2 detectors ${Math.round(twos[r].windowsPerS).toLocaleString('en')} windows/s (lag p95 ${twos[r].lagP95Ms} ms)\n`);
  }
  const [one, two] = [medianOf(ones), medianOf(twos)];
  process.stdout.write(`${name}, median: 1 detector ${Math.round(one.windowsPerS).toLocaleString('en')} windows/s, 2 detectors ${Math.round(two.windowsPerS).toLocaleString('en')} windows/s `
    + `(ratio ${(two.windowsPerS / one.windowsPerS).toFixed(2)}) on backlogs of ${one.windows.toLocaleString('en')} windows (published at ${Math.round(one.publishWindowsPerS).toLocaleString('en')}/s); `
    + `lag p95 at ${(SENSORS * SOURCES).toLocaleString('en')} windows/s: ${one.lagP95Ms} and ${two.lagP95Ms} ms\n`);
  if (one.bytesPerWindow !== undefined) {
    process.stdout.write(`${name}: ${one.bytesPerWindow.toFixed(1)} bytes of Redis memory per queued window; `
      + `${one.commandsPerTick!.toFixed(1)} (1 detector) and ${two.commandsPerTick!.toFixed(1)} (2 detectors) Redis commands per sensor tick at the steady load\n`);
  }
  const blocksMs = await blockPropagation(url, subnetBase);
  process.stdout.write(`${name}, block → all 3 sensors' kernels: p95 ${p95(blocksMs).toFixed(1)} ms, max ${Math.max(...blocksMs).toFixed(1)} ms (${blocksMs.length} blocks)\n`);
  return { one, two, blocksMs };
}

async function main(): Promise<void> {
  process.stdout.write(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} CPUs, node ${process.version}; `
    + `${SENSORS} sensors × ${TICKS} ticks × ${SOURCES.toLocaleString('en')} sources a run\n`);
  const cluster = await startRedisCluster();
  let c: SetupFigures;
  let takeover: number;
  try {
    c = await measureSetup('cluster (3 primaries)', cluster.url, 182);
    takeover = await detectorTakeoverS(cluster.url);
    process.stdout.write(`cluster (3 primaries), SIGKILL of 1 of 2 detectors → its partitions all taken by the other: ${takeover.toFixed(2)} s\n`);
  } finally {
    await cluster.stop();
  }
  const set = await startSentinelSet();
  let s: SetupFigures;
  let gap: number;
  try {
    s = await measureSetup('sentinel (primary + replica)', set.url, 182);
    gap = await failoverGapS(set);
    process.stdout.write(`sentinel failover gap (SIGKILL of the primary → first write on the new one): ${gap.toFixed(2)} s\n`);
  } finally {
    await set.stop();
  }
  const round = (n: number, digits = 0): number => Number(n.toFixed(digits));
  process.stdout.write(`${JSON.stringify({
    windows_per_s_1_detector: round(c.one.windowsPerS), windows_per_s_2_detectors: round(c.two.windowsPerS), scaling_ratio: round(c.two.windowsPerS / c.one.windowsPerS, 3),
    block_to_all_sensors_p95_ms: round(Math.max(p95(c.blocksMs), p95(s.blocksMs)), 1), failover_gap_s: round(gap, 2),
    detector_takeover_s: round(takeover, 2),
    detector_lag_p95_ms_1_detector: c.one.lagP95Ms, detector_lag_p95_ms_2_detectors: c.two.lagP95Ms,
    sentinel_windows_per_s_1_detector: round(s.one.windowsPerS), sentinel_windows_per_s_2_detectors: round(s.two.windowsPerS),
    sentinel_scaling_ratio: round(s.two.windowsPerS / s.one.windowsPerS, 3),
    cluster_block_p95_ms: round(p95(c.blocksMs), 1), sentinel_block_p95_ms: round(p95(s.blocksMs), 1),
    publish_windows_per_s: round(c.one.publishWindowsPerS), redis_bytes_per_window: round(s.one.bytesPerWindow!, 1),
    redis_commands_per_tick_1_detector: round(s.one.commandsPerTick!, 1), redis_commands_per_tick_2_detectors: round(s.two.commandsPerTick!, 1), sensors: SENSORS, ticks: TICKS, sources: SOURCES, cpus: os.cpus().length,
  })}\n`);
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
