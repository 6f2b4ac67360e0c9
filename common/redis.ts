/**
 * Where the service's one shared state lives. `--redis URL` / XDP_IDS_REDIS_URL names a Redis;
 * without one the service starts Debian's redis-server on a private loopback port with a random
 * password and its own data directory (append-only, so queued alerts survive a restart), and
 * stops it on exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';

export interface EmbeddedRedis {
  url: string;
  dir: string;
  stop(): Promise<void>;
}

export interface EmbeddedRedisOptions {
  /** Data directory (created 0700); default: a new directory under the OS temp dir, removed on stop. */
  dir?: string;
  /** Path of redis-server. */
  binary?: string;
  /** A fixed port and password (to restart a server where it was); default: a free port, a random password. */
  port?: number;
  password?: string;
}

function freePort(): Promise<number> {
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

export async function startEmbeddedRedis(opts: EmbeddedRedisOptions = {}): Promise<EmbeddedRedis> {
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
      `port ${port}`, 'bind 127.0.0.1', 'protected-mode yes', `requirepass ${password}`, `dir ${dir}`,
      'appendonly yes', 'appendfsync everysec', 'save ""', 'daemonize no', 'maxmemory-policy noeviction', 'loglevel notice',
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
    return {
      url: `redis://:${password}@127.0.0.1:${port}`,
      dir,
      async stop() {
        process.off('exit', killOnExit);
        killOnExit();
        await exited;
        if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

/**
 * An ioredis connection that keeps retrying while Redis is down instead of failing commands at
 * once; `blocking` is for BullMQ workers, which need commands to wait (maxRetriesPerRequest null).
 */
export function connectRedis(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    ...opts,
  });
}

/** The Redis URL from `--redis` or the environment. */
export function redisUrlFrom(option: string | undefined): string | undefined {
  return option ?? (process.env.XDP_IDS_REDIS_URL || undefined);
}

/** A URL with its password hidden, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
