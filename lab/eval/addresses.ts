/**
 * Who is who in the eval's lab (198.18.40.0/24, fd00:18:28::/64): every case gets its own attacker
 * host and its own protected address, so that incidents, blocks, limits, counts and messages are
 * told apart by address even while one case's response is still settling as the next one runs.
 *
 *   .1         the protected host's first address (NetnsLab)
 *   .2 …       one protected address per case (on the monitored interface, in the root namespace)
 *   .100 …     one attacker (or benign peer) host per case, each in its own namespace
 *   … .254     forged addresses no host has: decoys and hping3 -a sources, taken from the top
 *   198.19.0.0/16   reflector and spoofed sources of the captures (never on any link)
 */
import { execFileSync } from 'node:child_process';
import ipaddr from 'ipaddr.js';
import type { NetnsLab } from '../netns';
import type { EvalCase } from './cases';

export interface CaseAddresses {
  /** The protected address this case's traffic goes to. */
  target: string;
  /** The last octet of the case's lab host. */
  hostOctet: number;
  /** Forged addresses of the lab range (decoys, hping3 -a). */
  forged: string[];
  /** Where the case's capture draws its reflector or spoofed sources from. */
  capturePrefix?: string;
}

const FIRST_TARGET = 2;
const FIRST_HOST = 100;
const CAPTURE_RANGE = '198.19';

/** Reflections use at most a few hundred reflectors; a spoofed SYN capture one source per SYN. */
function capturePrefixLength(c: EvalCase): number {
  const sources = c.traffic.tool === 'replay' && c.traffic.capture === 'syn-spoofed-slow' ? c.traffic.count : 1000;
  return Math.min(20, 32 - Math.ceil(Math.log2(sources + 2)));
}

export function planAddresses(lab: NetnsLab, cases: EvalCase[]): CaseAddresses[] {
  let nextForged = 254;
  let nextCapture = 0;
  const plan = cases.map((c, i) => {
    const forgedCount = c.traffic.tool === 'nmap' ? c.traffic.decoys ?? 0 : c.traffic.tool === 'hping3' && c.traffic.spoofSource ? 1 : 0;
    const forged = Array.from({ length: forgedCount }, () => `${lab.v4Prefix}.${nextForged--}`);
    let capturePrefix: string | undefined;
    if (c.traffic.tool === 'replay') {
      const length = capturePrefixLength(c);
      const size = 2 ** (32 - length);
      nextCapture = Math.ceil(nextCapture / size) * size;
      capturePrefix = `${CAPTURE_RANGE}.${nextCapture >> 8}.0/${length}`;
      nextCapture += size;
    }
    return { target: `${lab.v4Prefix}.${FIRST_TARGET + i}`, hostOctet: FIRST_HOST + i, forged, capturePrefix };
  });
  if (FIRST_TARGET + cases.length > FIRST_HOST || FIRST_HOST + cases.length > nextForged || nextCapture > 65_536) {
    throw new RangeError(`${cases.length} cases do not fit the lab's address plan`);
  }
  return plan;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Extra addresses of the protected host on the monitored interface. Replies from them (SYN-ACKs
 * and ICMP errors to forged sources) must follow the lab's routing table, whose default is a
 * blackhole, like replies from the lab's first address; without that rule they would take the
 * machine's default route out.
 */
export class ProtectedAddresses {
  private readonly added: string[] = [];
  private readonly table: string;

  constructor(private readonly lab: NetnsLab) {
    const rule = ip(['-4', 'rule', 'show', 'from', lab.hostV4]);
    const table = /lookup (\S+)/.exec(rule)?.[1];
    if (!table) throw new Error(`the lab ${lab.name} has no routing rule for ${lab.hostV4}; create it first`);
    this.table = table;
  }

  add(address: string): void {
    ProtectedAddresses.removeRules([address]);
    ip(['-4', 'rule', 'add', 'from', address, 'lookup', this.table]);
    this.added.push(address);
    ip(['addr', 'add', `${address}/32`, 'dev', this.lab.iface]);
    // The promise the lab makes: nothing sent from here reaches an address outside it.
    try {
      ip(['-4', 'route', 'get', '192.0.2.1', 'from', address]);
    } catch {
      return;
    }
    throw new Error(`a reply from ${address} could leave the lab; refusing to run`);
  }

  /** The interface's addresses go with the lab; the rules are removed here. */
  removeAll(): void {
    ProtectedAddresses.removeRules(this.added.splice(0));
  }

  /** Also for the leftovers of a run that crashed. */
  static removeRules(addresses: string[]): void {
    const wanted = new Set(addresses);
    for (const line of ip(['-4', 'rule', 'show']).split('\n')) {
      const from = /from (\S+) lookup (\S+)/.exec(line);
      if (from && wanted.has(from[1])) {
        try { ip(['-4', 'rule', 'del', 'from', from[1], 'lookup', from[2]]); } catch { /* removed concurrently */ }
      }
    }
  }
}

/** Whether `key` (an address or prefix, as incidents and blocks name them) covers `address`. */
export function covers(key: string, address: string): boolean {
  try {
    const a = ipaddr.parse(address);
    if (!key.includes('/')) return ipaddr.parse(key).toString() === a.toString();
    const [net, bits] = ipaddr.parseCIDR(key);
    return net.kind() === a.kind() && a.match(net, bits);
  } catch {
    return false;
  }
}
