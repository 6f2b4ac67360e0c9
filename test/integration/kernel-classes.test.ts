/**
 * How the kernel classifies packets (BPF_PROG_TEST_RUN, bpf/README.md steps 5-10): SYNs with
 * ECE and CWR, a fragmented SYN scan (nmap -f), IPv6 behind the most extension headers it
 * follows, replies and amplifier traffic (port classes), protected prefixes and a mirror port's
 * SYN-ACKs. One program serves all tests (loading it is the slow part); each test has its own
 * addresses and reads the global counters as deltas.
 */
import { XdpIdsProgram, DEFAULT_KERNEL_CONFIG } from '../../sensor/kernel/program';
import { decodeEvent, type KernelEvent } from '../../sensor/kernel/records';
import type { RingBuffer } from '../../native/bpf';
import { destinationRecord, sourceRecord } from '../support/kernel-records';
import { addrKey, ampSourceBit, portBit } from '../support/reference';
import { until } from '../support/until';
import * as pk from '../support/packets';

const XDP_PASS = 2;
const TRIP_SYN = 3;

describe('packet classes under BPF_PROG_TEST_RUN', () => {
  let program: XdpIdsProgram;
  let ring: RingBuffer;
  const events: KernelEvent[] = [];

  beforeAll(() => {
    program = XdpIdsProgram.open();
    program.setConfig({ ...DEFAULT_KERNEL_CONFIG, windowNs: 1n << 60n, tripSyn: TRIP_SYN, eventsPerSrcWindow: 8, eventRate: 1000, eventBurst: 100 });
    ring = program.subscribe((records) => events.push(...records.map((r) => decodeEvent(r, Number)!)));
  });

  afterAll(() => {
    ring?.close();
    program?.close();
  });

  function ingress(...frames: Buffer[]): void {
    for (const frame of frames) expect(program.testRun(frame).retval).toBe(XDP_PASS);
  }

  function globalsAdded(run: () => void): Record<string, number> {
    const before = program.readGlobals();
    run();
    return Object.fromEntries(Object.entries(program.readGlobals()).map(([name, value]) => [name, value - before[name]]).filter(([, delta]) => delta !== 0));
  }

  test('a SYN with ECE and CWR (an ECN-setup SYN) is a SYN: source, window, destination and fast-path trip', async () => {
    const [src, dst] = ['198.18.1.1', '198.19.1.1'];
    ingress(...Array.from({ length: TRIP_SYN }, (_, i) => pk.tcp4({ src, dst, sport: 40000 + i, flags: 'SEC' })));
    expect(sourceRecord(program, src)).toMatchObject({ syn: TRIP_SYN, syn_window: TRIP_SYN, null_scan: 0 });
    expect(destinationRecord(program, dst)).toMatchObject({ syn: TRIP_SYN });
    const trip = await until('the SYN trip', () => events.find((e) => e.type === 'trip' && e.packet.src === src));
    expect(trip).toMatchObject({ kind: 'syn', value: TRIP_SYN, threshold: TRIP_SYN, packet: { tcpFlags: 'SEC', dst } });
  });

  test('a SYN scan cut into 8-byte fragments: distinct ports from the first fragments, no TCP class, later fragments counted apart', () => {
    const [src, dst] = ['198.18.2.1', '198.19.2.1'];
    const ports = Array.from({ length: 64 }, (_, i) => i + 1);
    const fragments = ports.flatMap((dport) => pk.fragments4({ src, dst, ip: { id: dport }, bytesPerFragment: 8 }, pk.tcp({ dport, flags: 'S' })));
    expect(fragments).toHaveLength(3 * ports.length); // 20 TCP bytes: 8 + 8 + 4
    const added = globalsAdded(() => ingress(...fragments));
    expect(added).toEqual({ packets: 192, bytes: added.bytes, pass: 192, ipv4: 192, first_fragments: 64, fragments: 128, new_sources: 1 });
    const bits = new Set(ports.map(portBit)).size;
    expect(sourceRecord(program, src)).toMatchObject({ packets: 192, first_fragments: 64, fragments: 128, syn: 0, syn_window: 0, malformed: 0, port_bits: bits });
    expect(destinationRecord(program, dst)).toMatchObject({ syn: 0, fragments: 192, fragment_bytes: added.bytes });
  });

  test('IPv6 behind eight extension headers is parsed; a ninth is ERR_IPV6_EXT_LIMIT', () => {
    const eight = [pk.hopByHop(), pk.routing(), pk.destOpts(), pk.ah(), pk.fragment6(), pk.destOpts(), pk.routing(), pk.destOpts()];
    const src = 'fd00:3::1';
    const parsed = globalsAdded(() => ingress(pk.tcp6({ src, ext: eight, flags: 'S' })));
    expect(parsed.err_ipv6_ext_limit).toBeUndefined();
    expect(sourceRecord(program, src)).toMatchObject({ syn: 1, malformed: 0, port_bits: 1 });
    const refused = globalsAdded(() => ingress(pk.tcp6({ src, ext: [...eight, pk.destOpts()], flags: 'S' })));
    expect(refused.err_ipv6_ext_limit).toBe(1);
    expect(sourceRecord(program, src)).toMatchObject({ syn: 1, malformed: 1, port_bits: 1 });
  });

  test('replies (a service port answering an ephemeral one) are counted as replies, not as distinct ports', () => {
    const [server, host] = ['198.18.4.1', '198.19.4.1'];
    ingress(
      ...Array.from({ length: 20 }, (_, i) => pk.udp4({ src: server, dst: host, sport: 53, dport: 50000 + i })),
      ...Array.from({ length: 20 }, (_, i) => pk.tcp4({ src: server, dst: host, sport: 443, dport: 50000 + i, flags: i ? 'PA' : 'SA' })),
    );
    expect(sourceRecord(program, server)).toMatchObject({ replies: 40, port_bits: 0 });
    ingress(pk.tcp4({ src: server, dst: host, sport: 443, dport: 50000, flags: 'S' }), pk.udp4({ src: server, dst: host, sport: 53, dport: 53 }));
    expect(sourceRecord(program, server)).toMatchObject({ replies: 40, port_bits: 2 });
  });

  test('UDP from amplifier ports counts udp_amp and the distinct reflectors in amp_src_bits', () => {
    const victim = '198.19.5.1';
    const reflectors = Array.from({ length: 30 }, (_, i) => `198.18.5.${i + 1}`);
    const frames = reflectors.map((src, i) => pk.udp4({ src, dst: victim, sport: [53, 123, 11211][i % 3], dport: 40000 + i, payload: Buffer.alloc(400) }));
    ingress(...frames, pk.udp4({ src: '198.18.5.200', dst: victim, sport: 40000, dport: 53 }));
    const bits = new Set(reflectors.map((src) => ampSourceBit(Buffer.from(addrKey(src), 'hex')))).size;
    expect(destinationRecord(program, victim)).toMatchObject({ udp: 31, udp_amp: 30, udp_amp_bytes: frames.reduce((sum, f) => sum + f.length, 0), amp_src_bits: bits });
  });

  describe('with protected prefixes', () => {
    beforeAll(() => program.setProtected(['198.19.6.0/24']));
    afterAll(() => program.setProtected([]));

    test('traffic to an unprotected destination counts NOT_PROTECTED only', () => {
      const [src, outside] = ['198.18.6.1', '198.20.6.1'];
      const added = globalsAdded(() => ingress(pk.tcp4({ src, dst: outside, flags: 'S' }), pk.udp4({ src, dst: outside })));
      expect(added).toEqual({ packets: 2, bytes: added.bytes, pass: 2, ipv4: 2, not_protected: 2 });
      expect([sourceRecord(program, src), destinationRecord(program, outside)]).toEqual([undefined, undefined]);
      ingress(pk.tcp4({ src, dst: '198.19.6.1', flags: 'S' }));
      expect(sourceRecord(program, src)).toMatchObject({ packets: 1, syn: 1 });
    });

    test('a change of the protected prefixes takes effect at once, though each CPU remembers its last destination\'s verdict', () => {
      const [src, dst] = ['198.18.6.20', '198.19.6.20'];
      expect(globalsAdded(() => ingress(pk.udp4({ src, dst }))).not_protected).toBeUndefined();
      program.setProtected(['198.19.66.0/24']);
      try {
        expect(globalsAdded(() => ingress(pk.udp4({ src, dst }))).not_protected).toBe(1);
      } finally {
        program.setProtected(['198.19.6.0/24']);
      }
      expect(globalsAdded(() => ingress(pk.udp4({ src, dst }))).not_protected).toBeUndefined();
    });

    test('a protected host\'s SYN-ACK to an unprotected peer (a mirror port) records a challenge that the peer\'s ACK completes', () => {
      const [host, peer] = ['198.19.6.5', '203.0.113.7'];
      const mirrored = globalsAdded(() => ingress(pk.tcp4({ src: host, dst: peer, sport: 443, dport: 45000, flags: 'SA', seq: 7000 })));
      expect(mirrored).toMatchObject({ challenges: 1, not_protected: 1 });
      const unprotected = globalsAdded(() => ingress(pk.tcp4({ src: '198.18.6.9', dst: peer, sport: 443, dport: 45001, flags: 'SA', seq: 1 })));
      expect(unprotected.challenges).toBeUndefined();
      const answered = globalsAdded(() => ingress(pk.tcp4({ src: peer, dst: host, sport: 45000, dport: 443, flags: 'A', ack: 7001, ip: { ttl: 49 } })));
      expect(answered.handshakes).toBe(1);
      expect(sourceRecord(program, peer)).toMatchObject({ handshakes: 1, verified_ttl: 49 });
    });
  });
});
