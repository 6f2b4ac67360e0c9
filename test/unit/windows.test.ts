import { SourceWindows, DestinationWindows } from '../../sensor/windows';
import { STRUCTS } from '../../sensor/kernel/layout.generated';
import { DST_COUNTERS, type SrcCounter } from '../../sensor/kernel/records';
import { addressKey } from '../../sensor/addresses';
import type { DestinationWindow, SourceWindow } from '../../common/sensor-tick';

const S = STRUCTS.ids_src_stats;
const W = STRUCTS.ids_src_window;

interface Entry {
  src: string;
  packets: number;
  syn?: number;
  /** Other 32-bit counters of struct ids_src_stats. */
  counters?: Partial<Record<SrcCounter, number>>;
  firstSeen?: bigint;
  lastSeen?: bigint;
  window?: number;
  portBits?: number;
}

function batch(entries: Entry[]): { keys: Buffer; values: Buffer; count: number } {
  const keys = Buffer.alloc(entries.length * 16);
  const values = Buffer.alloc(entries.length * S.size);
  entries.forEach((e, i) => {
    addressKey(e.src).copy(keys, i * 16);
    const v = i * S.size;
    values.writeBigUInt64LE(BigInt(e.packets), v + S.fields.packets.offset);
    values.writeBigUInt64LE(BigInt(e.packets * 60), v + S.fields.bytes.offset);
    values.writeUInt32LE((e.syn ?? 0) >>> 0, v + S.fields.syn.offset);
    for (const [name, count] of Object.entries(e.counters ?? {})) values.writeUInt32LE(count >>> 0, v + S.fields[name as SrcCounter].offset);
    values.writeBigUInt64LE(e.firstSeen ?? 1000n, v + S.fields.first_seen_ns.offset);
    values.writeBigUInt64LE(e.lastSeen ?? 5_000_000_000n, v + S.fields.last_seen_ns.offset);
    const slot = v + S.fields.win.offset + ((e.window ?? 7) & 1) * W.size;
    values.writeUInt32LE(e.window ?? 7, slot + W.fields.window.offset);
    values.writeUInt16LE(e.portBits ?? 0, slot + W.fields.port_bits.offset);
  });
  return { keys, values, count: entries.length };
}

function drain(w: SourceWindows, entries: Entry[], since = 0n, idleBefore = 0n) {
  const b = batch(entries);
  return w.drain(b.keys, b.values, b.count, 7, since, idleBefore, 0);
}

