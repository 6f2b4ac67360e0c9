/**
 * Ledger generations on a real redis-server and a real kernel (the program's maps pinned, its
 * verdicts read with BPF_PROG_TEST_RUN): when Redis loses the ledger (FLUSHALL, a restart without
 * its data, a failover to a stale replica), the kernel keeps what it enforced until each entry's
 * own expiry (marked retained) and operators hear about it once; an operator's `block del`
 * still removes a kept entry, and blocks written after the loss are enforced as usual. The
 * generation the kernel follows is pinned with its maps, so a restarted enforcer does not cry
 * wolf.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ALERTS_QUEUE, type AlertEvent, type ExceptionEvent } from '../../common/alert-events';
import type { BlockRequest } from '../../common/block-requests';
import { connectRedis } from '../../common/redis';
import { hostAllowRules } from '../../blocking/allowlist';
import { LedgerBlocker } from '../../blocking/blocker';
import { startEnforcer, type Enforcer } from '../../blocking/enforcer';
import { BlockLedger, CHANGES_CHANNEL } from '../../blocking/ledger';
import { PIN_ROOT, XdpIdsProgram } from '../../sensor/kernel/program';
import * as pk from '../support/packets';
import { blockRequest, limitRequest } from '../support/block-requests';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { until } from '../support/until';

const SENSOR = 'xitrgen';
const PIN_NAME = `xitrgen${process.pid}`;
const MIN = 60_000;
const XDP_DROP = 1;
const XDP_PASS = 2;

const ruleRequest = (target: string, ttlMs = 10 * MIN): BlockRequest => blockRequest(target, { ttlMs, sensor: SENSOR });

describe('ledger generations', () => {
  let server: TestRedis;
  let redis: Redis;
  let alerts: Queue<AlertEvent>;
  let ledger: BlockLedger;
  let blocker: LedgerBlocker;
  let program: XdpIdsProgram;
  let enforcer: Enforcer | undefined;

  beforeAll(async () => {
    server = await testRedis();
    redis = connectRedis(server.url);
    alerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
    ledger = new BlockLedger(redis);
    blocker = new LedgerBlocker(ledger, { component: 'test', hostAllow: hostAllowRules() }, undefined, quietLogger);
    fs.rmSync(path.join(PIN_ROOT, PIN_NAME), { recursive: true, force: true });
    program = XdpIdsProgram.open({ pinName: PIN_NAME });
  });

  afterAll(async () => {
    await enforcer?.stop();
    program?.close();
    fs.rmSync(path.join(PIN_ROOT, PIN_NAME), { recursive: true, force: true });
    await alerts?.close();
    redis?.disconnect();
    await server?.stop();
  });

  /** A new enforcer (a new process, as far as its exception memory goes) on the same kernel maps. */
  async function restartEnforcer(reconcileMs = 10 * MIN): Promise<Enforcer> {
    await enforcer?.stop();
    enforcer = await startEnforcer({ program, redisUrl: server.url, sensorId: SENSOR, log: quietLogger, reconcileMs });
    expect(enforcer.ready).toBe(true);
    return enforcer;
  }

  const block = (prefix: string) => program.listBlocks().find((b) => b.prefix === prefix);
  const limit = (address: string) => program.listDestinationLimits().find((l) => l.address === address);
  const allow = (prefix: string) => program.listAllows().find((a) => a.prefix === prefix);
  const verdict = (src: string): number => program.testRun(pk.tcp4({ src })).retval;

  async function exceptions(code: string, sinceMs = 0): Promise<ExceptionEvent[]> {
    return (await alerts.getJobs(['waiting'])).map((j) => j.data).filter((e): e is ExceptionEvent => e.kind === 'exception' && e.code === code && e.atMs >= sinceMs);
  }

  test('after FLUSHALL the kernel keeps its blocks and limits until their own expiry, marked retained, and says so once', async () => {
    const e = await restartEnforcer();
    await blocker.request(ruleRequest('198.18.62.66'));
    await new LedgerBlocker(ledger, { component: 'test', hostAllow: hostAllowRules(), ladderMs: [] }, undefined, quietLogger).request(ruleRequest('198.18.62.67', 1500));
    await blocker.limit(limitRequest('198.18.62.1', { sensor: SENSOR }));
    await ledger.allow('198.18.62.100/32', 'admin workstation');
    await e.reconcile();
    expect([block('198.18.62.66/32'), block('198.18.62.67/32'), limit('198.18.62.1'), allow('198.18.62.100/32')].every((x) => x?.retained === false)).toBe(true);

    await redis.flushall();
    // A hint that arrives before the next reconciliation (forged, or a writer's) must not take the lost entries' word for it.
    await redis.publish(CHANGES_CHANNEL, JSON.stringify({ target: '198.18.62.66/32' }));
    await until('the enforcer to deal with the hint', () => (block('198.18.62.66/32')?.retained ?? true) || undefined, 10_000);
    expect(block('198.18.62.66/32')).toMatchObject({ retained: true });

    const result = await e.reconcile();
    expect(result.retained).toBeGreaterThanOrEqual(3);
    expect(block('198.18.62.66/32')).toMatchObject({ retained: true });
    expect(block('198.18.62.67/32')).toMatchObject({ retained: true });
    expect(limit('198.18.62.1')).toMatchObject({ retained: true, perSecond: 500 });
    expect(allow('198.18.62.100/32')).toMatchObject({ retained: true });
    expect(verdict('198.18.62.66')).toBe(XDP_DROP);

    const events = await until('the generation exception', async () => {
      const found = await exceptions('ledger-generation-changed');
      return found.length > 0 && found;
    });
    expect(events).toEqual([expect.objectContaining({ severity: 'critical', component: `sensor@${SENSOR}`, message: expect.stringMatching(/Redis lost data/) })]);

    // The short one ends at its own expiry, in the kernel first and then in its tables.
    await until('the short retained block to expire', () => verdict('198.18.62.67') === XDP_PASS, 10_000);
    await e.reconcile();
    expect(block('198.18.62.67/32')).toBeUndefined();
    expect(block('198.18.62.66/32')).toMatchObject({ retained: true });
  });

  test('after the loss, new blocks are enforced as usual and `block del` removes a retained one (tombstone)', async () => {
    expect((await blocker.request(ruleRequest('198.18.62.68'))).status).toBe('blocked');
    await until('the new block in the kernel', () => block('198.18.62.68/32'), 10_000);
    expect(block('198.18.62.68/32')).toMatchObject({ retained: false });
    expect(await blocker.unblock('198.18.62.66/32')).toBe(false);
    await until('the retained block gone after block del', () => block('198.18.62.66/32') === undefined, 10_000);
    expect(verdict('198.18.62.66')).toBe(XDP_PASS);
    await enforcer!.reconcile();
    expect(block('198.18.62.66/32')).toBeUndefined();
    expect(limit('198.18.62.1')).toMatchObject({ retained: true });
    expect(await exceptions('ledger-generation-changed')).toHaveLength(1);
  });

  test('a restart of Redis without its data is a new generation: the kernel keeps what it had', async () => {
    const since = Date.now();
    await restartEnforcer(300);
    await blocker.request(ruleRequest('198.18.62.69'));
    await until('the block in the kernel', () => block('198.18.62.69/32'), 10_000);
    await server.kill();
    for (const name of fs.readdirSync(server.dir)) fs.rmSync(path.join(server.dir, name), { recursive: true, force: true });
    await server.start();
    await until('the kernel to keep the block as retained', () => block('198.18.62.69/32')?.retained, 15_000);
    const events = await until('the generation exception', async () => {
      const found = await exceptions('ledger-generation-changed', since);
      return found.length > 0 && found;
    }, 15_000);
    expect(events).toHaveLength(1);
    expect(verdict('198.18.62.69')).toBe(XDP_DROP);
    expect((await blocker.request(ruleRequest('198.18.62.70'))).status).toBe('blocked');
    await until('a block written after the restart in the kernel', () => block('198.18.62.70/32'), 10_000);
    expect(block('198.18.62.70/32')).toMatchObject({ retained: false });
  });

  test('a stale replica (a revision lower than the kernel saw) is detected the same way', async () => {
    const since = Date.now();
    const e = await restartEnforcer();
    await blocker.request(ruleRequest('198.18.62.71'));
    const { rev } = await e.reconcile();
    // The replica never got the last block: no entry, and an older revision.
    await redis.multi().del('xdp-ids:block:198.18.62.71/32').zrem('xdp-ids:blocks', '198.18.62.71/32').zrem('xdp-ids:blocks:pool:verified', '198.18.62.71/32')
      .set('xdp-ids:blocks:rev', rev - 1).exec();
    await e.reconcile();
    expect(block('198.18.62.71/32')).toMatchObject({ retained: true });
    const events = await until('the generation exception', async () => {
      const found = await exceptions('ledger-generation-changed', since);
      return found.length > 0 && found;
    });
    expect(events).toEqual([expect.objectContaining({ details: expect.objectContaining({ previousRev: rev, rev: rev - 1 }) })]);
  });

  test('an epoch no ledger writer produces (longer than the kernel keeps) is another generation, and the enforcer goes on following the ledger', async () => {
    const since = Date.now();
    const e = await restartEnforcer();
    await blocker.request(ruleRequest('198.18.62.72'));
    await e.reconcile();
    await redis.set('xdp-ids:ledger:epoch', 'x'.repeat(200));
    await e.reconcile();
    // The ledger still holds it, so it is as current as before.
    expect(block('198.18.62.72/32')).toMatchObject({ retained: false });
    expect((await blocker.request(ruleRequest('198.18.62.73'))).status).toBe('blocked');
    await until('a block written since in the kernel', () => block('198.18.62.73/32'), 10_000);
    await e.reconcile();
    expect(block('198.18.62.73/32')).toMatchObject({ retained: false });
    expect(await until('the generation exception', async () => {
      const found = await exceptions('ledger-generation-changed', since);
      return found.length > 0 && found;
    })).toHaveLength(1);
  });

  test('a restarted sensor (program reopened from its pins, a new enforcer) does not raise it again', async () => {
    const since = Date.now();
    const before = program.listBlocks().map(({ prefix, retained }) => ({ prefix, retained }));
    await enforcer!.stop();
    enforcer = undefined;
    program.close();
    program = XdpIdsProgram.open({ pinName: PIN_NAME });
    await restartEnforcer();
    expect(program.listBlocks().map(({ prefix, retained }) => ({ prefix, retained }))).toEqual(before);
    // An entry only the enforcer refuses: its exception, queued after anything the restart raised, marks the point to look.
    await redis.multi().set('xdp-ids:block:0.0.0.0/0', JSON.stringify({ target: '0.0.0.0/0', scope: 'all', expiresMs: Date.now() + MIN }))
      .zadd('xdp-ids:blocks', Date.now() + MIN, '0.0.0.0/0').exec();
    await enforcer!.reconcile();
    await until('the refusal exception', async () => (await exceptions('ledger-entry-refused', since)).length > 0);
    expect(await exceptions('ledger-generation-changed', since)).toEqual([]);
  });
});
