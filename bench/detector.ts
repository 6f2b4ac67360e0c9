/**
 * Detector throughput, on one core.
 *  1. Rules: 100,000 active sources (and 200 destinations) a tick through the default rule pack
 *     (rules/), against a hand-written JS detector of the same rules (same windows, same `for`,
 *     same thresholds) in the same run. Both see the same ticks and must agree on what fires.
 *  2. The whole detector: the same ticks published as jobs to a real redis-server first, then one
 *     detector process-part consumes them: fetch, decode, reassemble, rules, incidents in Redis
 *     and alert events.
 * The last line is JSON: windows_per_s, js_baseline_windows_per_s, ratio, pipeline_windows_per_s.
 *
 *   node dist/bench/detector.js [--sources N] [--ticks N] [--pipeline-ticks N]
 */
import os from 'node:os';
import pino from 'pino';
import { startEmbeddedRedis } from '../common/redis';
import { destinationWindowOf, NO_UNTRACKED, sourceWindowOf, type DestinationWindow, type SensorTick, type SourceWindow } from '../common/sensor-tick';
import { Detector as DetectorService } from '../detector/service';
import { QueuePublisher } from '../sensor/publisher';
import { RuleEngine } from '../detector/rules/engine';
import { defaultRulesDir, loadRules } from '../detector/rules/loader';
import { formatProblem } from '../detector/rules/problems';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const SOURCES = arg('sources', 100_000);
const TICKS = arg('ticks', 30);
const WARMUP_TICKS = 10;
const VARIANTS = 8;
const DESTINATIONS = 200;
const ROUNDS = 3;
const PIPELINE_TICKS = arg('pipeline-ticks', 12);

/** xorshift32: the same traffic every run. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function source(src: string, r: () => number, attacker: number): SourceWindow {
  const n = (max: number) => Math.floor(r() * max);
  const w = sourceWindowOf(src, {
    packets: 20 + n(180), syn: n(8), ackOnly: 10 + n(140), rst: n(2), fin: n(8), udp: n(5), icmp: n(2), distinctPorts: 1 + n(3), distinctHosts: 1 + n(2),
  });
  if (attacker === 1) Object.assign(w, { syn: 600, ackOnly: 0, distinctPorts: 500 });
  if (attacker === 2) Object.assign(w, { udp: 9000, distinctPorts: 1 });
  if (attacker === 3) Object.assign(w, { xmas: 40, fin: 40 });
  if (attacker === 4) Object.assign(w, { syn: 0, ackOnly: 900, distinctPorts: 800 });
  if (attacker === 5) Object.assign(w, { firstFragments: 300, fragments: 600, distinctPorts: 290 });
  if (attacker === 6) Object.assign(w, { distinctProtocols: 40 });
  w.bytes = w.packets * 120;
  return w;
}

/** Destination variants: the first few are under attack (spoofed SYNs, reflection, backscatter, ICMP, fragments, a slow SYN flood). */
function destination(d: number, r: () => number): DestinationWindow {
  const w = destinationWindowOf(`192.0.2.${d}`, { syn: Math.floor(r() * 200), udp: Math.floor(r() * 100), bytes: 100_000, distinctSources: 50, handshakes: 20 });
  if (d === 0) Object.assign(w, { syn: 50_000, distinctSources: 3194 });
  if (d === 1) Object.assign(w, { udp: 3000, udpAmp: 3000, udpAmpBytes: 4_500_000, ampSources: 380, distinctSources: 480 });
  if (d === 2) Object.assign(w, { synAck: 5000, distinctSources: 2900 });
  if (d === 3) Object.assign(w, { icmp: 8000, distinctSources: 3000 });
  if (d === 4) Object.assign(w, { fragments: 9000, fragmentBytes: 13_000_000, distinctSources: 480 });
  if (d === 5) Object.assign(w, { syn: 300, distinctSources: 290, handshakes: 0 });
  return w;
}

/** Tick variants; one source in 1000 attacks (six kinds of scans and floods). */
function makeTicks(): SensorTick[] {
  const addresses = Array.from({ length: SOURCES }, (_, i) => `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`);
  return Array.from({ length: VARIANTS }, (_, v) => {
    const r = random(v + 1);
    const sources = addresses.map((a, i) => source(a, r, i % 1000 === 7 ? 1 + ((i / 1000) % 6 | 0) : 0));
    const destinations = Array.from({ length: DESTINATIONS }, (_, d) => destination(d, r));
    return {
      sensor: 'bench', iface: 'bench', window: 0, startMs: 0, endMs: 0, sources, destinations,
      untracked: { ...NO_UNTRACKED }, globals: {}, trackedSources: SOURCES, evictedSources: 0,
    };
  });
}

interface Detector {
  process(tick: SensorTick): { ruleId: string }[];
}

