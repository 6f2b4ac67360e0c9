/**
 * The state of every part on one Redis, for `xdp-ids status`: sensors (their own status,
 * sensor/status.ts), detectors and alerters (their heartbeats, common/heartbeat.ts) and who
 * consumes each windows partition (detector/partitions.ts), with the problems that make the
 * deployment degraded: a part that stopped reporting without a clean stop, a partition nobody
 * consumes, no detector or no alerter at all.
 */
import type { RedisClient } from './redis';
import type { AlerterState } from '../alerts/service';
import type { DetectorState } from '../detector/service';
import { partitionLeaseKey } from '../detector/partitions';
import { SensorStatusReader, type SensorStatus } from '../sensor/status';
import { readHeartbeats, STALE_MS, type Heartbeat } from './heartbeat';
import { PARTITIONS } from './windows-jobs';

/** A sensor is late after three of its windows, and never sooner than this. */
const SENSOR_LATE_MIN_MS = 10_000;

/** `syncing`: a sensor that ticks but whose kernel does not hold the block ledger yet. */
export type Health = 'alive' | 'syncing' | 'late' | 'stopped';

export interface SensorReport {
  sensor: string;
  health: Health;
  /** Missing when the sensor stopped ticking long enough ago that its status expired. */
  status?: SensorStatus;
}

export interface HeartbeatReport<T> extends Heartbeat<T> {
  health: Health;
}

export interface FleetStatus {
  atMs: number;
  sensors: SensorReport[];
  detectors: HeartbeatReport<DetectorState>[];
  alerters: HeartbeatReport<AlerterState>[];
  /** Partition → the detector holding its lease (null: nobody consumes it). */
  partitions: (string | null)[];
  /** Why the deployment is degraded; empty when it is not. */
  problems: string[];
}

function healthOf(status: SensorStatus | undefined, nowMs: number): Health {
  if (!status) return 'late';
  if (status.detachedMs !== undefined) return 'stopped';
  if (nowMs - status.lastTickMs > Math.max(3 * status.windowMs, SENSOR_LATE_MIN_MS)) return 'late';
  return status.ready ? 'alive' : 'syncing';
}

function withState<T>(beats: Heartbeat<T>[], nowMs: number): HeartbeatReport<T>[] {
  return beats.map((b) => ({ ...b, health: nowMs - b.atMs > STALE_MS ? 'late' : 'alive' }));
}

/** What is wrong, in words an operator acts on. */
export function problemsOf(s: Omit<FleetStatus, 'problems'>): string[] {
  const unowned = s.partitions.flatMap((owner, p) => (owner === null ? [p] : []));
  return [
    ...s.sensors.filter((r) => r.health === 'syncing').map((r) => `sensor ${r.sensor} has not synced its blocks with the ledger yet: its kernel may lack blocks`),
    ...s.sensors.filter((r) => r.health === 'late').map((r) => `sensor ${r.sensor} stopped reporting${r.status ? ` (last tick ${Math.round((s.atMs - r.status.lastTickMs) / 1000)} s ago)` : ''}`),
    ...s.detectors.filter((r) => r.health === 'late').map((r) => `detector ${r.id} stopped reporting ${Math.round((s.atMs - r.atMs) / 1000)} s ago`),
    ...s.alerters.filter((r) => r.health === 'late').map((r) => `alerter ${r.id} stopped reporting ${Math.round((s.atMs - r.atMs) / 1000)} s ago`),
    ...(s.sensors.some((r) => r.health === 'alive' || r.health === 'syncing') ? [] : ['no sensor is running: no traffic is watched and no block is enforced by a sensor']),
    ...(s.detectors.some((r) => r.health === 'alive') ? [] : ['no detector is running: windows wait in the queues and no incident opens or resolves']),
    ...(s.alerters.some((r) => r.health === 'alive') ? [] : ['no alerter is running: alerts wait in the queue']),
    ...(unowned.length ? [`${unowned.length} of ${s.partitions.length} windows partitions have no detector (${unowned.join(', ')})`] : []),
  ];
}

export async function readFleetStatus(redis: RedisClient, nowMs = Date.now()): Promise<FleetStatus> {
  const [listed, detectors, alerters, partitions] = await Promise.all([
    new SensorStatusReader(redis).list(),
    readHeartbeats<DetectorState>(redis, 'detector'),
    readHeartbeats<AlerterState>(redis, 'alerter'),
    // One GET each: the leases live in different slots of a Redis Cluster, where MGET cannot span them.
    Promise.all(Array.from({ length: PARTITIONS }, (_, p) => redis.get(partitionLeaseKey(p)))),
  ]);
  const status = {
    atMs: nowMs,
    sensors: listed.map((l) => ({ sensor: l.sensor, health: healthOf(l.status, nowMs), ...(l.status ? { status: l.status } : {}) })),
    detectors: withState(detectors, nowMs),
    alerters: withState(alerters, nowMs),
    partitions,
  };
  return { ...status, problems: problemsOf(status) };
}
