/**
 * Real attack and benign traffic from Debian's tools, each run bounded in packets and seconds,
 * sent only to the lab's protected host.
 */
import type { LabHost, NetnsLab } from './netns';

export type NmapScan = '-sS' | '-sF' | '-sX' | '-sN' | '-sU' | '-sT' | '-sA';

export interface NmapOptions {
  ports?: string;
  timing?: 'T2' | 'T3' | 'T4' | 'T5';
  maxSeconds?: number;
  ipv6?: boolean;
}

/** One probe per port (no retries); returns nmap's output. */
export function nmap(lab: NetnsLab, from: LabHost, scan: NmapScan, target: string, opts: NmapOptions = {}): Promise<string> {
  const maxSeconds = opts.maxSeconds ?? 20;
  const argv = ['nmap', '-n', '-Pn', scan, '-p', opts.ports ?? '1-1000', '--max-retries', '0', `-${opts.timing ?? 'T4'}`,
    '--host-timeout', `${maxSeconds}s`, ...(opts.ipv6 ? ['-6'] : []), target];
  return lab.run(from, argv, (maxSeconds + 10) * 1000);
}

export type HpingMode = 'syn' | 'udp' | 'icmp' | 'fin' | 'xmas' | 'null' | 'ack' | 'rst';

const HPING_FLAGS: Record<HpingMode, string[]> = {
  syn: ['-S'], udp: ['--udp'], icmp: ['--icmp'], fin: ['-F'], xmas: ['-F', '-P', '-U'], null: [], ack: ['-A'], rst: ['-R'],
};

export interface HpingOptions {
  count: number;
  /** Microseconds between packets. */
  intervalUs?: number;
  dport?: number;
  /** Increment the destination port per packet (hping3 ++port). */
  sweepPorts?: boolean;
  randSource?: boolean;
  /** A forged source address (hping3 -a). */
  spoofSource?: string;
}

/** Sends exactly `count` packets (hping3 -c), spaced by intervalUs; returns hping3's summary. */
export function hping3(lab: NetnsLab, from: LabHost, mode: HpingMode, target: string, opts: HpingOptions): Promise<string> {
  const port = opts.dport ?? 80;
  const argv = ['hping3', '-q', ...HPING_FLAGS[mode], '-c', String(opts.count), '-i', `u${opts.intervalUs ?? 1000}`,
    ...(mode === 'icmp' ? [] : ['-p', opts.sweepPorts ? `++${port}` : String(port)]),
    ...(opts.randSource ? ['--rand-source'] : []), ...(opts.spoofSource ? ['-a', opts.spoofSource] : []), target];
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
