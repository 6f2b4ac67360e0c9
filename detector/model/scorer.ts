/**
 * What the detector worker calls for every SensorTick: features per source-window, the model's
 * reconstruction error, k-of-n persistence per source, and a ModelDetection (rule id
 * `model.anomaly`) for every anomalous window, with the features that contribute most to its
 * error. Pure and synchronous; state per sensor and source is bounded.
 */
import type { FeatureContribution } from '../../common/alert-events';
import type { SensorTick, SourceWindow } from '../../common/sensor-tick';
import { featuresOf } from '../features';
import type { AnomalyModel } from './anomaly-model';
import { KOfN, checkKOfN } from './persistence';
import { FEATURE_NAMES } from './schema';
import { FEATURE_COUNT, FeatureExtractor, type InvalidWindowError } from './source-features';

export const MODEL_RULE_ID = 'model.anomaly';

/**
 * The threshold is set for 1e-4 of benign windows. On the lab's real traffic the benign sources'
 * over-threshold windows mostly added up to under 5.4× it over five windows (a load generator's
 * first window once reached 10.7×), the one- and two-second UDP floods and UDP scans to 12-29×
 * (bench/eval-model.ts reports both).
 */
export const DEFAULT_CERTAIN_FACTOR = 8;

export interface ModelDetection {
  ruleId: typeof MODEL_RULE_ID;
  /** The model that scored it (its directory name). */
  modelId: string;
  sensor: string;
  scope: 'source';
  /** The source address. */
  key: string;
  /** Reconstruction error of this window, and the model's threshold. */
  score: number;
  threshold: number;
  /** Windows over the threshold among the last n, and the k and n asked for. */
  over: number;
  k: number;
  n: number;
  /** The sensor's window id. */
  windowId: number;
  /** Start of the episode's earliest over-threshold window, and end of this window (wall-clock ms). */
  firstWindowMs: number;
  lastWindowMs: number;
  onset: boolean;
  /** The window's rule features (detector/features.ts names). */
  features: Record<string, number>;
  /** The model features with the largest shares of the score, largest first. */
  explanation: FeatureContribution[];
}

export interface ScorerOptions {
  k: number;
  n: number;
  /**
   * An over-threshold window is anomalous without k of n when the scores of the source's
   * over-threshold windows among the last n, in multiples of the threshold, add up to this
   * (default DEFAULT_CERTAIN_FACTOR): one window this far over, or two half as far. Fast scans
   * and floods often fit in one or two windows.
   */
  certainFactor?: number;
  /** Sources kept per sensor (history and persistence). */
  maxSources?: number;
  /** Contributions listed per detection. */
  topFeatures?: number;
  /** Told about every window that cannot be scored (NaN, Inf, negative counts); it is skipped. */
  onInvalidWindow?: (error: InvalidWindowError) => void;
  /**
   * Sources first seen within this long of the scorer's first tick from a sensor (default 60 s)
   * were active before it started, but have no history here yet: their windows of the first
   * WARMUP_MS are scored, not judged, so a detector restart does not make every known source look
   * new. Sources that appear later are judged from their first window (their first window is
   * what the model learned new sources look like).
   */
  graceMs?: number;
}

export interface ScorerStats {
  windows: number;
  invalidWindows: number;
  detections: number;
}

const RULE_FEATURES = featuresOf('source').map((f) => f.name);
/** Sweep idle state once per minute of sensor time. */
const SWEEP_EVERY_MS = 60_000;
export const DEFAULT_GRACE_MS = 60_000;
/** The shortest history time scale: after it, a source's history looks like the ones trained on. */
const WARMUP_MS = 5_000;

interface SensorState {
  kofn: KOfN;
  sweptMs: number;
  /** End of the sensor's first tick seen here, and until when each source seen in the grace time goes unjudged. */
  startMs: number;
  warming: Map<string, number>;
}

export class AnomalyScorer {
  private readonly extractor: FeatureExtractor;
  /** Per sensor (window ids are per sensor): persistence, and when its idle state was last swept. */
  private readonly sensors = new Map<string, SensorState>();
  private readonly errors = new Float64Array(FEATURE_COUNT);
  private scores = new Float32Array(0);
  private last: { sources: SourceWindow[]; scores: Float32Array } = { sources: [], scores: this.scores };
  private readonly counters: ScorerStats = { windows: 0, invalidWindows: 0, detections: 0 };

