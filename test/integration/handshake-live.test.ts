/**
 * Handshake verification and replies with real traffic: the sensor attached (XDP on the way in,
 * TC egress on the way out) to the protected host's veth of a namespace lab. Real curl
 * connections complete handshakes; an nmap SYN scan and hping3 SYNs from a forged address do
 * not; what lab servers answer the host (HTTP, and UDP from port 53) counts as replies, not as
 * distinct ports. Traffic stays inside the lab's namespaces (198.18.61.0/24).
 */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import { promisify } from 'node:util';
import { NetnsLab, type LabHost } from '../../lab/netns';
import { curl, hping3, nmap } from '../../lab/traffic';
import { Sensor } from '../../sensor/daemon';
import { CollectingSink } from '../support/collecting-sink';
import { quietLogger } from '../support/quiet-logger';
import { sourceRecord } from '../support/kernel-records';
import { until } from '../support/until';

const execFileAsync = promisify(execFile);
const HTTP_PORT = 8080;
/** The host's own client ports: fixed, so none of them is a port sensor/ports.ts calls a service. */
const LOCAL_PORTS = { first: 41000, last: 41999 };

/** A lab server on `host`: HTTP on port 80 and a UDP answerer on port 53, as one small node process. */
const SERVER_SCRIPT = `
const [addr] = process.argv.slice(1);
require('http').createServer((req, res) => res.end('lab server\\n')).listen(80, addr);
const udp = require('dgram').createSocket('udp4');
udp.on('message', (msg, from) => udp.send(Buffer.concat([msg, Buffer.alloc(200)]), from.port, from.address));
udp.bind(53, addr);
`;

