/**
 * npm run bench:xdp [-- --long]: BPF_PROG_TEST_RUN ns/packet of xdp-ids against an empty XDP program
 * (the floor) and xdp-tools' xdp-filter, all in one run on one machine; then the time to drain
 * 100,000 active sources into windows. The last line is JSON.
 *
 * Multi-source cases need a different frame per run, so every case (the floor and xdp-filter
 * included) is measured the same way: one test_run call per frame with repeat=1, the kernel's own
 * per-run duration summed. That includes the kernel timer read around each run, equally for all.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BpfObject, type BpfMap } from '../native/bpf';
import { XdpIdsProgram, DEFAULT_OBJECT } from '../sensor/kernel/program';
import { SourceWindows } from '../sensor/windows';
import { monotonicNs } from '../sensor/clock';
import { tcp4 } from '../test/support/packets';

const LONG = process.argv.includes('--long');
const ROUNDS = LONG ? 10 : 3;
const WARM_REPEAT = 200_000;
const XDP_FILTER_DIR = `/usr/lib/${os.arch() === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/bpf`;
const XDP_PASS = 2;
const XDP_DROP = 1;

const TEMPLATE = tcp4({ src: '198.18.0.1', dst: '198.19.255.1', sport: 40000, dport: 443, flags: 'S' });
const IPV4_SRC_OFFSET = 14 + 12;

/** A SYN from the given IPv4 source (as a 32-bit number); the XDP program does not verify checksums. */
function syn(src: number): Buffer {
  const frame = Buffer.from(TEMPLATE);
  frame.writeUInt32BE(src >>> 0, IPV4_SRC_OFFSET);
  return frame;
}

const LAB_BASE = (198 << 24) | (18 << 16);

interface Runner {
  testRun(frame: Buffer, opts: { repeat: number }): { retval: number; durationNs: number };
}

/** Median over rounds of the mean kernel ns per packet across `frames` (one call per frame). */
function measure(runner: Runner, frames: Buffer[], expect: number): number {
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let total = 0;
    for (const frame of frames) {
      const { retval, durationNs } = runner.testRun(frame, { repeat: 1 });
      if (retval !== expect) throw new Error(`unexpected XDP verdict ${retval} (wanted ${expect})`);
      total += durationNs;
    }
    rounds.push(total / frames.length);
  }
  rounds.sort((a, b) => a - b);
  return rounds[Math.floor(rounds.length / 2)];
}

/** xdp-filter's maps ask to be pinned by name; a private pin directory keeps runs apart. */
const PIN_DIR = `/sys/fs/bpf/xdp-ids-bench-${process.pid}`;

/** Steady state: one frame run `repeat` times inside the kernel (warm caches, no per-call timer). */
function measureWarm(runner: Runner, frame: Buffer, expect: number): number {
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const { retval, durationNs } = runner.testRun(frame, { repeat: WARM_REPEAT });
    if (retval !== expect) throw new Error(`unexpected XDP verdict ${retval} (wanted ${expect})`);
    rounds.push(durationNs);
  }
  rounds.sort((a, b) => a - b);
  return rounds[Math.floor(rounds.length / 2)];
}

function loadPlain(file: string): BpfObject {
  const object = BpfObject.open(file, { pinDir: path.join(PIN_DIR, path.basename(file).replace(/\W/g, '_')) });
  object.load();
  return object;
}

function xdpIds(): XdpIdsProgram {
  const program = XdpIdsProgram.open({ objectPath: DEFAULT_OBJECT, sizes: { sources: 131072 } });
  program.setConfig({
    windowNs: 3_600_000_000_000n, tripSyn: 1_000_000, tripPortBits: 0, tripHostBits: 0, eventsPerSrcWindow: 0,
    eventRate: 0, eventBurst: 0, insertRate: 50_000, insertBurst: 10_000, sampleNewEvery: 0,
  });
  return program;
}

function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}

