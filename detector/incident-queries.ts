/**
 * What operators ask of the incidents, in one place for the dashboard's API (web/routes.ts) and
 * the CLI (`xdp-ids incidents`): a filtered list of open or recent incidents, and the ledger's
 * entry for an incident's target as it stands now.
 */
import { z } from 'zod';
import type { Incident } from '../common/alert-events';
import type { TrafficClass } from '../common/traffic';
import type { BlockLedger, LedgerEntry } from '../blocking/ledger';
import type { LimitEntry, LimitLedger } from '../blocking/limits';
import { RECENT_KEEP, type IncidentStore } from './incidents';

/** Open incidents read for a list: the most recently active ones, so a flood of keys cannot make one list read them all. */
const OPEN_READ_MAX = 1000;

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;

export const incidentQuery = z.object({
  status: z.enum(['open', 'recent']).default('open'),
  severity: z.string().optional().transform((s) => (s ? s.split(',') : undefined)).pipe(z.array(z.enum(SEVERITIES)).optional()),
  rule: z.string().max(128).optional(),
  /** A part of the key (address or prefix). */
  source: z.string().max(64).optional(),
  sensor: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(RECENT_KEEP).default(200),
}).strict();

export type IncidentQuery = z.infer<typeof incidentQuery>;

function matches(i: Incident, q: IncidentQuery): boolean {
  return (!q.severity || q.severity.includes(i.severity)) && (!q.rule || i.ruleId === q.rule)
    && (!q.source || i.key.includes(q.source)) && (!q.sensor || i.sensors.includes(q.sensor));
}

/** Newest opened first. */
export async function queryIncidents(store: IncidentStore, q: IncidentQuery): Promise<Incident[]> {
  const read = q.status === 'open' ? await store.listOpen(OPEN_READ_MAX) : await store.listRecent();
  return read.filter((i) => matches(i, q)).sort((a, b) => b.openedMs - a.openedMs).slice(0, q.limit);
}

/** The block or limit the ledger holds now for what the incident's decision targeted. */
export async function ledgerOf(i: Incident, ledger: BlockLedger, limits: LimitLedger): Promise<{ block?: LedgerEntry; limit?: LimitEntry }> {
  const target = i.block?.target;
  const traffic = i.block?.traffic;
  const [block, limit] = await Promise.all([
    target && !traffic ? ledger.get(target) : undefined,
    target && traffic ? limits.ofTargets([target], [traffic as TrafficClass]).then((m) => m.get(target)?.[0]) : undefined,
  ]);
  return { ...(block ? { block } : {}), ...(limit ? { limit } : {}) };
}