describe('handshakes and replies on a veth lab with real traffic', () => {
  const lab = new NetnsLab('xikrnl', 61);
  const sink = new CollectingSink();
  let client: LabHost;
  let scanner: LabHost;
  let server: LabHost;
  let web: http.Server | undefined;
  let sensor: Sensor | undefined;

  beforeAll(async () => {
    lab.create();
    client = lab.addHost('cli', 10);
    scanner = lab.addHost('scan', 66);
    server = lab.addHost('srv', 20);
    web = http.createServer((_req, res) => res.end('protected host\n'));
    await new Promise<void>((resolve) => web!.listen(HTTP_PORT, lab.hostV4, resolve));
    lab.spawn(server, [process.execPath, '-e', SERVER_SCRIPT, server.v4]);
    sensor = Sensor.start({ iface: lab.iface, windowMs: 500, pin: false, protect: [`${lab.hostV4}/32`, `${lab.hostV6}/128`] }, sink, quietLogger);
    await sink.nextTicks(1);
  }, 30_000);

  afterAll(async () => {
    sensor?.stop();
    web?.closeAllConnections();
    await new Promise((resolve) => (web ? web.close(resolve) : resolve(undefined)));
    lab.destroy();
  });

  function windowsOf(src: string) {
    return sink.ticks.flatMap((t) => t.sources).filter((s) => s.src === src);
  }

  test('curl connections to the protected host complete handshakes: the client is verified', async () => {
    const started = Date.now();
    const challengesBefore = sensor!.program.readGlobals().challenges;
    const codes = (await curl(lab, client, `http://${lab.hostV4}:${HTTP_PORT}/`, 5)).trim().split('\n');
    expect(codes).toEqual(Array(5).fill('200'));

    await until('the client\'s handshake in a window', () => sink.totals(client.v4).handshakes >= 1 || undefined, 10_000);
    await sink.nextTicks(1); // a window that ended after the last connection
    // The first connection verifies the client; the next ones fall within the refresh interval.
    expect(sink.totals(client.v4)).toMatchObject({ handshakes: 1, syn: 5, ttlMismatch: 0 });
    const verified = windowsOf(client.v4).find((w) => w.handshakes > 0)!;
    expect(verified.verifiedMs).toBeGreaterThanOrEqual(started - 1100); // verified_at counts whole 2^30 ns units
    expect(verified.verifiedMs).toBeLessThanOrEqual(Date.now());
    expect(sourceRecord(sensor!.program, client.v4)).toMatchObject({ handshakes: 1, verified_ttl: 64 });
    expect(sourceRecord(sensor!.program, client.v4)!.verified_at).toBeGreaterThan(0);
    // Every SYN-ACK the host sent went through the egress program.
    expect(sensor!.program.readGlobals().challenges - challengesBefore).toBeGreaterThanOrEqual(5);
    await until('the handshake at the destination', () => {
      const handshakes = sink.ticks.flatMap((t) => t.destinations).filter((d) => d.dst === lab.hostV4).reduce((sum, d) => sum + d.handshakes, 0);
      return handshakes >= 1 || undefined;
    }, 5000);
  }, 30_000);

  test('an nmap SYN scan, open port included, completes no handshake', async () => {
    const challengesBefore = sensor!.program.readGlobals().challenges;
    await nmap(lab, scanner, '-sS', lab.hostV4, { ports: `1-100,${HTTP_PORT}`, maxSeconds: 20 });
    await until('the scan in the windows', () => sink.totals(scanner.v4).syn >= 101 || undefined, 10_000);
    await sink.nextTicks(1);
    // The open port answered with a SYN-ACK: a challenge the scanner never answers (its kernel resets it).
    expect(sensor!.program.readGlobals().challenges - challengesBefore).toBeGreaterThanOrEqual(1);
    expect(sink.totals(scanner.v4)).toMatchObject({ handshakes: 0 });
    expect(windowsOf(scanner.v4).every((w) => w.verifiedMs === 0)).toBe(true);
    expect(sourceRecord(sensor!.program, scanner.v4)).toMatchObject({ handshakes: 0, verified_at: 0 });
  }, 40_000);

  test('hping3 SYNs from a forged address complete no handshake', async () => {
    const forged = `${lab.v4Prefix}.250`;
    await hping3(lab, scanner, 'syn', lab.hostV4, { count: 50, intervalUs: 5000, dport: HTTP_PORT, spoofSource: forged });
    await until('the forged SYNs in the windows', () => sink.totals(forged).syn >= 45 || undefined, 10_000);
    await sink.nextTicks(1);
    expect(sink.totals(forged)).toMatchObject({ handshakes: 0, ackOnly: 0 });
    expect(sourceRecord(sensor!.program, forged)).toMatchObject({ handshakes: 0, verified_at: 0 });
  }, 30_000);

  test('what lab servers answer the host (HTTP, UDP from port 53) counts as replies, not as distinct ports', async () => {
    const url = `http://${server.v4}/`;
    const fetchFromHost = async (): Promise<string> => {
      const { stdout } = await execFileAsync('curl', ['-s', '-o', '/dev/null', '-m', '2', '--local-port', `${LOCAL_PORTS.first}-${LOCAL_PORTS.last}`,
        '-w', '%{http_code}', url], { timeout: 5000 });
      return stdout;
    };
    await until('the lab server', async () => (await fetchFromHost().catch(() => '')) === '200' || undefined, 10_000);
    for (let i = 0; i < 9; i++) expect(await fetchFromHost()).toBe('200');
    const answered = await Promise.all(Array.from({ length: 20 }, (_, i) => askUdp(lab.hostV4, LOCAL_PORTS.first + 500 + i, server.v4)));
    expect(answered.filter(Boolean)).toHaveLength(20);

    await until('the replies in the windows', () => sink.totals(server.v4).replies >= 10 * 3 + 20 || undefined, 10_000);
    await sink.nextTicks(1);
    const totals = sink.totals(server.v4);
    expect(totals.replies).toBe(totals.packets); // SYN-ACKs, data, ACKs, FINs and datagrams alike
    expect(windowsOf(server.v4).map((w) => w.distinctPorts)).toEqual(windowsOf(server.v4).map(() => 0));
    const toHost = sink.ticks.flatMap((t) => t.destinations).filter((d) => d.dst === lab.hostV4);
    expect(toHost.reduce((sum, d) => sum + d.udpAmp, 0)).toBe(20);
    expect(Math.max(...toHost.map((d) => d.ampSources))).toBeGreaterThan(0);
  }, 40_000);
});

/** Sends one datagram from `local`:`port` to `server`:53; true when the answer came back. */
function askUdp(local: string, port: number, server: string): Promise<boolean> {
  const socket = dgram.createSocket('udp4');
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 3000);
    socket.on('message', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.bind(port, local, () => socket.send('query', 53, server));
  }).finally(() => socket.close());
}
