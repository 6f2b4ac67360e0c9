/**
 * Which Redis a command uses and how its secrets are handled: passwords never on the command
 * line nor in any message, URL files only when private, no unauthenticated Redis off this host
 * unless told, TLS files only with rediss://, and every URL form redacted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { redactUrl, urlWithCredentials } from '../../common/redis';
import { RedisConfigError, resolveRedis, type RedisCliOptions } from '../../common/redis-config';
import { parseRedisUrl, RedisUrlError } from '../../common/redis-topology';
import { aclRules, KEY_MAP } from '../../common/redis-roles';

const SECRET = 'S3cret-p@ss';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-redis-config-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string, mode = 0o600): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  fs.chmodSync(p, mode);
  return p;
}

/** The error resolveRedis throws, checked to be a RedisConfigError that leaks no password. */
function refusal(opts: RedisCliOptions, env: NodeJS.ProcessEnv = {}): string {
  try {
    resolveRedis(opts, env);
  } catch (err) {
    expect(err).toBeInstanceOf(RedisConfigError);
    expect((err as Error).message).not.toContain('S3cret');
    return (err as Error).message;
  }
  throw new Error('resolveRedis accepted it');
}

describe('redactUrl', () => {
  test.each([
    ['redis://:S3cret@10.0.0.5:6379', 'redis://:***@10.0.0.5:6379'],
    ['redis://xdp-ids-sensor:S3cret@10.0.0.5:6379/2', 'redis://xdp-ids-sensor:***@10.0.0.5:6379/2'],
    ['rediss://u:S3cret@redis.example:6380', 'rediss://u:***@redis.example:6380'],
    // An unescaped @ in the password: the host is after the last one, for us as for ioredis.
    ['redis://:S3cret@part@10.0.0.5:6379', 'redis://:***@10.0.0.5:6379'],
    ['redis://u:S3cret%40part@[::1]:6379', 'redis://u:***@[::1]:6379'],
    ['redis://10.0.0.5:6379?password=S3cret&db=1', 'redis://10.0.0.5:6379?password=***&db=1'],
    ['redis://10.0.0.5?sentinelPassword=S3cret', 'redis://10.0.0.5?sentinelPassword=***'],
    ['unix:///run/xdp-ids/redis.sock?username=xdp-ids-sensor&password=S3cret', 'unix:///run/xdp-ids/redis.sock?username=xdp-ids-sensor&password=***'],
    ['redis://S3cret@10.0.0.5', 'redis://***@10.0.0.5'],
    ['redis://10.0.0.5:6379', 'redis://10.0.0.5:6379'],
    ['redis://:S3cret@[not-a-host', '(a Redis URL that does not parse)'],
    ['redis+sentinel://xdp-ids-sensor:S3cret@10.0.0.5:26379,10.0.0.6/mymaster', 'redis+sentinel://xdp-ids-sensor:***@10.0.0.5:26379,10.0.0.6:26379/mymaster'],
    ['rediss+sentinel://u:S3cret@[fd00::5]:26379/main?sentinelPassword=S3cret', 'rediss+sentinel://u:***@[fd00::5]:26379/main?sentinelPassword=***'],
    ['redis+cluster://S3cret@10.0.0.5:7000,10.0.0.6:7001', 'redis+cluster://***@10.0.0.5:7000,10.0.0.6:7001'],
    ['redis+cluster://:S3cret@10.0.0.5:7000,[oops', '(a Redis URL that does not parse)'],
  ])('%s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
    expect(redactUrl({ url })).toBe(redacted);
  });
});

test('urlWithCredentials puts them where each kind of URL carries them', () => {
  expect(urlWithCredentials('redis://10.0.0.5:6379', 'xdp-ids-sensor', 'a+b/c=')).toBe('redis://xdp-ids-sensor:a%2Bb%2Fc%3D@10.0.0.5:6379');
  expect(urlWithCredentials('unix:///run/xdp-ids/redis.sock', 'xdp-ids-sensor', 'a+b')).toBe('unix:///run/xdp-ids/redis.sock?username=xdp-ids-sensor&password=a%2Bb');
  expect(urlWithCredentials('redis+sentinel://10.0.0.5,10.0.0.6:26380/mymaster', 'xdp-ids-sensor', 'a+b'))
    .toBe('redis+sentinel://xdp-ids-sensor:a%2Bb@10.0.0.5:26379,10.0.0.6:26380/mymaster');
  expect(urlWithCredentials('rediss+cluster://10.0.0.5:7000,10.0.0.6:7000', 'xdp-ids-sensor', 'a+b')).toBe('rediss+cluster://xdp-ids-sensor:a%2Bb@10.0.0.5:7000,10.0.0.6:7000');
});

