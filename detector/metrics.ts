/**
 * The detector's Prometheus metrics: what it consumed (ticks, windows, trips), how far behind the
 * sensors it runs (the lag of the newest tick it evaluated), how long the rules take per tick,
 * detections and incident transitions by rule (rule ids are bounded by the rule set), and the
 * anomaly model's scores as multiples of its threshold (comparable across retrained models).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class DetectorMetrics {
  readonly ticks: Counter;
  readonly windows: Counter;
  readonly trips: Counter;
  readonly badJobs: Counter;
  readonly alertsQueued: Counter;
  private readonly lag: Gauge;
  private readonly ruleSeconds: Histogram;
  private readonly detections: Counter;
  private readonly incidents: Counter;
  private readonly scores: Histogram;
  private state?: () => { partitions: number; modelLoaded: boolean };

  constructor(registry: Registry) {
    const registers = [registry];
    const metrics = this;
    this.ticks = new Counter({ name: 'xdp_ids_detector_ticks_total', help: 'Sensor ticks evaluated', registers });
    this.windows = new Counter({ name: 'xdp_ids_detector_windows_total', help: 'Source and destination windows evaluated', registers });
    this.trips = new Counter({ name: 'xdp_ids_detector_trips_total', help: 'Fast-path trips evaluated', registers });
    this.badJobs = new Counter({ name: 'xdp_ids_detector_bad_jobs_total', help: 'Window jobs that could not be read (kept as failed jobs)', registers });
    this.alertsQueued = new Counter({ name: 'xdp_ids_detector_alerts_queued_total', help: 'Incident events queued for the alerter', registers });
    this.lag = new Gauge({ name: 'xdp_ids_detector_lag_seconds', help: 'How long after its window ended the newest tick was evaluated', registers });
    this.ruleSeconds = new Histogram({
      name: 'xdp_ids_detector_rule_evaluation_seconds', help: 'Time the rules take over one tick', registers,
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    });
    this.detections = new Counter({ name: 'xdp_ids_detector_detections_total', help: 'Detections, by rule (model.anomaly for the model)', labelNames: ['rule'], registers });
    this.incidents = new Counter({ name: 'xdp_ids_detector_incidents_total', help: 'Incident transitions this detector made, by rule and phase', labelNames: ['rule', 'phase'], registers });
    this.scores = new Histogram({
      name: 'xdp_ids_detector_model_score_ratio', help: 'Anomaly scores of source windows, in multiples of the model\'s threshold', registers,
      buckets: [0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32],
    });
    new Gauge({
      name: 'xdp_ids_detector_partitions', help: 'Windows partitions this detector consumes', registers,
      collect() {
        if (metrics.state) this.set(metrics.state().partitions);
      },
    });
    new Gauge({
      name: 'xdp_ids_detector_model_loaded', help: 'Whether an anomaly model is loaded (1) or the rules run alone (0)', registers,
      collect() {
        if (metrics.state) this.set(metrics.state().modelLoaded ? 1 : 0);
      },
    });
  }

  /** What each scrape reads from the detector itself. */
  watch(state: () => { partitions: number; modelLoaded: boolean }): void {
    this.state = state;
  }

  evaluated(tickEndMs: number, ruleSeconds: number, windows: number): void {
    this.ticks.inc();
    this.windows.inc(windows);
    this.ruleSeconds.observe(ruleSeconds);
    this.lag.set(Math.max(0, (Date.now() - tickEndMs) / 1000));
  }

  detected(ruleIds: readonly string[]): void {
    for (const rule of ruleIds) this.detections.inc({ rule });
  }

  transition(rule: string, phase: string): void {
    this.incidents.inc({ rule, phase });
  }

  /** Each window's score against its own threshold (its traffic-volume band's). */
  modelScores(scores: ArrayLike<number>, thresholds: ArrayLike<number>): void {
    for (let i = 0; i < scores.length; i++) this.scores.observe(scores[i] / thresholds[i]);
  }
}
