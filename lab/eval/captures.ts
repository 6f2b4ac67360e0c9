/**
 * The eval's captures: captures.py (scapy) writes each as a pcap into a temporary directory at run
 * time, addressed to the monitored interface's MAC and a case's protected address.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export type CaptureKind = 'dns-amplification' | 'ntp-monlist' | 'memcached' | 'ssdp' | 'syn-spoofed-slow';

export interface Capture {
  kind: CaptureKind;
  file: string;
  /** Frames in the file (IP fragments each count), datagrams (or SYNs), distinct sources. */
  frames: number;
  datagrams: number;
  sources: number;
  bytes: number;
}

export interface CaptureRequest {
  kind: CaptureKind;
  dir: string;
  dstIp: string;
  dstMac: string;
  srcMac: string;
  /** CIDR the reflector or spoofed sources are drawn from. */
  sources: string;
  count: number;
  dstPort?: number;
  seed: number;
}

/** The script sits beside this file in the source tree, also when this runs from dist/. */
const SCRIPT = path.resolve(__dirname, ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..', '..', '..'] : ['..', '..']), 'lab', 'eval', 'captures.py');

/** Debian's python3 has python3-scapy; a python3 earlier on PATH (pyenv, venv) may not. */
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export async function writeCapture(req: CaptureRequest): Promise<Capture> {
  const file = path.join(req.dir, `${req.kind}-${req.seed}.pcap`);
  const { stdout } = await execFileAsync(PYTHON, [SCRIPT, req.kind, '--out', file, '--dst-ip', req.dstIp, '--dst-mac', req.dstMac,
    '--src-mac', req.srcMac, '--sources', req.sources, '--count', String(req.count), '--seed', String(req.seed),
    ...(req.dstPort ? ['--dst-port', String(req.dstPort)] : [])], { timeout: 120_000 });
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Omit<Capture, 'file'>;
  return { ...result, file };
}
