/**
 * Differential tests in the kernel itself: the same bytes go through the XDP program (and the
 * TC egress program, for the SYN-ACKs a protected host sends) under BPF_PROG_TEST_RUN and
 * through the TypeScript reference model of bpf/README.md; every verdict and counter must
 * agree, for crafted packets, handshakes, every truncation, and random and mutated packets,
 * once with no lists and once with protected prefixes, nested and expired blocks and allows.
 */
import { XdpIdsProgram, DEFAULT_KERNEL_CONFIG } from '../../sensor/kernel/program';
import { SRC_STATS_SIZE, DST_STATS_SIZE, ADDR_SIZE } from '../../sensor/kernel/records';
import { parsePrefix } from '../../sensor/addresses';
import { ReferenceModel, type BlockEntry } from '../support/reference';
import { decodeDestination, decodeSource } from '../support/kernel-records';
import * as pk from '../support/packets';

const XDP_DROP = 1;
const XDP_PASS = 2;
const TC_ACT_OK = 0;
const WINDOW_NS = 1_000_000_000_000_000n; // one window for the whole test: window 0
const WINDOW = 0;

/** A frame arriving (XDP) or leaving (TC egress). */
type Step = Buffer | { egress: Buffer };

interface Lists {
  blocks?: BlockEntry[];
  allows?: string[];
  protect?: string[];
  dropUnparsed?: boolean;
}

/**
 * Random sources are mostly 198.18.0.1-32 and fd00:0:0:1::1-32, destinations 198.19.0.1-32 and
 * fd00:0:0:2::1-32 (test/support/packets.ts). Nested entries: .28 is judged through an expired
 * /32 and an expired /29 by a live /28; .8-.15 only have an expired /29, except a live /30
 * inside it; fd00:0:0:1::0-1 lie under four expired entries, so the live /64 above them is
 * never reached. The crafted packets' source (.1) is not blocked.
 */
const LISTS: Lists = {
  blocks: [
    { cidr: '198.18.0.16/28' }, { cidr: '198.18.0.24/29', expired: true }, { cidr: '198.18.0.28/32', expired: true },
    { cidr: '198.18.0.8/29', expired: true }, { cidr: '198.18.0.12/30' },
    { cidr: 'fd00:0:0:1::/64' }, { cidr: 'fd00:0:0:1::/120', expired: true }, { cidr: 'fd00:0:0:1::/124', expired: true },
    { cidr: 'fd00:0:0:1::/126', expired: true }, { cidr: 'fd00:0:0:1::/127', expired: true },
  ],
  allows: ['198.18.0.18/31', 'fd00:0:0:1::1c/126'],
  protect: ['198.19.0.0/28', 'fd00:0:0:2::/124', '198.18.0.0/30', 'fd00:0:0:1::/126', pk.DEFAULTS.dst6],
  dropUnparsed: true,
};

function fresh(lists: Lists): { program: XdpIdsProgram; model: ReferenceModel } {
  const program = XdpIdsProgram.open();
  program.setConfig({ ...DEFAULT_KERNEL_CONFIG, windowNs: WINDOW_NS, dropUnparsed: lists.dropUnparsed ?? false });
  for (const b of lists.blocks ?? []) program.addBlock(b.cidr, b.expired ? 1n : 0n);
  for (const a of lists.allows ?? []) program.addAllow(a);
  if (lists.protect) program.setProtected(lists.protect);
  return { program, model: new ReferenceModel(lists) };
}

function hex(keys: Buffer, i: number): string {
  return keys.toString('hex', i * ADDR_SIZE, (i + 1) * ADDR_SIZE);
}

/** Everything SrcExpected names, read from one ids_src value (times are not modelled: verified_at only as set or not). */
function kernelSource(values: Buffer, off: number): Record<string, number | boolean> {
  const { verified_at, ...fields } = decodeSource(values, off, WINDOW);
  return { ...fields, verified: verified_at !== 0 };
}

function asNumbers<T extends object>(record: T): Record<string, number | boolean> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]));
}

/**
 * The kernel refuses to test-run frames shorter than an Ethernet header (they never reach XDP or
 * TC), and TC programs on IPv4 and IPv6 frames shorter than their IP header (the stack never
 * sends such a frame).
 */
