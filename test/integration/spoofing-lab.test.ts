/**
 * Spoofing end to end on a veth lab with real tools: the sensor attached (XDP in, TC egress out)
 * with its enforcer, its windows through a real Redis to a detector with the default rule pack and
 * a real LedgerBlocker. A forged FIN scan in a real lab host's name, and an nmap scan hidden among
 * decoys, get the forged addresses one short block at most; a client whose connect scan completes
 * handshakes is blocked for as long as the ladder says. The unverified TTL is cut to a few
 * seconds so that the test can wait for it to run out. Traffic stays inside the lab's namespaces
 * (198.18.62.0/24).
 */
import type { BlockOutcome, IncidentEvent } from '../../common/alert-events';
import { connectRedis, type RedisClient } from '../../common/redis';
import { hostAllowRules } from '../../blocking/allowlist';
import { DEFAULT_LADDER_MS, LedgerBlocker } from '../../blocking/blocker';
import { startEnforcer, type Enforcer } from '../../blocking/enforcer';
import { BlockLedger, type LedgerEntry, NS } from '../../blocking/ledger';
import { defaultRulesDir } from '../../detector/rules/loader';
import { Detector } from '../../detector/service';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { startLabServices, type LabServices } from '../../lab/services';
import { curl, hping3, nmap } from '../../lab/traffic';
import { Sensor } from '../../sensor/daemon';
import { QueuePublisher } from '../../sensor/publisher';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { until } from '../support/until';

const UNVERIFIED_TTL_MS = 4000;
const LADDER_FIRST_MS = DEFAULT_LADDER_MS[0];

