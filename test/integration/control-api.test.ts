/**
 * The control API over real HTTPS (a throwaway CA made with openssl) on a real redis-server, and
 * the CLI on the same ledger: scoped, named tokens (the name is the actor of every change), a
 * lockout for addresses that keep failing to authenticate, width limits, known sensor scopes,
 * clean reasons, and an event with its actor for every block, limit and allow change.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { startControlApi, type ControlApi, type ControlApiOptions } from '../../blocking/api';
import { cliActor, registerBlockingCommands } from '../../blocking/cli';
import { BlockLedger } from '../../blocking/ledger';
import type { ApiToken } from '../../blocking/tokens';
import { ALERTS_QUEUE, type AlertEvent, type BlockEvent } from '../../common/alert-events';
import { connectRedis, startEmbeddedRedis, type EmbeddedRedis } from '../../common/redis';
import { quietLogger } from '../support/quiet-logger';
import { httpsRequest, makeTestCertificates, type TestCertificates } from '../support/tls';

const OPS: ApiToken = { name: 'ops', scope: 'write', secret: 'ops-secret-0123456789abcdef' };
const GRAFANA: ApiToken = { name: 'grafana', scope: 'read', secret: 'grafana-secret-0123456789' };

let dir: string;
let certs: TestCertificates;
let server: EmbeddedRedis;
let redis: Redis;
let alerts: Queue;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-control-api-'));
  certs = makeTestCertificates(dir);
  server = await startEmbeddedRedis();
  redis = connectRedis(server.url);
  alerts = new Queue(ALERTS_QUEUE, { connection: redis });
});

afterAll(async () => {
  await alerts?.close();
  redis?.disconnect();
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await redis.flushall();
});

async function start(over: Partial<ControlApiOptions> = {}): Promise<ControlApi> {
  return await startControlApi({
    redisUrl: server.url, host: '127.0.0.1', port: 0, tokens: [OPS, GRAFANA], log: quietLogger, blocker: { hostAllow: [] },
    tls: { cert: certs.cert, key: certs.key }, ...over,
  });
}

async function blockEvents(): Promise<BlockEvent[]> {
  return (await alerts.getJobs(['waiting'])).map((j) => j.data as AlertEvent).filter((e): e is BlockEvent => e.kind === 'block').sort((a, b) => a.atMs - b.atMs);
}

describe('serving', () => {
  test('HTTPS with the configured certificate; plain HTTP only on the loopback or when asked for in so many words', async () => {
    const api = await start();
    try {
      expect(api.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(await httpsRequest(`${api.url}/health`, certs.ca)).toMatchObject({ status: 200, json: { status: 'ok' } });
      await expect(httpsRequest(`${api.url}/health`, makeTestCertificates(fs.mkdtempSync(path.join(dir, 'other-'))).ca)).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    } finally {
      await api.close();
    }
    await expect(start({ host: '0.0.0.0', tls: undefined })).rejects.toThrow(/refusing to serve the control API .* over plain HTTP on 0\.0\.0\.0: pass --tls-cert and --tls-key/);
    const insecure = await start({ host: '0.0.0.0', tls: undefined, insecureHttp: true });
    await insecure.close();
    const local = await start({ tls: undefined });
    expect(local.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    await local.close();
  });
});

describe('tokens', () => {
  let api: ControlApi;
  beforeAll(async () => {
    api = await start();
  });
  afterAll(async () => {
    await api?.close();
  });

  test('a read token lists and scrapes but cannot change anything; a write token can do both', async () => {
    expect((await httpsRequest(`${api.url}/v1/blocks`, certs.ca, { token: GRAFANA.secret })).status).toBe(200);
    expect((await httpsRequest(`${api.url}/metrics`, certs.ca, { token: GRAFANA.secret })).status).toBe(200);
    const refused = await httpsRequest(`${api.url}/v1/blocks`, certs.ca, { method: 'POST', token: GRAFANA.secret, body: { target: '198.18.2.66' } });
    expect(refused).toMatchObject({ status: 403, json: { error: 'token grafana has scope read; POST /v1/blocks needs a token with scope write' } });
    expect(refused.headers['www-authenticate']).toMatch(/insufficient_scope/);
    expect((await httpsRequest(`${api.url}/v1/allows/198.18.2.5/32`, certs.ca, { method: 'DELETE', token: GRAFANA.secret })).status).toBe(403);
    expect((await httpsRequest(`${api.url}/v1/blocks`, certs.ca, { method: 'POST', token: OPS.secret, body: { target: '198.18.2.66' } })).status).toBe(201);
    expect((await httpsRequest(`${api.url}/v1/blocks`, certs.ca, { token: OPS.secret })).json.blocks).toEqual([expect.objectContaining({ target: '198.18.2.66/32', actor: 'api:ops' })]);
    expect((await httpsRequest(`${api.url}/v1/blocks`, certs.ca, { token: 'not-a-token-0123456789' })).status).toBe(401);
  });
});

describe('failed authentication', () => {
  test('ten failures in a minute lock the address out for a minute, good token or not; successes and requests without credentials never count', async () => {
    const api = await start();
    try {
      const get = (token?: string) => httpsRequest(`${api.url}/v1/blocks`, certs.ca, { token });
      for (let i = 0; i < 20; i++) expect((await get(OPS.secret)).status).toBe(200);
      for (let i = 0; i < 20; i++) expect((await get()).status).toBe(401);
      const failures = [];
      for (let i = 0; i < 10; i++) failures.push((await get(`wrong-token-${i}-0123456789`)).status);
      expect(failures).toEqual(Array(10).fill(401));
      const locked = await get('wrong-token-x-0123456789');
      expect(locked).toMatchObject({ status: 429, json: { error: expect.stringMatching(/^too many failed authentications from this address: retry in \d+ s$/) } });
      expect(Number(locked.headers['retry-after'])).toBeGreaterThanOrEqual(59);
      expect((await get(OPS.secret)).status).toBe(429);
      expect((await get()).status).toBe(429);
      expect((await httpsRequest(`${api.url}/health`, certs.ca)).status).toBe(200);
    } finally {
      await api.close();
    }
  });
});

describe('changes', () => {
  let api: ControlApi;
  beforeAll(async () => {
    api = await start();
  });
  afterAll(async () => {
    await api?.close();
  });
  const call = (method: string, route: string, body?: unknown) => httpsRequest(`${api.url}${route}`, certs.ca, { method, token: OPS.secret, body });

  test('every block, limit and allow change is announced with the token name as its actor', async () => {
    expect((await call('POST', '/v1/blocks', { target: '198.18.2.66', ttl: '10m', reason: 'scanner' })).status).toBe(201);
    expect((await call('DELETE', '/v1/blocks/198.18.2.66/32')).status).toBe(200);
    expect((await call('POST', '/v1/limits', { target: '198.18.2.1', rate: 500 })).status).toBe(201);
    expect((await call('DELETE', '/v1/limits/198.18.2.1')).status).toBe(200);
    expect((await call('POST', '/v1/allows', { target: '198.18.2.5', reason: 'admin' })).status).toBe(201);
    expect((await call('GET', '/v1/allows')).json.allows).toEqual([{ target: '198.18.2.5/32', reason: 'admin', actor: 'api:ops', source: 'manual' }]);
    expect((await call('DELETE', '/v1/allows/198.18.2.5/32')).status).toBe(200);
    expect((await blockEvents()).map((e) => [e.action ?? 'block', e.phase, e.target, e.actor])).toEqual([
      ['block', 'blocked', '198.18.2.66/32', 'api:ops'],
      ['block', 'unblocked', '198.18.2.66/32', 'api:ops'],
      ['limit', 'limited', '198.18.2.1', 'api:ops'],
      ['limit', 'unlimited', '198.18.2.1', 'api:ops'],
      ['allow', 'allowed', '198.18.2.5/32', 'api:ops'],
      ['allow', 'disallowed', '198.18.2.5/32', 'api:ops'],
    ]);
  });

  test('allow entries and blocks wider than the limits are refused', async () => {
    expect(await call('POST', '/v1/allows', { target: '0.0.0.0/0' })).toMatchObject({ status: 400, json: { error: expect.stringMatching(/^0\.0\.0\.0\/0 is too wide: allow entries must be \/8 or narrower for IPv4 \(the limit is XDP_IDS_ALLOW_MIN_PREFIX/) } });
    expect((await call('POST', '/v1/allows', { target: '::/0' })).json.error).toMatch(/^::\/0 is too wide/);
    expect((await call('POST', '/v1/blocks', { target: '2000::/3' })).json.error).toMatch(/^2000::\/3 is too wide: blocks must be \/32 or narrower for IPv6/);
    expect((await call('POST', '/v1/blocks', { target: '10.0.0.0/8' })).status).toBe(400);
    expect((await call('POST', '/v1/allows', { target: '127.0.0.0/8' })).status).toBe(201);
    expect((await call('POST', '/v1/blocks', { target: '010.0.0.1' })).json.error).toBe('not an IP address: "010.0.0.1" (IPv4 must be four decimal numbers 0-255 without leading zeros)');
    expect((await call('POST', '/v1/allows', { target: '0x7f.0.0.1' })).status).toBe(400);
    expect((await call('POST', '/v1/limits', { target: '1.2.3', rate: 10 })).status).toBe(400);
    expect((await call('DELETE', '/v1/limits/4294967295')).json.error).toBe('not an IP address: "4294967295" (IPv4 must be four decimal numbers 0-255 without leading zeros)');
    expect(await new BlockLedger(redis).allowEntries()).toEqual([expect.objectContaining({ target: '127.0.0.0/8' })]);
  });

  test('a manual block can be scoped to a running sensor or all, nothing else', async () => {
    expect(await call('POST', '/v1/blocks', { target: '198.18.2.67', scope: 'host1/eth0' })).toMatchObject({ status: 400, json: { error: 'scope: unknown sensor "host1/eth0" (known: none running; or all)' } });
    await new BlockLedger(redis).publishSensorAllows('host1/eth0', []);
    expect((await call('POST', '/v1/blocks', { target: '198.18.2.67', scope: 'hostl/eth0' })).json.error).toBe('scope: unknown sensor "hostl/eth0" (known: host1/eth0; or all)');
    expect((await call('POST', '/v1/blocks', { target: '198.18.2.67', scope: 'host1/eth0' })).status).toBe(201);
    expect((await call('GET', '/v1/blocks/198.18.2.67/32')).json).toMatchObject({ scope: 'host1/eth0', sensor: 'host1/eth0', actor: 'api:ops' });
  });

  test('reasons with control or bidi characters are refused', async () => {
    for (const reason of ['line\r\nBcc: x', 'tab\there', 'esc\u001b[31m', 'nel\u0085', 'bidi \u202egnp.exe', 'isolate \u2066x\u2069']) {
      expect(await call('POST', '/v1/blocks', { target: '198.18.2.70', reason })).toMatchObject({
        status: 400, json: { error: 'reason: control characters (line breaks, tabs, escapes) and bidi controls are not allowed' },
      });
    }
    expect((await call('POST', '/v1/allows', { target: '198.18.2.70', reason: 'x'.repeat(201) })).json.error).toBe('reason: at most 200 characters');
    expect((await call('POST', '/v1/limits', { target: '198.18.2.70', rate: 10, reason: 'a\nb' })).status).toBe(400);
    expect((await call('POST', '/v1/blocks', { target: '198.18.2.70', reason: 'Ünïcödé is fine — 日本' })).status).toBe(201);
  });
});

describe('CLI', () => {
  async function cli(args: string[], env: Record<string, string> = {}): Promise<{ out: string; error?: string }> {
    const program = new Command('xdp-ids').exitOverride();
    let out = '';
    program.configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => undefined });
    registerBlockingCommands(program);
    const saved = { ...process.env };
    // The URL carries the test server's password, which --redis refuses (it would show in ps).
    Object.assign(process.env, { XDP_IDS_REDIS_URL: server.url }, env);
    try {
      await program.parseAsync(args, { from: 'user' });
      return { out };
    } catch (err) {
      return { out, error: (err as Error).message };
    } finally {
      process.env = saved;
    }
  }

  test('changes carry cli:<user>@<host>; width limits come from the environment', async () => {
    expect(cliActor()).toBe(`cli:${os.userInfo().username}@${os.hostname()}`);
    expect((await cli(['allow', 'add', '::/0'])).error).toMatch(/^::\/0 is too wide: allow entries must be \/16 or narrower for IPv6/);
    expect((await cli(['block', 'add', '240.0.0.0/15'])).error).toMatch(/is too wide: blocks must be \/16/);
    expect((await cli(['block', 'add', '240.0.0.0/15'], { XDP_IDS_BLOCK_MIN_PREFIX: '12/32' })).out).toMatch(/^blocked 240\.0\.0\.0\/15/);
    expect((await cli(['block', 'add', '240.0.0.0/15'], { XDP_IDS_BLOCK_MIN_PREFIX: '0/0' })).error).toMatch(/^XDP_IDS_BLOCK_MIN_PREFIX="0\/0": expected/);
    expect((await cli(['allow', 'add', '198.18.3.0/24', '--reason', 'lab'])).out).toBe('allowed 198.18.3.0/24\n');
    expect((await cli(['allow', 'add', '198.18.4.0/24', '--reason', 'a\u202eb'])).error).toMatch(/^reason: control characters/);
    expect((await cli(['block', 'del', '240.0.0.0/15'])).out).toBe('unblocked 240.0.0.0/15\n');
    expect((await blockEvents()).map((e) => [e.phase, e.actor])).toEqual([['blocked', cliActor()], ['allowed', cliActor()], ['unblocked', cliActor()]]);
    expect((await cli(['allow', 'list'])).out).toMatch(new RegExp(`^TARGET +SOURCE +ACTOR +REASON\\n198\\.18\\.3\\.0/24 +manual +${cliActor()} +lab\\n$`));
  });

  test('list tables print one line per entry whatever a reason holds', async () => {
    await new BlockLedger(redis).allow('198.18.5.0/24', 'forged\n198.18.9.9/32  manual  \u001b[2Jgone', 'old-tool');
    expect((await cli(['allow', 'list'])).out.split('\n')).toEqual([
      expect.stringMatching(/^TARGET/), expect.stringMatching(/^198\.18\.5\.0\/24 +manual +old-tool +forged 198\.18\.9\.9\/32 manual \[2Jgone$/), '',
    ]);
  });

  test('the api command refuses plain HTTP off the loopback, readable token files and half a TLS setup', async () => {
    const tokens = { XDP_IDS_API_TOKENS: `ops:write:${OPS.secret}` };
    expect((await cli(['api', '--listen', '0.0.0.0:0'], tokens)).error).toMatch(/refusing to serve the control API .* over plain HTTP on 0\.0\.0\.0/);
    const file = path.join(dir, 'tokens');
    fs.writeFileSync(file, `ops:write:${OPS.secret}\n`);
    fs.chmodSync(file, 0o640);
    expect((await cli(['api', '--token-file', file], { XDP_IDS_API_TOKENS: '' })).error).toBe(`token file ${file}: holds a secret but its group or others may read it (mode 0640): chmod 600 ${file}`);
    expect((await cli(['api', '--tls-cert', certs.certFile], tokens)).error).toBe('give both --tls-cert and --tls-key');
    fs.chmodSync(certs.keyFile, 0o644);
    expect((await cli(['api', '--tls-cert', certs.certFile, '--tls-key', certs.keyFile], tokens)).error).toMatch(/^--tls-key .*server\.key: holds a secret .* chmod 600/);
    fs.chmodSync(certs.keyFile, 0o600);
  });
});
