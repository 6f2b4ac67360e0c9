/**
 * The demo's anomaly model, learnt on the spot: the windows of the lab's benign hosts during the
 * first `learnMs` are trained into `dir`, where the detector's model watcher swaps the model in.
 * The attacker's windows are left out, so the model learns only the lab's normal traffic. Demo
 * only: a model learnt from a lab must never judge a real network, so `xdp-ids run` keeps it in a
 * directory of its own, removed on exit.
 */
import type { Logger } from 'pino';
import type { SensorSink, SensorTick } from '../common/sensor-tick';
import { saveModel } from '../detector/model/files';
import { forEachTickWithin } from '../detector/model/records';
import { TickStream } from '../detector/model/tick-stream';
import { trainModel } from '../detector/model/train';

export interface DemoModelOptions {
  dir: string;
  /** Addresses whose windows are not normal traffic (the lab's attackers). */
  exclude: ReadonlySet<string>;
  learnMs: number;
  log: Logger;
}

export class DemoModelLearner implements SensorSink {
  private readonly stream = new TickStream();
  private stopped = false;
  /** Settles once the model is saved, or learning failed or was stopped (logged either way). */
  readonly done: Promise<void>;

  constructor(private readonly opts: DemoModelOptions) {
    this.done = this.learn().catch((err: Error) => opts.log.error({ err: err.message }, 'could not learn the demo model: rules only'));
  }

  tick(tick: SensorTick): void {
    this.stream.tick({ ...tick, sources: tick.sources.filter((w) => !this.opts.exclude.has(w.src)) });
  }

  trip(): void {}

  sample(): void {}

  /** Learning stops; a training already under way finishes but saves nothing. */
  stop(): void {
    this.stopped = true;
    this.stream.close();
  }

  private async learn(): Promise<void> {
    const { dir, learnMs, log } = this.opts;
    log.info({ learnMs }, 'learning the demo\'s anomaly model from the lab\'s benign hosts');
    const ticks: SensorTick[] = [];
    await forEachTickWithin(this.stream, learnMs, (tick) => ticks.push(tick));
    if (this.stopped) return;
    const trained = await trainModel(ticks, { seed: 1, log });
    try {
      if (this.stopped) return;
      const saved = await saveModel(trained, dir);
      log.info({ model: saved.id, windows: saved.meta.training.windows }, 'demo anomaly model trained');
    } finally {
      trained.tfModel.dispose();
    }
  }
}
