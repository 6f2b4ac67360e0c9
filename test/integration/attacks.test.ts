/**
 * Attacks on a real redis-server: the incidents of one key are one attack, named by the rule that
 * subsumes the others, and resolve with it; a scanner's decoys (same rule, same destination, same
 * moment) are one attack; detectors racing on one attack see one; the kernels' drop counts say
 * whether a blocked source kept sending.
 */
import type { Redis } from 'ioredis';
import type { Incident } from '../../common/alert-events';
import { connectRedis } from '../../common/redis';
import { AttackStore, CORRELATE_MS } from '../../detector/attacks';
import { IncidentStore, type IncidentInput } from '../../detector/incidents';
import { headerSample } from '../support/alert-fixtures';
import { testRedis, type TestRedis } from '../support/redis';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const TARGET = '198.18.0.10';
const INHIBITS: Record<string, string[]> = { 'scan-tcp-vertical': ['scan-tcp-slow', 'flood-syn'] };
const SEVERITY = { 'scan-tcp-vertical': 'medium', 'scan-tcp-slow': 'low', 'flood-syn': 'high' } as const;
const WINDOW = { 'scan-tcp-vertical': 5000, 'scan-tcp-slow': 300_000, 'flood-syn': 3000 } as const;

type Rule = keyof typeof SEVERITY;

function input(ruleId: Rule, key: string): IncidentInput {
  return {
    ruleId, ruleVersion: 'v1', title: ruleId, description: `${ruleId}.`, severity: SEVERITY[ruleId], mitre: ['T1046'], tags: ['scan'], scope: 'source', groupBy: 'src', key,
    when: 'syn >= 30', windowMs: WINDOW[ruleId], firstWindowMs: T0, features: { syn: 1000 }, conditions: [{ expression: 'syn >= 30', value: 1000, threshold: 30, holds: true }],
    sensor: 'sensor-a',
  };
}

