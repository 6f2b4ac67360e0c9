/**
 * The anomaly model measured on real traffic in a netns lab (ximodel, 198.18.7.0/24 and
 * fd00:18:7::/64): hundreds of benign sources (a node client per namespace driving HTTP,
 * keep-alive API calls, bare TCP connects and DNS-like UDP from every address it holds, plus real
 * curl, wrk, iperf3 and ping), a sensor recording their windows, a model trained on a first run,
 * then a second, held-apart benign run (new seed, new timing and profile mix) during which real
 * scans and floods run from fresh attacker addresses. The model trains in a worker thread while
 * the second run is recorded (it never sees that run); then every window of the second run is
 * scored, in tick order, by AnomalyScorer and by the default rule pack (RuleEngine), exactly as
 * live scoring would. Prints per attack type the share of runs detected and the delay, false
 * positives per benign window, how far benign windows come to the single-window ("certain")
 * factor, what the model catches that the rules miss and the reverse, scoring speed against
 * TF.js predict, and as the last line JSON.
 *
 *   node dist/bench/eval-model.js [--long] [--save DIR | --replay DIR] [--lab NAME --subnet N]
 * --long: 5 runs per attack type and longer runs (about 5 minutes instead of 2).
 * --lab, --subnet: another lab name (namespace prefix) and 198.18.N.0/24, so that it can run next
 * to other labs on one machine.
 * --save DIR: also write the lab's windows and attack runs to DIR; --replay DIR: no lab, train and
 * evaluate on a saved run (to compare changes to the model on the same traffic).
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { SensorTick } from '../common/sensor-tick';
import { createLogger } from '../common/log';
import { FEATURE_COUNT, FeatureExtractor } from '../detector/model/source-features';
import { AnomalyScorer, DEFAULT_CERTAIN_FACTOR, DEFAULT_MIN_CERTAIN_PACKETS, type ModelDetection } from '../detector/model/scorer';
import { seededRandom } from '../detector/model/random';
import { tensorflow } from '../detector/model/tf-backend';
import type { Sequential, Tfjs } from '../detector/model/tfjs';
import { AnomalyModel, type ModelMeta } from '../detector/model/anomaly-model';
import { DenseNetwork, type DenseLayer } from '../detector/model/network';
import { readWindows } from '../detector/model/records';
import { trainModel } from '../detector/model/train';
import { RuleEngine } from '../detector/rules/engine';
import { defaultRulesDir, loadRules } from '../detector/rules/loader';
import { NetnsLab, type LabHost } from '../lab/netns';
import { HTTP_PORT, IPERF_PORT, startLabServices } from '../lab/services';
import { Sensor } from '../sensor/daemon';

const LONG = process.argv.includes('--long');
const TRAIN_S = LONG ? 180 : 45;
const RUNS_PER_TYPE = LONG ? 5 : 3;
const SLOW_RUNS = LONG ? 5 : 3;
const DNS_PORT = 53;
const K = 3;
const N = 5;
/** After an attack run ends, a detection within this long still counts for it. */
const GRACE_MS = 3000;

// ---------------------------------------------------------------- benign client (in a namespace)

interface WorkerConfig {
  v4: string[];
  v6: string[];
  host4: string;
  host6: string;
  seconds: number;
  seed: number;
}

type Profile = 'browser' | 'api' | 'dns' | 'browser+dns' | 'poller';
const PROFILES: Profile[] = ['browser', 'browser', 'api', 'dns', 'dns', 'browser+dns', 'poller'];

