/**
 * One seeded fit of the autoencoder to normalised rows: Adam on mean squared error, our own
 * seeded shuffle each epoch (fit()'s draws from an unseeded generator), and from halfway through
 * the rows it reconstructs worst replayed (hard-examples.ts). Training fits three of these: one
 * per fold for the out-of-fold errors the thresholds come from, and the model itself.
 */
import type { Logger } from 'pino';
import { buildAutoencoder, networkOf } from './autoencoder';
import { HARD_REFRESH_EPOCHS, epochOrder, hardExamples } from './hard-examples';
import type { LayersModel, Tfjs } from './tfjs';

export interface FitSettings {
  hiddenUnits: readonly number[];
  learningRate: number;
  batchSize: number;
  /** Fixed epochs; by default enough for about TARGET_STEPS optimiser steps. */
  epochs?: number;
}

/** Enough optimiser steps for these small networks to converge, however many rows there are. */
const TARGET_STEPS = 3000;

export function epochsFor(rows: number, settings: FitSettings): number {
  return settings.epochs ?? Math.min(200, Math.max(10, Math.ceil(TARGET_STEPS / Math.ceil(rows / settings.batchSize))));
}

/**
 * Fits a new network to `count` rows of `z` (row-major, FEATURE_COUNT wide); `seed` seeds its
 * initial weights, `random` the epochs' order. Resolves to the TF.js model and its last epoch's loss.
 */
export async function fitAutoencoder(
  tf: Tfjs, z: Float32Array, width: number, count: number, settings: FitSettings, seed: number, random: () => number, log?: Logger,
): Promise<{ tfModel: LayersModel; loss: number; epochs: number }> {
  const epochs = epochsFor(count, settings);
  const tfModel = buildAutoencoder(tf, width, settings.hiddenUnits, seed);
  tfModel.compile({ optimizer: tf.train.adam(settings.learningRate), loss: 'meanSquaredError' });
  const all = tf.tensor2d(z.subarray(0, count * width), [count, width]);
  const z64 = Float64Array.from(z.subarray(0, count * width));
  let loss = NaN;
  let hard: Int32Array = new Int32Array(0);
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const sinceHalf = epoch - Math.floor(epochs / 2);
      if (sinceHalf >= 0 && sinceHalf % HARD_REFRESH_EPOCHS === 0) hard = hardExamples(networkOf(tfModel), z64, count);
      const shuffled = tf.tidy(() => tf.gather(all, tf.tensor1d(epochOrder(count, hard, random), 'int32')));
      const history = await tfModel.fit(shuffled, shuffled, { epochs: 1, batchSize: settings.batchSize, shuffle: false, verbose: 0 });
      shuffled.dispose();
      loss = history.history.loss[0] as number;
      if (!Number.isFinite(loss)) throw new Error(`training diverged at epoch ${epoch + 1} (loss ${loss}); try a lower learning rate`);
      if ((epoch + 1) % 10 === 0) log?.debug({ epoch: epoch + 1, epochs, loss }, 'training');
    }
  } catch (err) {
    tfModel.dispose();
    throw err;
  } finally {
    all.dispose();
  }
  return { tfModel, loss, epochs };
}
