/**
 * `xdp-ids incidents list|show|resolve`, as the control role: the same lists and views the
 * dashboard's API gives (detector/incident-queries.ts, web/incident-view.ts), as terminal tables
 * or, with --json, the API's JSON. `resolve` asks the detectors to resolve an incident now
 * (detector/incidents.ts) and waits until one has. Exit codes: bin/exit-codes.ts.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { RedisClient } from '../common/redis';
import type { Incident } from '../common/alert-events';
import { readHeartbeats, STALE_MS } from '../common/heartbeat';
import { addRedisOptions } from '../common/redis-config';
import { textTable } from '../common/text';
import { readableDuration, readableTime } from '../alerts/readable';
import { actionOf } from '../alerts/attack-view';
import { BlockLedger } from '../blocking/ledger';
import { LimitLedger } from '../blocking/limits';
import { InputError, parseInput } from '../blocking/control';
import { cliActor } from '../blocking/cli';
import { CONTROL_REDIS_HELP, withControlRedis } from '../bin/control-redis';
import { EXIT } from '../bin/exit-codes';
import { positiveInt } from '../bin/arguments';
import { incidentDetail, incidentRow } from '../web/incident-view';
import { IncidentStore, RECENT_KEEP } from './incidents';
import { incidentQuery, ledgerOf, queryIncidents, SEVERITIES, type IncidentQuery } from './incident-queries';

const POLL_MS = 200;

function write(cmd: Command, text: string): void {
  cmd.configureOutput().writeOut?.(text);
}

function notFound(id: string): never {
  throw new CommanderError(EXIT.notFound, 'xdp-ids.incidents.missing', `no incident ${id} (open, or among the ${RECENT_KEEP} most recent)`);
}

async function find(redis: RedisClient, id: string): Promise<Incident> {
  return (await new IncidentStore(redis).byId(id)) ?? notFound(id);
}

function statusText(i: Incident, nowMs: number): string {
  if (i.resolvedMs === undefined) return 'open';
  return `resolved ${readableDuration(nowMs - i.resolvedMs)} ago${i.resolvedBy ? ` by ${i.resolvedBy}` : ''}`;
}

function listTable(incidents: Incident[], nowMs: number): string {
  return textTable([['ID', 'SEVERITY', 'RULE', 'KEY', 'OPENED', 'DETECTIONS', 'STATUS', 'ACTION'], ...incidents.map((i) => [
    i.id, i.severity, i.ruleId, i.key, readableTime(i.openedMs), String(i.detections), statusText(i, nowMs), actionOf(i),
  ])]);
}

function showText(i: Incident, detail: ReturnType<typeof incidentDetail>, nowMs: number): string {
  const section = (title: string, rows: string[][]): string => (rows.length > 1 ? `\n${title}\n${textTable(rows)}` : '');
  return [
    `${i.id}  ${i.severity}  ${i.title}\n`,
    textTable([
      ['rule', `${i.ruleId} (version ${i.ruleVersion})`], ['key', `${i.key} (${i.scope}, grouped by ${i.groupBy})`], ['when', i.when],
      ['status', statusText(i, nowMs)], ['opened', readableTime(i.openedMs)], ['last seen', readableTime(i.lastSeenMs)],
      ['detections', String(i.detections)], ['sensors', i.sensors.join(', ')], ['action', actionOf(i)],
      ...(detail.ledger.block ? [['ledger', `${detail.ledger.block.target} blocked until ${readableTime(detail.ledger.block.expiresMs)} (undo: xdp-ids block del ${detail.ledger.block.target})`]] : []),
      ...(detail.ledger.limit ? [['ledger', `${detail.ledger.limit.target} ${detail.ledger.limit.traffic} limited until ${readableTime(detail.ledger.limit.expiresMs)} (undo: xdp-ids limit del ${detail.ledger.limit.target} --traffic ${detail.ledger.limit.traffic})`]] : []),
    ]),
    section('Conditions', [['EXPRESSION', 'SEEN', 'THRESHOLD', 'HOLDS'], ...detail.conditions.map((c) => [c.expression, c.value, c.threshold, c.holds ? 'yes' : 'no'])]),
    section('Features', [['FEATURE', 'LAST', 'PEAK'], ...detail.features.map((f) => [f.name, f.value, f.peak])]),
    section('Sampled packets', [['TIME', 'PROTOCOL', 'SOURCE', 'DESTINATION', 'FLAGS', 'TTL', 'WINDOW', 'LENGTH'], ...detail.samples.map((s) => [
      s.time, s.protocol, `${s.src}${s.srcPort ? `:${s.srcPort}` : ''}`, `${s.dst}${s.dstPort ? `:${s.dstPort}` : ''}`, s.flags, String(s.ttl), String(s.window), String(s.length),
    ])]),
    section('Timeline', [['TIME', 'WHAT'], ...detail.timeline.map((t) => [readableTime(t.atMs), t.what])]),
  ].join('');
}

/** Asks the detectors, then waits until they have carried it out. */
async function resolve(redis: RedisClient, ids: string[], waitMs: number): Promise<{ incident: Incident; already: boolean }[]> {
  const store = new IncidentStore(redis);
  const found = await Promise.all(ids.map((id) => find(redis, id)));
  const open = found.filter((i) => i.resolvedMs === undefined);
  if (open.length === 0) return found.map((incident) => ({ incident, already: true }));
  const detectors = (await readHeartbeats(redis, 'detector')).filter((d) => Date.now() - d.atMs <= STALE_MS);
  if (detectors.length === 0) throw new CommanderError(EXIT.error, 'xdp-ids.incidents.no-detector', `no detector is running to resolve ${open.map((i) => i.id).join(', ')} (see xdp-ids status); nothing was asked`);
  const actor = cliActor();
  for (const i of open) await store.requestResolve(i.id, actor);
  const deadline = Date.now() + waitMs;
  for (;;) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    const now = await Promise.all(found.map((i) => store.byId(i.id)));
    if (now.every((i) => i?.resolvedMs !== undefined)) return now.map((incident, n) => ({ incident: incident!, already: found[n].resolvedMs !== undefined }));
    if (Date.now() >= deadline) {
      const waiting = now.flatMap((i, n) => (i?.resolvedMs === undefined ? [found[n].id] : []));
      throw new CommanderError(EXIT.error, 'xdp-ids.incidents.timeout',
        `asked the detectors to resolve ${waiting.join(', ')}, but none did within ${readableDuration(waitMs)} (see xdp-ids status); the request stays queued`);
    }
  }
}