/**
 * A sliding sum of a few counters per key over `ticks` ticks, in buckets (the engine's
 * windowing, written for this pack alone).
 */
class Sums {
  ring: Float64Array;
  sum: Float64Array;
  last: Float64Array;
  readonly bucketTicks: number;
  readonly buckets: number;

  constructor(readonly width: number, ticks: number, readonly slots: number) {
    this.bucketTicks = ticks <= 20 ? 1 : Math.ceil(ticks / 20);
    this.buckets = Math.ceil(ticks / this.bucketTicks);
    this.ring = new Float64Array(slots * this.buckets * width);
    this.sum = new Float64Array(slots * width);
    this.last = new Float64Array(slots).fill(-Infinity);
  }

  /** Rolls the key's buckets forward to tick t, dropping what slid out of the window. */
  roll(slot: number, t: number): void {
    const w = this.width;
    const bucket = Math.floor(t / this.bucketTicks);
    const last = this.last[slot];
    if (last === bucket) return;
    const base = slot * this.buckets * w;
    const s = slot * w;
    if (!(bucket - last < this.buckets)) {
      this.ring.fill(0, base, base + this.buckets * w);
      this.sum.fill(0, s, s + w);
    } else {
      for (let k = last + 1; k <= bucket; k++) {
        const off = base + (k % this.buckets) * w;
        for (let i = 0; i < w; i++) {
          this.sum[s + i] -= this.ring[off + i];
          this.ring[off + i] = 0;
        }
      }
    }
    this.last[slot] = bucket;
  }

  /** Adds `value` to counter i of the key (after roll); the key's sums start at slot * width. */
  put(slot: number, i: number, value: number): void {
    this.ring[(slot * this.buckets + (this.last[slot] % this.buckets)) * this.width + i] += value;
    this.sum[slot * this.width + i] += value;
  }
}

/** The default pack's predicates, hand-written over hand-kept sums. */
class HandWrittenPack implements Detector {
  private readonly slots = new Map<string, number>();
  private readonly dstSlots = new Map<string, number>();
  private readonly scan5 = new Sums(4, 5, SOURCES);        // syn, ack_only, distinct_ports, distinct_hosts
  private readonly odd5 = new Sums(4, 5, SOURCES);         // fin_only, null_scan, xmas, syn_fin
  private readonly udp5 = new Sums(2, 5, SOURCES);         // udp, distinct_ports
  private readonly flood3 = new Sums(4, 3, SOURCES);       // syn, ack_only, rst, icmp
  private readonly udp1 = new Sums(1, 1, SOURCES);
  private readonly slow = new Sums(3, 300, SOURCES);       // syn, ack_only, distinct_ports
  private readonly frag5 = new Sums(2, 5, SOURCES);        // first_fragments, distinct_ports
  private readonly frag3 = new Sums(1, 3, SOURCES);        // fragments + first_fragments
  private readonly udpFor = new Streak(SOURCES);
  private readonly dstFor = new Map<string, Streak>();

