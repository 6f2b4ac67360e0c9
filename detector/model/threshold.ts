/**
 * A threshold on reconstruction errors, from benign windows the network was not fitted on. A
 * plain quantile cannot reach a per-window rate below 1/N for N calibration windows, and the
 * targets are far below that; so the tail above a high quantile u is fitted with a generalised
 * Pareto distribution (peaks over threshold): P(e > t) = p_u · (1 + ξ (t - u) / σ)^(-1/ξ), and t
 * is solved for the target exceedance rate.
 *
 * The shape ξ is estimated from the tail by probability-weighted moments (Hosking & Wallis 1987)
 * and kept within [0, 0.5]. An exponential tail (ξ = 0) alone proved optimistic on real traffic:
 * the rare heavy benign windows (bulk transfers, load tests) make the tail heavier than
 * exponential. A negative estimate (a bounded tail) would extrapolate lower still, so it is not used.
 *
 * A tail of a few dozen windows extrapolated to 1e-4 is a guess with a wide error, and a threshold
 * that lands on the low side of it lets through many times the target (eval:model's runs ranged
 * from 0 to 2.7e-4 false positives per window). So the threshold is an upper confidence bound:
 * the fit is repeated on block-bootstrap resamples of the calibration windows and the threshold is
 * the `confidence` quantile of the resampled thresholds. Windows of one block (a source over a few
 * seconds) are alike, so blocks are resampled whole: resampling single windows would count each
 * burst as many independent observations and understate the error.
 */
export interface Threshold {
  /** The threshold used: the upper confidence bound of the error at the target exceedance. */
  value: number;
  method: 'generalised-pareto-tail';
  /** Wanted share of benign windows over the threshold (before the k-of-n persistence). */
  targetExceedance: number;
  /** The fit's own estimate (on all calibration windows), before its uncertainty is added. */
  estimate: number;
  /** Confidence of `value`, and the block-bootstrap resamples it was taken from. */
  confidence: number;
  resamples: number;
  /** Quantile where the fitted tail starts, its error value, the mean excess above it, and the fitted shape and scale. */
  tailQuantile: number;
  tailStart: number;
  meanExcess: number;
  shape: number;
  scale: number;
  calibrationWindows: number;
  calibrationBlocks: number;
  /** Calibration windows over the threshold (expected at most about targetExceedance × calibrationWindows). */
  calibrationOver: number;
  quantiles: { p50: number; p99: number; p999: number; max: number };
}

export interface ThresholdOptions {
  targetExceedance: number;
  confidence: number;
  resamples: number;
  random: () => number;
}

/** Windows the fitted tail is made of: fewer make its parameters (and the threshold) a guess. */
const TAIL_WINDOWS = 20;
export const MIN_CALIBRATION_WINDOWS = 100;
const MAX_SHAPE = 0.5;

