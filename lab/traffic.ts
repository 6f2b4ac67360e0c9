/**
 * Real attack and benign traffic from Debian's tools, each run bounded in packets and seconds,
 * sent only to the lab's protected host.
 */
import type { LabHost, NetnsLab } from './netns';

/** `-sO` scans IP protocol numbers: its `ports` are protocols (0-255). */
export type NmapScan = '-sS' | '-sF' | '-sX' | '-sN' | '-sU' | '-sT' | '-sA' | '-sW' | '-sO';

export interface NmapOptions {
  ports?: string;
  timing?: 'T2' | 'T3' | 'T4' | 'T5';
  maxSeconds?: number;
  ipv6?: boolean;
  /** Split every probe into 8-byte IP fragments (-f). */
  fragment?: boolean;
  /** Forged sources that send the same probes alongside the scanner (-D decoy,...,ME). */
  decoys?: string[];
  /** Pause between probes (--scan-delay): a slow scan. */
  scanDelayMs?: number;
  /** Probe the ports in ascending order (-r) rather than nmap's random one. */
  inOrder?: boolean;
}

/** nmap's command line for a scan: one probe per port (no retries), bounded by --host-timeout. */
export function nmapArgv(scan: NmapScan, target: string, opts: NmapOptions = {}): string[] {
  return ['nmap', '-n', '-Pn', scan, '-p', opts.ports ?? '1-1000', '--max-retries', '0', `-${opts.timing ?? 'T4'}`,
    '--host-timeout', `${opts.maxSeconds ?? 20}s`, ...(opts.ipv6 ? ['-6'] : []), ...(opts.fragment ? ['-f'] : []),
    ...(opts.decoys?.length ? ['-D', [...opts.decoys, 'ME'].join(',')] : []),
    ...(opts.scanDelayMs ? ['--scan-delay', `${opts.scanDelayMs}ms`] : []), ...(opts.inOrder ? ['-r'] : []), target];
}

/** One probe per port (no retries); returns nmap's output. */
export function nmap(lab: NetnsLab, from: LabHost, scan: NmapScan, target: string, opts: NmapOptions = {}): Promise<string> {
  return lab.run(from, nmapArgv(scan, target, opts), ((opts.maxSeconds ?? 20) + 10) * 1000);
}

export type HpingMode = 'syn' | 'udp' | 'icmp' | 'fin' | 'xmas' | 'null' | 'ack' | 'rst' | 'syn-ack';

const HPING_FLAGS: Record<HpingMode, string[]> = {
  syn: ['-S'], udp: ['--udp'], icmp: ['--icmp'], fin: ['-F'], xmas: ['-F', '-P', '-U'], null: [], ack: ['-A'], rst: ['-R'], 'syn-ack': ['-S', '-A'],
};

export interface HpingOptions {
  count: number;
  /** Microseconds between packets. */
  intervalUs?: number;
  dport?: number;
  /** Increment the destination port per packet (hping3 ++port). */
  sweepPorts?: boolean;
  randSource?: boolean;
  /** Forge this one source address (-a). */
  spoofSource?: string;
  /** Send from this source port only (-s port -k), e.g. 53 for DNS-looking UDP. */
  sport?: number;
  /** Payload bytes (-d). */
  dataBytes?: number;
  /** Split every packet into IP fragments (-f: 16 payload bytes each). */
  fragment?: boolean;
}

/** hping3's command line: exactly `count` packets (hping3 -c), spaced by intervalUs. Never --flood, which ignores -c. */
export function hping3Argv(mode: HpingMode, target: string, opts: HpingOptions): string[] {
  const port = opts.dport ?? 80;
  return ['hping3', '-q', ...HPING_FLAGS[mode], '-c', String(opts.count), '-i', `u${opts.intervalUs ?? 1000}`,
    ...(mode === 'icmp' ? [] : ['-p', opts.sweepPorts ? `++${port}` : String(port)]),
    ...(opts.randSource ? ['--rand-source'] : []), ...(opts.spoofSource ? ['-a', opts.spoofSource] : []),
    ...(opts.sport !== undefined ? ['-s', String(opts.sport), '-k'] : []), ...(opts.dataBytes ? ['-d', String(opts.dataBytes)] : []),
    ...(opts.fragment ? ['-f'] : []), target];
}

