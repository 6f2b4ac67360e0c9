/**
 * Handshake verification in the kernel (BPF_PROG_TEST_RUN, bpf/README.md steps 8 and 11): the
 * SYN-ACK a protected host sends (TC egress, ids_egress) becomes a challenge, the ACK that
 * answers it verifies its source (handshakes, verified_at, verified_ttl), a verified source is
 * checked again only after IDS_VERIFY_REFRESH coarse units, and a TTL more than IDS_TTL_SLACK
 * off the verified one counts as a mismatch. The maps are pinned so the test can read the
 * challenges and age a record's verified_at. One program serves all tests (loading it is the
 * slow part); each test has its own addresses.
 */
import fs from 'node:fs';
import { BpfMap } from '../../native/bpf';
import { XdpIdsProgram, DEFAULT_KERNEL_CONFIG } from '../../sensor/kernel/program';
import { DEFINES, STRUCTS } from '../../sensor/kernel/layout.generated';
import { addressKey } from '../../sensor/addresses';
import { monotonicNs } from '../../sensor/clock';
import { destinationRecord, sourceRecord } from '../support/kernel-records';
import { until } from '../support/until';
import * as pk from '../support/packets';

const TC_ACT_OK = 0;
const XDP_PASS = 2;
const PIN_NAME = `xikh${process.pid}`;
const COARSE_SHIFT = BigInt(DEFINES.IDS_COARSE_SHIFT);
const REFRESH = DEFINES.IDS_VERIFY_REFRESH;
/** The kernel's coarse clock may trail ours by up to a jiffy (10 ms at HZ=100). */
const JIFFY_NS = 10_000_000n;
const HOST = '198.19.0.1';

function unit(ns: bigint): number {
  return Number(ns >> COARSE_SHIFT);
}

/** Key of ids_challenges: the peer, its port, our port. */
function challengeKey(peer: string, peerPort: number, localPort: number): Buffer {
  const key = Buffer.alloc(STRUCTS.ids_challenge_key.size);
  addressKey(peer).copy(key, STRUCTS.ids_challenge_key.fields.peer.offset);
  key.writeUInt16BE(peerPort, STRUCTS.ids_challenge_key.fields.peer_port.offset);
  key.writeUInt16BE(localPort, STRUCTS.ids_challenge_key.fields.local_port.offset);
  return key;
}

type TcpFrame = pk.TcpOptions & { src: string; dst: string; ttl?: number };
const tcp4 = ({ ttl = 64, ...o }: TcpFrame): Buffer => pk.tcp4({ ...o, ip: { ttl } });
const tcp6 = ({ ttl = 64, ...o }: TcpFrame): Buffer => pk.tcp6({ ...o, ip: { hopLimit: ttl } });

