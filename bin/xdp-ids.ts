#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createLogger } from '../common/log';
import { startDemoLab, type DemoLab } from '../lab/demo';
import { BpfObject } from '../native/bpf';
import { Sensor } from '../sensor/daemon';
import { PIN_ROOT } from '../sensor/kernel/program';
import { TopView } from '../sensor/top-view';
import { QueuePublisher } from '../sensor/publisher';
import { SensorStatusWriter } from '../sensor/status';
import { addRedisOptions, redisConnectionOf } from '../common/redis-config';
import { registerRulesCommands } from '../detector/rules/cli';
import { cidrList, PROTECT_HELP, positiveInt, sshPorts } from './arguments';
import { registerServiceCommands } from './service';
import { registerBlockingCommands } from '../blocking/cli';
import { startEnforcer } from '../blocking/enforcer';
import { EnforcerMetrics } from '../blocking/enforcer-metrics';
import { createRegistry, metricsListenOption, serveCommandMetrics } from '../common/metrics';
import { SensorMetrics } from '../sensor/metrics';
import { registerAlertsCommands } from '../alerts/cli';
import { registerModelCommands } from '../detector/model/cli';
import { registerRedisCommands } from './redis';
import { registerStatusCommand } from './status';
import { registerIncidentsCommands } from '../detector/incidents-cli';
import { EXIT, exitCodeOf } from './exit-codes';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Whether commander has already told the user (a usage error), so that the error is not said twice. */
let toldUser = false;
// Set before the subcommands exist, which inherit both.
const program = new Command('xdp-ids')
  .description('Network intrusion and anomaly detection at XDP')
  .showHelpAfterError()
  .exitOverride()
  .configureOutput({ outputError: (text, write) => { toldUser = true; write(text); } });

const SENSOR_REDIS_HELP = 'publish windows to the detectors and enforce the block ledger of this Redis (the sensor role\'s URL; without a password here; default: $XDP_IDS_REDIS_URL; none: only the live view)';

addRedisOptions(program.command('sensor')
  .description('attach the XDP sensor to an interface and show the top sources live; with no --iface, runs a demo lab of network namespaces with real benign and attack traffic')
  .option('-i, --iface <name>', 'interface to watch')
  .addOption(new Option('--mode <mode>', 'XDP attach mode').choices(['auto', 'native', 'generic']).default('auto'))
  .option('--window-ms <ms>', 'window length', positiveInt('--window-ms', 60_000), 1000)
  .option('--max-sources <n>', 'sources tracked in the kernel (256 bytes each)', positiveInt('--max-sources', 16_777_216))
  .option('--trip-syn <n>', 'SYNs per source per window that reach user space at once', positiveInt('--trip-syn', 1e9), 200)
  .option('--trip-ports <n>', 'distinct ports per source per window that trip', positiveInt('--trip-ports', 1400), 100)
  .option('--keep-attached', 'leave the program attached (and enforcing blocks) on exit')
  .option('--sensor-id <id>', 'name of this sensor in incidents (default: hostname/interface)')
  .option('--allow-ssh-peers [ports]', 'never block the peers of established SSH sessions (port 22, or these comma-separated ports)', sshPorts)
  .option('--protect <cidr>', PROTECT_HELP, cidrList('--protect'))
  .addOption(metricsListenOption('sensor')), SENSOR_REDIS_HELP)
  .action(async (opts) => {
    const log = createLogger('sensor');
    const redis = redisConnectionOf(opts, log);
    const registry = createRegistry('sensor');
    const metrics = { sensor: new SensorMetrics(registry), enforcer: new EnforcerMetrics(registry) };
    const metricsServer = await serveCommandMetrics(registry, 'sensor', opts.metricsListen, log);
    let demo: DemoLab | undefined;
    if (!opts.iface) {
      log.info('no --iface: starting the demo lab (network namespaces, real nmap/hping3/curl/iperf3 traffic)');
      demo = await startDemoLab();
    }
    const iface: string = opts.iface ?? demo!.iface;
    const sensorId: string = opts.sensorId ?? `${os.hostname()}/${iface}`;
    let sensor: Sensor | undefined;
    const view = new TopView(process.stdout, `xdp-ids sensor on ${iface}${demo ? ' (demo lab)' : ''}`, { blocks: () => sensor?.program.listBlocks() ?? [] });
    const status = redis ? new SensorStatusWriter(redis, log) : undefined;
    const publisher = redis ? new QueuePublisher({ redisUrl: redis, sensorId, log, also: [view, status!] }) : undefined;
    if (publisher) metrics.sensor.watchPublisher(publisher);
    let started: Sensor;
    try {
      started = sensor = Sensor.start({
        iface, sensorId, mode: opts.mode, windowMs: opts.windowMs, sizes: { sources: opts.maxSources },
        trip: { syn: opts.tripSyn, ports: opts.tripPorts }, protect: opts.protect, metrics: metrics.sensor,
      }, publisher ?? view, log);
    } catch (err) {
      await publisher?.close();
      await status?.close();
      await demo?.stop();
      await metricsServer?.close();
      throw err;
    }
    // With a Redis, the sensor also enforces the fleet's block ledger, and reports ready once its kernel holds it.
    const enforcer = redis ? await startEnforcer({ program: started.program, redisUrl: redis, sensorId, log, allow: { sshPeers: opts.allowSshPeers }, metrics: metrics.enforcer }) : undefined;
    status?.describe(started.description(), () => enforcer?.ready ?? false);
    const shutdown = async (): Promise<void> => {
      await metricsServer?.close();
      await enforcer?.stop();
      started.stop({ detach: !opts.keepAttached });
      await publisher?.close();
      await status?.close();
      if (demo) {
        await demo.stop();
        fs.rmSync(path.join(PIN_ROOT, iface), { recursive: true, force: true });
      }
      process.exit(0);
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });

program.command('detach')
  .description('remove the XDP program from an interface (also after a crash) and optionally its pinned maps')
  .requiredOption('-i, --iface <name>', 'interface')
  .option('--unpin', `also remove ${PIN_ROOT}/<iface> (forgets counters and blocks)`)
  .action((opts) => {
    const ifindexFile = `/sys/class/net/${opts.iface}/ifindex`;
    if (!/^[\w.:@-]{1,15}$/.test(opts.iface) || !fs.existsSync(ifindexFile)) throw new InvalidArgumentError(`no such network interface: ${opts.iface}`);
    BpfObject.detachXdp(Number(fs.readFileSync(ifindexFile, 'utf8')));
    if (opts.unpin) fs.rmSync(path.join(PIN_ROOT, opts.iface), { recursive: true, force: true });
  });

registerRulesCommands(program);
registerServiceCommands(program);
registerBlockingCommands(program);
registerAlertsCommands(program);
registerModelCommands(program);
registerRedisCommands(program);
registerIncidentsCommands(program);
registerStatusCommand(program);

program.parseAsync().catch((err: Error) => {
  const code = exitCodeOf(err);
  // Help shown as an error (a command group without its subcommand) has said all there is.
  const shown = toldUser || (err instanceof CommanderError && err.code === 'commander.help');
  if (code !== EXIT.ok && !shown && err.message) process.stderr.write(`xdp-ids: ${err.message}\n`);
  process.exit(code);
});
