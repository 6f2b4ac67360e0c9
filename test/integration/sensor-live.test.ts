/**
 * The sensor on a real veth in a network-namespace lab, with real traffic from nmap, hping3 and
 * curl. Every count is checked against a capture of what the sender actually sent.
 */
import { Capture, type CapturedPacket } from '../../lab/capture';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { startLabServices, type LabServices } from '../../lab/services';
import { curl, hping3, nmap, type NmapScan } from '../../lab/traffic';
import { BpfObject } from '../../native/bpf';
import { Sensor } from '../../sensor/daemon';
import { wallMsToMono } from '../../sensor/clock';
import { CollectingSink } from '../support/collecting-sink';
import { quietLogger } from '../support/quiet-logger';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

const LAB = `xil${process.pid % 10000}`;

interface Classes {
  packets: number; bytes: number; syn: number; synAck: number; ackOnly: number; rst: number; fin: number;
  nullScan: number; finOnly: number; xmas: number; synFin: number; udp: number; icmp: number;
}

/** The TCP classes of bpf/xdp_ids.h, applied to what the capture saw. */
function classify(packets: CapturedPacket[]): Classes {
  const c: Classes = { packets: 0, bytes: 0, syn: 0, synAck: 0, ackOnly: 0, rst: 0, fin: 0, nullScan: 0, finOnly: 0, xmas: 0, synFin: 0, udp: 0, icmp: 0 };
  for (const p of packets) {
    c.packets++;
    c.bytes += p.frameLength;
    if (p.protocol === 'udp') c.udp++;
    if (p.protocol === 'icmp' || p.protocol === 'icmpv6') c.icmp++;
    if (p.protocol !== 'tcp') continue;
    const f = p.tcpFlags & 0x3f;
    const core = f & 0x17;
    if (core === 0x02) c.syn++;
    if (core === 0x12) c.synAck++;
    if (core === 0x10) c.ackOnly++;
    if (f & 0x04) c.rst++;
    if ((f & 0x03) === 0x01) c.fin++;
    if (f === 0) c.nullScan++;
    if (f === 0x01) c.finOnly++;
    if (f === 0x29) c.xmas++;
    if ((f & 0x03) === 0x03) c.synFin++;
  }
  return c;
}

