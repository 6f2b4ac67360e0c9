/**
 * `model evaluate`: scores recorded benign and attack windows with a model, through the same
 * AnomalyScorer the detector uses, and counts what a SOC would see: detections per benign
 * window (false positives) and the share of attack sources detected, with the delay.
 */
import type { SensorTick } from '../../common/sensor-tick';
import type { AnomalyModel } from './anomaly-model';
import { readWindows } from './records';
import { AnomalyScorer } from './scorer';

export interface SetResult {
  windows: number;
  /** Windows scoring over the threshold (before persistence). */
  windowsOver: number;
  /** Anomalous windows (k of n held): detections. */
  detections: number;
  sources: number;
  sourcesDetected: number;
  /** Per detected source: first detection's window end minus the source's first window start. */
  delaysMs: number[];
}

export interface Evaluation {
  model: string;
  /** Per volume band (volume-bands.ts): its name and threshold. */
  thresholds: { band: string; value: number }[];
  k: number;
  n: number;
  benign: SetResult & { falsePositivesPerWindow: number };
  attack: SetResult & { detectedShare: number };
  windowsScoredPerSecond: number;
}

/** Scores one set of ticks with a fresh scorer (histories do not leak between sets). */
export async function scoreSet(model: AnomalyModel, ticks: AsyncIterable<SensorTick> | Iterable<SensorTick>, k: number, n: number): Promise<SetResult & { busyMs: number }> {
  // No grace: a recording's first windows are judged too (an attack recording starts with the attack).
  const scorer = new AnomalyScorer(model, { k, n, graceMs: 0, onInvalidWindow: (err) => { throw err; } });
  const firstSeen = new Map<string, number>();
  const detectedAt = new Map<string, number>();
  let windowsOver = 0;
  let busyMs = 0;
  for await (const tick of ticks) {
    const t0 = performance.now();
    const detections = scorer.score(tick);
    busyMs += performance.now() - t0;
    const { sources, scores, thresholds } = scorer.lastScores();
    sources.forEach((s, i) => {
      const key = `${tick.sensor}/${s.src}`;
      if (!firstSeen.has(key)) firstSeen.set(key, tick.startMs);
      if (scores[i] > thresholds[i]) windowsOver++;
    });
    for (const d of detections) {
      const key = `${d.sensor}/${d.key}`;
      if (!detectedAt.has(key)) detectedAt.set(key, d.lastWindowMs);
    }
  }
  const stats = scorer.stats();
  return {
    windows: stats.windows, windowsOver, detections: stats.detections, sources: firstSeen.size, sourcesDetected: detectedAt.size,
    delaysMs: [...detectedAt].map(([key, at]) => at - firstSeen.get(key)!), busyMs,
  };
}

export async function evaluateModel(model: AnomalyModel, benignFiles: readonly string[], attackFiles: readonly string[], k: number, n: number): Promise<Evaluation> {
  const benign = await scoreSet(model, readWindows(benignFiles), k, n);
  const attack = await scoreSet(model, readWindows(attackFiles), k, n);
  const { busyMs: benignMs, ...benignResult } = benign;
  const { busyMs: attackMs, ...attackResult } = attack;
  return {
    model: model.id, thresholds: model.meta.thresholds.bands.map((b) => ({ band: b.band, value: b.threshold.value })), k, n,
    benign: { ...benignResult, falsePositivesPerWindow: benign.windows > 0 ? benign.detections / benign.windows : 0 },
    attack: { ...attackResult, detectedShare: attack.sources > 0 ? attack.sourcesDetected / attack.sources : 0 },
    windowsScoredPerSecond: (benign.windows + attack.windows) / ((benignMs + attackMs) / 1000),
  };
}