  process(tick: SensorTick): { ruleId: string }[] {
    const t = tick.window;
    const out: { ruleId: string; key: string }[] = [];
    const fire = (ruleId: string, key: string) => out.push({ ruleId, key });
    for (const w of tick.sources) {
      let slot = this.slots.get(w.src);
      if (slot === undefined) this.slots.set(w.src, (slot = this.slots.size));
      const { scan5, odd5, udp5, flood3, udp1, slow } = this;
      scan5.roll(slot, t);
      scan5.put(slot, 0, w.syn);
      scan5.put(slot, 1, w.ackOnly);
      scan5.put(slot, 2, w.distinctPorts);
      scan5.put(slot, 3, w.distinctHosts);
      odd5.roll(slot, t);
      odd5.put(slot, 0, w.finOnly);
      odd5.put(slot, 1, w.nullScan);
      odd5.put(slot, 2, w.xmas);
      odd5.put(slot, 3, w.synFin);
      udp5.roll(slot, t);
      udp5.put(slot, 0, w.udp);
      udp5.put(slot, 1, w.distinctPorts);
      flood3.roll(slot, t);
      flood3.put(slot, 0, w.syn);
      flood3.put(slot, 1, w.ackOnly);
      flood3.put(slot, 2, w.rst);
      flood3.put(slot, 3, w.icmp);
      udp1.roll(slot, t);
      udp1.put(slot, 0, w.udp);
      slow.roll(slot, t);
      slow.put(slot, 0, w.syn);
      slow.put(slot, 1, w.ackOnly);
      slow.put(slot, 2, w.distinctPorts);
      this.frag5.roll(slot, t);
      this.frag5.put(slot, 0, w.firstFragments);
      this.frag5.put(slot, 1, w.distinctPorts);
      this.frag3.roll(slot, t);
      this.frag3.put(slot, 0, w.fragments + w.firstFragments);
      let s = this.scan5.sum;
      let o = slot * 4;
      const ackPerSyn5 = s[o + 1] / Math.max(s[o], 1);
      if (s[o] >= 30 && s[o + 2] >= 30 && ackPerSyn5 < 0.5) fire('scan-tcp-vertical', w.src);
      if (s[o] >= 20 && s[o + 3] >= 20 && s[o + 3] >= 4 * s[o + 2] && ackPerSyn5 < 0.5) fire('scan-tcp-horizontal', w.src);
      if (s[o + 1] >= 30 && s[o + 2] >= 30 && 10 * s[o] < s[o + 2]) fire('scan-tcp-ack', w.src);
      if (w.distinctProtocols >= 8) fire('scan-ip-protocol', w.src);
      if (this.frag5.sum[slot * 2] >= 20 && this.frag5.sum[slot * 2 + 1] >= 20) fire('scan-fragmented', w.src);
      if (this.frag3.sum[slot] / 3 >= 2000) fire('flood-fragments', w.src);
      s = this.udp5.sum;
      o = slot * 2;
      if (s[o] >= 20 && s[o + 1] >= 20 && s[o + 1] >= 0.5 * s[o]) fire('scan-udp', w.src);
      s = this.slow.sum;
      o = slot * 3;
      if (s[o] >= 40 && s[o + 2] >= 40 && s[o + 1] / Math.max(s[o], 1) < 0.2) fire('scan-tcp-slow', w.src);
      s = this.odd5.sum;
      o = slot * 4;
      if (s[o] >= 10) fire('scan-tcp-fin', w.src);
      if (s[o + 1] >= 10) fire('scan-tcp-null', w.src);
      if (s[o + 2] >= 10) fire('scan-tcp-xmas', w.src);
      if (s[o + 3] >= 10) fire('scan-tcp-syn-fin', w.src);
      s = this.flood3.sum;
      o = slot * 4;
      if (s[o] / 3 >= 300 && s[o + 1] / Math.max(s[o], 1) < 0.2) fire('flood-syn', w.src);
      if (s[o + 2] / 3 >= 300 && s[o + 2] / Math.max(s[o], 1) >= 5) fire('flood-rst-ack', w.src);
      if (s[o + 3] / 3 >= 500) fire('flood-icmp', w.src);
      if (this.udpFor.held(slot, t, this.udp1.sum[slot] >= 5000, 3)) fire('flood-udp', w.src);
    }
    for (const d of tick.destinations) {
      let slot = this.dstSlots.get(d.dst);
      if (slot === undefined) this.dstSlots.set(d.dst, (slot = this.dstSlots.size));
      // One-second windows: the sums are the window's own counts.
      const ds = d.distinctSources;
      const held = (rule: string, holds: boolean, ticks: number): void => {
        let streak = this.dstFor.get(rule);
        if (!streak) this.dstFor.set(rule, (streak = new Streak(DESTINATIONS)));
        if (streak.held(slot, t, holds, ticks)) fire(rule, d.dst);
      };
      held('flood-syn-spoofed', d.syn >= 2000 && ds >= 200, 3);
      held('flood-fragments-spoofed', d.fragments >= 5000 && ds >= 50, 3);
      held('flood-icmp-spoofed', d.icmp >= 1000 && ds >= 50, 3);
      held('flood-syn-spoofed-slow', d.syn >= 100 && ds >= 80 && d.syn / Math.max(ds, 1) < 1.5 && d.handshakes / Math.max(d.syn, 1) < 0.05, 10);
      held('reflection-udp-amplification', (d.udpAmp >= 500 && d.ampSources >= 20) || d.udpAmpBytes * 8 >= 1e8, 2);
      held('reflection-syn-ack', Math.max(d.synAck - d.synOut, 0) >= 200 && ds >= 20, 2);
    }
    return out;
  }
}

/** A condition's streak per key, for `for`: true once it held at `ticks` consecutive evaluations. */
class Streak {
  private readonly since: Float64Array;
  private readonly last: Float64Array;

  constructor(slots: number) {
    this.since = new Float64Array(slots).fill(-Infinity);
    this.last = new Float64Array(slots).fill(-Infinity);
  }

  held(slot: number, t: number, holds: boolean, ticks: number): boolean {
    if (!holds) {
      this.last[slot] = -Infinity;
      return false;
    }
    if (!(this.last[slot] >= t - 1)) this.since[slot] = t;
    this.last[slot] = t;
    return t - this.since[slot] + 1 >= ticks;
  }
}

function countByRule(detections: { ruleId: string }[], into: Map<string, number>): void {
  for (const d of detections) into.set(d.ruleId, (into.get(d.ruleId) ?? 0) + 1);
}

