/**
 * The block ledger, blocker, control API and CLI on a real redis-server: re-bans extend, repeat
 * offenders escalate, the budget trips once and refuses, allowlisted addresses are refused,
 * dry runs only record, expiry is announced once, and bad input gets a clear error.
 */
import { Command } from 'commander';
import { Queue } from 'bullmq';
import { ALERTS_QUEUE, type AlertEvent } from '../../common/alert-events';
import type { BlockRequest } from '../../common/block-requests';
import { connectRedis, startEmbeddedRedis, type EmbeddedRedis, type RedisClient } from '../../common/redis';
import { startControlApi, type ControlApi } from '../../blocking/api';
import { LedgerBlocker } from '../../blocking/blocker';
import { cliActor, registerBlockingCommands } from '../../blocking/cli';
import { BlockLedger, CHANGES_CHANNEL, NS } from '../../blocking/ledger';
import { LimitLedger } from '../../blocking/limits';
import { AlertQueueNotices } from '../../blocking/notices';
import { normalizeTarget } from '../../blocking/targets';
import { quietLogger } from '../support/quiet-logger';

const TOKEN = 'test-token-0123456789abcdef';
const MIN = 60_000;

function request(target: string, overrides: Partial<BlockRequest> = {}): BlockRequest {
  return {
    target, ttlMs: 10 * MIN, origin: 'rule', ruleId: 'syn-flood', incidentId: `inc-${target}`, title: 'SYN flood',
    severity: 'high', sensor: 's1', key: target, requestedMs: Date.now(), evidence: 'verified', ...overrides,
  };
}

