/**
 * Training: features of every recorded source-window (in tick order, so histories build up as
 * they do at run time), a seeded split into windows the network is fitted on and windows held
 * apart to set the threshold, normalisation from the fitted ones, a seeded TF.js fit (replaying
 * the windows it reconstructs worst, hard-examples.ts), and the threshold from the held-apart
 * windows' reconstruction errors (threshold.ts).
 */
import type { Logger } from 'pino';
import type { SensorTick } from '../../common/sensor-tick';
import { AnomalyModel, MIN_SCALE, MODEL_FORMAT, type ModelMeta, type Normalisation } from './anomaly-model';
import { buildAutoencoder, networkOf } from './autoencoder';
import { HARD_REFRESH_EPOCHS, epochOrder, hardExamples } from './hard-examples';
import { permutation, seededRandom } from './random';
import { describeSchema } from './schema';
import { FEATURE_COUNT, FeatureExtractor } from './source-features';
import { tensorflow } from './tf-backend';
import type { LayersModel } from './tfjs';
import { fitThreshold } from './threshold';

export interface TrainOptions {
  seed?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  hiddenUnits?: number[];
  /** Wanted share of benign windows over the threshold, before k-of-n persistence. */
  targetExceedance?: number;
  /** Share of windows held apart for the threshold. */
  calibrationShare?: number;
  /** Windows kept (a seeded uniform sample when there are more), bounding memory and time. */
  maxWindows?: number;
  /** Where the ticks came from, for the model's metadata. */
  files?: string[];
  log?: Logger;
}

export interface TrainedModel {
  model: AnomalyModel;
  /** The TF.js model, saved through IO handlers (files.ts). */
  tfModel: LayersModel;
}

export const DEFAULTS = {
  seed: 1, batchSize: 256, learningRate: 0.003, hiddenUnits: [16, 8, 16], targetExceedance: 1e-4, calibrationShare: 0.25, maxWindows: 300_000,
};
/**
 * Share of source-windows extracted with the source's history forgotten. A detector that starts
 * (or restarts) meets every active source with no history, often in the middle of a connection:
 * the baseline, recorded from its own start only, holds too few such windows, and without them
 * every source active at a restart looked anomalous in its first window. They are fitted on, never
 * held apart for the threshold: a restart is a one-off, and at 2 % of the windows they would make
 * up the error tail the threshold is fitted to.
 */
const COLD_START_SHARE = 0.02;
/** Enough optimiser steps for these small networks to converge, however many windows there are. */
const TARGET_STEPS = 3000;

/** A seeded reservoir of feature rows: a uniform sample of at most `capacity` rows, each marked when extracted without history. */
class RowReservoir {
  rows: Float32Array;
  cold: Uint8Array;
  count = 0;
  seen = 0;

  constructor(private readonly capacity: number, private readonly random: () => number) {
    this.rows = new Float32Array(Math.min(capacity, 4096) * FEATURE_COUNT);
    this.cold = new Uint8Array(Math.min(capacity, 4096));
  }

  add(rows: Float32Array, n: number, isCold: (i: number) => boolean): void {
    for (let i = 0; i < n; i++) {
      let at = this.count;
      if (this.count < this.capacity) {
        this.count++;
        if (this.count * FEATURE_COUNT > this.rows.length) {
          const grown = new Float32Array(Math.min(this.capacity, this.count * 2) * FEATURE_COUNT);
          grown.set(this.rows);
          this.rows = grown;
          const cold = new Uint8Array(grown.length / FEATURE_COUNT);
          cold.set(this.cold);
          this.cold = cold;
        }
      } else {
        at = Math.floor(this.random() * (this.seen + 1));
      }
      this.seen++;
      if (at < this.capacity) {
        this.rows.set(rows.subarray(i * FEATURE_COUNT, (i + 1) * FEATURE_COUNT), at * FEATURE_COUNT);
        this.cold[at] = isCold(i) ? 1 : 0;
      }
    }
  }
}

function normalisationOf(rows: Float32Array, indexes: Int32Array): Normalisation {
  const mean = new Float64Array(FEATURE_COUNT);
  const sq = new Float64Array(FEATURE_COUNT);
  for (const i of indexes) for (let f = 0; f < FEATURE_COUNT; f++) mean[f] += rows[i * FEATURE_COUNT + f];
  for (let f = 0; f < FEATURE_COUNT; f++) mean[f] /= indexes.length;
  for (const i of indexes) for (let f = 0; f < FEATURE_COUNT; f++) sq[f] += (rows[i * FEATURE_COUNT + f] - mean[f]) ** 2;
  return {
    mean: Array.from(mean),
    scale: Array.from(sq, (s) => Math.max(Math.sqrt(s / indexes.length), MIN_SCALE)),
  };
}