/** One process per namespace drives every address it holds, each with its own profile and sessions. */
async function benignWorker(config: WorkerConfig): Promise<void> {
  const random = seededRandom(config.seed);
  const until = Date.now() + config.seconds * 1000;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.min(ms, Math.max(0, until - Date.now()))));
  const exp = (meanMs: number) => -Math.log(1 - random()) * meanMs;
  const counts = { http: 0, dns: 0, connects: 0, errors: 0 };

  function get(local: string, host: string, agent: http.Agent | false): Promise<void> {
    return new Promise((resolve) => {
      const req = http.get({ host, port: HTTP_PORT, path: `/${Math.floor(random() * 1000)}`, localAddress: local, agent, timeout: 2000 }, (res) => {
        res.resume();
        res.on('end', () => {
          counts.http++;
          resolve();
        });
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => {
        counts.errors++;
        resolve();
      });
    });
  }

  function connect(local: string, host: string): Promise<void> {
    return new Promise((resolve) => {
      const s = net.connect({ host, port: HTTP_PORT, localAddress: local, timeout: 2000 }, () => {
        counts.connects++;
        s.end();
      });
      s.on('close', () => resolve());
      s.on('timeout', () => s.destroy());
      s.on('error', () => counts.errors++);
    });
  }

  async function client(local: string, host: string, family: 4 | 6, profile: Profile): Promise<void> {
    const dns = profile === 'dns' || profile === 'browser+dns' ? dgram.createSocket(family === 4 ? 'udp4' : 'udp6') : undefined;
    if (dns) await new Promise<void>((r) => dns.bind(0, local, r));
    dns?.on('message', () => counts.dns++);
    const agent = profile === 'api' ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
    await sleep(random() * 3000);
    while (Date.now() < until) {
      // Sessions: active for a while, then quiet, as people and jobs are.
      const sessionEnd = Date.now() + 5000 + random() * 25_000;
      while (Date.now() < Math.min(sessionEnd, until)) {
        if (profile === 'browser' || profile === 'browser+dns') {
          const burst = 1 + Math.floor(random() * 4);
          await Promise.all(Array.from({ length: burst }, () => get(local, host, false)));
        }
        if (profile === 'api') await get(local, host, agent);
        if (profile === 'poller') await connect(local, host);
        if (dns) {
          const queries = 1 + Math.floor(random() * 3);
          for (let q = 0; q < queries; q++) dns.send(Buffer.alloc(30 + Math.floor(random() * 30), q), DNS_PORT, host);
        }
        await sleep(profile === 'api' ? exp(400) : profile === 'poller' ? exp(3000) : exp(1500));
      }
      await sleep(2000 + random() * 10_000);
    }
    dns?.close();
    if (agent) agent.destroy();
  }

  await Promise.all([
    ...config.v4.map((a) => client(a, config.host4, 4, PROFILES[Math.floor(random() * PROFILES.length)])),
    ...config.v6.map((a) => client(a, config.host6, 6, PROFILES[Math.floor(random() * PROFILES.length)])),
  ]);
  process.stdout.write(`${JSON.stringify(counts)}\n`);
}

// ---------------------------------------------------------------- the lab

interface BenignHost {
  host: LabHost;
  v4: string[];
  v6: string[];
}

function addV6(host: LabHost, addresses: string[]): void {
  for (const a of addresses) execFileSync('ip', ['-n', host.netns, '-6', 'addr', 'add', `${a}/64`, 'dev', 'eth0', 'nodad']);
}

const NAMESPACES = 5;
const V4_PER_NAMESPACE = 36;
const V6_PER_NAMESPACE = 74;

/**
 * Five namespaces of 36 IPv4 and 74 IPv6 client addresses each: 550 benign sources, enough for
 * over 10,000 benign windows in a one-minute run (the IPv4 /24 also holds the attackers).
 */
function benignHosts(lab: NetnsLab): BenignHost[] {
  return Array.from({ length: NAMESPACES }, (_, i) => {
    const first = 10 + i * V4_PER_NAMESPACE;
    const v4 = Array.from({ length: V4_PER_NAMESPACE - 1 }, (_, j) => `${lab.v4Prefix}.${first + 1 + j}`);
    const host = lab.addHost(`b${i}`, first, v4);
    const v6 = Array.from({ length: V6_PER_NAMESPACE }, (_, j) => `${lab.v6Prefix}${i + 1}:${(j + 1).toString(16)}`);
    addV6(host, v6);
    return { host, v4: [host.v4, ...v4], v6 };
  });
}

/** A tiny DNS-like UDP responder on the protected host. */
async function startDns(lab: NetnsLab): Promise<() => void> {
  const sockets = [dgram.createSocket('udp4'), dgram.createSocket('udp6')];
  await Promise.all(sockets.map((s, i) => new Promise<void>((r) => s.bind(DNS_PORT, i === 0 ? lab.hostV4 : lab.hostV6, r))));
  for (const s of sockets) s.on('message', (msg, rinfo) => s.send(Buffer.concat([msg, Buffer.alloc(40)]), rinfo.port, rinfo.address));
  return () => sockets.forEach((s) => s.close());
}

