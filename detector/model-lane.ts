/**
 * The anomaly model inside a detector: the newest valid model of a directory (hot swapped), run
 * over every tick, its detections turned into the same Detection the rules produce, so incidents,
 * alerts and blocks treat both alike. Alert-only unless blocking on the model is configured.
 * With no model, or a broken one, the detector goes on with its rules; operators hear of it once.
 */
import type { Logger } from 'pino';
import type { SensorTick } from '../common/sensor-tick';
import type { Detection } from './rules/engine';
import type { BlockAction } from './rules/rule';
import { AnomalyScorer, MODEL_RULE_ID, type ModelDetection } from './model/scorer';
import { ModelWatcher, type ModelNotice } from './model/watcher';

export interface ModelLaneOptions {
  /** A directory of models (`xdp-ids model train --out DIR`). */
  dir: string;
  log: Logger;
  /** Anomalous when k of the last n windows are over the threshold. */
  k?: number;
  n?: number;
  /** Block anomalous sources (opt-in). */
  block?: BlockAction;
  /** A model is being trained into `dir`: report it missing only after this long. */
  missingAfterMs?: number;
  onNotice: (notice: ModelNotice) => void;
}

export function modelDetection(m: ModelDetection, windowMs: number, block?: BlockAction): Detection {
  const top = m.explanation.slice(0, 3).map((c) => `${c.feature} ${(c.share * 100).toFixed(0)}%`).join(', ');
  return {
    ruleId: MODEL_RULE_ID, ruleVersion: m.modelId, title: 'Traffic unlike this host\'s baseline',
    description: `The anomaly model cannot reconstruct this source's windows (${m.over} of the last ${m.n} over its threshold${m.certain ? `, far enough over to need no more: this one ${(m.score / m.threshold).toFixed(1)}×` : ''}); most of the error is in ${top}.`,
    severity: 'medium', mitre: [], tags: ['anomaly'], actions: { alert: true, ...(block ? { block } : {}) },
    sensor: m.sensor, scope: 'source', groupBy: 'src', key: m.key,
    when: `anomaly_score > ${m.threshold.toPrecision(4)} in ${m.k} of ${m.n} windows`, windowMs: windowMs * m.n, forMs: 0,
    features: { ...m.features, anomaly_score: m.score, anomaly_threshold: m.threshold },
    conditions: [{ expression: `anomaly_score > ${m.threshold.toPrecision(4)}`, value: m.score, threshold: m.threshold, holds: true }],
    firstWindowMs: m.firstWindowMs, lastWindowMs: m.lastWindowMs, window: m.windowId, onset: m.onset, explanation: m.explanation,
  };
}

export class ModelLane {
  private scorer?: AnomalyScorer;

  private constructor(private readonly opts: ModelLaneOptions, private readonly watcher: ModelWatcher) {}

  static async start(opts: ModelLaneOptions): Promise<ModelLane> {
    let lane: ModelLane | undefined;
    const watcher = await ModelWatcher.start({
      dir: opts.dir, log: opts.log, onNotice: opts.onNotice, missingAfterMs: opts.missingAfterMs,
      onModel: (model) => lane?.use(model),
    });
    lane = new ModelLane(opts, watcher);
    if (watcher.current) lane.use(watcher.current);
    return lane;
  }

  get modelId(): string | undefined {
    return this.scorer?.modelId;
  }

  /** The model's detections for a tick; none without a model. A scoring failure costs the tick's model verdicts, never the rules'. */
  detect(tick: SensorTick): Detection[] {
    if (!this.scorer) return [];
    try {
      return this.scorer.score(tick).map((m) => modelDetection(m, tick.endMs - tick.startMs, this.opts.block));
    } catch (err) {
      this.opts.log.error({ err, sensor: tick.sensor, window: tick.window }, 'anomaly model failed on a tick');
      return [];
    }
  }

  /** The scores of the last tick detect() saw, and the threshold they were judged against. */
  lastScores(): { scores: Float32Array; thresholds: Float32Array } | undefined {
    return this.scorer && this.scorer.lastScores();
  }

  close(): void {
    this.watcher.close();
  }

  private use(model: NonNullable<ModelWatcher['current']>): void {
    if (this.scorer) {
      this.scorer.setModel(model);
      return;
    }
    this.scorer = new AnomalyScorer(model, {
      k: this.opts.k ?? 3, n: this.opts.n ?? 5,
      onInvalidWindow: (e) => this.opts.log.warn({ err: e.message }, 'window not scored by the anomaly model'),
    });
  }
}
