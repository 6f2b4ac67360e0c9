/**
 * Keyed sliding-window state for the rule engine. A lane holds every key of one grouping (and
 * except list); inside it, one window state per window length keeps, for each key, a ring of
 * per-bucket counter sums and their running total, and one rule state per rule keeps its `for`
 * streak. All of it lives in flat typed arrays indexed by a slot per key, because a tick touches
 * every active key (100,000 sources a second) and objects per key would cost allocation and GC.
 */
import { groupKey, type AddressSet, type Grouping } from './addresses';
import type { CompiledRule } from './rule';

/** How one rule runs inside a window: its durations in ticks. */
export interface RulePlan {
  rule: CompiledRule;
  windowTicks: number;
  forTicks: number;
  /** Survives a reload when the rule and its window are unchanged. */
  signature: string;
}

export interface WindowPlan {
  windowTicks: number;
  /** Windows longer than MAX_BUCKETS ticks sum buckets of several ticks: they slide in steps. */
  bucketTicks: number;
  buckets: number;
  /** Counter indexes kept (the union of what its rules read). */
  counters: readonly number[];
  /** The scope's feature vector length and where seconds go in it. */
  vectorLength: number;
  secondsIndex: number;
  seconds: number;
  rules: readonly RulePlan[];
  signature: string;
}

export interface LanePlan {
  grouping: Grouping;
  except?: AddressSet;
  windows: readonly WindowPlan[];
  /** Ticks after which an idle key can hold no state that matters (longest window + for). */
  idleTicks: number;
  signature: string;
}

/** What the engine reports when a rule fires in a lane (built by the engine). */
export type FireHandler = (rule: RulePlan, key: string, vector: Float64Array, streakStart: number, onset: boolean) => void;

export const MAX_BUCKETS = 20;
const INITIAL_SLOTS = 1024;

function grown(a: Float64Array, length: number, fill = 0): Float64Array {
  const b = new Float64Array(length);
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}

class RuleState {
  streakStart: Float64Array;
  lastHeld: Float64Array;
  lastFired: Float64Array;

  constructor(public plan: RulePlan, capacity: number) {
    this.streakStart = new Float64Array(capacity);
    this.lastHeld = new Float64Array(capacity).fill(-Infinity);
    this.lastFired = new Float64Array(capacity).fill(-Infinity);
  }

  grow(capacity: number): void {
    this.streakStart = grown(this.streakStart, capacity);
    this.lastHeld = grown(this.lastHeld, capacity, -Infinity);
    this.lastFired = grown(this.lastFired, capacity, -Infinity);
  }

  reset(slot: number): void {
    this.lastHeld[slot] = -Infinity;
    this.lastFired[slot] = -Infinity;
  }

  /** Whether holding at tick t would start a firing episode, without recording anything. */
  wouldStart(slot: number, t: number): boolean {
    const streakStart = slot >= 0 && this.lastHeld[slot] >= t - this.plan.windowTicks ? this.streakStart[slot] : t;
    if (t - streakStart + 1 < this.plan.forTicks) return false;
    return !(slot >= 0 && this.lastFired[slot] >= streakStart);
  }

  /** Updates the streak at tick t; true (with the streak's start) when the rule fires. */
  evaluate(slot: number, t: number, holds: boolean): boolean {
    if (!holds) {
      this.lastHeld[slot] = -Infinity;
      return false;
    }
    // A key is evaluated only in windows where it has traffic: silent windows that its sum
    // still covers do not break a streak.
    if (!(this.lastHeld[slot] >= t - this.plan.windowTicks)) this.streakStart[slot] = t;
    this.lastHeld[slot] = t;
    return t - this.streakStart[slot] + 1 >= this.plan.forTicks;
  }
}

class WindowState {
  private ring: Float64Array;
  private sums: Float64Array;
  private lastBucket: Float64Array;
  private readonly width: number;
  private readonly counters: Int32Array;
  private readonly vector: Float64Array;
  private bucket = 0;
  private ringIndex = 0;

  constructor(public plan: WindowPlan, capacity: number, public rules: RuleState[]) {
    this.width = plan.counters.length;
    this.counters = Int32Array.from(plan.counters);
    this.ring = new Float64Array(capacity * plan.buckets * this.width);
    this.sums = new Float64Array(capacity * this.width);
    this.lastBucket = new Float64Array(capacity).fill(-Infinity);
    this.vector = new Float64Array(plan.vectorLength);
    this.vector[plan.secondsIndex] = plan.seconds;
  }

  grow(capacity: number): void {
    this.ring = grown(this.ring, capacity * this.plan.buckets * this.width);
    this.sums = grown(this.sums, capacity * this.width);
    this.lastBucket = grown(this.lastBucket, capacity, -Infinity);
    for (const r of this.rules) r.grow(capacity);
  }

