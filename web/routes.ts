/**
 * What the dashboard reads, as API routes (a script with a read token gets the same JSON):
 * incidents (open or recent, filtered) and one incident's evidence, sensors, the detectors' rule
 * sets, recent alert deliveries and the dead letters, which a write token can replay. Blocks,
 * limits and allow entries are the control API's own routes (blocking/api.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { RedisClient } from '../common/redis';
import { getDeadLetter, listDeadLetters } from '../alerts/dead-letters';
import { recentDeliveries } from '../alerts/delivery-log';
import { dlqReplay } from '../alerts/operations';
import type { BlockLedger } from '../blocking/ledger';
import { LimitLedger } from '../blocking/limits';
import { parseInput } from '../blocking/control';
import type { IncidentStore } from '../detector/incidents';
import { incidentQuery, ledgerOf, queryIncidents } from '../detector/incident-queries';
import { readRuleStatuses } from '../detector/rules-status';
import type { SensorStatusReader } from '../sensor/status';
import { incidentDetail, incidentRow } from './incident-view';

export interface ReadRouteDeps {
  redis: RedisClient;
  ledger: BlockLedger;
  sensors: SensorStatusReader;
  incidents: IncidentStore;
}

export function registerReadRoutes(app: FastifyInstance, deps: ReadRouteDeps): void {
  const limits = new LimitLedger(deps.redis);

  app.get('/v1/incidents', async (req) => {
    const q = parseInput(incidentQuery, req.query);
    return { incidents: (await queryIncidents(deps.incidents, q)).map(incidentRow) };
  });

  // The key is the rest of the path: prefixes have a slash (198.18.0.0/24).
  app.get<{ Params: { rule: string; '*': string } }>('/v1/incidents/:rule/*', async (req, reply) => {
    const incident = await deps.incidents.get(req.params.rule, req.params['*']);
    if (!incident) return reply.code(404).send({ error: `no incident of rule ${req.params.rule} for ${req.params['*']}` });
    return incidentDetail(incident, await ledgerOf(incident, deps.ledger, limits));
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