/** Windows per second over TICKS ticks after a warm-up, and detections per rule. */
function measure(detector: Detector, ticks: SensorTick[]): { windowsPerS: number; fired: Map<string, number> } {
  const fired = new Map<string, number>();
  let window = 1_000_000;
  const feed = (tick: SensorTick) => detector.process({ ...tick, window: window++, endMs: window * 1000 });
  for (let i = 0; i < WARMUP_TICKS; i++) feed(ticks[i % ticks.length]);
  const start = process.hrtime.bigint();
  for (let i = 0; i < TICKS; i++) countByRule(feed(ticks[i % ticks.length]), fired);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { windowsPerS: (TICKS * SOURCES) / seconds, fired };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Publishes the ticks to a real Redis, then times one detector consuming all of them. */
async function pipeline(ticks: SensorTick[]): Promise<{ windowsPerS: number; incidents: number; jobs: number }> {
  const redis = await startEmbeddedRedis();
  const log = pino({ level: 'error' }, pino.destination(2));
  try {
    const publisher = new QueuePublisher({ redisUrl: redis.url, sensorId: 'bench', log, maxBufferedJobs: 100_000 });
    const start0 = Date.now();
    for (let i = 0; i < PIPELINE_TICKS; i++) {
      const t = ticks[i % ticks.length];
      publisher.tick({ ...t, window: 2_000_000 + i, startMs: start0 + i * 1000, endMs: start0 + (i + 1) * 1000 });
    }
    await publisher.close(120_000);
    const started = process.hrtime.bigint();
    const detector = await DetectorService.start({ redisUrl: redis.url, rulePaths: [defaultRulesDir()], log, id: 'bench' });
    while (detector.stats().ticks < PIPELINE_TICKS) await new Promise((r) => setTimeout(r, 5));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const stats = detector.stats();
    await detector.stop();
    return { windowsPerS: stats.windows / seconds, incidents: stats.incidentsOpened, jobs: stats.jobs };
  } finally {
    await redis.stop();
  }
}

async function main(): Promise<void> {
  const loaded = loadRules([defaultRulesDir()]);
  if (!loaded.ruleSet) throw new Error(`the default rules do not load:\n${loaded.problems.map(formatProblem).join('\n')}`);
  const ruleSet = loaded.ruleSet;
  const ticks = makeTicks();
  process.stdout.write(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} CPUs, node ${process.version}; one core (single thread)\n`);
  process.stdout.write(`${SOURCES} sources and ${DESTINATIONS} destinations a tick, ${ruleSet.rules.filter((r) => r.enabled).length} rules, ${TICKS} ticks per round, median of ${ROUNDS} rounds\n`);
  const engineRates: number[] = [];
  const baselineRates: number[] = [];
  let engineFired = new Map<string, number>();
  let baselineFired = new Map<string, number>();
  for (let round = 0; round < ROUNDS; round++) {
    const e = measure(new RuleEngine(ruleSet, { windowMs: 1000 }), ticks);
    const b = measure(new HandWrittenPack(), ticks);
    engineRates.push(e.windowsPerS);
    baselineRates.push(b.windowsPerS);
    engineFired = e.fired;
    baselineFired = b.fired;
  }
  const rules = [...new Set([...engineFired.keys(), ...baselineFired.keys()])].sort();
  for (const id of rules) {
    const [e, b] = [engineFired.get(id) ?? 0, baselineFired.get(id) ?? 0];
    process.stdout.write(`  ${id.padEnd(22)} engine ${String(e).padStart(7)}  hand-written ${String(b).padStart(7)}${e === b ? '' : '  MISMATCH'}\n`);
  }
  const mismatch = rules.some((id) => (engineFired.get(id) ?? 0) !== (baselineFired.get(id) ?? 0));
  const engine = median(engineRates);
  const baseline = median(baselineRates);
  process.stdout.write(`rule engine:           ${Math.round(engine).toLocaleString('en')} source-windows/s\n`);
  process.stdout.write(`hand-written baseline: ${Math.round(baseline).toLocaleString('en')} source-windows/s\n`);
  const p = await pipeline(ticks);
  process.stdout.write(`whole detector (Redis → decode → rules → incidents): ${Math.round(p.windowsPerS).toLocaleString('en')} windows/s ` +
    `(${PIPELINE_TICKS} ticks in ${p.jobs} jobs, ${p.incidents} incidents opened; ${(p.windowsPerS / engine).toFixed(2)}× the rules alone)\n`);
  process.stdout.write(`${JSON.stringify({
    windows_per_s: Math.round(engine), js_baseline_windows_per_s: Math.round(baseline), ratio: Number((engine / baseline).toFixed(3)),
    pipeline_windows_per_s: Math.round(p.windowsPerS), sources: SOURCES, rules: ruleSet.rules.length, detections_agree: !mismatch,
  })}\n`);
  if (mismatch) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
