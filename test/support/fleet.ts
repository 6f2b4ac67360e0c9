/**
 * A fleet of xdp-ids processes on one Redis deployment, all real and started by the test: three
 * sites (a network namespace lab each, its monitored veth watched by an `xdp-ids sensor`
 * process), two `xdp-ids detector` and two `xdp-ids alerter` processes, every one connected as
 * its ACL role, and the webhook receiver the alerters deliver to. Scanners are namespaces plugged
 * into all three sites at once with one address, so that every sensor sees the same attacker.
 * Parts are killed with SIGKILL and restarted by the tests; their logs go to files that a failing
 * test names.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectRedis, freePort, type RedisClient } from '../../common/redis';
import type { Role } from '../../common/redis-roles';
import { readFleetStatus, type FleetStatus } from '../../common/fleet-status';
import { NetnsLab } from '../../lab/netns';
import { PIN_ROOT, XdpIdsProgram, type BlockEntry } from '../../sensor/kernel/program';
import { startTestWebhookReceiver, type TestWebhookReceiver } from './webhook-receiver';
import { until } from './until';

const run = promisify(execFile);
const CLI = path.resolve(__dirname, '../../dist/bin/xdp-ids.js');
const WEBHOOK_SECRET = 'fleet-webhook-secret-0123456789';
export const SITES = 3;

/** One xdp-ids process. */
export class Part {
  readonly startedMs = Date.now();

  constructor(readonly name: string, readonly child: ChildProcess, readonly logFile: string) {}

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }

  /** The end of its log, for a failing test's message. */
  tail(lines = 20): string {
    return `${this.name} (${this.logFile}):\n${fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n')}`;
  }
}

/** A namespace plugged into every site with one address. */
export interface Scanner {
  netns: string;
  address: string;
  /** Runs a command in the scanner's namespace (SIGKILL after timeoutMs); its stdout. */
  run(argv: string[], timeoutMs: number): Promise<string>;
}

export interface FleetOptions {
  /** Prefix of every interface and namespace: at most 5 letters. */
  name: string;
  /** Sites use 198.18.<subnet + i>.0/24; scanners 198.18.<subnet + SITES>.x. */
  subnet: number;
  /** Each role's URL (common/redis-roles.ts). */
  urls: Record<Role, string>;
  /** An administrator's URL: what the test reads. */
  adminUrl: string;
}

export class Fleet {
  readonly sites: NetnsLab[];
  readonly sensors: (Part | undefined)[] = [];
  readonly detectors: Part[] = [];
  readonly alerters: Part[] = [];
  /** Other processes started with spawn (the control API). */
  private readonly others: Part[] = [];
  readonly redis: RedisClient;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-fleet-'));
  hook!: TestWebhookReceiver;
  private readonly scanners: string[] = [];
  private readonly metricsPorts = new Map<number, number>();
  private readonly pinned = new Map<number, XdpIdsProgram>();
  private started = 0;

  constructor(readonly opts: FleetOptions) {
    this.sites = Array.from({ length: SITES }, (_, i) => new NetnsLab(`${opts.name}${i}`, opts.subnet + i));
    this.redis = connectRedis(opts.adminUrl).on('error', () => undefined);
    // A test run that ends abruptly leaves no part behind.
    process.once('exit', this.killAll);
  }

  private readonly killAll = (): void => {
    for (const part of this.parts()) if (part.running) part.child.kill('SIGKILL');
  };

  private parts(): Part[] {
    return [...this.sensors, ...this.detectors, ...this.alerters, ...this.others].filter((p): p is Part => p !== undefined);
  }

  sensorId(site: number): string {
    return `${this.opts.name}-s${site}`;
  }

