/**
 * The kernel's ring buffer events and throttles, driven by BPF_PROG_TEST_RUN and read back through
 * the real ring buffer: header samples, fast-path trips, their limits, and the insert throttle.
 */
import { XdpIdsProgram, DEFAULT_KERNEL_CONFIG } from '../../sensor/kernel/program';
import { decodeEvent, type KernelConfig, type KernelEvent } from '../../sensor/kernel/records';
import { monoToWallMs, monotonicNs } from '../../sensor/clock';
import { STRUCTS } from '../../sensor/kernel/layout.generated';
import { tcp4, udp6 } from '../support/packets';
import type { RingBuffer } from '../../native/bpf';

const HOUR_NS = 3_600_000_000_000n;

function setup(config: Partial<KernelConfig>): { program: XdpIdsProgram; events: KernelEvent[]; ring: RingBuffer } {
  const program = XdpIdsProgram.open();
  program.setConfig({ ...DEFAULT_KERNEL_CONFIG, windowNs: HOUR_NS, ...config });
  const events: KernelEvent[] = [];
  const ring = program.subscribe((records) => records.forEach((r) => events.push(decodeEvent(r, monoToWallMs)!)));
  return { program, events, ring };
}

async function settle(events: KernelEvent[], count: number): Promise<void> {
  const deadline = Date.now() + 3000;
  while (events.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 150)); // and nothing more arrives
}

