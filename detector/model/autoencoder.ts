/**
 * The autoencoder in TF.js: built with seeded initialisers so training is repeatable, and read
 * back into plain arrays (network.ts) for scoring.
 */
import { DenseNetwork, type Activation, type DenseLayer } from './network';
import type { LayersModel, Sequential, Tfjs } from './tfjs';

/** inputs → hidden… (tanh) → inputs (linear): a bottleneck in the middle learns what normal windows have in common. */
export function buildAutoencoder(tf: Tfjs, inputs: number, hiddenUnits: readonly number[], seed: number): Sequential {
  if (hiddenUnits.length === 0 || hiddenUnits.some((u) => !Number.isInteger(u) || u < 1)) throw new RangeError(`hidden units must be positive integers: ${hiddenUnits.join(',')}`);
  const model = tf.sequential();
  [...hiddenUnits, inputs].forEach((units, i) => model.add(tf.layers.dense({
    units,
    activation: i < hiddenUnits.length ? 'tanh' : 'linear',
    kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 1000 + i }),
    biasInitializer: 'zeros',
    ...(i === 0 ? { inputShape: [inputs] } : {}),
  })));
  return model;
}

const ACTIVATIONS: readonly string[] = ['tanh', 'relu', 'linear'];

/** The Dense layers' weights as plain arrays; refuses other layers, activations and non-finite weights. */
export function networkOf(model: LayersModel): DenseNetwork {
  const layers: DenseLayer[] = model.layers.map((layer, i) => {
    const config = layer.getConfig() as { activation?: string; useBias?: boolean };
    if (layer.getClassName() !== 'Dense') throw new Error(`layer ${i} is a ${layer.getClassName()}; only Dense layers are supported`);
    const activation = config.activation ?? 'linear';
    if (!ACTIVATIONS.includes(activation)) throw new Error(`layer ${i} has activation ${activation}; supported: ${ACTIVATIONS.join(', ')}`);
    const [kernelTensor, biasTensor] = layer.getWeights();
    const [inputs, units] = kernelTensor.shape as [number, number];
    const kernel = Float32Array.from(kernelTensor.dataSync());
    const bias = biasTensor ? Float32Array.from(biasTensor.dataSync()) : new Float32Array(units);
    for (const [what, values] of [['kernel', kernel], ['bias', bias]] as const) {
      const bad = values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new Error(`layer ${i} ${what} has a non-finite weight (${values[bad]} at ${bad})`);
    }
    return { inputs, units, kernel, bias, activation: activation as Activation };
  });
  return new DenseNetwork(layers);
}
