/**
 * Runs the detection eval: builds the lab (xiev, 198.18.40.0/24, fd00:18:28::/64), starts the
 * whole pipeline on it, plays the cases one after the other, and hands back what happened for
 * lab/eval/verdicts.ts to judge. Traffic never overlaps; waiting does: while one case's response
 * settles (its detections, blocks, first drops), the next case already runs, from other addresses.
 * After settling, a case's blocks and limits are recorded and lifted. At the end the harness waits
 * (bounded) until every incident has resolved and its resolution has reached the mailbox. The lab,
 * its routing rules and the temporary files go on every exit, Ctrl-C included.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { NetnsLab, type LabHost } from '../netns';
import { planAddresses, ProtectedAddresses, type CaseAddresses } from './addresses';
import { ArrivalCounter, type Arrivals } from './arrivals';
import { writeCapture, type Capture } from './captures';
import { DEFAULT_SETTLE_TICKS, type EvalCase } from './cases';
import { incidentIdsOf, MailboxReader, type MailboxMessage } from './mailbox';
import { ResponseObserver } from './observer';
import { startPipeline, type Pipeline } from './pipeline';
import { runTraffic, WEB_PORT, type TrafficRun } from './run-traffic';
import { belongsTo, scopeOf, type CaseScope } from './verdicts';

export const LAB_NAME = 'xiev';
export const LAB_SUBNET = 40;

export interface EvalOptions {
  cases: EvalCase[];
  rulePaths: string[];
  resolveAfterMs: number;
  /** How long to wait at the end for incidents to resolve and their messages to arrive. */
  drainMs: number;
  log: Logger;
  /** One line per step, for the operator (stderr). */
  progress: (line: string) => void;
  /** Where to keep the alerts' mbox (it lives in a temporary directory otherwise). */
  keepMailboxAs?: string;
}

export interface CaseRun {
  case: EvalCase;
  scope: CaseScope;
  traffic?: TrafficRun;
  error?: string;
  arrivals: Arrivals;
  /** Packets the kernel saw during the traffic from any source, and the most in one window (for forged random sources). */
  global: { packets: number; peakPerWindow: number };
  /** Blocks and limits lifted after settling. */
  lifted: string[];
}