describe('attacks', () => {
  let redis: TestRedis;
  let client: Redis;
  let other: Redis;
  let drops: Map<string, number>;

  const stores = (connection: Redis): { incidents: IncidentStore; attacks: AttackStore } => {
    const incidents = new IncidentStore(connection, { resolveAfterMs: 60_000 });
    return { incidents, attacks: new AttackStore(connection, incidents, { inhibits: (rule) => INHIBITS[rule] ?? [], dropped: async () => drops }) };
  };

  /** Opens (or updates) a rule's incident for a source probing `target`, and joins it to its attack. */
  async function fire(s: ReturnType<typeof stores>, ruleId: Rule, key: string, nowMs: number, target = TARGET): Promise<Incident & { attackId: string }> {
    const t = await s.incidents.record(input(ruleId, key), [headerSample({ src: key, dst: target })], nowMs);
    const attack = await s.attacks.join(t!.incident, nowMs);
    return { ...t!.incident, attackId: attack.id };
  }

  beforeAll(async () => {
    redis = await testRedis();
    client = connectRedis(redis.url);
    other = connectRedis(redis.url);
  });

  beforeEach(() => {
    drops = new Map();
  });

  afterEach(async () => {
    await client.flushall();
  });

  afterAll(async () => {
    client.disconnect();
    other.disconnect();
    await redis.stop();
  });

  test('three rules on one source are one attack named by the rule that subsumes the others; it resolves with that rule, the slow scan still open', async () => {
    const s = stores(client);
    const slow = await fire(s, 'scan-tcp-slow', '198.18.0.66', T0);
    const flood = await fire(s, 'flood-syn', '198.18.0.66', T0 + 10);
    const vertical = await fire(s, 'scan-tcp-vertical', '198.18.0.66', T0 + 20);
    expect(new Set([slow.attackId, flood.attackId, vertical.attackId]).size).toBe(1);
    const attack = (await s.attacks.get(vertical.attackId))!;
    expect(attack.incidents.map((i) => [i.ruleId, i.subsumedBy])).toEqual([
      ['scan-tcp-vertical', undefined], ['flood-syn', 'scan-tcp-vertical'], ['scan-tcp-slow', 'scan-tcp-vertical'],
    ]);
    expect((await s.incidents.get('flood-syn', '198.18.0.66'))!.attackId).toBe(attack.id);

    // Vertical and the flood go quiet after 60 s; the slow scan's 5-minute window keeps its incident open.
    const resolved = await s.incidents.resolveDue(T0 + 61_000);
    expect(resolved.map((t) => t.incident.ruleId).sort()).toEqual(['flood-syn', 'scan-tcp-vertical']);
    const phases = await Promise.all(resolved.map((t) => s.attacks.settle({ ...t.incident, attackId: attack.id }, T0 + 61_000)));
    expect(phases.filter((a) => a?.phase === 'resolved')).toHaveLength(1);
    expect((await s.attacks.get(attack.id))!.resolvedMs).toBe(T0 + 61_000);

    // The slow scan resolving later has nothing more to say; the source's next incident opens a new attack.
    const [late] = await s.incidents.resolveDue(T0 + 301_000);
    expect(await s.attacks.settle({ ...late.incident, attackId: attack.id }, T0 + 301_000)).toBeUndefined();
    const again = await fire(s, 'scan-tcp-vertical', '198.18.0.66', T0 + 400_000);
    expect(again.attackId).not.toBe(attack.id);
    expect((await s.attacks.get(again.attackId))!.incidents.map((i) => i.ruleId)).toEqual(['scan-tcp-vertical']);
  });

  test('a rule that nothing in its attack subsumes keeps the attack open on its own', async () => {
    const s = stores(client);
    const slow = await fire(s, 'scan-tcp-slow', '198.18.0.67', T0);
    const flood = await fire(s, 'flood-syn', '198.18.0.68', T0);
    expect(slow.attackId).not.toBe(flood.attackId);
    const [t] = (await s.incidents.resolveDue(T0 + 61_000)).filter((x) => x.incident.ruleId === 'flood-syn');
    expect(await s.attacks.settle({ ...t.incident, attackId: flood.attackId }, T0 + 61_000)).toMatchObject({ phase: 'resolved' });
    expect((await s.attacks.get(slow.attackId))!.resolvedMs).toBeUndefined();
  });

  test("a scanner's decoys are one attack: same rule, same destination, within seconds; later or elsewhere is another", async () => {
    const s = stores(client);
    const decoys = ['198.18.0.110', '198.18.0.254', '198.18.0.253', '198.18.0.252', '198.18.0.251', '198.18.0.250'];
    const opened = await Promise.all(decoys.map((src, i) => fire(s, 'scan-tcp-vertical', src, T0 + i * 50)));
    const slow = await Promise.all(decoys.map((src) => fire(s, 'scan-tcp-slow', src, T0 + 400)));
    const ids = new Set([...opened, ...slow].map((i) => i.attackId));
    expect(ids.size).toBe(1);
    const attack = (await s.attacks.get([...ids][0]))!;
    expect(attack.incidents).toHaveLength(12);
    expect(attack.incidents.filter((i) => !i.subsumedBy).map((i) => i.key).sort()).toEqual([...decoys].sort());

    const late = await fire(s, 'scan-tcp-vertical', '198.18.0.249', T0 + CORRELATE_MS + 1000);
    const elsewhere = await fire(s, 'scan-tcp-vertical', '198.18.0.248', T0 + 100, '198.18.0.11');
    const otherRule = await fire(s, 'flood-syn', '198.18.0.247', T0 + 100);
    expect(new Set([attack.id, late.attackId, elsewhere.attackId, otherRule.attackId]).size).toBe(4);
  });

  test('detectors on two connections joining and resolving one attack at once see one attack and one resolution', async () => {
    const [a, b] = [stores(client), stores(other)];
    const sources = Array.from({ length: 20 }, (_, i) => `198.18.1.${i + 1}`);
    // As the engine reports them: a tick's detections rule by rule.
    const vertical = await Promise.all(sources.map((src, i) => fire(i % 2 ? a : b, 'scan-tcp-vertical', src, T0)));
    const slow = await Promise.all(sources.map((src, i) => fire(i % 2 ? b : a, 'scan-tcp-slow', src, T0)));
    const joined = [...vertical, ...slow];
    expect(new Set(joined.map((i) => i.attackId)).size).toBe(1);
    const attackId = joined[0].attackId;
    const resolved = await a.incidents.resolveDue(T0 + 61_000);
    expect(resolved).toHaveLength(20);
    const settled = await Promise.all(resolved.map((t, i) => (i % 2 ? a : b).attacks.settle({ ...t.incident, attackId }, T0 + 61_000)));
    expect(settled.filter((x) => x?.phase === 'resolved')).toHaveLength(1);
  });

  test('the drop counts of blocked sources say whether they kept sending', async () => {
    const s = stores(client);
    const blocked = async (key: string, target: string): Promise<string> => {
      await fire(s, 'scan-tcp-vertical', key, T0, target);
      await s.incidents.setBlock('scan-tcp-vertical', key, { status: 'blocked', target: `${key}/32`, expiresMs: T0 + 600_000 });
      return (await s.attacks.join((await s.incidents.get('scan-tcp-vertical', key))!, T0)).id;
    };
    const [knocking, stopped] = [await blocked('198.18.0.70', '198.18.0.10'), await blocked('198.18.0.71', '198.18.0.11')];
    drops = new Map([['198.18.0.70/32', 500], ['198.18.0.71/32', 800]]);
    await s.attacks.sampleDrops(T0 + 5000);
    drops = new Map([['198.18.0.70/32', 1500], ['198.18.0.71/32', 800]]);
    await s.attacks.sampleDrops(T0 + 55_000);
    const resolved = await s.incidents.resolveDue(T0 + 61_000);
    const attacks = await Promise.all(resolved.map((t) => s.attacks.settle({ ...t.incident, attackId: t.incident.attackId! }, T0 + 61_000)));
    const byId = new Map(attacks.map((x) => [x!.id, x!]));
    expect(byId.get(knocking)).toMatchObject({ phase: 'resolved', blocked: [{ target: '198.18.0.70/32', dropped: 1500, lastDropMs: T0 + 55_000, knocking: true }] });
    expect(byId.get(stopped)).toMatchObject({ phase: 'resolved', blocked: [{ target: '198.18.0.71/32', dropped: 800, lastDropMs: T0 + 5000, knocking: false }] });
    expect(await client.hlen('xdp-ids:attacks:blocked')).toBe(0);
  });
});