describe('Sentinel and Cluster URLs', () => {
  test('each names its hosts (default ports 26379 and 6379), credentials and the primary\'s name', () => {
    expect(parseRedisUrl('redis+sentinel://u:p%40ss@10.0.0.5,[fd00::6]:26380/my%20primary?sentinelUsername=s&sentinelPassword=sp')).toEqual({
      kind: 'sentinel', tls: false, nodes: [{ host: '10.0.0.5', port: 26379 }, { host: 'fd00::6', port: 26380 }], name: 'my primary',
      username: 'u', password: 'p@ss', sentinelUsername: 's', sentinelPassword: 'sp',
    });
    expect(parseRedisUrl('rediss+cluster://127.0.0.1:7000,127.0.0.1')).toEqual({
      kind: 'cluster', tls: true, nodes: [{ host: '127.0.0.1', port: 7000 }, { host: '127.0.0.1', port: 6379 }], username: '', password: '',
    });
  });

  test.each([
    ['redis+sentinel://10.0.0.5:26379', /ends with the name the Sentinels know the primary by/],
    ['redis+sentinel://10.0.0.5:26379/a/b', /ends with the name the Sentinels know the primary by/],
    ['redis+sentinel://10.0.0.5/m?password=S3cret', /takes only sentinelUsername and sentinelPassword as query parameters, not password/],
    ['redis+cluster://10.0.0.5/2', /has no path: a cluster has one database/],
    ['redis+cluster://10.0.0.5?db=1', /takes no query parameters/],
    ['redis+cluster://u:S3cret@10.0.0.5:7000,10.0.0.6:notaport', /a host in the Redis URL's host list does not parse/],
    ['redis+cluster://u:S3cret@10.0.0.5:7000,,10.0.0.6', /a host in the Redis URL's host list/],
    ['redis+shard://10.0.0.5', /does not parse; expected redis:\/\//],
  ])('%s is refused: %s', (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(RedisUrlError);
    expect(() => parseRedisUrl(url)).toThrow(message);
    try {
      parseRedisUrl(url);
    } catch (err) {
      expect((err as Error).message).not.toContain('S3cret');
    }
  });

  test('they go through the same checks: no password on the command line, none missing off this host, TLS files with TLS only', () => {
    expect(refusal({ redis: `redis+sentinel://u:${SECRET}@127.0.0.1:26379/m` })).toMatch(/--redis must not carry a password/);
    expect(refusal({ redis: `redis+sentinel://127.0.0.1:26379/m?sentinelPassword=${SECRET}` })).toMatch(/--redis must not carry a password/);
    expect(resolveRedis({ redis: 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001' }, {})).toEqual({ connection: { url: 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001' }, warnings: [] });
    // Local only when every host it names is.
    expect(refusal({ redis: 'redis+cluster://127.0.0.1:7000,10.0.0.6:7001' })).toMatch(/is not on this host and the URL from --redis has no password/);
    expect(resolveRedis({}, { XDP_IDS_REDIS_URL: `redis+sentinel://u:${SECRET}@10.0.0.5/m` })!.warnings).toEqual([expect.stringMatching(/^plaintext connection to Redis at redis\+sentinel:\/\/u:\*\*\*@10\.0\.0\.5:26379\/m/)]);
    expect(resolveRedis({}, { XDP_IDS_REDIS_URL: `rediss+sentinel://u:${SECRET}@10.0.0.5/m` })!.warnings).toEqual([]);
    expect(refusal({ redisCa: file('ca2.pem', 'pem', 0o644) }, { XDP_IDS_REDIS_URL: `redis+cluster://u:${SECRET}@10.0.0.5` })).toMatch(/are for TLS, but the URL from XDP_IDS_REDIS_URL is not/);
    expect(refusal({}, { XDP_IDS_REDIS_URL: `redis+sentinel://u:${SECRET}@10.0.0.5` })).toMatch(/^the Redis URL from XDP_IDS_REDIS_URL: a redis\+sentinel:\/\/ URL ends with the name/);
  });
});

describe('resolveRedis', () => {
  test('no Redis named: none', () => {
    expect(resolveRedis({}, {})).toBeUndefined();
    expect(resolveRedis({}, { XDP_IDS_REDIS_URL: '' })).toBeUndefined();
  });

  test('a password on the command line is refused, pointing to the file and the environment', () => {
    for (const url of [`redis://:${SECRET}@127.0.0.1:6379`, `redis://127.0.0.1:6379?password=${SECRET}`, `unix:///run/r.sock?password=${SECRET}`]) {
      expect(refusal({ redis: url })).toMatch(/--redis must not carry a password: .*\(ps\).*--redis-url-file FILE.*XDP_IDS_REDIS_URL_FILE or XDP_IDS_REDIS_URL/);
    }
    expect(resolveRedis({ redis: 'redis://127.0.0.1:6379' }, {})).toEqual({ connection: { url: 'redis://127.0.0.1:6379' }, warnings: [] });
  });

  test('a URL with a password comes from a private file or the environment', () => {
    const url = `redis://xdp-ids-detector:${SECRET}@10.0.0.5:6379`;
    const urlFile = file('detector.url', `${url}\n`);
    expect(resolveRedis({ redisUrlFile: urlFile }, {})!.connection).toEqual({ url });
    expect(resolveRedis({}, { XDP_IDS_REDIS_URL_FILE: urlFile })!.connection).toEqual({ url });
    expect(resolveRedis({}, { XDP_IDS_REDIS_URL: url })!.connection).toEqual({ url });
    // The command line wins over the environment.
    expect(resolveRedis({ redis: 'redis://127.0.0.1:7000' }, { XDP_IDS_REDIS_URL: url })!.connection.url).toBe('redis://127.0.0.1:7000');
  });

  test('a URL file others can read or change is refused with the fix', () => {
    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      const open = file(`open-${mode.toString(8)}.url`, `redis://:${SECRET}@10.0.0.5:6379\n`, mode);
      expect(refusal({ redisUrlFile: open })).toBe(`the Redis URL file ${open} is open to group or others (mode 0${mode.toString(8)}): chmod 600 ${open}`);
      expect(refusal({}, { XDP_IDS_REDIS_URL_FILE: open })).toMatch(/chmod 600/);
    }
    expect(refusal({ redisUrlFile: path.join(dir, 'missing.url') })).toMatch(/^cannot read the Redis URL file .*missing\.url: ENOENT/);
    expect(refusal({ redisUrlFile: dir })).toMatch(/is not a regular file/);
    expect(refusal({ redisUrlFile: file('empty.url', '\n') })).toMatch(/is empty/);
    expect(refusal({ redisUrlFile: file('two.url', `redis://:${SECRET}@a:1\nredis://b:2\n`) })).toMatch(/one URL on one line/);
  });

  test('two sources at one level are refused rather than guessed between', () => {
    expect(refusal({ redis: 'redis://127.0.0.1', redisUrlFile: file('x.url', 'redis://127.0.0.1') })).toMatch(/either --redis or --redis-url-file/);
    expect(refusal({}, { XDP_IDS_REDIS_URL: 'redis://127.0.0.1', XDP_IDS_REDIS_URL_FILE: file('y.url', 'redis://127.0.0.1') })).toMatch(/either XDP_IDS_REDIS_URL or XDP_IDS_REDIS_URL_FILE/);
  });

  test('bad URLs are named by where they came from, never echoed', () => {
    expect(refusal({}, { XDP_IDS_REDIS_URL: `redis://:${SECRET}@[oops` })).toMatch(/^the Redis URL from XDP_IDS_REDIS_URL does not parse; expected redis:\/\//);
    expect(refusal({}, { XDP_IDS_REDIS_URL: `http://:${SECRET}@10.0.0.5` })).toMatch(/has the scheme http:/);
    expect(refusal({}, { XDP_IDS_REDIS_URL: 'unix://host/run/r.sock' })).toMatch(/names no socket path/);
  });

  test('an unauthenticated Redis off this host is refused unless told it is protected otherwise', () => {
    expect(refusal({ redis: 'redis://10.0.0.5:6379' })).toMatch(/^Redis at redis:\/\/10\.0\.0\.5:6379 is not on this host and the URL from --redis has no password: .*--insecure-redis \(XDP_IDS_INSECURE_REDIS=1\)/);
    expect(refusal({}, { XDP_IDS_REDIS_URL: 'rediss://xdp-ids-sensor@redis.example:6380' })).toMatch(/has no password/);
    expect(resolveRedis({ redis: 'redis://10.0.0.5:6379', insecureRedis: true }, {})!.connection.url).toBe('redis://10.0.0.5:6379');
    expect(resolveRedis({ redis: 'redis://10.0.0.5:6379' }, { XDP_IDS_INSECURE_REDIS: '1' })!.connection.url).toBe('redis://10.0.0.5:6379');
    expect(refusal({ redis: 'redis://10.0.0.5:6379' }, { XDP_IDS_INSECURE_REDIS: 'yes' })).toMatch(/XDP_IDS_INSECURE_REDIS must be 1/);
    for (const local of ['redis://127.0.0.1:6379', 'redis://127.1.2.3', 'redis://localhost:6379', 'redis://[::1]:6379', 'unix:///run/xdp-ids/redis.sock']) {
      expect(resolveRedis({ redis: local }, {})).toEqual({ connection: { url: local }, warnings: [] });
    }
  });

  test('plaintext off this host works but is a warning; TLS and loopback are not', () => {
    const plain = resolveRedis({}, { XDP_IDS_REDIS_URL: `redis://u:${SECRET}@10.0.0.5:6379` })!;
    expect(plain.warnings).toEqual([expect.stringMatching(/^plaintext connection to Redis at redis:\/\/u:\*\*\*@10\.0\.0\.5:6379: .*use rediss:\/\//)]);
    expect(resolveRedis({}, { XDP_IDS_REDIS_URL: `rediss://u:${SECRET}@10.0.0.5:6380` })!.warnings).toEqual([]);
    expect(resolveRedis({}, { XDP_IDS_REDIS_URL: `redis://u:${SECRET}@127.0.0.1:6379` })!.warnings).toEqual([]);
  });

  test('TLS files go with rediss:// only; the client key must be private and come with its certificate', () => {
    const ca = file('ca.pem', 'pem', 0o644);
    const cert = file('client.pem', 'pem', 0o644);
    const key = file('client.key', 'key', 0o600);
    const rediss = { XDP_IDS_REDIS_URL: `rediss://u:${SECRET}@redis.example:6380` };
    expect(resolveRedis({ redisCa: ca }, rediss)!.connection.tls).toEqual({ ca });
    expect(resolveRedis({}, { ...rediss, XDP_IDS_REDIS_CA: ca, XDP_IDS_REDIS_CERT: cert, XDP_IDS_REDIS_KEY: key })!.connection.tls).toEqual({ ca, cert, key });
    expect(refusal({ redisCa: ca }, { XDP_IDS_REDIS_URL: `redis://u:${SECRET}@redis.example:6379` })).toMatch(/are for TLS, but the URL from XDP_IDS_REDIS_URL is not: use rediss:\/\//);
    expect(refusal({ redisCa: path.join(dir, 'nope.pem') }, rediss)).toMatch(/^cannot read the Redis CA file .*nope\.pem/);
    expect(refusal({}, { ...rediss, XDP_IDS_REDIS_CERT: cert })).toMatch(/needs both XDP_IDS_REDIS_CERT and XDP_IDS_REDIS_KEY/);
    expect(refusal({}, { ...rediss, XDP_IDS_REDIS_CERT: cert, XDP_IDS_REDIS_KEY: file('open.key', 'key', 0o644) })).toMatch(/the Redis client key .* chmod 600/);
    expect(refusal({ redisCa: ca }, {})).toMatch(/--redis-ca without a Redis URL/);
  });
});

describe('ACL rules', () => {
  const ledgerPatterns = (rules: string): string[] => rules.split(' ').filter((r) => KEY_MAP.ledger.some((p) => r.endsWith(`~${p}`)));

  test('the sensor reads the ledger and subscribes; the ledger\'s writers write it and publish; the alerter has none of it', () => {
    expect(ledgerPatterns(aclRules('sensor'))).toEqual(KEY_MAP.ledger.map((p) => `%R~${p}`));
    expect(aclRules('sensor')).toMatch(/&xdp-ids:blocks:changes .* \+subscribe \+unsubscribe$/);
    expect(aclRules('sensor')).not.toContain('+publish');
    for (const writer of ['detector', 'control'] as const) {
      expect(ledgerPatterns(aclRules(writer))).toEqual(KEY_MAP.ledger.map((p) => `~${p}`));
      expect(aclRules(writer)).toMatch(/\+publish$/);
    }
    expect(ledgerPatterns(aclRules('alerter'))).toEqual([]);
    expect(aclRules('alerter')).not.toContain('&');
  });
});
