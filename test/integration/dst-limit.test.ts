/**
 * The per-destination limits of the XDP program, one per traffic class (SYN, SYN-ACK, amplifier
 * UDP, fragments): the token bucket, what it lets through, its interplay with the destination
 * accounting, the source records and the allowlist (under BPF_PROG_TEST_RUN), and a
 * spoofed-source hping3 SYN flood on a veth lab.
 */
import { XdpIdsProgram, DEFAULT_KERNEL_CONFIG } from '../../sensor/kernel/program';
import type { TrafficClass } from '../../common/traffic';
import { monotonicNs } from '../../sensor/clock';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { hping3 } from '../../lab/traffic';
import { Sensor } from '../../sensor/daemon';
import { CollectingSink } from '../support/collecting-sink';
import { quietLogger } from '../support/quiet-logger';
import { destinationRecord, type KernelDestination } from '../support/kernel-records';
import { fragments4, tcp, tcp4, tcp6, udp, udp4 } from '../support/packets';

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
  return destinationRecord(program, address)?.syn ?? 0;
}

function limitOf(program: XdpIdsProgram, address: string, traffic: TrafficClass = 'syn') {
  return program.listDestinationLimits().find((l) => l.address === address && l.traffic === traffic);
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
    program.setDestinationLimit(TARGET, 'syn', { perSecond: 100, burst: 100 });
    const { passed, elapsedNs } = flood(TARGET, 1000);
    // The burst, plus what the bucket refilled while the test sent (typically 1-3 SYNs).
    expect(passed).toBeGreaterThanOrEqual(100);
    expect(passed).toBeLessThanOrEqual(maxPassed(100, 100, elapsedNs));
    const globals = program.readGlobals();
    expect(globals.drop_dst_limit).toBe(1000 - passed);
    expect(globals).toMatchObject({ packets: 1000, pass: passed, new_sources: passed, drop_blocked: 0 });
    expect(limitOf(program, TARGET)).toEqual({ address: TARGET, traffic: 'syn', perSecond: 100, burst: 100, expiresNs: 0n, drops: 1000 - passed, retained: false });
    // The detector keeps seeing the whole flood; the dropped sources never reach ids_src.
    expect(dstSyn(program, TARGET)).toBe(1000);
    expect(program.readSources().count).toBe(passed);
  });

  test('only SYNs to the limited destination are limited: SYN-ACK, ACK, UDP and other destinations pass', () => {
    program.setDestinationLimit(TARGET, 'syn', { perSecond: 1, burst: 1 });
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
    program.setDestinationLimit(TARGET, 'syn', { perSecond: 1, burst: 1, expiresNs: 1n });
    expect(flood(TARGET, 20).passed).toBe(20);
    expect(limitOf(program, TARGET)!.drops).toBe(0);
    program.setDestinationLimit(TARGET, 'syn', { perSecond: 1, burst: 1, expiresNs: monotonicNs() + HOUR_NS });
    expect(flood(TARGET, 20, 100).passed).toBe(1);
  });

  test('an allowlisted source is never limited, and its allow entry counts the averted drops', () => {
    program.addAllow('198.18.5.0/24');
    program.setDestinationLimit(TARGET, 'syn', { perSecond: 1, burst: 1 });
    flood(TARGET, 10);
    for (let i = 0; i < 5; i++) expect(program.testRun(tcp4({ src: '198.18.5.7', dst: TARGET, flags: 'S' })).retval).toBe(XDP_PASS);
    expect(program.testRun(tcp4({ src: '198.18.6.7', dst: TARGET, flags: 'S' })).retval).toBe(XDP_DROP);
    expect(program.listAllows()).toEqual([{ prefix: '198.18.5.0/24', hits: 5, retained: false }]);
    expect(program.readGlobals()).toMatchObject({ allowlisted: 5, drop_dst_limit: 10 });
  });

  test('IPv6 destinations, and IPv4-mapped addresses as IPv4', () => {
    program.setDestinationLimit('fd00:19::1', 'syn', { perSecond: 10, burst: 5 });
    const { passed, elapsedNs } = flood('fd00:19::1', 200);
    expect(passed).toBeGreaterThanOrEqual(5);
    expect(passed).toBeLessThanOrEqual(maxPassed(5, 10, elapsedNs));
    expect(limitOf(program, 'fd00:19::1')!.drops).toBe(200 - passed);
    expect(flood('fd00:19::2', 20).passed).toBe(20);

    program.setDestinationLimit('::ffff:198.19.0.9', 'syn', { perSecond: 2 });
    expect(limitOf(program, '198.19.0.9')).toMatchObject({ perSecond: 2, burst: 2 });
    expect(flood('198.19.0.9', 10, 1000).passed).toBe(2);
  });

  test('set, list, replace and delete; a replaced entry keeps its drops and grants no new burst', () => {
    expect(program.listDestinationLimits()).toEqual([]);
    const expiresNs = monotonicNs() + HOUR_NS;
    program.setDestinationLimit(TARGET, 'syn', { perSecond: 50 });
    program.setDestinationLimit(TARGET, 'syn-ack', { perSecond: 5, retained: true });
    program.setDestinationLimit('fd00:19::7', 'syn', { perSecond: 1000, burst: 20, expiresNs });
    const order = (l: { address: string; traffic: string }): string => `${l.address} ${l.traffic}`;
    expect(program.listDestinationLimits().sort((a, b) => order(a).localeCompare(order(b)))).toEqual([
      { address: TARGET, traffic: 'syn', perSecond: 50, burst: 50, expiresNs: 0n, drops: 0, retained: false },
      { address: TARGET, traffic: 'syn-ack', perSecond: 5, burst: 5, expiresNs: 0n, drops: 0, retained: true },
      { address: 'fd00:19::7', traffic: 'syn', perSecond: 1000, burst: 20, expiresNs, drops: 0, retained: false },
    ]);

    const { passed } = flood(TARGET, 100);
    const drops = 100 - passed;
    expect(drops).toBeGreaterThan(0);
    program.setDestinationLimit(TARGET, 'syn', { perSecond: 60, burst: 60, expiresNs });
    expect(limitOf(program, TARGET)).toEqual({ address: TARGET, traffic: 'syn', perSecond: 60, burst: 60, expiresNs, drops, retained: false });
    // The spent budget carried over (about a second of it): no fresh burst of sixty.
    expect(flood(TARGET, 100, 1000).passed).toBeLessThan(10);

    expect(program.deleteDestinationLimit(TARGET, 'syn')).toBe(true);
    expect(program.deleteDestinationLimit(TARGET, 'syn')).toBe(false);
    expect(program.deleteDestinationLimit(TARGET, 'syn-ack')).toBe(true);
    expect(program.deleteDestinationLimit('fd00:19::7', 'syn')).toBe(true);
    expect(program.listDestinationLimits()).toEqual([]);
    expect(flood(TARGET, 50, 2000).passed).toBe(50);
  });

  test('bad input is refused with a RangeError and changes nothing', () => {
    const bad: [string, { perSecond: number; burst?: number; expiresNs?: bigint }][] = [
      ['nope', { perSecond: 10 }],
      ['198.19.0.0/24', { perSecond: 10 }],
      ['', { perSecond: 10 }],
      [TARGET, { perSecond: 0 }],
      [TARGET, { perSecond: -5 }],
      [TARGET, { perSecond: 1.5 }],
      [TARGET, { perSecond: NaN }],
      [TARGET, { perSecond: 1_000_001 }],
      [TARGET, { perSecond: 10, burst: 0 }],
      [TARGET, { perSecond: 10, burst: 2 ** 32 }],
      [TARGET, { perSecond: 10, expiresNs: -1n }],
      [TARGET, { perSecond: 10, expiresNs: 2n ** 64n }],
      [TARGET, { perSecond: 10, expiresNs: 5 as unknown as bigint }],
    ];
    for (const [address, opts] of bad) expect(() => program.setDestinationLimit(address, 'syn', opts)).toThrow(RangeError);
    expect(() => program.deleteDestinationLimit('nope', 'syn')).toThrow(RangeError);
    expect(program.listDestinationLimits()).toEqual([]);
    program.setDestinationLimit(TARGET, 'syn', { perSecond: 1_000_000, burst: 2 ** 32 - 1 });
    expect(limitOf(program, TARGET)).toMatchObject({ perSecond: 1_000_000, burst: 2 ** 32 - 1 });
  });
});