function runnable(step: Step): boolean {
  if (Buffer.isBuffer(step)) return step.length >= 14;
  const etherType = step.egress.length >= 14 ? step.egress.readUInt16BE(12) : 0;
  return step.egress.length >= 14 + (etherType === pk.EtherType.IPV4 ? 20 : etherType === pk.EtherType.IPV6 ? 40 : 0);
}

/** Runs every step through both and compares verdicts, globals, sources, destinations and list entries; returns the model. */
function compare(all: Step[], lists: Lists = {}): ReferenceModel {
  const steps = all.filter(runnable);
  const { program, model } = fresh(lists);
  try {
    steps.forEach((step, i) => {
      if (Buffer.isBuffer(step)) {
        const expected = model.process(step) === 'drop' ? XDP_DROP : XDP_PASS;
        const verdict = program.testRun(step).retval;
        if (verdict !== expected) throw new Error(`frame ${i} (${step.toString('hex')}): verdict ${verdict}, reference ${expected}`);
      } else {
        model.egress(step.egress);
        expect(program.testRun(step.egress, { programName: 'ids_egress' }).retval).toBe(TC_ACT_OK);
      }
    });
    expect(program.readGlobals()).toEqual(asNumbers(model.globals()));

    const src = program.readSources();
    const gotSources = Object.fromEntries(Array.from({ length: src.count }, (_, i) => [hex(src.keys, i), kernelSource(src.values, i * SRC_STATS_SIZE)]));
    const wantSources = Object.fromEntries([...model.sources()].map(([k, v]) => [k, asNumbers(v)]));
    expect(gotSources).toEqual(wantSources);

    const dst = program.readDestinations();
    const gotDestinations = Object.fromEntries(Array.from({ length: dst.count }, (_, i) => [hex(dst.keys, i), decodeDestination(dst.values, i * DST_STATS_SIZE, WINDOW)]));
    const wantDestinations = Object.fromEntries([...model.destinations()].map(([k, v]) => [k, asNumbers(v)]));
    expect(gotDestinations).toEqual(wantDestinations);

    const blocks = program.listBlocks();
    for (const b of lists.blocks ?? []) {
      const entry = blocks.find((e) => e.prefix === parsePrefix(b.cidr).text);
      expect({ cidr: b.cidr, drops: entry?.drops }).toEqual({ cidr: b.cidr, drops: Number(model.blockDrops(b.cidr)) });
    }
    const allows = program.listAllows();
    for (const a of lists.allows ?? []) {
      const entry = allows.find((e) => e.prefix === parsePrefix(a).text);
      expect({ cidr: a, hits: entry?.hits }).toEqual({ cidr: a, hits: Number(model.allowHits(a)) });
    }
    return model;
  } finally {
    program.close();
  }
}

/** The counts a run must reach to mean something (a generator change could silently lose a case). */
function expectReached(model: ReferenceModel, lists: Lists): void {
  const zero = (names: string[], values: Record<string, bigint | number | boolean>): string[] => names.filter((name) => !values[name]);
  const sum = (records: Iterable<object>): Record<string, number> => {
    const total: Record<string, number> = {};
    for (const record of records) for (const [k, v] of Object.entries(record)) total[k] = (total[k] ?? 0) + Number(v);
    return total;
  };
  const globals = ['challenges', 'handshakes', 'first_fragments', 'fragments', 'err_encap_depth', 'non_ip', 'new_sources'];
  const listGlobals = ['drop_blocked', 'allowlisted', 'block_expired', 'not_protected', 'drop_unparsed'];
  expect(zero(lists.blocks ? [...globals, ...listGlobals] : globals, model.globals())).toEqual([]);
  expect(zero(['replies', 'first_fragments', 'handshakes', 'ttl_mismatch', 'proto_bits', 'malformed'], sum(model.sources().values()))).toEqual([]);
  expect(zero(['synack', 'udp_amp', 'fragments', 'handshakes', 'syn_out', 'amp_src_bits'], sum(model.destinations().values()))).toEqual([]);
}

const HOST4 = pk.DEFAULTS.dst4;
const HOST6 = pk.DEFAULTS.dst6;

