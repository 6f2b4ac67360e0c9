/**
 * The commands that run the pipeline: `detector` (one detector process on a Redis) and `run`
 * (the whole service in one process: Redis of its own unless given one, the sensor with its block
 * enforcer, a detector that blocks through the ledger, a live view, and the web dashboard on the
 * loopback; on a demo lab of network namespaces when no interface is given). On its own Redis each part connects as its role's ACL
 * user, as it would on a shared one.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Logger } from 'pino';
import { createLogger, LOG_LEVELS } from '../common/log';
import { connectRedis, DEFAULT_EMBEDDED_MAXMEMORY, isMemorySize, redactUrl, startEmbeddedRedis, type RedisTarget } from '../common/redis';
import { addRedisOptions, NO_REDIS, redisConnectionOf, type RedisCliOptions } from '../common/redis-config';
import { aclFileText, newRolePasswords, roleUrls, type Role } from '../common/redis-roles';
import { defaultRulesDir } from '../detector/rules/loader';
import { Detector, type DetectorOptions } from '../detector/service';
import { defaultModelDir } from '../detector/model/cli';
import { parseGrouping, type Grouping } from '../detector/rules/addresses';
import { mailboxConfig } from '../alerts/config';
import { startAlerter, startAlerterWith } from '../alerts/service';
import { startDemoLab, type DemoLab } from '../lab/demo';
import { DemoModelLearner, learnerLine } from '../lab/demo-model';
import { Sensor } from '../sensor/daemon';
import { QueuePublisher } from '../sensor/publisher';
import { TopView } from '../sensor/top-view';
import { LedgerBlocker } from '../blocking/blocker';
import { startEnforcer } from '../blocking/enforcer';
import { BlockLedger } from '../blocking/ledger';
import { LedgerMaintenance } from '../blocking/maintenance';
import { AlertQueueNotices } from '../blocking/notices';
import type { Blocker } from '../common/block-requests';
import { EnforcerMetrics } from '../blocking/enforcer-metrics';
import { AlerterMetrics } from '../alerts/metrics';
import { createRegistry, metricsListenOption, serveCommandMetrics } from '../common/metrics';
import { DetectorMetrics } from '../detector/metrics';
import { SensorMetrics } from '../sensor/metrics';
import { DEFAULT_API_PORT } from '../blocking/cli';
import { loadTokens } from '../blocking/tokens';
import { SensorStatusWriter } from '../sensor/status';
import { startLocalDashboard } from '../web/local';
import { cidrList, listenPort, PARTNER_HELP, PROTECT_HELP, positiveInt, sshPorts } from './arguments';

/** The detector options both commands share: rules, window, the anomaly model, dry run, the incident cap. */
function detectorOptions(cmd: Command): Command {
  return cmd
    .option('--rules <paths...>', 'rule files or directories', [defaultRulesDir()])
    .option('--window-ms <ms>', "the sensors' window length", positiveInt('--window-ms', 60_000), 1000)
    .option('--model-dir <dir>', 'run the newest anomaly model of this directory next to the rules (hot swapped)', defaultModelDir())
    .option('--no-model', 'rules only')
    .option('--model-block-ttl <s>', 'also block sources the model finds anomalous, for this many seconds (default: alert only)', positiveInt('--model-block-ttl', 30 * 86_400))
    .option('--dry-run', 'record block decisions as "would block" instead of blocking')
    .option('--max-incidents-per-rule <n>', 'open incidents per rule; detections of further keys are folded into one overflow incident that never blocks',
      positiveInt('--max-incidents-per-rule', 1_000_000), 500)
    .option('--partner <cidr>', PARTNER_HELP, cidrList('--partner'));
}

function modelOf(opts: { model: boolean; modelDir: string; modelBlockTtl?: number }, missingAfterMs?: number): DetectorOptions['model'] {
  if (!opts.model) return undefined;
  return { dir: opts.modelDir, missingAfterMs, ...(opts.modelBlockTtl ? { block: { ttlMs: opts.modelBlockTtl * 1000, scope: parseGrouping('src') as Grouping } } : {}) };
}

/**
 * How long the demo learns its lab's normal traffic before training its anomaly model. 40 s held
 * one or two of the iperf3 host's transfers (one every 22 s) and too few windows for the heavy
 * traffic band's threshold: the model either fell back on thresholds dozens of times its errors
 * (blind to the attacker) or, before thresholds per band, alerted on benign clients.
 */