/** Benign traffic for `seconds`: the node clients plus real curl, wrk, iperf3 and ping, each bounded. */
function startBenign(lab: NetnsLab, hosts: BenignHost[], seconds: number, seed: number): Promise<void> {
  const workers = hosts.map((h, i) => new Promise<void>((resolve) => {
    const config: WorkerConfig = { v4: h.v4.slice(5), v6: h.v6, host4: lab.hostV4, host6: lab.hostV6, seconds, seed: seed * 10 + i };
    lab.spawn(h.host, [process.execPath, __filename, '--benign-worker', JSON.stringify(config)], { stdio: 'ignore' }).on('exit', () => resolve());
  }));
  const [b0, b1, b2, b3, b4] = hosts;
  const url = `http://${lab.hostV4}:${HTTP_PORT}/`;
  const rounds = Math.ceil(seconds / 2);
  // curl from five addresses, one request each every ~2 s.
  lab.spawn(b0.host, ['sh', '-c', `for i in $(seq ${rounds}); do for a in ${b0.v4.slice(0, 5).join(' ')}; do curl -s -o /dev/null -m 2 --interface $a ${url}; done; sleep 2; done`]);
  // wrk bursts (keep-alive load) and iperf3 transfers from two namespaces' first addresses each,
  // staggered (the iperf3 server takes one client at a time): a one-minute baseline then holds a
  // handful of each rather than two, and a model can learn what a bulk transfer looks like.
  for (const [h, delay] of [[b1, 0], [b3, 5]] as const) {
    lab.spawn(h.host, ['sh', '-c', `sleep ${delay}; for i in $(seq ${Math.ceil(seconds / 12)}); do sleep 10; wrk -t1 -c4 -d2s ${url} >/dev/null 2>&1; done`]);
  }
  for (const [h, delay] of [[b2, 0], [b4, 8]] as const) {
    lab.spawn(h.host, ['sh', '-c', `sleep ${delay}; for i in $(seq ${Math.ceil(seconds / 17)}); do sleep 15; iperf3 -c ${lab.hostV4} -p ${IPERF_PORT} -t 2 -b 20M >/dev/null 2>&1; done`]);
  }
  // ping from a few addresses of b1.
  for (const a of b1.v4.slice(1, 4)) lab.spawn(b1.host, ['ping', '-q', '-I', a, '-i', '0.5', '-c', String(seconds * 2), '-w', String(seconds), lab.hostV4]);
  return Promise.all(workers).then(() => undefined);
}

// ---------------------------------------------------------------- attacks

type AttackType = 'nmap -sS' | 'nmap -sF' | 'nmap -sX' | 'nmap -sN' | 'nmap -sU' | 'hping3 SYN flood' | 'hping3 UDP flood' | 'hping3 ICMP flood' | 'nmap -sS -T2 (slow)';
/**
 * Blatant attacks run in two lanes at once, TCP scans in one and the UDP scan and floods in the
 * other, so that no two floods overlap (a destination-scope rule hit is credited to the flood
 * running at the time).
 */
const LANES: AttackType[][] = [['nmap -sS', 'nmap -sF', 'nmap -sX', 'nmap -sN'], ['nmap -sU', 'hping3 SYN flood', 'hping3 UDP flood', 'hping3 ICMP flood']];
const BLATANT: AttackType[] = LANES.flat();
const SLOW: AttackType = 'nmap -sS -T2 (slow)';

interface AttackRun {
  type: AttackType;
  src: string;
  startMs: number;
  endMs: number;
}

function attackArgv(type: AttackType, src: string, target: string): { argv: string[]; timeoutMs: number } {
  const nmap = (scan: string, ports: string, timing: string, seconds: number) => ({
    argv: ['nmap', '-n', '-Pn', scan, '-S', src, '-e', 'eth0', '-p', ports, '--max-retries', '0', timing, '--host-timeout', `${seconds}s`, target],
    timeoutMs: (seconds + 5) * 1000,
  });
  const hping = (flags: string[]) => ({ argv: ['hping3', '-q', ...flags, '-a', src, '-c', '2000', '-i', 'u500', target], timeoutMs: 10_000 });
  switch (type) {
    case 'nmap -sS': return nmap('-sS', '1-1000', '-T4', 10);
    case 'nmap -sF': return nmap('-sF', '1-1000', '-T4', 10);
    case 'nmap -sX': return nmap('-sX', '1-1000', '-T4', 10);
    case 'nmap -sN': return nmap('-sN', '1-1000', '-T4', 10);
    case 'nmap -sU': return nmap('-sU', '1-200', '-T4', 8);
    case 'hping3 SYN flood': return hping(['-S', '-p', '80']);
    case 'hping3 UDP flood': return hping(['--udp', '-p', '53']);
    case 'hping3 ICMP flood': return hping(['--icmp']);
    case SLOW: return nmap('-sS', '1-40', '-T2', 30);
  }
  throw new Error(`unknown attack ${type as string}`);
}