describe('spoofed sources through the whole pipeline', () => {
  let server: TestRedis;
  let redis: RedisClient;
  const lab = new NetnsLab('xitrust', 62);
  let services: LabServices | undefined;
  let attacker: LabHost;
  /** A real lab host that stays silent: its address is the one forged. */
  let victim: LabHost;
  let scanner: LabHost;
  let client: LabHost;
  /** A client that completes handshakes, then has its address forged. */
  let regular: LabHost;
  let publisher: QueuePublisher | undefined;
  let sensor: Sensor | undefined;
  let enforcer: Enforcer | undefined;
  let detector: Detector | undefined;
  const incidents: IncidentEvent[] = [];

  beforeAll(async () => {
    server = await testRedis();
    redis = connectRedis(server.url);
    lab.create();
    attacker = lab.addHost('atk', 66);
    victim = lab.addHost('vic', 30);
    scanner = lab.addHost('scan', 77);
    client = lab.addHost('cli', 10);
    regular = lab.addHost('reg', 11);
    services = await startLabServices(lab);
    for (const host of [attacker, victim, scanner, client, regular]) await lab.run(host, ['ping', '-c', '1', '-W', '2', lab.hostV4], 10_000);
    publisher = new QueuePublisher({ redisUrl: server.url, sensorId: lab.name, log: quietLogger });
    sensor = Sensor.start({ iface: lab.iface, sensorId: lab.name, pin: false }, publisher, quietLogger);
    enforcer = await startEnforcer({ program: sensor.program, redisUrl: server.url, sensorId: lab.name, log: quietLogger, reconcileMs: 1000 });
    const blocker = new LedgerBlocker(new BlockLedger(redis), { component: 'test', hostAllow: hostAllowRules(), unverifiedTtlMs: UNVERIFIED_TTL_MS }, undefined, quietLogger);
    detector = await Detector.start({
      redisUrl: server.url, rulePaths: [defaultRulesDir()], log: quietLogger, blocker, resolveAfterMs: 1000, onIncident: (e) => incidents.push(e),
    });
  }, 60_000);

  afterAll(async () => {
    try {
      await detector?.stop();
      await enforcer?.stop();
      sensor?.stop();
      await publisher?.close();
      await services?.close();
    } finally {
      lab.destroy();
      redis?.disconnect();
      await server?.stop();
    }
  });

  /** The ledger entry of a target, also after its expiry (the ledger keeps it an hour to announce it). */
  async function ledgerEntry(address: string): Promise<LedgerEntry | undefined> {
    const text = await redis.get(`${NS}block:${address}/32`);
    return text ? JSON.parse(text) as LedgerEntry : undefined;
  }

  /** The first opened incident of `key` (after `sinceIndex`) whose rule answered with a block outcome. */
  function openedWithBlock(key: string, sinceIndex = 0): IncidentEvent | undefined {
    return incidents.slice(sinceIndex).find((e) => e.phase === 'opened' && e.incident.key === key && e.incident.block);
  }

  const kernelBlock = (address: string) => sensor!.program.listBlocks().find((b) => b.prefix === `${address}/32`);

  /** An unverified block: no longer than the unverified TTL, in the incident's outcome and in the ledger. */
  async function expectShortUnverified(address: string, outcome: BlockOutcome | undefined): Promise<void> {
    expect(outcome).toMatchObject({ status: 'blocked', evidence: 'unverified', target: `${address}/32` });
    const entry = (await ledgerEntry(address))!;
    expect(entry).toMatchObject({ evidence: 'unverified', strikes: 0, expiresMs: outcome!.expiresMs });
    expect(entry.expiresMs - entry.createdMs).toBeLessThanOrEqual(UNVERIFIED_TTL_MS);
  }

  test('hping3 -F in the name of a silent lab host: one short unverified block, then alert-only; the host keeps its access', async () => {
    // 20 FIN-only packets match scan-tcp-fin, whose block asks for 30 minutes.
    await hping3(lab, attacker, 'fin', lab.hostV4, { count: 20, intervalUs: 50_000, dport: 80, spoofSource: victim.v4 });
    const first = await until('the forged FIN scan\'s incident', () => openedWithBlock(victim.v4), 20_000);
    expect(first.incident.ruleId).toBe('scan-tcp-fin');
    await expectShortUnverified(victim.v4, first.incident.block);
    expect(first.incident.block!.expiresMs! - first.atMs).toBeLessThanOrEqual(UNVERIFIED_TTL_MS);

    await until('the forged-address incident to resolve', () => incidents.some((e) => e.phase === 'resolved' && e.incident.id === first.incident.id), 30_000);
    await until('the short block to run out', () => Date.now() > first.incident.block!.expiresMs! || undefined, 30_000);
    const mark = incidents.length;
    await hping3(lab, attacker, 'fin', lab.hostV4, { count: 20, intervalUs: 50_000, dport: 80, spoofSource: victim.v4 });
    const repeat = await until('the repeat\'s incident', () => openedWithBlock(victim.v4, mark), 20_000);
    expect(repeat.incident.block).toMatchObject({ status: 'alert-only', evidence: 'unverified', reason: expect.stringMatching(/already blocked once/) });
    expect((await ledgerEntry(victim.v4))!.expiresMs).toBe(first.incident.block!.expiresMs);
    // The address's real owner was never cut off for long: it reaches the protected host now.
    await lab.run(victim, ['ping', '-c', '1', '-W', '2', lab.hostV4], 10_000);
  }, 90_000);

  test('a SYN flood forged in the name of a client that completed handshakes before it, at that client\'s TTL: one short unverified block', async () => {
    expect((await curl(lab, regular, services!.httpUrl, 2)).trim().split('\n')).toEqual(['200', '200']);
    // Two ticks on, the detector has read the window of those handshakes; and the flood starts more
    // than the kernel's handshake stamp unit (1.07 s) plus a window after them, where a handshake's
    // time can no longer be told from the attack's.
    const ticks = detector!.stats().ticks;
    const handshakesDoneMs = Date.now();
    await until('the detector past the handshakes\' window', () => detector!.stats().ticks >= ticks + 2 && Date.now() - handshakesDoneMs > 2500, 10_000);
    const mark = incidents.length;
    // Same lab, same hop count: the forged SYNs arrive with the TTL of the client's own handshakes.
    await hping3(lab, attacker, 'syn', lab.hostV4, { count: 3000, intervalUs: 100, dport: 8081, spoofSource: regular.v4 });
    const opened = await until('the forged flood\'s incident', () => openedWithBlock(regular.v4, mark), 20_000);
    await expectShortUnverified(regular.v4, opened.incident.block);
  }, 90_000);

  test('nmap -sS with five decoys: the decoys get the short TTL at most, the scanner is blocked, the unverified breaker stays closed', async () => {
    const decoys = [40, 41, 42, 43, 44].map((octet) => `${lab.v4Prefix}.${octet}`);
    const mark = incidents.length;
    await nmap(lab, scanner, '-sS', lab.hostV4, { ports: '1-300', timing: 'T4', maxSeconds: 15, decoys });
    const opened = await until('incidents of the scanner and every decoy', () => {
      const found = [scanner.v4, ...decoys].map((key) => openedWithBlock(key, mark));
      return found.every(Boolean) && found as IncidentEvent[];
    }, 30_000);
    for (const [i, event] of opened.entries()) {
      const address = i === 0 ? scanner.v4 : decoys[i - 1];
      // A re-ban by a second rule reports the same block; unverified blocks are never extended.
      await expectShortUnverified(address, event.incident.block);
    }
    expect(await redis.exists(`${NS}blocks:breaker:unverified`)).toBe(0);
  }, 90_000);

  test('a client that scans with connects, completing handshakes during its scan, is blocked as verified, for the ladder\'s first step', async () => {
    // Its earlier handshakes prove only that the address is real: they verify nothing about the scan.
    expect((await curl(lab, client, services!.httpUrl, 3)).trim().split('\n')).toEqual(['200', '200', '200']);
    const mark = incidents.length;
    // A connect scan from the client's own TCP stack (its TTL stays that of its handshakes) while it
    // keeps browsing. Its ports go in ascending order from the open web port, so its first connect
    // completes a handshake before the probes that get it detected, let alone blocked, are sent.
    const web = Number(new URL(services!.httpUrl).port);
    await Promise.all([
      nmap(lab, client, '-sT', lab.hostV4, { ports: `${web}-${web + 300}`, timing: 'T4', maxSeconds: 8, inOrder: true }),
      // Its last requests time out once the block is in place: that is not a failure here.
      curl(lab, client, services!.httpUrl, 10).catch(() => 'blocked'),
    ]);
    const opened = await until('the client\'s scan incident', () => openedWithBlock(client.v4, mark), 30_000);
    expect(opened.incident.block).toMatchObject({ status: expect.stringMatching(/^(blocked|extended)$/), target: `${client.v4}/32` });
    // Verified at once when a handshake came in the detection's window, else from the sensor window that shows one.
    const entry = await until('a verified ledger entry', async () => {
      const e = await ledgerEntry(client.v4);
      return e?.evidence === 'verified' && e;
    }, 10_000);
    expect(entry.strikes).toBe(1);
    expect(entry.expiresMs - entry.createdMs).toBeGreaterThanOrEqual(LADDER_FIRST_MS);
    await until('the verified block in the kernel', () => kernelBlock(client.v4), 10_000);
  }, 90_000);
});