/** For each limited class: a packet of it, and packets to the same destination of other classes. */
const CLASSES: [TrafficClass, (dst: string, i: number) => Buffer, (dst: string, i: number) => Buffer[]][] = [
  [
    'syn-ack', // backscatter of SYNs forged in the destination's name, or a SYN-ACK reflection
    (dst, i) => tcp4({ src: source(i), dst, sport: 80, dport: 40000 + (i % 1000), flags: 'SA' }),
    (dst, i) => [tcp4({ src: source(i), dst, flags: 'S' }), tcp4({ src: source(i), dst, sport: 80, dport: 40000, flags: 'A' })],
  ],
  [
    'udp-amp',
    (dst, i) => udp4({ src: source(i), dst, sport: [53, 123, 11211][i % 3], dport: 40000 + (i % 1000), payload: Buffer.alloc(200) }),
    (dst, i) => [udp4({ src: source(i), dst, sport: 40000, dport: 53 }), tcp4({ src: source(i), dst, sport: 53, dport: 40000, flags: 'PA' })],
  ],
  [
    'fragments', // first and later ones alike
    (dst, i) => fragments4({ src: source(i), dst, bytesPerFragment: 8, ip: { id: i } }, tcp({ dport: 22 }))[i % 3],
    // A UDP first fragment from an amplifier port is amplifier traffic, not a fragment, to the limits.
    (dst, i) => [udp4({ src: source(i), dst }), fragments4({ src: source(i), dst, bytesPerFragment: 8, payload: Buffer.alloc(16) }, udp({ sport: 53, dport: 40000 }))[0]],
  ],
];

