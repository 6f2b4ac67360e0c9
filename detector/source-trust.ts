/**
 * Whether a source address is real, from what the sensors saw of it: a TCP handshake completed
 * with a protected host (it ACKed a SYN-ACK of ours, which only the address's real owner
 * receives) during the attack being answered, and TTLs that stayed on that handshake's path since
 * (packets forged in its name usually arrive over another path). Block requests carry the verdict
 * (BlockRequest.evidence): only verified sources get long blocks and escalation.
 *
 * The handshake must belong to the attack: an earlier one only proves that the address once had
 * a real owner, which is exactly the client an attacker would forge to get it blocked for long.
 */
import type { SourceWindow } from '../common/sensor-tick';

interface Trust {
  verifiedMs: number;
  /** Packets and TTL mismatches since the handshake, decayed with HALF_LIFE_MS. */
  packets: number;
  mismatches: number;
  atMs: number;
}

const HALF_LIFE_MS = 60_000;
/**
 * A window's verifiedMs is the start of the kernel's coarse time unit (2^30 ns, bpf/xdp_ids.h
 * verified_at) that the handshake fell in: the handshake itself came up to this much later.
 */
const HANDSHAKE_STAMP_UNIT_MS = 2 ** 30 / 1e6;

export interface SourceTrustOptions {
  /** Share of recent packets off the handshake's TTL above which the source is not trusted. Default 0.1. */
  maxMismatchShare?: number;
  /** Verified sources remembered; the least recently seen are forgotten first. Default 100,000. */
  maxSources?: number;
}

export class SourceTrust {
  private readonly bySource = new Map<string, Trust>();
  private readonly maxMismatchShare: number;
  private readonly maxSources: number;

  constructor(opts: SourceTrustOptions = {}) {
    this.maxMismatchShare = opts.maxMismatchShare ?? 0.1;
    this.maxSources = opts.maxSources ?? 100_000;
  }

  /** A window of a source (a tick's, or a trip's counts so far); only sources that ever completed a handshake are kept. */
  observe(w: SourceWindow, nowMs = Date.now()): void {
    const known = this.bySource.get(w.src);
    if (!known && !(w.verifiedMs > 0)) return;
    const t = known ?? { verifiedMs: 0, packets: 0, mismatches: 0, atMs: nowMs };
    const decay = 0.5 ** (Math.max(0, nowMs - t.atMs) / HALF_LIFE_MS);
    t.packets = t.packets * decay + w.packets;
    t.mismatches = t.mismatches * decay + w.ttlMismatch;
    t.atMs = nowMs;
    t.verifiedMs = Math.max(t.verifiedMs, w.verifiedMs);
    this.bySource.delete(w.src);
    this.bySource.set(w.src, t);
    if (this.bySource.size > this.maxSources) this.bySource.delete(this.bySource.keys().next().value!);
  }

  /** `sinceMs`: when the attack began; only a handshake completed since then verifies it. */
  evidenceOf(address: string, sinceMs: number): 'verified' | 'unverified' {
    const t = this.bySource.get(address);
    if (!t || t.verifiedMs + HANDSHAKE_STAMP_UNIT_MS <= sinceMs) return 'unverified';
    return t.mismatches <= this.maxMismatchShare * Math.max(t.packets, 1) ? 'verified' : 'unverified';
  }
}