/** Sends exactly `count` packets (hping3 -c), spaced by intervalUs; returns hping3's summary. */
export function hping3(lab: NetnsLab, from: LabHost, mode: HpingMode, target: string, opts: HpingOptions): Promise<string> {
  const argv = hping3Argv(mode, target, opts);
  const seconds = Math.ceil((opts.count * (opts.intervalUs ?? 1000)) / 1e6) + 10;
  return lab.run(from, argv, seconds * 1000).catch((err: unknown) => {
    // hping3 exits 1 when no reply came back, which is normal for floods and closed ports.
    const e = err as { code?: number; stdout?: string; stderr?: string };
    if (e.code === 1) return `${e.stdout ?? ''}${e.stderr ?? ''}`;
    throw err;
  });
}

/** `requests` sequential HTTP GETs with curl; prints one status code per line. */
export function curl(lab: NetnsLab, from: LabHost, url: string, requests: number): Promise<string> {
  const argv = ['sh', '-c', `for i in $(seq ${requests}); do curl -s -o /dev/null -m 2 -w '%{http_code}\\n' ${url}; done`];
  return lab.run(from, argv, requests * 2000 + 5000);
}

export interface MasscanOptions {
  ports: string;
  /** Packets a second (--rate). */
  rate: number;
  /** The MAC address of the target's interface: masscan has its own stack and no ARP for an on-link target without a router. */
  targetMac: string;
  /** Stopped after this long at the latest (it sends each port once: ports / rate plus its wait is enough). */
  maxSeconds: number;
}

const MASSCAN_WAIT_S = 1;

/** masscan's command line from a lab host's eth0: one SYN per port at `rate`, then a one-second wait for answers. */
export function masscanArgv(from: LabHost, target: string, opts: MasscanOptions): string[] {
  return ['masscan', target, '-p', opts.ports, '--rate', String(opts.rate), '--wait', String(MASSCAN_WAIT_S),
    '--adapter', 'eth0', '--adapter-ip', from.v4, '--router-mac', opts.targetMac];
}

/**
 * masscan sends each port once at `rate`, but may then hang for many seconds on exit (its receive
 * thread waits for packets that a blocked scanner never gets): it is stopped once it reports
 * everything sent and its wait is over, and in any case after maxSeconds.
 */
export function masscan(lab: NetnsLab, from: LabHost, target: string, opts: MasscanOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = lab.spawn(from, masscanArgv(from, target, opts), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let status = '';
    let sent = false;
    const limit = setTimeout(() => child.kill('SIGKILL'), opts.maxSeconds * 1000);
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      status = (status + d.toString()).slice(-2000);
      if (!sent && status.includes('100.00% done')) {
        sent = true;
        setTimeout(() => child.kill('SIGKILL'), MASSCAN_WAIT_S * 1000 + 500);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(limit);
      if (code === 0 || sent) resolve(stdout);
      else reject(new Error(`masscan ended with ${code ?? signal} before sending everything: ${status.slice(-300).replace(/\s+/g, ' ')}`));
    });
  });
}

/** Plays a pcap out of a lab host's eth0 at `pps` frames a second (every frame once); returns tcpreplay's summary. */
export function tcpreplay(lab: NetnsLab, from: LabHost, pcap: string, opts: { pps: number; frames: number }): Promise<string> {
  return lab.run(from, ['tcpreplay', '-q', '-i', 'eth0', `--pps=${opts.pps}`, pcap], (Math.ceil(opts.frames / opts.pps) + 15) * 1000);
}

/** A wrk load test of `seconds` with `connections` keep-alive connections. */
export function wrk(lab: NetnsLab, from: LabHost, url: string, opts: { threads: number; connections: number; seconds: number }): Promise<string> {
  return lab.run(from, ['wrk', '-t', String(opts.threads), '-c', String(opts.connections), '-d', `${opts.seconds}s`, url], (opts.seconds + 15) * 1000);
}

/** An iperf3 transfer of `seconds` to a server on `target`, TCP or UDP at `bitrate` (e.g. 50M). */
export function iperf3(lab: NetnsLab, from: LabHost, target: string, opts: { port: number; seconds: number; udp?: boolean; bitrate: string }): Promise<string> {
  const argv = ['iperf3', '-c', target, '-p', String(opts.port), '-t', String(opts.seconds), '-b', opts.bitrate, ...(opts.udp ? ['-u', '-l', '1400'] : [])];
  return lab.run(from, argv, (opts.seconds + 15) * 1000);
}
