/**
 * The default pack (rules/): it loads cleanly, its embedded cases pass, and beyond them every
 * rule stays quiet on a library of ordinary traffic while each attack fires the rules meant for it.
 */
import type { SourceWindow } from '../../common/sensor-tick';
import { RuleEngine } from '../../detector/rules/engine';
import { defaultRulesDir, loadRules, type RuleSet } from '../../detector/rules/loader';
import { formatProblem } from '../../detector/rules/problems';
import { runRuleTests } from '../../detector/rules/rule-tests';
import { destinationWindow, sourceWindow, tick } from './rules-support';

const loaded = loadRules([defaultRulesDir()]);

function pack(): RuleSet {
  if (!loaded.ruleSet) throw new Error(loaded.problems.map(formatProblem).join('\n'));
  return loaded.ruleSet;
}

type Counts = Partial<Omit<SourceWindow, 'src'>>;

/** Rule ids that fire at any point of `seconds` seconds of the same per-second traffic. */
function firedBy(perSecond: Counts | ((second: number) => Counts), seconds: number): string[] {
  const engine = new RuleEngine(pack());
  const fired = new Set<string>();
  for (let s = 0; s < seconds; s++) {
    const counts = typeof perSecond === 'function' ? perSecond(s) : perSecond;
    for (const d of engine.process(tick(1000 + s, [sourceWindow('203.0.113.7', counts)]))) fired.add(d.ruleId);
  }
  return [...fired].sort();
}

