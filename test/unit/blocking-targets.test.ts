import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { allowConflict } from '../../blocking/allowlist';
import { contains, normalizeTarget, overlaps } from '../../blocking/targets';
import { findToken, loadTokens, scopeAllows } from '../../blocking/tokens';
import { checkWidth, widthLimitsFromEnv } from '../../blocking/widths';

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
  const secret = (c: string) => c.repeat(16);

  test('name:scope:secret from the environment and a file', () => {
    expect(loadTokens({ env: { XDP_IDS_API_TOKENS: ` ops:write:${secret('a')} , grafana:read:${secret('b')}:with:colons,` } })).toEqual([
      { name: 'ops', scope: 'write', secret: secret('a') }, { name: 'grafana', scope: 'read', secret: `${secret('b')}:with:colons` },
    ]);
    expect(loadTokens({ env: {} })).toEqual([]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-tokens-'));
    try {
      const file = path.join(dir, 'tokens');
      fs.writeFileSync(file, `# operators\nops:write:${secret('c')}\n\nreader:read:${secret('d')}\n`, { mode: 0o600 });
      expect(loadTokens({ env: {}, file }).map((t) => `${t.name}:${t.scope}`)).toEqual(['ops:write', 'reader:read']);
      expect(() => loadTokens({ env: { XDP_IDS_API_TOKENS: `ops:read:${secret('e')}` }, file })).toThrow(`${file}:2: token name ops is already used (XDP_IDS_API_TOKENS entry 1)`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test.each([
    [secret('a'), /^XDP_IDS_API_TOKENS entry 1: expected name:scope:secret/],
    [`Ops:write:${secret('a')}`, /the token name "Ops" must be 1-32 of a-z, 0-9, _ and -/],
    [`ops:admin:${secret('a')}`, /token ops has scope "admin"; use read or write/],
    ['ops:write:short', /the secret of token ops has 5 characters; it needs at least 16/],
    [`a:read:${secret('x')},b:write:${secret('x')}`, /entry 2: token b has the same secret as token a/],
  ])('%j is refused without repeating the secret', (text, message) => {
    expect(() => loadTokens({ env: { XDP_IDS_API_TOKENS: text } })).toThrow(message);
    try {
      loadTokens({ env: { XDP_IDS_API_TOKENS: text } });
    } catch (err) {
      expect((err as Error).message).not.toContain(secret('a'));
      expect((err as Error).message).not.toContain('short');
    }
  });

  test('a token file that others may read is refused', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-tokens-'));
    try {
      const file = path.join(dir, 'tokens');
      fs.writeFileSync(file, `ops:write:${secret('c')}\n`);
      fs.chmodSync(file, 0o644);
      expect(() => loadTokens({ env: {}, file })).toThrow(`token file ${file}: holds a secret but its group or others may read it (mode 0644): chmod 600 ${file}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a secret matches only exactly, and finds its token', () => {
    const tokens = loadTokens({ env: { XDP_IDS_API_TOKENS: `a:read:${secret('a')},b:write:${secret('b')}` } });
    expect(findToken(secret('b'), tokens)?.name).toBe('b');
    expect(findToken(secret('b').slice(1), tokens)).toBeUndefined();
    expect(findToken('', tokens)).toBeUndefined();
    expect(findToken(secret('a'), [])).toBeUndefined();
  });

  test('write implies read', () => {
    expect([scopeAllows('read', 'read'), scopeAllows('read', 'write'), scopeAllows('write', 'read'), scopeAllows('write', 'write')]).toEqual([true, false, true, true]);
  });
});

describe('width limits', () => {
  const p = (t: string) => normalizeTarget(t, { keepExplicitV6Host: true });

  test('defaults: blocks /16 and /32, allow entries /8 and /16 (loopback /8 stays acceptable)', () => {
    expect(widthLimitsFromEnv({})).toEqual({ block: { v4: 16, v6: 32 }, allow: { v4: 8, v6: 16 } });
    expect(() => checkWidth(p('198.18.0.0/16'), 'block', widthLimitsFromEnv({}))).not.toThrow();
    expect(() => checkWidth(p('2001:db8::/32'), 'block', widthLimitsFromEnv({}))).not.toThrow();
    expect(() => checkWidth(p('127.0.0.0/8'), 'allow', widthLimitsFromEnv({}))).not.toThrow();
    expect(() => checkWidth(p('198.16.0.0/15'), 'block', widthLimitsFromEnv({}))).toThrow(
      '198.16.0.0/15 is too wide: blocks must be /16 or narrower for IPv4 (the limit is XDP_IDS_BLOCK_MIN_PREFIX, now 16/32; a /0 is never allowed)');
    expect(() => checkWidth(p('2000::/3'), 'block', widthLimitsFromEnv({}))).toThrow(/2000::\/3 is too wide: blocks must be \/32 or narrower for IPv6/);
    expect(() => checkWidth(p('0.0.0.0/0'), 'allow', widthLimitsFromEnv({}))).toThrow(/0\.0\.0\.0\/0 is too wide: allow entries must be \/8 or narrower for IPv4 \(the limit is XDP_IDS_ALLOW_MIN_PREFIX, now 8\/16/);
    expect(() => checkWidth(p('::/0'), 'allow', widthLimitsFromEnv({}))).toThrow(/::\/0 is too wide/);
  });

  test('the environment makes limits stricter or looser, never /0', () => {
    const looser = widthLimitsFromEnv({ XDP_IDS_BLOCK_MIN_PREFIX: '8/24', XDP_IDS_ALLOW_MIN_PREFIX: '1/1' });
    expect(looser).toEqual({ block: { v4: 8, v6: 24 }, allow: { v4: 1, v6: 1 } });
    expect(() => checkWidth(p('10.0.0.0/8'), 'block', looser)).not.toThrow();
    expect(() => checkWidth(p('0.0.0.0/0'), 'allow', looser)).toThrow(/too wide/);
    expect(() => checkWidth(p('198.18.0.0/20'), 'block', widthLimitsFromEnv({ XDP_IDS_BLOCK_MIN_PREFIX: '24/64' }))).toThrow(/must be \/24 or narrower/);
    for (const bad of ['0/32', '16/0', '16', '33/32', '16/129', 'sixteen']) {
      expect(() => widthLimitsFromEnv({ XDP_IDS_BLOCK_MIN_PREFIX: bad })).toThrow(/^XDP_IDS_BLOCK_MIN_PREFIX=".*": expected <IPv4 length>\/<IPv6 length>, e\.g\. 16\/32/);
    }
    expect(() => checkWidth(p('0.0.0.0/0'), 'block', { block: { v4: 0, v6: 0 }, allow: { v4: 0, v6: 0 } })).toThrow(/must be \/1 or narrower/);
  });
});
