/**
 * The per-destination TCP SYN limit of the XDP program: its token bucket, what it lets through,
 * its interplay with the destination accounting, the source records and the allowlist (under
 * BPF_PROG_TEST_RUN), and a spoofed-source hping3 flood on a veth lab.
 */
import { XdpIdsProgram, DEFAULT_KERNEL_CONFIG } from '../../sensor/kernel/program';
import { readDstCounters, DST_STATS_SIZE, ADDR_SIZE } from '../../sensor/kernel/records';
import { addressKey } from '../../sensor/addresses';
import { monotonicNs } from '../../sensor/clock';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { hping3 } from '../../lab/traffic';
import { Sensor } from '../../sensor/daemon';
import { CollectingSink } from '../support/collecting-sink';
import { quietLogger } from '../support/quiet-logger';
import { tcp4, tcp6, udp4 } from '../support/packets';

const XDP_DROP = 1;
const XDP_PASS = 2;
const HOUR_NS = 3_600_000_000_000n;
const TARGET = '198.19.0.1';
/** The kernel's coarse clock may run up to a jiffy (4 ms at HZ=250, 10 ms at HZ=100) ahead of
 * what we measured around a run. */
const JIFFY_NS = 10_000_000n;

/** A distinct spoofed-looking source for each i. */
function source(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

/** SYNs a bucket may pass over a run that took elapsedNs: the burst plus the refill, rounded up. */
function maxPassed(burst: number, rate: number, elapsedNs: bigint): number {
  return burst + Math.ceil((rate * Number(elapsedNs + JIFFY_NS)) / 1e9);
}

function dstSyn(program: XdpIdsProgram, address: string): number {
  const batch = program.readDestinations();
  const want = addressKey(address);
  for (let i = 0; i < batch.count; i++) {
    if (batch.keys.compare(want, 0, ADDR_SIZE, i * ADDR_SIZE, (i + 1) * ADDR_SIZE) === 0) return readDstCounters(batch.values, i * DST_STATS_SIZE).syn;
  }
  return 0;
}

function limitOf(program: XdpIdsProgram, address: string) {
  return program.listDestinationLimits().find((l) => l.address === address);
}

describe('per-destination SYN limit under BPF_PROG_TEST_RUN', () => {
  let program: XdpIdsProgram;
  beforeEach(() => {
    program = XdpIdsProgram.open();
    program.setConfig({ ...DEFAULT_KERNEL_CONFIG, windowNs: HOUR_NS });
  });
  afterEach(() => program.close());

  /** Sends `count` SYNs from distinct sources to `dst`; returns how many passed and how long it took. */
  function flood(dst: string, count: number, first = 0): { passed: number; elapsedNs: bigint } {
    const t0 = monotonicNs();
    let passed = 0;
    for (let i = first; i < first + count; i++) {
      const frame = dst.includes(':') ? tcp6({ src: `fd00:10::${i.toString(16)}`, dst, flags: 'S' }) : tcp4({ src: source(i), dst, flags: 'S' });
      if (program.testRun(frame).retval === XDP_PASS) passed++;
    }
    return { passed, elapsedNs: monotonicNs() - t0 };
  }

  test('1,000 back-to-back SYNs at 100/s burst 100: the burst passes, the rest is dropped and counted, the accounting sees all', () => {
    program.setDestinationLimit(TARGET, { synPerSecond: 100, burst: 100 });
    const { passed, elapsedNs } = flood(TARGET, 1000);
    // The burst, plus what the bucket refilled while the test sent (typically 1-3 SYNs).
    expect(passed).toBeGreaterThanOrEqual(100);
    expect(passed).toBeLessThanOrEqual(maxPassed(100, 100, elapsedNs));
    const globals = program.readGlobals();
    expect(globals.drop_dst_limit).toBe(1000 - passed);
    expect(globals).toMatchObject({ packets: 1000, pass: passed, new_sources: passed, drop_blocked: 0 });
    expect(limitOf(program, TARGET)).toEqual({ address: TARGET, synPerSecond: 100, burst: 100, expiresNs: 0n, drops: 1000 - passed });
    // The detector keeps seeing the whole flood; the dropped sources never reach ids_src.
    expect(dstSyn(program, TARGET)).toBe(1000);
    expect(program.readSources().count).toBe(passed);
  });

  test('only SYNs to the limited destination are limited: SYN-ACK, ACK, UDP and other destinations pass', () => {
    program.setDestinationLimit(TARGET, { synPerSecond: 1, burst: 1 });
    expect(program.testRun(tcp4({ src: source(1), dst: TARGET, flags: 'S' })).retval).toBe(XDP_PASS);
    expect(program.testRun(tcp4({ src: source(2), dst: TARGET, flags: 'S' })).retval).toBe(XDP_DROP);
    for (const flags of ['SA', 'A', 'PA', 'R', 'F']) {
      expect({ flags, verdict: program.testRun(tcp4({ src: source(3), dst: TARGET, flags })).retval }).toEqual({ flags, verdict: XDP_PASS });
    }
    expect(program.testRun(udp4({ src: source(4), dst: TARGET, dport: 80 })).retval).toBe(XDP_PASS);
    expect(flood('198.19.0.2', 50).passed).toBe(50);
    // ECE/CWR do not change the class: still a SYN.
    expect(program.testRun(tcp4({ src: source(5), dst: TARGET, flags: 'SEC' })).retval).toBe(XDP_DROP);
    expect(program.readGlobals().drop_dst_limit).toBe(2);
  });

  test('an expired entry no longer limits', () => {
    program.setDestinationLimit(TARGET, { synPerSecond: 1, burst: 1, expiresNs: 1n });
    expect(flood(TARGET, 20).passed).toBe(20);
    expect(limitOf(program, TARGET)!.drops).toBe(0);
    program.setDestinationLimit(TARGET, { synPerSecond: 1, burst: 1, expiresNs: monotonicNs() + HOUR_NS });
    expect(flood(TARGET, 20, 100).passed).toBe(1);
  });

  test('an allowlisted source is never limited, and its allow entry counts the averted drops', () => {
    program.addAllow('198.18.5.0/24');
    program.setDestinationLimit(TARGET, { synPerSecond: 1, burst: 1 });
    flood(TARGET, 10);
    for (let i = 0; i < 5; i++) expect(program.testRun(tcp4({ src: '198.18.5.7', dst: TARGET, flags: 'S' })).retval).toBe(XDP_PASS);
    expect(program.testRun(tcp4({ src: '198.18.6.7', dst: TARGET, flags: 'S' })).retval).toBe(XDP_DROP);
    expect(program.listAllows()).toEqual([{ prefix: '198.18.5.0/24', hits: 5 }]);
    expect(program.readGlobals()).toMatchObject({ allowlisted: 5, drop_dst_limit: 10 });
  });

  test('IPv6 destinations, and IPv4-mapped addresses as IPv4', () => {
    program.setDestinationLimit('fd00:19::1', { synPerSecond: 10, burst: 5 });
    const { passed, elapsedNs } = flood('fd00:19::1', 200);
    expect(passed).toBeGreaterThanOrEqual(5);
    expect(passed).toBeLessThanOrEqual(maxPassed(5, 10, elapsedNs));
    expect(limitOf(program, 'fd00:19::1')!.drops).toBe(200 - passed);
    expect(flood('fd00:19::2', 20).passed).toBe(20);

    program.setDestinationLimit('::ffff:198.19.0.9', { synPerSecond: 2 });
    expect(limitOf(program, '198.19.0.9')).toMatchObject({ synPerSecond: 2, burst: 2 });
    expect(flood('198.19.0.9', 10, 1000).passed).toBe(2);
  });

  test('set, list, replace and delete; a replaced entry keeps its drops and grants no new burst', () => {
    expect(program.listDestinationLimits()).toEqual([]);
    const expiresNs = monotonicNs() + HOUR_NS;
    program.setDestinationLimit(TARGET, { synPerSecond: 50 });
    program.setDestinationLimit('fd00:19::7', { synPerSecond: 1000, burst: 20, expiresNs });
    expect(program.listDestinationLimits().sort((a, b) => a.address.localeCompare(b.address))).toEqual([
      { address: TARGET, synPerSecond: 50, burst: 50, expiresNs: 0n, drops: 0 },
      { address: 'fd00:19::7', synPerSecond: 1000, burst: 20, expiresNs, drops: 0 },
    ]);

    const { passed } = flood(TARGET, 100);
    const drops = 100 - passed;
    expect(drops).toBeGreaterThan(0);
    program.setDestinationLimit(TARGET, { synPerSecond: 60, burst: 60, expiresNs });
    expect(limitOf(program, TARGET)).toEqual({ address: TARGET, synPerSecond: 60, burst: 60, expiresNs, drops });
    // The spent budget carried over (about a second of it): no fresh burst of sixty.
    expect(flood(TARGET, 100, 1000).passed).toBeLessThan(10);

    expect(program.deleteDestinationLimit(TARGET)).toBe(true);
    expect(program.deleteDestinationLimit(TARGET)).toBe(false);
    expect(program.deleteDestinationLimit('fd00:19::7')).toBe(true);
    expect(program.listDestinationLimits()).toEqual([]);
    expect(flood(TARGET, 50, 2000).passed).toBe(50);
  });

  test('bad input is refused with a RangeError and changes nothing', () => {
    const bad: [string, { synPerSecond: number; burst?: number; expiresNs?: bigint }][] = [
      ['nope', { synPerSecond: 10 }],
      ['198.19.0.0/24', { synPerSecond: 10 }],
      ['', { synPerSecond: 10 }],
      [TARGET, { synPerSecond: 0 }],
      [TARGET, { synPerSecond: -5 }],
      [TARGET, { synPerSecond: 1.5 }],
      [TARGET, { synPerSecond: NaN }],
      [TARGET, { synPerSecond: 1_000_001 }],
      [TARGET, { synPerSecond: 10, burst: 0 }],
      [TARGET, { synPerSecond: 10, burst: 2 ** 32 }],
      [TARGET, { synPerSecond: 10, expiresNs: -1n }],
      [TARGET, { synPerSecond: 10, expiresNs: 2n ** 64n }],
      [TARGET, { synPerSecond: 10, expiresNs: 5 as unknown as bigint }],
    ];
    for (const [address, opts] of bad) expect(() => program.setDestinationLimit(address, opts)).toThrow(RangeError);
    expect(() => program.deleteDestinationLimit('nope')).toThrow(RangeError);
    expect(program.listDestinationLimits()).toEqual([]);
    program.setDestinationLimit(TARGET, { synPerSecond: 1_000_000, burst: 2 ** 32 - 1 });
    expect(limitOf(program, TARGET)).toMatchObject({ synPerSecond: 1_000_000, burst: 2 ** 32 - 1 });
  });
});

describe('per-destination SYN limit on a veth lab', () => {
  const lab = new NetnsLab('xidlim', 19);
  let attacker: LabHost;
  let sensor: Sensor | undefined;

  beforeAll(async () => {
    lab.create();
    attacker = lab.addHost('atk', 66);
    const sink = new CollectingSink();
    sensor = Sensor.start({ iface: lab.iface, windowMs: 500, pin: false }, sink, quietLogger);
    await sink.nextTicks(1);
  });

  afterAll(() => {
    sensor?.stop();
    lab.destroy();
  });

  test('an hping3 --rand-source SYN flood to the protected host is held to about the limit', async () => {
    const program = sensor!.program;
    const rate = 200;
    program.setDestinationLimit(lab.hostV4, { synPerSecond: rate });
    const synBefore = dstSyn(program, lab.hostV4);
    const t0 = monotonicNs();
    await hping3(lab, attacker, 'syn', lab.hostV4, { count: 3000, intervalUs: 200, dport: 80, randSource: true });
    const elapsedNs = monotonicNs() - t0;

    const { drops } = limitOf(program, lab.hostV4)!;
    const seen = dstSyn(program, lab.hostV4) - synBefore;
    const passed = seen - drops;
    expect(seen).toBeGreaterThan(2000); // the flood did arrive (a veth loses next to nothing)
    expect(drops).toBeGreaterThan(0);
    expect(program.readGlobals().drop_dst_limit).toBe(drops);
    // The burst, then the rate for as long as the flood lasted (hping3's start-up included).
    expect(passed).toBeGreaterThanOrEqual(rate);
    expect(passed).toBeLessThanOrEqual(maxPassed(rate, rate, elapsedNs) + 2);
  }, 30_000);
});
