/**
 * A detector process: consumes its share of the windows queue's partitions, runs the rules (hot
 * reloaded) over every sensor tick, and turns detections into incidents (in Redis, shared with
 * other detectors), gathers incidents into attacks, and sends alert events on the `alerts` queue
 * and block requests. Fast-path trips are evaluated at once against the source's counts so far,
 * so a blatant scan opens its incident before its window ends.
 */
import os from 'node:os';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { ALERT_EVENT_JOB_OPTIONS, ALERT_EVENT_VERSION, ALERTS_QUEUE, type AlertEvent, type BlockOutcome, type Incident, type IncidentEvent } from '../common/alert-events';
import type { Blocker } from '../common/block-requests';
import { ExceptionReporter } from '../common/exceptions';
import { connectRedis, type RedisTarget, type RedisClient } from '../common/redis';
import { RedisMemoryWatch } from '../common/redis-memory';
import type { SensorTick, SourceWindow } from '../common/sensor-tick';
import { PARTITIONS, partitionQueue, TickAssembler, validateJob, type WindowsJob } from '../common/windows-jobs';
import { BlockLedger } from '../blocking/ledger';
import { AttackStore } from './attacks';
import { AwaitingEvidence } from './awaiting-evidence';
import { EvidenceBuffer } from './evidence';
import { SourceTrust } from './source-trust';
import { IncidentStore, inputOf, type Transition } from './incidents';
import type { DetectorMetrics } from './metrics';
import { ModelLane, type ModelLaneOptions } from './model-lane';
import { MODEL_RULE_ID } from './model/scorer';
import { requeueOrphans } from './orphans';
import { PARTITION_LEASE_MS, PartitionOwner } from './partitions';
import { groupKey, parseIPv4 } from './rules/addresses';
import { RuleEngine, type Detection } from './rules/engine';
import { formatProblem } from './rules/problems';
import { RuleWatcher } from './rules/watcher';
import { RuleStatusPublisher } from './rules-status';
import { HeartbeatWriter } from '../common/heartbeat';

export interface DetectorOptions {
  /** The detector role's Redis (common/redis-roles.ts). */
  redisUrl: RedisTarget;
  rulePaths: string[];
  log: Logger;
  /** Unique per process; default host:pid. */
  id?: string;
  /** The sensors' window length. */
  windowMs?: number;
  resolveAfterMs?: number;
  updateEveryMs?: number;
  /** Open incidents per rule before new keys are folded into one overflow incident (default 500). */
  maxIncidentsPerRule?: number;
  partitions?: number;
  blocker?: Blocker;
  /** Run the anomaly model of this directory next to the rules (`xdp-ids model train --out DIR`). */
  model?: Omit<ModelLaneOptions, 'log' | 'onNotice'>;
  /**
   * Sees every incident event this detector makes; those of an attack that has already resolved
   * are not queued (the alerter has said its last word about it).
   */
  onIncident?: (event: IncidentEvent) => void;
  /** How often Redis' memory is compared with its maxmemory (`redis-memory-high`); default 30 s. */
  memoryCheckMs?: number;
  metrics?: DetectorMetrics;
}

export interface DetectorStats {
  jobs: number;
  ticks: number;
  windows: number;
  trips: number;
  detections: number;
  earlyDetections: number;
  incidentsOpened: number;
  alertsQueued: number;
  badJobs: number;
  partitions: number[];
}

/** Early detections remembered for deduplication; past this the memory starts over (a few repeats at worst). */
const EARLY_SEEN_MAX = 10_000;
/** Bounds the incidents waiting for a handshake; unverified blocks are few (their budget), so it is rarely reached. */
const AWAITING_EVIDENCE_MAX = 10_000;
/** How often the kernels' drop counts of attacks' blocked targets are sampled (the enforcers write them every 10 s). */
const DROP_SAMPLE_MS = 5000;