export async function trainModel(ticks: AsyncIterable<SensorTick> | Iterable<SensorTick>, opts: TrainOptions = {}): Promise<TrainedModel> {
  const started = Date.now();
  const seed = opts.seed ?? DEFAULTS.seed;
  const hiddenUnits = opts.hiddenUnits ?? DEFAULTS.hiddenUnits;
  const learningRate = opts.learningRate ?? DEFAULTS.learningRate;
  const random = seededRandom(seed);
  const reservoir = new RowReservoir(opts.maxWindows ?? DEFAULTS.maxWindows, random);
  const extractor = new FeatureExtractor();
  const sensors = new Set<string>();
  let fromMs = Infinity;
  let toMs = -Infinity;
  for await (const tick of ticks) {
    const forgotten = new Set<string>();
    if (Array.isArray(tick.sources)) {
      for (const w of tick.sources) {
        if (random() >= COLD_START_SHARE) continue;
        extractor.forget(tick.sensor, w?.src);
        forgotten.add(w?.src);
      }
    }
    const x = extractor.extract(tick);
    if (x.invalid.length > 0) throw x.invalid[0];
    reservoir.add(x.rows, x.count, (i) => forgotten.has(x.sources[i].src));
    sensors.add(tick.sensor);
    fromMs = Math.min(fromMs, tick.startMs);
    toMs = Math.max(toMs, tick.endMs);
  }
  const { rows, count } = reservoir;
  const order = permutation(count, random);
  const calibrationCount = Math.floor(count * (opts.calibrationShare ?? DEFAULTS.calibrationShare));
  const calibrationList: number[] = [];
  const fitList: number[] = [];
  for (const i of order) (calibrationList.length < calibrationCount && reservoir.cold[i] === 0 ? calibrationList : fitList).push(i);
  const calibration = Int32Array.from(calibrationList);
  const fit = Int32Array.from(fitList);
  if (fit.length < 100) throw new Error(`${count} source-windows are too few to train on (need at least ${Math.ceil(100 / (1 - (opts.calibrationShare ?? DEFAULTS.calibrationShare)))}); record for longer`);
  const normalisation = normalisationOf(rows, fit);

  const { tf, backend } = await tensorflow();
  const fitZ = new Float32Array(fit.length * FEATURE_COUNT);
  fit.forEach((r, i) => {
    for (let f = 0; f < FEATURE_COUNT; f++) fitZ[i * FEATURE_COUNT + f] = (rows[r * FEATURE_COUNT + f] - normalisation.mean[f]) / normalisation.scale[f];
  });
  const batchSize = opts.batchSize ?? DEFAULTS.batchSize;
  const stepsPerEpoch = Math.ceil(fit.length / batchSize);
  const epochs = opts.epochs ?? Math.min(200, Math.max(10, Math.ceil(TARGET_STEPS / stepsPerEpoch)));
  const tfModel = buildAutoencoder(tf, FEATURE_COUNT, hiddenUnits, seed);
  tfModel.compile({ optimizer: tf.train.adam(learningRate), loss: 'meanSquaredError' });
  const all = tf.tensor2d(fitZ, [fit.length, FEATURE_COUNT]);
  let finalLoss = NaN;
  const fitZ64 = Float64Array.from(fitZ);
  let hard: Int32Array = new Int32Array(0);
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const sinceHalf = epoch - Math.floor(epochs / 2);
      if (sinceHalf >= 0 && sinceHalf % HARD_REFRESH_EPOCHS === 0) hard = hardExamples(networkOf(tfModel), fitZ64, fit.length);
      // Our own seeded shuffle: fit()'s shuffle draws from an unseeded generator.
      const shuffled = tf.tidy(() => tf.gather(all, tf.tensor1d(epochOrder(fit.length, hard, random), 'int32')));
      const history = await tfModel.fit(shuffled, shuffled, { epochs: 1, batchSize, shuffle: false, verbose: 0 });
      shuffled.dispose();
      finalLoss = history.history.loss[0] as number;
      if (!Number.isFinite(finalLoss)) throw new Error(`training diverged at epoch ${epoch + 1} (loss ${finalLoss}); try a lower learning rate`);
      if ((epoch + 1) % 10 === 0) opts.log?.debug({ epoch: epoch + 1, epochs, loss: finalLoss }, 'training');
    }
  } finally {
    all.dispose();
  }

  const meta: ModelMeta = {
    format: MODEL_FORMAT,
    schema: describeSchema(),
    normalisation,
    threshold: undefined as unknown as ModelMeta['threshold'],
    training: {
      seed, trainedAtMs: Date.now(), durationMs: 0, backend, windows: reservoir.seen, fitWindows: fit.length, calibrationWindows: calibration.length,
      sensors: [...sensors].sort(), fromMs, toMs, files: opts.files ?? [], epochs, batchSize, learningRate, hiddenUnits: [...hiddenUnits], finalLoss,
    },
    weightsSha256: '',
  };
  const network = networkOf(tfModel);
  const scorer = new AnomalyModel('training', { ...meta, threshold: { value: Infinity } as ModelMeta['threshold'] }, network);
  const errors = new Float64Array(calibration.length);
  calibration.forEach((r, i) => (errors[i] = scorer.score(rows, r)));
  meta.threshold = fitThreshold(errors, opts.targetExceedance ?? DEFAULTS.targetExceedance);
  meta.training.durationMs = Date.now() - started;
  opts.log?.info({ windows: reservoir.seen, epochs, loss: finalLoss, threshold: meta.threshold.value, backend, ms: meta.training.durationMs }, 'model trained');
  return { model: new AnomalyModel('unsaved', meta, network), tfModel };
}