describe('sensor on a veth lab with real traffic', () => {
  let lab: NetnsLab;
  let attacker: LabHost;
  let client: LabHost;
  let services: LabServices;
  let sink: CollectingSink;
  let sensor: Sensor | undefined;

  beforeAll(async () => {
    lab = new NetnsLab(LAB).create();
    attacker = lab.addHost('atk', 66);
    client = lab.addHost('web', 10);
    services = await startLabServices(lab);
    sink = new CollectingSink();
    sensor = Sensor.start({ iface: lab.iface, windowMs: 500, trip: { syn: 50, ports: 40 } }, sink, quietLogger);
    await sink.nextTicks(1); // the first window is the baseline
  });

  afterAll(async () => {
    sensor?.stop();
    await services?.close();
    lab?.destroy();
    fs.rmSync(`/sys/fs/bpf/xdp-ids/${LAB}`, { recursive: true, force: true });
  });

  /** Runs `send` while capturing the sender, waits for the sensor to report, and compares. */
  async function sentVsCounted(from: LabHost, src: string, send: () => Promise<unknown>): Promise<{ sent: Classes; counted: ReturnType<CollectingSink['totals']> }> {
    const before = sink.totals(src);
    const capture = await Capture.start(lab, from, src);
    await send();
    const captured = await capture.stop();
    await sink.nextTicks(2);
    const after = sink.totals(src);
    const counted = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - ((before as unknown as Record<string, number>)[k] ?? 0)])) as ReturnType<CollectingSink['totals']>;
    return { sent: classify(captured), counted };
  }

  async function txPackets(host: LabHost): Promise<number> {
    return Number(await lab.run(host, ['cat', '/sys/class/net/eth0/statistics/tx_packets'], 5000));
  }

  function expectSame(sent: Classes, counted: ReturnType<CollectingSink['totals']>): void {
    const picked = Object.fromEntries(Object.keys(sent).map((k) => [k, (counted as unknown as Record<string, number>)[k] ?? 0]));
    expect(picked).toEqual(sent);
  }

  const scans: [NmapScan, keyof Classes][] = [['-sS', 'syn'], ['-sF', 'finOnly'], ['-sX', 'xmas'], ['-sN', 'nullScan'], ['-sU', 'udp']];
  test.each(scans)('nmap %s: every probe counted in its class, distinct ports estimated', async (scan, cls) => {
    const { sent, counted } = await sentVsCounted(attacker, attacker.v4, () => nmap(lab, attacker, scan, lab.hostV4, { ports: '1-150', maxSeconds: 20 }));
    expect(sent[cls]).toBeGreaterThanOrEqual(150);
    expectSame(sent, counted);
    const peak = Math.max(...sink.ticks.flatMap((t) => t.sources).filter((s) => s.src === attacker.v4).map((s) => s.distinctPorts));
    expect(peak).toBeGreaterThan(30);
  });

  test('a SYN scan reaches user space as a fast-path trip, with the packet header', async () => {
    const trip = sink.trips.find((t) => t.src === attacker.v4 && (t.kind === 'syn' || t.kind === 'ports'));
    expect(trip).toBeDefined();
    expect(trip!.packet.dst).toBe(lab.hostV4);
    expect(trip!.packet.ttl).toBeGreaterThan(0);
  });

  test('hping3 SYN flood: exactly the packets on the wire; curl: handshakes counted as SYN and ACK-only', async () => {
    const floodBefore = sink.totals(attacker.v4);
    const txBefore = await txPackets(attacker);
    await hping3(lab, attacker, 'syn', lab.hostV4, { count: 400, intervalUs: 1000, dport: 9 });
    // The interface's own counter is the truth (hping3 counts a send the queue refused as sent);
    // it also counts the odd ARP frame, which is not IP.
    const sent = (await txPackets(attacker)) - txBefore;
    await sink.nextTicks(2);
    const flood = sink.totals(attacker.v4);
    const syns = flood.syn - (floodBefore.syn ?? 0);
    expect(syns).toBeLessThanOrEqual(sent);
    expect(syns).toBeGreaterThanOrEqual(Math.max(sent - 4, 350));
    expect(flood.packets - (floodBefore.packets ?? 0)).toBe(syns);
    expect(flood.bytes - (floodBefore.bytes ?? 0)).toBe(syns * 54);
    const before = sink.totals(client.v4);
    const codes = (await curl(lab, client, services.httpUrl, 20)).trim().split('\n');
    await sink.nextTicks(2);
    const after = sink.totals(client.v4);
    expect(codes).toEqual(Array(20).fill('200'));
    expect(after.syn - (before.syn ?? 0)).toBe(20);
    // Each connection: the handshake's ACK, the request, ACKs of the response and of the close.
    expect(after.ackOnly - (before.ackOnly ?? 0)).toBeGreaterThanOrEqual(40);
    expect(after.fin - (before.fin ?? 0)).toBe(20);
    const dest = sink.ticks.flatMap((t) => t.destinations).filter((d) => d.dst === lab.hostV4).reduce((sum, d) => sum + d.syn, 0);
    expect(dest).toBeGreaterThanOrEqual(420);
  });

  test('a SYN flood from random spoofed sources shows at its destination; replies never leave the lab', async () => {
    const ticksBefore = sink.ticks.length;
    const txBefore = await txPackets(attacker);
    await hping3(lab, attacker, 'syn', lab.hostV4, { count: 300, intervalUs: 2000, dport: 8080, randSource: true });
    const sent = (await txPackets(attacker)) - txBefore;
    await sink.nextTicks(2);
    const windows = sink.ticks.slice(ticksBefore).flatMap((t) => t.destinations).filter((d) => d.dst === lab.hostV4);
    // The interface counter also counts the host's few ARP/neighbour frames.
    const syns = windows.reduce((sum, d) => sum + d.syn, 0);
    expect(syns).toBeLessThanOrEqual(sent);
    expect(syns).toBeGreaterThanOrEqual(Math.max(sent - 10, 280));
    expect(Math.max(...windows.map((d) => d.distinctSources))).toBeGreaterThan(100);
    const table = new RegExp(`from ${lab.hostV4} lookup (\\d+)`).exec(execFileSync('ip', ['-4', 'rule', 'show'], { encoding: 'utf8' }))![1];
    expect(execFileSync('ip', ['-4', 'route', 'show', 'table', table], { encoding: 'utf8' })).toMatch(/^blackhole default/m);
  });

  test('blocklist: IPv4 CIDR drops, allowlist wins, kernel expiry ends the block, IPv6 /64 drops', async () => {
    const program = sensor!.program;
    program.addBlock('198.18.0.64/26');
    await hping3(lab, attacker, 'syn', lab.hostV4, { count: 100, intervalUs: 1000, dport: 80 });
    expect(program.listBlocks().find((b) => b.prefix === '198.18.0.64/26')!.drops).toBe(100);

    program.addAllow(`${attacker.v4}/32`);
    await hping3(lab, attacker, 'syn', lab.hostV4, { count: 50, intervalUs: 1000, dport: 80 });
    expect(program.listBlocks().find((b) => b.prefix === '198.18.0.64/26')!.drops).toBe(100);
    expect(program.listAllows().find((a) => a.prefix === `${attacker.v4}/32`)!.hits).toBe(50);
    program.deleteAllow(`${attacker.v4}/32`);

    program.addBlock('198.18.0.64/26', wallMsToMono(Date.now() + 1500));
    await hping3(lab, attacker, 'syn', lab.hostV4, { count: 20, intervalUs: 1000, dport: 80 });
    const stillBlocked = program.listBlocks().find((b) => b.prefix === '198.18.0.64/26')!.drops;
    expect(stillBlocked).toBe(120); // replacing an entry keeps its drop count
    await new Promise((r) => setTimeout(r, 1700));
    await hping3(lab, attacker, 'syn', lab.hostV4, { count: 20, intervalUs: 1000, dport: 80 });
    expect(program.listBlocks().find((b) => b.prefix === '198.18.0.64/26')!.drops).toBe(120);
    program.deleteBlock('198.18.0.64/26');

    // Resolve the neighbour first: with the block in place the solicitation itself would be dropped.
    await lab.run(attacker, ['ping', '-6', '-c', '1', '-W', '2', lab.hostV6], 10_000);
    program.addBlock('fd00:18::/64');
    await lab.run(attacker, ['ping', '-6', '-c', '30', '-i', '0.01', '-W', '1', lab.hostV6], 10_000).catch(() => undefined);
    expect(program.listBlocks().find((b) => b.prefix === 'fd00:18::/64')!.drops).toBeGreaterThanOrEqual(30);
    program.deleteBlock('fd00:18::/64');
    expect(program.listBlocks()).toEqual([]);
  });

  test('a restarted sensor keeps its counters and blocks; stopping detaches the program', async () => {
    const ifindex = Number(fs.readFileSync(`/sys/class/net/${lab.iface}/ifindex`, 'utf8'));
    sensor!.program.addBlock('198.18.0.200/32');
    const before = sensor!.program.lookupSource(attacker.v4)!;
    sensor!.stop({ detach: false });
    expect(BpfObject.queryXdp(ifindex).progId).toBeGreaterThan(0);
    sensor = Sensor.start({ iface: lab.iface, windowMs: 500 }, sink, quietLogger);
    expect(sensor.program.listBlocks().map((b) => b.prefix)).toContain('198.18.0.200/32');
    expect(sensor.program.lookupSource(attacker.v4)!.readBigUInt64LE(0)).toBe(before.readBigUInt64LE(0));
    sensor.program.deleteBlock('198.18.0.200/32');
    sensor.stop();
    sensor = undefined;
    expect(BpfObject.queryXdp(ifindex).progId).toBe(0);
  });
});
