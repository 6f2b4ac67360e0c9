/**
 * The part of the TF.js API this project uses, typed here. TF.js's own declarations reference
 * browser types (DOM, WebGL, WebGPU) that this Node project's `lib` does not include, so
 * importing them fails the type check of the whole build unless tsconfig sets skipLibCheck; with
 * that set, these declarations can be replaced by `import type * as tf from '@tensorflow/tfjs'`.
 */

export interface Tensor {
  readonly shape: number[];
  dataSync(): Float32Array | Int32Array | Uint8Array;
  dispose(): void;
}

export interface Layer {
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): Tensor[];
  setWeights(weights: Tensor[]): void;
}

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
}

export interface ModelArtifacts {
  modelTopology?: object | ArrayBuffer;
  weightSpecs?: WeightSpec[];
  weightData?: ArrayBuffer | ArrayBuffer[];
}

export interface SaveResult {
  modelArtifactsInfo: { dateSaved: Date; modelTopologyType: 'JSON'; weightDataBytes?: number };
}

export interface IOHandler {
  save?(artifacts: ModelArtifacts): Promise<SaveResult>;
  load?(): Promise<ModelArtifacts>;
}

export interface LayersModel {
  readonly layers: Layer[];
  compile(config: { optimizer: unknown; loss: string }): void;
  fit(x: Tensor, y: Tensor, config: { epochs: number; batchSize: number; shuffle: boolean; verbose: number }): Promise<{ history: { loss: number[] } }>;
  predict(x: Tensor): Tensor;
  save(handler: IOHandler): Promise<SaveResult>;
  dispose(): void;
}

export interface Sequential extends LayersModel {
  add(layer: Layer): void;
}

export interface DenseConfig {
  units: number;
  activation: string;
  inputShape?: number[];
  kernelInitializer?: unknown;
  kernelRegularizer?: unknown;
  biasInitializer?: string;
}

export interface Tfjs {
  version: { tfjs: string };
  env(): { set(flag: string, value: boolean): void };
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  sequential(): Sequential;
  layers: { dense(config: DenseConfig): Layer };
  initializers: { glorotUniform(config: { seed: number }): unknown };
  regularizers: { l2(config: { l2: number }): unknown };
  train: { adam(learningRate: number): unknown };
  tensor1d(values: ArrayLike<number>, dtype?: 'float32' | 'int32'): Tensor;
  tensor2d(values: ArrayLike<number>, shape: [number, number]): Tensor;
  gather(x: Tensor, indices: Tensor): Tensor;
  tidy<T extends Tensor>(fn: () => T): T;
  loadLayersModel(handler: IOHandler): Promise<LayersModel>;
  io: {
    withSaveHandler(save: (artifacts: ModelArtifacts) => Promise<SaveResult>): IOHandler;
    fromMemory(artifacts: ModelArtifacts): IOHandler;
    CompositeArrayBuffer: { join(buffers?: ArrayBuffer | ArrayBuffer[]): ArrayBuffer };
  };
}

export const tf = require('@tensorflow/tfjs') as Tfjs;