describe('default rule pack', () => {
  test('loads without errors or warnings', () => {
    expect(loaded.problems.map(formatProblem)).toEqual([]);
    expect(pack().rules.length).toBeGreaterThanOrEqual(13);
  });

  test('every rule documents itself and has cases that fire and cases that stay quiet', () => {
    for (const rule of pack().rules) {
      expect({ id: rule.id, fire: rule.tests.some((t) => t.expect === 'fire'), quiet: rule.tests.some((t) => t.expect === 'quiet') }).toEqual({ id: rule.id, fire: true, quiet: true });
      expect(rule.description.length).toBeGreaterThan(100);
      expect(rule.mitre.length).toBeGreaterThan(0);
    }
  });

  test('embedded cases pass', () => {
    const failures = runRuleTests(pack().rules).filter((c) => !c.passed).map((c) => `${c.ruleId}: ${c.name}: ${c.detail}`);
    expect(failures).toEqual([]);
  });

  const ordinary: [string, Counts | ((s: number) => Counts), number][] = [
    ['browsing for 10 minutes', { packets: 60, bytes: 9000, syn: 6, ackOnly: 45, fin: 6, rst: 1, udp: 4, distinctPorts: 3, distinctHosts: 2 }, 600],
    ['wrk -c10 for 2 minutes', (s) => ({ packets: 40000, bytes: 4_400_000, syn: s === 0 ? 10 : 0, ackOnly: 40000, distinctPorts: 1, distinctHosts: 1 }), 120],
    ['iperf3 at 1 Gbit/s for 2 minutes', (s) => ({ packets: 85000, bytes: 128_000_000, syn: s === 0 ? 2 : 0, ackOnly: 85000, distinctPorts: 1, distinctHosts: 1 }), 120],
    ['50 short HTTP connections a second for 10 minutes', { packets: 300, bytes: 36000, syn: 50, ackOnly: 150, fin: 50, distinctPorts: 1, distinctHosts: 1 }, 600],
    ['the same client aborting each connection with RST', { packets: 300, bytes: 36000, syn: 50, ackOnly: 150, rst: 50, distinctPorts: 1, distinctHosts: 1 }, 120],
    ['HTTP/3 download at 100 Mbit/s with DNS', { packets: 2310, bytes: 185000, udp: 2310, distinctPorts: 2, distinctHosts: 2 }, 300],
    ['ping -i 0.2', { packets: 5, bytes: 490, icmp: 5, distinctHosts: 1 }, 300],
    ['an idle SSH session', { packets: 2, bytes: 200, ackOnly: 2, distinctPorts: 1, distinctHosts: 1 }, 600],
    ['a resolver answering 3000 names a second (replies to ephemeral ports)', { packets: 3000, bytes: 450000, udp: 3000, replies: 3000, distinctHosts: 1 }, 120],
    ['a VPN peer speaking TCP, UDP, ESP and GRE', { packets: 500, bytes: 400000, ackOnly: 300, udp: 100, distinctPorts: 2, distinctHosts: 1, distinctProtocols: 4 }, 120],
  ];

  test.each(ordinary)('%s stays quiet', (_name, traffic, seconds) => {
    expect(firedBy(traffic, seconds)).toEqual([]);
  });

  const attacks: [string, Counts, number, string[]][] = [
    ['nmap -sS -T4 (1000 ports)', { packets: 1008, syn: 1000, rst: 8, distinctPorts: 1000, distinctHosts: 1 }, 1, ['flood-syn', 'scan-tcp-slow', 'scan-tcp-vertical']],
    ['nmap -sU', { packets: 200, udp: 200, distinctPorts: 200, distinctHosts: 1 }, 1, ['scan-udp']],
    ['nmap -sF', { packets: 1000, fin: 1000, finOnly: 1000, distinctPorts: 1000 }, 1, ['scan-tcp-fin']],
    ['nmap -sN', { packets: 1000, nullScan: 1000, distinctPorts: 1000 }, 1, ['scan-tcp-null']],
    ['nmap -sX', { packets: 500, fin: 500, xmas: 500, distinctPorts: 500 }, 1, ['scan-tcp-xmas']],
    ['SYN+FIN probes', { packets: 300, synFin: 300, distinctPorts: 300 }, 1, ['scan-tcp-syn-fin']],
    ['sweep of port 22', { packets: 256, syn: 256, distinctPorts: 1, distinctHosts: 250 }, 1, ['scan-tcp-horizontal']],
    ['hping3 -S flood', { packets: 3300, syn: 3300, distinctPorts: 1, distinctHosts: 1 }, 5, ['flood-syn']],
    ['hping3 -R flood', { packets: 20000, rst: 20000, distinctPorts: 1 }, 5, ['flood-rst-ack']],
    ['hping3 --udp flood', { packets: 30000, udp: 30000, distinctPorts: 1 }, 5, ['flood-udp']],
    ['hping3 --icmp flood', { packets: 2000, icmp: 2000 }, 5, ['flood-icmp']],
    ['nmap -T2 slow scan', { packets: 3, syn: 3, distinctPorts: 3 }, 30, ['scan-tcp-slow']],
    ['nmap -sA', { packets: 1000, ackOnly: 1000, distinctPorts: 1000, distinctHosts: 1 }, 1, ['scan-tcp-ack']],
    ['nmap -sO', { packets: 256, syn: 1, udp: 1, icmp: 1, distinctProtocols: 111 }, 1, ['scan-ip-protocol']],
    ['nmap -sS -f', { packets: 3000, firstFragments: 1000, fragments: 2000, distinctPorts: 1000, distinctHosts: 1 }, 1, ['scan-fragmented']],
    ['hping3 --udp -f flood', { packets: 8800, firstFragments: 100, fragments: 8700, distinctPorts: 1, distinctHosts: 1 }, 5, ['flood-fragments']],
  ];

  test.each(attacks)('%s fires %j', (_name, traffic, seconds, rules) => {
    expect(firedBy(traffic, seconds)).toEqual(rules);
  });

  const destinationAttacks: [string, Parameters<typeof destinationWindow>[1], string[]][] = [
    ['DNS amplification from 380 reflectors', { udp: 3000, udpAmp: 3000, udpAmpBytes: 4_500_000, bytes: 4_500_000, distinctSources: 480, ampSources: 380 }, ['reflection-udp-amplification']],
    ['SYN-ACK backscatter', { synAck: 5000, bytes: 270_000, distinctSources: 2900 }, ['reflection-syn-ack']],
    ['ICMP flood from forged sources', { icmp: 8000, bytes: 336_000, distinctSources: 3000 }, ['flood-icmp-spoofed']],
    ['fragment flood from many sources', { fragments: 9000, fragmentBytes: 13_000_000, bytes: 13_000_000, distinctSources: 480 }, ['flood-fragments-spoofed']],
    ['300 SYNs a second from addresses that never repeat', { syn: 300, bytes: 16_200, distinctSources: 290 }, ['flood-syn-spoofed-slow']],
    ['a busy host resolving names and syncing time', { udp: 3004, udpAmp: 3004, udpAmpBytes: 450_000, bytes: 450_000, distinctSources: 5, ampSources: 5 }, []],
    ['a web server with 300 returning clients a second', { syn: 300, bytes: 22_000, distinctSources: 150, handshakes: 5 }, []],
  ];

  test.each(destinationAttacks)('at a destination, %s fires %j within 12 s', (_name, counts, rules) => {
    const engine = new RuleEngine(pack());
    const fired = new Set<string>();
    for (let s = 0; s < 12; s++) for (const d of engine.process(tick(1000 + s, [], [destinationWindow('198.18.0.1', counts)]))) fired.add(d.ruleId);
    expect([...fired].sort()).toEqual(rules);
  });

  test('a spoofed SYN flood fires at the destination, after 3 s', () => {
    const engine = new RuleEngine(pack());
    const fired = [0, 1, 2, 3].map((s) => engine.process(tick(1000 + s, [], [destinationWindow('198.18.0.1', { syn: 60000, bytes: 3_240_000, distinctSources: 3194 })])).map((d) => d.ruleId));
    expect(fired).toEqual([[], [], ['flood-syn-spoofed'], ['flood-syn-spoofed']]);
  });
});