describe('ring buffer events from the XDP program', () => {
  let open: { program: XdpIdsProgram; ring: RingBuffer } | undefined;
  afterEach(() => {
    open?.ring.close();
    open?.program.close();
    open = undefined;
  });

  test('a watched source gets header samples with every element, at most N per window', async () => {
    const { program, events, ring } = setup({ eventRate: 1000, eventBurst: 1000, eventsPerSrcWindow: 5 });
    open = { program, ring };
    program.watch('198.18.0.9');
    const frame = tcp4({
      src: '198.18.0.9', dst: '198.19.0.1', sport: 40001, dport: 22, flags: 'SE', seq: 123456, ack: 0, window: 29200,
      ip: { ttl: 51, tos: (10 << 2) | 1, id: 4321, df: true }, vlans: [{ tci: 100 }],
      eth: { src: '02:00:00:00:00:09', dst: '02:00:00:00:00:01' },
    });
    for (let i = 0; i < 20; i++) program.testRun(frame);
    program.testRun(tcp4({ src: '198.18.0.10', dst: '198.19.0.1', flags: 'S' }));
    await settle(events, 5);
    expect(events).toHaveLength(5);
    expect(events.every((e) => e.type === 'sample' && e.reason === 'watched')).toBe(true);
    expect(events[0].packet).toMatchObject({
      src: '198.18.0.9', dst: '198.19.0.1', srcMac: '02:00:00:00:00:09', dstMac: '02:00:00:00:00:01', etherType: 0x0800,
      vlans: [100], ipVersion: 4, protocol: 6, ttl: 51, dscp: 10, ecn: 1, ipId: 4321,
      fragment: { df: true, mf: false, nonFirst: false }, srcPort: 40001, dstPort: 22, tcpFlags: 'SE', seq: 123456, tcpWindow: 29200,
      length: frame.length,
    });
    program.unwatch('198.18.0.9');
  });

  test('IPv6 samples carry hop limit, traffic class and flow label', async () => {
    const { program, events, ring } = setup({ eventRate: 1000, eventBurst: 1000, eventsPerSrcWindow: 5 });
    open = { program, ring };
    program.watch('fd00::9');
    program.testRun(udp6({ src: 'fd00::9', dst: 'fd00::1', sport: 5353, dport: 53, ip: { hopLimit: 7, trafficClass: 0x2e << 2, flowLabel: 0xabcde } }));
    await settle(events, 1);
    expect(events[0].packet).toMatchObject({ src: 'fd00::9', dst: 'fd00::1', ipVersion: 6, protocol: 17, ttl: 7, dscp: 0x2e, flowLabel: 0xabcde, srcPort: 5353, dstPort: 53 });
  });

  test('a source crossing the SYN threshold trips once per window, with the value and threshold', async () => {
    const { program, events, ring } = setup({ eventRate: 1000, eventBurst: 1000, eventsPerSrcWindow: 8, tripSyn: 10 });
    open = { program, ring };
    for (let i = 0; i < 50; i++) program.testRun(tcp4({ src: '198.18.0.66', dst: '198.19.0.1', dport: 1000 + i, flags: 'S' }));
    await settle(events, 1);
    const trips = events.filter((e) => e.type === 'trip');
    expect(trips).toHaveLength(1);
    expect(trips[0]).toMatchObject({ type: 'trip', kind: 'syn', value: 10, threshold: 10 });
    expect(trips[0].packet.src).toBe('198.18.0.66');
  });

  test('distinct ports trip on the sketch count', async () => {
    const { program, events, ring } = setup({ eventRate: 1000, eventBurst: 1000, eventsPerSrcWindow: 8, tripPortBits: 20 });
    open = { program, ring };
    for (let i = 0; i < 100; i++) program.testRun(tcp4({ src: '198.18.0.67', dst: '198.19.0.1', dport: 2000 + i, flags: 'F' }));
    await settle(events, 1);
    expect(events.filter((e) => e.type === 'trip')).toMatchObject([{ kind: 'ports', value: 20, threshold: 20 }]);
  });

  test('one in N new sources is sampled', async () => {
    const { program, events, ring } = setup({ eventRate: 1000, eventBurst: 1000, eventsPerSrcWindow: 8, sampleNewEvery: 4 });
    open = { program, ring };
    for (let i = 0; i < 40; i++) program.testRun(tcp4({ src: `198.18.1.${i}`, dst: '198.19.0.1', flags: 'S' }));
    await settle(events, 10);
    expect(events.filter((e) => e.type === 'sample' && e.reason === 'new-source')).toHaveLength(10);
  });

  test('the global event budget caps events however many sources trip', async () => {
    const { program, events, ring } = setup({ eventRate: 1, eventBurst: 3, eventsPerSrcWindow: 8, tripSyn: 1 });
    open = { program, ring };
    for (let i = 0; i < 50; i++) program.testRun(tcp4({ src: `198.18.2.${i}`, dst: '198.19.0.1', flags: 'S' }));
    await settle(events, 3);
    expect(events.length).toBe(3);
    expect(program.readGlobals().events_limited).toBe(47);
  });

  test('stamps follow CLOCK_MONOTONIC across ticks: never ahead, about a tick behind at most', () => {
    const { program, ring } = setup({});
    open = { program, ring };
    const lastSeen = STRUCTS.ids_src_stats.fields.last_seen_ns.offset;
    let ahead = 0;
    let worstLagNs = 0n;
    for (const end = Date.now() + 100; Date.now() < end;) {
      const before = monotonicNs();
      program.testRun(tcp4({ src: '198.18.4.1', dst: '198.19.0.1', flags: 'S' }));
      const after = monotonicNs();
      const stamp = program.lookupSource('198.18.4.1')!.readBigUInt64LE(lastSeen);
      if (stamp > after) ahead++;
      if (before - stamp > worstLagNs) worstLagNs = before - stamp;
    }
    expect(ahead).toBe(0);
    // The coarse clock trails by up to a tick (10 ms at HZ=100); a cached stamp that stopped
    // following it would trail by the whole loop.
    expect(Number(worstLagNs) / 1e6).toBeLessThan(25);
  });

  test('the insert throttle tracks only its budget of new sources and counts the rest as untracked', async () => {
    const { program, ring } = setup({ insertRate: 1, insertBurst: 5 });
    open = { program, ring };
    for (let i = 0; i < 100; i++) program.testRun(tcp4({ src: `198.18.3.${i}`, dst: '198.19.0.1', flags: 'S' }));
    expect(program.readSources().count).toBe(5);
    expect(program.readGlobals()).toMatchObject({ new_sources: 5, untracked: 95, packets: 100 });
    expect(program.readUntracked()).toMatchObject({ packets: 95, syn: 95 });
  });
});
