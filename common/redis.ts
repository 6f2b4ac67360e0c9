/**
 * Where the service's one shared state lives and how to reach it. Components take a RedisTarget
 * (common/redis-config.ts resolves one from files, the environment and options) and connect with
 * connectRedis. Without a Redis the service starts Debian's redis-server on a private loopback
 * port with its own data directory (append-only, so queued alerts survive a restart), a memory
 * bound, and a random password or ACL users, and stops it on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { formatRedisUrl, parseRedisUrl, redacted, usesTls, withCredentials, type ClusterTopology, type SentinelTopology } from './redis-topology';

/** PEM files for rediss:// (paths, read at each connect, so a renewed certificate is picked up). */
export interface RedisTlsFiles {
  /** The CA that signed the server's certificate; default: the system's trust store. */
  ca?: string;
  /** A client certificate and its key, for servers with `tls-auth-clients yes`. */
  cert?: string;
  key?: string;
}

/** A Redis to connect to: its URL (redis://, rediss:// or unix://, with the role's credentials) and TLS files. */
export interface RedisConnection {
  url: string;
  tls?: RedisTlsFiles;
}

/** What components accept: a URL, or a resolved connection. */
export type RedisTarget = string | RedisConnection;

export interface EmbeddedRedis {
  /** Where to connect; it carries the default user's password, or no credentials when the server has ACL users. */
  url: string;
  dir: string;
  port: number;
  /** The redis-server process (tests kill it the hard way to fail a primary over). */
  pid: number;
  stop(): Promise<void>;
}

export interface EmbeddedTls {
  /** PEM files of the server's certificate and key, and of the CA that clients' certificates must chain to. */
  cert: string;
  key: string;
  ca: string;
  /** Whether clients must present a certificate; default `optional`. */
  authClients?: 'yes' | 'no' | 'optional';
}

export interface EmbeddedRedisOptions {
  /** Data directory (created 0700); default: a new directory under the OS temp dir, removed on stop. */
  dir?: string;
  /** Path of redis-server. */
  binary?: string;
  /** A fixed port and password (to restart a server where it was); default: a free port, a random password. */
  port?: number;
  password?: string;
  /** An ACL file's text (common/redis-roles.ts): its users replace the default user's password. */
  acl?: string;
  /** Serve TLS only (rediss://) on the port. */
  tls?: EmbeddedTls;
  /** Memory bound (`256mb`, `1gb`, bytes); writes beyond it fail (noeviction: BullMQ must not lose jobs). */
  maxmemory?: string;
  /** More redis.conf lines, after the rest: `replicaof ...`, `cluster-enabled yes`... */
  config?: string[];
}

export const DEFAULT_EMBEDDED_MAXMEMORY = '256mb';

/** Redis memory sizes as redis.conf takes them: bytes, or a number with k, kb, m, mb, g or gb. */
export function isMemorySize(text: string): boolean {
  return /^[1-9]\d*(?:[kmg]b?)?$/i.test(text);
}

/** A TCP port on the loopback that nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function waitReady(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`redis-server did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) done();
    };
    const onExit = (code: number | null): void => fail(new Error(`redis-server exited (${code}) before it was ready:\n${output}`));
    const onError = (err: Error): void => fail(new Error(`cannot run redis-server (apt-get install redis-server): ${err.message}`));
    function cleanup(): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    }
    function done(): void {
      cleanup();
      resolve();
    }
    function fail(err: Error): void {
      cleanup();
      reject(err);
    }
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** The redis.conf lines that say who may connect and how: TLS or plain port, ACL users or one password. */
function accessConfig(opts: EmbeddedRedisOptions, dir: string, port: number, password: string): string[] {
  const lines = opts.tls
    ? ['port 0', `tls-port ${port}`, `tls-cert-file ${opts.tls.cert}`, `tls-key-file ${opts.tls.key}`, `tls-ca-cert-file ${opts.tls.ca}`,
      `tls-auth-clients ${opts.tls.authClients ?? 'optional'}`]
    : [`port ${port}`];
  if (opts.acl === undefined) return [...lines, `requirepass ${password}`];
  const aclFile = path.join(dir, 'users.acl');
  fs.writeFileSync(aclFile, opts.acl, { mode: 0o600 });
  return [...lines, `aclfile ${aclFile}`];
}

