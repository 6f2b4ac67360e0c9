/**
 * Runs one case's traffic from its lab host to its protected address with the real tool, bounded
 * as the case table says, and resolves when the tool is done. Servers a benign case needs (HTTP,
 * iperf3, the UDP peers) are started for the case on its own addresses and stopped after it.
 */
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import type { LabHost, NetnsLab } from '../netns';
import { curl, hping3, hping3Argv, iperf3, masscan, masscanArgv, nmap, nmapArgv, tcpreplay, wrk } from '../traffic';
import type { CaseAddresses } from './addresses';
import type { Capture } from './captures';
import type { EvalCase } from './cases';

const execFileAsync = promisify(execFile);

export const WEB_PORT = 8080;
const IPERF_PORT = 5201;
const HPING_FRAGMENT_BYTES = 16;
const UDP_HEADER = 8;

export interface TrafficContext {
  lab: NetnsLab;
  /** The monitored interface's MAC (masscan's next hop). */
  ifaceMac: string;
  /** This case's capture, written ahead of time (replay cases). */
  capture(): Promise<Capture>;
}

export interface TrafficRun {
  /** The command that made the traffic, as one would type it. */
  command: string;
  /** Frames the tool was told to send, where that is exact (hping3, masscan, captures), or the answers a benign UDP peer sends. */
  frames?: number;
  /** The tool's last words, or what a benign client reports it did. */
  summary: string;
}

const PEERS = path.join(__dirname, 'udp-peers.js');

function lastLine(text: string): string {
  return text.trim().split('\n').filter(Boolean).at(-1)?.trim() ?? '';
}

export async function runTraffic(ctx: TrafficContext, c: EvalCase, a: CaseAddresses, host: LabHost): Promise<TrafficRun> {
  const { lab } = ctx;
  const t = c.traffic;
  switch (t.tool) {
    case 'nmap': {
      const target = t.ipv6 ? lab.hostV6 : a.target;
      const opts = { ports: t.ports, timing: t.timing, maxSeconds: t.maxSeconds, ipv6: t.ipv6, fragment: t.fragment, decoys: a.forged, scanDelayMs: t.scanDelayMs };
      const out = await nmap(lab, host, t.scan, target, opts);
      return { command: nmapArgv(t.scan, target, opts).join(' '), summary: lastLine(out) };
    }
    case 'masscan': {
      const ports = portCount(t.ports);
      const opts = { ports: t.ports, rate: t.rate, targetMac: ctx.ifaceMac, maxSeconds: Math.ceil(ports / t.rate) + 15 };
      await masscan(lab, host, a.target, opts);
      return { command: masscanArgv(host, a.target, opts).join(' '), frames: ports, summary: `${ports} SYNs at ${t.rate}/s` };
    }
    case 'hping3': {
      const opts = {
        count: t.count, intervalUs: t.intervalUs, dport: t.dport, sweepPorts: t.sweepPorts, randSource: t.randSource,
        spoofSource: t.spoofSource ? a.forged[0] : undefined, sport: t.sport, dataBytes: t.dataBytes, fragment: t.fragment,
      };
      const out = await hping3(lab, host, t.mode, a.target, opts);
      const perPacket = t.fragment ? Math.ceil(((t.dataBytes ?? 0) + UDP_HEADER) / HPING_FRAGMENT_BYTES) : 1;
      return { command: hping3Argv(t.mode, a.target, opts).join(' '), frames: t.count * perPacket, summary: out.split('\n').find((l) => /packets tr/.test(l)) ?? lastLine(out) };
    }
    case 'replay': {
      const capture = await ctx.capture();
      const out = await tcpreplay(lab, host, capture.file, { pps: t.pps, frames: capture.frames });
      return {
        command: `captures.py ${t.capture} --count ${t.count} (${capture.frames} frames, ${capture.sources} sources); tcpreplay -i eth0 --pps=${t.pps}`,
        frames: capture.frames, summary: /Actual: .*/.exec(out)?.[0] ?? lastLine(out),
      };
    }
    case 'curl':
      return withHttp(a.target, async (url) => {
        const codes = (await curl(lab, host, url, t.requests)).split('\n').filter((l) => l === '200').length;
        return { command: `curl ${url} × ${t.requests}`, summary: `${codes} of ${t.requests} answered 200` };
      });
    case 'wrk':
      return withHttp(a.target, async (url) => {
        const out = await wrk(lab, host, url, t);
        return { command: `wrk -t ${t.threads} -c ${t.connections} -d ${t.seconds}s ${url}`, summary: /\d+ requests in .*/.exec(out)?.[0] ?? lastLine(out) };
      });
    case 'iperf3': {
      const server = lab.spawn(undefined, ['iperf3', '-s', '-1', '-B', a.target, '-p', String(IPERF_PORT)]);
      try {
        await listening(a.target, IPERF_PORT);
        const out = await iperf3(lab, host, a.target, { port: IPERF_PORT, seconds: t.seconds, udp: t.udp, bitrate: t.bitrate });
        const receiver = out.split('\n').find((l) => /receiver/.test(l)) ?? lastLine(out);
        return { command: `iperf3 -c ${a.target} -t ${t.seconds} -b ${t.bitrate}${t.udp ? ' -u -l 1400' : ''}`, summary: receiver.replace(/\s+/g, ' ').trim() };
      } finally {
        server.kill('SIGKILL');
      }
    }
    case 'dns':
      return withPeer(lab, host, ['dns-server', '--bind', host.v4], ['dns-client', '--server', host.v4, '--local', a.target, '--count', String(t.names), '--rate', String(t.rate)],
        t.names / t.rate + 15, `the protected host (${a.target}) resolves ${t.names} names at ${t.rate}/s through ${host.v4}:53, a new source port each`, t.names);
    case 'ntp':
      return withPeer(lab, host, ['ntp-server', '--bind', host.v4], ['ntp-client', '--server', host.v4, '--local', a.target, '--count', String(t.requests), '--interval-ms', String(t.intervalMs)],
        (t.requests * (t.intervalMs + 1000)) / 1000 + 10, `the protected host (${a.target}) polls ${host.v4}:123 ${t.requests} times`, t.requests);
    case 'quic':
      return withPeer(lab, host, ['quic-server', '--bind', host.v4, '--pps', String(t.pps), '--seconds', String(t.seconds)],
        ['quic-client', '--server', host.v4, '--local', a.target, '--seconds', String(t.seconds)],
        t.seconds + 15, `the protected host (${a.target}) downloads from ${host.v4}:443: ${t.pps} datagrams/s of 1,200 bytes for ${t.seconds} s`, t.pps * t.seconds);
  }
}

