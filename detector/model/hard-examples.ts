/**
 * Hard-example replay for fitting the autoencoder. A baseline is mostly light, similar windows;
 * the rare heavy kinds of benign traffic (a bulk transfer, a load test, a keep-alive burst) are a
 * few dozen windows among thousands, too few for plain mean-squared-error training to learn, so
 * they alert later. From halfway through training, the fit windows the network reconstructs worst
 * are shown again several times per epoch. Attacks gain nothing from this: they are not in the
 * baseline, and their features lie outside anything it holds.
 */
import type { DenseNetwork } from './network';
import { permutation } from './random';

/** Share of fit windows replayed, and how many extra times per epoch. */
export const HARD_SHARE = 0.02;
export const HARD_REPEATS = 4;
/** Epochs between re-ranking the windows by error. */
export const HARD_REFRESH_EPOCHS = 5;

/** The `HARD_SHARE` of the `count` rows of `z` (row-major, normalised) with the largest reconstruction errors, each listed HARD_REPEATS times. */
export function hardExamples(network: DenseNetwork, z: Float64Array, count: number): Int32Array {
  const width = network.inputs;
  const out = network.forward(z, 0, count);
  const errors = new Float64Array(count);
  for (let r = 0; r < count; r++) {
    let sum = 0;
    for (let f = r * width; f < (r + 1) * width; f++) sum += (z[f] - out[f]) ** 2;
    errors[r] = sum;
  }
  const worst = Int32Array.from({ length: count }, (_, i) => i).sort((a, b) => errors[b] - errors[a]).subarray(0, Math.ceil(count * HARD_SHARE));
  const repeated = new Int32Array(worst.length * HARD_REPEATS);
  for (let k = 0; k < HARD_REPEATS; k++) repeated.set(worst, k * worst.length);
  return repeated;
}

/** One epoch's order: every fit row once and the hard ones again, shuffled with the seeded generator. */
export function epochOrder(count: number, hard: Int32Array, random: () => number): Int32Array {
  const order = permutation(count + hard.length, random);
  for (let i = 0; i < order.length; i++) if (order[i] >= count) order[i] = hard[order[i] - count];
  return order;
}
