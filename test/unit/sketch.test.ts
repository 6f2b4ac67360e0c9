import { estimateDistinct, expectedBits } from '../../sensor/sketch';
import { sketchHash } from '../support/reference';

/** Sets bits the way the kernel does for ports: the top bits of the sketch hash. */
function bitsForPorts(ports: number[], m: number): number {
  const shift = 32 - Math.log2(m);
  return new Set(ports.map((p) => sketchHash(p) >>> shift)).size;
}

function standardError(n: number, m: number): number {
  const t = n / m;
  return Math.sqrt(m * (Math.exp(t) - t - 1)) / n;
}

describe('linear counting', () => {
  test.each([10, 50, 100, 256, 500, 1000])('%i distinct random ports in a 256-bit sketch: within 3 standard errors', (n) => {
    let seed = n;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const errors: number[] = [];
    for (let trial = 0; trial < 50; trial++) {
      const ports = new Set<number>();
      while (ports.size < n) ports.add(Math.floor(rand() * 65536));
      errors.push(estimateDistinct(bitsForPorts([...ports], 256), 256) / n - 1);
    }
    const rmse = Math.sqrt(errors.reduce((s, e) => s + e * e, 0) / errors.length);
    expect(rmse).toBeLessThan(3 * standardError(n, 256) + 0.01);
  });

  test('a sequential port scan (nmap order) estimates close to the truth', () => {
    const ports = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(Math.abs(estimateDistinct(bitsForPorts(ports, 256), 256) - 100)).toBeLessThan(15);
  });

  test('saturation reports the m·ln(m) bound; zero is zero', () => {
    expect(estimateDistinct(256, 256)).toBe(Math.round(256 * Math.log(256)));
    expect(estimateDistinct(0, 256)).toBe(0);
  });

  test('expectedBits inverts the estimate (thresholds in kernel units)', () => {
    for (const n of [5, 40, 100, 300]) {
      expect(Math.abs(estimateDistinct(expectedBits(n, 256), 256) - n)).toBeLessThanOrEqual(Math.max(2, n * 0.02));
    }
    expect(expectedBits(100000, 256)).toBe(256);
  });
});
