/**
 * Redis over TLS (rediss://) on a real redis-server with tls-port and throwaway certificates made
 * by openssl: the CA file is what the server is checked against, and its host name too; a wrong
 * CA, a certificate for another host and a missing client certificate each fail with an error
 * that says what to fix.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { registerBlockingCommands } from '../../blocking/cli';
import { connectRedis, describeRedisError } from '../../common/redis';
import { resolveRedis, type RedisCliOptions } from '../../common/redis-config';
import { testRedis, type TestRedis } from '../support/redis';
import { testPki, type TestPki } from '../support/tls';

describe('rediss:// on a real redis-server', () => {
  let dir: string;
  let pki: TestPki;
  let client: { cert: string; key: string };
  /** Wants client certificates. */
  let server: TestRedis;
  /** Its certificate names another host. */
  let misnamed: TestRedis;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-tls-'));
    pki = testPki(dir);
    client = pki.issue('client', 'DNS:xdp-ids-detector');
    server = await testRedis({ tls: { ...pki.issue('server', 'IP:127.0.0.1,DNS:localhost'), ca: pki.ca, authClients: 'yes' } });
    misnamed = await testRedis({ tls: { ...pki.issue('elsewhere', 'DNS:redis.test'), ca: pki.ca, authClients: 'no' } });
  });

  afterAll(async () => {
    await server?.stop();
    await misnamed?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** PONG, or what an operator is told when the connection fails. */
  async function ping(env: NodeJS.ProcessEnv, opts: RedisCliOptions = {}): Promise<string> {
    const connection = resolveRedis(opts, env)!.connection;
    const redis = connectRedis(connection, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    let failure: Error | undefined;
    redis.on('error', (err: Error) => { failure ??= err; });
    try {
      return await redis.ping();
    } catch (err) {
      return describeRedisError(failure ?? err as Error, connection);
    } finally {
      redis.disconnect();
    }
  }

  const withClientCert = (url: string): NodeJS.ProcessEnv => ({ XDP_IDS_REDIS_URL: url, XDP_IDS_REDIS_CERT: client.cert, XDP_IDS_REDIS_KEY: client.key });

  test('with the CA that signed the server and a client certificate, it connects', async () => {
    expect(server.url).toMatch(/^rediss:\/\//);
    expect(await ping(withClientCert(server.url), { redisCa: pki.ca })).toBe('PONG');
    expect(await ping({ ...withClientCert(server.url), XDP_IDS_REDIS_CA: pki.ca })).toBe('PONG');
  });

  test('a server certificate from another CA is refused, naming the CA file to check', async () => {
    expect(await ping(withClientCert(server.url), { redisCa: pki.otherCa })).toMatch(
      /^cannot trust the TLS certificate of Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+: .*\([A-Z_]+\); is it signed by the CA in .*other-ca\.pem, for this host name\?$/);
    expect(await ping(withClientCert(server.url))).toMatch(/^cannot trust the TLS certificate .*; give the CA that signed it with --redis-ca FILE or XDP_IDS_REDIS_CA$/);
  });

  test('a certificate for another host name is refused: the host name is verified', async () => {
    expect(await ping({ XDP_IDS_REDIS_URL: misnamed.url }, { redisCa: pki.ca })).toMatch(/cannot trust the TLS certificate .*IP: 127\.0\.0\.1 is not in the cert's list: .*\(ERR_TLS_CERT_ALTNAME_INVALID\)/);
  });

  test('a server that wants client certificates refuses a client without one', async () => {
    expect(await ping({ XDP_IDS_REDIS_URL: server.url }, { redisCa: pki.ca })).toMatch(/^cannot reach Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+: /);
  });

  test('the block CLI reports a wrong CA the same way and exits', async () => {
    const program = new Command('xdp-ids').exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    registerBlockingCommands(program);
    const saved = { ...process.env };
    Object.assign(process.env, withClientCert(server.url), { XDP_IDS_REDIS_CA: pki.otherCa });
    try {
      await expect(program.parseAsync(['block', 'list'], { from: 'user' })).rejects.toThrow(/^cannot trust the TLS certificate of Redis at rediss:\/\/:\*\*\*@/);
    } finally {
      process.env = saved;
    }
  });
});
