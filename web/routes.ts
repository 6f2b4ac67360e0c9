/**
 * What the dashboard reads, as API routes (a script with a read token gets the same JSON):
 * incidents (open or recent, filtered) and one incident's evidence, sensors, the detectors' rule
 * sets, recent alert deliveries and the dead letters, which a write token can replay. Blocks,
 * limits and allow entries are the control API's own routes (blocking/api.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Incident } from '../common/alert-events';
import { getDeadLetter, listDeadLetters } from '../alerts/dead-letters';
import { recentDeliveries } from '../alerts/delivery-log';
import { dlqReplay } from '../alerts/operations';
import type { BlockLedger } from '../blocking/ledger';
import { LimitLedger } from '../blocking/limits';
import { parseInput } from '../blocking/control';
import type { TrafficClass } from '../common/traffic';
import { IncidentStore, RECENT_KEEP } from '../detector/incidents';
import { readRuleStatuses } from '../detector/rules-status';
import type { SensorStatusReader } from '../sensor/status';
import { incidentDetail, incidentRow } from './incident-view';

/** Open incidents read for a list: the most recently active ones, so a flood of keys cannot make one page read them all. */
const OPEN_READ_MAX = 1000;

const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;

const incidentQuery = z.object({
  status: z.enum(['open', 'recent']).default('open'),
  severity: z.string().optional().transform((s) => (s ? s.split(',') : undefined)).pipe(z.array(z.enum(SEVERITIES)).optional()),
  rule: z.string().max(128).optional(),
  /** A part of the key (address or prefix). */
  source: z.string().max(64).optional(),
  sensor: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(RECENT_KEEP).default(200),
}).strict();

function matches(i: Incident, q: z.infer<typeof incidentQuery>): boolean {
  return (!q.severity || q.severity.includes(i.severity)) && (!q.rule || i.ruleId === q.rule)
    && (!q.source || i.key.includes(q.source)) && (!q.sensor || i.sensors.includes(q.sensor));
}

export interface ReadRouteDeps {
  redis: Redis;
  ledger: BlockLedger;
  sensors: SensorStatusReader;
  incidents: IncidentStore;
}

export function registerReadRoutes(app: FastifyInstance, deps: ReadRouteDeps): void {
  const limits = new LimitLedger(deps.redis);

  app.get('/v1/incidents', async (req) => {
    const q = parseInput(incidentQuery, req.query);
    const read = q.status === 'open'
      ? await deps.incidents.listOpen(OPEN_READ_MAX)
      : await deps.incidents.listRecent();
    return { incidents: read.filter((i) => matches(i, q)).sort((a, b) => b.openedMs - a.openedMs).slice(0, q.limit).map(incidentRow) };
  });

  // The key is the rest of the path: prefixes have a slash (198.18.0.0/24).
  app.get<{ Params: { rule: string; '*': string } }>('/v1/incidents/:rule/*', async (req, reply) => {
    const incident = await deps.incidents.get(req.params.rule, req.params['*']);
    if (!incident) return reply.code(404).send({ error: `no incident of rule ${req.params.rule} for ${req.params['*']}` });
    const target = incident.block?.target;
    const traffic = incident.block?.traffic;
    const [block, limit] = await Promise.all([
      target && !traffic ? deps.ledger.get(target) : undefined,
      target && traffic ? limits.ofTargets([target], [traffic as TrafficClass]).then((m) => m.get(target)?.[0]) : undefined,
    ]);
    return incidentDetail(incident, { block, limit });
  });

  app.get('/v1/sensors', async () => {
    const [listed, states] = await Promise.all([deps.sensors.list(), deps.ledger.sensorStates()]);
    return { sensors: listed.map((s) => ({ ...s, kernel: states.find((k) => k.sensor === s.sensor) ?? { repairs: {}, drops: {} } })) };
  });

  app.get('/v1/rules', async () => ({ detectors: await readRuleStatuses(deps.redis) }));

  app.get('/v1/alerts/deliveries', async () => ({ deliveries: await recentDeliveries(deps.redis) }));
  app.get('/v1/alerts/dead-letters', async () => ({
    deadLetters: (await listDeadLetters(deps.redis)).map(({ data: _data, ...letter }) => letter).reverse(),
  }));
  app.post<{ Params: { id: string } }>('/v1/alerts/dead-letters/:id/replay', async (req, reply) => {
    if (!(await getDeadLetter(deps.redis, req.params.id))) return reply.code(404).send({ error: `no dead letter ${req.params.id}` });
    await dlqReplay(deps.redis, [req.params.id], false);
    return { replayed: req.params.id };
  });
}
