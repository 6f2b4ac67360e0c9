/**
 * The autoencoder in TF.js: built with seeded initialisers so training is repeatable, and read
 * back into plain arrays (network.ts) for scoring.
 */
import { DenseNetwork, type Activation, type DenseLayer } from './network';
import type { LayersModel, Sequential, Tfjs } from './tfjs';

/**
 * L2 penalty on the first layer's weights. Without it, a feature that is nearly always zero in
 * training (RSTs: a handful of windows, replayed as hard examples) got the largest input weights
 * of all, and one that never varies kept its random initial ones; a benign client whose three
 * connections were reset then scored 30× its threshold, the error spread over bytes and ACK
 * features, and stayed over it for half a minute as the RSTs decayed in its histories (ten false
 * detections in one eval:model run). Penalised, weights follow only what the data supports: the
 * same window scored 1.2× (2.2× at 1e-4), its explanation the RST features, and the next windows
 * were normal; the attacks' peaks stayed at 5× and more.
 */
const INPUT_L2 = 1e-3;

/** inputs → hidden… (tanh) → inputs (linear): a bottleneck in the middle learns what normal windows have in common. */
export function buildAutoencoder(tf: Tfjs, inputs: number, hiddenUnits: readonly number[], seed: number): Sequential {
  if (hiddenUnits.length === 0 || hiddenUnits.some((u) => !Number.isInteger(u) || u < 1)) throw new RangeError(`hidden units must be positive integers: ${hiddenUnits.join(',')}`);
  const model = tf.sequential();
  [...hiddenUnits, inputs].forEach((units, i) => model.add(tf.layers.dense({
    units,
    activation: i < hiddenUnits.length ? 'tanh' : 'linear',
    kernelInitializer: tf.initializers.glorotUniform({ seed: seed * 1000 + i }),
    ...(i === 0 ? { kernelRegularizer: tf.regularizers.l2({ l2: INPUT_L2 }) } : {}),
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