/** Until a blocker is configured, block requests are log lines. */
function loggingBlocker(log: Logger): Blocker {
  return {
    async request(req) {
      log.warn({ target: req.target, ttlMs: req.ttlMs, rule: req.ruleId, incident: req.incidentId }, 'block requested (no blocker configured)');
      return { status: 'pending', target: req.target, reason: 'no blocker configured' };
    },
    async limit(req) {
      log.warn({ target: req.target, traffic: req.traffic, perSecond: req.perSecond, rule: req.ruleId, incident: req.incidentId }, 'limit requested (no blocker configured)');
      return { status: 'pending', target: req.target, traffic: req.traffic, perSecond: req.perSecond, reason: 'no blocker configured' };
    },
  };
}

/** The address or prefix a block action covers: the detection's key widened to the action's scope. */
export function blockTarget(d: Detection): string | undefined {
  const scope = d.actions.block?.scope;
  if (!scope) return undefined;
  const address = d.key.split('/')[0];
  const key = groupKey(scope, address, parseIPv4(address));
  if (key === undefined) return undefined;
  return key.includes('/') ? key : `${key}/${key.includes(':') ? 128 : 32}`;
}

/** A detector's heartbeat (common/heartbeat.ts). */
export interface DetectorState {
  partitions: number[];
  /** The anomaly model's id, or null when the rules run alone. */
  model: string | null;
  rulesVersion: string | null;
  /** The newest tick evaluated: its window's end, and how long after it it was evaluated. */
  newestTickMs?: number;
  lagSeconds?: number;
}

export class Detector {
  readonly id: string;
  private readonly engine: RuleEngine;
  private readonly watcher: RuleWatcher;
  private readonly incidents: IncidentStore;
  private readonly attacks: AttackStore;
  private readonly alerts: Queue<AlertEvent>;
  private readonly exceptions: ExceptionReporter;
  private readonly owner: PartitionOwner;
  private readonly memory: RedisMemoryWatch;
  private readonly ruleStatus: RuleStatusPublisher;
  private readonly heartbeat: HeartbeatWriter<DetectorState>;
  /** The newest tick evaluated: its window's end, and how long after it the evaluation finished. */
  private newest?: { tickEndMs: number; lagSeconds: number };
  private readonly workers = new Map<number, { worker: Worker<WindowsJob>; connection: RedisClient }>();
  private readonly assembler = new TickAssembler();
  private readonly evidence = new EvidenceBuffer();
  private readonly trust = new SourceTrust();
  private readonly earlySeen = new Set<string>();
  private readonly blocker: Blocker;
  private model?: ModelLane;
  private resolver?: NodeJS.Timeout;
  private stopped = false;
  /** Incidents whose source got a short block or none on unverified evidence: a handshake during them earns the rule's block. */
  private readonly awaitingEvidence = new AwaitingEvidence(AWAITING_EVIDENCE_MAX);
  private dropSampler?: NodeJS.Timeout;
  private readonly counts: Omit<DetectorStats, 'partitions'> = {
    jobs: 0, ticks: 0, windows: 0, trips: 0, detections: 0, earlyDetections: 0, incidentsOpened: 0, alertsQueued: 0, badJobs: 0,
  };

