/**
 * The trained autoencoder's forward pass in plain Float32Array loops. TF.js is built for big
 * batches on big layers; for a 56→16→8→16→56 network the per-call overhead of tensors dominates,
 * and this runs several times faster (bench/eval-model.ts measures it, a unit test checks it
 * against tf predict).
 */
export type Activation = 'tanh' | 'relu' | 'linear';

export interface DenseLayer {
  inputs: number;
  units: number;
  /** inputs × units, row-major: the layout of a TF.js Dense kernel. */
  kernel: Float32Array;
  bias: Float32Array;
  activation: Activation;
}

export class DenseNetwork {
  readonly inputs: number;
  readonly outputs: number;
  /** Float64 activations: no rounding on every store, and one array type for the JIT. */
  private readonly buffers: Float64Array[];

  constructor(readonly layers: readonly DenseLayer[]) {
    if (layers.length === 0) throw new Error('a network needs at least one layer');
    for (let i = 1; i < layers.length; i++) {
      if (layers[i].inputs !== layers[i - 1].units) throw new Error(`layer ${i} takes ${layers[i].inputs} inputs but layer ${i - 1} has ${layers[i - 1].units} units`);
    }
    for (const [i, l] of layers.entries()) {
      if (l.kernel.length !== l.inputs * l.units || l.bias.length !== l.units) throw new Error(`layer ${i}: kernel/bias sizes do not match ${l.inputs}×${l.units}`);
    }
    this.inputs = layers[0].inputs;
    this.outputs = layers[layers.length - 1].units;
    this.buffers = layers.map((l) => new Float64Array(l.units));
  }

  /** The network's output for one input row (a view valid until the next call). */
  forward(input: Float64Array, offset = 0): Float64Array {
    let x = input;
    let at = offset;
    for (let li = 0; li < this.layers.length; li++) {
      const { inputs, units, kernel, bias, activation } = this.layers[li];
      const out = this.buffers[li];
      for (let j = 0; j < units; j++) out[j] = bias[j];
      for (let i = 0; i < inputs; i++) {
        const xi = x[at + i];
        if (xi === 0) continue;
        const k = i * units;
        for (let j = 0; j < units; j++) out[j] += xi * kernel[k + j];
      }
      if (activation === 'tanh') for (let j = 0; j < units; j++) out[j] = Math.tanh(out[j]);
      else if (activation === 'relu') for (let j = 0; j < units; j++) out[j] = out[j] > 0 ? out[j] : 0;
      x = out;
      at = 0;
    }
    return x;
  }
}
