import { allowConflict } from '../../blocking/allowlist';
import { contains, normalizeTarget, overlaps } from '../../blocking/targets';
import { loadTokens, tokenMatches } from '../../blocking/tokens';

describe('block targets', () => {
  test('IPv4 addresses become /32, prefixes lose their host bits', () => {
    expect(normalizeTarget('198.18.2.66').text).toBe('198.18.2.66/32');
    expect(normalizeTarget('198.18.2.66/24').text).toBe('198.18.2.0/24');
  });

  test('IPv6 single addresses widen to their /64; an explicit /128 from an operator is kept', () => {
    expect(normalizeTarget('fd00:18:2::66').text).toBe('fd00:18:2::/64');
    expect(normalizeTarget('fd00:18:2::66/128').text).toBe('fd00:18:2::/64');
    expect(normalizeTarget('fd00:18:2::66/128', { keepExplicitV6Host: true }).text).toBe('fd00:18:2::66/128');
    expect(normalizeTarget('fd00:18:2::66', { v6SinglePrefix: 56 }).text).toBe('fd00:18:2::/56');
    expect(normalizeTarget('fd00:18::/48').text).toBe('fd00:18::/48');
  });

  test('bad targets are rejected with the reason', () => {
    expect(() => normalizeTarget('198.18.2.256')).toThrow(/not an IP address: "198\.18\.2\.256" \(IPv4 must be four decimal numbers 0-255 without leading zeros\)/);
    expect(() => normalizeTarget('198.18.2.0/33')).toThrow(/prefix length must be 0\.\.32/);
    expect(() => normalizeTarget('fd00::/129')).toThrow(/prefix length must be 0\.\.128/);
    expect(() => normalizeTarget('host.example')).toThrow(/not an IP address: "host\.example"/);
  });

  test('containment and overlap, per family', () => {
    const p = (t: string) => normalizeTarget(t, { keepExplicitV6Host: true });
    expect(contains(p('198.18.0.0/16'), p('198.18.2.66'))).toBe(true);
    expect(contains(p('198.18.2.66'), p('198.18.0.0/16'))).toBe(false);
    expect(overlaps(p('198.18.2.66'), p('198.18.0.0/16'))).toBe(true);
    expect(overlaps(p('198.18.2.0/24'), p('198.18.3.0/24'))).toBe(false);
    expect(overlaps(p('::ffff:198.18.2.66'), p('198.18.2.0/24'))).toBe(true);
    expect(overlaps(p('fd00:18:2::/64'), p('fd00:18:2::1/128'))).toBe(true);
    expect(overlaps(p('0.0.0.0/0'), p('::/0'))).toBe(false);
  });

  test('an allow conflict names the entry a block would touch', () => {
    const rules = [{ prefix: normalizeTarget('192.0.2.1'), reason: 'default gateway' }];
    expect(allowConflict(normalizeTarget('192.0.2.0/24'), rules)?.reason).toBe('default gateway');
    expect(allowConflict(normalizeTarget('192.0.2.2'), rules)).toBeUndefined();
  });
});

describe('API tokens', () => {
  test('from the environment and a file, short ones rejected', () => {
    expect(loadTokens({ env: { XDP_IDS_API_TOKENS: ' aaaaaaaaaaaaaaaa , bbbbbbbbbbbbbbbb,' } })).toEqual(['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
    expect(loadTokens({ env: {} })).toEqual([]);
    expect(() => loadTokens({ env: { XDP_IDS_API_TOKENS: 'short' } })).toThrow(/at least 16 characters \(one has 5\)/);
  });

  test('a token matches only exactly', () => {
    const tokens = ['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb'];
    expect(tokenMatches('bbbbbbbbbbbbbbbb', tokens)).toBe(true);
    expect(tokenMatches('bbbbbbbbbbbbbbb', tokens)).toBe(false);
    expect(tokenMatches('', tokens)).toBe(false);
    expect(tokenMatches('aaaaaaaaaaaaaaaa', [])).toBe(false);
  });
});
