/**
 * What a lab host really sent, from a packet capture taken in its own namespace (dumpcap), read
 * back with tshark: the ground truth the sensor's counters are compared with.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import type { LabHost, NetnsLab } from './netns';

const execFileAsync = promisify(execFile);

export interface CapturedPacket {
  frameLength: number;
  protocol: 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'other';
  tcpFlags: number;
  dstPort: number;
  dst: string;
}

export class Capture {
  private stderr = '';

  private constructor(private readonly child: ChildProcess, private readonly file: string) {
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  /** Starts capturing what `host` sends from `srcAddress`; resolves once dumpcap is listening. */
  static async start(lab: NetnsLab, host: LabHost, srcAddress: string): Promise<Capture> {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-cap-')), 'out.pcapng');
    const child = lab.spawn(host, ['dumpcap', '-q', '-B', '64', '-i', 'eth0', '-f', `(ip or ip6) and src host ${srcAddress}`, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`dumpcap did not start: ${err}`)), 15_000);
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('Capturing on')) {
          clearTimeout(timer);
          // dumpcap announces itself a moment before its filter is installed on the socket.
          setTimeout(resolve, 500);
        }
      });
      child.on('exit', (code) => reject(new Error(`dumpcap exited ${code}: ${err}`)));
    });
    return new Capture(child, file);
  }

  async stop(): Promise<CapturedPacket[]> {
    await new Promise((resolve) => setTimeout(resolve, 200));
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGINT');
    });
    const { stdout } = await execFileAsync('tshark', ['-r', this.file, '-T', 'fields', '-E', 'separator=,',
      '-e', 'frame.len', '-e', 'ip.proto', '-e', 'ipv6.nxt', '-e', 'tcp.flags', '-e', 'tcp.dstport', '-e', 'udp.dstport', '-e', 'ip.dst', '-e', 'ipv6.dst'],
    { maxBuffer: 256 << 20 });
    fs.rmSync(path.dirname(this.file), { recursive: true, force: true });
    // A capture that lost packets is no ground truth; say so rather than report a false mismatch.
    const dropped = /received\/dropped on interface '[^']+': \d+\/(\d+)/.exec(this.stderr);
    if (dropped && Number(dropped[1]) > 0) throw new Error(`the capture dropped ${dropped[1]} packets: ${this.stderr.trim()}`);
    return stdout.split('\n').filter(Boolean).map((line) => {
      const [len, proto4, proto6, flags, tport, uport, dst4, dst6] = line.split(',');
      const proto = Number(proto4 || proto6);
      return {
        frameLength: Number(len),
        protocol: proto === 6 ? 'tcp' : proto === 17 ? 'udp' : proto === 1 ? 'icmp' : proto === 58 ? 'icmpv6' : 'other',
        tcpFlags: flags ? Number(flags) : 0,
        dstPort: Number(tport || uport || 0),
        dst: dst4 || dst6,
      };
    });
  }
}