describe('SourceWindows', () => {
  test('reports deltas of cumulative counters, and nothing for silent sources', () => {
    const w = new SourceWindows();
    expect(drain(w, [{ src: '198.18.0.1', packets: 10, syn: 4 }]).windows).toMatchObject([{ src: '198.18.0.1', packets: 10, bytes: 600, syn: 4 }]);
    expect(drain(w, [{ src: '198.18.0.1', packets: 25, syn: 9 }]).windows).toMatchObject([{ packets: 15, bytes: 900, syn: 5 }]);
    expect(drain(w, [{ src: '198.18.0.1', packets: 25, syn: 9 }]).windows).toEqual([]);
  });

  test('a restarted reader takes sources it never saw, first seen before it started, as its baseline', () => {
    const w = new SourceWindows();
    const first = drain(w, [{ src: '198.18.0.1', packets: 1000, firstSeen: 10n }, { src: '198.18.0.2', packets: 3, firstSeen: 200n }], 100n);
    expect(first.windows.map((x) => x.src)).toEqual(['198.18.0.2']);
    expect(drain(w, [{ src: '198.18.0.1', packets: 1004, firstSeen: 10n }], 100n).windows).toMatchObject([{ packets: 4 }]);
  });

  test('idle sources are handed back for deletion; fan-out comes from the window slot', () => {
    const w = new SourceWindows();
    const out = drain(w, [{ src: '198.18.0.1', packets: 5, lastSeen: 10n }, { src: '198.18.0.2', packets: 5, portBits: 60 }], 0n, 100n);
    expect(out.idleKeys.map((k) => k.toString('hex'))).toEqual([addressKey('198.18.0.1').toString('hex')]);
    expect(out.windows[0].distinctPorts).toBe(68);
    expect(drain(w, [{ src: '198.18.0.2', packets: 6, portBits: 60, window: 6 }]).windows[0].distinctPorts).toBe(0);
  });

  test('sources that change places between batches keep their own baselines', () => {
    const w = new SourceWindows();
    drain(w, [{ src: '198.18.0.1', packets: 10 }, { src: 'fd00::2', packets: 20 }, { src: '198.18.0.3', packets: 30 }]);
    expect(drain(w, [{ src: 'fd00::2', packets: 25 }, { src: '198.18.0.1', packets: 13 }, { src: '198.18.0.3', packets: 37 }]).windows)
      .toMatchObject([{ src: 'fd00::2', packets: 5 }, { src: '198.18.0.1', packets: 3 }, { src: '198.18.0.3', packets: 7 }]);
    expect(drain(w, [{ src: 'fd00::2', packets: 26 }, { src: '198.18.0.4', packets: 2 }, { src: '198.18.0.3', packets: 38 }]).windows)
      .toMatchObject([{ src: 'fd00::2', packets: 1 }, { src: '198.18.0.4', packets: 2 }, { src: '198.18.0.3', packets: 1 }]);
    expect(drain(w, [{ src: '198.18.0.1', packets: 14 }]).windows).toMatchObject([{ src: '198.18.0.1', packets: 14 }]);
  });

  test('sources gone without being idle, or back as new records, are counted as evicted; idle ones are not', () => {
    const w = new SourceWindows();
    expect(drain(w, [{ src: '198.18.0.1', packets: 5 }, { src: '198.18.0.2', packets: 5 }, { src: '198.18.0.3', packets: 5 }]).evicted).toBe(0);
    // .1 is idle (the caller deletes it), .2 was evicted, .3 was evicted and created again.
    const out = drain(w, [{ src: '198.18.0.1', packets: 5, lastSeen: 10n }, { src: '198.18.0.3', packets: 2, firstSeen: 7000n }], 0n, 100n);
    expect(out.evicted).toBe(2);
    expect(drain(w, [{ src: '198.18.0.3', packets: 4, firstSeen: 7000n }]).evicted).toBe(0);
  });

  test('with the kernel\'s insert count, sources inserted and evicted between two drains are counted too', () => {
    const w = new SourceWindows();
    const withInserts = (entries: Entry[], inserted: number) => {
      const b = batch(entries);
      return w.drain(b.keys, b.values, b.count, 7, 100n, 0n, 0, inserted).evicted;
    };
    const fresh = (n: number, from: number): Entry[] => Array.from({ length: n }, (_, i) => ({ src: `198.18.1.${from + i}`, packets: 1, firstSeen: 500n }));
    expect(withInserts(fresh(3, 1), 3)).toBe(0);
    // A burst of 50 new sources into a table that keeps 4 of them: 46 never reach a drain.
    expect(withInserts([...fresh(3, 1), ...fresh(4, 100)], 50)).toBe(46);
    // Two sources inserted after the count was read show up before their inserts are counted: no eviction then or later.
    expect(withInserts([...fresh(3, 1), ...fresh(4, 100), ...fresh(2, 200)], 0)).toBe(0);
    expect(withInserts([...fresh(3, 1), ...fresh(4, 100), ...fresh(2, 200)], 2)).toBe(0);
  });

  test('a record evicted and created again between two drains reports its own counts: never negative, never wrapped', () => {
    const w = new SourceWindows();
    const old = { src: '198.18.0.1', packets: 100, syn: 50, counters: { handshakes: 3, replies: 40 }, firstSeen: 1000n };
    drain(w, [old]);
    // Fewer packets than before, and more: neither tells the new record apart, first_seen_ns does.
    const fewer = drain(w, [{ src: '198.18.0.1', packets: 3, syn: 1, firstSeen: 9000n }]).windows;
    expect(fewer).toMatchObject([{ packets: 3, bytes: 180, syn: 1, handshakes: 0, replies: 0 }]);
    drain(w, [{ ...old, firstSeen: 2000n }]);
    const more = drain(w, [{ src: '198.18.0.1', packets: 150, syn: 2, counters: { replies: 1 }, firstSeen: 9500n }]).windows;
    expect(more).toMatchObject([{ packets: 150, syn: 2, handshakes: 0, replies: 1 }]);
    expect(drain(w, [{ src: '198.18.0.1', packets: 160, syn: 7, counters: { replies: 1 }, firstSeen: 9500n }]).windows).toMatchObject([{ packets: 10, syn: 5, replies: 0 }]);
    for (const window of [...fewer, ...more]) expect(countsOutOfRange(window)).toEqual([]);
  });

  test('the counts since the last drain of a record created again start from zero too', () => {
    const w = new SourceWindows();
    drain(w, [{ src: 'fd00::1', packets: 100, syn: 100, firstSeen: 1000n }]);
    const b = batch([{ src: 'fd00::1', packets: 4, syn: 4, firstSeen: 8000n }]);
    const sofar = w.sinceLastDrain(b.keys.subarray(0, 16), b.values.subarray(0, S.size), 7, 0);
    expect(sofar).toMatchObject({ packets: 4, syn: 4 });
    expect(countsOutOfRange(sofar)).toEqual([]);
  });

  test('32-bit counters wrapping within one record still give the right delta', () => {
    const w = new SourceWindows();
    drain(w, [{ src: '198.18.0.9', packets: 2 ** 32 - 5, syn: 0xfffffffe, counters: { handshakes: 0xffffffff, ttl_mismatch: 7 } }]);
    const [window] = drain(w, [{ src: '198.18.0.9', packets: 2 ** 32 + 5, syn: 3, counters: { handshakes: 1, ttl_mismatch: 9 } }]).windows;
    expect(window).toMatchObject({ packets: 10, syn: 5, handshakes: 2, ttlMismatch: 2 });
  });

  test('a source that disappears and comes back starts from zero', () => {
    const w = new SourceWindows();
    drain(w, [{ src: '198.18.0.1', packets: 50 }]);
    drain(w, [{ src: '198.18.0.2', packets: 1 }]);
    expect(drain(w, [{ src: '198.18.0.1', packets: 3 }]).windows).toMatchObject([{ packets: 3 }]);
  });
});