const DEMO_LEARN_MS = 90_000;
/** Learning, training (five fits, a minute or two on one busy core) and a margin before the model counts as missing. */
const DEMO_MODEL_DUE_MS = DEMO_LEARN_MS + 180_000;

const RUN_REDIS_HELP = 'Redis URL without a password, used by every part (default: $XDP_IDS_REDIS_URL, else a private redis-server with a user per part)';

/** Past this, shutdown gives up waiting (e.g. on an external Redis that went away) and exits anyway. */
const SHUTDOWN_LIMIT_MS = 20_000;

function onExit(log: Logger, stop: () => Promise<void>): void {
  const handler = (): void => {
    setTimeout(() => {
      log.error({ limitMs: SHUTDOWN_LIMIT_MS }, 'shutdown is taking too long; exiting');
      process.exit(1);
    }, SHUTDOWN_LIMIT_MS).unref();
    stop().then(() => process.exit(0), (err) => {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  // A closed terminal or SSH session: without this, the default action ends the process at once and
  // leaves its private redis-server running and the XDP program attached.
  process.once('SIGHUP', handler);
}

/** `run`'s logger: into a file, with warnings and errors also handed to the live view. */
function logTo(file: string, level: string | undefined, warnings: (line: string) => void): Logger {
  try {
    return createLogger('xdp-ids', { file, level, warnings: { write: warnings } });
  } catch (err) {
    throw new InvalidArgumentError(`cannot write the log file ${file}: ${(err as Error).message} (pass --log-file)`);
  }
}

/**
 * The blocker detectors use: decisions into the Redis block ledger, which every sensor enforces;
 * and the ledger's maintenance (expiries announced), which needs a writer such as a detector.
 */
function ledgerBlocker(target: RedisTarget, component: string, opts: { dryRun?: boolean; partner?: string[] }, log: Logger): { blocker: Blocker; close(): Promise<void> } {
  const redis = connectRedis(target);
  const notices = new AlertQueueNotices(redis);
  const ledger = new BlockLedger(redis);
  const blocker = new LedgerBlocker(ledger, { component, dryRun: Boolean(opts.dryRun), partners: opts.partner }, notices, log);
  const maintenance = new LedgerMaintenance(ledger, notices, log).start();
  return { blocker, async close() { await maintenance.stop(); await notices.close(); redis.disconnect(); } };
}

function memorySize(text: string): string {
  if (!isMemorySize(text)) throw new InvalidArgumentError('--redis-maxmemory must be a size such as 256mb or 1gb');
  return text;
}

/**
 * The Redis of each part of `run`: the one given (every part as that URL's user), or a private
 * redis-server, bounded in memory, with one ACL user per role, so the demo runs with the
 * privileges of a deployment. For the private one, the control role's URL is also written to a
 * file (0600, in the server's directory, gone with it) for `xdp-ids status` and `incidents`.
 */
async function redisForParts(opts: RedisCliOptions & { redisMaxmemory?: string }, log: Logger, stops: (() => Promise<void> | void)[]): Promise<{ urls: Record<Role, RedisTarget>; controlFile?: string }> {
  const given = redisConnectionOf(opts, log);
  if (given) {
    if (opts.redisMaxmemory !== undefined) throw new InvalidArgumentError('--redis-maxmemory bounds the private redis-server; set maxmemory on the Redis you gave instead');
    log.info({ redis: redactUrl(given) }, 'using Redis (every part as the same user)');
    return { urls: { sensor: given, detector: given, alerter: given, control: given } };
  }
  const maxmemory = opts.redisMaxmemory ?? (process.env.XDP_IDS_REDIS_MAXMEMORY || DEFAULT_EMBEDDED_MAXMEMORY);
  const passwords = newRolePasswords();
  const embedded = await startEmbeddedRedis({ acl: aclFileText(passwords), maxmemory });
  stops.push(() => embedded.stop());
  log.info({ dir: embedded.dir, maxmemory }, 'started a private redis-server (one ACL user per part)');
  const urls = roleUrls(embedded.url, passwords);
  const controlFile = path.join(embedded.dir, 'redis-control.url');
  fs.writeFileSync(controlFile, `${urls.control}\n`, { mode: 0o600, flag: 'wx' });
  return { urls, controlFile };
}

export function registerServiceCommands(program: Command): void {
  addRedisOptions(detectorOptions(program.command('detector')
    .description('run a detector process: rules and the anomaly model over the windows queue, incidents in Redis, events on the alerts queue (start as many as you like on one Redis)')
    .option('--resolve-after <s>', 'seconds of quiet after which an incident resolves (at least the rule window)', positiveInt('--resolve-after', 86_400), 60)
    .addOption(metricsListenOption('detector'))))
    .action(async (opts) => {
      const log = createLogger('detector');
      const redis = redisConnectionOf(opts, log);
      if (!redis) throw new Error(`${NO_REDIS} (the detector role's URL; or use \`xdp-ids run\`, which starts its own)`);
      const registry = createRegistry('detector');
      const metrics = new DetectorMetrics(registry);
      const metricsServer = await serveCommandMetrics(registry, 'detector', opts.metricsListen, log);
      const blocking = ledgerBlocker(redis, `detector@${os.hostname()}:${process.pid}`, opts, log);
      const detector = await Detector.start({
        redisUrl: redis, rulePaths: opts.rules, log, windowMs: opts.windowMs, resolveAfterMs: opts.resolveAfter * 1000, blocker: blocking.blocker, model: modelOf(opts),
        maxIncidentsPerRule: opts.maxIncidentsPerRule, metrics,
      });
      onExit(log, async () => {
        await metricsServer?.close();
        await detector.stop();
        await blocking.close();
      });
    });

  addRedisOptions(detectorOptions(program.command('run')
    .description('run the whole service in one process: the sensor with its block enforcer, a detector, the alerter and a live view, on its own Redis unless one is given; with no --iface, on a demo lab of network namespaces with real attack and benign traffic')
    .option('-i, --iface <name>', 'interface to protect')
    .addOption(new Option('--mode <mode>', 'XDP attach mode').choices(['auto', 'native', 'generic']).default('auto'))
    .option('--redis-maxmemory <size>', `memory bound of the private redis-server, e.g. 512mb (default: $XDP_IDS_REDIS_MAXMEMORY, else ${DEFAULT_EMBEDDED_MAXMEMORY})`, memorySize)
    .option('--alerts <file>', 'alerts config (alerts/alerts.example.yaml); default: every alert as an email into --mailbox')
    .option('--mailbox <file>', 'mbox file for alerts when no --alerts is given (read it with mutt -f)', 'xdp-ids-alerts.mbox')
    .option('--allow-ssh-peers [ports]', 'never block the peers of established SSH sessions (port 22, or these comma-separated ports)', sshPorts)
    .option('--protect <cidr>', PROTECT_HELP, cidrList('--protect'))
    .option('--keep-attached', 'leave the XDP program attached (and enforcing blocks) on exit')
    .option('--dashboard-port <port>', 'port of the web dashboard on 127.0.0.1 (0: any free port); a one-time login link is printed', listenPort('--dashboard-port'), DEFAULT_API_PORT)
    .option('--no-dashboard', 'no web dashboard (nor control API)')
    .option('--log-file <file>', 'where the logs go (JSON lines, appended); warnings also show on the live view', 'xdp-ids.log')
    .addOption(new Option('--log-level <level>', 'log level (default: $XDP_IDS_LOG_LEVEL, else info)').choices(LOG_LEVELS))
    .addOption(metricsListenOption('run'))), RUN_REDIS_HELP)
    .action(async function (this: Command, opts) {
      // The view exists once the interface is known; warnings logged before are in the log file.
      let view: TopView | undefined;
      const log = logTo(opts.logFile, opts.logLevel, (line) => view?.warning(line));
      process.stdout.write(`xdp-ids: starting; logs in ${path.resolve(opts.logFile)}\n`);
      const stops: (() => Promise<void> | void)[] = [];
      const stopAll = async (): Promise<void> => {
        for (const stop of stops.splice(0).reverse()) await stop();
      };
      try {
        const registry = createRegistry('run');
        const metricsServer = await serveCommandMetrics(registry, 'run', opts.metricsListen, log);
        if (metricsServer) stops.push(() => metricsServer.close());
        const { urls: redis, controlFile } = await redisForParts(opts, log, stops);
        let demo: DemoLab | undefined;
        if (!opts.iface) {
          log.info('no --iface: starting the demo lab (network namespaces, real nmap/hping3/curl/iperf3 traffic)');
          demo = await startDemoLab();
          stops.push(() => demo!.stop());
        }
        const iface: string = opts.iface ?? demo!.iface;
        // The demo learns a model of its own lab (in a directory of its own: never one that
        // judges a real network), unless told which models to use.
        let learner: DemoModelLearner | undefined;
        let modelDir: string = opts.modelDir;
        if (demo && opts.model && this.getOptionValueSource('modelDir') === 'default') {
          const dir = modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-demo-models-'));
          stops.push(() => fs.rmSync(dir, { recursive: true, force: true }));
          const demoLearner = learner = new DemoModelLearner({ dir, exclude: new Set(demo.attackers), learnMs: DEMO_LEARN_MS, log: log.child({ part: 'demo-model' }) });
          stops.push(() => demoLearner.stop());
        }
        let sensor: Sensor | undefined;
        view = new TopView(process.stdout, `xdp-ids on ${iface}${demo ? ' (demo lab)' : ''}`, { blocks: () => sensor?.program.listBlocks() ?? [], incidents: true });
        if (controlFile) view.note(() => `console: XDP_IDS_REDIS_URL_FILE=${controlFile} xdp-ids status (or incidents list)`);
        if (learner) {
          const progress = learner;
          view.note(() => learnerLine(progress.state()));
        }
        const blocking = ledgerBlocker(redis.detector, `detector@${os.hostname()}`, opts, log.child({ part: 'blocker' }));
        stops.push(() => blocking.close());
        const alerter = opts.alerts
          ? await startAlerter({ redisUrl: redis.alerter, configPath: opts.alerts, log: log.child({ part: 'alerter' }), metrics: new AlerterMetrics(registry) })
          : await startAlerterWith(mailboxConfig(path.resolve(opts.mailbox)), { redisUrl: redis.alerter, log: log.child({ part: 'alerter' }), metrics: new AlerterMetrics(registry) });
        stops.push(() => alerter.stop());
        if (!opts.alerts) log.info({ mailbox: path.resolve(opts.mailbox) }, 'alerts go to a local mailbox (give --alerts for email and webhooks)');
        const detector = await Detector.start({
          redisUrl: redis.detector, rulePaths: opts.rules, log: log.child({ part: 'detector' }), windowMs: opts.windowMs, blocker: blocking.blocker,
          model: modelOf({ ...opts, modelDir }, learner && DEMO_MODEL_DUE_MS), onIncident: (e) => view?.incident(e), maxIncidentsPerRule: opts.maxIncidentsPerRule,
          metrics: new DetectorMetrics(registry),
        });
        stops.push(() => detector.stop());
        const sensorId = `${os.hostname()}/${iface}`;
        const status = new SensorStatusWriter(redis.sensor, log.child({ part: 'sensor-status' }));
        stops.push(() => status.close());
        const publisher = new QueuePublisher({ redisUrl: redis.sensor, sensorId, log: log.child({ part: 'publisher' }), also: learner ? [view, status, learner] : [view, status] });
        stops.push(() => publisher.close());
        const sensorMetrics = new SensorMetrics(registry);
        sensorMetrics.watchPublisher(publisher);
        const started = sensor = Sensor.start({ iface, sensorId, mode: opts.mode, windowMs: opts.windowMs, pin: demo ? false : undefined, protect: opts.protect, metrics: sensorMetrics },
          publisher, log.child({ part: 'sensor' }));
        stops.push(() => started.stop({ detach: !opts.keepAttached }));
        const enforcer = await startEnforcer({
          program: started.program, redisUrl: redis.sensor, sensorId, log: log.child({ part: 'enforcer' }), allow: { sshPeers: opts.allowSshPeers }, metrics: new EnforcerMetrics(registry),
        });
        stops.push(() => enforcer.stop());
        status.describe(started.description(), () => enforcer.ready);
        if (opts.dashboard) {
          const dashboard = await startLocalDashboard({ redisUrl: redis.control, port: opts.dashboardPort, tokens: loadTokens(), log: log.child({ part: 'api' }) });
          stops.push(() => dashboard.close());
          view.note(() => `dashboard: ${dashboard.loginLink()}  (signs in once; tokens of XDP_IDS_API_TOKENS work too)`);
        }
      } catch (err) {
        await stopAll();
        throw err;
      }
      onExit(log, stopAll);
    });
}
