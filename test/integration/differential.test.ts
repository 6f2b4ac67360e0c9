/**
 * Differential tests in the kernel itself: the same bytes go through the XDP program under
 * BPF_PROG_TEST_RUN and through the TypeScript reference model of bpf/README.md; every counter
 * must agree, for crafted packets, every truncation, and 10,000+ random and mutated packets.
 */
import { XdpIdsProgram, DEFAULT_KERNEL_CONFIG } from '../../sensor/kernel/program';
import { readSrcCounters, readSrcWindow, readDstCounters, readDstSourceBits, SRC_STATS_SIZE, DST_STATS_SIZE, ADDR_SIZE } from '../../sensor/kernel/records';
import { monotonicNs } from '../../sensor/clock';
import { parsePrefix } from '../../sensor/addresses';
import { ReferenceModel, type ReferenceConfig } from '../support/reference';
import * as pk from '../support/packets';

const XDP_DROP = 1;
const XDP_PASS = 2;
const WINDOW_NS = 1_000_000_000_000_000n; // one window for the whole test

interface Lists {
  blocks?: { cidr: string; expired?: boolean }[];
  allows?: string[];
}

function fresh(lists: Lists = {}): { program: XdpIdsProgram; model: ReferenceModel } {
  const program = XdpIdsProgram.open();
  program.setConfig({ ...DEFAULT_KERNEL_CONFIG, windowNs: WINDOW_NS });
  for (const b of lists.blocks ?? []) program.addBlock(b.cidr, b.expired ? 1n : 0n);
  for (const a of lists.allows ?? []) program.addAllow(a);
  const config: ReferenceConfig = { blocks: lists.blocks ?? [], allows: lists.allows ?? [] };
  return { program, model: new ReferenceModel(config) };
}

function hex(keys: Buffer, i: number): string {
  return keys.toString('hex', i * ADDR_SIZE, (i + 1) * ADDR_SIZE);
}

/** The kernel refuses to test-run frames shorter than an Ethernet header (they never reach XDP). */
const ETH_HLEN = 14;

/** Runs every frame through both and compares verdicts, globals, sources and destinations. */
function compare(all: Buffer[], lists: Lists = {}): void {
  const frames = all.filter((f) => f.length >= ETH_HLEN);
  const { program, model } = fresh(lists);
  try {
    frames.forEach((frame, i) => {
      const expected = model.process(frame) === 'drop' ? XDP_DROP : XDP_PASS;
      const verdict = program.testRun(frame).retval;
      if (verdict !== expected) throw new Error(`frame ${i} (${frame.toString('hex')}): verdict ${verdict}, reference ${expected}`);
    });
    const globals = program.readGlobals();
    const want = Object.fromEntries(Object.entries(model.globals()).map(([k, v]) => [k, Number(v)]));
    expect(globals).toEqual(want);

    const window = Number((monotonicNs() / WINDOW_NS) & 0xffffffffn);
    const src = program.readSources();
    const got = new Map<string, Record<string, number>>();
    for (let i = 0; i < src.count; i++) {
      const c = readSrcCounters(src.values, i * SRC_STATS_SIZE);
      const w = readSrcWindow(src.values, i * SRC_STATS_SIZE, window);
      got.set(hex(src.keys, i), { ...c, port_bits: w.portBits, host_bits: w.hostBits, syn_window: w.syn });
    }
    const expectedSources = new Map([...model.sources()].map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([f, n]) => [f, Number(n)]))]));
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expectedSources));

    const dst = program.readDestinations();
    const gotDst: Record<string, Record<string, number>> = {};
    for (let i = 0; i < dst.count; i++) {
      gotDst[hex(dst.keys, i)] = { ...readDstCounters(dst.values, i * DST_STATS_SIZE), src_bits: readDstSourceBits(dst.values, i * DST_STATS_SIZE, window).sources };
    }
    const wantDst = Object.fromEntries([...model.destinations()].map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([f, n]) => [f, Number(n)]))]));
    expect(gotDst).toEqual(wantDst);

    for (const b of lists.blocks ?? []) {
      const entry = program.listBlocks().find((e) => e.prefix === parsePrefix(b.cidr).text);
      expect({ cidr: b.cidr, drops: entry?.drops }).toEqual({ cidr: b.cidr, drops: Number(model.blockDrops(b.cidr)) });
    }
    for (const a of lists.allows ?? []) {
      const entry = program.listAllows().find((e) => e.prefix === parsePrefix(a).text);
      expect({ cidr: a, hits: entry?.hits }).toEqual({ cidr: a, hits: Number(model.allowHits(a)) });
    }
  } finally {
    program.close();
  }
}

describe('XDP program vs reference model (BPF_PROG_TEST_RUN)', () => {
  test('crafted packets of every protocol and header shape', () => {
    compare(pk.craftedCorpus());
  });

  test('truncation of crafted packets at every byte offset', () => {
    compare(pk.craftedCorpus().flatMap((frame) => pk.truncations(frame)));
  });

  test('block and allow lists: CIDRs, /128 and /64, allowlist wins, expired entries pass', () => {
    const rng = pk.rng(7);
    const frames = Array.from({ length: 2000 }, () => pk.randomPacket(rng));
    compare(frames, {
      blocks: [{ cidr: '198.18.0.0/17' }, { cidr: '198.19.0.0/16', expired: true }, { cidr: 'fd00::/9' }, { cidr: 'fd80::/64' }, { cidr: 'fd00::1/128' }],
      allows: ['198.18.1.0/24', 'fd00:1::/32'],
    });
  });

  test('10,000 random packets', () => {
    const rng = pk.rng(1);
    compare(Array.from({ length: 10_000 }, () => pk.randomPacket(rng)));
  });

  test('10,000 mutated packets', () => {
    const rng = pk.rng(2);
    compare(Array.from({ length: 10_000 }, () => pk.mutate(pk.randomPacket(rng), rng)));
  });
});
