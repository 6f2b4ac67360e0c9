/** docker-compose.yml, as Debian's docker-compose reads it (there is no Docker engine to run it here). */
import { execFileSync } from 'node:child_process';
import { parse } from 'yaml';

interface Service {
  command: string[];
  network_mode?: string;
  networks?: Record<string, unknown>;
  cap_add?: string[];
  cap_drop?: string[];
  user?: string;
  environment?: Record<string, string>;
}

function config(env: Record<string, string>): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync('docker-compose', ['config'], { encoding: 'utf8', env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    return { status: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { status: e.status, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('docker-compose.yml', () => {
  test('is valid, and only the sensor is privileged', () => {
    const result = config({ XDP_IDS_IFACE: 'eth0' });
    expect(result.stderr).toBe('');
    const services = parse(result.stdout).services as Record<string, Service>;
    expect(Object.keys(services).sort()).toEqual(['alerter', 'detector', 'redis', 'sensor']);
    expect(services.sensor).toMatchObject({ network_mode: 'host', cap_drop: ['ALL'] });
    expect(services.sensor.cap_add!.sort()).toEqual(['BPF', 'NET_ADMIN', 'PERFMON']);
    expect(services.sensor.command).toEqual(['sensor', '--iface', 'eth0', '--keep-attached']);
    for (const name of ['detector', 'alerter']) {
      expect(services[name].cap_add).toBeUndefined();
      expect(services[name].cap_drop).toEqual(['ALL']);
      expect(services[name].network_mode).toBeUndefined();
      expect(services[name].environment!.XDP_IDS_REDIS_URL).toBe('redis://redis:6379');
    }
    expect(services.sensor.environment!.XDP_IDS_REDIS_URL).toBe('redis://127.0.0.1:6379');
  });

  test('names the missing interface instead of starting a sensor on nothing', () => {
    const result = config({ XDP_IDS_IFACE: '' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/set XDP_IDS_IFACE to the interface to protect/);
  });
});