/** The numeric fields of a window that cannot be one window's counts (negative, or ~2^32 from a wrapped subtraction). */
function countsOutOfRange(window: SourceWindow | DestinationWindow): string[] {
  return Object.entries(window).filter(([name, value]) => typeof value === 'number' && !name.endsWith('Ms') && !(value >= 0 && value < 2 ** 31)).map(([name]) => name);
}

describe('DestinationWindows', () => {
  const D = STRUCTS.ids_dst_stats;
  type DstFields = Partial<Record<(typeof DST_COUNTERS)[number], number>>;
  const make = (...records: [string, DstFields][]) => {
    const keys = Buffer.concat(records.map(([dst]) => addressKey(dst)));
    const values = Buffer.alloc(records.length * D.size);
    records.forEach(([, fields], i) => {
      for (const [name, count] of Object.entries(fields)) values.writeBigUInt64LE(BigInt(count), i * D.size + D.fields[name as keyof DstFields].offset);
    });
    return [keys, values, records.length, 7] as const;
  };

  test('the first drain is the baseline; later ones report deltas', () => {
    const d = new DestinationWindows();
    expect(d.drain(...make(['198.18.0.1', { syn: 100 }]))).toEqual([]);
    expect(d.drain(...make(['198.18.0.1', { syn: 130 }]))).toMatchObject([{ dst: '198.18.0.1', syn: 30 }]);
  });

  test('a record evicted and created again (a counter went down) counts from zero: never negative', () => {
    const d = new DestinationWindows();
    d.drain(...make(['198.19.0.1', { syn: 100, bytes: 6000, handshakes: 5, udp_amp: 2 }]));
    const recreated = d.drain(...make(['198.19.0.1', { syn: 110, bytes: 700, synack: 3 }]));
    expect(recreated).toMatchObject([{ syn: 110, bytes: 700, synAck: 3, handshakes: 0, udpAmp: 0 }]);
    expect(countsOutOfRange(recreated[0])).toEqual([]);
    expect(d.drain(...make(['198.19.0.1', { syn: 112, bytes: 800, synack: 3 }]))).toMatchObject([{ syn: 2, bytes: 100, synAck: 0 }]);
  });

  test('destinations new since the first drain, or gone and back, count from zero', () => {
    const d = new DestinationWindows();
    d.drain(...make(['198.19.0.1', { syn: 1 }]));
    expect(d.drain(...make(['198.19.0.1', { syn: 1 }], ['198.19.0.2', { udp: 4, bytes: 400 }]))).toMatchObject([{ dst: '198.19.0.2', udp: 4, bytes: 400 }]);
    d.drain(...make(['198.19.0.2', { udp: 5, bytes: 500 }]));
    expect(d.drain(...make(['198.19.0.1', { syn: 3 }]))).toMatchObject([{ dst: '198.19.0.1', syn: 3 }]);
  });
});
