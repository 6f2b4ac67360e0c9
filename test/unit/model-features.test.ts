/**
 * Model features: rates of a tick the sensor cut short are over the sensor's usual tick length,
 * and histories hold rates per active second, which a source's age does not change.
 */
import { FEATURE_NAMES } from '../../detector/model/schema';
import { FEATURE_COUNT, FeatureExtractor } from '../../detector/model/source-features';
import { seededRandom } from '../../detector/model/random';
import { tickOf, windowOf } from './model-support';

const at = (name: string) => FEATURE_NAMES.indexOf(name);

describe('model features', () => {
  test('a tick cut short after a late one: its rates are over the usual tick length, the late tick\'s over its own', () => {
    const extractor = new FeatureExtractor();
    const client = { ...windowOf('198.18.9.10', 'web', seededRandom(1)), packets: 6, syn: 1, ackOnly: 4, fin: 1 };
    for (let w = 0; w < 10; w++) extractor.extract(tickOf(w, [client]));
    const late = { ...tickOf(10, [{ ...client, packets: 12 }]) };
    late.endMs += 970;
    const x = extractor.extract(late);
    expect(x.raw[at('pps')]).toBeCloseTo(12 / 1.97, 6);
    const short = { ...tickOf(11, [{ ...client, packets: 2, syn: 1, ackOnly: 1, fin: 0 }]), startMs: late.endMs };
    short.endMs = short.startMs + 30;
    const y = extractor.extract(short);
    expect(y.raw[at('pps')]).toBe(2);
    expect(y.raw[at('syn_per_s')]).toBe(1);
  });

  test('a sensor\'s first tick has no usual length yet: its own', () => {
    const first = tickOf(0, [{ ...windowOf('198.18.9.10', 'web', seededRandom(1)), packets: 3 }]);
    first.startMs = first.endMs - 500;
    expect(new FeatureExtractor().extract(first).raw[at('pps')]).toBe(6);
  });

  test('histories hold rates per active second: a steady client looks the same after a minute and after ten', () => {
    const extractor = new FeatureExtractor();
    const steady = { ...windowOf('198.18.9.10', 'web', seededRandom(1)), packets: 6, bytes: 480, syn: 1, ackOnly: 4, fin: 1 };
    const rowAt = (w: number) => Array.from(extractor.extract(tickOf(w, [steady])).raw.subarray(0, FEATURE_COUNT));
    let atOneMinute: number[] = [];
    for (let w = 0; w < 600; w++) {
      const row = rowAt(w);
      if (w === 59) atOneMinute = row;
      if (w === 599) {
        for (const name of ['pps@60s', 'ack_per_s@60s', 'pps@5s', 'syn_per_ack@300s']) expect(row[at(name)]).toBeCloseTo(atOneMinute[at(name)], 6);
      }
    }
    expect(atOneMinute[at('pps@60s')]).toBeCloseTo(6, 6);
  });
});