function quantile(sorted: ArrayLike<number>, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Shape and scale of a generalised Pareto fit to excesses (ascending) by probability-weighted moments. */
function fitPareto(excesses: Float64Array): { shape: number; scale: number } {
  const n = excesses.length;
  let a0 = 0;
  let a1 = 0;
  for (let i = 0; i < n; i++) {
    a0 += excesses[i];
    a1 += (1 - (i + 1 - 0.35) / n) * excesses[i];
  }
  a0 /= n;
  a1 /= n;
  const shape = Math.min(MAX_SHAPE, Math.max(0, 2 - a0 / (a0 - 2 * a1)));
  // Scale from the mean excess, which for a GPD is σ / (1 - ξ): consistent with the clamped shape.
  return { shape, scale: a0 * (1 - shape) };
}

interface TailFit {
  value: number;
  tailQuantile: number;
  tailStart: number;
  meanExcess: number;
  shape: number;
  scale: number;
}

/** The tail starts at the 0.99 quantile, or lower when there are too few windows for 20 above it. */
function fitTail(sorted: Float64Array, targetExceedance: number): TailFit {
  const tailQuantile = Math.min(0.99, 1 - TAIL_WINDOWS / sorted.length);
  const tailStart = quantile(sorted, tailQuantile);
  let first = sorted.length;
  while (first > 0 && sorted[first - 1] > tailStart) first--;
  const excesses = sorted.slice(first).map((e) => e - tailStart);
  const pu = excesses.length / sorted.length;
  const meanExcess = excesses.length > 0 ? excesses.reduce((a, b) => a + b, 0) / excesses.length : 0;
  const { shape, scale } = excesses.length > 1 ? fitPareto(excesses) : { shape: 0, scale: meanExcess };
  const ratio = pu / targetExceedance;
  // Ties at the tail's start (many identical windows) leave no excess: fall back to the largest error.
  const fitted = ratio > 1 && scale > 0
    ? tailStart + (shape > 1e-9 ? (scale / shape) * (ratio ** shape - 1) : scale * Math.log(ratio))
    : sorted[sorted.length - 1];
  return { value: Math.max(fitted, Number.MIN_VALUE), tailQuantile, tailStart, meanExcess, shape, scale };
}

/** Windows grouped by block: the windows of block b are errors[order[start[b]] .. order[start[b + 1] - 1]]. */
function groupByBlock(blocks: Int32Array): { order: Int32Array; start: Int32Array; count: number } {
  const ids = new Map<number, number>();
  for (const b of blocks) if (!ids.has(b)) ids.set(b, ids.size);
  const start = new Int32Array(ids.size + 1);
  for (const b of blocks) start[ids.get(b)! + 1]++;
  for (let i = 0; i < ids.size; i++) start[i + 1] += start[i];
  const next = start.slice(0, ids.size);
  const order = new Int32Array(blocks.length);
  blocks.forEach((b, i) => (order[next[ids.get(b)!]++] = i));
  return { order, start, count: ids.size };
}

/** Threshold values fitted to `resamples` block-bootstrap resamples of the errors. */
function resampledValues(errors: Float64Array, blocks: Int32Array, opts: ThresholdOptions): Float64Array {
  const { order, start, count } = groupByBlock(blocks);
  const values = new Float64Array(opts.resamples);
  let buffer = new Float64Array(errors.length * 2);
  for (let r = 0; r < opts.resamples; r++) {
    let n = 0;
    for (let k = 0; k < count; k++) {
      const b = Math.floor(opts.random() * count);
      const size = start[b + 1] - start[b];
      if (n + size > buffer.length) {
        const grown = new Float64Array((n + size) * 2);
        grown.set(buffer.subarray(0, n));
        buffer = grown;
      }
      for (let i = start[b]; i < start[b + 1]; i++) buffer[n++] = errors[order[i]];
    }
    const sample = buffer.slice(0, n).sort();
    values[r] = n >= MIN_CALIBRATION_WINDOWS ? fitTail(sample, opts.targetExceedance).value : sample[n - 1];
  }
  return values.sort();
}

/**
 * The threshold of calibration errors, `blocks[i]` naming the block of window i (windows of one
 * source close in time, resampled together).
 */
export function fitThreshold(errors: Float64Array, blocks: Int32Array, opts: ThresholdOptions): Threshold {
  const { targetExceedance, confidence } = opts;
  if (!(targetExceedance > 0 && targetExceedance < 1)) throw new RangeError(`target exceedance must be in (0, 1): ${targetExceedance}`);
  if (!(confidence >= 0.5 && confidence < 1)) throw new RangeError(`confidence must be in [0.5, 1): ${confidence}`);
  if (blocks.length !== errors.length) throw new Error(`${errors.length} errors but ${blocks.length} block ids`);
  if (errors.length < MIN_CALIBRATION_WINDOWS) throw new Error(`${errors.length} calibration windows are too few to fit the error tail (need ${MIN_CALIBRATION_WINDOWS}); record for longer`);
  const sorted = Float64Array.from(errors).sort();
  const tail = fitTail(sorted, targetExceedance);
  const resampled = resampledValues(errors, blocks, opts);
  const value = Math.max(tail.value, quantile(resampled, confidence));
  let calibrationOver = 0;
  for (let i = sorted.length - 1; i >= 0 && sorted[i] > value; i--) calibrationOver++;
  return {
    value, method: 'generalised-pareto-tail', targetExceedance, estimate: tail.value, confidence, resamples: opts.resamples,
    tailQuantile: tail.tailQuantile, tailStart: tail.tailStart, meanExcess: tail.meanExcess, shape: tail.shape, scale: tail.scale,
    calibrationWindows: sorted.length, calibrationBlocks: new Set(blocks).size, calibrationOver,
    quantiles: { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), p999: quantile(sorted, 0.999), max: sorted[sorted.length - 1] },
  };
}
