/**
 * The kernel stamps with CLOCK_MONOTONIC_COARSE (bpf_ktime_get_coarse_ns), which trails
 * CLOCK_MONOTONIC (process.hrtime on Linux) by at most one jiffy.
 */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

export function monoToWallMs(ns: bigint): number {
  return Date.now() - Number(monotonicNs() - ns) / 1e6;
}

/** Wall-clock ms to the kernel's clock, for block expiries. */
export function wallMsToMono(ms: number): bigint {
  return monotonicNs() + BigInt(Math.round((ms - Date.now()) * 1e6));
}