  /** Every site, sensor, detector and alerter, ready: each sensor synced, every partition consumed. */
  async start(): Promise<this> {
    // A crashed earlier run's scanners, and its pinned maps with their blocks.
    for (const netns of execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0])) {
      if (netns.startsWith(`${this.opts.name}-a`)) execFileSync('ip', ['netns', 'del', netns]);
    }
    for (const site of this.sites) {
      site.create();
      fs.rmSync(path.join(PIN_ROOT, site.iface), { recursive: true, force: true });
    }
    this.hook = await startTestWebhookReceiver(WEBHOOK_SECRET);
    fs.writeFileSync(path.join(this.dir, 'alerts.yaml'), `
defaults: { group_wait: 200ms, group_interval: 1s }
delivery: { backoff: 200ms }
receivers:
  - name: soc
    webhook: { url: '${this.hook.url}', allow_http: true, secret_env: FLEET_WEBHOOK_SECRET, timeout: 60s }
routes:
  - receivers: [soc]
`);
    for (let i = 0; i < 2; i++) {
      this.startDetector();
      this.startAlerter();
    }
    await Promise.all(this.sites.map((_, i) => this.startSensor(i)));
    await until('the fleet to report healthy', async () => {
      const status = await this.status();
      return status.problems.length === 0 && status.detectors.length === 2 && status.alerters.length === 2 && status.sensors.filter((s) => s.health === 'alive').length === SITES;
    }, 60_000);
    // Opening a site's pinned maps loads the program once (seconds on a busy machine): not while a test times a block.
    this.sites.forEach((_, i) => this.kernelBlocks(i));
    return this;
  }

  /** Another `xdp-ids <args>` process as `role` (the control API), stopped with the fleet. */
  spawn(name: string, role: Role, args: string[], env: Record<string, string> = {}): Part {
    const part = this.launch(name, role, args, env);
    this.others.push(part);
    return part;
  }

  private launch(name: string, role: Role, args: string[], env: Record<string, string> = {}): Part {
    const logFile = path.join(this.dir, `${name}-${this.started++}.log`);
    const log = fs.openSync(logFile, 'a');
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'ignore', log],
      env: { ...process.env, XDP_IDS_REDIS_URL: this.opts.urls[role], XDP_IDS_REDIS_URL_FILE: '', FLEET_WEBHOOK_SECRET: WEBHOOK_SECRET, XDP_IDS_LOG_LEVEL: 'info', ...env },
    });
    fs.closeSync(log);
    return new Part(name, child, logFile);
  }

  startDetector(): Part {
    const part = this.launch(`detector${this.detectors.length}`, 'detector', ['detector', '--no-model', '--rules', 'rules', '--metrics-listen', 'off']);
    this.detectors.push(part);
    return part;
  }

  startAlerter(): Part {
    const part = this.launch(`alerter${this.alerters.length}`, 'alerter',
      ['alerter', '--config', path.join(this.dir, 'alerts.yaml'), '--takeover-ms', '3000', '--metrics-listen', 'off']);
    this.alerters.push(part);
    return part;
  }

  /** Starts (or restarts) the sensor of a site; resolves once it is running, not once it is ready. */
  async startSensor(site: number): Promise<Part> {
    const port = this.metricsPorts.get(site) ?? await freePort();
    this.metricsPorts.set(site, port);
    const part = this.launch(`sensor${site}`, 'sensor',
      ['sensor', '--iface', this.sites[site].iface, '--sensor-id', this.sensorId(site), '--metrics-listen', `127.0.0.1:${port}`]);
    this.sensors[site] = part;
    return part;
  }

  /** A sensor's Prometheus metric (summed over labels). */
  async sensorMetric(site: number, name: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPorts.get(site)}/metrics`)).text();
    return text.split('\n').filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  }

  status(): Promise<FleetStatus> {
    return readFleetStatus(this.redis);
  }

  /** What a site's kernel holds now, read from the sensor's pinned maps (the kernel's truth, not what a sensor says; a restarted sensor reuses them). */
  kernelBlocks(site: number): BlockEntry[] {
    let program = this.pinned.get(site);
    if (!program) this.pinned.set(site, program = XdpIdsProgram.open({ pinName: this.sites[site].iface }));
    return program.listBlocks();
  }

  /** The sites whose kernel blocks `address`. */
  blockedAt(address: string): number[] {
    return this.sites.flatMap((_, i) => (this.kernelBlocks(i).some((b) => b.prefix === `${address}/32`) ? [i] : []));
  }

  /** A scanner plugged into every site, at 198.18.<subnet + SITES>.<octet>. */
  scanner(octet: number): Scanner {
    const netns = `${this.opts.name}-a${octet}`;
    const address = `198.18.${this.opts.subnet + SITES}.${octet}`;
    execFileSync('ip', ['netns', 'add', netns]);
    this.scanners.push(netns);
    execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
    this.sites.forEach((site, i) => site.attach(netns, `leg${i}`, address));
    return {
      netns, address,
      run: async (argv, timeoutMs) => (await run('ip', ['netns', 'exec', netns, ...argv], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 })).stdout,
    };
  }

  /** nmap's SYN scan of `ports` on every site's protected host (bounded: one try per port, 20 s per host). */
  synScan(scanner: Scanner, ports: string, extra: string[] = []): Promise<string> {
    return scanner.run(['nmap', '-sS', '-Pn', '-n', '--max-retries', '0', '--host-timeout', '20s', '-p', ports, ...extra, ...this.sites.map((s) => s.hostV4)], 60_000);
  }

  /** Every webhook message about an incident of `address` that a receiver accepted, with its phase (opened, repeat, resolved). */
  messagesAbout(address: string): Array<{ id: string; phase: string; attack: string; rules: string[] }> {
    return this.hook.requests.filter((r) => r.accepted).flatMap((r) => ((r.body as { alerts: any[] }).alerts ?? [])
      .filter((a) => a.xdp_ids?.attack?.incidents?.some((i: { key: string }) => i.key === address))
      .map((a) => ({ id: r.id, phase: a.xdp_ids.phase, attack: a.xdp_ids.attack.id, rules: a.xdp_ids.attack.incidents.map((i: { ruleId: string }) => i.ruleId) })));
  }

  /** Logs of every part, for a failing test. */
  tails(): string {
    return this.parts().map((p) => p.tail()).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.parts().map((p) => p.kill('SIGTERM')));
    process.removeListener('exit', this.killAll);
    for (const program of this.pinned.values()) program.close();
    for (const netns of this.scanners) {
      try { execFileSync('ip', ['netns', 'del', netns]); } catch { /* gone */ }
    }
    for (const site of this.sites) {
      try { XdpIdsProgram.detachFrom(Number(fs.readFileSync(`/sys/class/net/${site.iface}/ifindex`, 'utf8'))); } catch { /* gone */ }
      site.destroy();
      fs.rmSync(path.join(PIN_ROOT, site.iface), { recursive: true, force: true });
    }
    await this.hook?.stop();
    this.redis.disconnect();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
