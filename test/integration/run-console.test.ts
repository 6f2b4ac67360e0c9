/**
 * `xdp-ids run` for operators' tools: with its private Redis it writes the control role's URL to a
 * file (shown on its screen) through which `xdp-ids status` reaches every part it runs, and its
 * one metrics endpoint serves every part's metrics; the file goes with the Redis when run stops.
 * The built CLI on a veth lab of this test's own.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NetnsLab } from '../../lab/netns';
import { PIN_ROOT } from '../../sensor/kernel/program';
import { freePort } from '../support/free-port';
import { until } from '../support/until';

const CLI = path.resolve(__dirname, '../../dist/bin/xdp-ids.js');
const LAB = 'xiconr';

describe('xdp-ids run and the operator\'s console', () => {
  let lab: NetnsLab;
  let dir: string;
  let run: ChildProcess | undefined;

  beforeAll(() => {
    lab = new NetnsLab(LAB, 171).create();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-run-console-'));
  });

  afterAll(async () => {
    if (run && run.exitCode === null && run.signalCode === null) {
      // A clean stop (after a failed test too), so that run's private redis-server goes with it.
      const exited = new Promise((resolve) => run!.once('exit', resolve));
      run.kill('SIGTERM');
      const timer = setTimeout(() => run?.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    lab?.destroy();
    fs.rmSync(path.join(PIN_ROOT, LAB), { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('status reaches run\'s parts through the control URL file it shows; its metrics endpoint serves every part', async () => {
    const metricsPort = await freePort();
    run = spawn(process.execPath, [CLI, 'run', '--iface', LAB, '--mode', 'generic', '--no-dashboard', '--no-model', '--metrics-listen', `127.0.0.1:${metricsPort}`,
      '--log-file', path.join(dir, 'run.log'), '--mailbox', path.join(dir, 'mbox')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XDP_IDS_REDIS_URL: '', XDP_IDS_REDIS_URL_FILE: '' } });
    let out = '';
    run.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    run.stderr!.on('data', (c: Buffer) => { out += c.toString(); });
    const file = await until('run shows its control URL file', () => /console: XDP_IDS_REDIS_URL_FILE=(\S+) /.exec(out)?.[1], 60_000);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);

    const status = await until('status finds every part of run alive', () => new Promise<{ problems: string[]; sensors: unknown[]; detectors: { state: { partitions: number[] } }[]; alerters: unknown[] } | undefined>((resolve) => {
      execFile(process.execPath, [CLI, 'status', '--json'], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, XDP_IDS_REDIS_URL: '', XDP_IDS_REDIS_URL_FILE: file } }, (err, stdout) => {
        resolve(!err && stdout ? JSON.parse(stdout) : undefined);
      });
    }), 60_000);
    expect(status.problems).toEqual([]);
    expect([status.sensors.length, status.detectors.length, status.alerters.length, status.detectors[0].state.partitions.length]).toEqual([1, 1, 1, 16]);

    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    for (const name of ['xdp_ids_sensor_packets_total', 'xdp_ids_enforcer_kernel_entries', 'xdp_ids_detector_partitions 16', 'xdp_ids_alerter_dead_letters 0', 'xdp_ids_run_process_cpu_seconds_total']) {
      expect(metrics).toContain(name);
    }

    const exited = new Promise((resolve) => run!.once('exit', resolve));
    run.kill('SIGTERM');
    await exited;
    expect(fs.existsSync(file)).toBe(false);
  }, 180_000);
});
