/**
 * `xdp-ids block add|del|list|show`, `xdp-ids allow add|del|list`, `xdp-ids limit add|del|list`
 * (on the Redis ledger, as the control role: common/redis-config.ts; the actor of a change is
 * `cli:<user>@<host>`) and `xdp-ids api` (the HTTP control API). Output goes through the
 * program's output configuration; failures (bad input, refused block, unreachable Redis) throw a
 * CommanderError with exit code 1 and a message saying what to fix.
 */
import os from 'node:os';
import { Command, CommanderError } from 'commander';
import type { Logger } from 'pino';
import { readBoundedFile } from '../common/files';
import { createLogger } from '../common/log';
import { connectRedis, describeRedisError, type RedisConnection } from '../common/redis';
import { addRedisOptions, NO_REDIS, RedisConfigError, redisConnectionOf } from '../common/redis-config';
import { listenAddress } from '../common/listen';
import { textTable as table } from '../common/text';
import { startControlApi } from './api';
import { LedgerBlocker, limitSummary } from './blocker';
import { TRAFFIC_CLASSES } from '../common/traffic';
import { BlockControl, DEFAULT_MANUAL_TTL, InputError } from './control';
import { BlockLedger, type LedgerEntry } from './ledger';
import { AlertQueueNotices } from './notices';
import { loadTokens, type ApiToken } from './tokens';
import { widthLimitsFromEnv, type WidthLimits } from './widths';

export const DEFAULT_API_PORT = 9477;
export const DEFAULT_API_LISTEN = `127.0.0.1:${DEFAULT_API_PORT}`;

function fail(code: string, message: string): never {
  throw new CommanderError(1, `xdp-ids.${code}`, message);
}

function redisOf(cmd: Command, log: Logger): RedisConnection {
  let connection: RedisConnection | undefined;
  try {
    connection = redisConnectionOf(cmd.optsWithGlobals(), log);
  } catch (err) {
    if (err instanceof RedisConfigError) fail('redis.config', err.message);
    throw err;
  }
  if (!connection) fail('redis.missing', `${NO_REDIS} (the ledger the sensors enforce, as the control role)`);
  return connection;
}

/** Who runs this command, as the ledger and the alerts name them. */
export function cliActor(): string {
  let user: string;
  try {
    user = os.userInfo().username;
  } catch {
    user = `uid-${process.getuid?.() ?? 'unknown'}`; // no passwd entry, e.g. an arbitrary container user
  }
  return `cli:${user}@${os.hostname()}`;
}

function widthLimits(): WidthLimits {
  try {
    return widthLimitsFromEnv();
  } catch (err) {
    fail('config', (err as Error).message);
  }
}

/** Runs `work` against the ledger, turning bad input and an unreachable Redis into clear failures. */
async function withControl<T>(cmd: Command, work: (control: BlockControl, actor: string) => Promise<T>): Promise<T> {
  const widths = widthLimits();
  const log = createLogger('block');
  const target = redisOf(cmd, log);
  const redis = connectRedis(target, { maxRetriesPerRequest: 1 });
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => { lastError = err; });
  const notices = new AlertQueueNotices(redis);
  const ledger = new BlockLedger(redis);
  try {
    const blocker = new LedgerBlocker(ledger, { component: `cli@${os.hostname()}` }, notices, log);
    return await work(new BlockControl(ledger, blocker, { notices, widths }), cliActor());
  } catch (err) {
    if (err instanceof InputError) fail('input', err.message);
    if (err instanceof CommanderError) throw err;
    if (lastError) fail('redis.unreachable', describeRedisError(lastError, target));
    throw err;
  } finally {
    await notices.close().catch(() => undefined);
    redis.disconnect();
  }
}

function write(cmd: Command, text: string): void {
  cmd.configureOutput().writeOut?.(text);
}

function blockRows(entries: LedgerEntry[]): string {
  return table([['TARGET', 'EXPIRES', 'ORIGIN', 'RULE', 'STRIKES', 'SCOPE', 'ACTOR', 'REASON'], ...entries.map((e) => [
    e.target, new Date(e.expiresMs).toISOString(), e.origin, e.ruleId ?? '-', String(e.strikes), e.scope, e.actor ?? '-', e.reason,
  ])]);
}

