/**
 * Linear counting (Whang et al., 1990) for the kernel's distinct-port/host/source bitmaps: with m
 * bits of which b are set, n ≈ -m·ln(1 - b/m). Standard error sqrt(m(e^t - t - 1))/n with t = n/m:
 * for m = 256 about 5% at n = 256 and 11% at n = 1000; a full bitmap (saturation, about m·ln m
 * distinct values) reports that bound.
 */
export function estimateDistinct(bitsSet: number, m: number): number {
  if (bitsSet <= 0) return 0;
  if (bitsSet >= m) return Math.round(m * Math.log(m));
  return Math.round(-m * Math.log(1 - bitsSet / m));
}

/** The number of set bits expected after n distinct values: turns a threshold into kernel units. */
export function expectedBits(n: number, m: number): number {
  if (n <= 0) return 0;
  return Math.min(m, Math.ceil(m * (1 - Math.exp(-n / m))));
}
