/**
 * Training on a fixed small dataset: deterministic for a seed, thresholds per volume band that
 * benign windows stay under and scans go far over, our forward pass equal to TF.js's predict, and
 * a save/load round trip that scores identically.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AnomalyModel } from '../../detector/model/anomaly-model';
import { loadModel, saveModel } from '../../detector/model/files';
import { seededRandom } from '../../detector/model/random';
import { FEATURE_NAMES } from '../../detector/model/schema';
import { FEATURE_COUNT, FeatureExtractor } from '../../detector/model/source-features';
import { tensorflow } from '../../detector/model/tf-backend';
import { trainModel, type TrainedModel } from '../../detector/model/train';
import { volumeOf } from '../../detector/model/volume-bands';
import { benignTicks, tickOf, windowOf } from './model-support';

const OPTIONS = { seed: 7, epochs: 40 };
/** A training is five fits (four folds and the model): tens of seconds, minutes on a busy machine. */
const TRAINING_TIMEOUT_MS = 300_000;

/** Rows of a probe set: 20 more benign ticks after the training data, then a scan and a NULL scan; with each row's traffic volume. */
function probeRows(): { rows: Float32Array; volumes: number[]; count: number; benign: number } {
  const extractor = new FeatureExtractor();
  const benign = benignTicks(99, 20, 40, 100);
  const random = seededRandom(5);
  const attacks = [tickOf(120, [windowOf('198.18.9.200', 'scan', random), windowOf('198.18.9.201', 'null-scan', random)])];
  const parts: Float32Array[] = [];
  const volumes: number[] = [];
  let benignRows = 0;
  for (const t of [...benign, ...attacks]) {
    const x = extractor.extract(t);
    parts.push(Float32Array.from(x.rows));
    for (let i = 0; i < x.count; i++) volumes.push(volumeOf(x.raw, i));
    if (t !== attacks[0]) benignRows += x.count;
  }
  const rows = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    rows.set(p, at);
    at += p.length;
  }
  return { rows, volumes, count: rows.length / FEATURE_COUNT, benign: benignRows };
}

function scores(model: AnomalyModel, rows: Float32Array, count: number): number[] {
  return Array.from({ length: count }, (_, i) => model.score(rows, i));
}

describe('anomaly model training', () => {
  let trained: TrainedModel;
  let dir: string;
  const probe = probeRows();

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-model-'));
    trained = await trainModel(benignTicks(1, 50), OPTIONS);
  }, TRAINING_TIMEOUT_MS);

  afterAll(() => {
    trained?.tfModel.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the same seed and data give the same weights, threshold and scores; another seed does not', async () => {
    const again = await trainModel(benignTicks(1, 50), OPTIONS);
    const other = await trainModel(benignTicks(1, 50), { ...OPTIONS, seed: 8, epochs: 1 });
    expect(again.model.network.layers.map((l) => Array.from(l.kernel))).toEqual(trained.model.network.layers.map((l) => Array.from(l.kernel)));
    expect(again.model.meta.thresholds).toEqual(trained.model.meta.thresholds);
    expect(scores(again.model, probe.rows, probe.count)).toEqual(scores(trained.model, probe.rows, probe.count));
    expect(Array.from(other.model.network.layers[0].kernel)).not.toEqual(Array.from(trained.model.network.layers[0].kernel));
    again.tfModel.dispose();
    other.tfModel.dispose();
  }, 2 * TRAINING_TIMEOUT_MS);

  test('benign windows score under their band\'s threshold, scans far over it; every window is fitted and all but the cold starts scored out of fold', () => {
    const model = trained.model;
    const ratios = scores(model, probe.rows, probe.count).map((s, i) => s / model.thresholdFor(probe.volumes[i]));
    const benign = ratios.slice(0, probe.benign);
    expect(benign.filter((r) => r > 1).length / benign.length).toBeLessThan(0.01);
    for (const attack of ratios.slice(probe.benign)) expect(attack).toBeGreaterThan(10);
    const { bands, pooled } = model.meta.thresholds;
    expect(bands.map((b) => b.band)).toEqual(['low', 'mid', 'high']);
    for (const b of bands) expect(b.threshold.value).toBeGreaterThanOrEqual(b.threshold.estimate);
    expect(pooled.value).toBeGreaterThan(pooled.quantiles.p99);
    expect(pooled.calibrationWindows).toBe(model.meta.training.calibrationWindows);
    expect(model.meta.training.fitWindows).toBe(50 * 40);
    expect(model.meta.training.calibrationWindows).toBeGreaterThan(0.95 * 50 * 40);
  });

  test('the Float32Array forward pass equals TF.js predict', async () => {
    const { tf } = await tensorflow();
    const z = new Float64Array(probe.count * FEATURE_COUNT);
    for (let i = 0; i < probe.count; i++) z.set(trained.model.normalise(probe.rows, i), i * FEATURE_COUNT);
    const input = tf.tensor2d(Float32Array.from(z), [probe.count, FEATURE_COUNT]);
    const predicted = trained.tfModel.predict(input).dataSync();
    input.dispose();
    let maxDiff = 0;
    for (let i = 0; i < probe.count; i++) {
      const ours = trained.model.network.forward(z, i * FEATURE_COUNT);
      for (let f = 0; f < FEATURE_COUNT; f++) maxDiff = Math.max(maxDiff, Math.abs(ours[f] - predicted[i * FEATURE_COUNT + f]));
    }
    expect(maxDiff).toBeLessThan(1e-4);
  });

  test('save and load: TF.js layers-model files, identical scores, metadata kept', async () => {
    const saved = await saveModel(trained, dir);
    const files = fs.readdirSync(path.join(dir, saved.id)).sort();
    expect(files).toEqual(['model.json', 'weights.bin']);
    const json = JSON.parse(fs.readFileSync(path.join(dir, saved.id, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.userDefinedMetadata.xdpIds.schema.features.map((f: { name: string }) => f.name)).toEqual(FEATURE_NAMES);
    const { model: loaded, tfModel } = await loadModel(path.join(dir, saved.id));
    tfModel.dispose();
    expect(scores(loaded, probe.rows, probe.count)).toEqual(scores(trained.model, probe.rows, probe.count));
    expect(loaded.meta.thresholds).toEqual(trained.model.meta.thresholds);
    expect(loaded.meta.training).toEqual(trained.model.meta.training);
  });
});
