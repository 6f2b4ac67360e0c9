import { DESTINATION, featuresOf, findFeature, SOURCE, vectorOf, type Feature } from '../../detector/features';
import { destinationWindow, sourceWindow } from './rules-support';

function value(f: Feature | undefined, v: Float64Array): number {
  if (!f) throw new Error('no such feature');
  return f.kind === 'counter' ? v[f.index] : f.compute(v);
}

describe('feature definitions', () => {
  test('names are snake_case and unique per scope', () => {
    for (const scope of ['source', 'destination'] as const) {
      const names = featuresOf(scope).map((f) => f.name);
      expect(new Set(names).size).toBe(names.length);
      for (const n of names) expect(n).toMatch(/^[a-z][a-z0-9_]*$/);
    }
  });

  test('every count field of the sensor records is a counter, each read from its own field', () => {
    const w = sourceWindow('198.18.0.1');
    const numericFields = Object.keys(w).filter((k) => k !== 'src' && k !== 'firstSeenMs' && k !== 'verifiedMs');
    expect(SOURCE.counters.map((c) => c.field).sort()).toEqual(numericFields.sort());
    numericFields.forEach((field, i) => ((w as unknown as Record<string, number>)[field] = 100 + i));
    for (const c of SOURCE.counters) expect(c.read(w)).toBe((w as unknown as Record<string, number>)[c.field]);
    expect(DESTINATION.counters.map((c) => c.field).sort()).toEqual(Object.keys(destinationWindow('198.18.0.1')).filter((k) => k !== 'dst').sort());
  });

  test('ratios divide by max(denominator, 1)', () => {
    const v = vectorOf('source', { syn: 10, ack_only: 25, rst: 5, syn_ack: 2 }, 1);
    expect(value(findFeature('source', 'ack_per_syn'), v)).toBe(2.5);
    expect(value(findFeature('source', 'rst_per_syn'), v)).toBe(0.5);
    expect(value(findFeature('source', 'syn_ack_per_syn'), v)).toBe(0.2);
    const noSyn = vectorOf('source', { ack_only: 7 }, 1);
    expect(value(findFeature('source', 'ack_per_syn'), noSyn)).toBe(7);
  });

  test('odd_flags adds the stealth probe classes', () => {
    const v = vectorOf('source', { null_scan: 1, fin_only: 2, xmas: 3, syn_fin: 4, fin: 100 }, 1);
    expect(value(findFeature('source', 'odd_flags'), v)).toBe(10);
  });

  test('rates divide the window sums by the window length', () => {
    const v = vectorOf('source', { packets: 3000, bytes: 150_000, syn: 900, udp: 30, icmp: 6, rst: 60 }, 3);
    expect(value(findFeature('source', 'pps'), v)).toBe(1000);
    expect(value(findFeature('source', 'bps'), v)).toBe(400_000);
    expect(value(findFeature('source', 'syn_per_s'), v)).toBe(300);
    expect(value(findFeature('source', 'udp_per_s'), v)).toBe(10);
    expect(value(findFeature('source', 'icmp_per_s'), v)).toBe(2);
    expect(value(findFeature('source', 'rst_per_s'), v)).toBe(20);
    expect(value(findFeature('source', 'avg_packet_bytes'), v)).toBe(50);
  });

  test('destination features', () => {
    const v = vectorOf('destination', { syn: 6000, udp: 30, icmp: 0, bytes: 1000, distinct_sources: 3000 }, 2);
    expect(value(findFeature('destination', 'packets'), v)).toBe(6030);
    expect(value(findFeature('destination', 'pps'), v)).toBe(3015);
    expect(value(findFeature('destination', 'syn_per_source'), v)).toBe(2);
    expect(value(findFeature('destination', 'syn_per_s'), v)).toBe(3000);
    expect(findFeature('destination', 'ack_only')).toBeUndefined();
    expect(findFeature('source', 'distinct_sources')).toBeUndefined();
  });

  test('derived features declare the counters they read', () => {
    for (const layout of [SOURCE, DESTINATION]) {
      for (const d of layout.derived) {
        const v = vectorOf(layout.scope, {}, 1);
        const base = d.compute(v);
        // Changing a counter it does not declare must not change it.
        for (const c of layout.counters) {
          if (d.inputs.includes(c.index)) continue;
          const w = v.slice();
          w[c.index] = 12345;
          expect(d.compute(w)).toBe(base);
        }
      }
    }
  });
});