function portCount(ports: string): number {
  return ports.split(',').reduce((n, part) => {
    const [lo, hi] = part.split('-').map(Number);
    return n + (hi === undefined ? 1 : hi - lo + 1);
  }, 0);
}

async function withHttp(address: string, use: (url: string) => Promise<TrafficRun>): Promise<TrafficRun> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('xdp-ids eval\n');
  });
  await new Promise<void>((resolve) => server.listen(WEB_PORT, address, resolve));
  try {
    return await use(`http://${address}:${WEB_PORT}/`);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Waits (bounded) until a TCP listener is up, without connecting to it (iperf3 -1 serves one connection only). */
async function listening(address: string, port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!execFileSync('ss', ['-Hltn', `src ${address}:${port}`], { encoding: 'utf8' }).trim()) {
    if (Date.now() > deadline) throw new Error(`nothing listens on ${address}:${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A UDP server in the lab host's namespace, and its client on the protected host (this namespace). */
async function withPeer(lab: NetnsLab, host: LabHost, serverArgs: string[], clientArgs: string[], maxSeconds: number, command: string, frames: number): Promise<TrafficRun> {
  const server = lab.spawn(host, [process.execPath, PEERS, ...serverArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await ready(server);
    const { stdout } = await execFileAsync(process.execPath, [PEERS, ...clientArgs], { timeout: Math.ceil(maxSeconds) * 1000, killSignal: 'SIGKILL' });
    return { command, frames, summary: lastLine(stdout) };
  } finally {
    server.kill('SIGKILL');
  }
}

function ready(server: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('a UDP peer did not start within 10 s')), 10_000);
    server.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    server.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`a UDP peer exited with ${code} before it was ready`));
    });
  });
}
