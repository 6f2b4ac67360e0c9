/**
 * A throwaway lab of network namespaces on one L2 segment, for the demo, tests and benchmarks.
 * The protected host is the root namespace: its veth `<name>` (198.18.0.1, fd00:18::1) is the
 * monitored interface, and lab hosts reach it through a bridge in the `<name>-lan` namespace.
 * No namespace gets a default route, and the protected host answers from its lab addresses only
 * through a routing table whose default is a blackhole, so replies to spoofed sources (hping3
 * --rand-source) can never leave the machine.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Lab subnets: 198.18.<subnet>.0/24 and fd00:18:<subnet>::/64 (labs that run at once need different ones). */
export function labPrefixes(subnet: number): { v4: string; v6: string } {
  if (!Number.isInteger(subnet) || subnet < 0 || subnet > 255) throw new RangeError(`lab subnet must be 0-255: ${subnet}`);
  return { v4: `198.18.${subnet}`, v6: `fd00:18:${subnet.toString(16)}::` };
}

export interface LabHost {
  name: string;
  netns: string;
  v4: string;
  v6: string;
}

function ip(args: string[], netns?: string): string {
  const argv = netns ? ['netns', 'exec', netns, 'ip', ...args] : args;
  return execFileSync('ip', argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export class NetnsLab {
  readonly iface: string;
  /** The first three octets of the lab's IPv4 /24, e.g. `198.18.0`. */
  readonly v4Prefix: string;
  readonly v6Prefix: string;
  readonly hostV4: string;
  readonly hostV6: string;
  private readonly lan: string;
  private readonly hosts: LabHost[] = [];
  private attached = 0;
  private readonly children = new Set<ChildProcess>();

  /** `name` becomes the monitored interface's name: at most 10 characters. */
  constructor(readonly name: string, subnet = 0) {
    if (!/^[a-z][a-z0-9]{0,9}$/.test(name)) throw new RangeError(`lab name must be 1-10 lower-case letters/digits: ${name}`);
    this.iface = name;
    ({ v4: this.v4Prefix, v6: this.v6Prefix } = labPrefixes(subnet));
    this.hostV4 = `${this.v4Prefix}.1`;
    this.hostV6 = `${this.v6Prefix}1`;
    this.lan = `${name}-lan`;
  }

  /** Creates the bridge namespace and the monitored interface; removes leftovers of a crashed run first. */
  create(): this {
    this.destroy();
    ip(['netns', 'add', this.lan]);
    ip(['link', 'add', 'br0', 'type', 'bridge'], this.lan);
    ip(['link', 'set', 'br0', 'up'], this.lan);
    ip(['link', 'set', 'lo', 'up'], this.lan);
    ip(['link', 'add', this.iface, 'type', 'veth', 'peer', 'name', `${this.name}-p`, 'netns', this.lan]);
    ip(['link', 'set', `${this.name}-p`, 'master', 'br0', 'up'], this.lan);
    ip(['addr', 'add', `${this.hostV4}/24`, 'dev', this.iface]);
    ip(['-6', 'addr', 'add', `${this.hostV6}/64`, 'dev', this.iface, 'nodad']);
    ip(['link', 'set', this.iface, 'up']);
    const table = this.routingTable();
    for (const [family, addr, lab] of [['-4', this.hostV4, `${this.v4Prefix}.0/24`], ['-6', this.hostV6, `${this.v6Prefix}/64`]]) {
      ip([family, 'route', 'add', lab, 'dev', this.iface, 'table', table]);
      ip([family, 'route', 'add', 'blackhole', 'default', 'table', table]);
      ip([family, 'rule', 'add', 'from', addr, 'table', table]);
    }
    return this;
  }

  /** A routing table number of our own, derived from the name so a crashed run's can be found. */
  private routingTable(): string {
    let h = 0;
    for (const c of this.name) h = (h * 31 + c.charCodeAt(0)) % 50_000;
    return String(10_000 + h);
  }

  /** Adds a host namespace with address .<octet> (and extra IPv4 addresses for many-source traffic). */
  addHost(label: string, octet: number, extraV4: string[] = []): LabHost {
    const index = this.hosts.length;
    const netns = `${this.name}-${label}`;
    const v4 = `${this.v4Prefix}.${octet}`;
    const v6 = `${this.v6Prefix}${octet.toString(16)}`;
    const port = `${this.name}-h${index}`;
    ip(['netns', 'add', netns]);
    ip(['link', 'add', port, 'netns', this.lan, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    ip(['link', 'set', port, 'master', 'br0', 'up'], this.lan);
    ip(['link', 'set', 'lo', 'up'], netns);
    ip(['addr', 'add', `${v4}/24`, 'dev', 'eth0'], netns);
    for (const extra of extraV4) ip(['addr', 'add', `${extra}/24`, 'dev', 'eth0'], netns);
    ip(['-6', 'addr', 'add', `${v6}/64`, 'dev', 'eth0', 'nodad'], netns);
    ip(['link', 'set', 'eth0', 'up'], netns);
    const host = { name: label, netns, v4, v6 };
    this.hosts.push(host);
    return host;
  }

  /**
   * Plugs a namespace made elsewhere into this lab's segment through a new veth `leg` there
   * that holds `address` (a /32 outside the lab's subnets): one host that several monitored
   * interfaces see, like a scanner sweeping several sites. The protected host answers it
   * through this lab's interface only.
   */
  attach(netns: string, leg: string, address: string): void {
    const port = `${this.name}-x${this.attached++}`;
    ip(['link', 'add', port, 'netns', this.lan, 'type', 'veth', 'peer', 'name', leg, 'netns', netns]);
    ip(['link', 'set', port, 'master', 'br0', 'up'], this.lan);
    ip(['addr', 'add', `${address}/32`, 'dev', leg], netns);
    ip(['link', 'set', leg, 'up'], netns);
    ip(['route', 'add', `${this.v4Prefix}.0/24`, 'dev', leg, 'src', address], netns);
    ip(['route', 'add', `${address}/32`, 'dev', this.iface, 'table', this.routingTable()]);
  }

  /** Runs a command inside a host's namespace (killed after timeoutMs); resolves to its stdout. */
  async run(host: LabHost, argv: string[], timeoutMs: number): Promise<string> {
    const { stdout } = await execFileAsync('ip', ['netns', 'exec', host.netns, ...argv], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 });
    return stdout;
  }

  /** Starts a command inside a namespace (or the root one when host is undefined); stopped by destroy(). */
  spawn(host: LabHost | undefined, argv: string[], options: SpawnOptions = {}): ChildProcess {
    const child = host ? spawn('ip', ['netns', 'exec', host.netns, ...argv], { stdio: 'ignore', ...options }) : spawn(argv[0], argv.slice(1), { stdio: 'ignore', ...options });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  /** Removes everything this lab (or a crashed earlier run with the same name) created. */
  destroy(): void {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
    const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n').map((l) => l.split(' ')[0]).filter((n) => n === this.lan || n.startsWith(`${this.name}-`));
    for (const ns of namespaces) {
      try {
        execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).forEach((pid) => {
          try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
        });
        ip(['netns', 'del', ns]);
      } catch { /* removed concurrently */ }
    }
    try { ip(['link', 'del', this.iface]); } catch { /* not there */ }
    const table = this.routingTable();
    for (const [family, addr] of [['-4', this.hostV4], ['-6', this.hostV6]]) {
      try { ip([family, 'rule', 'del', 'from', addr, 'table', table]); } catch { /* not there */ }
      try { ip([family, 'route', 'flush', 'table', table]); } catch { /* not there */ }
    }
    this.hosts.length = 0;
    this.attached = 0;
  }
}
