/**
 * Thresholds per traffic-volume band. How well the network reconstructs a window depends on how
 * much traffic is behind it: windows of a few packets (a DNS query, a page load) are the bulk of
 * any baseline and are learnt well; heavy traffic (bulk transfers, load tests) is a few dozen
 * windows and its errors run higher. One threshold for all is set by whichever makes up the
 * calibration tail and is wrong for the others; so each band has its own, fitted to the
 * out-of-fold errors of that band's windows.
 *
 * A window's volume is its source's packet rate: in the window, or over the source's last seconds
 * (its 5 s history), whichever is higher. A host's light windows right after a bulk transfer carry
 * the transfer in their history features and are reconstructed like heavy ones; by the window's
 * packets alone they fell among the light windows, the fewest of which are like them, and came
 * out far over the light band's threshold in the demo. Rates, not counts, so that a tick the
 * sensor cut short or delivered late (source-features.ts) falls in the same band.
 *
 * A band with too few windows for a tail fit of its own takes the threshold fitted to all
 * windows, or the highest out-of-fold error of its own windows when that is higher: at least that
 * much is normal for the band.
 */
import { FEATURE_NAMES } from './schema';
import { fitThreshold, MIN_CALIBRATION_WINDOWS, type Threshold, type ThresholdOptions } from './threshold';

export const VOLUME_BANDS = [
  { name: 'low', minPps: 0 },
  { name: 'mid', minPps: 4 },
  { name: 'high', minPps: 32 },
] as const;

export type BandName = (typeof VOLUME_BANDS)[number]['name'];

export interface BandThreshold {
  band: BandName;
  /** Packets per second a window's volume needs to be in this band. */
  minPps: number;
  threshold: Threshold;
  /** Fitted to the band's own windows, or to all windows (too few of the band's own). */
  fittedTo: 'band' | 'all windows';
  /** Calibration windows of the band. */
  windows: number;
}

export interface VolumeThresholds {
  bands: BandThreshold[];
  /** Fitted to every calibration window (what bands with too few of their own fall back on). */
  pooled: Threshold;
}

const WIDTH = FEATURE_NAMES.length;
const PPS = FEATURE_NAMES.indexOf('pps');
const RECENT_PPS = FEATURE_NAMES.indexOf('pps@5s');

/** The volume of row `i` of raw (untransformed) feature rows: packets per second, in the window or over the last seconds. */
export function volumeOf(raw: Float64Array, i: number): number {
  return Math.max(raw[i * WIDTH + PPS], raw[i * WIDTH + RECENT_PPS]);
}

/** Index into VOLUME_BANDS of a window of this volume. */
export function bandOf(volume: number): number {
  return volume >= VOLUME_BANDS[2].minPps ? 2 : volume >= VOLUME_BANDS[1].minPps ? 1 : 0;
}

/**
 * Thresholds per band from calibration errors, each window's volume, and its block (threshold.ts).
 * The target is shared out: each band may have an equal part of `opts.targetExceedance` of all
 * windows over its threshold, so a band of few windows is set for a larger share of its own.
 */
export function fitVolumeThresholds(errors: Float64Array, volumes: ArrayLike<number>, blocks: Int32Array, opts: ThresholdOptions): VolumeThresholds {
  const pooled = fitThreshold(errors, blocks, opts);
  const bands = VOLUME_BANDS.map(({ name, minPps }, b): BandThreshold => {
    const mine: number[] = [];
    for (let i = 0; i < errors.length; i++) if (bandOf(volumes[i]) === b) mine.push(i);
    if (mine.length >= MIN_CALIBRATION_WINDOWS) {
      const share = Math.min(0.5, opts.targetExceedance * errors.length / (VOLUME_BANDS.length * mine.length));
      const threshold = fitThreshold(Float64Array.from(mine, (i) => errors[i]), Int32Array.from(mine, (i) => blocks[i]), { ...opts, targetExceedance: share });
      return { band: name, minPps, threshold, fittedTo: 'band', windows: mine.length };
    }
    const highest = mine.reduce((max, i) => Math.max(max, errors[i]), 0);
    const threshold = highest > pooled.value ? { ...pooled, value: highest, calibrationOver: 0 } : pooled;
    return { band: name, minPps, threshold, fittedTo: 'all windows', windows: mine.length };
  });
  return { bands, pooled };
}