  private constructor(private readonly opts: DetectorOptions, private readonly redis: RedisClient) {
    this.id = opts.id ?? `${os.hostname()}:${process.pid}`;
    this.watcher = new RuleWatcher(opts.rulePaths);
    const loaded = this.watcher.start();
    if (!loaded.ruleSet) {
      this.watcher.close();
      throw new Error(`the rules have errors:\n${loaded.problems.map(formatProblem).join('\n')}`);
    }
    this.engine = new RuleEngine(loaded.ruleSet, { windowMs: opts.windowMs });
    this.incidents = new IncidentStore(redis, { resolveAfterMs: opts.resolveAfterMs, updateEveryMs: opts.updateEveryMs, maxOpenPerRule: opts.maxIncidentsPerRule });
    const ledger = new BlockLedger(redis);
    this.attacks = new AttackStore(redis, this.incidents, {
      // A rule names what the anomaly model can only call unusual: every rule subsumes the model's incident of its key.
      inhibits: (ruleId) => {
        const rule = this.watcher.ruleSet?.rules.find((r) => r.id === ruleId);
        return rule ? [...rule.inhibits, MODEL_RULE_ID] : [];
      },
      dropped: async () => {
        const total = new Map<string, number>();
        for (const sensor of await ledger.sensorStates()) for (const [target, n] of Object.entries(sensor.drops)) total.set(target, (total.get(target) ?? 0) + n);
        return total;
      },
    });
    this.alerts = new Queue(ALERTS_QUEUE, { connection: redis });
    // Redis errors reach the workers too, which log them; unheard here, BullMQ would print each one.
    this.alerts.on('error', () => undefined);
    this.exceptions = new ExceptionReporter(this.alerts, `detector@${this.id}`, opts.log);
    this.blocker = opts.blocker ?? loggingBlocker(opts.log);
    this.memory = new RedisMemoryWatch(redis, this.exceptions, { log: opts.log, everyMs: opts.memoryCheckMs });
    this.ruleStatus = new RuleStatusPublisher(redis, this.id);
    void this.ruleStatus.loaded(loaded.ruleSet);
    this.watcher.on('reloaded', ({ ruleSet, warnings }) => {
      this.engine.setRules(ruleSet);
      void this.ruleStatus.loaded(ruleSet);
      opts.log.info({ rules: ruleSet.rules.length, version: ruleSet.version, warnings: warnings.map(formatProblem) }, 'rules reloaded');
    });
    this.watcher.on('rejected', ({ problems, kept }) => {
      void this.ruleStatus.rejected(problems, kept);
      void this.exceptions.report('rule-reload-failed', 'high', `rule files rejected; the last good set (${kept?.version ?? 'none'}) stays active:\n${problems.map(formatProblem).join('\n')}`,
        { problems: problems.map(formatProblem), keptVersion: kept?.version });
    });
    this.heartbeat = new HeartbeatWriter(redis, 'detector', this.id, () => this.state());
    this.owner = new PartitionOwner(redis, this.id, {
      partitions: opts.partitions ?? PARTITIONS, log: opts.log,
      acquire: async (p) => this.consume(p),
      release: async (p) => {
        const consumer = this.workers.get(p);
        this.workers.delete(p);
        await consumer?.worker.close();
        consumer?.connection.disconnect();
      },
    });
  }

  static async start(opts: DetectorOptions): Promise<Detector> {
    const redis = connectRedis(opts.redisUrl, { enableAutoPipelining: true });
    let detector: Detector;
    try {
      detector = new Detector(opts, redis);
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    if (opts.model) {
      detector.model = await ModelLane.start({
        ...opts.model, log: opts.log,
        onNotice: (n) => void detector.exceptions.report(n.code, 'medium', n.message, { dir: n.dir }),
      });
    }
    await detector.owner.start();
    detector.scheduleResolver();
    detector.dropSampler = setInterval(() => detector.attacks.sampleDrops().catch((err: Error) => opts.log.warn({ err }, 'sampling drops failed')), DROP_SAMPLE_MS);
    detector.memory.start();
    opts.metrics?.watch(() => ({ partitions: detector.owner.partitions.length, modelLoaded: detector.model?.modelId !== undefined }));
    detector.ruleStatus.start();
    detector.heartbeat.start();
    opts.log.info({ id: detector.id, partitions: detector.owner.partitions, model: detector.model?.modelId ?? null }, 'detector started');
    return detector;
  }

  /** What `xdp-ids status` shows of this detector. */
  private state(): DetectorState {
    return {
      partitions: this.owner.partitions, model: this.model?.modelId ?? null, rulesVersion: this.watcher.ruleSet?.version ?? null,
      ...(this.newest ? { newestTickMs: this.newest.tickEndMs, lagSeconds: this.newest.lagSeconds } : {}),
    };
  }

  stats(): DetectorStats {
    return { ...this.counts, partitions: this.owner.partitions };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.resolver);
    clearInterval(this.dropSampler);
    this.memory.stop();
    await this.ruleStatus.stop();
    await this.heartbeat.stop();
    this.watcher.close();
    this.model?.close();
    await this.owner.stop();
    await this.alerts.close();
    this.redis.disconnect();
  }

