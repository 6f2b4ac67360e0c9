/** The detection eval's bookkeeping: who owns an address, which case an incident or a message is about. */
import { NetnsLab } from '../../lab/netns';
import { covers, planAddresses } from '../../lab/eval/addresses';
import { CASES, type EvalCase } from '../../lab/eval/cases';
import { addressesOf, incidentIdsOf } from '../../lab/eval/mailbox';
import { ownersOf, type CaseScope } from '../../lab/eval/verdicts';

function scope(id: string, addresses: string[], startMs: number, trafficEndMs: number, extra: Partial<CaseScope> = {}): CaseScope {
  return { id, addresses, senders: addresses.slice(0, 1), randomSources: false, startMs, trafficEndMs, ...extra };
}

describe('planAddresses', () => {
  const lab = new NetnsLab('xiev', 40);

  test('every case has its own target, host and forged addresses, and captures get disjoint source prefixes', () => {
    const plan = planAddresses(lab, CASES);
    const all = plan.flatMap((a) => [a.target, `${lab.v4Prefix}.${a.hostOctet}`, ...a.forged]);
    expect(new Set(all).size).toBe(all.length);
    const prefixes = plan.flatMap((a) => (a.capturePrefix ? [a.capturePrefix] : []));
    expect(prefixes.length).toBe(CASES.filter((c) => c.traffic.tool === 'replay').length);
    for (const p of prefixes) for (const q of prefixes) if (p !== q) expect(covers(p, q.split('/')[0])).toBe(false);
  });

  test('--long (every case twice) still fits; more does not', () => {
    expect(() => planAddresses(lab, [...CASES, ...CASES])).not.toThrow();
    const many: EvalCase[] = Array.from({ length: 120 }, (_, i) => ({ id: `c${i}`, kind: 'benign', traffic: { tool: 'curl', requests: 1 } }));
    expect(() => planAddresses(lab, many)).toThrow(RangeError);
  });
});

describe('ownersOf', () => {
  const a = scope('a', ['198.18.40.100', 'fd00:18:28::64', '198.18.40.2'], 1000, 2000);
  const b = scope('b', ['198.18.40.101', 'fd00:18:28::65', '198.18.40.3'], 3000, 4000, { randomSources: true });
  const c = scope('c', ['198.18.40.102', '198.18.40.4'], 12_000, 13_000, { prefix: '198.19.16.0/20' });
  const scopes = [a, b, c];

  test('an address or a narrow prefix belongs to the case that has it, whenever it is seen', () => {
    expect(ownersOf(scopes, '198.18.40.101', 99_999)).toEqual([b]);
    expect(ownersOf(scopes, '198.18.40.100/32', 0)).toEqual([a]);
    expect(ownersOf(scopes, '198.19.17.5', 12_500)).toEqual([c]);
  });

  test('a prefix covering several cases goes to the one whose traffic was on, or had just ended', () => {
    expect(ownersOf(scopes, 'fd00:18:28::/64', 1500)).toEqual([a]);
    expect(ownersOf(scopes, '198.18.40.0/24', 9000)).toEqual([b]);
  });

  test('a window that overlaps two cases belongs to both', () => {
    expect(ownersOf(scopes, '198.18.40.0/24', 2500)).toEqual([a, b]);
  });

  test('an address no case has goes to the random-source case sending at the time, or to nobody', () => {
    expect(ownersOf(scopes, '203.0.113.9', 3500)).toEqual([b]);
    expect(ownersOf(scopes, '203.0.113.9', 12_500)).toEqual([c]);
    expect(ownersOf(scopes, '203.0.113.9', 60_000)).toEqual([]);
  });
});

describe('mailbox parsing', () => {
  const message = {
    subject: '[MEDIUM] OPENED: Vertical TCP port scan — 198.18.40.100 → 198.18.40.2 — blocked 198.18.40.100/32 until 2026-12-06T09:19:48Z',
    text: 'Who: fd00:18:28::64 → fd00:18:28::1\nSince 09:19:48 (1 s)\n  12:00:01.123  198.18.40.100:40000 → 198.18.40.2:22  tcp S  64\nsrc mac 52:36:0b:1a:ee:5b\nIncident 0f1c2d3e-aaaa-bbbb-cccc-123456789abc\nEvent x at y\n',
  };

  test('finds the addresses and prefixes a message names, not times or MAC addresses', () => {
    expect(addressesOf(message).sort()).toEqual(['198.18.40.100', '198.18.40.100/32', '198.18.40.2', 'fd00:18:28::1', 'fd00:18:28::64'].sort());
  });

  test('finds the incidents a message is about, one or every incident of an attack', () => {
    expect(incidentIdsOf(message)).toEqual(['0f1c2d3e-aaaa-bbbb-cccc-123456789abc']);
    const attack = { subject: message.subject, text: 'Attack att-1\nIncident inc-1 (scan-tcp-vertical, 198.18.40.100)\nIncident inc-2 (scan-tcp-slow, 198.18.40.100)\nEvent x at y\n' };
    expect(incidentIdsOf(attack)).toEqual(['inc-1', 'inc-2']);
  });
});
