/**
 * A trained anomaly model as the scorer uses it: the feature schema it was trained on, the
 * normalisation, the network's weights (network.ts) and the threshold. The score of a window is
 * the mean squared reconstruction error of its normalised features; each feature's share of it
 * is the explanation.
 */
import type { DenseNetwork } from './network';
import type { SchemaDescription } from './schema';
import { FEATURE_COUNT } from './source-features';
import type { Threshold } from './threshold';

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
  /** Windows read, fitted on, and held apart for the threshold. */
  windows: number;
  fitWindows: number;
  calibrationWindows: number;
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
  threshold: Threshold;
  training: TrainingInfo;
  /** SHA-256 (hex) of the weights file, so a damaged file is refused rather than scored with. */
  weightsSha256: string;
}

export const MODEL_FORMAT = 'xdp-ids-anomaly-model/1';

export class AnomalyModel {
  private readonly mean: Float64Array;
  private readonly scale: Float64Array;
  private readonly z = new Float64Array(FEATURE_COUNT);

  /** `id` names the model (its directory), for logs and detections. */
  constructor(readonly id: string, readonly meta: ModelMeta, readonly network: DenseNetwork) {
    if (network.inputs !== FEATURE_COUNT || network.outputs !== FEATURE_COUNT) throw new Error(`model ${id}: the network maps ${network.inputs} to ${network.outputs} features, the schema has ${FEATURE_COUNT}`);
    this.mean = Float64Array.from(meta.normalisation.mean);
    this.scale = Float64Array.from(meta.normalisation.scale);
  }

  get threshold(): number {
    return this.meta.threshold.value;
  }

  /** Reconstruction error of row `i` of a row-major matrix of transformed features. */
  score(rows: Float32Array, i: number): number {
    return this.reconstruct(rows, i, undefined);
  }

  /** Like score(), also writing each feature's squared error into `errors`. */
  featureErrors(rows: Float32Array, i: number, errors: Float64Array): number {
    return this.reconstruct(rows, i, errors);
  }

  /** Normalised features of row `i`, the network's input (a view valid until the next call). */
  normalise(rows: Float32Array, i: number): Float64Array {
    const at = i * FEATURE_COUNT;
    for (let f = 0; f < FEATURE_COUNT; f++) this.z[f] = (rows[at + f] - this.mean[f]) / this.scale[f];
    return this.z;
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
