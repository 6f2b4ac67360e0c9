/**
 * k of the last n windows: a source is anomalous only when at least k of its last n windows
 * scored over the threshold, so one odd window (a retransmission burst, a window boundary that
 * split a connection) does not alert. Strong evidence is anomalous sooner ("certain"): when the
 * scores (in multiples of the threshold) of the over-threshold windows among the last n add up
 * to the certain factor, one window far over the threshold or two well over it. A flood or UDP
 * scan of one or two seconds must not slip through, and it scores high in both its windows,
 * while the odd benign window that comes close is alone.
 *
 * A score is only as good as the traffic behind it: a window of two packets is a client's SYN
 * and ACK, or a scan's two probes, and its features are ratios of ones and zeros. So the certain
 * path also needs evidence: its over-threshold windows must hold at least `minCertainPackets`
 * packets between them. Fewer packets can still be anomalous, the slow way (k of n).
 * Windows in which a source sent nothing count as normal.
 * State per source: a bit, a score and a packet count per window, bounded by KeyedSlots.
 */
import { KeyedSlots } from './slots';

export interface PersistenceResult {
  /** This window is over the threshold and so are at least k-1 of the n-1 before it, or it is certain. */
  anomalous: boolean;
  /** Anomalous by the certain path alone (fewer than k windows over). */
  certain: boolean;
  /** First anomalous window of an episode (the source was not anomalous at its last window). */
  onset: boolean;
  /** Windows over the threshold among the last n. */
  over: number;
  /** Wall-clock ms when the episode's earliest over-threshold window started. */
  firstWindowMs: number;
}

export function checkKOfN(k: number, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 32) throw new RangeError(`n must be an integer from 1 to 32: ${n}`);
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`k must be an integer from 1 to n (${n}): ${k}`);
}

export class KOfN {
  private readonly slots: KeyedSlots;
  private readonly full: number;
  private mask = new Uint32Array(0);
  private lastWindow = new Float64Array(0);
  private episodeStartMs = new Float64Array(0);
  private firing = new Uint8Array(0);
  /** Per key, n scores (multiples of the threshold) of over-threshold windows, and their packets, by window id mod n. */
  private ratios = new Float32Array(0);
  private packets = new Float32Array(0);

  constructor(readonly k: number, readonly n: number, maxKeys = 1_000_000, readonly certainFactor = Infinity, readonly minCertainPackets = 0) {
    checkKOfN(k, n);
    if (!(certainFactor > 0)) throw new RangeError(`the certain factor must be > 0: ${certainFactor}`);
    if (!(minCertainPackets >= 0)) throw new RangeError(`the certain path's minimum packets must be >= 0: ${minCertainPackets}`);
    this.full = n === 32 ? 0xffffffff : (1 << n) - 1;
    this.slots = new KeyedSlots(maxKeys, n, (capacity) => {
      this.mask = grow(this.mask, new Uint32Array(capacity));
      this.lastWindow = grow(this.lastWindow, new Float64Array(capacity));
      this.episodeStartMs = grow(this.episodeStartMs, new Float64Array(capacity));
      this.firing = grow(this.firing, new Uint8Array(capacity));
      this.ratios = grow(this.ratios, new Float32Array(capacity * n));
      this.packets = grow(this.packets, new Float32Array(capacity * n));
    });
  }

  /**
   * Records one window of a key. `window` is the sensor's window id (consecutive ids are
   * consecutive windows); `startMs`/`lengthMs` date the window; `ratio` is its score over the
   * threshold and `packets` its traffic.
   */
  update(key: string, window: number, over: boolean, startMs: number, lengthMs: number, ratio = 0, packets = 0): PersistenceResult {
    const { slot, fresh } = this.slots.slot(key, window);
    const n = this.n;
    const ring = slot * n;
    let mask = 0;
    const gap = fresh ? n : window - this.lastWindow[slot];
    if (!fresh) mask = gap >= n ? 0 : gap > 0 ? (this.mask[slot] << gap) & this.full : this.mask[slot];
    else this.firing[slot] = 0;
    // Windows skipped since the last one sent nothing: their scores leave the ring.
    for (let w = 1; w <= Math.min(gap, n); w++) {
      const at = ring + ((window - w + 1) % n + n) % n;
      this.ratios[at] = 0;
      this.packets[at] = 0;
    }
    const here = ring + (window % n + n) % n;
    this.ratios[here] = over ? ratio : 0;
    this.packets[here] = over ? packets : 0;
    let score = 0;
    let evidence = 0;
    for (let i = ring; i < ring + n; i++) {
      score += this.ratios[i];
      evidence += this.packets[i];
    }
    if (over) mask = (mask | 1) >>> 0;
    this.mask[slot] = mask;
    this.lastWindow[slot] = Math.max(window, fresh ? window : this.lastWindow[slot]);
    const count = popcount(mask);
    const certain = over && count < this.k && score >= this.certainFactor && evidence >= this.minCertainPackets;
    const anomalous = over && (count >= this.k || certain);
    const onset = anomalous && this.firing[slot] === 0;
    if (onset) this.episodeStartMs[slot] = startMs - (31 - Math.clz32(mask)) * lengthMs;
    if (anomalous) this.firing[slot] = 1;
    else if (count < this.k) this.firing[slot] = 0;
    return { anomalous, certain, onset, over: count, firstWindowMs: this.episodeStartMs[slot] };
  }

  /** Forgets keys with no window for n windows (all their bits have shifted out). */
  sweep(window: number): void {
    this.slots.sweep(window);
  }

  get size(): number {
    return this.slots.size;
  }
}

function grow<T extends Uint32Array | Float64Array | Float32Array | Uint8Array>(old: T, next: T): T {
  next.set(old as never);
  return next;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