async function runAttack(lab: NetnsLab, attacker: LabHost, type: AttackType, src: string): Promise<AttackRun> {
  const { argv, timeoutMs } = attackArgv(type, src, lab.hostV4);
  const startMs = Date.now();
  // hping3 exits 1 when nothing answers (floods, closed ports); nmap's host timeout ends slow runs.
  await lab.run(attacker, argv, timeoutMs).catch(() => undefined);
  return { type, src, startMs, endMs: Date.now() };
}

// ---------------------------------------------------------------- measuring

interface Hit {
  key: string;
  atMs: number;
  scope: 'source' | 'destination';
  rule: string;
}

function firstHit(run: AttackRun, hits: Hit[], hostV4: string): Hit | undefined {
  const flood = run.type.startsWith('hping3');
  return hits.filter((h) => h.atMs >= run.startMs && h.atMs <= run.endMs + GRACE_MS
    && (h.key === run.src || (flood && h.scope === 'destination' && h.key === hostV4)))
    .sort((a, b) => a.atMs - b.atMs)[0];
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.cpus().length} cores, Linux ${os.release()}, Node ${process.version}`;
}

/** Windows/s of a full scorer (features, network, persistence) over the held-out ticks, each of `repeats` rounds >= 1 s: the median and the range, since the machine is shared. */
function scoringSpeed(model: AnomalyModel, ticks: SensorTick[], repeats: number): { median: number; min: number; max: number } {
  const rates: number[] = [];
  for (let r = 0; r < repeats; r++) {
    let windows = 0;
    const started = performance.now();
    while (performance.now() - started < 1000) {
      const scorer = new AnomalyScorer(model, { k: K, n: N });
      for (const t of ticks) scorer.score(t);
      windows += scorer.stats().windows;
    }
    rates.push(windows / ((performance.now() - started) / 1000));
  }
  return { median: median(rates), min: Math.min(...rates), max: Math.max(...rates) };
}

/** What the training worker sends back: enough to rebuild the scorer's model without TF.js. */
interface TrainedParts {
  meta: ModelMeta;
  layers: DenseLayer[];
}

/**
 * Trains in a worker thread, so that the main thread's sensor keeps reading the kernel on time
 * while the held-apart run is recorded.
 */
function trainInWorker(ticks: SensorTick[]): Promise<AnomalyModel> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(__filename, { workerData: { train: ticks } });
    worker.once('message', (parts: TrainedParts) => {
      resolve(new AnomalyModel('eval', parts.meta, new DenseNetwork(parts.layers)));
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`training worker exited with ${code}`)));
  });
}

async function trainingWorker(ticks: SensorTick[]): Promise<void> {
  const trained = await trainModel(ticks, { seed: 1 });
  trained.tfModel.dispose();
  const parts: TrainedParts = { meta: trained.model.meta, layers: [...trained.model.network.layers] };
  parentPort!.postMessage(parts);
}

/** The network alone: our typed-array forward pass against TF.js predict, each on all rows in one batch. */
async function networkSpeed(model: AnomalyModel, ticks: SensorTick[]): Promise<{ ours: number; tfjs: number; backend: string }> {
  const extractor = new FeatureExtractor();
  const parts: Float64Array[] = [];
  for (const t of ticks) {
    const x = extractor.extract(t);
    for (let i = 0; i < x.count; i++) parts.push(Float64Array.from(model.normalise(x.rows, i)));
  }
  const rows = new Float64Array(parts.length * FEATURE_COUNT);
  parts.forEach((p, i) => rows.set(p, i * FEATURE_COUNT));
  const count = parts.length;
  let done = 0;
  let started = performance.now();
  while (performance.now() - started < 1500) {
    model.network.forward(rows, 0, count);
    done += count;
  }
  const ours = done / ((performance.now() - started) / 1000);
  const { tf, backend } = await tensorflow();
  const tfModel = buildTfCopy(tf, model);
  const input = tf.tensor2d(Float32Array.from(rows), [count, FEATURE_COUNT]);
  done = 0;
  started = performance.now();
  while (performance.now() - started < 1500) {
    const out = tfModel.predict(input);
    out.dataSync();
    out.dispose();
    done += count;
  }
  input.dispose();
  tfModel.dispose();
  return { ours, tfjs: done / ((performance.now() - started) / 1000), backend };
}

/** A TF.js model with the scorer's weights (what predict would run in the detector without network.ts). */
function buildTfCopy(tf: Tfjs, model: AnomalyModel): Sequential {
  const seq = tf.sequential();
  model.network.layers.forEach((l, i) => {
    seq.add(tf.layers.dense({ units: l.units, activation: l.activation, ...(i === 0 ? { inputShape: [l.inputs] } : {}) }));
  });
  seq.layers.forEach((layer, i) => {
    const l = model.network.layers[i];
    layer.setWeights([tf.tensor2d(l.kernel, [l.inputs, l.units]), tf.tensor1d(l.bias)]);
  });
  return seq;
}

/** What a lab run produced: everything the evaluation reads, so that it can be saved and replayed. */
interface LabRecording {
  training: SensorTick[];
  heldOut: SensorTick[];
  runs: AttackRun[];
  benignSources: string[];
  hostV4: string;
  attackSeconds: number;
}

/**
 * The lab: a baseline run handed to `onBaseline` (which trains while the rest is recorded), then
 * the held-apart run with attacks. The lab is removed before this resolves.
 */
async function recordLab(log: ReturnType<typeof createLogger>, onBaseline: (ticks: SensorTick[]) => void): Promise<LabRecording> {
  const lab = new NetnsLab(optionValue('--lab') ?? 'ximodel', Number(optionValue('--subnet') ?? 7)).create();
  const stops: (() => unknown)[] = [() => lab.destroy()];
  try {
    const hosts = benignHosts(lab);
    const attackAddresses = Array.from({ length: 50 }, (_, i) => `${lab.v4Prefix}.${201 + i}`);
    const attacker = lab.addHost('atk', 200, attackAddresses);
    const services = await startLabServices(lab);
    stops.unshift(() => services.close());
    stops.unshift(await startDns(lab));
    const benignSources = hosts.flatMap((h) => [...h.v4, ...h.v6]);

    let onTick: (t: SensorTick) => void = () => undefined;
    const sensor = Sensor.start({ iface: lab.iface, windowMs: 1000, pin: false }, { tick: (t) => onTick(t), trip: () => undefined, sample: () => undefined }, log);
    stops.unshift(() => sensor.stop());

    // 1. Baseline run.
    const training: SensorTick[] = [];
    onTick = (t) => training.push(t);
    log.info({ seconds: TRAIN_S, sources: benignSources.length }, 'baseline run');
    await startBenign(lab, hosts, TRAIN_S, 1);
    onTick = () => undefined;
    onBaseline(training.slice(2));

    // 2. Held-apart run: benign traffic with another seed, attacks from fresh addresses.
    const heldOut: SensorTick[] = [];
    onTick = (t) => heldOut.push(t);
    const blatantPlan = LANES.map((lane) => Array.from({ length: RUNS_PER_TYPE }, () => lane).flat());
    const attackSeconds = Math.max(...blatantPlan.map((lane) => lane.length)) * 4 + 12;
    log.info({ seconds: attackSeconds, attacks: BLATANT.length * RUNS_PER_TYPE + SLOW_RUNS }, 'held-apart run with attacks');
    const benignDone = startBenign(lab, hosts, attackSeconds, 2);
    const runs: AttackRun[] = [];
    let next = 0;
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const lanes = blatantPlan.map(async (plan) => {
      await wait(5000);
      for (const type of plan) {
        runs.push(await runAttack(lab, attacker, type, attackAddresses[next++]));
        await wait(1500);
      }
    });
    const slow = (async () => {
      await wait(5000);
      await Promise.all(Array.from({ length: SLOW_RUNS }, () => attackAddresses[next++]).map(async (src) => runs.push(await runAttack(lab, attacker, SLOW, src))));
    })();
    await Promise.all([...lanes, slow, benignDone]);
    await wait(GRACE_MS + 1000);
    onTick = () => undefined;
    return { training: training.slice(2), heldOut, runs, benignSources, hostV4: lab.hostV4, attackSeconds };
  } finally {
    for (const stop of stops) await stop();
  }
}

const RECORDING_FILES = { training: 'baseline.jsonl', heldOut: 'held-out.jsonl', rest: 'runs.json' };

function saveRecording(dir: string, rec: LabRecording): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, RECORDING_FILES.training), rec.training.map((t) => `${JSON.stringify(t)}\n`).join(''));
  fs.writeFileSync(path.join(dir, RECORDING_FILES.heldOut), rec.heldOut.map((t) => `${JSON.stringify(t)}\n`).join(''));
  const rest = { runs: rec.runs, benignSources: rec.benignSources, hostV4: rec.hostV4, attackSeconds: rec.attackSeconds };
  fs.writeFileSync(path.join(dir, RECORDING_FILES.rest), `${JSON.stringify(rest)}\n`);
}

async function loadRecording(dir: string): Promise<LabRecording> {
  const read = async (file: string) => {
    const ticks: SensorTick[] = [];
    for await (const t of readWindows([path.join(dir, file)])) ticks.push(t);
    return ticks;
  };
  const rest = JSON.parse(fs.readFileSync(path.join(dir, RECORDING_FILES.rest), 'utf8')) as Omit<LabRecording, 'training' | 'heldOut'>;
  return { ...rest, training: await read(RECORDING_FILES.training), heldOut: await read(RECORDING_FILES.heldOut) };
}

function optionValue(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  if (at < 0) return undefined;
  const value = process.argv[at + 1];
  if (!value || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}

async function main(): Promise<void> {
  const benchStarted = Date.now();
  const log = createLogger('eval-model');
  const replay = optionValue('--replay');
  const save = optionValue('--save');
  let trainSeconds = NaN;
  let training$: Promise<AnomalyModel> | undefined;
  const train = (ticks: SensorTick[]): void => {
    const trainStarted = Date.now();
    training$ = trainInWorker(ticks).then((m) => {
      trainSeconds = (Date.now() - trainStarted) / 1000;
      return m;
    });
    training$.catch(() => undefined);
  };
  const rec = replay ? await loadRecording(replay) : await recordLab(log, train);
  if (replay) train(rec.training);
  if (save) saveRecording(save, rec);
  const model = await training$!;
  const { runs, heldOut, hostV4, attackSeconds } = rec;
  const benignSources = new Set(rec.benignSources);

  // Scored in tick order, as the detector would have scored them live.
  const ruleSet = loadRules([defaultRulesDir()]).ruleSet;
  if (!ruleSet) throw new Error('the default rule pack does not load');
  const rules = new RuleEngine(ruleSet, { windowMs: 1000 });
  // No grace: every window is judged, also the benign sources' first (stricter than a detector).
  const scorer = new AnomalyScorer(model, { k: K, n: N, graceMs: 0 });
  const modelHits: Hit[] = [];
  const ruleHits: Hit[] = [];
  const modelHitsBenign: ModelDetection[] = [];
  const benignFalse = { model: new Map<string, number>(), rules: new Map<string, number>() };
  let benignWindows = 0;
  let benignOver = 0;
  let benignPeak = 0;
  let benignEvidencePeak = 0;
  /** Per benign source: its over-threshold windows among the last N, as the scorer adds them up for the certain path. */
  const recent = new Map<string, { window: number; ratio: number; packets: number }[]>();
  /** Per attacker address: the highest score / threshold any of its windows reached. */
  const attackPeak = new Map<string, number>();
  for (const t of heldOut) {
    const detections: ModelDetection[] = scorer.score(t);
    const { sources, scores, thresholds } = scorer.lastScores();
    sources.forEach((s, i) => {
      const ratio = scores[i] / thresholds[i];
      if (!benignSources.has(s.src)) {
        attackPeak.set(s.src, Math.max(attackPeak.get(s.src) ?? 0, ratio));
        return;
      }
      benignWindows++;
      benignPeak = Math.max(benignPeak, ratio);
      if (ratio <= 1) return;
      benignOver++;
      const last = (recent.get(s.src) ?? []).filter((w) => w.window > t.window - N);
      last.push({ window: t.window, ratio, packets: s.packets });
      recent.set(s.src, last);
      if (last.reduce((a, w) => a + w.packets, 0) >= DEFAULT_MIN_CERTAIN_PACKETS) benignEvidencePeak = Math.max(benignEvidencePeak, last.reduce((a, w) => a + w.ratio, 0));
    });
    for (const d of detections) {
      modelHits.push({ key: d.key, atMs: d.lastWindowMs, scope: 'source', rule: d.ruleId });
      if (benignSources.has(d.key)) {
        benignFalse.model.set(d.key, (benignFalse.model.get(d.key) ?? 0) + 1);
        modelHitsBenign.push(d);
      }
    }
    for (const d of rules.process(t)) {
      ruleHits.push({ key: d.key, atMs: d.lastWindowMs, scope: d.scope, rule: d.ruleId });
      if (d.scope === 'source' && benignSources.has(d.key)) benignFalse.rules.set(d.key, (benignFalse.rules.get(d.key) ?? 0) + 1);
    }
  }

  // 3. Report.
  console.log(`xdp-ids anomaly model evaluation (${LONG ? 'long' : 'quick'} run${replay ? `, replayed from ${replay}` : ''}) on ${machine()}`);
  console.log(`model: ${FEATURE_COUNT} features → ${model.meta.training.hiddenUnits.join(' → ')} → ${FEATURE_COUNT}, trained in ${trainSeconds.toFixed(1)} s (${model.meta.training.backend}, ${model.meta.training.epochs} epochs) on ${model.meta.training.windows} windows from the ${TRAIN_S} s baseline run; thresholds ${model.meta.thresholds.bands.map((b) => `${b.band} ${b.threshold.value.toPrecision(3)}`).join(', ')}; anomaly = ${K} of ${N} windows over their volume band's threshold, or over-threshold windows among the last ${N} adding up to ${DEFAULT_CERTAIN_FACTOR}× it with ${DEFAULT_MIN_CERTAIN_PACKETS} packets or more`);
  console.log(`benign sources: ${benignSources.size} addresses (${NAMESPACES * V4_PER_NAMESPACE} IPv4, ${NAMESPACES * V6_PER_NAMESPACE} IPv6) in ${NAMESPACES} namespaces: node clients (browser bursts, keep-alive API, bare TCP connects, DNS-like UDP, sessions with idle gaps), curl from 5, wrk bursts from 2, iperf3 transfers from 2, ping from 3`);
  console.log('');
  console.log('attack type             runs  model: detected  median delay  peak score/threshold   rules: detected  median delay');
  const byType = [...BLATANT, SLOW].map((type) => {
    const typeRuns = runs.filter((r) => r.type === type);
    const m = typeRuns.map((r) => firstHit(r, modelHits, hostV4));
    const r = typeRuns.map((run) => firstHit(run, ruleHits, hostV4));
    const delays = (hits: (Hit | undefined)[]) => hits.flatMap((h, i) => (h ? [h.atMs - typeRuns[i].startMs] : []));
    const row = {
      type, runs: typeRuns.length,
      model: m.filter(Boolean).length, modelDelay: median(delays(m)),
      rules: r.filter(Boolean).length, rulesDelay: median(delays(r)),
      modelOnly: typeRuns.filter((_, i) => m[i] && !r[i]).length,
      rulesOnly: typeRuns.filter((_, i) => !m[i] && r[i]).length,
    };
    const peaks = typeRuns.map((run) => (attackPeak.get(run.src) ?? 0).toFixed(1)).join(' ');
    console.log(`${type.padEnd(22)} ${String(row.runs).padStart(5)}  ${`${row.model}/${row.runs}`.padStart(15)}  ${(row.modelDelay / 1000).toFixed(1).padStart(10)} s  ${peaks.padStart(20)}   ${`${row.rules}/${row.runs}`.padStart(15)}  ${(row.rulesDelay / 1000).toFixed(1).padStart(10)} s`);
    return row;
  });
  const blatantRows = byType.filter((r) => r.type !== SLOW);
  const slowRow = byType.find((r) => r.type === SLOW)!;
  const share = (rows: typeof byType, key: 'model' | 'rules') => rows.reduce((n, r) => n + r[key], 0) / Math.max(1, rows.reduce((n, r) => n + r.runs, 0));
  const modelFp = [...benignFalse.model.values()].reduce((a, b) => a + b, 0);
  const rulesFp = [...benignFalse.rules.values()].reduce((a, b) => a + b, 0);
  console.log('');
  console.log(`model catches, rules miss: ${byType.filter((r) => r.modelOnly > 0).map((r) => `${r.type} (${r.modelOnly}/${r.runs})`).join(', ') || 'nothing'}`);
  console.log(`rules catch, model misses: ${byType.filter((r) => r.rulesOnly > 0).map((r) => `${r.type} (${r.rulesOnly}/${r.runs})`).join(', ') || 'nothing'}`);
  console.log('');
  console.log(`benign windows scored: ${benignWindows} (held-apart run of ${attackSeconds} s, 1 s windows, ${benignSources.size} sources active in sessions)`);
  console.log(`  over their thresholds: ${benignOver} (${(benignOver / benignWindows).toExponential(2)} per window); highest benign score ${benignPeak.toFixed(2)}× its threshold, highest certain-path sum over ${N} windows (${DEFAULT_MIN_CERTAIN_PACKETS}+ packets) ${benignEvidencePeak.toFixed(2)}× (certain at ${DEFAULT_CERTAIN_FACTOR}×)`);
  console.log(`  model false positives: ${modelFp} detections = ${(modelFp / benignWindows).toExponential(2)} per window, on ${benignFalse.model.size} sources ${[...benignFalse.model.keys()].slice(0, 5).join(' ')}`);
  const firstFp = modelHitsBenign[0];
  if (firstFp) console.log(`  first model false positive: ${firstFp.key}, score ${(firstFp.score / firstFp.threshold).toFixed(1)}× the threshold, top features ${firstFp.explanation.slice(0, 3).map((c) => `${c.feature}=${c.value.toPrecision(3)} (${(100 * c.share).toFixed(0)} %)`).join(', ')}`);
  console.log(`  rule false positives:  ${rulesFp} detections = ${(rulesFp / benignWindows).toExponential(2)} per window, on ${benignFalse.rules.size} sources`);

  const scoring = scoringSpeed(model, heldOut, LONG ? 9 : 5);
  const network = await networkSpeed(model, heldOut);
  console.log('');
  console.log(`scoring (features, network, k-of-n) on one core: median ${Math.round(scoring.median)} windows/s (range ${Math.round(scoring.min)}-${Math.round(scoring.max)} over ${LONG ? 9 : 5} rounds of 1 s)`);
  console.log(`network alone: typed-array forward pass ${Math.round(network.ours)} windows/s, TF.js predict (${network.backend}, one batch of ${heldOut.reduce((n, t) => n + t.sources.length, 0)}) ${Math.round(network.tfjs)} windows/s: ratio ${(network.ours / network.tfjs).toFixed(2)}`);
  const durationS = (Date.now() - benchStarted) / 1000;
  console.log(`took ${durationS.toFixed(0)} s`);
  // The lab is gone and nothing logs after this: the JSON is the last line of the output.
  console.log(JSON.stringify({
    tpr_blatant: share(blatantRows, 'model'),
    tpr_slow: share([slowRow], 'model'),
    fpr_per_window: modelFp / benignWindows,
    benign_windows: benignWindows,
    windows_scored_per_s: Math.round(scoring.median),
    windows_scored_per_s_range: [Math.round(scoring.min), Math.round(scoring.max)],
    benign_peak_score_ratio: benignPeak,
    benign_peak_evidence_ratio: benignEvidencePeak,
    certain_factor: DEFAULT_CERTAIN_FACTOR,
    min_certain_packets: DEFAULT_MIN_CERTAIN_PACKETS,
    thresholds: Object.fromEntries(model.meta.thresholds.bands.map((b) => [b.band, b.threshold.value])),
    rules_tpr_blatant: share(blatantRows, 'rules'),
    rules_tpr_slow: share([slowRow], 'rules'),
    rules_fpr_per_window: rulesFp / benignWindows,
    attack_runs: runs.length,
    network_windows_per_s: Math.round(network.ours),
    tfjs_predict_windows_per_s: Math.round(network.tfjs),
    network_vs_tfjs: network.ours / network.tfjs,
    train_s: trainSeconds,
    duration_s: durationS,
  }));
}

if (!isMainThread) {
  void trainingWorker((workerData as { train: SensorTick[] }).train);
} else if (process.argv[2] === '--benign-worker') {
  benignWorker(JSON.parse(process.argv[3]) as WorkerConfig).then(() => process.exit(0), (err) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
} else {
  main().then(() => process.exit(0), (err) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