describe('block ledger on a real Redis', () => {
  let server: EmbeddedRedis;
  let redis: RedisClient;
  let ledger: BlockLedger;
  let notices: AlertQueueNotices;
  let alerts: Queue;

  beforeAll(async () => {
    server = await startEmbeddedRedis();
    redis = connectRedis(server.url);
    ledger = new BlockLedger(redis);
    notices = new AlertQueueNotices(redis);
    alerts = new Queue(ALERTS_QUEUE, { connection: redis });
  });

  afterAll(async () => {
    await alerts?.close();
    await notices?.close();
    redis?.disconnect();
    await server?.stop();
  });

  beforeEach(async () => {
    await redis.flushall();
  });

  function blocker(config: Partial<ConstructorParameters<typeof LedgerBlocker>[1]> = {}): LedgerBlocker {
    return new LedgerBlocker(ledger, { component: 'test', hostAllow: [], ...config }, notices, quietLogger);
  }

  /** Lets a block run out now (a manual unblock would also forgive its strikes). */
  async function expireNow(target: string): Promise<void> {
    const key = `${NS}block:${target}`;
    const entry = JSON.parse((await redis.get(key))!) as { expiresMs: number };
    await redis.set(key, JSON.stringify({ ...entry, expiresMs: Date.now() - 1 }));
  }

  async function queued(): Promise<AlertEvent[]> {
    return (await alerts.getJobs(['waiting'])).map((j) => j.data as AlertEvent);
  }

  test('a block is stored with its origin and broadcast; a re-ban extends; repeat offenders climb the ladder', async () => {
    const sub = connectRedis(server.url);
    const changes: string[] = [];
    sub.on('message', (_c: string, m: string) => changes.push(m));
    await sub.subscribe(CHANGES_CHANNEL);
    const b = blocker({ ladderMs: [10 * MIN, 60 * MIN, 24 * 60 * MIN] });
    const first = await b.request(request('198.18.2.66', { ttlMs: MIN }));
    expect(first).toMatchObject({ status: 'blocked', target: '198.18.2.66/32', undo: 'xdp-ids block del 198.18.2.66/32' });
    expect(first.expiresMs! - Date.now()).toBeGreaterThan(9 * MIN);
    expect(first.expiresMs! - Date.now()).toBeLessThanOrEqual(10 * MIN);
    const entry = await ledger.get('198.18.2.66/32');
    expect(entry).toMatchObject({ origin: 'rule', ruleId: 'syn-flood', incidentId: 'inc-198.18.2.66', scope: 'all', strikes: 1 });
    // A second rule on the same attack: extended, but not a second strike.
    const second = await b.request(request('198.18.2.66', { ttlMs: MIN }));
    expect(second.status).toBe('extended');
    expect(second.expiresMs!).toBeGreaterThanOrEqual(first.expiresMs!);
    expect(second.expiresMs! - Date.now()).toBeLessThanOrEqual(10 * MIN);
    expect((await ledger.get('198.18.2.66/32'))).toMatchObject({ createdMs: entry!.createdMs, strikes: 1 });
    // Back after the block ended: a repeat offender climbs the ladder.
    await expireNow('198.18.2.66/32');
    const third = await b.request(request('198.18.2.66', { ttlMs: MIN }));
    expect(third.status).toBe('blocked');
    expect(third.expiresMs! - Date.now()).toBeGreaterThan(59 * MIN);
    await expireNow('198.18.2.66/32');
    const fourth = await b.request(request('198.18.2.66', { ttlMs: MIN }));
    expect(fourth.expiresMs! - Date.now()).toBeGreaterThan(23 * 60 * MIN);
    await new Promise((r) => setTimeout(r, 100));
    // A broadcast only names the target: enforcers read the entry itself from the ledger.
    expect(changes.map((m) => JSON.parse(m))).toEqual(Array(4).fill({ target: '198.18.2.66/32' }));
    sub.disconnect();
  });

  test('IPv6 addresses are blocked as their /64', async () => {
    expect(normalizeTarget('fd00:18:2::66').text).toBe('fd00:18:2::/64');
    expect(normalizeTarget('fd00:18:2::66/128', { keepExplicitV6Host: true }).text).toBe('fd00:18:2::66/128');
    const outcome = await blocker().request(request('fd00:18:2::66/128'));
    expect(outcome).toMatchObject({ status: 'blocked', target: 'fd00:18:2::/64' });
  });

  test('allowlisted addresses (host defaults, configured, any sensor\'s own) are refused and never stored', async () => {
    const b = blocker({ hostAllow: [{ prefix: normalizeTarget('198.18.2.1/32'), reason: 'default gateway' }] });
    await ledger.allow('198.18.2.100/32', 'admin workstation');
    await ledger.publishSensorAllows('s2', [{ target: '198.18.3.1/32', reason: 'own address (xiblkb)' }]);
    const gateway = await b.request(request('198.18.2.1'));
    expect(gateway).toMatchObject({ status: 'refused', target: '198.18.2.1/32' });
    expect(gateway.reason).toMatch(/allowlisted: 198\.18\.2\.1\/32 \(default gateway\)/);
    expect((await b.request(request('198.18.2.100'))).reason).toMatch(/admin workstation/);
    expect((await b.request(request('198.18.3.0/24'))).reason).toMatch(/own address \(xiblkb\), sensor:s2/);
    expect((await ledger.snapshot()).blocks).toEqual([]);
    expect((await ledger.stats())['refused:allowlist']).toBe(3);
  });

  test('the budget admits at most maxNewPerMinute, trips once into one exception event, and still extends', async () => {
    const b = blocker({ verified: { maxNewPerMinute: 5, maxActive: 100 } });
    const outcomes = [];
    for (let i = 10; i < 40; i++) outcomes.push(await b.request(request(`198.18.2.${i}`)));
    expect(outcomes.filter((o) => o.status === 'blocked')).toHaveLength(5);
    expect(outcomes.slice(5).every((o) => o.status === 'refused' && /budget exhausted/.test(o.reason!))).toBe(true);
    expect((await ledger.snapshot()).blocks).toHaveLength(5);
    expect((await b.request(request('198.18.2.10'))).status).toBe('extended');
    const exceptions = (await queued()).filter((e) => e.kind === 'exception');
    expect(exceptions).toHaveLength(1);
    expect(exceptions[0]).toMatchObject({ code: 'block-budget-exceeded', severity: 'high', component: 'test' });
  });

  test('max active blocks is a hard ceiling', async () => {
    const b = blocker({ verified: { maxNewPerMinute: 1000, maxActive: 3 } });
    for (let i = 10; i < 20; i++) await b.request(request(`198.18.2.${i}`));
    expect((await ledger.snapshot()).blocks).toHaveLength(3);
  });

  test('dry run, globally or per rule, records "would block" and blocks nothing', async () => {
    const perRule = await blocker({ dryRunRules: ['syn-flood'] }).request(request('198.18.2.66'));
    expect(perRule).toMatchObject({ status: 'would-block', reason: 'dry run (rule syn-flood)' });
    expect((await blocker({ dryRunRules: ['syn-flood'] }).request(request('198.18.2.67', { ruleId: 'port-scan' }))).status).toBe('blocked');
    expect((await blocker({ dryRun: true }).request(request('198.18.2.68'))).reason).toBe('dry run (global)');
    expect((await ledger.snapshot()).blocks.map((e) => e.target)).toEqual(['198.18.2.67/32']);
    expect((await ledger.shadowDecisions()).map((d) => d.target)).toEqual(['198.18.2.68/32', '198.18.2.66/32']);
  });

  test('an expired block leaves the ledger on time and its expiry is announced exactly once', async () => {
    const b = blocker({ ladderMs: [] });
    const outcome = await b.request(request('198.18.2.70', { ttlMs: 300 }));
    expect((await ledger.get('198.18.2.70/32'))).toBeDefined();
    await new Promise((r) => setTimeout(r, outcome.expiresMs! - Date.now() + 20));
    expect(await ledger.get('198.18.2.70/32')).toBeUndefined();
    expect((await ledger.snapshot()).blocks).toEqual([]);
    const [a, c] = await Promise.all([ledger.sweepExpired(), ledger.sweepExpired()]);
    expect([...a, ...c]).toEqual([expect.objectContaining({ target: '198.18.2.70/32', origin: 'rule', ruleId: 'syn-flood' })]);
    expect((await b.request(request('198.18.2.70', { ttlMs: 300 }))).status).toBe('blocked');
  });

  test('limits: manual ones are announced when added and removed; an expiry exactly once, with its class and rate', async () => {
    const b = blocker();
    const limits = new LimitLedger(redis);
    const manual = {
      target: '198.18.2.80', traffic: 'syn' as const, perSecond: 50, ttlMs: 60_000, origin: 'manual' as const, title: 'maintenance', ruleId: '', incidentId: '',
      severity: 'info' as const, sensor: 'test', key: '198.18.2.80', requestedMs: Date.now(),
    };
    expect(await b.limit(manual)).toMatchObject({ status: 'limited', traffic: 'syn', perSecond: 50, undo: 'xdp-ids limit del 198.18.2.80 --traffic syn' });
    expect(await b.unlimit('198.18.2.80', 'syn')).toBe(true);
    const byRule = { ...manual, target: '198.18.2.81', traffic: 'udp-amp' as const, perSecond: 1000, ttlMs: 300, origin: 'rule' as const, ruleId: 'reflection-udp-amplification', title: 'amplification' };
    const outcome = await b.limit(byRule);
    expect((await limits.list()).map((l) => l.target)).toEqual(['198.18.2.81']);
    await new Promise((r) => setTimeout(r, outcome.expiresMs! - Date.now() + 20));
    expect(await limits.list()).toEqual([]);
    const [one, other] = await Promise.all([limits.sweepExpired(), limits.sweepExpired()]);
    expect([...one, ...other]).toEqual([expect.objectContaining({ target: '198.18.2.81', traffic: 'udp-amp', perSecond: 1000, origin: 'rule', ruleId: 'reflection-udp-amplification' })]);
    const events = (await queued()).filter((e) => e.kind === 'block').sort((x, y) => x.atMs - y.atMs);
    expect(events).toEqual([
      expect.objectContaining({ action: 'limit', phase: 'limited', target: '198.18.2.80', traffic: 'syn', perSecond: 50, origin: 'manual', reason: 'maintenance' }),
      expect.objectContaining({ action: 'limit', phase: 'unlimited', target: '198.18.2.80', traffic: 'syn', perSecond: 50 }),
    ]);
  });

  describe('control API', () => {
    let api: ControlApi;
    beforeAll(async () => {
      api = await startControlApi({ redisUrl: server.url, host: '127.0.0.1', port: 0, tokens: [{ name: 'test', scope: 'write', secret: TOKEN }], log: quietLogger, blocker: { hostAllow: [] } });
    });
    afterAll(async () => {
      await api?.close();
    });

    async function call(method: string, path: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; json: any }> {
      const res = await fetch(`${api.url}${path}`, {
        method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, json: text.startsWith('{') ? JSON.parse(text) : text };
    }

    test('refuses to start without tokens', async () => {
      await expect(startControlApi({ redisUrl: server.url, host: '127.0.0.1', port: 0, tokens: [], log: quietLogger })).rejects.toThrow(/no API tokens configured/);
    });

    test('rejects a missing or wrong token; health is open', async () => {
      expect(await call('GET', '/v1/blocks', undefined, null)).toEqual({ status: 401, json: { error: expect.stringMatching(/missing bearer token/) } });
      expect(await call('GET', '/v1/blocks', undefined, 'wrong-token-0123456789')).toEqual({ status: 401, json: { error: 'invalid token' } });
      expect((await call('GET', '/metrics', undefined, null)).status).toBe(401);
      expect(await call('GET', '/health', undefined, null)).toEqual({ status: 200, json: { status: 'ok', redis: 'up' } });
    });

    test('block add/show/list/del and allow add/list/del', async () => {
      const added = await call('POST', '/v1/blocks', { target: '198.18.2.66', ttl: '10m', reason: 'scanner' });
      expect(added).toMatchObject({ status: 201, json: { status: 'blocked', target: '198.18.2.66/32' } });
      expect((await call('GET', '/v1/blocks/198.18.2.66/32')).json).toMatchObject({ origin: 'manual', reason: 'scanner' });
      expect((await call('GET', '/v1/blocks')).json.blocks.map((b: { target: string }) => b.target)).toEqual(['198.18.2.66/32']);
      expect(await call('DELETE', '/v1/blocks/198.18.2.66/32')).toEqual({ status: 200, json: { removed: true } });
      expect((await call('GET', '/v1/blocks/198.18.2.66/32')).status).toBe(404);
      expect((await call('POST', '/v1/allows', { target: '198.18.2.5', reason: 'admin' })).json).toEqual({ target: '198.18.2.5/32' });
      const refused = await call('POST', '/v1/blocks', { target: '198.18.2.0/24' });
      expect(refused.status).toBe(409);
      expect(refused.json.reason).toMatch(/allowlisted: 198\.18\.2\.5\/32 \(admin, manual\)/);
      expect((await call('GET', '/v1/allows')).json.allows).toEqual([{ target: '198.18.2.5/32', reason: 'admin', actor: 'api:test', source: 'manual' }]);
      expect((await call('DELETE', '/v1/allows/198.18.2.5/32')).status).toBe(200);
      const limited = await call('POST', '/v1/limits', { target: '198.18.2.1', rate: 500, ttl: '5m' });
      expect(limited).toMatchObject({ status: 201, json: { status: 'limited', target: '198.18.2.1', traffic: 'syn', perSecond: 500, undo: 'xdp-ids limit del 198.18.2.1 --traffic syn' } });
      expect((await call('GET', '/v1/limits')).json.limits).toEqual([expect.objectContaining({ target: '198.18.2.1', traffic: 'syn', perSecond: 500, origin: 'manual' })]);
      expect((await call('POST', '/v1/limits', { target: '198.18.2.1', rate: 'lots' })).status).toBe(400);
      expect(await call('DELETE', '/v1/limits/198.18.2.1')).toEqual({ status: 200, json: { removed: true } });
      expect((await call('DELETE', '/v1/limits/198.18.2.1')).status).toBe(404);
      const events = (await queued()).filter((e) => e.kind === 'block').map((e) => (e as { phase: string }).phase);
      expect(events).toEqual(expect.arrayContaining(['blocked', 'unblocked', 'refused']));
    });

    test('bad input gets a 400 with a clear message', async () => {
      expect(await call('POST', '/v1/blocks', { target: '198.18.2.300' })).toEqual({ status: 400, json: { error: expect.stringMatching(/not an IP address: "198\.18\.2\.300"/) } });
      expect(await call('POST', '/v1/blocks', { target: '198.18.2.0/33' })).toEqual({ status: 400, json: { error: expect.stringMatching(/prefix length must be 0\.\.32/) } });
      expect(await call('POST', '/v1/blocks', { target: '198.18.2.66', ttl: '400d' })).toEqual({ status: 400, json: { error: 'ttl: 400d is longer than the maximum of 30d' } });
      expect((await call('POST', '/v1/blocks', { target: '198.18.2.66', ttl: 'soon' })).json.error).toMatch(/ttl: not a duration: "soon"/);
      expect((await call('POST', '/v1/blocks', { target: 42 })).json.error).toMatch(/^target: /);
      expect((await call('POST', '/v1/blocks', { target: '198.18.2.66', ttlMs: 5 })).json.error).toMatch(/ttlMs/);
      expect((await call('DELETE', '/v1/blocks/nonsense')).status).toBe(400);
    });

    test('metrics count blocks, refusals and unblocks', async () => {
      await call('POST', '/v1/blocks', { target: '198.18.2.77', ttl: '5m' });
      await call('DELETE', '/v1/blocks/198.18.2.77/32');
      await call('POST', '/v1/blocks', { target: '198.18.2.1/33' });
      const text = (await call('GET', '/metrics')).json as string;
      expect(text).toMatch(/^xdp_ids_blocks_total\{origin="manual"\} 1$/m);
      expect(text).toMatch(/^xdp_ids_unblocks_total\{reason="manual"\} 1$/m);
      expect(text).toMatch(/^xdp_ids_blocks_active 0$/m);
    });
  });

  describe('CLI', () => {
    /** The server's URL carries its password, so it comes from the environment, as in a deployment. */
    async function cli(args: string[], env: Record<string, string> = { XDP_IDS_REDIS_URL: server.url }): Promise<{ out: string; error?: string }> {
      const program = new Command('xdp-ids').exitOverride();
      let out = '';
      program.configureOutput({ writeOut: (s) => { out += s; }, writeErr: () => undefined });
      registerBlockingCommands(program);
      const saved = { ...process.env };
      Object.assign(process.env, env);
      try {
        await program.parseAsync(args, { from: 'user' });
        return { out };
      } catch (err) {
        return { out, error: (err as Error).message };
      } finally {
        process.env = saved;
      }
    }

    test('block add/list/show/del and allow add/list/del on the ledger', async () => {
      expect((await cli(['block', 'add', '198.18.2.66', '--ttl', '15m', '--reason', 'probe'])).out).toMatch(/^blocked 198\.18\.2\.66\/32 until .* \(undo: xdp-ids block del 198\.18\.2\.66\/32\)/);
      const listed = await cli(['block', 'list']);
      expect(listed.out).toMatch(/^TARGET\s+EXPIRES/);
      expect(listed.out).toMatch(/198\.18\.2\.66\/32 .* manual .* probe/);
      expect(JSON.parse((await cli(['block', 'show', '198.18.2.66/32'])).out)).toMatchObject({ origin: 'manual', strikes: 1 });
      expect((await cli(['block', 'del', '198.18.2.66/32'])).out).toBe('unblocked 198.18.2.66/32\n');
      expect((await cli(['block', 'del', '198.18.2.66/32'])).error).toBe('no active block for 198.18.2.66/32');
      expect((await cli(['allow', 'add', '198.18.2.9'])).out).toBe('allowed 198.18.2.9/32\n');
      expect((await cli(['block', 'add', '198.18.2.9'])).error).toMatch(/refused to block 198\.18\.2\.9\/32: allowlisted/);
      expect(JSON.parse((await cli(['allow', 'list', '--json'])).out)).toEqual([{ target: '198.18.2.9/32', reason: 'configured', actor: cliActor(), source: 'manual' }]);
      expect((await cli(['allow', 'del', '198.18.2.9/32'])).out).toBe('removed 198.18.2.9/32\n');
    });

    test('bad input and a missing Redis get clear errors', async () => {
      expect((await cli(['block', 'add', '10.0.0.0/40'])).error).toMatch(/prefix length must be 0\.\.32/);
      expect((await cli(['block', 'add', 'evil.example'])).error).toMatch(/not an IP address: "evil\.example"/);
      expect((await cli(['block', 'add', '198.18.2.66', '--ttl', '9999d'])).error).toBe('ttl: 9999d is longer than the maximum of 30d');
      expect((await cli(['block', 'list'], { XDP_IDS_REDIS_URL: '' })).error).toMatch(/no Redis: set XDP_IDS_REDIS_URL_FILE or XDP_IDS_REDIS_URL/);
      expect((await cli(['block', '--redis', 'redis://127.0.0.1:1', 'list'])).error).toMatch(/cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
      expect((await cli(['block', '--redis', server.url, 'list'])).error).toMatch(/--redis must not carry a password: .* --redis-url-file FILE/);
      expect((await cli(['api'], { XDP_IDS_REDIS_URL: server.url, XDP_IDS_API_TOKENS: '' })).error).toMatch(/no API tokens configured/);
      expect((await cli(['api'], { XDP_IDS_REDIS_URL: server.url, XDP_IDS_API_TOKENS: 'ops:write:short' })).error).toMatch(/the secret of token ops has 5 characters; it needs at least 16/);
      expect((await cli(['api', '--listen', 'nowhere'])).error).toMatch(/--listen must be host:port/);
    });
  });
});
