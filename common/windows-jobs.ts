/**
 * The `windows` queue: how sensor ticks, trips and samples travel to the detectors.
 *
 * Rules look back over several windows of one sensor, so one sensor's jobs must be evaluated in
 * order by one detector. The queue is therefore split into PARTITIONS BullMQ queues,
 * `windows-0` .. `windows-N`; a sensor always writes to the partition of its id, and each
 * partition is consumed by exactly one detector at a time (detector/partitions.ts). More sensors
 * spread over more detectors; one sensor's windows are one detector's work.
 *
 * A tick is encoded in columns (one array of addresses, one flat array of counts), which is a
 * third of the size of an array of objects, and split into parts of at most MAX_SOURCES_PER_JOB
 * sources so that no job grows without bound.
 */
import clusterKeySlot from 'cluster-key-slot';
import { NO_UNTRACKED, type DestinationWindow, type HeaderSample, type SensorTick, type SourceWindow, type Trip } from './sensor-tick';

export const WINDOWS_QUEUE = 'windows';
export const PARTITIONS = 16;
const CLUSTER_SLOTS = 16_384;
export const JOB_FORMAT = 2;
export const MAX_SOURCES_PER_JOB = 10_000;
export const MAX_SAMPLES_PER_JOB = 256;

/**
 * A partition's hash tag, which decides the Redis Cluster slot of all its queue's keys: the first
 * `w<p>-<k>` whose slot lies in the p-th sixteenth of the slot space, so that a cluster whose
 * primaries hold equal ranges of slots holds equal shares of the partitions.
 */
function partitionTag(partition: number): string {
  const share = CLUSTER_SLOTS / PARTITIONS;
  for (let k = 0; ; k++) {
    const tag = `w${partition}-${k}`;
    if (Math.floor(clusterKeySlot(tag) / share) === partition % PARTITIONS) return tag;
  }
}

const PARTITION_QUEUES = Array.from({ length: PARTITIONS }, (_, p) => `${WINDOWS_QUEUE}-${p}{${partitionTag(p)}}`);

/** The BullMQ queue of a partition: `windows-<p>` with its hash tag, e.g. `windows-3{w3-21}`. */
export function partitionQueue(partition: number): string {
  return PARTITION_QUEUES[partition];
}

/** FNV-1a of the sensor id: stable across processes and versions. */
export function partitionOf(sensor: string, partitions = PARTITIONS): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < sensor.length; i++) h = Math.imul(h ^ sensor.charCodeAt(i), 0x01000193);
  return (h >>> 0) % partitions;
}

const SOURCE_FIELDS = [
  'packets', 'bytes', 'syn', 'synAck', 'ackOnly', 'rst', 'fin', 'nullScan', 'finOnly', 'xmas', 'synFin', 'udp', 'icmp',
  'fragments', 'malformed', 'firstFragments', 'replies', 'handshakes', 'ttlMismatch', 'distinctPorts', 'distinctHosts',
  'distinctProtocols', 'firstSeenMs', 'verifiedMs',
] as const satisfies readonly (keyof SourceWindow)[];
const DESTINATION_FIELDS = [
  'syn', 'udp', 'icmp', 'bytes', 'synAck', 'udpAmp', 'udpAmpBytes', 'fragments', 'fragmentBytes', 'handshakes', 'synOut',
  'distinctSources', 'ampSources',
] as const satisfies readonly (keyof DestinationWindow)[];
const S = SOURCE_FIELDS.length;
const D = DESTINATION_FIELDS.length;

export interface TickJob {
  f: typeof JOB_FORMAT;
  type: 'tick';
  sensor: string;
  iface: string;
  window: number;
  startMs: number;
  endMs: number;
  part: number;
  parts: number;
  /** Source addresses, and their counts row by row in SOURCE_FIELDS order. */
  src: string[];
  s: number[];
  dst: string[];
  d: number[];
  /** Whole-tick fields ride on part 0. */
  untracked?: SensorTick['untracked'];
  globals?: Record<string, number>;
  trackedSources?: number;
  evictedSources?: number;
  /** Header samples the sensor received since the previous tick (new and watched sources). */
  samples?: HeaderSample[];
}

export interface TripJob {
  f: typeof JOB_FORMAT;
  type: 'trip';
  trip: Trip;
}

export type WindowsJob = TickJob | TripJob;

/** A tick as jobs: parts of at most `maxSources` sources (destinations ride on the first part). */
export function encodeTick(tick: SensorTick, samples: HeaderSample[] = [], maxSources = MAX_SOURCES_PER_JOB): TickJob[] {
  const parts = Math.max(1, Math.ceil(tick.sources.length / maxSources));
  const jobs: TickJob[] = [];
  for (let part = 0; part < parts; part++) {
    const slice = tick.sources.slice(part * maxSources, (part + 1) * maxSources);
    const s = new Array<number>(slice.length * S);
    for (let i = 0; i < slice.length; i++) {
      const w = slice[i];
      for (let f = 0; f < S; f++) s[i * S + f] = w[SOURCE_FIELDS[f]];
    }
    const first = part === 0;
    const destinations = first ? tick.destinations : [];
    const d = new Array<number>(destinations.length * D);
    for (let i = 0; i < destinations.length; i++) {
      for (let f = 0; f < D; f++) d[i * D + f] = destinations[i][DESTINATION_FIELDS[f]];
    }
    jobs.push({
      f: JOB_FORMAT, type: 'tick', sensor: tick.sensor, iface: tick.iface, window: tick.window, startMs: tick.startMs, endMs: tick.endMs,
      part, parts, src: slice.map((w) => w.src), s, dst: destinations.map((w) => w.dst), d,
      ...(first ? { untracked: tick.untracked, globals: tick.globals, trackedSources: tick.trackedSources, evictedSources: tick.evictedSources, samples: samples.slice(-MAX_SAMPLES_PER_JOB) } : {}),
    });
  }
  return jobs;
}

