/**
 * Bad input never yields a model or a score silently: a model file with another feature schema,
 * damaged weights or non-finite metadata is refused with the reason; NaN/Inf windows are skipped
 * with a clear error while the rest of the tick is scored; bad record lines name file:line.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AnomalyModel } from '../../detector/model/anomaly-model';
import { loadModel, saveModel } from '../../detector/model/files';
import { readWindows } from '../../detector/model/records';
import { AnomalyScorer } from '../../detector/model/scorer';
import type { InvalidWindowError } from '../../detector/model/source-features';
import { trainModel } from '../../detector/model/train';
import { benignTicks, tickOf, windowOf } from './model-support';
import { seededRandom } from '../../detector/model/random';

describe('bad model files and bad windows', () => {
  let dir: string;
  let good: string;
  let model: AnomalyModel;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-model-bad-'));
    const trained = await trainModel(benignTicks(1, 20), { seed: 3, epochs: 3 });
    model = await saveModel(trained, dir);
    trained.tfModel.dispose();
    good = path.join(dir, model.id);
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A copy of the good model with model.json edited by `edit`. */
  function variant(name: string, edit: (json: { userDefinedMetadata: { xdpIds: Record<string, any> } }) => void): string {
    const copy = path.join(dir, name);
    fs.cpSync(good, copy, { recursive: true });
    const json = JSON.parse(fs.readFileSync(path.join(copy, 'model.json'), 'utf8'));
    edit(json);
    fs.writeFileSync(path.join(copy, 'model.json'), JSON.stringify(json));
    return copy;
  }

  test('a model trained on another feature schema (such as v3, with decayed sums in its histories) or with one threshold for all is refused', async () => {
    const otherId = variant('other-schema', (j) => (j.userDefinedMetadata.xdpIds.schema.id = 'source-window/v3'));
    await expect(loadModel(otherId)).rejects.toThrow(/feature schema "source-window\/v3" is not this build's source-window\/v4.*retrain/);
    const oneThreshold = variant('one-threshold', (j) => {
      const meta = j.userDefinedMetadata.xdpIds;
      meta.format = 'xdp-ids-anomaly-model/1';
      meta.threshold = meta.thresholds.pooled;
      delete meta.thresholds;
    });
    await expect(loadModel(oneThreshold)).rejects.toThrow(/model format "xdp-ids-anomaly-model\/1" is not this build's xdp-ids-anomaly-model\/2; retrain/);
    const otherBands = variant('other-bands', (j) => (j.userDefinedMetadata.xdpIds.thresholds.bands[2].minPps = 100));
    await expect(loadModel(otherBands)).rejects.toThrow(/thresholds.bands: must be this build's volume bands/);
    const otherFeatures = variant('other-features', (j) => j.userDefinedMetadata.xdpIds.schema.features.reverse());
    await expect(loadModel(otherFeatures)).rejects.toThrow(/lists different features/);
  });

  test('damaged or truncated weights are refused', async () => {
    const flipped = variant('flipped', () => undefined);
    const weights = fs.readFileSync(path.join(flipped, 'weights.bin'));
    weights[100] ^= 0xff;
    fs.writeFileSync(path.join(flipped, 'weights.bin'), weights);
    await expect(loadModel(flipped)).rejects.toThrow(/weights.bin does not match its checksum/);
    const truncated = variant('truncated', () => undefined);
    fs.writeFileSync(path.join(truncated, 'weights.bin'), weights.subarray(0, weights.length - 8));
    await expect(loadModel(truncated)).rejects.toThrow(/has \d+ bytes, the manifest describes \d+/);
    const missing = variant('missing', () => undefined);
    fs.rmSync(path.join(missing, 'weights.bin'));
    await expect(loadModel(missing)).rejects.toThrow(/cannot read weights/);
  });

  test('NaN weights (with a matching checksum) and non-finite metadata are refused', async () => {
    const nanWeights = variant('nan-weights', () => undefined);
    const weights = fs.readFileSync(path.join(nanWeights, 'weights.bin'));
    weights.writeFloatLE(NaN, 0);
    fs.writeFileSync(path.join(nanWeights, 'weights.bin'), weights);
    const json = JSON.parse(fs.readFileSync(path.join(nanWeights, 'model.json'), 'utf8'));
    json.userDefinedMetadata.xdpIds.weightsSha256 = require('node:crypto').createHash('sha256').update(weights).digest('hex');
    fs.writeFileSync(path.join(nanWeights, 'model.json'), JSON.stringify(json));
    await expect(loadModel(nanWeights)).rejects.toThrow(/non-finite weight/);
    const nullMean = variant('null-mean', (j) => (j.userDefinedMetadata.xdpIds.normalisation.mean[3] = null));
    await expect(loadModel(nullMean)).rejects.toThrow(/normalisation.mean.3/);
    const zeroThreshold = variant('zero-threshold', (j) => (j.userDefinedMetadata.xdpIds.thresholds.bands[1].threshold.value = 0));
    await expect(loadModel(zeroThreshold)).rejects.toThrow(/thresholds.bands.1.threshold.value: must be > 0/);
    fs.writeFileSync(path.join(variant('not-json', () => undefined), 'model.json'), '{"format": ');
    await expect(loadModel(path.join(dir, 'not-json'))).rejects.toThrow(/model.json is not JSON/);
  });

  test('NaN, Inf and negative counts: the window is skipped with a clear error, the rest of the tick is scored', () => {
    const invalid: InvalidWindowError[] = [];
    const scorer = new AnomalyScorer(model, { k: 1, n: 1, graceMs: 0, onInvalidWindow: (e) => invalid.push(e) });
    const random = seededRandom(1);
    const tick = tickOf(0, [
      windowOf('198.18.9.10', 'web', random),
      { ...windowOf('198.18.9.11', 'web', random), syn: NaN },
      { ...windowOf('198.18.9.12', 'web', random), bytes: Infinity },
      { ...windowOf('198.18.9.13', 'web', random), udp: -1 },
      windowOf('198.18.9.200', 'scan', random),
    ]);
    const detections = scorer.score(tick);
    expect(invalid.map((e) => e.message)).toEqual([
      'sensor unit source 198.18.9.11: syn must be a finite count >= 0, got NaN',
      'sensor unit source 198.18.9.12: bytes must be a finite count >= 0, got Infinity',
      'sensor unit source 198.18.9.13: udp must be a finite count >= 0, got -1',
    ]);
    expect(scorer.stats()).toEqual({ windows: 2, invalidWindows: 3, detections: 1 });
    expect(detections.map((d) => d.key)).toEqual(['198.18.9.200']);
    expect(() => scorer.score({ ...tick, endMs: tick.startMs })).toThrow(/endMs .* is not after startMs/);
  });

  test('record files: a bad line is an error naming file:line and the field', async () => {
    const file = path.join(dir, 'bad.jsonl');
    const ticks = benignTicks(1, 2, 2);
    const bad = JSON.stringify(ticks[1]).replace('"syn":', '"syn":null,"was":');
    fs.writeFileSync(file, `${JSON.stringify(ticks[0])}\n${bad}\n`);
    const read: number[] = [];
    await expect((async () => {
      for await (const t of readWindows([file])) read.push(t.window);
    })()).rejects.toThrow(new RegExp(`${file}:2: sources.0.syn: `));
    expect(read).toEqual([0]);
    fs.writeFileSync(file, '{"sensor":\n');
    await expect(readWindows([file]).next()).rejects.toThrow(`${file}:1: not JSON`);
    await expect(readWindows([path.join(dir, 'absent.jsonl')]).next()).rejects.toThrow(/absent.jsonl:0: cannot read/);
    await expect(trainModel(readWindows([file]))).rejects.toThrow(`${file}:1: not JSON`);
  });
});
