/**
 * A trained anomaly model as the scorer uses it: the feature schema it was trained on, the
 * normalisation, the network's weights (network.ts) and a threshold per traffic-volume band
 * (volume-bands.ts). The score of a window is the mean squared reconstruction error of its
 * normalised features; each feature's share of it is the explanation.
 */
import type { DenseNetwork } from './network';
import type { SchemaDescription } from './schema';
import { FEATURE_COUNT } from './source-features';
import { bandOf, type VolumeThresholds } from './volume-bands';

/** Features are centred and divided by max(std, MIN_SCALE): a feature constant in training (e.g. probe flags) must not make any non-zero value infinitely anomalous. */
export const MIN_SCALE = 0.5;

export interface Normalisation {
  mean: number[];
  scale: number[];
}

export interface TrainingInfo {
  seed: number;
  trainedAtMs: number;
  durationMs: number;
  backend: string;
  /** Windows read, fitted on, and scored out of fold for the thresholds (all but the cold starts), in how many folds. */
  windows: number;
  fitWindows: number;
  calibrationWindows: number;
  folds: number;
  sensors: string[];
  /** Span of the training data (wall-clock ms of its first and last windows). */
  fromMs: number;
  toMs: number;
  files: string[];
  epochs: number;
  batchSize: number;
  learningRate: number;
  hiddenUnits: number[];
  finalLoss: number;
}

/** Everything stored beside the TF.js topology and weights. */
export interface ModelMeta {
  format: typeof MODEL_FORMAT;
  schema: SchemaDescription;
  normalisation: Normalisation;
  thresholds: VolumeThresholds;
  training: TrainingInfo;
  /** SHA-256 (hex) of the weights file, so a damaged file is refused rather than scored with. */
  weightsSha256: string;
}

/** /2: thresholds per traffic-volume band (/1 had one). */
export const MODEL_FORMAT = 'xdp-ids-anomaly-model/2';

export class AnomalyModel {
  private readonly mean: Float64Array;
  private readonly inverseScale: Float64Array;
  /** Threshold per volume band, by bandOf(). */
  private readonly bandThresholds: Float64Array;
  /** Normalised rows of the last call (grown as ticks grow, never shrunk). */
  private z = new Float64Array(FEATURE_COUNT * 64);

  /** `id` names the model (its directory), for logs and detections. */
  constructor(readonly id: string, readonly meta: ModelMeta, readonly network: DenseNetwork) {
    if (network.inputs !== FEATURE_COUNT || network.outputs !== FEATURE_COUNT) throw new Error(`model ${id}: the network maps ${network.inputs} to ${network.outputs} features, the schema has ${FEATURE_COUNT}`);
    this.mean = Float64Array.from(meta.normalisation.mean);
    this.inverseScale = Float64Array.from(meta.normalisation.scale, (s) => 1 / s);
    this.bandThresholds = Float64Array.from(meta.thresholds.bands, (b) => b.threshold.value);
  }

  /** The threshold for a window of this traffic volume (volume-bands.ts). */
  thresholdFor(volume: number): number {
    return this.bandThresholds[bandOf(volume)];
  }

  /** Reconstruction error of row `i` of a row-major matrix of transformed features. */
  score(rows: Float32Array, i: number): number {
    return this.reconstruct(rows, i, undefined);
  }

  /** Reconstruction errors of the first `count` rows into `scores`: one pass of the network over them all. */
  scoreAll(rows: Float32Array, count: number, scores: Float32Array): void {
    const z = this.normaliseRows(rows, 0, count);
    const out = this.network.forward(z, 0, count);
    for (let r = 0; r < count; r++) {
      let sum = 0;
      for (let f = r * FEATURE_COUNT, end = f + FEATURE_COUNT; f < end; f++) {
        const d = z[f] - out[f];
        sum += d * d;
      }
      scores[r] = sum / FEATURE_COUNT;
    }
  }

  /** Like score(), also writing each feature's squared error into `errors`. */
  featureErrors(rows: Float32Array, i: number, errors: Float64Array): number {
    return this.reconstruct(rows, i, errors);
  }

  /** Normalised features of row `i`, the network's input (a view valid until the next call). */
  normalise(rows: Float32Array, i: number): Float64Array {
    return this.normaliseRows(rows, i, 1);
  }

  private normaliseRows(rows: Float32Array, first: number, count: number): Float64Array {
    if (this.z.length < count * FEATURE_COUNT) this.z = new Float64Array(count * FEATURE_COUNT * 2);
    const z = this.z;
    const { mean, inverseScale } = this;
    for (let r = 0, at = first * FEATURE_COUNT; r < count * FEATURE_COUNT; r += FEATURE_COUNT, at += FEATURE_COUNT) {
      for (let f = 0; f < FEATURE_COUNT; f++) z[r + f] = (rows[at + f] - mean[f]) * inverseScale[f];
    }
    return z.subarray(0, count * FEATURE_COUNT);
  }

  private reconstruct(rows: Float32Array, i: number, errors: Float64Array | undefined): number {
    const z = this.normalise(rows, i);
    const out = this.network.forward(z);
    let sum = 0;
    for (let f = 0; f < FEATURE_COUNT; f++) {
      const d = z[f] - out[f];
      sum += d * d;
      if (errors) errors[f] = d * d;
    }
    return sum / FEATURE_COUNT;
  }
}
