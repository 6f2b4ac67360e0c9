/**
 * The anomaly threshold, from the distribution of reconstruction errors on benign windows the
 * network was not fitted on. A plain quantile cannot reach a per-window rate below 1/N for N
 * calibration windows, and the targets are far below that; so the tail above a high quantile u
 * is fitted with an exponential (peaks over threshold, the generalised Pareto with shape 0, which
 * suits the light tail of squared errors of a bounded network): P(e > t) = p_u · exp(-(t - u)/β),
 * and t is solved for the target exceedance rate.
 */
export interface Threshold {
  value: number;
  method: 'exponential-tail';
  /** Wanted share of benign windows over the threshold (before the k-of-n persistence). */
  targetExceedance: number;
  /** Quantile where the fitted tail starts, its error value, and the mean excess β above it. */
  tailQuantile: number;
  tailStart: number;
  meanExcess: number;
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

/** Windows the fitted tail is made of: fewer make β (and the threshold) a guess. */
const TAIL_WINDOWS = 20;
const MIN_WINDOWS = 100;

/** The tail starts at the 0.99 quantile, or lower when there are too few windows for 20 above it. */
export function fitThreshold(errors: ArrayLike<number>, targetExceedance: number): Threshold {
  if (!(targetExceedance > 0 && targetExceedance < 1)) throw new RangeError(`target exceedance must be in (0, 1): ${targetExceedance}`);
  const sorted = Float64Array.from(errors).sort();
  if (sorted.length < MIN_WINDOWS) throw new Error(`${sorted.length} calibration windows are too few to fit the error tail (need ${MIN_WINDOWS}); record for longer`);
  const tailQuantile = Math.min(0.99, 1 - TAIL_WINDOWS / sorted.length);
  const tailStart = quantile(sorted, tailQuantile);
  let excess = 0;
  let over = 0;
  for (let i = sorted.length - 1; i >= 0 && sorted[i] > tailStart; i--) {
    excess += sorted[i] - tailStart;
    over++;
  }
  const pu = over / sorted.length;
  // Ties at the tail's start (many identical windows) leave no excess: fall back to the largest error.
  const meanExcess = over > 0 ? excess / over : 0;
  const fitted = pu > targetExceedance && meanExcess > 0 ? tailStart + meanExcess * Math.log(pu / targetExceedance) : sorted[sorted.length - 1];
  const value = Math.max(fitted, Number.MIN_VALUE);
  let calibrationOver = 0;
  for (let i = sorted.length - 1; i >= 0 && sorted[i] > value; i--) calibrationOver++;
  return {
    value, method: 'exponential-tail', targetExceedance, tailQuantile, tailStart, meanExcess, calibrationWindows: sorted.length, calibrationOver,
    quantiles: { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), p999: quantile(sorted, 0.999), max: sorted[sorted.length - 1] },
  };
}
