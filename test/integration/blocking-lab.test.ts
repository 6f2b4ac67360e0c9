/**
 * Automatic blocking end to end on the real kernel and a real Redis: two sensors (two veth labs,
 * each with its own XDP program and enforcer) on one ledger. The attacker's traffic is real
 * (hping3, ping) and every drop is read from the kernel's per-entry counters.
 */
import net from 'node:net';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ALERTS_QUEUE, type AlertEvent } from '../../common/alert-events';
import type { BlockRequest } from '../../common/block-requests';
import type { Trip } from '../../common/sensor-tick';
import { connectRedis, startEmbeddedRedis, type EmbeddedRedis } from '../../common/redis';
import { hostAllowRules } from '../../blocking/allowlist';
import { LedgerBlocker } from '../../blocking/blocker';
import { BlockControl } from '../../blocking/control';
import { startEnforcer, type Enforcer } from '../../blocking/enforcer';
import { LedgerMaintenance } from '../../blocking/maintenance';
import { BlockLedger } from '../../blocking/ledger';
import { AlertQueueNotices } from '../../blocking/notices';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { hping3 } from '../../lab/traffic';
import { wallMsToMono } from '../../sensor/clock';
import { Sensor } from '../../sensor/daemon';
import type { XdpIdsProgram } from '../../sensor/kernel/program';
import { blockRequest } from '../support/block-requests';
import { CollectingSink } from '../support/collecting-sink';
import { quietLogger } from '../support/quiet-logger';

const ATTACKER = '198.18.2.66';
const ATTACKER_PREFIX = `${ATTACKER}/32`;

/** Blocks the source of every SYN trip, as a blocking rule of the detector would. */
class TripBlockingSink extends CollectingSink {
  blocker?: LedgerBlocker;
  readonly outcomes: Promise<unknown>[] = [];

  trip(t: Trip): void {
    super.trip(t);
    if (this.blocker && t.kind === 'syn') this.outcomes.push(this.blocker.request(ruleRequest(t.src, 60_000)));
  }
}

function ruleRequest(target: string, ttlMs: number, overrides: Partial<BlockRequest> = {}): BlockRequest {
  return blockRequest(target, { ttlMs, ruleId: 'syn-flood', title: 'SYN flood', sensor: 'xiblka', ...overrides });
}

