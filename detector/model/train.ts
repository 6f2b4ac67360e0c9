/**
 * Training: features of every recorded source-window (in tick order, so histories build up as
 * they do at run time, with some windows re-cut at another edge: window-edges.ts),
 * normalisation, the network fitted to all of them (fit.ts), and a threshold per traffic-volume
 * band (volume-bands.ts, threshold.ts) from out-of-fold errors.
 *
 * Out-of-fold errors (cross-fitting): the windows are dealt into FOLDS folds by block (a source's
 * windows within BLOCK_MS), a network is fitted to each fold's complement and scores the fold's
 * windows, and the thresholds are fitted to those errors. Every window then has an error from a
 * network that never saw its block, as every window at run time comes from a burst the model has
 * not seen. Two things this replaced went wrong on real traffic:
 *  - a random quarter of single windows held apart: the network had been fitted on the
 *    neighbours of nearly every calibration window (one burst's windows are near copies), the
 *    errors said it knew a load test well, and the next load test, at another throughput, was
 *    far over the threshold;
 *  - a quarter of blocks held apart: with little data (the demo learns 40 s of 31 hosts) it holds
 *    apart all of a rare kind of traffic (the only host that runs iperf3) in some runs, which the
 *    network then never learns, or none of it, which the threshold then knows nothing of.
 */
import type { Logger } from 'pino';
import type { SensorTick } from '../../common/sensor-tick';
import { AnomalyModel, MIN_SCALE, MODEL_FORMAT, type ModelMeta, type Normalisation } from './anomaly-model';
import { networkOf } from './autoencoder';
import { fitAutoencoder, type FitSettings } from './fit';
import { permutation, seededRandom } from './random';
import { describeSchema } from './schema';
import { FEATURE_COUNT, FeatureExtractor, InvalidWindowError, tickProblem } from './source-features';
import { tensorflow } from './tf-backend';
import type { LayersModel } from './tfjs';
import { fitVolumeThresholds, volumeOf } from './volume-bands';
import { recutEdges } from './window-edges';

export interface TrainOptions {
  seed?: number;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  hiddenUnits?: number[];
  /** Wanted share of benign windows over the threshold, before k-of-n persistence. */
  targetExceedance?: number;
  /** Confidence of the thresholds' upper bound (threshold.ts). */
  confidence?: number;
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
  seed: 1, batchSize: 256, learningRate: 0.003, hiddenUnits: [16, 8, 16], targetExceedance: 1e-4, confidence: 0.95, maxWindows: 300_000,
};
/** Windows of one source within this long go into one fold (and are resampled together): two half-lives of the shortest history. */
const BLOCK_MS = 10_000;
/**
 * Each fold's network is fitted on the other three quarters. With halves, each saw half of a
 * baseline's few load-test bursts; the heavy windows' out-of-fold errors ran several times the
 * model's own (eval:model: up to 2.6 against 0.8 on the next run), and the heavy band's threshold
 * came out too high to see a UDP flood.
 */
const FOLDS = 4;
/** Bootstrap resamples behind each threshold's upper bound. */
const RESAMPLES = 200;
/** Fewer windows cannot be split into folds and still fit a network and a threshold. */
const MIN_WINDOWS = 200;
/**
 * Share of source-windows extracted with the source's history forgotten. A detector that starts
 * (or restarts) meets every active source with no history, often in the middle of a connection:
 * the baseline, recorded from its own start only, holds too few such windows, and without them
 * every source active at a restart looked anomalous in its first window. They are fitted on, never
 * scored for the threshold: a restart is a one-off, and at 2 % of the windows they would make up
 * the error tail the threshold is fitted to.
 */
const COLD_START_SHARE = 0.02;
/** Share of the sources in two consecutive ticks whose windows are re-cut at another edge (window-edges.ts). */
const RECUT_SHARE = 0.05;

/** What the folds and the thresholds need to know of a row besides its features. */
interface RowInfo {
  /** Extracted without history (a cold start). */
  cold: boolean;
  /** Traffic volume (volume-bands.ts). */
  volume: number;
  /** The row's block (source and BLOCK_MS period). */
  block: number;
}

/** A seeded reservoir of feature rows: a uniform sample of at most `capacity` rows, with their RowInfo. */
class RowReservoir {
  rows: Float32Array;
  cold: Uint8Array;
  volumes: Float64Array;
  blocks: Int32Array;
  count = 0;
  seen = 0;

