/**
 * The block list in the kernel (BPF_PROG_TEST_RUN, bpf/README.md steps 2 and 4): an expired
 * entry hands over to the live one covering it, an expired entry alone lets traffic pass, an
 * entry stops dropping when its expiry passes, frames encapsulated deeper than parsed are dropped
 * while blocks are in force, and a blocked source is dropped behind PPPoE and MPLS too. One
 * program serves all tests; each test has its own prefixes and reads the globals as deltas.
 */
import { XdpIdsProgram, DEFAULT_KERNEL_CONFIG } from '../../sensor/kernel/program';
import { monotonicNs } from '../../sensor/clock';
import { sourceRecord } from '../support/kernel-records';
import { until } from '../support/until';
import * as pk from '../support/packets';

const XDP_DROP = 1;
const XDP_PASS = 2;
/** A CLOCK_MONOTONIC deadline long past (0 would mean "no expiry"). */
const EXPIRED = 1n;

describe('block list under BPF_PROG_TEST_RUN', () => {
  let program: XdpIdsProgram;

  beforeAll(() => {
    program = XdpIdsProgram.open();
  });

  afterAll(() => program?.close());

  function verdict(frame: Buffer): number {
    return program.testRun(frame).retval;
  }

  function globalsAdded(run: () => void): Record<string, number> {
    const before = program.readGlobals();
    run();
    return Object.fromEntries(Object.entries(program.readGlobals()).map(([name, value]) => [name, value - before[name]]).filter(([, delta]) => delta !== 0));
  }

  function drops(prefix: string): number | undefined {
    return program.listBlocks().find((b) => b.prefix === prefix)?.drops;
  }

  test('an expired /32 inside a live /24 is judged by the /24', () => {
    program.addBlock('198.18.7.0/24');
    program.addBlock('198.18.7.9/32', EXPIRED);
    const added = globalsAdded(() => expect(verdict(pk.tcp4({ src: '198.18.7.9' }))).toBe(XDP_DROP));
    expect(added).toEqual({ packets: 1, bytes: 54, ipv4: 1, drop_blocked: 1 });
    expect([drops('198.18.7.0/24'), drops('198.18.7.9/32')]).toEqual([1, 0]);
  });

  test('an expired /24 with nothing live around it lets traffic pass as BLOCK_EXPIRED', () => {
    program.addBlock('198.18.8.0/24', EXPIRED);
    const added = globalsAdded(() => expect(verdict(pk.tcp4({ src: '198.18.8.9' }))).toBe(XDP_PASS));
    expect(added).toMatchObject({ block_expired: 1, pass: 1, new_sources: 1 });
    expect(sourceRecord(program, '198.18.8.9')).toMatchObject({ packets: 1, syn: 1 });
  });

  test('a live /32 inside an expired /24 drops; its neighbours pass', () => {
    program.addBlock('198.18.10.0/24', EXPIRED);
    program.addBlock('198.18.10.7/32');
    expect([verdict(pk.tcp4({ src: '198.18.10.7' })), verdict(pk.tcp4({ src: '198.18.10.8' }))]).toEqual([XDP_DROP, XDP_PASS]);
  });

  test('an entry stops dropping once its expiry has passed, without user space', async () => {
    program.addBlock('198.18.11.0/24', monotonicNs() + 1_000_000_000n);
    const frame = pk.tcp4({ src: '198.18.11.1' });
    expect(verdict(frame)).toBe(XDP_DROP);
    await until('the block to expire', () => verdict(frame) === XDP_PASS, 5000);
    expect(drops('198.18.11.0/24')).toBeGreaterThanOrEqual(1);
  });

  test('PPPoE and MPLS frames from a blocked source are dropped', () => {
    program.addBlock('198.18.9.0/24');
    program.addBlock('fd00:9::/32');
    const frames = [
      pk.tcp4({ src: '198.18.9.1', pppoe: {} }),
      pk.udp4({ src: '198.18.9.2', vlans: [{ tci: 5 }], mpls: [{ label: 1 }, { label: 2 }] }),
      pk.tcp6({ src: 'fd00:9::1', pppoe: {} }),
      pk.tcp6({ src: 'fd00:9::2', mpls: [{ label: 3 }] }),
    ];
    expect(frames.map(verdict)).toEqual(frames.map(() => XDP_DROP));
    expect([drops('198.18.9.0/24'), drops('fd00:9::/32')]).toEqual([2, 2]);
  });

  test('frames encapsulated deeper than parsed are dropped only while blocks are in force and drop-unparsed is on', () => {
    const tooDeep = [
      pk.tcp4({ vlans: Array.from({ length: 5 }, (_, i) => ({ tci: i + 1 })) }),
      pk.udp4({ mpls: Array.from({ length: 5 }, (_, i) => ({ label: i + 1 })) }),
    ];
    const fourTags = pk.tcp4({ src: '198.18.12.1', vlans: Array.from({ length: 4 }, (_, i) => ({ tci: i + 1 })) });
    program.addBlock('203.0.113.0/24');
    program.setConfig({ ...DEFAULT_KERNEL_CONFIG, dropUnparsed: true });
    const dropped = globalsAdded(() => expect([...tooDeep, fourTags].map(verdict)).toEqual([XDP_DROP, XDP_DROP, XDP_PASS]));
    expect(dropped).toMatchObject({ err_encap_depth: 2, drop_unparsed: 2, pass: 1 });

    program.setConfig({ ...DEFAULT_KERNEL_CONFIG, dropUnparsed: false });
    expect(tooDeep.map(verdict)).toEqual([XDP_PASS, XDP_PASS]);

    program.setConfig({ ...DEFAULT_KERNEL_CONFIG, dropUnparsed: true });
    for (const block of program.listBlocks()) program.deleteBlock(block.prefix);
    const passed = globalsAdded(() => expect(tooDeep.map(verdict)).toEqual([XDP_PASS, XDP_PASS]));
    expect(passed).toMatchObject({ err_encap_depth: 2, pass: 2 });
    expect(passed.drop_unparsed).toBeUndefined();
  });
});