export interface EvalRun {
  runs: CaseRun[];
  observer: ResponseObserver;
  messages: MailboxMessage[];
  /** Incidents still open when the drain gave up. */
  unresolved: number;
  startedMs: number;
  endedMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves after the detector has evaluated `n` more sensor ticks (bounded: a stalled pipeline is an error). */
async function detectorTicks(pipeline: Pipeline, n: number): Promise<void> {
  const target = pipeline.detector.stats().ticks + n;
  const deadline = Date.now() + n * 1000 + 30_000;
  while (pipeline.detector.stats().ticks < target) {
    if (Date.now() > deadline) {
      const p = pipeline.publisherStats();
      throw new Error(`the detector got no sensor window for 30 s (publisher: ${p.connected ? 'connected' : 'not connected'}, ${p.buffered} jobs waiting, ${p.dropped} dropped)`);
    }
    await sleep(100);
  }
}

export async function runEval(opts: EvalOptions): Promise<EvalRun> {
  const startedMs = Date.now();
  const lab = new NetnsLab(LAB_NAME, LAB_SUBNET);
  const plan = planAddresses(lab, opts.cases);
  ProtectedAddresses.removeRules(plan.map((a) => a.target));
  lab.create();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-eval-'));
  let pipeline: Pipeline | undefined;
  const observer = new ResponseObserver();
  let protectedAddresses: ProtectedAddresses | undefined;
  let tornDown = false;
  const teardown = async (): Promise<void> => {
    if (tornDown) return;
    tornDown = true;
    await observer.stop().catch(() => undefined);
    await pipeline?.stop();
    protectedAddresses?.removeAll();
    lab.destroy();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  const interrupted = (): void => {
    opts.progress('interrupted: removing the lab');
    void teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    protectedAddresses = new ProtectedAddresses(lab);
    for (const a of plan) protectedAddresses.add(a.target);
    const hosts = plan.map((a, i) => lab.addHost(`c${i}`, a.hostOctet));
    const ifaceMac = fs.readFileSync(`/sys/class/net/${lab.iface}/address`, 'utf8').trim();
    const captures = startCaptures(opts.cases, plan, hosts, ifaceMac, tmp, opts.log);
    const mailbox = path.join(tmp, 'alerts.mbox');
    const arrivals = new ArrivalCounter();
    pipeline = await startPipeline({
      iface: lab.iface, rulePaths: opts.rulePaths, resolveAfterMs: opts.resolveAfterMs, mailbox, log: opts.log,
      onIncident: observer.onIncident, sinks: [arrivals],
    });
    await observer.start(pipeline);
    await detectorTicks(pipeline, 2);
    opts.progress(`lab ${lab.iface} up with ${hosts.length} hosts; pipeline running (detector resolves after ${opts.resolveAfterMs / 1000} s)`);

    // Every case's scope from the start: an address of a case that has not run yet is still its own.
    const scopes = opts.cases.map((c, i) => scopeOf(c, plan[i], hosts[i], targetOf(c, plan[i], lab), Infinity));
    const runs: CaseRun[] = [];
    const settling: Promise<void>[] = [];
    const randomSettled: Promise<void>[] = [];
    for (const [i, c] of opts.cases.entries()) {
      // Forged random sources are told apart by time only: one such case at a time.
      if (scopes[i].randomSources) await Promise.all(randomSettled);
      if (c.exclusive) await Promise.all(settling);
      const run = await runCase(arrivals, c, plan[i], hosts[i], scopes[i], lab, ifaceMac, captures[i], opts.progress);
      runs.push(run);
      const settled = settle(pipeline, observer, arrivals, run, scopes).catch((err: Error) => {
        run.error ??= `settling failed: ${err.message}`;
      });
      settling.push(settled);
      if (scopes[i].randomSources) randomSettled.push(settled);
      await arrivals.nextTick();
    }
    await Promise.all(settling);
    const reader = new MailboxReader(mailbox);
    const unresolved = await drain(observer, reader, opts.drainMs, opts.progress);
    const messages = await reader.read();
    if (opts.keepMailboxAs && fs.existsSync(mailbox)) fs.copyFileSync(mailbox, opts.keepMailboxAs);
    await teardown();
    return { runs, observer, messages, unresolved, startedMs, endedMs: Date.now() };
  } finally {
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    await teardown();
  }
}

/** Writes the replay cases' pcaps in the background, one at a time (the pipeline needs the other core). */
function startCaptures(cases: EvalCase[], plan: CaseAddresses[], hosts: LabHost[], dstMac: string, dir: string, log: Logger): (() => Promise<Capture>)[] {
  let chain: Promise<unknown> = Promise.resolve();
  return cases.map((c, i) => {
    const t = c.traffic;
    if (t.tool !== 'replay') return () => Promise.reject(new Error(`${c.id} has no capture`));
    const srcMac = hostMac(hosts[i]);
    const written = chain.then(() => writeCapture({
      kind: t.capture, dir, dstIp: plan[i].target, dstMac, srcMac, sources: plan[i].capturePrefix!, count: t.count, dstPort: WEB_PORT, seed: i + 1,
    }));
    chain = written.catch((err: Error) => log.warn({ err, case: c.id }, 'writing a capture failed'));
    return () => written;
  });
}

/** Frames a lab host replays leave from its own MAC, so the bridge learns it like any host's. */
function hostMac(host: LabHost): string {
  return execFileSync('ip', ['netns', 'exec', host.netns, 'cat', '/sys/class/net/eth0/address'], { encoding: 'utf8' }).trim();
}

/** A case may run twice (--long): each run is counted on its own. */
function watchId(scope: CaseScope): string {
  return `${scope.id}@${scope.startMs}`;
}

/** IPv6 cases go to the lab's own IPv6 address (the protected addresses are IPv4). */
function targetOf(c: EvalCase, a: CaseAddresses, lab: NetnsLab): string {
  return c.traffic.tool === 'nmap' && c.traffic.ipv6 ? lab.hostV6 : a.target;
}

async function runCase(arrivals: ArrivalCounter, c: EvalCase, a: CaseAddresses, host: LabHost, scope: CaseScope, lab: NetnsLab, ifaceMac: string,
  capture: () => Promise<Capture>, progress: (line: string) => void): Promise<CaseRun> {
  const target = targetOf(c, a, lab);
  scope.startMs = Date.now();
  const run: CaseRun = {
    case: c, scope, lifted: [], global: { packets: 0, peakPerWindow: 0 },
    arrivals: arrivals.watch(watchId(scope), { sources: [host.v4, host.v6, ...a.forged], prefix: a.capturePrefix, target }),
  };
  progress(`${c.id}: from ${host.v4} to ${target}`);
  try {
    run.traffic = await runTraffic({ lab, ifaceMac, capture }, c, a, host);
  } catch (err) {
    run.error = `traffic failed: ${(err as Error).message.split('\n')[0]}`;
  }
  scope.trafficEndMs = Date.now();
  return run;
}

/**
 * Waits until the detector has judged the windows after the traffic, then records and lifts the
 * case's blocks and limits, so that nothing it left behind can hide a later case.
 */
async function settle(pipeline: Pipeline, observer: ResponseObserver, arrivals: ArrivalCounter, run: CaseRun, scopes: CaseScope[]): Promise<void> {
  await detectorTicks(pipeline, run.case.settleTicks ?? DEFAULT_SETTLE_TICKS);
  run.global = arrivals.globalPackets(run.scope.startMs, run.scope.trafficEndMs);
  arrivals.forget(watchId(run.scope));
  const incidentIds = new Set(observer.incidents.map((e) => e.incident).filter((i) => belongsTo(run.scope, scopes, i.key, i.firstWindowMs)).map((i) => i.id));
  const { blocks } = await pipeline.ledger.snapshot();
  for (const b of blocks) {
    if ((b.incidentId && incidentIds.has(b.incidentId)) || belongsTo(run.scope, scopes, b.target, b.createdMs)) {
      await pipeline.ledger.unblock(b.target, 86_400_000);
      run.lifted.push(`block ${b.target}`);
    }
  }
  for (const l of await pipeline.limits.list()) {
    if ((l.incidentId && incidentIds.has(l.incidentId)) || belongsTo(run.scope, scopes, l.target, l.createdMs)) {
      await pipeline.limits.unlimit(l.target, l.traffic);
      run.lifted.push(`limit ${l.traffic} ${l.target}`);
    }
  }
}

/** Until every opened incident has resolved and a message about its resolution is in the mailbox; returns how many did not. */
async function drain(observer: ResponseObserver, mailbox: MailboxReader, limitMs: number, progress: (line: string) => void): Promise<number> {
  const deadline = Date.now() + limitMs;
  const pending = async (): Promise<number> => {
    const opened = new Set(observer.incidents.filter((e) => e.phase === 'opened').map((e) => e.incident.id));
    const resolvedMail = new Set((await mailbox.read()).filter((m) => /resolved/i.test(m.subject)).flatMap(incidentIdsOf));
    return [...opened].filter((id) => !resolvedMail.has(id)).length;
  };
  let left = await pending();
  if (left) progress(`waiting up to ${Math.round(limitMs / 1000)} s for ${left} incidents to resolve and their messages to arrive`);
  while (left > 0 && Date.now() < deadline) {
    await sleep(1000);
    left = await pending();
  }
  return left;
}