  constructor(private readonly capacity: number, private readonly random: () => number) {
    const initial = Math.min(capacity, 4096);
    this.rows = new Float32Array(initial * FEATURE_COUNT);
    this.cold = new Uint8Array(initial);
    this.volumes = new Float64Array(initial);
    this.blocks = new Int32Array(initial);
  }

  add(rows: Float32Array, n: number, info: (i: number) => RowInfo): void {
    for (let i = 0; i < n; i++) {
      let at = this.count;
      if (this.count < this.capacity) {
        this.count++;
        if (this.count > this.cold.length) this.grow(Math.min(this.capacity, this.count * 2));
      } else {
        at = Math.floor(this.random() * (this.seen + 1));
      }
      this.seen++;
      if (at < this.capacity) {
        this.rows.set(rows.subarray(i * FEATURE_COUNT, (i + 1) * FEATURE_COUNT), at * FEATURE_COUNT);
        const { cold, volume, block } = info(i);
        this.cold[at] = cold ? 1 : 0;
        this.volumes[at] = volume;
        this.blocks[at] = block;
      }
    }
  }

  private grow(capacity: number): void {
    const rows = new Float32Array(capacity * FEATURE_COUNT);
    rows.set(this.rows);
    this.rows = rows;
    const cold = new Uint8Array(capacity);
    cold.set(this.cold);
    this.cold = cold;
    const volumes = new Float64Array(capacity);
    volumes.set(this.volumes);
    this.volumes = volumes;
    const blocks = new Int32Array(capacity);
    blocks.set(this.blocks);
    this.blocks = blocks;
  }
}

function normalisationOf(rows: Float32Array, count: number): Normalisation {
  const mean = new Float64Array(FEATURE_COUNT);
  const sq = new Float64Array(FEATURE_COUNT);
  for (let i = 0; i < count; i++) for (let f = 0; f < FEATURE_COUNT; f++) mean[f] += rows[i * FEATURE_COUNT + f];
  for (let f = 0; f < FEATURE_COUNT; f++) mean[f] /= count;
  for (let i = 0; i < count; i++) for (let f = 0; f < FEATURE_COUNT; f++) sq[f] += (rows[i * FEATURE_COUNT + f] - mean[f]) ** 2;
  return {
    mean: Array.from(mean),
    scale: Array.from(sq, (s) => Math.max(Math.sqrt(s / count), MIN_SCALE)),
  };
}

/** The normalised rows `indexes` of `rows`, packed (the order of `indexes`). */
function normalised(rows: Float32Array, indexes: ArrayLike<number>, n: Normalisation): Float32Array {
  const z = new Float32Array(indexes.length * FEATURE_COUNT);
  for (let i = 0; i < indexes.length; i++) {
    const at = indexes[i] * FEATURE_COUNT;
    for (let f = 0; f < FEATURE_COUNT; f++) z[i * FEATURE_COUNT + f] = (rows[at + f] - n.mean[f]) / n.scale[f];
  }
  return z;
}

/** Each block's fold, in a seeded random order that deals blocks out in turn. */
function foldsOf(blockCount: number, random: () => number): Uint8Array {
  const folds = new Uint8Array(blockCount);
  permutation(blockCount, random).forEach((b, i) => (folds[b] = i % FOLDS));
  return folds;
}