describe('limits on SYN-ACKs, amplifier UDP and fragments under BPF_PROG_TEST_RUN', () => {
  let program: XdpIdsProgram;
  beforeAll(() => {
    program = XdpIdsProgram.open();
    program.setConfig({ ...DEFAULT_KERNEL_CONFIG, windowNs: HOUR_NS });
  });
  afterAll(() => program?.close());

  test.each(CLASSES)('%s: over the budget dropped and counted, other classes pass, the accounting sees all', (traffic, ofClass, others) => {
    const dst = `198.19.${CLASSES.findIndex(([t]) => t === traffic) + 10}.1`;
    program.setDestinationLimit(dst, traffic, { perSecond: 1, burst: 5 });
    const globalsBefore = program.readGlobals();
    const t0 = monotonicNs();
    const passed = Array.from({ length: 60 }, (_, i) => program.testRun(ofClass(dst, i)).retval).filter((v) => v === XDP_PASS).length;
    const elapsedNs = monotonicNs() - t0;
    expect(passed).toBeGreaterThanOrEqual(5);
    expect(passed).toBeLessThanOrEqual(maxPassed(5, 1, elapsedNs));
    expect(limitOf(program, dst, traffic)!.drops).toBe(60 - passed);
    expect(program.readGlobals().drop_dst_limit - globalsBefore.drop_dst_limit).toBe(60 - passed);
    const counted: Record<TrafficClass, keyof KernelDestination> = { syn: 'syn', 'syn-ack': 'synack', 'udp-amp': 'udp_amp', fragments: 'fragments' };
    expect(destinationRecord(program, dst)![counted[traffic]]).toBe(60);

    const otherVerdicts = Array.from({ length: 20 }, (_, i) => others(dst, 1000 + i)).flat().map((frame) => program.testRun(frame).retval);
    expect(otherVerdicts.every((v) => v === XDP_PASS)).toBe(true);
  });

  test.each(CLASSES)('%s: an allowlisted source passes over the budget; an expired limit limits nothing', (traffic, ofClass) => {
    const index = CLASSES.findIndex(([t]) => t === traffic);
    const [dst, expiredDst] = [`198.19.${index + 20}.1`, `198.19.${index + 30}.1`];
    program.setDestinationLimit(dst, traffic, { perSecond: 1, burst: 1 });
    const allowed = `10.0.${index + 100}.0/24`;
    program.addAllow(allowed);
    const fromAllowed = (i: number): Buffer => ofClass(dst, ((index + 100) << 8) + i); // source() of these is 10.0.<index + 100>.<i>
    expect(program.testRun(ofClass(dst, 1)).retval).toBe(XDP_PASS);
    expect(program.testRun(ofClass(dst, 2)).retval).toBe(XDP_DROP);
    expect([1, 2, 3].map((i) => program.testRun(fromAllowed(i)).retval)).toEqual([XDP_PASS, XDP_PASS, XDP_PASS]);
    expect(program.listAllows().find((a) => a.prefix === allowed)!.hits).toBe(3);

    program.setDestinationLimit(expiredDst, traffic, { perSecond: 1, burst: 1, expiresNs: 1n });
    expect(Array.from({ length: 10 }, (_, i) => program.testRun(ofClass(expiredDst, i)).retval).every((v) => v === XDP_PASS)).toBe(true);
    expect(limitOf(program, expiredDst, traffic)!.drops).toBe(0);
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
    program.setDestinationLimit(lab.hostV4, 'syn', { perSecond: rate });
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