  reset(slot: number): void {
    this.lastBucket[slot] = -Infinity;
    for (const r of this.rules) r.reset(slot);
  }

  beginTick(t: number): void {
    this.bucket = Math.floor(t / this.plan.bucketTicks);
    this.ringIndex = this.bucket % this.plan.buckets;
  }

  /** Drops the buckets that slid out of the window since the key was last seen. */
  roll(slot: number): void {
    const last = this.lastBucket[slot];
    if (last === this.bucket) return;
    const w = this.width;
    const B = this.plan.buckets;
    const ringBase = slot * B * w;
    const sumBase = slot * w;
    if (!(this.bucket - last < B) || last > this.bucket) {
      this.ring.fill(0, ringBase, ringBase + B * w);
      this.sums.fill(0, sumBase, sumBase + w);
    } else {
      for (let k = last + 1; k <= this.bucket; k++) {
        const off = ringBase + (k % B) * w;
        for (let c = 0; c < w; c++) {
          this.sums[sumBase + c] -= this.ring[off + c];
          this.ring[off + c] = 0;
        }
      }
    }
    this.lastBucket[slot] = this.bucket;
  }

  lastBucketOf(slot: number): number {
    return this.lastBucket[slot];
  }

  /** Adds the ring's buckets from..to (inclusive) of `slot` into `out`, by position in plan.counters. */
  addBuckets(slot: number, from: number, to: number, out: Float64Array): void {
    const w = this.width;
    for (let k = from; k <= to; k++) {
      const off = (slot * this.plan.buckets + (k % this.plan.buckets)) * w;
      for (let c = 0; c < w; c++) out[c] += this.ring[off + c];
    }
  }

  /** Fires the rules that a partial window `row` at tick t would start, without changing state. */
  preview(slot: number, t: number, key: string, row: Float64Array, fire: FireHandler): void {
    const w = this.width;
    const sums = new Float64Array(w);
    sumsBefore(this, slot, t, sums);
    const v = this.vector;
    for (let c = 0; c < w; c++) v[this.counters[c]] = sums[c] + row[this.counters[c]];
    for (const r of this.rules) {
      if (r.plan.rule.when.holds(v) && r.wouldStart(slot, t)) fire(r.plan, key, v, t - r.plan.forTicks + 1, true);
    }
  }

  add(slot: number, row: Float64Array): void {
    const w = this.width;
    const off = (slot * this.plan.buckets + this.ringIndex) * w;
    const sumBase = slot * w;
    for (let c = 0; c < w; c++) {
      const value = row[this.counters[c]];
      this.ring[off + c] += value;
      this.sums[sumBase + c] += value;
    }
  }

  evaluate(slot: number, t: number, key: string, fire: FireHandler): void {
    const w = this.width;
    const sumBase = slot * w;
    const v = this.vector;
    for (let c = 0; c < w; c++) v[this.counters[c]] = this.sums[sumBase + c];
    for (const r of this.rules) {
      if (!r.evaluate(slot, t, r.plan.rule.when.holds(v))) continue;
      const onset = !(r.lastFired[slot] >= r.streakStart[slot]);
      r.lastFired[slot] = t;
      fire(r.plan, key, v, r.streakStart[slot], onset);
    }
  }
}

/** A window's sums for `slot` as they would be at tick t, before t is added (slot -1: no history). */
function sumsBefore(w: WindowState, slot: number, t: number, out: Float64Array): void {
  out.fill(0);
  if (slot < 0) return;
  const bucket = Math.floor(t / w.plan.bucketTicks);
  const last = w.lastBucketOf(slot);
  w.addBuckets(slot, Math.max(last - w.plan.buckets + 1, bucket - w.plan.buckets + 1), Math.min(last, bucket), out);
}

export interface LaneStats {
  grouping: string;
  keys: number;
  evicted: number;
  dropped: number;
}

export class Lane {
  private readonly keys = new Map<string, number>();
  private slotKeys: (string | undefined)[] = [];
  private lastTick: Float64Array;
  private readonly free: number[] = [];
  private touched: Int32Array;
  private touchedCount = 0;
  private capacity: number;
  private readonly windows: WindowState[];
  private readonly exact: boolean;
  private tick = -Infinity;
  private evicted = 0;
  private dropped = 0;