/**
 * A protected host's SYN-ACKs leaving, and what comes back: the ACK that completes each, wrong
 * numbers, wrong ports, RSTs, FIN-ACKs and data that also acknowledge, TTLs after the
 * handshake, a second challenge of a verified source, sequence number wrap, IPv6 and
 * IPv4-mapped peers, an unprotected source's SYN-ACK, SYNs the host sends, and a mirror port's
 * view of a protected host answering an outside peer.
 */
function handshakes(): Step[] {
  const synAck = (o: pk.Ipv4FrameOptions & pk.TcpOptions): Step => ({ egress: pk.tcp4({ src: HOST4, sport: 80, flags: 'SA', ...o }) });
  const fromClient = (src: string, o: pk.Ipv4FrameOptions & pk.TcpOptions = {}): Buffer => pk.tcp4({ src, dst: HOST4, dport: 80, ...o });
  return [
    fromClient('198.18.0.1', { sport: 40000, flags: 'S' }),
    synAck({ dst: '198.18.0.1', dport: 40000, seq: 1000 }),
    fromClient('198.18.0.1', { sport: 40000, flags: 'A', ack: 1000, ip: { ttl: 64 } }),
    fromClient('198.18.0.1', { sport: 40001, flags: 'A', ack: 1001, ip: { ttl: 64 } }),
    fromClient('198.18.0.1', { sport: 40000, flags: 'A', ack: 1001, ip: { ttl: 64 } }),
    ...[64, 62, 61, 66, 67, 3].map((ttl) => fromClient('198.18.0.1', { sport: 40000, flags: 'PA', ack: 1001, ip: { ttl } })),
    fromClient('198.18.0.1', { flags: 'S', ip: { ttl: 200 } }),
    synAck({ dst: '198.18.0.1', dport: 40002, seq: 5 }),
    fromClient('198.18.0.1', { sport: 40002, flags: 'A', ack: 6 }), // verified already: not checked again
    synAck({ dst: '198.18.0.2', dport: 40000, seq: 0xffffffff }),
    fromClient('198.18.0.2', { sport: 40000, flags: 'R', ack: 0 }),
    fromClient('198.18.0.2', { sport: 40000, flags: 'SA', ack: 0 }),
    fromClient('198.18.0.2', { sport: 40000, flags: 'FA', ack: 0, ip: { ttl: 100 } }),
    synAck({ dst: '198.18.0.3', dport: 40000, seq: 77 }),
    fromClient('198.18.0.3', { sport: 40000, flags: 'UPA', ack: 78, ip: { ttl: 255 } }),
    fromClient('198.18.0.3', { sport: 40000, flags: 'A', ack: 78, ip: { ttl: 250 } }),
    fromClient('198.18.0.4', { sport: 40000, flags: 'A', ack: 78 }), // a guess, no SYN-ACK was sent to it
    synAck({ dst: '198.18.0.5', dport: 40000, seq: 9 }),
    pk.tcp4({ src: '198.18.0.5', dst: '198.19.0.2', sport: 40000, dport: 80, flags: 'A', ack: 10 }), // to another host
    pk.tcp4({ src: '198.18.0.5', dst: HOST4, sport: 40000, dport: 81, flags: 'A', ack: 10 }), // to another port
    { egress: pk.tcp6({ src: HOST6, dst: 'fd00:0:0:1::1', sport: 443, dport: 50000, flags: 'SAE', seq: 4242 }) },
    pk.tcp6({ src: 'fd00:0:0:1::1', dst: HOST6, sport: 50000, dport: 443, flags: 'A', ack: 4243, ip: { hopLimit: 50 } }),
    { egress: pk.tcp6({ src: HOST6, dst: '::ffff:198.18.0.9', sport: 22, dport: 50001, flags: 'SA', seq: 1 }) },
    pk.tcp4({ src: '198.18.0.9', dst: HOST4, sport: 50001, dport: 22, flags: 'A', ack: 2 }),
    { egress: pk.tcp4({ src: '198.19.0.99', dst: '198.18.0.10', sport: 80, dport: 40000, flags: 'SA', seq: 50 }) }, // protected only without lists
    fromClient('198.18.0.10', { sport: 40000, flags: 'A', ack: 51 }),
    { egress: pk.tcp4({ src: HOST4, dst: '198.18.0.30', sport: 40000, dport: 443, flags: 'S' }) },
    { egress: pk.tcp4({ src: HOST4, dst: '198.18.0.30', sport: 40000, dport: 443, flags: 'SEC' }) },
    { egress: pk.tcp4({ src: '198.19.0.77', dst: '198.18.0.30', flags: 'S' }) }, // no destination record
    { egress: pk.udp4({ src: HOST4, dst: '198.18.0.30' }) },
    { egress: pk.tcp4({ src: HOST4, dst: '198.18.0.31', flags: 'SA', dataOffset: 3 }) },
    // A mirror port: a protected source (198.18.0.1 with lists) answers an outside peer.
    pk.tcp4({ src: '198.18.0.1', dst: '198.19.0.200', sport: 443, dport: 45000, flags: 'SA', seq: 300 }),
    pk.tcp4({ src: '198.19.0.200', dst: '198.18.0.1', sport: 45000, dport: 443, flags: 'A', ack: 301 }),
  ];
}

