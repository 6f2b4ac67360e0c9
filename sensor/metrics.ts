/**
 * The sensor's Prometheus metrics. Packet, byte, drop, parse-error and ring-buffer counters are
 * the kernel's own (ids_globals, read at scrape time): they survive sensor restarts with the
 * pinned maps and never double count. Drain time and tracked sources come from each tick; the
 * publisher's backlog from the publisher.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { SensorTick } from '../common/sensor-tick';
import type { XdpIdsProgram } from './kernel/program';
import { COUNTER_NAMES } from './kernel/records';
import type { PublisherStats } from './publisher';

/** Kernel counters that count dropped packets, by the reason label they get. */
const DROP_REASONS: Record<string, string> = { drop_blocked: 'blocked', drop_dst_limit: 'destination_limit', drop_unparsed: 'unparsed' };
const PARSE_ERRORS = COUNTER_NAMES.filter((name) => name.startsWith('err_'));

export class SensorMetrics {
  private program?: XdpIdsProgram;
  private publisher?: { stats(): PublisherStats };
  private tracked?: { sources: number; capacity: number };
  private readonly drainSeconds: Histogram;
  private readonly ticks: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    const metrics = this;
    const kernel = (name: string, help: string, counter: string): void => {
      new Counter({
        name, help, registers,
        collect() {
          const globals = metrics.program?.readGlobals();
          this.reset();
          if (globals) this.inc(globals[counter]);
        },
      });
    };
    kernel('xdp_ids_sensor_packets_total', 'Packets the XDP program saw', 'packets');
    kernel('xdp_ids_sensor_bytes_total', 'Bytes of the packets the XDP program saw', 'bytes');
    kernel('xdp_ids_sensor_ring_buffer_lost_total', 'Trips and samples lost because the ring buffer was full', 'ringbuf_full');
    kernel('xdp_ids_sensor_events_limited_total', 'Trips and samples suppressed by the per-source or global event limits', 'events_limited');
    kernel('xdp_ids_sensor_untracked_packets_total', 'Packets of sources the insert throttle did not track (counted only in sum)', 'untracked');
    kernel('xdp_ids_sensor_new_sources_total', 'Sources inserted into the kernel\'s source table', 'new_sources');
    new Counter({
      name: 'xdp_ids_sensor_drops_total', help: 'Packets dropped at XDP, by reason', labelNames: ['reason'], registers,
      collect() {
        const globals = metrics.program?.readGlobals();
        this.reset();
        if (globals) for (const [counter, reason] of Object.entries(DROP_REASONS)) this.inc({ reason }, globals[counter]);
      },
    });
    new Counter({
      name: 'xdp_ids_sensor_parse_errors_total', help: 'Malformed packets (counted and passed), by what was wrong', labelNames: ['reason'], registers,
      collect() {
        const globals = metrics.program?.readGlobals();
        this.reset();
        if (globals) for (const counter of PARSE_ERRORS) this.inc({ reason: counter.slice('err_'.length) }, globals[counter]);
      },
    });
    new Gauge({
      name: 'xdp_ids_sensor_tracked_sources', help: 'Sources in the kernel\'s source table after the last drain', registers,
      collect() {
        if (metrics.tracked) this.set(metrics.tracked.sources);
      },
    });
    new Gauge({
      name: 'xdp_ids_sensor_map_fill_ratio', help: 'How full a kernel table is (0-1) after the last drain', labelNames: ['map'], registers,
      collect() {
        if (metrics.tracked) this.set({ map: 'sources' }, metrics.tracked.sources / metrics.tracked.capacity);
      },
    });
    this.drainSeconds = new Histogram({
      name: 'xdp_ids_sensor_drain_seconds', help: 'Time to read the kernel\'s tables into one tick', registers,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    this.ticks = new Counter({ name: 'xdp_ids_sensor_ticks_total', help: 'Windows drained and handed on', registers });
    new Gauge({
      name: 'xdp_ids_sensor_publisher_backlog_jobs', help: 'Window jobs waiting to be sent to Redis', registers,
      collect() {
        if (metrics.publisher) this.set(metrics.publisher.stats().buffered);
      },
    });
    new Counter({
      name: 'xdp_ids_sensor_publisher_dropped_jobs_total', help: 'Window jobs dropped because the backlog was full while Redis was unreachable', registers,
      collect() {
        this.reset();
        if (metrics.publisher) this.inc(metrics.publisher.stats().dropped);
      },
    });
    new Counter({
      name: 'xdp_ids_sensor_publisher_published_jobs_total', help: 'Window and trip jobs sent to Redis', registers,
      collect() {
        this.reset();
        if (metrics.publisher) this.inc(metrics.publisher.stats().published);
      },
    });
    new Gauge({
      name: 'xdp_ids_sensor_redis_up', help: 'Whether the publisher is connected to Redis (1) or not (0)', registers,
      collect() {
        if (metrics.publisher) this.set(metrics.publisher.stats().connected ? 1 : 0);
      },
    });
  }

  /** The program whose kernel counters each scrape reads. */
  watch(program: XdpIdsProgram): void {
    this.program = program;
  }

  watchPublisher(publisher: { stats(): PublisherStats }): void {
    this.publisher = publisher;
  }

  drained(seconds: number, tick: SensorTick): void {
    this.drainSeconds.observe(seconds);
    this.ticks.inc();
    this.tracked = { sources: tick.trackedSources, capacity: this.program?.sourceCapacity ?? Infinity };
  }
}
