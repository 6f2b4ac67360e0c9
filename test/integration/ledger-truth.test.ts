/**
 * The ledger is the only truth the kernel follows (SECURITY.md), on a real redis-server and a
 * real kernel (the XDP program loaded, its verdicts read with BPF_PROG_TEST_RUN). Someone who can
 * publish on the changes channel can only make the enforcer look again; someone who can write
 * Redis directly still cannot get an entry into the kernel that no blocker would have written:
 * each such entry is refused, reported once as `ledger-entry-refused`, and the valid entries next
 * to it are enforced. A reconciliation also removes what the kernel holds without the ledger.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ALERTS_QUEUE, type AlertEvent, type ExceptionEvent } from '../../common/alert-events';
import type { BlockRequest } from '../../common/block-requests';
import { connectRedis } from '../../common/redis';
import { hostAllowRules } from '../../blocking/allowlist';
import { LedgerBlocker } from '../../blocking/blocker';
import { startEnforcer, type Enforcer } from '../../blocking/enforcer';
import { BlockLedger, CHANGES_CHANNEL } from '../../blocking/ledger';
import { wallMsToMono } from '../../sensor/clock';
import { XdpIdsProgram } from '../../sensor/kernel/program';
import * as pk from '../support/packets';
import { blockRequest, limitRequest } from '../support/block-requests';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { until } from '../support/until';

const SENSOR = 'xitruth';
const MIN = 60_000;
const DAY = 86_400_000;
const XDP_DROP = 1;
const XDP_PASS = 2;

const ruleRequest = (target: string): BlockRequest => blockRequest(target, { sensor: SENSOR });

describe('the ledger is the only truth the kernel follows', () => {
  let server: TestRedis;
  let redis: Redis;
  let alerts: Queue<AlertEvent>;
  let blocker: LedgerBlocker;
  let program: XdpIdsProgram;
  let enforcer: Enforcer;
  /** A ledger block whose kernel entry the tests remove to learn when the enforcer has caught up (see fence). */
  const FENCE = '198.18.62.66/32';

  beforeAll(async () => {
    server = await testRedis();
    redis = connectRedis(server.url);
    alerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
    blocker = new LedgerBlocker(new BlockLedger(redis), { component: 'test', hostAllow: hostAllowRules() }, undefined, quietLogger);
    program = XdpIdsProgram.open();
    // Reconciliations only when a test asks (or a flood of hints does): the periodic one would hide what hints did.
    enforcer = await startEnforcer({ program, redisUrl: server.url, sensorId: SENSOR, log: quietLogger, reconcileMs: 10 * MIN });
  });

  afterAll(async () => {
    await enforcer?.stop();
    program?.close();
    await alerts?.close();
    redis?.disconnect();
    await server?.stop();
  });

  /** The kernel's tables, without the counters that packets change. */
  function kernelTables() {
    return {
      blocks: program.listBlocks().map(({ prefix, expiresNs, retained }) => ({ prefix, expiresNs, retained })).sort((a, b) => a.prefix.localeCompare(b.prefix)),
      allows: program.listAllows().map(({ prefix, retained }) => ({ prefix, retained })).sort((a, b) => a.prefix.localeCompare(b.prefix)),
      limits: program.listDestinationLimits().map(({ address, traffic, perSecond, expiresNs, retained }) => ({ address, traffic, perSecond, expiresNs, retained })),
    };
  }

  /**
   * The same tables, expiries within 50 ms: an entry put back converts the ledger's wall-clock
   * expiry to the monotonic clock again (the enforcer's own tolerance).
   */
  function expectSameTables(actual: ReturnType<typeof kernelTables>, expected: ReturnType<typeof kernelTables>): void {
    const withoutExpiry = (t: typeof actual) => ({ ...t, blocks: t.blocks.map(({ expiresNs: _, ...b }) => b), limits: t.limits.map(({ expiresNs: _, ...l }) => l) });
    expect(withoutExpiry(actual)).toEqual(withoutExpiry(expected));
    const expiries = (t: typeof actual): bigint[] => [...t.blocks, ...t.limits].map((e) => e.expiresNs);
    const wanted = expiries(expected);
    expiries(actual).forEach((ns, i) => expect(Math.abs(Number(ns - wanted[i]))).toBeLessThan(50e6));
  }

  const blocked = (prefix: string): boolean => program.listBlocks().some((b) => b.prefix === prefix);

  /**
   * Takes the fence block out of the kernel behind the enforcer's back and hints it: once it is
   * back, the enforcer has read and dealt with every message published before the hint. The
   * ledger does not change, so the fence is no reason for a reconciliation.
   */
  async function fence(): Promise<void> {
    program.deleteBlock(FENCE);
    await publish(JSON.stringify({ target: FENCE }));
    await until('the fence block back in the kernel', () => blocked(FENCE), 10_000);
  }

  async function exceptions(code: string): Promise<ExceptionEvent[]> {
    return (await alerts.getJobs(['waiting'])).map((j) => j.data).filter((e): e is ExceptionEvent => e.kind === 'exception' && e.code === code);
  }

  async function publish(...messages: string[]): Promise<void> {
    const pipeline = redis.pipeline();
    for (const m of messages) pipeline.publish(CHANGES_CHANNEL, m);
    await pipeline.exec();
  }

  /** An entry as a blocker would store it, with `fields` changed; written straight into Redis, as an attacker with write access could. */
  async function writeBlockEntry(target: string, fields: Record<string, unknown> = {}): Promise<void> {
    const now = Date.now();
    const entry = { target, scope: 'all', origin: 'rule', evidence: 'verified', reason: 'forged', createdMs: now, updatedMs: now, expiresMs: now + 10 * MIN, strikes: 1, rev: 1, ...fields };
    await redis.multi().set(`xdp-ids:block:${target}`, JSON.stringify(entry)).zadd('xdp-ids:blocks', Number(entry.expiresMs), target).exec();
  }

  test('forged block and allow messages on the changes channel change nothing in the kernel', async () => {
    await blocker.request(ruleRequest(FENCE));
    await until('the ledger\'s block in the kernel', () => blocked(FENCE), 10_000);
    const before = kernelTables();
    await publish(
      JSON.stringify({ op: 'block', rev: 1e18, target: '0.0.0.0/0', scope: 'all', expiresMs: 9e15 }),
      JSON.stringify({ op: 'allow', target: '0.0.0.0/0' }),
      JSON.stringify({ op: 'unblock', target: '198.18.62.66/32' }),
      JSON.stringify({ op: 'block', target: '198.18.62.67/32', expiresMs: 9e15 }),
      'not json at all',
    );
    await fence();
    expectSameTables(kernelTables(), before);
    expect(program.testRun(pk.tcp4({ src: '203.0.113.9' })).retval).toBe(XDP_PASS);
    expect(program.testRun(pk.tcp4({ src: '198.18.62.66' })).retval).toBe(XDP_DROP);
  });

  test('a flood of 5000 hints is answered with one reconciliation and changes nothing', async () => {
    const before = kernelTables();
    const reconcile = jest.spyOn(enforcer, 'reconcile');
    try {
      const hints = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ target: i === 0 ? '0.0.0.0/0' : `10.${(i >> 8) & 255}.${i & 255}.0/24` }));
      await publish(...hints);
      await fence();
      // This fence's hint comes after the whole flood: once it is followed, so is everything before it.
      await fence();
      expect(reconcile).toHaveBeenCalledTimes(1);
      expectSameTables(kernelTables(), before);
    } finally {
      reconcile.mockRestore();
    }
  });

  test('entries no blocker writes, put straight into Redis, are refused and reported once each; valid entries next to them are enforced', async () => {
    const own = hostAllowRules().find((r) => r.reason.startsWith('own address') && r.prefix.family === 4)?.prefix.text;
    const now = Date.now();
    // What blockers write: a block, a configured allow entry, a destination limit.
    await blocker.request(ruleRequest('198.18.62.70'));
    await new BlockLedger(redis).allow('198.18.62.100/32', 'admin workstation', 'cli:test');
    await blocker.limit(limitRequest('198.18.62.1', { sensor: SENSOR }));
    // What an attacker with write access adds.
    await writeBlockEntry('0.0.0.0/0');
    await writeBlockEntry('198.18.0.0/15');
    await writeBlockEntry('198.18.62.77/32', { expiresMs: now + 31 * DAY });
    await writeBlockEntry('127.0.0.0/16');
    if (own) await writeBlockEntry(own);
    await writeBlockEntry('198.18.62.96/28');
    await redis.multi().set('xdp-ids:block:198.18.62.78/32', '{"target":"198.18.62.78/32","expiresMs":').zadd('xdp-ids:blocks', now + 10 * MIN, '198.18.62.78/32').exec();
    await redis.hset('xdp-ids:allow', '0.0.0.0/0', JSON.stringify({ reason: 'maintenance', actor: 'cli:attacker', createdMs: now }));
    await redis.multi().set('xdp-ids:dstlimit:syn|198.18.62.9', JSON.stringify({ target: '198.18.62.9', traffic: 'syn', perSecond: 0, origin: 'rule', reason: 'forged', createdMs: now, expiresMs: now + 10 * MIN }))
      .zadd('xdp-ids:dstlimits', now + 10 * MIN, 'syn|198.18.62.9').exec();
    await redis.multi().set('xdp-ids:dstlimit:syn|198.18.62.8', 'null').zadd('xdp-ids:dstlimits', now + 10 * MIN, 'syn|198.18.62.8').exec();
    const refused = [
      ['block', '0.0.0.0/0'], ['block', '198.18.0.0/15'], ['block', '198.18.62.77/32'], ['block', '127.0.0.0/16'], ...(own ? [['block', own]] : []),
      ['block', '198.18.62.96/28'], ['block', '198.18.62.78/32'], ['allow', '0.0.0.0/0'], ['limit', '198.18.62.9'], ['limit', 'syn|198.18.62.8'],
    ];

    // Whether the attacker announces the entries or not: a hint for each, then the periodic reconciliation.
    await publish(...refused.map(([, target]) => JSON.stringify({ target })));
    await fence();
    const first = await enforcer.reconcile();
    expect(first.refused).toBe(refused.length);

    const kernel = kernelTables();
    expect(kernel.blocks.map((b) => b.prefix)).toEqual([FENCE, '198.18.62.70/32']);
    expect(kernel.allows.map((a) => a.prefix)).toContain('198.18.62.100/32');
    expect(kernel.allows.map((a) => a.prefix)).not.toContain('0.0.0.0/0');
    expect(kernel.limits).toEqual([expect.objectContaining({ address: '198.18.62.1', traffic: 'syn', perSecond: 500 })]);
    // The refused allow entry protects nothing, so it stops no blocker either.
    expect((await blocker.request(ruleRequest('198.18.62.71'))).status).toBe('blocked');
    await until('the new block in the kernel', () => blocked('198.18.62.71/32'), 10_000);
    for (const [src, verdict] of [['203.0.113.9', XDP_PASS], ['198.18.62.77', XDP_PASS], ['198.18.62.97', XDP_PASS], ['198.18.62.70', XDP_DROP]] as const) {
      expect([src, program.testRun(pk.tcp4({ src })).retval]).toEqual([src, verdict]);
    }

    await enforcer.reconcile();
    const events = await exceptions('ledger-entry-refused');
    expect(events.map((e) => [e.details!.kind, e.details!.target]).sort()).toEqual([...refused].sort());
    expect(events.every((e) => e.severity === 'high' && /check who writes to Redis/.test(e.message))).toBe(true);
    expect(events.find((e) => e.details!.target === '198.18.0.0/15')!.details!.problem).toMatch(/too wide/);
    expect(events.find((e) => e.details!.target === '198.18.62.77/32')!.details!.problem).toMatch(/beyond the longest block \(30 days\)/);
    expect(events.find((e) => e.details!.target === '198.18.62.96/28')!.details!.problem).toMatch(/allow entry 198\.18\.62\.100\/32 \(admin workstation\)/);
    expect(events.find((e) => e.details!.target === '198.18.62.9')!.details!.problem).toMatch(/rate 0 is not 1\.\./);
    expect(events.find((e) => e.details!.target === '198.18.62.78/32')!.details!.problem).toMatch(/not a JSON object/);

    // Gone from Redis, nothing is refused any more.
    await redis.del(...refused.filter(([kind]) => kind === 'block').map(([, t]) => `xdp-ids:block:${t}`), 'xdp-ids:dstlimit:syn|198.18.62.9', 'xdp-ids:dstlimit:syn|198.18.62.8');
    await redis.zrem('xdp-ids:blocks', ...refused.filter(([kind]) => kind === 'block').map(([, t]) => t));
    await redis.zrem('xdp-ids:dstlimits', 'syn|198.18.62.9', 'syn|198.18.62.8');
    await redis.hdel('xdp-ids:allow', '0.0.0.0/0');
    expect((await enforcer.reconcile()).refused).toBe(0);
  });

  test('a reconciliation removes what the kernel holds without the ledger', async () => {
    const expires = wallMsToMono(Date.now() + 10 * MIN);
    program.addBlock('198.18.62.200/32', expires);
    program.addAllow('198.18.62.201/32');
    program.setDestinationLimit('198.18.62.202', 'syn', { perSecond: 10, expiresNs: expires });
    const before = kernelTables();
    const result = await enforcer.reconcile();
    expect(result).toMatchObject({ removed: 3, added: 0, refused: 0, failed: 0 });
    const after = kernelTables();
    expect(after.blocks.map((b) => b.prefix)).not.toContain('198.18.62.200/32');
    expect(after.allows.map((a) => a.prefix)).not.toContain('198.18.62.201/32');
    expect(after.limits.map((l) => l.address)).not.toContain('198.18.62.202');
    expect(after.blocks).toEqual(before.blocks.filter((b) => b.prefix !== '198.18.62.200/32'));
    expect(program.testRun(pk.tcp4({ src: '198.18.62.200' })).retval).toBe(XDP_PASS);
  });
});
