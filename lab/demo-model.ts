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

/** Where learning stands, for a live screen. */
export type LearnerState =
  | { phase: 'learning'; fraction: number }
  | { phase: 'training' }
  | { phase: 'ready'; model: string }
  | { phase: 'failed'; error: string };

/** One line for a live screen; progress in steps of 10%, so that plain output gets a handful of lines. */
export function learnerLine(state: LearnerState): string {
  switch (state.phase) {
    case 'learning': return `anomaly model: learning the lab's normal traffic, ${Math.floor(state.fraction * 10) * 10}%`;
    case 'training': return 'anomaly model: training';
    case 'ready': return `anomaly model: ${state.model} in use`;
    case 'failed': return `anomaly model: could not learn (${state.error}); rules only`;
  }
}

export class DemoModelLearner implements SensorSink {
  private readonly stream = new TickStream();
  private stopped = false;
  private readonly startedMs = Date.now();
  private current: LearnerState = { phase: 'learning', fraction: 0 };
  /** Settles once the model is saved, or learning failed or was stopped (logged either way). */
  readonly done: Promise<void>;

  constructor(private readonly opts: DemoModelOptions) {
    this.done = this.learn().catch((err: Error) => {
      this.current = { phase: 'failed', error: err.message };
      opts.log.error({ err: err.message }, 'could not learn the demo model: rules only');
    });
  }

  state(): LearnerState {
    if (this.current.phase !== 'learning') return this.current;
    return { phase: 'learning', fraction: Math.min(1, (Date.now() - this.startedMs) / this.opts.learnMs) };
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
    this.current = { phase: 'training' };
    const trained = await trainModel(ticks, { seed: 1, log });
    try {
      if (this.stopped) return;
      const saved = await saveModel(trained, dir);
      this.current = { phase: 'ready', model: saved.id };
      log.info({ model: saved.id, windows: saved.meta.training.windows }, 'demo anomaly model trained');
    } finally {
      trained.tfModel.dispose();
    }
  }
}
