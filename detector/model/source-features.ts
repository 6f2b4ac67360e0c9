/**
 * Turns SensorTicks into model feature rows (schema.ts), keeping each source's decayed history.
 * Training and scoring both run ticks through this class in order, so a model sees at run time
 * exactly the features it was trained on.
 */
import type { SensorTick, SourceWindow } from '../../common/sensor-tick';
import { LAYOUTS, featureValue } from '../features';
import { HALF_LIVES_S, MODEL_FEATURES } from './schema';
import { KeyedSlots } from './slots';

const LAYOUT = LAYOUTS.source;
const V = LAYOUT.vectorLength;
const H = HALF_LIVES_S.length;
export const FEATURE_COUNT = MODEL_FEATURES.length;
const WINDOW_FEATURES = MODEL_FEATURES.flatMap((f, i) => (f.history < 0 ? [i] : []));
const HISTORY_FEATURES = HALF_LIVES_S.map((_, h) => MODEL_FEATURES.flatMap((f, i) => (f.history === h ? [i] : [])));
const DEFINITIONS = MODEL_FEATURES.map((f) => f.definition);
/** ln 2 / half-life in ms: a history's decay over dt ms is exp(-dt · rate). */
const DECAY_PER_MS = HALF_LIVES_S.map((h) => Math.LN2 / (h * 1000));
/** A history decayed over ten half-lives holds under 0.1 % of what it had: forget it. */
const FORGET_AFTER_MS = 10 * Math.max(...HALF_LIVES_S) * 1000;
/** Ticks whose lengths make a sensor's usual tick length (their median). */
const USUAL_OF_TICKS = 15;

/** A window the extractor could not use, and why. */
export class InvalidWindowError extends Error {
  constructor(readonly sensor: string, readonly src: string | undefined, problem: string) {
    super(`sensor ${sensor}${src === undefined ? '' : ` source ${src}`}: ${problem}`);
    this.name = 'InvalidWindowError';
  }
}

/** Why a tick's timing cannot be used, or undefined. */
export function tickProblem(tick: SensorTick): string | undefined {
  if (!Number.isFinite(tick.startMs) || !Number.isFinite(tick.endMs)) return `window ${tick.window}: startMs/endMs must be finite numbers`;
  if (!(tick.endMs > tick.startMs)) return `window ${tick.window}: endMs ${tick.endMs} is not after startMs ${tick.startMs}`;
  if (!Array.isArray(tick.sources)) return `window ${tick.window}: sources is not a list`;
  return undefined;
}

/** Why a source window's counts cannot be used (NaN, Inf, negative, missing), or undefined. */
export function windowProblem(w: SourceWindow): string | undefined {
  for (const c of LAYOUT.counters) {
    const v = c.read(w) as unknown;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return `${c.name} must be a finite count >= 0, got ${String(v)}`;
  }
  return undefined;
}

/** Reads a window's counters into `v`; false when one is not a finite count >= 0. */
function readCounts(w: SourceWindow, v: Float64Array): boolean {
  for (const c of LAYOUT.counters) {
    const x = c.read(w);
    if (!(x >= 0 && x < Infinity)) return false;
    v[c.index] = x;
  }
  return true;
}

/** Rows of one tick, valid until the next extract(). */
export interface ExtractedRows {
  count: number;
  /** count × FEATURE_COUNT transformed features, row-major. */
  rows: Float32Array;
  /** The same features before the transform (what explanations show). */
  raw: Float64Array;
  /** The source windows the rows belong to. */
  sources: SourceWindow[];
  /** Windows left out, one error each. */
  invalid: InvalidWindowError[];
}

export interface ExtractorOptions {
  /** Sources whose history is kept, per sensor. */
  maxSources?: number;
}

interface SensorHistory {
  slots: KeyedSlots;
  /** Lengths (ms) of the sensor's last USUAL_OF_TICKS ticks, a ring, and how many it holds. */
  tickLengthsMs: Float64Array;
  ticksSeen: number;
  /** Per slot and half-life: the decayed counter vector (counters, then seconds). */
  decayed: Float64Array;
  lastMs: Float64Array;
}

/**
 * The seconds a tick's rates are computed over: its length, but at least the sensor's usual tick
 * length (the median of its last ticks). A sensor whose event loop was held up ticks late, and
 * the tick after is then cut short: a client's SYN and ACK in 30 ms would read as 66 packets per
 * second, ten times what it sends (the demo's and eval:model's false positives in v3 came from
 * such ticks). Over the usual length, a cut-short tick reads as the quiet window it nearly is;
 * the late tick's counts are over its own, longer length.
 */
