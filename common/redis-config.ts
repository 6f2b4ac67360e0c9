/**
 * One Redis configuration for every command: which Redis, as which user, over what. A URL with a
 * password comes from a file (--redis-url-file, XDP_IDS_REDIS_URL_FILE) or the environment
 * (XDP_IDS_REDIS_URL), never from the command line, where every user of the host reads it in
 * `ps`; rediss:// checks the server's certificate and host name against a CA file; a Redis off
 * this host without a password is refused unless the operator says it is protected some other way.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import { redactUrl, type RedisConnection, type RedisTlsFiles } from './redis';
import { hasPassword, hostsOf, parseRedisUrl, RedisUrlError, usesTls, type RedisTopology } from './redis-topology';

/** The options addRedisOptions adds, as commander parses them. */
export interface RedisCliOptions {
  redis?: string;
  redisUrlFile?: string;
  redisCa?: string;
  insecureRedis?: boolean;
}

/** A Redis configuration that cannot be used; the message says what to change. */
export class RedisConfigError extends Error {}

export const NO_REDIS = 'no Redis: set XDP_IDS_REDIS_URL_FILE or XDP_IDS_REDIS_URL, or give --redis-url-file FILE (or --redis URL for a Redis without a password)';

export function addRedisOptions(cmd: Command, redisHelp = 'Redis URL without a password (default: $XDP_IDS_REDIS_URL)'): Command {
  return cmd
    .option('--redis <url>', redisHelp)
    .option('--redis-url-file <file>', 'file holding the Redis URL with its password, readable only by its owner (default: $XDP_IDS_REDIS_URL_FILE)')
    .option('--redis-ca <file>', 'CA certificate (PEM) that signed the rediss:// server certificate (default: $XDP_IDS_REDIS_CA; client certificate: $XDP_IDS_REDIS_CERT and $XDP_IDS_REDIS_KEY)')
    .option('--insecure-redis', 'accept a Redis off this host without a password (XDP_IDS_INSECURE_REDIS=1)');
}

/**
 * A secret file's text, refused unless only its owner can read or change it (anyone else who can
 * read it has the secret; anyone who can change it can point us at their own Redis).
 */
