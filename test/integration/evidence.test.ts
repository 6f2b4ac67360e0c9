/**
 * Evidence-aware blocking on a real redis-server (blocker and ledger, SECURITY.md): what a forger
 * can produce gets one short block per target at most, from a budget of its own; a source that
 * completed a handshake gets the ladder; partner prefixes need verification; operators are not
 * bound by any of it. Expiry is real time, so the blockers here use TTLs of a fraction of a second.
 */
import type { Redis } from 'ioredis';
import type { BlockRequest } from '../../common/block-requests';
import { connectRedis } from '../../common/redis';
import { DEFAULT_UNVERIFIED_TTL_MS, LedgerBlocker, type BlockerConfig } from '../../blocking/blocker';
import { BlockLedger } from '../../blocking/ledger';
import { blockRequest } from '../support/block-requests';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { until } from '../support/until';

const MIN = 60_000;
const BREAKER = (pool: string): string => `xdp-ids:blocks:breaker:${pool}`;

/** A FIN scan's request: 30 minutes, as the default pack asks. */
function ruleRequest(target: string, evidence: 'verified' | 'unverified', overrides: Partial<BlockRequest> = {}): BlockRequest {
  return blockRequest(target, { ttlMs: 30 * MIN, ruleId: 'scan-tcp-fin', title: 'FIN scan', severity: 'medium', evidence, ...overrides });
}

function manualRequest(target: string, ttlMs: number): BlockRequest {
  return {
    target, ttlMs, origin: 'manual', ruleId: '', incidentId: '', title: 'operator', severity: 'info', sensor: '', key: target, requestedMs: Date.now(), actor: 'cli:test',
  };
}

