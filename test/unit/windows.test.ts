import { SourceWindows, DestinationWindows } from '../../sensor/windows';
import { STRUCTS } from '../../sensor/kernel/layout.generated';
import { addressKey } from '../../sensor/addresses';

const S = STRUCTS.ids_src_stats;
const W = STRUCTS.ids_src_window;

interface Entry {
  src: string;
  packets: number;
  syn?: number;
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

  test('32-bit counters wrap modulo 2^32', () => {
    const w = new SourceWindows();
    drain(w, [{ src: 'fd00::1', packets: 1, syn: 0xfffffff0 }]);
    expect(drain(w, [{ src: 'fd00::1', packets: 2, syn: 0x10 }]).windows[0].syn).toBe(0x20);
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

  test('a source that disappears and comes back starts from zero', () => {
    const w = new SourceWindows();
    drain(w, [{ src: '198.18.0.1', packets: 50 }]);
    drain(w, [{ src: '198.18.0.2', packets: 1 }]);
    expect(drain(w, [{ src: '198.18.0.1', packets: 3 }]).windows).toMatchObject([{ packets: 3 }]);
  });
});

describe('DestinationWindows', () => {
  test('the first drain is the baseline; later ones report deltas', () => {
    const D = STRUCTS.ids_dst_stats;
    const make = (syn: number) => {
      const keys = addressKey('198.18.0.1');
      const values = Buffer.alloc(D.size);
      values.writeBigUInt64LE(BigInt(syn), D.fields.syn.offset);
      return [keys, values] as const;
    };
    const d = new DestinationWindows();
    expect(d.drain(...make(100), 1, 7)).toEqual([]);
    expect(d.drain(...make(130), 1, 7)).toMatchObject([{ dst: '198.18.0.1', syn: 30 }]);
  });
});