export async function startEmbeddedRedis(opts: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
  const maxmemory = opts.maxmemory ?? DEFAULT_EMBEDDED_MAXMEMORY;
  if (!isMemorySize(maxmemory)) throw new RangeError(`maxmemory must be a size such as 256mb or 1gb, got ${JSON.stringify(maxmemory)}`);
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-redis-'));
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const password = opts.password ?? randomBytes(18).toString('base64url');
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? await freePort();
    // Its own process group: a Ctrl-C in the terminal reaches the whole foreground group, and Redis
    // must outlive the service's shutdown, which still writes to it; stop() ends it, or exit does.
    const child = spawn(opts.binary ?? 'redis-server', ['-'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    // The config goes through stdin so the password never shows in `ps`.
    child.stdin!.end([
      ...accessConfig(opts, dir, port, password), 'bind 127.0.0.1', 'protected-mode yes', `dir ${dir}`,
      'appendonly yes', 'appendfsync everysec', 'save ""', 'daemonize no', `maxmemory ${maxmemory}`, 'maxmemory-policy noeviction', 'loglevel notice',
      ...(opts.config ?? []),
    ].join('\n') + '\n');
    try {
      await waitReady(child, 10_000);
    } catch (err) {
      child.kill('SIGKILL');
      // Another process may have taken the port between our probe and redis binding it.
      if (attempt < 3 && opts.port === undefined && /Address already in use/.test((err as Error).message)) continue;
      if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    child.stdout!.resume();
    child.stderr!.resume();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const killOnExit = (): void => {
      if (child.exitCode === null) child.kill('SIGTERM');
    };
    process.once('exit', killOnExit);
    const scheme = opts.tls ? 'rediss' : 'redis';
    return {
      url: opts.acl === undefined ? `${scheme}://:${password}@127.0.0.1:${port}` : `${scheme}://127.0.0.1:${port}`,
      dir,
      port,
      pid: child.pid!,
      async stop() {
        process.off('exit', killOnExit);
        killOnExit();
        await exited;
        if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

function urlOf(target: RedisTarget): string {
  return typeof target === 'string' ? target : target.url;
}

/** What every component holds: a connection to one server (standalone or found through Sentinels) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

function tlsOptions(files: RedisTlsFiles): NonNullable<RedisOptions['tls']> {
  const read = (file: string | undefined): Buffer | undefined => (file === undefined ? undefined : fs.readFileSync(file));
  return { ca: read(files.ca), cert: read(files.cert), key: read(files.key) };
}

const DEFAULTS: RedisOptions = {
  maxRetriesPerRequest: null,
  retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
};

/** A Cluster takes the options of its own connections in `redisOptions`, and some of them again (under other names) for itself. */
function clusterOptions(topology: ClusterTopology, options: RedisOptions): ClusterOptions {
  const { retryStrategy, enableOfflineQueue, enableAutoPipelining, ...perNode } = options;
  return {
    redisOptions: { ...perNode, ...(topology.username ? { username: topology.username } : {}), ...(topology.password ? { password: topology.password } : {}) },
    clusterRetryStrategy: retryStrategy,
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    ...(enableAutoPipelining !== undefined ? { enableAutoPipelining } : {}),
    // Slots move when a primary fails over: ask again soon rather than every few seconds.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
  };
}

function sentinelOptions(topology: SentinelTopology, options: RedisOptions): RedisOptions {
  const given = (text: string): string | undefined => text || undefined;
  return {
    sentinels: topology.nodes, name: topology.name, role: 'master',
    username: given(topology.username), password: given(topology.password),
    sentinelUsername: given(topology.sentinelUsername), sentinelPassword: given(topology.sentinelPassword),
    // Hear the Sentinels announce a new primary (+switch-master) instead of finding out from a broken connection.
    failoverDetector: true,
    // connectRedis always gives TLS as options (ioredis also takes the names of presets, which Sentinels cannot use).
    ...(typeof options.tls === 'object' ? { enableTLSForSentinelMode: true, sentinelTLS: options.tls } : {}),
    ...options,
  };
}

/**
 * An ioredis connection that keeps retrying while Redis is down instead of failing commands at
 * once (maxRetriesPerRequest null, which BullMQ workers need); `opts` overrides that. A
 * redis+sentinel:// URL connects to the primary the Sentinels name, and follows it through a
 * failover; a redis+cluster:// URL connects to the cluster.
 */
export function connectRedis(target: RedisTarget, opts: RedisOptions = {}): RedisClient {
  const topology = parseRedisUrl(urlOf(target));
  const tls = typeof target === 'string' || !target.tls ? (usesTls(topology) ? { tls: {} } : {}) : { tls: tlsOptions(target.tls) };
  const options: RedisOptions = { ...DEFAULTS, ...tls, ...opts };
  if (topology.kind === 'cluster') return new Cluster(topology.nodes, clusterOptions(topology, options));
  if (topology.kind === 'sentinel') return new Redis(sentinelOptions(topology, options));
  const url = topology.url.toString();
  // ioredis takes a unix socket as its path (with the credentials as query parameters), not as a unix:// URL.
  return new Redis(url.startsWith('unix://') ? url.slice('unix://'.length) : url, options);
}

/** `url` with a user's credentials, wherever its kind of URL carries them. */
export function urlWithCredentials(url: string, username: string, password: string): string {
  return formatRedisUrl(withCredentials(parseRedisUrl(url), username, password));
}

/** A Redis URL for logs and messages: passwords hidden wherever they are (user info, query), nothing leaked from one that does not parse. */
export function redactUrl(target: RedisTarget): string {
  try {
    return formatRedisUrl(redacted(parseRedisUrl(urlOf(target))));
  } catch {
    return '(a Redis URL that does not parse)';
  }
}

const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_SIGNATURE_FAILURE',
]);

/** An error reaching Redis, said so that an operator knows what to fix. */
export function describeRedisError(err: Error & { code?: string }, target: RedisTarget): string {
  const where = redactUrl(target);
  if (err.code && TLS_VERIFY_CODES.has(err.code)) {
    const ca = typeof target === 'string' ? undefined : target.tls?.ca;
    return `cannot trust the TLS certificate of Redis at ${where}: ${err.message} (${err.code}); `
      + (ca ? `is it signed by the CA in ${ca}, for this host name?` : 'give the CA that signed it with --redis-ca FILE or XDP_IDS_REDIS_CA');
  }
  if (/WRONGPASS|NOAUTH/.test(err.message)) return `Redis at ${where} refused the credentials: ${err.message}`;
  return `cannot reach Redis at ${where}: ${err.message}`;
}