  /** A lane for `plan`, taking over the keys and matching state of `previous` (a reload). */
  constructor(readonly plan: LanePlan, private readonly maxKeys: number, previous?: Lane) {
    this.exact = plan.grouping.v4Bits === 32 && plan.grouping.v6Bits === 128;
    if (previous) {
      this.keys = previous.keys;
      this.slotKeys = previous.slotKeys;
      this.lastTick = previous.lastTick;
      this.free = previous.free;
      this.capacity = previous.capacity;
      this.tick = previous.tick;
      this.evicted = previous.evicted;
      this.dropped = previous.dropped;
    } else {
      this.capacity = INITIAL_SLOTS;
      this.lastTick = new Float64Array(this.capacity).fill(-Infinity);
    }
    this.touched = new Int32Array(this.capacity);
    const oldWindows = new Map(previous?.windows.map((w) => [w.plan.signature, w]));
    this.windows = plan.windows.map((wp) => {
      const old = oldWindows.get(wp.signature);
      const oldRules = new Map(old?.rules.map((r) => [r.plan.signature, r]));
      const rules = wp.rules.map((rp) => {
        const kept = oldRules.get(rp.signature);
        if (!kept) return new RuleState(rp, this.capacity);
        kept.plan = rp;
        return kept;
      });
      if (!old) return new WindowState(wp, this.capacity, rules);
      old.plan = wp;
      old.rules = rules;
      return old;
    });
  }

  beginTick(t: number): void {
    this.tick = t;
    this.touchedCount = 0;
    for (const w of this.windows) w.beginTick(t);
  }

  /** Adds one window of `address` (v4: parseIPv4 of it, or -1) to its key. */
  add(address: string, v4: number, row: Float64Array): void {
    if (this.plan.except && this.plan.except.has(address, v4)) return;
    const key = this.exact ? address : groupKey(this.plan.grouping, address, v4);
    if (key === undefined) return;
    let slot = this.keys.get(key);
    if (slot === undefined) {
      slot = this.allocate(key);
      if (slot < 0) return;
    }
    if (this.lastTick[slot] !== this.tick) {
      this.lastTick[slot] = this.tick;
      this.touched[this.touchedCount++] = slot;
      for (const w of this.windows) w.roll(slot);
    }
    for (const w of this.windows) w.add(slot, row);
  }

  /**
   * What the rules would report for `address` if tick t (not yet added) ended with `row`: the
   * episodes it would start. For fast-path trips, which arrive before their window ends.
   */
  preview(address: string, v4: number, row: Float64Array, t: number, fire: FireHandler): void {
    if (this.plan.except && this.plan.except.has(address, v4)) return;
    const key = this.exact ? address : groupKey(this.plan.grouping, address, v4);
    if (key === undefined) return;
    const slot = this.keys.get(key) ?? -1;
    for (const w of this.windows) w.preview(slot, t, key, row, fire);
  }

  /** Evaluates the rules for every key that had traffic in this tick. */
  evaluate(fire: FireHandler): void {
    for (let i = 0; i < this.touchedCount; i++) {
      const slot = this.touched[i];
      const key = this.slotKeys[slot]!;
      for (const w of this.windows) w.evaluate(slot, this.tick, key, fire);
    }
  }

  /** Forgets keys idle for longer than any window and `for` of the lane can look back. */
  sweep(): void {
    for (const [key, slot] of this.keys) {
      if (this.tick - this.lastTick[slot] > this.plan.idleTicks) this.release(key, slot);
    }
  }

  stats(): LaneStats {
    return { grouping: this.plan.grouping.text, keys: this.keys.size, evicted: this.evicted, dropped: this.dropped };
  }

  private release(key: string, slot: number): void {
    this.keys.delete(key);
    this.slotKeys[slot] = undefined;
    this.free.push(slot);
    this.evicted++;
  }

  private allocate(key: string): number {
    if (this.keys.size >= this.maxKeys) this.evictStalest();
    if (this.keys.size >= this.maxKeys) {
      this.dropped++;
      return -1;
    }
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.keys.size;
      if (slot >= this.capacity) this.grow(Math.min(this.capacity * 2, Math.max(this.maxKeys, INITIAL_SLOTS)));
    }
    this.keys.set(key, slot);
    this.slotKeys[slot] = key;
    this.lastTick[slot] = -Infinity;
    for (const w of this.windows) w.reset(slot);
    return slot;
  }

  /** At the key cap: frees an eighth of it, least recently seen first (never this tick's keys). */
  private evictStalest(): void {
    let quota = Math.max(1, Math.floor(this.keys.size / 8));
    const ages = Float64Array.from(this.keys.values(), (slot) => this.lastTick[slot]).sort();
    const cutoff = Math.min(ages[quota - 1], this.tick - 1);
    for (const [key, slot] of this.keys) {
      if (quota === 0) break;
      if (this.lastTick[slot] > cutoff) continue;
      this.release(key, slot);
      quota--;
    }
  }

  private grow(capacity: number): void {
    this.lastTick = grown(this.lastTick, capacity, -Infinity);
    const touched = new Int32Array(capacity);
    touched.set(this.touched);
    this.touched = touched;
    for (const w of this.windows) w.grow(capacity);
    this.capacity = capacity;
  }
}