export class JobFormatError extends Error {}

function check(ok: boolean, what: string): void {
  if (!ok) throw new JobFormatError(`malformed windows job: ${what}`);
}

/** Checks what a job's consumer relies on; everything else is data. */
export function validateJob(data: unknown): WindowsJob {
  const job = data as WindowsJob;
  check(typeof job === 'object' && job !== null, 'not an object');
  check(job.f === JOB_FORMAT, `format ${String(job.f)} (this detector reads format ${JOB_FORMAT})`);
  if (job.type === 'trip') {
    check(typeof job.trip?.sensor === 'string' && typeof job.trip.src === 'string' && Number.isFinite(job.trip.window), 'trip without sensor, src or window');
    return job;
  }
  check(job.type === 'tick', `unknown type ${String((job as { type: unknown }).type)}`);
  check(typeof job.sensor === 'string' && Number.isInteger(job.window) && Number.isFinite(job.endMs) && Number.isFinite(job.startMs), 'tick without sensor, window or times');
  check(Number.isInteger(job.part) && Number.isInteger(job.parts) && job.part >= 0 && job.part < job.parts, `part ${job.part} of ${job.parts}`);
  check(Array.isArray(job.src) && Array.isArray(job.s) && job.s.length === job.src.length * S, 'source columns of different lengths');
  check(Array.isArray(job.dst) && Array.isArray(job.d) && job.d.length === job.dst.length * D, 'destination columns of different lengths');
  return job;
}

/** Source windows of one part. Built field by field in one order so they share a hidden class. */
export function decodeSources(job: TickJob, out: SourceWindow[] = []): SourceWindow[] {
  const s = job.s;
  for (let i = 0; i < job.src.length; i++) {
    const o = i * S;
    out.push({
      src: job.src[i], packets: s[o], bytes: s[o + 1], syn: s[o + 2], synAck: s[o + 3], ackOnly: s[o + 4], rst: s[o + 5], fin: s[o + 6],
      nullScan: s[o + 7], finOnly: s[o + 8], xmas: s[o + 9], synFin: s[o + 10], udp: s[o + 11], icmp: s[o + 12], fragments: s[o + 13],
      malformed: s[o + 14], firstFragments: s[o + 15], replies: s[o + 16], handshakes: s[o + 17], ttlMismatch: s[o + 18],
      distinctPorts: s[o + 19], distinctHosts: s[o + 20], distinctProtocols: s[o + 21], firstSeenMs: s[o + 22], verifiedMs: s[o + 23],
    });
  }
  return out;
}

export function decodeDestinations(job: TickJob, out: DestinationWindow[] = []): DestinationWindow[] {
  const d = job.d;
  for (let i = 0; i < job.dst.length; i++) {
    const o = i * D;
    out.push({
      dst: job.dst[i], syn: d[o], udp: d[o + 1], icmp: d[o + 2], bytes: d[o + 3], synAck: d[o + 4], udpAmp: d[o + 5], udpAmpBytes: d[o + 6],
      fragments: d[o + 7], fragmentBytes: d[o + 8], handshakes: d[o + 9], synOut: d[o + 10], distinctSources: d[o + 11], ampSources: d[o + 12],
    });
  }
  return out;
}

/**
 * Reassembles a tick from its parts, which arrive in order on one partition. A part of a newer
 * window (or sensor restart) before the last part means parts were lost: the incomplete tick is
 * returned as it is, flagged, rather than held forever.
 */
export class TickAssembler {
  private readonly pending = new Map<string, { tick: SensorTick; samples: HeaderSample[]; next: number; parts: number; whole: boolean }>();

  /** Adds a part; returns the finished ticks (usually zero or one). */
  add(job: TickJob): { tick: SensorTick; samples: HeaderSample[]; complete: boolean }[] {
    const done: { tick: SensorTick; samples: HeaderSample[]; complete: boolean }[] = [];
    let entry = this.pending.get(job.sensor);
    if (entry && (entry.tick.window !== job.window || job.part !== entry.next)) {
      this.pending.delete(job.sensor);
      done.push({ tick: entry.tick, samples: entry.samples, complete: false });
      entry = undefined;
    }
    if (!entry) {
      entry = {
        tick: {
          sensor: job.sensor, iface: job.iface, window: job.window, startMs: job.startMs, endMs: job.endMs, sources: [], destinations: [],
          untracked: job.untracked ?? { ...NO_UNTRACKED }, globals: job.globals ?? {}, trackedSources: job.trackedSources ?? 0, evictedSources: job.evictedSources ?? 0,
        },
        samples: job.samples ?? [], next: job.part, parts: job.parts, whole: job.part === 0,
      };
    }
    decodeSources(job, entry.tick.sources);
    decodeDestinations(job, entry.tick.destinations);
    entry.next = job.part + 1;
    if (entry.next >= entry.parts) {
      this.pending.delete(job.sensor);
      done.push({ tick: entry.tick, samples: entry.samples, complete: entry.whole });
    } else {
      this.pending.set(job.sensor, entry);
    }
    return done;
  }
}