export function readSecretFile(file: string, what: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new RedisConfigError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new RedisConfigError(`${what} ${file} is not a regular file`);
    const mode = stat.mode & 0o777;
    if (mode & 0o077) throw new RedisConfigError(`${what} ${file} is open to group or others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}`);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

interface UrlSource {
  text: string;
  /** Where it came from, for messages. */
  from: string;
  onCommandLine: boolean;
}

function urlFromFile(file: string, from: string): UrlSource {
  const text = readSecretFile(file, 'the Redis URL file').trim();
  if (text === '') throw new RedisConfigError(`the Redis URL file ${file} is empty`);
  if (/\s/.test(text)) throw new RedisConfigError(`the Redis URL file ${file} must hold one URL on one line`);
  return { text, from, onCommandLine: false };
}

function urlSource(opts: RedisCliOptions, env: NodeJS.ProcessEnv): UrlSource | undefined {
  if (opts.redis !== undefined && opts.redisUrlFile !== undefined) throw new RedisConfigError('give either --redis or --redis-url-file, not both');
  if (opts.redis !== undefined) return { text: opts.redis, from: '--redis', onCommandLine: true };
  if (opts.redisUrlFile !== undefined) return urlFromFile(opts.redisUrlFile, `--redis-url-file ${opts.redisUrlFile}`);
  const url = env.XDP_IDS_REDIS_URL || undefined;
  const file = env.XDP_IDS_REDIS_URL_FILE || undefined;
  if (url !== undefined && file !== undefined) throw new RedisConfigError('set either XDP_IDS_REDIS_URL or XDP_IDS_REDIS_URL_FILE, not both');
  if (url !== undefined) return { text: url, from: 'XDP_IDS_REDIS_URL', onCommandLine: false };
  if (file !== undefined) return urlFromFile(file, `XDP_IDS_REDIS_URL_FILE (${file})`);
  return undefined;
}

function parseUrl(source: UrlSource): RedisTopology {
  try {
    return parseRedisUrl(source.text);
  } catch (err) {
    if (!(err instanceof RedisUrlError)) throw err;
    const { message } = err;
    throw new RedisConfigError(message.startsWith('the Redis URL') ? message.replace('the Redis URL', `the Redis URL from ${source.from}`) : `the Redis URL from ${source.from}: ${message}`);
  }
}

/** Unix sockets and loopback addresses (every one the URL names): nobody else's network sees the traffic. */
export function isLocalRedis(topology: RedisTopology): boolean {
  return hostsOf(topology).every((host) => host === 'localhost' || (ipaddr.isValid(host) && ipaddr.process(host).range() === 'loopback'));
}

function insecureAllowed(opts: RedisCliOptions, env: NodeJS.ProcessEnv): boolean {
  const value = env.XDP_IDS_INSECURE_REDIS || undefined;
  if (value !== undefined && value !== '1' && value !== '0') throw new RedisConfigError(`XDP_IDS_INSECURE_REDIS must be 1 (or 0), got ${JSON.stringify(value)}`);
  return opts.insecureRedis === true || value === '1';
}

function readableFile(file: string, what: string): string {
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    throw new RedisConfigError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  return file;
}

function tlsFiles(opts: RedisCliOptions, env: NodeJS.ProcessEnv, url: RedisTopology, source: UrlSource): RedisTlsFiles | undefined {
  const ca = opts.redisCa ?? (env.XDP_IDS_REDIS_CA || undefined);
  const cert = env.XDP_IDS_REDIS_CERT || undefined;
  const key = env.XDP_IDS_REDIS_KEY || undefined;
  if (ca === undefined && cert === undefined && key === undefined) return undefined;
  if (!usesTls(url)) {
    throw new RedisConfigError(`--redis-ca, XDP_IDS_REDIS_CA, XDP_IDS_REDIS_CERT and XDP_IDS_REDIS_KEY are for TLS, but the URL from ${source.from} is not: use rediss:// (rediss+sentinel://, rediss+cluster://)`);
  }
  if ((cert === undefined) !== (key === undefined)) throw new RedisConfigError('a client certificate needs both XDP_IDS_REDIS_CERT and XDP_IDS_REDIS_KEY');
  if (key !== undefined) readSecretFile(key, 'the Redis client key');
  return {
    ...(ca !== undefined ? { ca: readableFile(ca, 'the Redis CA file') } : {}),
    ...(cert !== undefined ? { cert: readableFile(cert, 'the Redis client certificate'), key } : {}),
  };
}

export interface ResolvedRedis {
  connection: RedisConnection;
  /** Things an operator should hear about although they work (plaintext off this host). */
  warnings: string[];
}

/** The Redis the options and the environment name (undefined when they name none), or a RedisConfigError saying what is wrong. */
export function resolveRedis(opts: RedisCliOptions, env: NodeJS.ProcessEnv = process.env): ResolvedRedis | undefined {
  const source = urlSource(opts, env);
  if (!source) {
    if (opts.redisCa !== undefined) throw new RedisConfigError(`--redis-ca without a Redis URL; ${NO_REDIS}`);
    return undefined;
  }
  const url = parseUrl(source);
  if (source.onCommandLine && hasPassword(url)) {
    throw new RedisConfigError('--redis must not carry a password: every user of this host reads command lines (ps). '
      + 'Put the URL in a file only you can read (chmod 600) and give --redis-url-file FILE, or set XDP_IDS_REDIS_URL_FILE or XDP_IDS_REDIS_URL');
  }
  const local = isLocalRedis(url);
  if (!local && !hasPassword(url) && !insecureAllowed(opts, env)) {
    throw new RedisConfigError(`Redis at ${redactUrl(source.text)} is not on this host and the URL from ${source.from} has no password: whoever reaches it could `
      + 'block any address in the fleet. Use the URL of this component\'s role (`xdp-ids redis acl`), or --insecure-redis (XDP_IDS_INSECURE_REDIS=1) '
      + 'if that Redis is protected some other way');
  }
  const tls = tlsFiles(opts, env, url, source);
  const warnings = !local && !usesTls(url) && !(url.kind === 'server' && url.url.protocol === 'unix:')
    ? [`plaintext connection to Redis at ${redactUrl(source.text)}: the ledger, the incidents and the password cross the network readable and changeable; use rediss:// (--redis-ca)`]
    : [];
  return { connection: { url: source.text, ...(tls ? { tls } : {}) }, warnings };
}

/** resolveRedis for a command: its warnings are logged. */
export function redisConnectionOf(opts: RedisCliOptions, log: Pick<Logger, 'warn'>, env: NodeJS.ProcessEnv = process.env): RedisConnection | undefined {
  const resolved = resolveRedis(opts, env);
  for (const warning of resolved?.warnings ?? []) log.warn(warning);
  return resolved?.connection;
}