describe('handshake verification under BPF_PROG_TEST_RUN', () => {
  let program: XdpIdsProgram;
  let sources: BpfMap;
  let challenges: BpfMap;

  beforeAll(() => {
    fs.rmSync(`/sys/fs/bpf/xdp-ids/${PIN_NAME}`, { recursive: true, force: true });
    program = XdpIdsProgram.open({ pinName: PIN_NAME });
    program.setConfig({ ...DEFAULT_KERNEL_CONFIG, windowNs: 1n << 60n });
    sources = BpfMap.fromPinned(`${program.pinDir}/ids_src`);
    challenges = BpfMap.fromPinned(`${program.pinDir}/ids_challenges`);
  });

  afterAll(() => {
    sources?.close();
    challenges?.close();
    program?.close();
    fs.rmSync(`/sys/fs/bpf/xdp-ids/${PIN_NAME}`, { recursive: true, force: true });
  });

  function egress(frame: Buffer): void {
    const { retval, dataOut } = program.testRun(frame, { programName: 'ids_egress' });
    expect({ retval, unchanged: dataOut.equals(frame) }).toEqual({ retval: TC_ACT_OK, unchanged: true });
  }

  function ingress(frame: Buffer): void {
    expect(program.testRun(frame).retval).toBe(XDP_PASS);
  }

  /** What `run` added to the global counters. */
  function globalsAdded(run: () => void): Record<string, number> {
    const before = program.readGlobals();
    run();
    return Object.fromEntries(Object.entries(program.readGlobals()).map(([name, value]) => [name, value - before[name]]));
  }

  /** Sets the source's verified_at, as if its handshake had been that long ago. */
  function ageVerification(address: string, verifiedAt: number): void {
    const value = sources.lookup(addressKey(address))!;
    value.writeUInt32LE(verifiedAt, STRUCTS.ids_src_stats.fields.verified_at.offset);
    sources.update(addressKey(address), value, 'exist');
  }

  test.each([
    ['IPv4', HOST, '198.18.0.1', tcp4],
    ['IPv6', 'fd00::1:1', 'fd00::1', tcp6],
  ] as const)('%s: the ACK carrying the SYN-ACK\'s sequence number + 1 verifies its source, once', async (_family, host, client, build) => {
    const fromClient = (o: pk.TcpOptions & { ttl: number }): Buffer => build({ src: client, dst: host, sport: 40000, dport: 80, flags: 'A', ...o });
    ingress(fromClient({ flags: 'S', ttl: 57 }));
    egress(build({ src: host, dst: client, sport: 80, dport: 40000, flags: 'SA', seq: 0xfffffffe }));
    expect(challenges.lookup(challengeKey(client, 40000, 80))?.readUInt32LE(0)).toBe(0xffffffff);
    ingress(fromClient({ ack: 0xfffffffe, ttl: 57 }));
    ingress(fromClient({ flags: 'RA', ack: 0xffffffff, ttl: 57 }));
    expect(sourceRecord(program, client)).toMatchObject({ handshakes: 0, verified_at: 0 });

    // verified_at is now >> 30 ("at least 1"): in an even unit a rounded-up stamp would show.
    await until('an even coarse unit with half of it left', () => {
      const now = monotonicNs();
      return (unit(now) % 2 === 0 && (now & ((1n << COARSE_SHIFT) - 1n)) < 1n << (COARSE_SHIFT - 1n)) || undefined;
    }, 5000);
    const before = monotonicNs() - JIFFY_NS;
    const added = globalsAdded(() => ingress(fromClient({ flags: 'PA', ack: 0xffffffff, ttl: 57 })));
    const after = monotonicNs();

    const source = sourceRecord(program, client)!;
    expect(source).toMatchObject({ handshakes: 1, verified_ttl: 57, ttl_mismatch: 0 });
    expect(source.verified_at).toBeGreaterThanOrEqual(Math.max(1, unit(before)));
    expect(source.verified_at).toBeLessThanOrEqual(unit(after));
    expect(destinationRecord(program, host)).toMatchObject({ handshakes: 1, syn: 1 });
    expect(added).toMatchObject({ handshakes: 1, challenges: 0 });
    expect(challenges.lookup(challengeKey(client, 40000, 80))).toBeUndefined();

    expect(globalsAdded(() => ingress(fromClient({ ack: 0xffffffff, ttl: 57 }))).handshakes).toBe(0);
  });

  test('a verified source is checked against its challenges again only after the refresh interval', () => {
    const CLIENT = '198.18.0.2';
    const fromClient = (o: pk.TcpOptions & { ttl: number }): Buffer => tcp4({ src: CLIENT, dst: HOST, dport: 80, flags: 'A', ...o });
    const synAck = (dport: number, seq: number): void => egress(pk.tcp4({ src: HOST, dst: CLIENT, sport: 80, dport, flags: 'SA', seq }));
    synAck(40000, 100);
    ingress(fromClient({ sport: 40000, ack: 101, ttl: 60 }));
    const first = sourceRecord(program, CLIENT)!.verified_at;

    synAck(40001, 200);
    ingress(fromClient({ sport: 40001, ack: 201, ttl: 90 }));
    expect(sourceRecord(program, CLIENT)).toMatchObject({ handshakes: 1, verified_at: first, verified_ttl: 60 });
    expect(challenges.lookup(challengeKey(CLIENT, 40001, 80))).toBeDefined();

    // Two units short of the interval (one unit of margin for the clock moving on meanwhile).
    ageVerification(CLIENT, unit(monotonicNs()) - (REFRESH - 2));
    ingress(fromClient({ sport: 40001, ack: 201, ttl: 90 }));
    expect(sourceRecord(program, CLIENT)!.handshakes).toBe(1);

    ageVerification(CLIENT, unit(monotonicNs()) - REFRESH);
    ingress(fromClient({ sport: 40001, ack: 201, ttl: 90 }));
    const refreshed = sourceRecord(program, CLIENT)!;
    expect(refreshed).toMatchObject({ handshakes: 2, verified_ttl: 90 });
    expect(refreshed.verified_at).toBeGreaterThanOrEqual(unit(monotonicNs() - JIFFY_NS) - 1);
    expect(challenges.lookup(challengeKey(CLIENT, 40001, 80))).toBeUndefined();
  });

  test('after a handshake, packets whose TTL is more than 2 off the verified one count ttl_mismatch', () => {
    const CLIENT = '198.18.0.3';
    const fromClient = (flags: string, ttl: number, ack = 0): Buffer => tcp4({ src: CLIENT, dst: HOST, sport: 40000, dport: 80, flags, ack, ttl });
    ingress(fromClient('PA', 3));
    egress(pk.tcp4({ src: HOST, dst: CLIENT, sport: 80, dport: 40000, flags: 'SA', seq: 1 }));
    ingress(fromClient('A', 60, 2));
    for (const ttl of [58, 59, 61, 62]) ingress(fromClient('PA', ttl));
    expect(sourceRecord(program, CLIENT)!.ttl_mismatch).toBe(0);
    for (const ttl of [57, 63, 1, 255]) ingress(fromClient('PA', ttl));
    ingress(pk.udp4({ src: CLIENT, dst: HOST, ip: { ttl: 128 } }));
    expect(sourceRecord(program, CLIENT)).toMatchObject({ ttl_mismatch: 5, verified_ttl: 60 });
  });

  test('egress: SYNs count syn_out at the sender\'s destination record; with protected prefixes, only theirs count', () => {
    const [host, peer] = ['198.19.0.4', '198.18.0.4'];
    ingress(pk.tcp4({ src: peer, dst: host, flags: 'S' }));
    egress(pk.tcp4({ src: host, dst: peer, sport: 41000, dport: 443, flags: 'S' }));
    egress(pk.tcp4({ src: host, dst: peer, sport: 41001, dport: 443, flags: 'SEC' }));
    egress(pk.udp4({ src: host, dst: peer }));
    expect(destinationRecord(program, host)!.syn_out).toBe(2);

    program.setProtected(['198.19.0.0/24']);
    try {
      const added = globalsAdded(() => {
        egress(pk.tcp4({ src: '198.20.0.1', dst: peer, sport: 80, dport: 40000, flags: 'SA', seq: 9 }));
        egress(pk.tcp4({ src: host, dst: peer, sport: 80, dport: 40001, flags: 'SA', seq: 9 }));
      });
      expect(challenges.lookup(challengeKey(peer, 40000, 80))).toBeUndefined();
      expect(challenges.lookup(challengeKey(peer, 40001, 80))?.readUInt32LE(0)).toBe(10);
      expect(added.challenges).toBe(1);
    } finally {
      program.setProtected([]);
    }
  });
});
