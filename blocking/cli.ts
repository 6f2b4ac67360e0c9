/**
 * `xdp-ids block add|del|list|show`, `xdp-ids allow add|del|list`, `xdp-ids limit add|del|list`
 * (on the Redis ledger, as the control role: common/redis-config.ts) and `xdp-ids api` (the HTTP
 * control API). Output goes through the program's output configuration; failures (bad input,
 * refused block, unreachable Redis) throw a CommanderError with exit code 1 and a message saying
 * what to fix.
 */
import os from 'node:os';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import type { Logger } from 'pino';
import { createLogger } from '../common/log';
import { connectRedis, describeRedisError, type RedisConnection } from '../common/redis';
import { addRedisOptions, NO_REDIS, RedisConfigError, redisConnectionOf } from '../common/redis-config';
import { startControlApi } from './api';
import { LedgerBlocker } from './blocker';
import { BlockControl, DEFAULT_MANUAL_TTL, InputError } from './control';
import { BlockLedger, type LedgerEntry } from './ledger';
import { AlertQueueNotices } from './notices';
import { loadTokens } from './tokens';

export const DEFAULT_API_LISTEN = '127.0.0.1:9477';

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

/** Runs `work` against the ledger, turning bad input and an unreachable Redis into clear failures. */
async function withControl<T>(cmd: Command, work: (control: BlockControl) => Promise<T>): Promise<T> {
  const log = createLogger('block');
  const target = redisOf(cmd, log);
  const redis = connectRedis(target, { maxRetriesPerRequest: 1 });
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => { lastError = err; });
  const notices = new AlertQueueNotices(redis);
  const ledger = new BlockLedger(redis);
  try {
    return await work(new BlockControl(ledger, new LedgerBlocker(ledger, { component: `cli@${os.hostname()}` }, notices, log)));
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

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => `${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')}\n`).join('');
}

function blockRows(entries: LedgerEntry[]): string {
  return table([['TARGET', 'EXPIRES', 'ORIGIN', 'RULE', 'STRIKES', 'SCOPE', 'REASON'], ...entries.map((e) => [
    e.target, new Date(e.expiresMs).toISOString(), e.origin, e.ruleId ?? '-', String(e.strikes), e.scope, e.reason,
  ])]);
}

function listen(value: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(value);
  if (!match || Number(match[2]) > 65535) throw new InvalidArgumentError(`--listen must be host:port, e.g. ${DEFAULT_API_LISTEN}`);
  return { host: match[1], port: Number(match[2]) };
}

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
      const outcome = await withControl(this, (c) => c.addBlock({ target, ttl: opts.ttl, reason: opts.reason, scope: opts.scope }));
      if (outcome.status === 'refused') fail('block.refused', `refused to block ${outcome.target}: ${outcome.reason}`);
      write(this, `${outcome.status} ${outcome.target} until ${new Date(outcome.expiresMs!).toISOString()} (undo: ${outcome.undo})\n`);
    });
  block.command('del')
    .description('remove a block everywhere (and forget its repeat-offender strikes)')
    .argument('<target>', 'address or CIDR as listed')
    .action(async function (this: Command, target: string) {
      if (!(await withControl(this, (c) => c.delBlock(target)))) fail('block.missing', `no active block for ${target}`);
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

  const limit = addRedisOptions(program.command('limit').description('cap the SYNs every sensor lets through to a protected address (the answer to spoofed-source SYN floods)'), redisHelp);
  limit.command('add')
    .argument('<address>', 'the protected address, e.g. 198.18.0.1')
    .requiredOption('--rate <syn-per-second>', 'SYNs a second still let through')
    .option('--ttl <duration>', 'how long, e.g. 30m, 24h (max 30d)', DEFAULT_MANUAL_TTL)
    .option('--reason <text>', 'why (shown in lists)', 'manual SYN limit')
    .action(async function (this: Command, target: string, opts: { rate: string; ttl: string; reason: string }) {
      const outcome = await withControl(this, (c) => c.addLimit({ target, rate: opts.rate, ttl: opts.ttl, reason: opts.reason }));
      write(this, `SYNs to ${outcome.target} limited to ${outcome.synPerSecond}/s until ${new Date(outcome.expiresMs!).toISOString()} (undo: ${outcome.undo})\n`);
    });
  limit.command('del')
    .argument('<address>', 'as listed')
    .action(async function (this: Command, target: string) {
      if (!(await withControl(this, (c) => c.delLimit(target)))) fail('limit.missing', `no active SYN limit for ${target}`);
      write(this, `removed the SYN limit on ${target}\n`);
    });
  limit.command('list')
    .option('--json', 'one JSON array')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const entries = await withControl(this, (c) => c.listLimits());
      write(this, opts.json ? `${JSON.stringify(entries)}\n` : table([['ADDRESS', 'SYN/S', 'EXPIRES', 'ORIGIN', 'RULE', 'REASON'], ...entries.map((e) => [
        e.target, String(e.synPerSecond), new Date(e.expiresMs).toISOString(), e.origin, e.ruleId ?? '-', e.reason,
      ])]));
    });

  const allow = addRedisOptions(program.command('allow').description('addresses that are never blocked (configured entries; sensors add their own defaults)'), redisHelp);
  allow.command('add')
    .argument('<target>', 'address or CIDR')
    .option('--reason <text>', 'why', 'configured')
    .action(async function (this: Command, target: string, opts: { reason: string }) {
      write(this, `allowed ${await withControl(this, (c) => c.addAllow({ target, reason: opts.reason }))}\n`);
    });
  allow.command('del')
    .argument('<target>', 'address or CIDR as listed')
    .action(async function (this: Command, target: string) {
      if (!(await withControl(this, (c) => c.delAllow(target)))) fail('allow.missing', `no configured allow entry for ${target}`);
      write(this, `removed ${target}\n`);
    });
  allow.command('list')
    .description('configured entries and every running sensor\'s defaults')
    .option('--json', 'one JSON array')
    .action(async function (this: Command, opts: { json?: boolean }) {
      const entries = await withControl(this, (c) => c.listAllows());
      write(this, opts.json ? `${JSON.stringify(entries)}\n` : table([['TARGET', 'SOURCE', 'REASON'], ...entries.map((e) => [e.target, e.source, e.reason])]));
    });

  addRedisOptions(program.command('api')
    .description('serve the HTTP control API (tokens from XDP_IDS_API_TOKENS and/or --token-file)')
    .option('--listen <host:port>', 'address to listen on', listen, listen(DEFAULT_API_LISTEN))
    .option('--token-file <path>', 'file with one API token per line'), redisHelp)
    .action(async function (this: Command, opts: { listen: { host: string; port: number }; tokenFile?: string }) {
      let tokens: string[];
      try {
        tokens = loadTokens({ file: opts.tokenFile });
      } catch (err) {
        fail('api.tokens', (err as Error).message);
      }
      if (tokens.length === 0) fail('api.tokens', 'no API tokens configured: set XDP_IDS_API_TOKENS or pass --token-file (the API rejects everything without one)');
      const log = createLogger('api');
      const api = await startControlApi({ redisUrl: redisOf(this, log), ...opts.listen, tokens, log });
      log.info({ url: api.url }, 'control API listening');
      const shutdown = async (): Promise<void> => {
        await api.close();
        process.exit(0);
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    });
}