function listQuery(opts: Record<string, unknown>): IncidentQuery {
  try {
    return parseInput(incidentQuery, { status: opts.all ? 'recent' : 'open', ...Object.fromEntries(['severity', 'rule', 'source', 'sensor', 'limit'].filter((k) => opts[k] !== undefined).map((k) => [k, opts[k]])) });
  } catch (err) {
    if (err instanceof InputError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

function severities(text: string): string {
  const bad = text.split(',').filter((s) => !(SEVERITIES as readonly string[]).includes(s));
  if (bad.length) throw new InvalidArgumentError(`--severity must be one of ${SEVERITIES.join(', ')} (comma-separated), got ${bad.join(', ')}`);
  return text;
}

export function registerIncidentsCommands(program: Command): void {
  const incidents = addRedisOptions(program.command('incidents').description('list, show and resolve incidents'), CONTROL_REDIS_HELP);
  incidents.command('list')
    .description('open incidents, newest first (with --all: the recent ones, open or resolved)')
    .option('--all', `also resolved ones (the ${RECENT_KEEP} most recent incidents)`)
    .option('--severity <list>', `only these severities, comma-separated (${SEVERITIES.join(', ')})`, severities)
    .option('--rule <id>', 'only this rule\'s')
    .option('--source <text>', 'only keys (addresses, prefixes) containing this')
    .option('--sensor <id>', 'only those this sensor saw')
    .option('--limit <n>', 'at most this many', positiveInt('--limit', RECENT_KEEP), 200)
    .option('--json', 'one JSON array (as the API\'s GET /v1/incidents)')
    .action(async function (this: Command, opts: Record<string, unknown>) {
      const query = listQuery(opts);
      const found = await withControlRedis(this, (redis) => queryIncidents(new IncidentStore(redis), query));
      write(this, opts.json ? `${JSON.stringify(found.map(incidentRow))}\n` : listTable(found, Date.now()));
    });
  incidents.command('show')
    .description('one incident: conditions against thresholds, features, sampled packets, timeline, what was done and how to undo it')
    .argument('<id>', 'the incident id, as listed (inc-...)')
    .option('--json', 'the API\'s JSON for one incident')
    .action(async function (this: Command, id: string, opts: { json?: boolean }) {
      const [incident, detail] = await withControlRedis(this, async (redis) => {
        const i = await find(redis, id);
        return [i, incidentDetail(i, await ledgerOf(i, new BlockLedger(redis), new LimitLedger(redis)))] as const;
      });
      write(this, opts.json ? `${JSON.stringify(detail, null, 2)}\n` : showText(incident, detail, Date.now()));
    });
  incidents.command('resolve')
    .description('resolve open incidents now (a detector does it; an attack\'s RESOLVED alert goes out once all its incidents are resolved); blocks stay until they expire or `xdp-ids block del`')
    .argument('<id...>', 'incident ids, as listed (inc-...)')
    .addOption(new Option('--wait <seconds>', 'how long to wait for the detectors to carry it out').argParser(positiveInt('--wait', 3600)).default(10))
    .option('--json', 'the resolved incidents (as in list --json)')
    .action(async function (this: Command, ids: string[], opts: { wait: number; json?: boolean }) {
      const done = await withControlRedis(this, (redis) => resolve(redis, ids, opts.wait * 1000));
      write(this, opts.json ? `${JSON.stringify(done.map((d) => incidentRow(d.incident)))}\n` : done.map(({ incident: i, already }) =>
        `${already ? 'already resolved' : 'resolved'} ${i.id} (${i.ruleId} ${i.key}) at ${readableTime(i.resolvedMs)}${i.resolvedBy ? ` by ${i.resolvedBy}` : ''}\n`).join(''));
    });
}
