/**
 * SourceTrust (detector/source-trust.ts): the verdict a block request carries. Only a source that
 * completed a handshake during the attack being answered, and whose packets since stayed on that handshake's TTL,
 * is verified; everything a forger can produce leaves it unverified.
 */
import { sourceWindowOf } from '../../common/sensor-tick';
import { SourceTrust } from '../../detector/source-trust';

const T0 = 1_700_000_000_000;
const MIN = 60_000;

describe('SourceTrust', () => {
  test('a source whose handshake the kernel saw, with no TTL mismatches, is verified', () => {
    const trust = new SourceTrust();
    trust.observe(sourceWindowOf('198.18.62.10', { packets: 40, syn: 5, handshakes: 1, verifiedMs: T0 }), T0 + 1000);
    expect(trust.evidenceOf('198.18.62.10', T0 - 1000)).toBe('verified');
  });

  test('a source that never completed a handshake is unverified, however much it sent', () => {
    const trust = new SourceTrust();
    trust.observe(sourceWindowOf('198.18.62.66', { packets: 5000, syn: 5000, finOnly: 20 }), T0);
    expect(trust.evidenceOf('198.18.62.66', T0)).toBe('unverified');
    expect(trust.evidenceOf('198.18.62.99', T0)).toBe('unverified');
  });

  test('a verified source whose recent packets are mostly TTL mismatches (forged in its name) is not verified', () => {
    const trust = new SourceTrust();
    trust.observe(sourceWindowOf('198.18.62.10', { packets: 10, handshakes: 1, verifiedMs: T0 }), T0);
    trust.observe(sourceWindowOf('198.18.62.10', { packets: 200, finOnly: 200, ttlMismatch: 180, verifiedMs: T0 }), T0 + 1000);
    expect(trust.evidenceOf('198.18.62.10', T0)).toBe('unverified');
  });

  test('a few mismatches (a route change) within the allowed share keep the source verified', () => {
    const trust = new SourceTrust({ maxMismatchShare: 0.1 });
    trust.observe(sourceWindowOf('198.18.62.10', { packets: 100, handshakes: 1, verifiedMs: T0 }), T0);
    trust.observe(sourceWindowOf('198.18.62.10', { packets: 100, ttlMismatch: 15, verifiedMs: T0 }), T0 + 1000);
    expect(trust.evidenceOf('198.18.62.10', T0)).toBe('verified');
  });

  test('a handshake from before the attack does not verify it: the forger picks a client that once completed one', () => {
    const trust = new SourceTrust();
    trust.observe(sourceWindowOf('198.18.62.10', { packets: 10, handshakes: 1, verifiedMs: T0 }), T0);
    expect(trust.evidenceOf('198.18.62.10', T0)).toBe('verified');
    // The kernel stamps a handshake with the start of its 1.07 s unit: one later in that unit still counts, one after it does not.
    expect(trust.evidenceOf('198.18.62.10', T0 + 1000)).toBe('verified');
    expect(trust.evidenceOf('198.18.62.10', T0 + 1100)).toBe('unverified');
    // A handshake during the attack (a connect scan) does.
    trust.observe(sourceWindowOf('198.18.62.10', { packets: 10, handshakes: 1, verifiedMs: T0 + 40 * MIN }), T0 + 40 * MIN);
    expect(trust.evidenceOf('198.18.62.10', T0 + 39 * MIN)).toBe('verified');
  });

  test('past maxSources the least recently seen source is forgotten first', () => {
    const trust = new SourceTrust({ maxSources: 2 });
    trust.observe(sourceWindowOf('198.18.62.1', { packets: 1, verifiedMs: T0 }), T0);
    trust.observe(sourceWindowOf('198.18.62.2', { packets: 1, verifiedMs: T0 }), T0 + 1);
    trust.observe(sourceWindowOf('198.18.62.1', { packets: 1, verifiedMs: T0 }), T0 + 2);
    trust.observe(sourceWindowOf('198.18.62.3', { packets: 1, verifiedMs: T0 }), T0 + 3);
    expect(['198.18.62.1', '198.18.62.2', '198.18.62.3'].map((a) => trust.evidenceOf(a, T0))).toEqual(['verified', 'unverified', 'verified']);
  });
});
