/**
 * Bounded per-key state: a key (a source address) maps to a slot number that indexes flat typed
 * arrays held by the owner, because scoring touches every active source of every tick and an
 * object per source would cost allocation and GC. Keys idle for `idleAfter` (in the caller's
 * unit of time: ms, window ids) can be dropped, their state no longer matters; past `maxKeys`
 * the oldest-inserted keys are dropped first.
 */
export class KeyedSlots {
  private readonly index = new Map<string, number>();
  private readonly free: number[] = [];
  private lastSeen = new Float64Array(0);
  private allocated = 0;

  /** `grow` is called with the new capacity before a slot beyond the old one is handed out. */
  constructor(private readonly maxKeys: number, private readonly idleAfter: number, private readonly grow: (capacity: number) => void) {
    if (!(maxKeys >= 1)) throw new RangeError(`maxKeys must be at least 1: ${maxKeys}`);
  }

  get size(): number {
    return this.index.size;
  }

  /** The key's slot and whether it is new (its state must be reset), marking it seen at `now`. */
  slot(key: string, now: number): { slot: number; fresh: boolean } {
    const existing = this.index.get(key);
    if (existing !== undefined) {
      this.lastSeen[existing] = now;
      return { slot: existing, fresh: false };
    }
    if (this.index.size >= this.maxKeys) this.evict(now);
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.allocated++;
      if (slot >= this.lastSeen.length) {
        const capacity = Math.min(this.maxKeys, Math.max(1024, this.lastSeen.length * 2));
        const grown = new Float64Array(capacity);
        grown.set(this.lastSeen);
        this.lastSeen = grown;
        this.grow(capacity);
      }
    }
    this.index.set(key, slot);
    this.lastSeen[slot] = now;
    return { slot, fresh: true };
  }

  /** Drops keys not seen since before `now - idleAfter`. */
  sweep(now: number): void {
    for (const [key, slot] of this.index) {
      if (now - this.lastSeen[slot] > this.idleAfter) this.drop(key, slot);
    }
  }

  /** Drops a key's slot, so that its next window starts afresh. */
  forget(key: string): void {
    const slot = this.index.get(key);
    if (slot !== undefined) this.drop(key, slot);
  }

  private evict(now: number): void {
    this.sweep(now);
    if (this.index.size < this.maxKeys) return;
    let n = Math.max(1, this.maxKeys >> 3);
    for (const [key, slot] of this.index) {
      if (n-- <= 0) break;
      this.drop(key, slot);
    }
  }

  private drop(key: string, slot: number): void {
    this.index.delete(key);
    this.free.push(slot);
  }
}