/** An egress SYN-ACK from a random host and the peer's answer: mostly the right number, sometimes not. */
function randomHandshake(random: pk.Rng): Step[] {
  const v4 = random.chance(0.6);
  const host = v4 ? `198.19.0.${random.int(1, 20)}` : `fd00:0:0:2::${random.int(1, 20).toString(16)}`;
  const peer = v4 ? `198.18.0.${random.int(1, 32)}` : `fd00:0:0:1::${random.int(1, 32).toString(16)}`;
  const ports = { sport: random.pick([22, 80, 443]), dport: random.int(1024, 0xffff) };
  const seq = random.u32();
  const build = v4 ? pk.tcp4 : pk.tcp6;
  const ack = random.chance(0.8) ? (seq + 1) >>> 0 : random.u32();
  const ttl = random.int(1, 255);
  const answer = build({ src: peer, dst: host, sport: ports.dport, dport: ports.sport, flags: random.pick(['A', 'PA', 'FA', 'RA']), ack, ip: { ttl, hopLimit: ttl } });
  const later = build({ src: peer, dst: host, flags: 'PA', ip: { ttl: ttl + random.int(-4, 4), hopLimit: ttl + random.int(-4, 4) } });
  const steps: Step[] = [{ egress: build({ src: host, dst: peer, ...ports, flags: 'SA', seq }) }, answer, later];
  if (random.chance(0.3)) steps.push({ egress: build({ src: host, dst: peer, flags: 'S' }) });
  return steps;
}

/** Sources the lists judge: through a live /30, an allow, three and four expired entries, and a live /64. */
function listedSources(): Buffer[] {
  return [
    ...['198.18.0.12', '198.18.0.18', '198.18.0.28', '198.18.0.9'].map((src) => pk.tcp4({ src, flags: 'S' })),
    ...['fd00:0:0:1::1', 'fd00:0:0:1::10', 'fd00:0:0:1::1d'].map((src) => pk.udp6({ src, sport: 53, dport: 40000 })),
    pk.tcp4({ vlans: Array.from({ length: 5 }, (_, i) => ({ tci: i })) }),
  ];
}

function randomSteps(seed: number, count: number, mutated: boolean): Step[] {
  const random = pk.rng(seed);
  const steps: Step[] = [];
  while (steps.length < count) {
    const roll = random.int(0, 99);
    if (roll < 3) steps.push(...randomHandshake(random));
    else {
      const packet = mutated ? pk.mutate(pk.randomPacket(random), random) : pk.randomPacket(random);
      steps.push(roll < 8 ? { egress: packet } : packet);
    }
  }
  return steps;
}

/* Each run loads the program afresh (1-2 s of verification), so runs are few and long. */
describe('XDP and egress programs vs reference model (BPF_PROG_TEST_RUN)', () => {
  const setups: [string, Lists][] = [['no lists', {}], ['protected prefixes, nested and expired blocks, allows, drop-unparsed', LISTS]];

  test.each(setups)('crafted packets of every protocol and header shape, handshakes, and every truncation: %s', (_name, lists) => {
    const corpus = pk.craftedCorpus();
    const steps = [...corpus, ...handshakes(), ...listedSources(), ...corpus.flatMap((frame) => pk.truncations(frame))];
    expectReached(compare(steps, lists), lists);
  });

  test.each(setups)('10,000 random and 10,000 mutated packets: %s', (_name, lists) => {
    expectReached(compare([...randomSteps(1, 10_000, false), ...randomSteps(2, 10_000, true)], lists), lists);
  });
});
