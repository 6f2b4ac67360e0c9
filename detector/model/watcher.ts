/**
 * Keeps the newest valid model of a directory loaded, and swaps in a newer one when it appears
 * (`model train --out DIR` renames finished models into place). Newest means the latest
 * training time. A model that fails to load is reported once and the next older valid one is
 * used; the model in use is kept until a valid newer one replaces it. With no valid model at all,
 * `current` is undefined (callers run their rules only) and one `model-missing` notice is sent,
 * not one per check.
 */
import fs from 'node:fs';
import type { Logger } from 'pino';
import type { AnomalyModel } from './anomaly-model';
import { loadModel, modelCandidates } from './files';

export interface ModelNotice {
  code: 'model-missing' | 'model-reload-failed';
  message: string;
  dir: string;
}

export interface ModelWatcherOptions {
  dir: string;
  log: Logger;
  /** Called with every model swapped in. */
  onModel?: (model: AnomalyModel) => void;
  /** Exception notices for operators (ExceptionEvent codes). */
  onNotice?: (notice: ModelNotice) => void;
  /** Rescan interval; fs.watch catches most changes at once, the rescan catches the rest. */
  pollMs?: number;
  /** A model is on its way (being trained): `model-missing` only if none has come within this time. */
  missingAfterMs?: number;
}

export class ModelWatcher {
  current: AnomalyModel | undefined;
  private currentVersion?: string;
  private readonly reported = new Set<string>();
  private missingReported = false;
  private watcher?: fs.FSWatcher;
  private timer?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;
  private closed = false;
  private readonly missingDueMs: number;
  private missingCheck?: NodeJS.Timeout;

  private constructor(private readonly opts: ModelWatcherOptions) {
    this.missingDueMs = Date.now() + (opts.missingAfterMs ?? 0);
  }

  /** Loads the newest valid model now, then watches the directory. */
  static async start(opts: ModelWatcherOptions): Promise<ModelWatcher> {
    const w = new ModelWatcher(opts);
    await w.reload();
    w.watch();
    return w;
  }

  /** Rescans the directory; concurrent calls are folded into one more scan. */
  reload(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.scan();
        } while (this.again && !this.closed);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    clearTimeout(this.missingCheck);
  }

  private watch(): void {
    try {
      fs.mkdirSync(this.opts.dir, { recursive: true });
      this.watcher = fs.watch(this.opts.dir, () => {
        clearTimeout(this.debounce);
        this.debounce = setTimeout(() => void this.reload(), 200);
      });
      this.watcher.on('error', (err) => this.opts.log.warn({ err, dir: this.opts.dir }, 'cannot watch the model directory; rescanning periodically'));
    } catch (err) {
      this.opts.log.warn({ err, dir: this.opts.dir }, 'cannot watch the model directory; rescanning periodically');
    }
    this.timer = setInterval(() => void this.reload(), this.opts.pollMs ?? 30_000);
    this.timer.unref();
  }

  private async scan(): Promise<void> {
    for (const c of modelCandidates(this.opts.dir)) {
      if (c.version === this.currentVersion) return;
      if (c.error) {
        this.reportOnce(c.version, c.dir, c.error);
        continue;
      }
      if (this.reported.has(c.version)) continue;
      try {
        const { model, tfModel } = await loadModel(c.dir);
        tfModel.dispose();
        if (this.closed) return;
        const previous = this.current?.id;
        this.current = model;
        this.currentVersion = c.version;
        this.missingReported = false;
        this.opts.log.info({ model: model.id, previous, thresholds: model.meta.thresholds.bands.map((b) => b.threshold.value) }, 'anomaly model loaded');
        this.opts.onModel?.(model);
        return;
      } catch (err) {
        this.reportOnce(c.version, c.dir, (err as Error).message);
      }
    }
    if (!this.current && !this.missingReported) {
      const waitMs = this.missingDueMs - Date.now();
      if (waitMs > 0) {
        clearTimeout(this.missingCheck);
        this.missingCheck = setTimeout(() => void this.reload(), waitMs);
        this.missingCheck.unref();
        return;
      }
      this.missingReported = true;
      const message = `no valid anomaly model in ${this.opts.dir}: detecting with rules only (train one with xdp-ids model train)`;
      this.opts.log.warn({ dir: this.opts.dir }, message);
      this.opts.onNotice?.({ code: 'model-missing', message, dir: this.opts.dir });
    }
  }

  private reportOnce(version: string, dir: string, message: string): void {
    if (this.reported.has(version)) return;
    this.reported.add(version);
    this.opts.log.error({ dir, reason: message }, 'anomaly model not loaded');
    this.opts.onNotice?.({ code: 'model-reload-failed', message, dir });
  }
}
