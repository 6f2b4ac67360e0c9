/**
 * Tables under pressure, on a real redis-server and a real kernel: a program whose IPv4 block
 * table holds 4 entries (MapSizes.blocksV4) facing a ledger that holds more. The enforcer still
 * becomes ready, writes what fits, goes on past ENOSPC (allows, limits and extensions still land),
 * counts what failed and says so once, without blaming Redis. The ledger itself refuses blocks
 * past its capacity and configured allow entries past ALLOW_CAPACITY, before any table overflows.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { ALERTS_QUEUE, type AlertEvent, type ExceptionEvent } from '../../common/alert-events';
import type { BlockRequest } from '../../common/block-requests';
import { connectRedis } from '../../common/redis';
import { hostAllowRules } from '../../blocking/allowlist';
import { LedgerBlocker } from '../../blocking/blocker';
import { BlockControl, InputError } from '../../blocking/control';
import { startEnforcer, type Enforcer } from '../../blocking/enforcer';
import { ALLOW_CAPACITY, BlockLedger } from '../../blocking/ledger';
import { wallMsToMono } from '../../sensor/clock';
import { XdpIdsProgram } from '../../sensor/kernel/program';
import { blockRequest, limitRequest } from '../support/block-requests';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { until } from '../support/until';

const SENSOR = 'xitrfull';
const KERNEL_BLOCKS_V4 = 4;
const MIN = 60_000;

const ruleRequest = (target: string, ttlMs = 10 * MIN): BlockRequest => blockRequest(target, { ttlMs, sensor: SENSOR });

describe('kernel tables under pressure', () => {
  let server: TestRedis;
  let redis: Redis;
  let alerts: Queue<AlertEvent>;
  let ledger: BlockLedger;
  let blocker: LedgerBlocker;
  let program: XdpIdsProgram;
  let enforcer: Enforcer | undefined;
  const logLines: { level: number; msg: string }[] = [];

  /** Six blocks for a table of four. */
  const LEDGER_BLOCKS = ['10', '11', '12', '13', '14', '15'].map((n) => `198.18.62.${n}/32`);

  beforeAll(async () => {
    server = await testRedis();
    redis = connectRedis(server.url);
    alerts = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
    ledger = new BlockLedger(redis);
    blocker = new LedgerBlocker(ledger, { component: 'test', hostAllow: hostAllowRules() }, undefined, quietLogger);
    program = XdpIdsProgram.open({ sizes: { blocksV4: KERNEL_BLOCKS_V4 } });
  });

  afterAll(async () => {
    await enforcer?.stop();
    program?.close();
    await alerts?.close();
    redis?.disconnect();
    await server?.stop();
  });

  const kernelBlocks = (): string[] => program.listBlocks().map((b) => b.prefix);
  const hasAllow = (prefix: string): boolean => program.listAllows().some((a) => a.prefix === prefix);
  const hasLimit = (address: string): boolean => program.listDestinationLimits().some((l) => l.address === address);

  async function exceptions(code: string): Promise<ExceptionEvent[]> {
    return (await alerts.getJobs(['waiting'])).map((j) => j.data).filter((e): e is ExceptionEvent => e.kind === 'exception' && e.code === code);
  }

  test('a ledger with more blocks than the table holds: ready, what fits written, the rest counted as failed, allows and limits still land, one exception that does not blame Redis', async () => {
    for (const target of LEDGER_BLOCKS) expect((await blocker.request(ruleRequest(target))).status).toBe('blocked');
    await ledger.allow('198.18.62.100/32', 'admin workstation');
    await blocker.limit(limitRequest('198.18.62.1', { sensor: SENSOR }));
    const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line) as { level: number; msg: string }) });
    enforcer = await startEnforcer({ program, redisUrl: server.url, sensorId: SENSOR, log, reconcileMs: 10 * MIN });

    expect(enforcer.ready).toBe(true);
    expect(kernelBlocks()).toHaveLength(KERNEL_BLOCKS_V4);
    expect(LEDGER_BLOCKS).toEqual(expect.arrayContaining(kernelBlocks()));
    expect(hasAllow('198.18.62.100/32')).toBe(true);
    expect(hasLimit('198.18.62.1')).toBe(true);
    expect(await enforcer.reconcile()).toMatchObject({ added: 0, removed: 0, refused: 0, failed: LEDGER_BLOCKS.length - KERNEL_BLOCKS_V4 });
    expect((await ledger.sensorStates()).find((s) => s.sensor === SENSOR)!.repairs).toMatchObject({ failed: LEDGER_BLOCKS.length - KERNEL_BLOCKS_V4 });

    const events = await until('the table-full exception', async () => {
      const found = await exceptions('kernel-table-full');
      return found.length > 0 && found;
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ severity: 'high', component: `sensor@${SENSOR}`, details: expect.objectContaining({ failed: LEDGER_BLOCKS.length - KERNEL_BLOCKS_V4 }) });
    expect(events[0].message).toMatch(/could not be written to the kernel .*ENOSPC/);
    expect(events[0].message).not.toMatch(/redis/i);
    expect(logLines.filter((l) => /redis|unreachable/i.test(l.msg))).toEqual([]);
  });

  test('past ENOSPC the enforcer keeps following the ledger: a new allow, a new limit and an extension land, and room made is filled', async () => {
    const inKernel = kernelBlocks()[0];
    const extended = await blocker.request(ruleRequest(inKernel, 60 * MIN));
    expect(extended.status).toBe('extended');
    await ledger.allow('198.18.62.101/32', 'monitoring');
    await blocker.limit(limitRequest('198.18.62.2', { sensor: SENSOR }));
    expect((await blocker.request(ruleRequest('198.18.62.16'))).status).toBe('blocked');
    await until('the new allow and limit in the kernel', () => hasAllow('198.18.62.101/32') && hasLimit('198.18.62.2'), 10_000);
    const wanted = wallMsToMono(extended.expiresMs!);
    await until('the extension in the kernel', () => Math.abs(Number(program.listBlocks().find((b) => b.prefix === inKernel)!.expiresNs - wanted)) < 50e6, 10_000);
    expect((await enforcer!.reconcile()).failed).toBe(LEDGER_BLOCKS.length + 1 - KERNEL_BLOCKS_V4);

    await blocker.unblock(inKernel);
    await until('the unblocked entry gone', () => !kernelBlocks().includes(inKernel), 10_000);
    expect((await enforcer!.reconcile())).toMatchObject({ added: 1, failed: LEDGER_BLOCKS.length - KERNEL_BLOCKS_V4 });
    expect(kernelBlocks()).toHaveLength(KERNEL_BLOCKS_V4);
    expect(await exceptions('kernel-table-full')).toHaveLength(1);
  });

  test('the ledger refuses new blocks past its capacity with status full; extensions still pass', async () => {
    const active = (await ledger.snapshot()).blocks.length;
    const bounded = new LedgerBlocker(ledger, { component: 'test', hostAllow: hostAllowRules(), capacity: active }, undefined, quietLogger);
    const refused = await bounded.request(ruleRequest('198.18.62.17'));
    expect(refused).toMatchObject({ status: 'refused', reason: expect.stringMatching(new RegExp(`the ledger holds ${active} active blocks, all the kernel tables can take`)) });
    expect(await ledger.block({ target: '198.18.62.17/32', ttlMs: MIN, origin: 'manual', evidence: 'manual', reason: 'operator' }, bounded.policy))
      .toEqual({ status: 'full', active });
    expect((await ledger.stats())['refused:full']).toBe(2);
    expect((await bounded.request(ruleRequest('198.18.62.11'))).status).toBe('extended');
    expect(await ledger.get('198.18.62.17/32')).toBeUndefined();
  });

  test(`the ledger refuses configured allow entries past ALLOW_CAPACITY (${ALLOW_CAPACITY})`, async () => {
    await enforcer?.stop();
    enforcer = undefined;
    const have = await redis.hlen('xdp-ids:allow');
    const fill = redis.pipeline();
    for (let i = have; i < ALLOW_CAPACITY; i++) fill.hset('xdp-ids:allow', `10.${(i >> 8) & 255}.${i & 255}.0/24`, JSON.stringify({ reason: 'bulk', createdMs: Date.now() }));
    await fill.exec();
    expect(await redis.hlen('xdp-ids:allow')).toBe(ALLOW_CAPACITY);
    expect(await ledger.allow('198.18.62.102/32', 'one too many')).toBe(false);
    await expect(new BlockControl(ledger, blocker).addAllow({ target: '198.18.62.102' }, 'test')).rejects.toThrow(InputError);
    expect(await ledger.allow('198.18.62.100/32', 'admin workstation, renamed')).toBe(true);
    expect(await ledger.disallow('198.18.62.101/32')).toBe(true);
    expect(await ledger.allow('198.18.62.102/32', 'now there is room')).toBe(true);
    expect(await redis.hlen('xdp-ids:allow')).toBe(ALLOW_CAPACITY);
  });
});