  constructor(private model: AnomalyModel, private readonly opts: ScorerOptions) {
    checkKOfN(opts.k, opts.n);
    this.extractor = new FeatureExtractor({ maxSources: opts.maxSources });
  }

  get modelId(): string {
    return this.model.id;
  }

  get threshold(): number {
    return this.model.threshold;
  }

  /** Swaps in a newer model; source histories carry over (the feature schema is the same), persistence restarts. */
  setModel(model: AnomalyModel): void {
    this.model = model;
    this.sensors.clear();
  }

  score(tick: SensorTick): ModelDetection[] {
    const x = this.extractor.extract(tick);
    for (const err of x.invalid) {
      this.counters.invalidWindows++;
      this.opts.onInvalidWindow?.(err);
    }
    let sensor = this.sensors.get(tick.sensor);
    if (!sensor) {
      const kofn = new KOfN(this.opts.k, this.opts.n, this.opts.maxSources, this.opts.certainFactor ?? DEFAULT_CERTAIN_FACTOR);
      this.sensors.set(tick.sensor, (sensor = { kofn, sweptMs: tick.endMs, startMs: tick.endMs, warming: new Map() }));
    }
    const kofn = sensor.kofn;
    if (this.scores.length < x.count) this.scores = new Float32Array(x.count * 2);
    const threshold = this.model.threshold;
    const lengthMs = tick.endMs - tick.startMs;
    const detections: ModelDetection[] = [];
    this.model.scoreAll(x.rows, x.count, this.scores);
    for (let i = 0; i < x.count; i++) {
      const score = this.scores[i];
      const judged = this.judged(sensor, x.sources[i].src, tick.endMs);
      const p = kofn.update(x.sources[i].src, tick.window, judged && score > threshold, tick.startMs, lengthMs, judged ? score / threshold : 0);
      if (!p.anomalous) continue;
      const features: Record<string, number> = {};
      for (let f = 0; f < RULE_FEATURES.length; f++) features[RULE_FEATURES[f]] = x.raw[i * FEATURE_COUNT + f];
      detections.push({
        ruleId: MODEL_RULE_ID, modelId: this.model.id, sensor: tick.sensor, scope: 'source', key: x.sources[i].src,
        score, threshold, over: p.over, k: this.opts.k, n: this.opts.n, windowId: tick.window,
        firstWindowMs: p.firstWindowMs, lastWindowMs: tick.endMs, onset: p.onset, features, explanation: this.explain(x.rows, x.raw, i),
      });
    }
    this.counters.windows += x.count;
    this.counters.detections += detections.length;
    this.last = { sources: x.sources, scores: this.scores.subarray(0, x.count) };
    if (tick.endMs - sensor.sweptMs >= SWEEP_EVERY_MS) {
      sensor.sweptMs = tick.endMs;
      this.extractor.sweep(tick.endMs);
      kofn.sweep(tick.window);
      if (tick.endMs - sensor.startMs > (this.opts.graceMs ?? DEFAULT_GRACE_MS)) sensor.warming.clear();
    }
    return detections;
  }

  private judged(sensor: SensorState, src: string, endMs: number): boolean {
    const until = sensor.warming.get(src);
    if (until !== undefined) return endMs >= until;
    const inGrace = endMs - sensor.startMs < (this.opts.graceMs ?? DEFAULT_GRACE_MS);
    if (!inGrace || sensor.warming.size >= (this.opts.maxSources ?? Infinity)) return true;
    sensor.warming.set(src, endMs + WARMUP_MS);
    return false;
  }

  /** The sources and scores of the last score() call (valid until the next one), for evaluation. */
  lastScores(): { sources: SourceWindow[]; scores: Float32Array } {
    return this.last;
  }

  stats(): ScorerStats {
    return { ...this.counters };
  }

  private explain(rows: Float32Array, raw: Float64Array, i: number): FeatureContribution[] {
    const total = this.model.featureErrors(rows, i, this.errors) * FEATURE_COUNT;
    const order = Array.from({ length: FEATURE_COUNT }, (_, f) => f).sort((a, b) => this.errors[b] - this.errors[a]);
    return order.slice(0, this.opts.topFeatures ?? 5).map((f) => ({
      feature: FEATURE_NAMES[f], value: raw[i * FEATURE_COUNT + f], share: total > 0 ? this.errors[f] / total : 0,
    }));
  }
}