  private consume(partition: number): void {
    const connection = connectRedis(this.opts.redisUrl);
    // A job's lock lasts as long as a partition's lease: a detector that lost one has lost the other.
    const worker = new Worker<WindowsJob>(partitionQueue(partition), (job) => this.process(job), {
      connection, concurrency: 1, autorun: false, lockDuration: PARTITION_LEASE_MS, stalledInterval: PARTITION_LEASE_MS,
    });
    worker.on('failed', (job, err) => this.opts.log.error({ err, job: job?.id }, 'windows job failed'));
    worker.on('error', (err) => this.opts.log.warn({ err }, 'windows worker error'));
    this.workers.set(partition, { worker, connection });
    void this.takeOver(partition, worker, connection);
  }

  /** Consumes a partition once the windows a stopped detector left in it are first in line again. */
  private async takeOver(partition: number, worker: Worker<WindowsJob>, connection: RedisClient): Promise<void> {
    const queue = new Queue<WindowsJob>(partitionQueue(partition), { connection });
    const released = (): boolean => this.workers.get(partition)?.worker !== worker;
    try {
      const requeued = await requeueOrphans(queue, connection, 2 * PARTITION_LEASE_MS, released);
      if (requeued.length) this.opts.log.info({ partition, jobs: requeued }, 'windows a stopped detector was evaluating are first in line again');
    } catch (err) {
      this.opts.log.warn({ err, partition }, 'could not look for windows a stopped detector left; BullMQ\'s stalled checks will return them');
    } finally {
      await queue.close();
    }
    if (!released()) worker.run().catch((err: Error) => this.opts.log.error({ err, partition }, 'windows worker stopped'));
  }

  /** Whether a rule (as now loaded) wants alerts; the model's incidents always do. */
  private wantsAlerts(ruleId: string): boolean {
    return this.watcher.ruleSet?.rules.find((r) => r.id === ruleId)?.actions.alert ?? true;
  }

  private async process(job: Job<WindowsJob>): Promise<void> {
    this.counts.jobs++;
    let data: WindowsJob;
    try {
      data = validateJob(job.data);
    } catch (err) {
      // A job this detector cannot read is kept (failed) for inspection, never retried.
      this.counts.badJobs++;
      this.opts.metrics?.badJobs.inc();
      throw new UnrecoverableError((err as Error).message);
    }
    if (data.type === 'trip') {
      this.counts.trips++;
      this.opts.metrics?.trips.inc();
      this.evidence.add(data.trip.packet);
      if (data.trip.sofar) {
        this.trust.observe(data.trip.sofar);
        // On the sensor's clock, like the windows: the trip may have waited in the queue.
        const early = this.engine.preview(data.trip.sensor, data.trip.window, data.trip.sofar, data.trip.packet.tsMs).filter((d) => this.firstEarly(d));
        this.counts.earlyDetections += early.length;
        await this.handle(early);
      }
      return;
    }
    for (const { tick, samples, complete } of this.assembler.add(data)) {
      if (!complete) this.opts.log.warn({ sensor: tick.sensor, window: tick.window }, 'tick parts missing; evaluating what arrived');
      for (const s of samples) this.evidence.add(s);
      await this.evaluate(tick);
    }
  }

