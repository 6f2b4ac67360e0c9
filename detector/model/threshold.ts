/**
 * The anomaly threshold, from the distribution of reconstruction errors on benign windows the
 * network was not fitted on. A plain quantile cannot reach a per-window rate below 1/N for N
 * calibration windows, and the targets are far below that; so the tail above a high quantile u
 * is fitted with a generalised Pareto distribution (peaks over threshold):
 * P(e > t) = p_u · (1 + ξ (t - u) / σ)^(-1/ξ), and t is solved for the target exceedance rate.
 *
 * The shape ξ is estimated from the tail by probability-weighted moments (Hosking & Wallis 1987)
 * and kept within [0, 0.5]. An exponential tail (ξ = 0) alone proved optimistic on real traffic:
 * the rare heavy benign windows (bulk transfers, load tests) make the tail heavier than
 * exponential, and held-apart runs then saw ten times more windows over the threshold than
 * targeted. A negative estimate (a bounded tail) would extrapolate lower still, so it is not used.
 */
export interface Threshold {
  value: number;
  method: 'generalised-pareto-tail';
  /** Wanted share of benign windows over the threshold (before the k-of-n persistence). */
  targetExceedance: number;
  /** Quantile where the fitted tail starts, its error value, the mean excess above it, and the fitted shape and scale. */
  tailQuantile: number;
  tailStart: number;
  meanExcess: number;
  shape: number;
  scale: number;
  calibrationWindows: number;
  /** Calibration windows over the threshold (expected about targetExceedance × calibrationWindows). */
  calibrationOver: number;
  quantiles: { p50: number; p99: number; p999: number; max: number };
}

function quantile(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Windows the fitted tail is made of: fewer make its parameters (and the threshold) a guess. */
const TAIL_WINDOWS = 20;
const MIN_WINDOWS = 100;
const MAX_SHAPE = 0.5;

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

/** The tail starts at the 0.99 quantile, or lower when there are too few windows for 20 above it. */
export function fitThreshold(errors: ArrayLike<number>, targetExceedance: number): Threshold {
  if (!(targetExceedance > 0 && targetExceedance < 1)) throw new RangeError(`target exceedance must be in (0, 1): ${targetExceedance}`);
  const sorted = Float64Array.from(errors).sort();
  if (sorted.length < MIN_WINDOWS) throw new Error(`${sorted.length} calibration windows are too few to fit the error tail (need ${MIN_WINDOWS}); record for longer`);
  const tailQuantile = Math.min(0.99, 1 - TAIL_WINDOWS / sorted.length);
  const tailStart = quantile(sorted, tailQuantile);
  const first = sorted.findIndex((e) => e > tailStart);
  const excesses = first < 0 ? new Float64Array(0) : sorted.slice(first).map((e) => e - tailStart);
  const pu = excesses.length / sorted.length;
  const meanExcess = excesses.length > 0 ? excesses.reduce((a, b) => a + b, 0) / excesses.length : 0;
  const { shape, scale } = excesses.length > 1 ? fitPareto(excesses) : { shape: 0, scale: meanExcess };
  const ratio = pu / targetExceedance;
  // Ties at the tail's start (many identical windows) leave no excess: fall back to the largest error.
  const fitted = ratio > 1 && scale > 0
    ? tailStart + (shape > 1e-9 ? (scale / shape) * (ratio ** shape - 1) : scale * Math.log(ratio))
    : sorted[sorted.length - 1];
  const value = Math.max(fitted, Number.MIN_VALUE);
  let calibrationOver = 0;
  for (let i = sorted.length - 1; i >= 0 && sorted[i] > value; i--) calibrationOver++;
  return {
    value, method: 'generalised-pareto-tail', targetExceedance, tailQuantile, tailStart, meanExcess, shape, scale, calibrationWindows: sorted.length, calibrationOver,
    quantiles: { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), p999: quantile(sorted, 0.999), max: sorted[sorted.length - 1] },
  };
}
