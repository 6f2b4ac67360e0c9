/**
 * `xdp-ids status`: every sensor, detector and alerter on the Redis (common/fleet-status.ts) as
 * tables, or --json; exit 0 when all is well, 3 when degraded (a part stopped reporting, a
 * partition has no detector, no detector or no alerter), 1 when Redis cannot be read.
 */
import { Command, CommanderError } from 'commander';
import { readableDuration, readableNumber } from '../alerts/readable';
import { readFleetStatus, type FleetStatus } from '../common/fleet-status';
import { addRedisOptions } from '../common/redis-config';
import { textTable } from '../common/text';
import { CONTROL_REDIS_HELP, withControlRedis } from './control-redis';
import { EXIT } from './exit-codes';

function ago(nowMs: number, ms: number | undefined): string {
  return ms === undefined ? '-' : `${readableDuration(Math.max(0, nowMs - ms))} ago`;
}

function statusText(s: FleetStatus): string {
  const now = s.atMs;
  const owned = (id: string): number => s.partitions.filter((owner) => owner === id).length;
  const sensors = textTable([['SENSOR', 'HEALTH', 'IFACE', 'MODE', 'LAST TICK', 'SOURCES', 'RING LOSSES', 'DROPS'], ...s.sensors.map((r) => {
    const st = r.status;
    if (!st) return [r.sensor, r.health, '-', '-', '-', '-', '-', '-'];
    const drops = Object.values(st.totals.drops).reduce((a, b) => a + b, 0);
    return [r.sensor, r.health, st.iface, st.mode, ago(now, st.lastTickMs), `${readableNumber(st.trackedSources)} of ${readableNumber(st.sourceCapacity)}`,
      readableNumber(st.totals.ringBufferLosses), readableNumber(drops)];
  })]);
  const detectors = textTable([['DETECTOR', 'HEALTH', 'SEEN', 'PARTITIONS', 'LAG', 'NEWEST TICK', 'MODEL', 'RULES'], ...s.detectors.map((d) => [
    d.id, d.health, ago(now, d.atMs), String(owned(d.id)), d.state.lagSeconds === undefined ? '-' : readableDuration(d.state.lagSeconds * 1000),
    ago(now, d.state.newestTickMs), d.state.model ?? 'none (rules only)', d.state.rulesVersion ?? '-',
  ])]);
  const alerters = textTable([['ALERTER', 'HEALTH', 'SEEN', 'UP', 'RECEIVERS'], ...s.alerters.map((a) => [
    a.id, a.health, ago(now, a.atMs), readableDuration(now - a.startedMs), a.state.receivers.join(', '),
  ])]);
  const consumed = s.partitions.filter((o) => o !== null).length;
  const verdict = s.problems.length ? `degraded:\n${s.problems.map((p) => `  - ${p}\n`).join('')}` : 'ok\n';
  return `${sensors}\n${detectors}\n${alerters}\npartitions: ${consumed} of ${s.partitions.length} consumed\nstatus: ${verdict}`;
}

export function registerStatusCommand(program: Command): void {
  addRedisOptions(program.command('status')
    .description('every sensor, detector and alerter on the Redis: alive, lag, partitions, model (exit 3 when degraded)')
    .option('--json', 'one JSON object (sensors, detectors, alerters, partitions: partition → detector, problems)'), CONTROL_REDIS_HELP)
    .action(async function (this: Command, opts: { json?: boolean }) {
      const status = await withControlRedis(this, (redis) => readFleetStatus(redis));
      this.configureOutput().writeOut?.(opts.json ? `${JSON.stringify(status)}\n` : statusText(status));
      // Said already: the exit code is for scripts.
      if (status.problems.length) throw new CommanderError(EXIT.degraded, 'xdp-ids.status.degraded', '');
    });
}