async function until(what: string, predicate: () => boolean, timeoutMs = 2000): Promise<number> {
  const start = performance.now();
  while (!predicate()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return performance.now() - start;
}

function entry(program: XdpIdsProgram, prefix: string) {
  return program.listBlocks().find((b) => b.prefix === prefix);
}

describe('automatic blocking with two sensors on one Redis', () => {
  let server: EmbeddedRedis;
  let redis: Redis;
  let ledger: BlockLedger;
  let notices: AlertQueueNotices;
  let alerts: Queue;
  let blocker: LedgerBlocker;
  let maintenance: LedgerMaintenance;
  let control: BlockControl;
  const labs: NetnsLab[] = [];
  const sensors: Sensor[] = [];
  const enforcers: (Enforcer | undefined)[] = [];
  const attackers: LabHost[] = [];
  const sinks: TripBlockingSink[] = [];

  const programs = (): XdpIdsProgram[] => sensors.map((s) => s.program);

  /** `count` echo requests from the attacker's address at each sensor's protected host. */
  async function pingFromAttacker(i: number, count: number): Promise<string> {
    return await labs[i].run(attackers[i], ['ping', '-c', String(count), '-i', '0.01', '-W', '1', '-I', ATTACKER, labs[i].hostV4], 10_000)
      .catch((err: { stdout?: string }) => err.stdout ?? '');
  }

  async function queuedEvents(): Promise<AlertEvent[]> {
    return (await alerts.getJobs(['waiting'])).map((j) => j.data as AlertEvent);
  }

  async function eventually(what: string, predicate: () => Promise<boolean>, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await predicate())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function startEnforcerFor(i: number): Promise<Enforcer> {
    return await startEnforcer({ program: programs()[i], redisUrl: server.url, sensorId: labs[i].name, log: quietLogger, reconcileMs: 500 });
  }

  beforeAll(async () => {
    server = await startEmbeddedRedis();
    redis = connectRedis(server.url);
    ledger = new BlockLedger(redis);
    notices = new AlertQueueNotices(redis);
    alerts = new Queue(ALERTS_QUEUE, { connection: redis });
    alerts.on('error', () => undefined); // the last test stops Redis on purpose
    blocker = new LedgerBlocker(ledger, { component: 'test', hostAllow: hostAllowRules() }, notices, quietLogger);
    maintenance = new LedgerMaintenance(ledger, notices, quietLogger, 200).start();
    control = new BlockControl(ledger, blocker);
    for (const [i, [name, subnet]] of ([['xiblka', 2], ['xiblkb', 3]] as const).entries()) {
      const lab = new NetnsLab(name, subnet).create();
      labs.push(lab);
      // Both labs hold an attacker with the same address, so one decision must drop it at both sensors.
      attackers.push(lab.addHost('atk', 66, i === 0 ? [] : [ATTACKER]));
      // Resolve the protected host's MAC first: with the block in place, ARP itself still passes but ping would not tell us.
      await lab.run(attackers[i], ['ping', '-c', '1', '-W', '2', lab.hostV4], 10_000);
      sinks.push(new TripBlockingSink());
      sensors.push(Sensor.start({ iface: lab.iface, pin: false, windowMs: 500, trip: { syn: 50 } }, sinks[i], quietLogger));
    }
    for (let i = 0; i < 2; i++) enforcers.push(await startEnforcerFor(i));
  });

  afterAll(async () => {
    await maintenance?.stop();
    for (const e of enforcers) await e?.stop();
    for (const s of sensors) s.stop();
    for (const lab of labs) lab.destroy();
    await alerts?.close();
    await notices?.close();
    redis?.disconnect();
    await server?.stop();
  });

  test('enforcers are ready after their first reconciliation and load the host allowlist into the kernel', () => {
    expect(enforcers.every((e) => e!.ready)).toBe(true);
    for (const [i, program] of programs().entries()) {
      const allows = program.listAllows().map((a) => a.prefix);
      expect(allows).toEqual(expect.arrayContaining(['127.0.0.0/8', `${labs[i].hostV4}/32`]));
      expect(allows).not.toContain(ATTACKER_PREFIX);
    }
  });

  test('with --allow-ssh-peers, the peer of an admin session is allowed while it is connected, and refused as a block target', async () => {
    const admin = labs[0].addHost('adm', 30);
    const sshd = net.createServer((socket) => socket.on('error', () => undefined)).listen(2222, labs[0].hostV4);
    await new Promise((r) => sshd.once('listening', r));
    await enforcers[0]!.stop();
    enforcers[0] = await startEnforcer({ program: programs()[0], redisUrl: server.url, sensorId: labs[0].name, log: quietLogger, reconcileMs: 300, allow: { sshPeers: [2222] } });
    const session = labs[0].spawn(admin, ['bash', '-c', `exec 3<>/dev/tcp/${labs[0].hostV4}/2222; sleep 20`]);
    try {
      const allowed = (): boolean => programs()[0].listAllows().some((a) => a.prefix === `${admin.v4}/32`);
      await until('the admin peer in the kernel allowlist', allowed, 5000);
      const outcome = await blocker.request(ruleRequest(admin.v4, 60_000));
      expect(outcome).toMatchObject({ status: 'refused', target: `${admin.v4}/32` });
      expect(outcome.reason).toMatch(/active SSH session/);
      session.kill('SIGKILL');
      await until('the allow entry gone once the session ended', () => !allowed(), 5000);
    } finally {
      session.kill('SIGKILL');
      sshd.close();
      await enforcers[0]!.stop();
      enforcers[0] = await startEnforcerFor(0);
    }
  });

  test('a rule-driven block (SYN flood trip) drops the attacker at both sensors with the ledger\'s expiry', async () => {
    sinks[0].blocker = blocker;
    await hping3(labs[0], attackers[0], 'syn', labs[0].hostV4, { count: 200, intervalUs: 1000, dport: 80 });
    sinks[0].blocker = undefined;
    await Promise.all(sinks[0].outcomes);
    const ledgerEntry = (await ledger.get(ATTACKER_PREFIX))!;
    expect(ledgerEntry).toMatchObject({ origin: 'rule', ruleId: 'syn-flood', scope: 'all' });
    await until('the block at both sensors', () => programs().every((p) => entry(p, ATTACKER_PREFIX) !== undefined), 1000);
    for (const program of programs()) {
      const diffNs = entry(program, ATTACKER_PREFIX)!.expiresNs - wallMsToMono(ledgerEntry.expiresMs);
      expect(Math.abs(Number(diffNs))).toBeLessThan(50e6);
    }
    // The flood's tail after the block already counts; each sensor then drops every echo request.
    const before = programs().map((p) => entry(p, ATTACKER_PREFIX)!.drops);
    expect(before[0]).toBeGreaterThan(0);
    await Promise.all([pingFromAttacker(0, 20), pingFromAttacker(1, 20)]);
    programs().forEach((p, i) => expect(entry(p, ATTACKER_PREFIX)!.drops - before[i]).toBe(20));
  });

  test('a re-ban extends the expiry everywhere', async () => {
    const before = (await ledger.get(ATTACKER_PREFIX))!;
    const outcome = await blocker.request(ruleRequest(ATTACKER, 30 * 60_000));
    expect(outcome.status).toBe('extended');
    expect(outcome.expiresMs! - before.expiresMs).toBeGreaterThan(15 * 60_000);
    const wanted = wallMsToMono(outcome.expiresMs!);
    await until('the new expiry at both sensors', () => programs().every((p) => Math.abs(Number(entry(p, ATTACKER_PREFIX)!.expiresNs - wanted)) < 50e6), 1000);
  });

  test('a manual unblock takes effect at both sensors within a second', async () => {
    expect(await control.delBlock(ATTACKER, 'test')).toBe(true);
    const ms = await until('the block gone at both sensors', () => programs().every((p) => entry(p, ATTACKER_PREFIX) === undefined), 1000);
    expect(ms).toBeLessThan(1000);
    // Sensor A's attacker uses its own address, so the replies come back: every echo is answered.
    expect(await pingFromAttacker(0, 5)).toMatch(/5 packets transmitted, 5 received/);
    const events = await queuedEvents();
    expect(events).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'block', phase: 'unblocked', target: ATTACKER_PREFIX })]));
  });

  test('a block expires on time in the kernel and the ledger, and the expiry is announced', async () => {
    const shortLived = new LedgerBlocker(ledger, { component: 'test', hostAllow: hostAllowRules(), ladderMs: [] }, notices, quietLogger);
    const outcome = await shortLived.request(ruleRequest(ATTACKER, 1500));
    expect(outcome.status).toBe('blocked');
    await until('the block at sensor A', () => entry(programs()[0], ATTACKER_PREFIX) !== undefined, 1000);
    await pingFromAttacker(0, 10);
    const during = entry(programs()[0], ATTACKER_PREFIX)!.drops;
    expect(during).toBe(10);
    await new Promise((r) => setTimeout(r, outcome.expiresMs! - Date.now() + 20));
    expect(await ledger.get(ATTACKER_PREFIX)).toBeUndefined();
    await pingFromAttacker(0, 10);
    expect(entry(programs()[0], ATTACKER_PREFIX)?.drops ?? during).toBe(during);
    await until('the expired entry cleared from both kernels', () => programs().every((p) => entry(p, ATTACKER_PREFIX) === undefined), 2000);
    await eventually('the expiry notice', async () => (await queuedEvents()).some((e) => e.kind === 'block' && e.phase === 'expired' && e.target === ATTACKER_PREFIX && e.ruleId === 'syn-flood'));
  });

  test('allowlisted gateway, own and admin addresses are refused and stay in the kernel allow maps', async () => {
    const own = await blocker.request(ruleRequest(labs[1].hostV4, 60_000));
    expect(own).toMatchObject({ status: 'refused', reason: expect.stringMatching(/allowlisted: .* \(own address \(xiblkb\)/) });
    const gateway = hostAllowRules().find((r) => r.reason === 'default gateway');
    if (gateway) expect((await blocker.request(ruleRequest(gateway.prefix.text, 60_000))).reason).toMatch(/default gateway/);
    await control.addAllow({ target: '198.18.2.10', reason: 'admin workstation' }, 'test');
    expect((await blocker.request(ruleRequest('198.18.2.10', 60_000))).reason).toMatch(/admin workstation/);
    await until('the admin allow at both sensors', () => programs().every((p) => p.listAllows().some((a) => a.prefix === '198.18.2.10/32')), 1000);
    expect((await ledger.snapshot()).blocks).toEqual([]);
    await control.delAllow('198.18.2.10', 'test');
    await until('the admin allow removed', () => programs().every((p) => !p.listAllows().some((a) => a.prefix === '198.18.2.10/32')), 1000);
  });

  test('a random-source SYN flood trips the unverified budget: at most that budget is blocked, one exception is raised, verified blocks go on', async () => {
    const budget = 10;
    const guarded = new LedgerBlocker(ledger, { component: 'test', hostAllow: hostAllowRules(), unverified: { maxActive: budget, maxNewPerMinute: 1000 } }, notices, quietLogger);
    const ticksBefore = sinks[0].ticks.length;
    await hping3(labs[0], attackers[0], 'syn', labs[0].hostV4, { count: 300, intervalUs: 2000, dport: 8080, randSource: true });
    await sinks[0].nextTicks(2);
    const sources = [...new Set(sinks[0].ticks.slice(ticksBefore).flatMap((t) => t.sources).map((s) => s.src))].filter((s) => !s.startsWith('198.18.'));
    expect(sources.length).toBeGreaterThan(100);
    const outcomes = await Promise.all(sources.map((src) => guarded.request(ruleRequest(src, 60_000, { evidence: 'unverified' }))));
    const blocked = outcomes.filter((o) => o.status === 'blocked').length;
    expect(blocked).toBeLessThanOrEqual(budget);
    expect(blocked).toBeGreaterThan(0);
    // hping3's random sources include addresses no block may name (multicast, loopback, ...): refused for that instead.
    const refusedFor = (why: RegExp): number => outcomes.filter((o) => o.status === 'refused' && why.test(o.reason!)).length;
    const overBudget = refusedFor(/budget exhausted/);
    expect(overBudget).toBeGreaterThan(sources.length / 2);
    expect(blocked + overBudget + refusedFor(/^(invalid request|allowlisted)/)).toBe(sources.length);
    await new Promise((r) => setTimeout(r, 600));
    for (const program of programs()) expect(program.listBlocks().length).toBeLessThanOrEqual(budget);
    const exceptions = (await queuedEvents()).filter((e) => e.kind === 'exception');
    expect(exceptions).toEqual([expect.objectContaining({ code: 'block-budget-exceeded', details: expect.objectContaining({ evidence: 'unverified' }) })]);
    // The breaker is the unverified pool's: a verified attacker is still blocked.
    expect((await guarded.request(ruleRequest(ATTACKER, 60_000))).status).toBe('blocked');
    for (const b of (await ledger.snapshot()).blocks) await ledger.unblock(b.target, 60_000);
    await redis.del('xdp-ids:blocks:breaker:unverified');
    // The next test stops an enforcer: it must have applied these unblocks first.
    await until('the unblocks at both sensors', () => programs().every((p) => p.listBlocks().length === 0), 2000);
  });

  test('a killed and restarted enforcer resyncs before it reports ready: adds the missing, removes the orphaned', async () => {
    await enforcers[1]!.stop();
    enforcers[1] = undefined;
    const programB = programs()[1];
    const outcome = await blocker.request(ruleRequest(ATTACKER, 60_000));
    expect(outcome.status).toBe('blocked');
    programB.addBlock('198.18.9.9/32', wallMsToMono(Date.now() + 60_000));
    await new Promise((r) => setTimeout(r, 100));
    expect(entry(programB, ATTACKER_PREFIX)).toBeUndefined();
    const repairsBefore = (await ledger.sensorStates()).find((s) => s.sensor === 'xiblkb')!.repairs;
    enforcers[1] = await startEnforcerFor(1);
    expect(enforcers[1].ready).toBe(true);
    expect(entry(programB, ATTACKER_PREFIX)).toBeDefined();
    expect(entry(programB, '198.18.9.9/32')).toBeUndefined();
    const repairs = (await ledger.sensorStates()).find((s) => s.sensor === 'xiblkb')!.repairs;
    expect(repairs['repairs:added'] - (repairsBefore['repairs:added'] ?? 0)).toBeGreaterThanOrEqual(1);
    expect(repairs['repairs:removed'] - (repairsBefore['repairs:removed'] ?? 0)).toBeGreaterThanOrEqual(1);
    await control.delBlock(ATTACKER, 'test');
  });

  test('with Redis down, existing blocks keep dropping until their expiry, then stop', async () => {
    const shortLived = new LedgerBlocker(ledger, { component: 'test', hostAllow: hostAllowRules(), ladderMs: [] }, notices, quietLogger);
    const outcome = await shortLived.request(ruleRequest(ATTACKER, 3000));
    await until('the block at both sensors', () => programs().every((p) => entry(p, ATTACKER_PREFIX) !== undefined), 1000);
    await server.stop();
    await new Promise((r) => setTimeout(r, 700)); // at least one failed reconciliation
    await Promise.all([pingFromAttacker(0, 10), pingFromAttacker(1, 10)]);
    const during = programs().map((p) => entry(p, ATTACKER_PREFIX)!.drops);
    expect(during).toEqual([10, 10]);
    await new Promise((r) => setTimeout(r, Math.max(0, outcome.expiresMs! - Date.now() + 50)));
    await Promise.all([pingFromAttacker(0, 10), pingFromAttacker(1, 10)]);
    expect(programs().map((p) => entry(p, ATTACKER_PREFIX)!.drops)).toEqual(during);
  });
});