function windowSeconds(history: SensorHistory, lengthMs: number): number {
  const seen = Math.min(history.ticksSeen, USUAL_OF_TICKS);
  const usualMs = seen === 0 ? lengthMs : median(history.tickLengthsMs.subarray(0, seen));
  history.tickLengthsMs[history.ticksSeen++ % USUAL_OF_TICKS] = lengthMs;
  return Math.max(lengthMs, usualMs) / 1000;
}

function median(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export class FeatureExtractor {
  private readonly sensors = new Map<string, SensorHistory>();
  private rows = new Float32Array(0);
  private raw = new Float64Array(0);
  private readonly vector = new Float64Array(V);
  private readonly scratch = new Float64Array(V);

  constructor(private readonly opts: ExtractorOptions = {}) {}

  /** Throws InvalidWindowError for a tick whose timing is unusable; bad source windows are reported in `invalid`. */
  extract(tick: SensorTick): ExtractedRows {
    const problem = tickProblem(tick);
    if (problem) throw new InvalidWindowError(String(tick.sensor), undefined, problem);
    const history = this.historyOf(tick.sensor);
    const n = tick.sources.length;
    if (this.rows.length < n * FEATURE_COUNT) {
      this.rows = new Float32Array(n * FEATURE_COUNT * 2);
      this.raw = new Float64Array(n * FEATURE_COUNT * 2);
    }
    const seconds = windowSeconds(history, tick.endMs - tick.startMs);
    const sources: SourceWindow[] = [];
    const invalid: InvalidWindowError[] = [];
    const v = this.vector;
    for (const w of tick.sources) {
      if (!readCounts(w, v)) {
        invalid.push(new InvalidWindowError(tick.sensor, String(w?.src), windowProblem(w)!));
        continue;
      }
      const row = sources.length * FEATURE_COUNT;
      sources.push(w);
      v[LAYOUT.secondsIndex] = seconds;
      const { slot, fresh } = history.slots.slot(w.src, tick.endMs);
      const base = slot * H * V;
      const dt = fresh ? 0 : Math.max(0, tick.endMs - history.lastMs[slot]);
      history.lastMs[slot] = tick.endMs;
      for (let h = 0; h < H; h++) {
        const factor = fresh ? 0 : Math.exp(-dt * DECAY_PER_MS[h]);
        const at = base + h * V;
        for (let i = 0; i < V; i++) history.decayed[at + i] = history.decayed[at + i] * factor + v[i];
      }
      for (const f of WINDOW_FEATURES) this.put(row, f, featureValue(DEFINITIONS[f], v));
      for (let h = 0; h < H; h++) {
        const at = base + h * V;
        for (let i = 0; i < V; i++) this.scratch[i] = history.decayed[at + i];
        for (const f of HISTORY_FEATURES[h]) this.put(row, f, featureValue(DEFINITIONS[f], this.scratch));
      }
    }
    return { count: sources.length, rows: this.rows.subarray(0, sources.length * FEATURE_COUNT), raw: this.raw.subarray(0, sources.length * FEATURE_COUNT), sources, invalid };
  }

  private put(row: number, f: number, value: number): void {
    this.raw[row + f] = value;
    this.rows[row + f] = Math.log1p(value);
  }

  /** Forgets one source's history, as a restart of the detector would. */
  forget(sensor: string, src: string): void {
    this.sensors.get(sensor)?.slots.forget(src);
  }

  /** Forgets sources idle long enough that their history is negligible. */
  sweep(nowMs: number): void {
    for (const h of this.sensors.values()) h.slots.sweep(nowMs);
  }

  private historyOf(sensor: string): SensorHistory {
    let h = this.sensors.get(sensor);
    if (!h) {
      const created: SensorHistory = {
        decayed: new Float64Array(0), lastMs: new Float64Array(0), slots: undefined as unknown as KeyedSlots, tickLengthsMs: new Float64Array(USUAL_OF_TICKS), ticksSeen: 0,
      };
      created.slots = new KeyedSlots(this.opts.maxSources ?? 1_000_000, FORGET_AFTER_MS, (capacity) => {
        const decayed = new Float64Array(capacity * H * V);
        decayed.set(created.decayed);
        created.decayed = decayed;
        const lastMs = new Float64Array(capacity);
        lastMs.set(created.lastMs);
        created.lastMs = lastMs;
      });
      this.sensors.set(sensor, created);
      h = created;
    }
    return h;
  }
}