function main(): void {
  const n10k = 10_000;
  const nRandom = 1_000_000;
  const one = Array.from({ length: n10k }, () => syn(LAB_BASE + 7));
  const tenK = Array.from({ length: n10k }, (_, i) => syn(LAB_BASE + i));
  const random = Array.from({ length: nRandom }, () => syn(Math.random() * 2 ** 32));
  const blocked = Array.from({ length: n10k }, () => syn(LAB_BASE + (99 << 8) + 7));

  const empty = loadPlain(path.resolve(path.dirname(DEFAULT_OBJECT), 'empty.bpf.o'));
  const emptyNs = measure(empty, tenK, XDP_PASS);
  const emptyWarmNs = measureWarm(empty, tenK[0], XDP_PASS);
  empty.close();

  // xdp-filter's "dny" objects are its default-deny (allowlist) builds: with empty filter maps every
  // packet goes through all of their lookups and misses, and is dropped.
  const all = loadPlain(path.join(XDP_FILTER_DIR, 'xdpfilt_dny_all.o'));
  const xdpfilterAllNs = measure(all, tenK, XDP_DROP);
  const xdpfilterAllWarmNs = measureWarm(all, tenK[0], XDP_DROP);
  all.close();
  const ip = loadPlain(path.join(XDP_FILTER_DIR, 'xdpfilt_dny_ip.o'));
  const xdpfilterIpNs = measure(ip, blocked, XDP_DROP);
  const xdpfilterIpWarmNs = measureWarm(ip, blocked[0], XDP_DROP);
  ip.close();
  // Its default-allow build with the source in filter_ipv4: the exact-match "drop this IP" path.
  const alw = loadPlain(path.join(XDP_FILTER_DIR, 'xdpfilt_alw_ip.o'));
  const filterMap: BpfMap = alw.map('filter_ipv4');
  // A per-CPU hash: MAP_FLAG_SRC in every CPU's copy of the value.
  const value = Buffer.alloc(filterMap.valueBufferSize);
  const stride = Math.ceil(filterMap.valueSize / 8) * 8;
  for (let off = 0; off < value.length; off += stride) value.writeUInt8(1, off);
  filterMap.update(Buffer.from([198, 18, 99, 7]), value, 'any');
  const xdpfilterAlwIpNs = measure(alw, blocked, XDP_DROP);
  alw.close();

  let program = xdpIds();
  const oneSourceNs = measure(program, one, XDP_PASS);
  const oneSourceWarmNs = measureWarm(program, one[0], XDP_PASS);
  program.close();
  program = xdpIds();
  for (const frame of tenK) program.testRun(frame); // warm: every source tracked
  const sources10kNs = measure(program, tenK, XDP_PASS);
  program.close();
  program = xdpIds();
  const random1mNs = measure(program, random, XDP_PASS);
  program.close();
  program = xdpIds();
  program.addBlock('198.18.99.0/24');
  const blockedNs = measure(program, blocked, XDP_DROP);
  const blockedWarmNs = measureWarm(program, blocked[0], XDP_DROP);
  program.close();
  // A spoofed SYN flood held by a destination limit: its one SYN admitted, the bucket stays
  // empty for the next second, longer than the case lasts.
  program = xdpIds();
  program.setDestinationLimit('198.19.255.1', { synPerSecond: 1, burst: 1 });
  program.testRun(tenK[0]);
  const dstLimitedNs = measure(program, tenK, XDP_DROP);
  program.close();

  // Drain: 100,000 sources active in the window, read and turned into window records.
  program = XdpIdsProgram.open({ sizes: { sources: 131072 } });
  program.setConfig({ ...program.getConfig(), windowNs: 3_600_000_000_000n });
  const drainFrames = Array.from({ length: 100_000 }, (_, i) => syn(LAB_BASE + i));
  const windows = new SourceWindows();
  const window = Number((monotonicNs() / 3_600_000_000_000n) & 0xffffffffn);
  for (const f of drainFrames) program.testRun(f);
  let batch = program.readSources();
  windows.drain(batch.keys, batch.values, batch.count, window, 0n, 0n, 0);
  for (const f of drainFrames) program.testRun(f);
  const drains: { total: number; read: number }[] = [];
  let produced = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    batch = program.readSources();
    const t1 = process.hrtime.bigint();
    produced = windows.drain(batch.keys, batch.values, batch.count, window, 0n, 0n, 0).windows.length;
    drains.push({ total: Number(process.hrtime.bigint() - t0) / 1e6, read: Number(t1 - t0) / 1e6 });
    for (const f of drainFrames) program.testRun(f);
  }
  program.close();
  drains.sort((a, b) => a.total - b.total);
  const drain = drains[Math.floor(drains.length / 2)];
  const drainMs = drain.total;

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`machine: ${cpu}, ${os.cpus().length} CPUs, Linux ${os.release()}, node ${process.version}`);
  console.log(`method: BPF_PROG_TEST_RUN, one call per frame (repeat=1), median of ${ROUNDS} rounds; TCP SYN frames of 54 bytes`);
  const rows: [string, number, number][] = [
    ['empty XDP program (floor)', emptyNs, n10k],
    ['xdp-filter xdpfilt_dny_all (all lookups, drop)', xdpfilterAllNs, n10k],
    ['xdp-filter xdpfilt_dny_ip (IP lookups, drop)', xdpfilterIpNs, n10k],
    ['xdp-filter xdpfilt_alw_ip (exact-IP match, drop)', xdpfilterAlwIpNs, n10k],
    ['xdp-ids (a) one source repeated', oneSourceNs, n10k],
    ['xdp-ids (b) 10,000 sources round-robin', sources10kNs, n10k],
    [`xdp-ids (c) ${nRandom.toLocaleString('en')} random sources`, random1mNs, nRandom],
    ['xdp-ids (d) blocked source (/24 CIDR)', blockedNs, n10k],
    ['xdp-ids (e) SYN over a destination limit', dstLimitedNs, n10k],
  ];
  for (const [name, ns, count] of rows) {
    console.log(`${name.padEnd(46)} ${ns.toFixed(1).padStart(7)} ns/pkt  ${ratio(ns, emptyNs).padStart(6)} floor  ` +
      `${ratio(ns, xdpfilterAllNs).padStart(6)} dny_all  (+${(ns - emptyNs).toFixed(1)} ns, ${count.toLocaleString('en')} frames)`);
  }
  console.log(`steady state (one frame, repeat=${WARM_REPEAT.toLocaleString('en')} in the kernel): empty ${emptyWarmNs} ns, ` +
    `xdp-filter dny_all ${xdpfilterAllWarmNs} ns, dny_ip ${xdpfilterIpWarmNs} ns, xdp-ids one source ${oneSourceWarmNs} ns ` +
    `(+${oneSourceWarmNs - emptyWarmNs} ns, ${ratio(oneSourceWarmNs, xdpfilterAllWarmNs)} dny_all), blocked ${blockedWarmNs} ns (${ratio(blockedWarmNs, xdpfilterIpWarmNs)} dny_ip)`);
  console.log(`(c)/(b) ${ratio(random1mNs, sources10kNs)}   (d)/dny_ip ${ratio(blockedNs, xdpfilterIpNs)}   (d)/alw_ip ${ratio(blockedNs, xdpfilterAlwIpNs)}`);
  console.log(`drain of 100,000 active sources into windows: ${drainMs.toFixed(1)} ms (kernel batch read ${drain.read.toFixed(1)} ms; median of ${ROUNDS}; ${produced} windows)`);
  console.log(JSON.stringify({
    empty_ns: +emptyNs.toFixed(1), xdpfilter_all_ns: +xdpfilterAllNs.toFixed(1), xdpfilter_ip_ns: +xdpfilterIpNs.toFixed(1), xdpfilter_alw_ip_ns: +xdpfilterAlwIpNs.toFixed(1),
    one_source_ns: +oneSourceNs.toFixed(1), sources_10k_ns: +sources10kNs.toFixed(1), random_1m_ns: +random1mNs.toFixed(1),
    random_sources: nRandom, blocked_ns: +blockedNs.toFixed(1), dst_limited_ns: +dstLimitedNs.toFixed(1), drain_100k_ms: +drainMs.toFixed(1),
    empty_warm_ns: emptyWarmNs, xdpfilter_all_warm_ns: xdpfilterAllWarmNs, xdpfilter_ip_warm_ns: xdpfilterIpWarmNs,
    one_source_warm_ns: oneSourceWarmNs, blocked_warm_ns: blockedWarmNs,
  }));
}

try {
  main();
} finally {
  fs.rmSync(PIN_DIR, { recursive: true, force: true });
}
