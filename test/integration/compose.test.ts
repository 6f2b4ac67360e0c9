/** docker-compose.yml, as Debian's docker-compose reads it (there is no Docker engine to run it here). */
import { execFileSync } from 'node:child_process';
import { parse } from 'yaml';

interface Service {
  command: string[];
  network_mode?: string;
  networks?: Record<string, unknown>;
  ports?: unknown[];
  cap_add?: string[];
  cap_drop?: string[];
  user?: string;
  environment?: Record<string, string>;
  secrets?: { source: string }[];
  volumes?: string[];
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
      expect(services[name].network_mode).not.toBe('host');
    }
  });

  test('Redis publishes no port and joins no network; it takes its users from the ACL file', () => {
    const compose = parse(config({ XDP_IDS_IFACE: 'eth0' }).stdout) as { services: Record<string, Service>; secrets: Record<string, { file: string }> };
    expect(Object.keys(compose.services).filter((name) => compose.services[name].ports)).toEqual([]);
    const redis = compose.services.redis;
    expect(redis.network_mode).toBe('none');
    expect(redis.networks).toBeUndefined();
    const flag = (name: string): string => redis.command[redis.command.indexOf(name) + 1];
    expect([flag('--port'), flag('--unixsocket'), flag('--aclfile'), flag('--maxmemory-policy')]).toEqual(['0', '/run/xdp-ids/redis.sock', '/run/secrets/redis-acl', 'noeviction']);
    expect(redis.secrets).toEqual([{ source: 'redis-acl' }]);
    expect(compose.secrets['redis-acl'].file).toMatch(/\/secrets\/redis-users\.acl$/);
  });

  test('each service connects as its own role, with its URL in a secret file of its own', () => {
    const compose = parse(config({ XDP_IDS_IFACE: 'eth0' }).stdout) as { services: Record<string, Service>; secrets: Record<string, { file: string }> };
    for (const role of ['sensor', 'detector', 'alerter']) {
      const service = compose.services[role];
      expect(service.secrets).toEqual([{ source: `redis-${role}` }]);
      expect(compose.secrets[`redis-${role}`].file).toMatch(new RegExp(`/secrets/redis-${role}\\.url$`));
      expect(service.environment!.XDP_IDS_REDIS_URL_FILE).toBe(`/run/secrets/redis-${role}`);
      expect(service.environment!.XDP_IDS_REDIS_URL).toBeUndefined();
      expect(service.volumes).toContain('/run/xdp-ids:/run/xdp-ids:rw');
    }
  });

  test('names the missing interface instead of starting a sensor on nothing', () => {
    const result = config({ XDP_IDS_IFACE: '' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/set XDP_IDS_IFACE to the interface to protect/);
  });
});