  /**
   * A sensor follows a tripped source with more trips while its counts grow; a rule that already
   * held early in a window is one detection, not one per follow-up.
   */
  private firstEarly(d: Detection): boolean {
    const id = `${d.ruleId}|${d.sensor}|${d.key}|${d.window}`;
    if (this.earlySeen.has(id)) return false;
    if (this.earlySeen.size >= EARLY_SEEN_MAX) this.earlySeen.clear();
    this.earlySeen.add(id);
    return true;
  }

  private async evaluate(tick: SensorTick): Promise<void> {
    this.counts.ticks++;
    const windows = tick.sources.length + tick.destinations.length;
    this.counts.windows += windows;
    for (const w of tick.sources) this.trust.observe(w);
    await this.upgradeVerified(tick.sources);
    const startedNs = process.hrtime.bigint();
    const detections = this.engine.process(tick);
    const ruleSeconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
    const modelDetections = this.model?.detect(tick) ?? [];
    const scored = this.model?.lastScores();
    if (scored) this.opts.metrics?.modelScores(scored.scores, scored.thresholds);
    await this.handle([...detections, ...modelDetections]);
    if (!this.newest || tick.endMs >= this.newest.tickEndMs) this.newest = { tickEndMs: tick.endMs, lagSeconds: Math.max(0, (Date.now() - tick.endMs) / 1000) };
    this.opts.metrics?.evaluated(tick.endMs, ruleSeconds, windows);
  }

  private async handle(detections: Detection[]): Promise<void> {
    this.counts.detections += detections.length;
    this.opts.metrics?.detected(detections.map((d) => d.ruleId));
    await Promise.all(detections.map(async (d) => {
      const transition = await this.incidents.record(inputOf(d), this.evidence.of(d.key));
      if (!transition) return;
      this.opts.metrics?.transition(d.ruleId, transition.phase);
      if (transition.phase === 'opened') this.counts.incidentsOpened++;
      if (transition.incident.overflow) {
        // It stands for many keys, most of them likely forged: told about, never answered with a block or a limit.
        if (transition.phase === 'opened') this.reportCapReached(transition.incident);
      } else if (transition.phase === 'opened' || (transition.phase === 'updated' && d.actions.limit)) {
        // A limited destination still sees (and counts) the flood, so its incident stays open: each update renews the limit.
        transition.incident = await this.respond(d, transition.incident);
      }
      if (d.actions.alert) await this.announce(transition);
    }));
  }

  /**
   * A source blocked on unverified evidence that completes a handshake while its incident goes on
   * (a connect scan reaching an open port in the moments before its block reached the kernel)
   * gets the block its rule asks for, whether or not the rule holds again after the short block.
   */
  private async upgradeVerified(windows: readonly SourceWindow[]): Promise<void> {
    const upgrades = windows.filter((w) => w.handshakes > 0).flatMap((w) => this.awaitingEvidence.of(w.src))
      .filter(({ detection }) => this.evidenceOf(detection) === 'verified');
    await Promise.all(upgrades.map(async ({ detection, incident }) => {
      this.awaitingEvidence.delete(incident.key, incident.ruleId);
      await this.respond(detection, incident);
    }));
  }

  /**
   * What the rule asks for when its incident opens: a block of the source (as long as its
   * evidence allows), or a limit on the destination.
   */
  private async respond(d: Detection, incident: Incident): Promise<Incident> {
    const target = blockTarget(d) ?? (d.actions.limit ? d.key : undefined);
    if (!target) return incident;
    const req = {
      target, origin: d.ruleId === MODEL_RULE_ID ? 'model' as const : 'rule' as const, ruleId: d.ruleId, incidentId: incident.id, title: d.title, severity: d.severity,
      sensor: d.sensor, key: d.key, requestedMs: Date.now(),
    };
    let outcome: BlockOutcome;
    try {
      // A prefix key stands for addresses that were not each verified.
      const evidence = d.groupBy === 'src' ? this.evidenceOf(d) : 'unverified';
      outcome = d.actions.block
        ? await this.blocker.request({ ...req, ttlMs: d.actions.block.ttlMs, evidence })
        : await this.blocker.limit({ ...req, ttlMs: d.actions.limit!.ttlMs, traffic: d.actions.limit!.traffic, perSecond: d.actions.limit!.perSecond });
    } catch (err) {
      this.opts.log.error({ err, target }, 'block request failed');
      outcome = { status: 'refused', target, reason: `block request failed: ${(err as Error).message}` };
    }
    const answered = (await this.incidents.setBlock(d.ruleId, d.key, outcome)) ?? { ...incident, block: outcome };
    // Blocked short, or alert-only (blocked once already, or a partner prefix): a handshake during the incident still earns the rule's block.
    if (d.actions.block && d.groupBy === 'src' && outcome.evidence === 'unverified' && (outcome.status === 'blocked' || outcome.status === 'alert-only')) {
      this.awaitingEvidence.add(d, answered);
    }
    return answered;
  }

