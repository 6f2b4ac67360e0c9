/**
 * `xdp-ids alerter` runs the alerter; `xdp-ids alerts dlq|silence|receiver|config ...` are the
 * operator commands (alerts/operations.ts). Both use the alerter role's Redis (common/redis-config.ts).
 */
import os from 'node:os';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import type { Logger } from 'pino';
import { createLogger } from '../common/log';
import { connectRedis, describeRedisError, type RedisConnection, type RedisClient } from '../common/redis';
import { addRedisOptions, NO_REDIS, redisConnectionOf, type RedisCliOptions } from '../common/redis-config';
import { parseDuration } from '../detector/rules/durations';
import { positiveInt } from '../bin/arguments';
import { loadConfig } from './config';
import * as ops from './operations';
import { startAlerter } from './service';
import { AlerterMetrics } from './metrics';
import type { ListenAddress } from '../common/listen';
import { createRegistry, metricsListenOption, serveCommandMetrics } from '../common/metrics';

const DEFAULT_CONFIG = 'alerts.yaml';

function redisOf(opts: RedisCliOptions, log: Logger): RedisConnection {
  const connection = redisConnectionOf(opts, log);
  if (!connection) throw new InvalidArgumentError(`${NO_REDIS} (the alerter role's URL)`);
  return connection;
}

function duration(text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms === 0) throw new InvalidArgumentError(`not a duration: ${text} (e.g. 30m, 2h, 1d)`);
  return ms;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Runs one operation on a short-lived connection that fails fast when Redis is down. */
async function withRedis(cmd: Command, fn: (redis: RedisClient) => Promise<string>): Promise<void> {
  let target: RedisConnection;
  try {
    target = redisOf(cmd.optsWithGlobals(), createLogger('alerts'));
  } catch (err) {
    throw new CommanderError(1, 'xdp-ids.alerts.redis', (err as Error).message);
  }
  const redis = connectRedis(target, { maxRetriesPerRequest: 1, retryStrategy: () => null });
  let connectionError: Error | undefined;
  redis.on('error', (err: Error) => {
    connectionError = err;
  });
  try {
    const out = await fn(redis);
    cmd.configureOutput().writeOut!(out);
  } catch (err) {
    const message = connectionError ? describeRedisError(connectionError, target) : (err as Error).message;
    throw new CommanderError(1, 'xdp-ids.alerts.failed', message);
  } finally {
    redis.disconnect();
  }
}

export function registerAlertsCommands(program: Command): Command {
  addRedisOptions(program.command('alerter')
    .description('run the alerter: group, deduplicate and deliver alerts from the Redis `alerts` queue to email and webhooks')
    .option('-c, --config <file>', 'alerts config (see alerts/alerts.example.yaml)', DEFAULT_CONFIG)
    .option('--takeover-ms <ms>', 'how long an event or delivery stays with an alerter that stopped answering (killed, hung) before another alerter takes it over',
      positiveInt('--takeover-ms', 600_000), 30_000)
    .addOption(metricsListenOption('alerter')))
    .action(async (opts: RedisCliOptions & { config: string; takeoverMs: number; metricsListen?: ListenAddress | 'off' }) => {
      const log = createLogger('alerter');
      const redis = redisOf(opts, log);
      const registry = createRegistry('alerter');
      const metricsServer = await serveCommandMetrics(registry, 'alerter', opts.metricsListen, log);
      const alerter = await startAlerter({ redisUrl: redis, configPath: opts.config, log, metrics: new AlerterMetrics(registry), lockDurationMs: opts.takeoverMs });
      const shutdown = (): void => {
        void metricsServer?.close();
        alerter.stop().then(() => process.exit(0), (err: Error) => {
          log.error({ err: err.message }, 'alerter did not stop cleanly');
          process.exit(1);
        });
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    });

  const alerts = addRedisOptions(program.command('alerts').description('operate the alerter: dead letters, silences, receivers, stats, config'));

  const dlq = alerts.command('dlq').description('messages that could not be delivered, and events that could not be read');
  dlq.command('list').description('list dead letters, oldest first').action(function (this: Command) {
    return withRedis(this, ops.dlqList);
  });
  dlq.command('show').description('print one dead letter with its full message and error').argument('<id>')
    .action(function (this: Command, id: string) {
      return withRedis(this, (r) => ops.dlqShow(r, id));
    });
  dlq.command('replay').description('queue dead letters again (by id, or --all) and remove them from the list').argument('[ids...]')
    .option('--all', 'replay every dead letter')
    .action(function (this: Command, ids: string[], opts: { all?: boolean }) {
      return withRedis(this, (r) => ops.dlqReplay(r, ids, opts.all === true));
    });

  alerts.command('stats').description('how many events and deliveries were retried and dead-lettered (all alerters on this Redis)')
    .action(function (this: Command) {
      return withRedis(this, ops.statsShow);
    });

  const silence = alerts.command('silence').description('mute alerts that match, for a while');
  silence.command('add').description('add a silence; prints its id')
    .requiredOption('-m, --match <matcher>', 'label=value, label!=value, label=~regex or label!~regex (repeatable; labels: kind, phase, severity, rule, tag, source, target, code, component, incident...)', collect, [])
    .requiredOption('-d, --duration <duration>', 'how long, e.g. 2h', duration)
    .option('--comment <text>', 'why', '')
    .option('--author <name>', 'who', os.userInfo().username)
    .action(function (this: Command, opts: { match: string[]; duration: number; comment: string; author: string }) {
      return withRedis(this, (r) => ops.silenceAdd(r, { matchers: opts.match, durationMs: opts.duration, comment: opts.comment, author: opts.author }));
    });
  silence.command('list').description('list active and future silences').action(function (this: Command) {
    return withRedis(this, (r) => ops.silenceList(r));
  });
  silence.command('del').description('delete a silence').argument('<id>').action(function (this: Command, id: string) {
    return withRedis(this, (r) => ops.silenceDelete(r, id));
  });

  const receiver = alerts.command('receiver').description('receivers disabled after answering 410 Gone');
  receiver.command('list').description('list disabled receivers').action(function (this: Command) {
    return withRedis(this, ops.receiverList);
  });
  receiver.command('enable').description('send to a disabled receiver again').argument('<name>').action(function (this: Command, name: string) {
    return withRedis(this, (r) => ops.receiverEnable(r, name));
  });

  alerts.command('check-config').description('validate an alerts config; errors as file:line:column: path: message')
    .option('-c, --config <file>', 'alerts config', DEFAULT_CONFIG)
    .action(function (this: Command, opts: { config: string }) {
      try {
        const config = loadConfig(opts.config);
        this.configureOutput().writeOut?.(`${opts.config}: OK (${config.receivers.size} receivers, ${config.routes.length} routes, ${config.inhibitRules.length} inhibit rules)\n`);
      } catch (err) {
        throw new CommanderError(1, 'xdp-ids.alerts.config', (err as Error).message);
      }
    });
  return alerts;
}
