/**
 * The whole pipeline in this process, wired as `xdp-ids run` wires it (bin/service.ts): a private
 * redis-server, the sensor on the lab's interface with its block enforcer, a detector with the
 * given rules that blocks through the ledger (host allowlist, budget and breaker as in production),
 * and the alerter with the built-in mailbox configuration that `run` uses without --alerts. Two
 * differences, both for the eval: the detector resolves incidents after `resolveAfterMs` of quiet
 * instead of 60 s, and it runs no anomaly model (`npm run eval:model` measures that).
 */
import type { Logger } from 'pino';
import type { IncidentEvent } from '../../common/alert-events';
import type { SensorSink } from '../../common/sensor-tick';
import { connectRedis, startEmbeddedRedis, type RedisClient } from '../../common/redis';
import { mailboxConfig } from '../../alerts/config';
import { startAlerterWith } from '../../alerts/service';
import { LedgerBlocker } from '../../blocking/blocker';
import { startEnforcer } from '../../blocking/enforcer';
import { BlockLedger } from '../../blocking/ledger';
import { LimitLedger } from '../../blocking/limits';
import { LedgerMaintenance } from '../../blocking/maintenance';
import { AlertQueueNotices } from '../../blocking/notices';
import { Detector } from '../../detector/service';
import { Sensor } from '../../sensor/daemon';
import { QueuePublisher } from '../../sensor/publisher';
import type { XdpIdsProgram } from '../../sensor/kernel/program';

export interface PipelineOptions {
  iface: string;
  rulePaths: string[];
  resolveAfterMs: number;
  mailbox: string;
  log: Logger;
  onIncident: (event: IncidentEvent) => void;
  /** See every sensor tick, trip and sample too. */
  sinks: SensorSink[];
}

export interface Pipeline {
  redis: RedisClient;
  /** Where `redis` is, for connections of one's own (a subscriber). */
  redisUrl: string;
  program: XdpIdsProgram;
  detector: Detector;
  ledger: BlockLedger;
  limits: LimitLedger;
  /** Whether the sensor's windows still reach Redis (a stalled publisher starves the detector). */
  publisherStats(): ReturnType<QueuePublisher['stats']>;
  stop(): Promise<void>;
}

const WINDOW_MS = 1000;

export async function startPipeline(opts: PipelineOptions): Promise<Pipeline> {
  const stops: (() => Promise<void> | void)[] = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.splice(0).reverse()) {
      try {
        await s();
      } catch (err) {
        opts.log.warn({ err }, 'stopping a part of the pipeline failed');
      }
    }
  };
  try {
    const server = await startEmbeddedRedis();
    stops.push(() => server.stop());
    const redis = connectRedis(server.url);
    stops.push(() => redis.disconnect());
    const notices = new AlertQueueNotices(redis);
    stops.push(() => notices.close());
    const ledger = new BlockLedger(redis);
    const blocker = new LedgerBlocker(ledger, { component: 'detector@eval' }, notices, opts.log.child({ part: 'blocker' }));
    const maintenance = new LedgerMaintenance(ledger, notices, opts.log.child({ part: 'ledger' })).start();
    stops.push(() => maintenance.stop());
    const alerter = await startAlerterWith(mailboxConfig(opts.mailbox), { redisUrl: server.url, log: opts.log.child({ part: 'alerter' }) });
    stops.push(() => alerter.stop());
    const detector = await Detector.start({
      redisUrl: server.url, rulePaths: opts.rulePaths, log: opts.log.child({ part: 'detector' }), windowMs: WINDOW_MS,
      resolveAfterMs: opts.resolveAfterMs, blocker, onIncident: opts.onIncident,
    });
    stops.push(() => detector.stop());
    const sensorId = `eval/${opts.iface}`;
    // At debug level the publisher says why a job could not be sent: the one clue when the detector starves.
    const publisher = new QueuePublisher({ redisUrl: server.url, sensorId, log: opts.log.child({ part: 'publisher' }, { level: 'debug' }), also: opts.sinks });
    stops.push(() => publisher.close());
    const sensor = Sensor.start({ iface: opts.iface, sensorId, windowMs: WINDOW_MS, pin: false }, publisher, opts.log.child({ part: 'sensor' }));
    stops.push(() => sensor.stop());
    const enforcer = await startEnforcer({ program: sensor.program, redisUrl: server.url, sensorId, log: opts.log.child({ part: 'enforcer' }) });
    stops.push(() => enforcer.stop());
    return { redis, redisUrl: server.url, program: sensor.program, detector, ledger, limits: new LimitLedger(redis), publisherStats: () => publisher.stats(), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
