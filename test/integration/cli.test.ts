/** The built CLI, as a user runs it: bad arguments get one clear line and exit 2; failures exit 1 (bin/exit-codes.ts). */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const CLI = path.resolve(__dirname, '../../dist/bin/xdp-ids.js');

function run(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

describe('xdp-ids CLI', () => {
  test.each([
    [['sensor', '--iface', 'nosuch0'], /no such network interface: nosuch0/, 1],
    [['sensor', '--iface', 'eth0;reboot'], /not an interface name/, 1],
    [['sensor', '--window-ms', '0'], /--window-ms must be an integer from 1 to 60000/, 2],
    [['sensor', '--mode', 'turbo'], /argument 'turbo' is invalid/, 2],
    [['sensor', '--max-sources', '1e9'], /--max-sources must be an integer/, 2],
    [['detach', '--iface', 'nosuch0'], /no such network interface: nosuch0/, 2],
    [['nonsense'], /unknown command 'nonsense'/, 2],
    [['sensor', '--redis', 'redis://:S3cret@127.0.0.1:1'], /--redis must not carry a password: .*--redis-url-file FILE/, 1],
    [['detector', '--redis', 'redis://xdp-ids-detector:S3cret@10.0.0.5:6379'], /--redis must not carry a password/, 1],
    [['detector', '--redis', 'redis://10.0.0.5:6379'], /not on this host and the URL from --redis has no password: .*--insecure-redis/, 1],
    [['detector'], /no Redis: set XDP_IDS_REDIS_URL_FILE or XDP_IDS_REDIS_URL/, 1],
    [['alerter', '--redis-url-file', '/nonexistent/alerter.url'], /cannot read the Redis URL file \/nonexistent\/alerter\.url/, 1],
    [['run', '--redis-maxmemory', 'lots'], /--redis-maxmemory must be a size such as 256mb/, 2],
    [['run', '--dashboard-port', '70000'], /--dashboard-port must be a port from 0 \(any free one\) to 65535/, 2],
    [['run', '--log-file', '/proc/xdp-ids-test.log'], /cannot write the log file \/proc\/xdp-ids-test\.log: .*\(pass --log-file\)/, 2],
    [['run', '--log-level', 'loud'], /argument 'loud' is invalid/, 2],
    [['redis', 'acl', '--url', 'http://10.0.0.5'], /--url: the Redis URL has the scheme http:; expected redis:\/\/.*redis\+sentinel:\/\/.*redis\+cluster:\/\//, 1],
    [['incidents', 'list', '--severity', 'dire'], /--severity must be one of info, low, medium, high, critical/, 2],
    [['status', '--bogus'], /unknown option '--bogus'/, 2],
    [['sensor', '--metrics-listen', '9478'], /--metrics-listen must be host:port/, 2],
    [['alerts'], /Usage: xdp-ids alerts/, 2],
  ])('%j fails with %s and exit code %d', (args, message, code) => {
    const { status, stderr } = run(...(args as string[]));
    expect(status).toBe(code);
    expect(stderr).toMatch(message as RegExp);
    expect(stderr).not.toContain('S3cret');
  });
});