  /**
   * Evidence from the attack's own time: a handshake since the start of the sensor window that
   * detected it, on the sensor's clock. Not the detector's clock: a detector working through a
   * backlog (after a failover, a takeover, a burst) reads windows seconds after they ended. Not
   * the rule window's start either: that reaches seconds back, to before the attack.
   */
  private evidenceOf(d: Detection): 'verified' | 'unverified' {
    return this.trust.evidenceOf(d.key, d.lastWindowMs - (this.opts.windowMs ?? 1000));
  }

  /** Once per overflow incident, so once per rule until its flood of new keys has been quiet for the resolve time. */
  private reportCapReached(overflow: Incident): void {
    const max = this.incidents.maxOpenPerRule;
    void this.exceptions.report('incident-cap-reached', 'high',
      `rule ${overflow.ruleId} has ${max} open incidents, its maximum: detections of further keys are folded into incident ${overflow.id} (key ${overflow.key}), which never blocks`,
      { rule: overflow.ruleId, maxOpen: max, incident: overflow.id }, overflow.ruleId);
  }

  /**
   * Queues the transition with the incident's attack. A resolution belongs to the attack the
   * incident joined; one that joined none (announced by a detector from before attacks) goes
   * as an attack of its own.
   */
  private async announce(t: Transition): Promise<void> {
    const { incident } = t;
    const attack = t.phase !== 'resolved' ? await this.attacks.join(incident)
      : incident.attackId ? await this.attacks.settle({ ...incident, attackId: incident.attackId }) : undefined;
    const id = `${incident.id}|${t.phase}|${t.phase === 'updated' ? incident.detections : 0}`;
    const event: IncidentEvent = {
      v: ALERT_EVENT_VERSION, id, atMs: Date.now(), kind: 'incident', phase: t.phase,
      incident: attack ? { ...incident, attackId: attack.id } : incident, ...(attack ? { attack } : {}),
    };
    this.opts.onIncident?.(event);
    if (incident.attackId && !attack) return;
    await this.alerts.add(event.kind, event, { ...ALERT_EVENT_JOB_OPTIONS, jobId: id });
    this.counts.alertsQueued++;
    this.opts.metrics?.alertsQueued.inc();
  }

  private scheduleResolver(): void {
    this.resolver = setTimeout(async () => {
      try {
        for (const t of [...await this.incidents.resolveRequested(), ...await this.incidents.resolveDue()]) {
          this.opts.log.info({ incident: t.incident.id, rule: t.incident.ruleId, key: t.incident.key, by: t.incident.resolvedBy }, 'incident resolved');
          this.opts.metrics?.transition(t.incident.ruleId, t.phase);
          this.awaitingEvidence.delete(t.incident.key, t.incident.ruleId);
          if (this.wantsAlerts(t.incident.ruleId)) await this.announce(t);
        }
      } catch (err) {
        this.opts.log.warn({ err }, 'resolving incidents failed');
      }
      // A stop during this run cleared nothing: the next run must not be scheduled.
      if (!this.stopped) this.scheduleResolver();
    }, 1000);
  }
}