describe('evidence-aware blocking on a real Redis', () => {
  let server: TestRedis;
  let redis: Redis;
  let ledger: BlockLedger;

  beforeAll(async () => {
    server = await testRedis();
    redis = connectRedis(server.url);
    ledger = new BlockLedger(redis);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  beforeEach(async () => {
    await redis.flushall();
  });

  function blocker(config: Partial<BlockerConfig> = {}): LedgerBlocker {
    return new LedgerBlocker(ledger, { component: 'test', hostAllow: [], ...config }, undefined, quietLogger);
  }

  async function gone(target: string): Promise<void> {
    await until(`the block of ${target} to run out`, async () => (await ledger.get(target)) === undefined, 10_000);
  }

  test('an unverified rule block lasts at most the unverified TTL (default 2 min) whatever the rule asks, and carries no strike', async () => {
    const before = Date.now();
    const outcome = await blocker().request(ruleRequest('198.18.62.30', 'unverified'));
    expect(outcome).toMatchObject({ status: 'blocked', target: '198.18.62.30/32', evidence: 'unverified', reason: expect.stringMatching(/unverified source/) });
    expect(outcome.expiresMs! - before).toBeLessThanOrEqual(DEFAULT_UNVERIFIED_TTL_MS + (Date.now() - before));
    expect(outcome.expiresMs! - before).toBeGreaterThan(DEFAULT_UNVERIFIED_TTL_MS - 5000);
    expect(await ledger.get('198.18.62.30/32')).toMatchObject({ evidence: 'unverified', strikes: 0, expiresMs: outcome.expiresMs });
  });

  test('a re-ban of an active unverified block neither extends nor escalates it', async () => {
    const b = blocker();
    const first = await b.request(ruleRequest('198.18.62.30', 'unverified'));
    const entry = (await ledger.get('198.18.62.30/32'))!;
    const again = await b.request(ruleRequest('198.18.62.30', 'unverified', { ruleId: 'scan-tcp-vertical', ttlMs: 24 * 60 * MIN }));
    expect(again).toMatchObject({ status: 'blocked', evidence: 'unverified', expiresMs: first.expiresMs });
    expect(await ledger.get('198.18.62.30/32')).toEqual(entry);
  });

  test('after its one short block, an unverified target gets alert-only within the memory, and past it a short block again, never a longer one', async () => {
    const b = blocker({ unverifiedTtlMs: 300, unverifiedMemoryMs: 1500, ladderMs: [10 * MIN, 60 * MIN] });
    const first = await b.request(ruleRequest('198.18.62.31', 'unverified'));
    expect(first).toMatchObject({ status: 'blocked', evidence: 'unverified' });
    await gone('198.18.62.31/32');
    const repeat = await b.request(ruleRequest('198.18.62.31', 'unverified'));
    expect(repeat).toMatchObject({ status: 'alert-only', target: '198.18.62.31/32', evidence: 'unverified', reason: expect.stringMatching(/already blocked once: alert only until/) });
    expect(await ledger.get('198.18.62.31/32')).toBeUndefined();
    expect((await ledger.stats())['refused:unverified-repeat']).toBe(1);
    await until('the unverified memory to pass', async () => (await redis.exists('xdp-ids:blocks:unverified:198.18.62.31/32')) === 0, 10_000);
    const before = Date.now();
    const later = await b.request(ruleRequest('198.18.62.31', 'unverified'));
    expect(later).toMatchObject({ status: 'blocked', evidence: 'unverified' });
    expect(later.expiresMs! - before).toBeLessThanOrEqual(300 + (Date.now() - before));
    expect(await ledger.get('198.18.62.31/32')).toMatchObject({ strikes: 0 });
  });

  test('spoofed requests that trip the unverified breaker do not stop verified blocks', async () => {
    const b = blocker({ unverified: { maxNewPerMinute: 3, maxActive: 100 } });
    const spoofed = [];
    for (let i = 100; i < 110; i++) spoofed.push(await b.request(ruleRequest(`198.18.62.${i}`, 'unverified')));
    expect(spoofed.filter((o) => o.status === 'blocked')).toHaveLength(3);
    expect(spoofed.slice(3).every((o) => o.status === 'refused' && /unverified blocking budget exhausted/.test(o.reason!))).toBe(true);
    expect(await redis.exists(BREAKER('unverified'))).toBe(1);
    expect(await b.request(ruleRequest('198.18.62.66', 'verified'))).toMatchObject({ status: 'blocked', evidence: 'verified' });
    expect(await redis.exists(BREAKER('verified'))).toBe(0);
  });

  test('a tripped verified breaker does not stop unverified blocks either', async () => {
    const b = blocker({ verified: { maxNewPerMinute: 2, maxActive: 100 } });
    const verified = [];
    for (let i = 100; i < 104; i++) verified.push((await b.request(ruleRequest(`198.18.62.${i}`, 'verified'))).status);
    expect(verified).toEqual(['blocked', 'blocked', 'refused', 'refused']);
    expect(await redis.exists(BREAKER('verified'))).toBe(1);
    expect(await b.request(ruleRequest('198.18.62.30', 'unverified'))).toMatchObject({ status: 'blocked', evidence: 'unverified' });
  });

  test('a verified source climbs the ladder with each new block; a re-ban while blocked is no strike', async () => {
    const b = blocker({ ladderMs: [400, 800, 1600] });
    const ttls: number[] = [];
    for (let strike = 1; strike <= 3; strike++) {
      const before = Date.now();
      const outcome = await b.request(ruleRequest('198.18.62.66', 'verified', { ttlMs: 100 }));
      expect(outcome).toMatchObject({ status: 'blocked', evidence: 'verified' });
      if (strike === 1) expect((await b.request(ruleRequest('198.18.62.66', 'verified', { ttlMs: 100 }))).status).toBe('extended');
      expect(await ledger.get('198.18.62.66/32')).toMatchObject({ strikes: strike });
      ttls.push(outcome.expiresMs! - before);
      await gone('198.18.62.66/32');
    }
    expect(ttls[0]).toBeGreaterThanOrEqual(400);
    expect(ttls[1]).toBeGreaterThanOrEqual(800);
    expect(ttls[2]).toBeGreaterThanOrEqual(1600);
    expect(ttls[2]).toBeLessThan(3200);
  });

  test('a target in a partner prefix gets alert-only when unverified and a block when verified', async () => {
    const b = blocker({ partners: ['198.18.62.0/26'] });
    const unverified = await b.request(ruleRequest('198.18.62.20', 'unverified'));
    expect(unverified).toMatchObject({ status: 'alert-only', evidence: 'unverified', reason: expect.stringMatching(/partner prefix 198\.18\.62\.0\/26: blocks need a verified source/) });
    // A block that would cover the partner prefix is held to the same rule.
    expect((await b.request(ruleRequest('198.18.0.0/16', 'unverified'))).status).toBe('alert-only');
    expect(await ledger.get('198.18.62.20/32')).toBeUndefined();
    expect(await b.request(ruleRequest('198.18.62.20', 'verified'))).toMatchObject({ status: 'blocked', evidence: 'verified' });
    // Outside the partners, unverified requests are blocked (briefly) as usual.
    expect((await b.request(ruleRequest('198.18.62.100', 'unverified'))).status).toBe('blocked');
  });

  test('manual blocks are not subject to the evidence rules: partners, the unverified breaker, memory and TTL', async () => {
    const b = blocker({ partners: ['198.18.62.0/26'], unverified: { maxNewPerMinute: 1, maxActive: 100 }, unverifiedTtlMs: 300, unverifiedMemoryMs: 10 * MIN });
    await b.request(ruleRequest('198.18.62.100', 'unverified'));
    await gone('198.18.62.100/32');
    expect((await b.request(ruleRequest('198.18.62.101', 'unverified'))).status).toBe('refused');
    expect(await redis.exists(BREAKER('unverified'))).toBe(1);
    const before = Date.now();
    for (const target of ['198.18.62.20', '198.18.62.100']) {
      const outcome = await b.request(manualRequest(target, 60 * MIN));
      expect(outcome).toMatchObject({ status: 'blocked', evidence: 'manual' });
      expect(outcome.expiresMs! - before).toBeGreaterThan(59 * MIN);
    }
    expect(await ledger.get('198.18.62.100/32')).toMatchObject({ evidence: 'manual', origin: 'manual', actor: 'cli:test' });
  });
});