const MAX_PEM_BYTES = 1 << 20;

function tlsFiles(cert: string | undefined, key: string | undefined): { cert: string; key: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) fail('api.tls', 'give both --tls-cert and --tls-key');
  const read = (flag: string, file: string, secret: boolean): string => {
    try {
      return readBoundedFile(file, { maxBytes: MAX_PEM_BYTES, secret });
    } catch (err) {
      fail('api.tls', `${flag} ${file}: ${(err as Error).message}`);
    }
  };
  return { cert: read('--tls-cert', cert, false), key: read('--tls-key', key, true) };
}

const listen = listenAddress('--listen', DEFAULT_API_LISTEN);

export function registerBlockingCommands(program: Command): void {
  const redisHelp = 'Redis of the block ledger, URL without a password (default: $XDP_IDS_REDIS_URL)';
  const block = addRedisOptions(program.command('block').description('add, remove, list and show blocks in the ledger every sensor enforces'), redisHelp);
  block.command('add')
    .description('block an address or prefix everywhere (an IPv6 address without a length means its /64)')
    .argument('<target>', 'address or CIDR, e.g. 198.18.2.66 or 2001:db8::/48')
    .option('--ttl <duration>', 'how long, e.g. 30m, 24h (max 30d)', DEFAULT_MANUAL_TTL)
    .option('--reason <text>', 'why (shown in alerts and lists)', 'manual block')
    .option('--scope <sensor>', 'only this sensor enforces it', 'all')
    .action(async function (this: Command, target: string, opts: { ttl: string; reason: string; scope: string }) {
      const outcome = await withControl(this, (c, actor) => c.addBlock({ target, ttl: opts.ttl, reason: opts.reason, scope: opts.scope }, actor));
      if (outcome.status === 'refused') fail('block.refused', `refused to block ${outcome.target}: ${outcome.reason}`);
      write(this, `${outcome.status} ${outcome.target} until ${new Date(outcome.expiresMs!).toISOString()} (undo: ${outcome.undo})\n`);
    });
  block.command('del')
    .description('remove a block everywhere (and forget its repeat-offender strikes)')
    .argument('<target>', 'address or CIDR as listed')
    .action(async function (this: Command, target: string) {
      if (!(await withControl(this, (c, actor) => c.delBlock(target, actor)))) fail('block.missing', `no active block for ${target}`);
      write(this, `unblocked ${target}\n`);
    });
  block.command('list')
    .description('active blocks, soonest expiry first')
    .option('--json', 'one JSON array')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const entries = await withControl(this, (c) => c.listBlocks());
      write(this, opts.json ? `${JSON.stringify(entries)}\n` : blockRows(entries));
    });
  block.command('show')
    .description('one block with its origin, rule, incident, strikes and expiry (JSON)')
    .argument('<target>', 'address or CIDR as listed')
    .action(async function (this: Command, target: string) {
      const entry = await withControl(this, (c) => c.showBlock(target));
      if (!entry) fail('block.missing', `no active block for ${target}`);
      write(this, `${JSON.stringify(entry, null, 2)}\n`);
    });

  const limit = addRedisOptions(program.command('limit')
    .description('cap one kind of traffic every sensor lets through to a protected address (the answer to floods from forged sources or reflectors)'), redisHelp);
  const traffic = `what to cap: ${TRAFFIC_CLASSES.join(', ')}`;
  limit.command('add')
    .argument('<address>', 'the protected address, e.g. 198.18.0.1')
    .requiredOption('--rate <per-second>', 'packets a second still let through')
    .option('--traffic <class>', traffic, 'syn')
    .option('--ttl <duration>', 'how long, e.g. 30m, 24h (max 30d)', DEFAULT_MANUAL_TTL)
    .option('--reason <text>', 'why (shown in lists)', 'manual limit')
    .action(async function (this: Command, target: string, opts: { rate: string; traffic: string; ttl: string; reason: string }) {
      const outcome = await withControl(this, (c, actor) => c.addLimit({ target, traffic: opts.traffic, rate: opts.rate, ttl: opts.ttl, reason: opts.reason }, actor));
      write(this, `${limitSummary(outcome.target, outcome.traffic!, outcome.perSecond!)} until ${new Date(outcome.expiresMs!).toISOString()} (undo: ${outcome.undo})\n`);
    });
  limit.command('del')
    .argument('<address>', 'as listed')
    .option('--traffic <class>', traffic, 'syn')
    .action(async function (this: Command, target: string, opts: { traffic: string }) {
      if (!(await withControl(this, (c, actor) => c.delLimit(target, opts.traffic, actor)))) fail('limit.missing', `no active ${opts.traffic} limit for ${target}`);
      write(this, `removed the ${opts.traffic} limit on ${target}\n`);
    });
  limit.command('list')
    .option('--json', 'one JSON array')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const entries = await withControl(this, (c) => c.listLimits());
      write(this, opts.json ? `${JSON.stringify(entries)}\n` : table([['ADDRESS', 'TRAFFIC', 'PER S', 'EXPIRES', 'ORIGIN', 'RULE', 'REASON'], ...entries.map((e) => [
        e.target, e.traffic, String(e.perSecond), new Date(e.expiresMs).toISOString(), e.origin, e.ruleId ?? '-', e.reason,
      ])]));
    });

  const allow = addRedisOptions(program.command('allow').description('addresses that are never blocked (configured entries; sensors add their own defaults)'), redisHelp);
  allow.command('add')
    .argument('<target>', 'address or CIDR')
    .option('--reason <text>', 'why', 'configured')
    .action(async function (this: Command, target: string, opts: { reason: string }) {
      write(this, `allowed ${await withControl(this, (c, actor) => c.addAllow({ target, reason: opts.reason }, actor))}\n`);
    });
  allow.command('del')
    .argument('<target>', 'address or CIDR as listed')
    .action(async function (this: Command, target: string) {
      if (!(await withControl(this, (c, actor) => c.delAllow(target, actor)))) fail('allow.missing', `no configured allow entry for ${target}`);
      write(this, `removed ${target}\n`);
    });
  allow.command('list')
    .description('configured entries and every running sensor\'s defaults')
    .option('--json', 'one JSON array')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const entries = await withControl(this, (c) => c.listAllows());
      write(this, opts.json ? `${JSON.stringify(entries)}\n` : table([['TARGET', 'SOURCE', 'ACTOR', 'REASON'], ...entries.map((e) => [e.target, e.source, e.actor ?? '-', e.reason])]));
    });

  addRedisOptions(program.command('api')
    .description('serve the HTTP control API (tokens name:scope:secret from XDP_IDS_API_TOKENS and/or --token-file)')
    .option('--listen <host:port>', 'address to listen on (off the loopback only with --tls-cert/--tls-key or --insecure-http)', listen, listen(DEFAULT_API_LISTEN))
    .option('--token-file <path>', 'file with one token name:scope:secret per line (mode 600)')
    .option('--tls-cert <path>', 'PEM certificate (chain): serve HTTPS')
    .option('--tls-key <path>', 'PEM private key of --tls-cert (mode 600)')
    .option('--insecure-http', 'serve plain HTTP on a non-loopback address (only behind a proxy that adds TLS)'), redisHelp)
    .action(async function (this: Command, opts: { listen: { host: string; port: number }; tokenFile?: string; tlsCert?: string; tlsKey?: string; insecureHttp?: boolean }) {
      let tokens: ApiToken[];
      try {
        tokens = loadTokens({ file: opts.tokenFile });
      } catch (err) {
        fail('api.tokens', (err as Error).message);
      }
      if (tokens.length === 0) fail('api.tokens', 'no API tokens configured: set XDP_IDS_API_TOKENS or pass --token-file (the API rejects everything without one)');
      const widths = widthLimits();
      const tls = tlsFiles(opts.tlsCert, opts.tlsKey);
      const log = createLogger('api');
      let api: Awaited<ReturnType<typeof startControlApi>>;
      try {
        api = await startControlApi({ redisUrl: redisOf(this, log), ...opts.listen, tokens, log, tls, insecureHttp: opts.insecureHttp, widths });
      } catch (err) {
        fail('api.start', (err as Error).message);
      }
      log.info({ url: api.url }, 'control API listening');
      const shutdown = async (): Promise<void> => {
        await api.close();
        process.exit(0);
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    });
}