export async function trainModel(ticks: AsyncIterable<SensorTick> | Iterable<SensorTick>, opts: TrainOptions = {}): Promise<TrainedModel> {
  const started = Date.now();
  const seed = opts.seed ?? DEFAULTS.seed;
  const settings: FitSettings = {
    hiddenUnits: opts.hiddenUnits ?? DEFAULTS.hiddenUnits, learningRate: opts.learningRate ?? DEFAULTS.learningRate, batchSize: opts.batchSize ?? DEFAULTS.batchSize, epochs: opts.epochs,
  };
  const random = seededRandom(seed);
  const reservoir = new RowReservoir(opts.maxWindows ?? DEFAULTS.maxWindows, random);
  const extractor = new FeatureExtractor();
  const sensors = new Set<string>();
  const blockIds = new Map<string, number>();
  const blockOf = (sensor: string, src: string, endMs: number): number => {
    const key = `${sensor}\u0000${src}\u0000${Math.floor(endMs / BLOCK_MS)}`;
    let id = blockIds.get(key);
    if (id === undefined) blockIds.set(key, (id = blockIds.size));
    return id;
  };
  let fromMs = Infinity;
  let toMs = -Infinity;
  const extract = (tick: SensorTick): void => {
    const forgotten = new Set<string>();
    for (const w of tick.sources) {
      if (random() >= COLD_START_SHARE) continue;
      extractor.forget(tick.sensor, w?.src);
      forgotten.add(w?.src);
    }
    const x = extractor.extract(tick);
    if (x.invalid.length > 0) throw x.invalid[0];
    reservoir.add(x.rows, x.count, (i) => ({
      cold: forgotten.has(x.sources[i].src), volume: volumeOf(x.raw, i), block: blockOf(tick.sensor, x.sources[i].src, tick.endMs),
    }));
    sensors.add(tick.sensor);
    fromMs = Math.min(fromMs, tick.startMs);
    toMs = Math.max(toMs, tick.endMs);
  };
  // Each tick waits for the next, so that their windows can be re-cut, then is extracted.
  let waiting: SensorTick | undefined;
  for await (const tick of ticks) {
    const problem = tickProblem(tick);
    if (problem) throw new InvalidWindowError(String(tick.sensor), undefined, problem);
    let next = tick;
    if (waiting) {
      [waiting, next] = recutEdges(waiting, tick, RECUT_SHARE, random);
      extract(waiting);
    }
    waiting = next;
  }
  if (waiting) extract(waiting);
  const { rows, count } = reservoir;
  if (count < MIN_WINDOWS) throw new Error(`${count} source-windows are too few to train on (need at least ${MIN_WINDOWS}); record for longer`);
  const normalisation = normalisationOf(rows, count);
  const { tf, backend } = await tensorflow();

  // Out-of-fold errors of every window that is not a cold start.
  const folds = foldsOf(blockIds.size, random);
  const scored: number[] = [];
  const errors: number[] = [];
  for (let fold = 0; fold < FOLDS; fold++) {
    const fit: number[] = [];
    const held: number[] = [];
    for (let i = 0; i < count; i++) (reservoir.cold[i] === 0 && folds[reservoir.blocks[i]] === fold ? held : fit).push(i);
    const { tfModel } = await fitAutoencoder(tf, normalised(rows, fit, normalisation), FEATURE_COUNT, fit.length, settings, seed + 1 + fold, random, opts.log);
    const network = networkOf(tfModel);
    tfModel.dispose();
    const z = Float64Array.from(normalised(rows, held, normalisation));
    const out = network.forward(z, 0, held.length);
    held.forEach((row, h) => {
      let sum = 0;
      for (let f = h * FEATURE_COUNT; f < (h + 1) * FEATURE_COUNT; f++) sum += (z[f] - out[f]) ** 2;
      scored.push(row);
      errors.push(sum / FEATURE_COUNT);
    });
  }

  const everyRow = Int32Array.from({ length: count }, (_, i) => i);
  const { tfModel, loss, epochs } = await fitAutoencoder(tf, normalised(rows, everyRow, normalisation), FEATURE_COUNT, count, settings, seed, random, opts.log);
  const thresholds = fitVolumeThresholds(Float64Array.from(errors), Float64Array.from(scored, (r) => reservoir.volumes[r]), Int32Array.from(scored, (r) => reservoir.blocks[r]), {
    targetExceedance: opts.targetExceedance ?? DEFAULTS.targetExceedance, confidence: opts.confidence ?? DEFAULTS.confidence, resamples: RESAMPLES, random,
  });
  const meta: ModelMeta = {
    format: MODEL_FORMAT,
    schema: describeSchema(),
    normalisation,
    thresholds,
    training: {
      seed, trainedAtMs: Date.now(), durationMs: Date.now() - started, backend, windows: reservoir.seen, fitWindows: count, calibrationWindows: scored.length, folds: FOLDS,
      sensors: [...sensors].sort(), fromMs, toMs, files: opts.files ?? [], epochs, batchSize: settings.batchSize, learningRate: settings.learningRate,
      hiddenUnits: [...settings.hiddenUnits], finalLoss: loss,
    },
    weightsSha256: '',
  };
  opts.log?.info({ windows: reservoir.seen, epochs, loss, thresholds: thresholds.bands.map((b) => b.threshold.value), backend, ms: meta.training.durationMs }, 'model trained');
  return { model: new AnomalyModel('unsaved', meta, networkOf(tfModel)), tfModel };
}
