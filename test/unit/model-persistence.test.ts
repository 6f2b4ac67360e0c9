/** k of the last n windows: onsets, gaps, episodes, bounds; and the scorer's detections built on it. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KOfN } from '../../detector/model/persistence';
import { seededRandom } from '../../detector/model/random';
import { AnomalyScorer } from '../../detector/model/scorer';
import { trainModel } from '../../detector/model/train';
import type { AnomalyModel } from '../../detector/model/anomaly-model';
import { benignTicks, tickOf, windowOf } from './model-support';

function run(kofn: KOfN, overs: (0 | 1 | undefined)[], key = 'a'): string {
  return overs.map((o, w) => {
    if (o === undefined) return '_';
    const r = kofn.update(key, w, o === 1, w * 1000, 1000);
    return r.onset ? 'O' : r.anomalous ? 'A' : '.';
  }).join('');
}

describe('k of n persistence', () => {
  test('a certain window fires alone and starts an episode that its evidence, then k of n, carries on', () => {
    const k = new KOfN(3, 5, undefined, 6);
    expect(k.update('a', 0, true, 0, 1000, 6)).toEqual({ anomalous: true, certain: true, onset: true, over: 1, firstWindowMs: 0 });
    expect(k.update('a', 1, true, 1000, 1000, 1.1)).toEqual({ anomalous: true, certain: true, onset: false, over: 2, firstWindowMs: 0 });
    expect(k.update('a', 2, false, 2000, 1000, 0.5).anomalous).toBe(false);
    expect(k.update('a', 5, true, 5000, 1000, 1.1).anomalous).toBe(false);
    expect(k.update('a', 6, true, 6000, 1000, 1.1).anomalous).toBe(false);
    expect(k.update('a', 7, true, 7000, 1000, 1.1)).toEqual({ anomalous: true, certain: false, onset: true, over: 3, firstWindowMs: 5000 });
  });

  test('the certain path needs evidence: windows of a handful of packets are never certain, however far over; k of n still counts them', () => {
    const k = new KOfN(3, 5, undefined, 2, 16);
    // A web client's SYN and ACK cut off by the window's edge, 11 times over the threshold.
    expect(k.update('client', 0, true, 0, 1000, 11, 2)).toMatchObject({ anomalous: false, certain: false });
    expect(k.update('client', 1, true, 1000, 1000, 3, 4)).toMatchObject({ anomalous: false, certain: false });
    expect(k.update('client', 2, true, 2000, 1000, 1.2, 3)).toMatchObject({ anomalous: true, certain: false, over: 3 });
    // The same scores with the packets of a scan's windows.
    expect(k.update('scan', 0, true, 0, 1000, 1.5, 10).anomalous).toBe(false);
    expect(k.update('scan', 1, true, 1000, 1000, 1.5, 10)).toMatchObject({ anomalous: true, certain: true, over: 2 });
    // Packets of windows under the threshold are no evidence for the ones over it.
    expect(k.update('busy', 0, false, 0, 1000, 0.5, 500).anomalous).toBe(false);
    expect(k.update('busy', 1, true, 1000, 1000, 5, 8).anomalous).toBe(false);
  });


  test('two windows well over the threshold add up to certain; windows without traffic and old ones drop out', () => {
    const k = new KOfN(3, 5, undefined, 6);
    expect(k.update('a', 0, true, 0, 1000, 5).anomalous).toBe(false);
    expect(k.update('a', 1, true, 1000, 1000, 3).anomalous).toBe(true);
    expect(k.update('b', 0, true, 0, 1000, 5).anomalous).toBe(false);
    expect(k.update('b', 5, true, 5000, 1000, 3).anomalous).toBe(false);
    expect(k.update('c', 0, true, 0, 1000, 5).anomalous).toBe(false);
    expect(k.update('c', 1, false, 1000, 1000, 0.9).anomalous).toBe(false);
    expect(k.update('c', 4, true, 4000, 1000, 1.5).anomalous).toBe(true);
  });
  test('3 of 5: fires at the third over-threshold window within five, onset once per episode', () => {
    expect(run(new KOfN(3, 5), [1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1])).toBe('....OAA......O');
  });

  test('windows without traffic count as normal, and a gap of n windows forgets everything', () => {
    expect(run(new KOfN(2, 3), [1, undefined, 1, undefined, undefined, undefined, 1, 1])).toBe('._O___.O');
  });

  test('an episode ends when fewer than k of n are over; a new one has a new onset and start', () => {
    const k = new KOfN(2, 2);
    expect(k.update('a', 0, true, 0, 1000).anomalous).toBe(false);
    const first = k.update('a', 1, true, 1000, 1000);
    expect(first).toEqual({ anomalous: true, certain: false, onset: true, over: 2, firstWindowMs: 0 });
    expect(k.update('a', 2, true, 2000, 1000)).toEqual({ anomalous: true, certain: false, onset: false, over: 2, firstWindowMs: 0 });
    expect(k.update('a', 3, false, 3000, 1000).anomalous).toBe(false);
    expect(k.update('a', 4, true, 4000, 1000).anomalous).toBe(false);
    expect(k.update('a', 5, true, 5000, 1000)).toEqual({ anomalous: true, certain: false, onset: true, over: 2, firstWindowMs: 4000 });
  });

  test('keys are independent, and state is bounded by maxKeys', () => {
    const k = new KOfN(2, 4, 100);
    for (let i = 0; i < 1000; i++) k.update(`10.0.${i >> 8}.${i & 255}`, 0, true, 0, 1000);
    expect(k.size).toBeLessThanOrEqual(100);
    expect(k.update('x', 1, true, 0, 1000).anomalous).toBe(false);
    expect(k.update('y', 1, true, 0, 1000).anomalous).toBe(false);
    expect(k.update('x', 2, true, 0, 1000).anomalous).toBe(true);
  });

  test('k and n are checked', () => {
    expect(() => new KOfN(4, 3)).toThrow(/k must be an integer from 1 to n/);
    expect(() => new KOfN(1, 40)).toThrow(/n must be an integer from 1 to 32/);
  });
});

describe('AnomalyScorer', () => {
  let model: AnomalyModel;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-scorer-'));
    const trained = await trainModel(benignTicks(1, 50), { seed: 7, epochs: 40 });
    trained.tfModel.dispose();
    model = trained.model;
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a scanning source among benign ones: detections from the k-th window, with onset, features and explanation', () => {
    const scorer = new AnomalyScorer(model, { k: 2, n: 3, certainFactor: Infinity, graceMs: 0 });
    const random = seededRandom(11);
    const ticks = benignTicks(42, 6, 40, 200).map((t, i) => (i >= 2 ? { ...t, sources: [...t.sources, windowOf('198.18.9.250', 'scan', random)] } : t));
    const perTick = ticks.map((t) => scorer.score(t));
    expect(perTick.map((d) => d.length)).toEqual([0, 0, 0, 1, 1, 1]);
    const [onset, next] = [perTick[3][0], perTick[4][0]];
    expect(onset).toMatchObject({ ruleId: 'model.anomaly', modelId: 'unsaved', sensor: 'unit', scope: 'source', key: '198.18.9.250', onset: true, over: 2, k: 2, n: 3, windowId: 203 });
    expect(onset.firstWindowMs).toBe(ticks[2].startMs);
    expect(onset.lastWindowMs).toBe(ticks[3].endMs);
    expect(next.onset).toBe(false);
    expect(next.firstWindowMs).toBe(ticks[2].startMs);
    expect(onset.score).toBeGreaterThan(onset.threshold);
    expect(onset.features.syn).toBeGreaterThanOrEqual(400);
    expect(onset.features.distinct_ports).toBe(onset.features.syn);
    expect(onset.explanation).toHaveLength(5);
    const shares = onset.explanation.map((c) => c.share);
    expect(shares.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1 + 1e-9);
    expect([...shares].sort((a, b) => b - a)).toEqual(shares);
    expect(onset.explanation.map((c) => c.feature).some((f) => /^(syn|distinct_ports|ack_per_syn|avg_packet_bytes)/.test(f))).toBe(true);
    expect(scorer.stats()).toEqual({ windows: 6 * 40 + 4, invalidWindows: 0, detections: 3 });
  });

  test('a window far over the threshold is anomalous on its own; one just over it is not', () => {
    const scorer = new AnomalyScorer(model, { k: 3, n: 5, graceMs: 0 });
    const random = seededRandom(12);
    const scan = windowOf('198.18.9.250', 'scan', random);
    const [detection] = scorer.score(tickOf(0, [scan]));
    expect(detection).toMatchObject({ key: '198.18.9.250', onset: true, over: 1 });
    expect(detection.score).toBeGreaterThanOrEqual(10 * detection.threshold);
    const strict = new AnomalyScorer(model, { k: 3, n: 5, certainFactor: detection.score / detection.threshold + 1, graceMs: 0 });
    expect(strict.score(tickOf(0, [scan]))).toEqual([]);
  });

  test('sources already active in the grace time after start go unjudged for 5 s; a source appearing later is judged at once', () => {
    const scorer = new AnomalyScorer(model, { k: 3, n: 5, graceMs: 3000 });
    const random = seededRandom(13);
    const scanning = (w: number, src: string) => tickOf(w, [windowOf(src, 'scan', random)]);
    // Seen first at the scorer's second tick: inside the grace time, so its first 5 s are not judged.
    expect(scorer.score(tickOf(0, []))).toEqual([]);
    for (let w = 1; w < 6; w++) expect(scorer.score(scanning(w, '198.18.9.251'))).toEqual([]);
    expect(scorer.score(scanning(6, '198.18.9.251')).map((d) => d.key)).toEqual(['198.18.9.251']);
    // First seen after the grace time: a new source, judged from its first window.
    expect(scorer.score(scanning(7, '198.18.9.252')).map((d) => d.key)).toEqual(['198.18.9.252']);
  });

  test('sources with the same address on two sensors are scored apart', () => {
    const scorer = new AnomalyScorer(model, { k: 2, n: 2, certainFactor: Infinity, graceMs: 0 });
    const random = seededRandom(3);
    const scan = (w: number, sensor: string) => tickOf(w, [windowOf('198.18.9.250', 'scan', random)], sensor);
    expect(scorer.score(scan(0, 's1'))).toEqual([]);
    expect(scorer.score(scan(0, 's2'))).toEqual([]);
    expect(scorer.score(scan(1, 's1')).map((d) => d.sensor)).toEqual(['s1']);
  });
});
