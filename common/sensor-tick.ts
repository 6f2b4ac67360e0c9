/**
 * What a sensor hands to the next stage: one SensorTick per window, and trips and samples as soon
 * as the kernel reports them. This is the one interface between the sensor and the detector.
 */

/** Per-source counts for one window (deltas of the kernel's cumulative counters). */
export interface SourceWindow {
  /** Source address (IPv4 dotted quad for IPv4 and IPv4-mapped IPv6 sources). */
  src: string;
  packets: number;
  bytes: number;
  /** TCP classes as defined in bpf/xdp_ids.h. */
  syn: number;
  synAck: number;
  ackOnly: number;
  rst: number;
  fin: number;
  nullScan: number;
  finOnly: number;
  xmas: number;
  synFin: number;
  udp: number;
  icmp: number;
  fragments: number;
  malformed: number;
  /** Distinct TCP/UDP destination ports in the window (linear-counting estimate). */
  distinctPorts: number;
  /** Distinct destination addresses in the window (linear-counting estimate). */
  distinctHosts: number;
  /** Wall-clock ms when the kernel first saw this source (since the entry was created). */
  firstSeenMs: number;
}

/** Per-destination flood counts for one window; sources may be spoofed. */
export interface DestinationWindow {
  dst: string;
  syn: number;
  udp: number;
  icmp: number;
  bytes: number;
  /** Distinct sources that sent SYN/UDP/ICMP to this destination (linear-counting estimate). */
  distinctSources: number;
}

export interface HeaderSample {
  tsMs: number;
  src: string;
  dst: string;
  srcMac: string;
  dstMac: string;
  etherType: number;
  vlans: number[];
  ipVersion: 4 | 6;
  protocol: number;
  length: number;
  ttl: number;
  dscp: number;
  ecn: number;
  ipId: number;
  flowLabel: number;
  fragment: { df: boolean; mf: boolean; nonFirst: boolean };
  srcPort: number;
  dstPort: number;
  tcpFlags: string;
  seq: number;
  ack: number;
  tcpWindow: number;
  icmpType: number;
  icmpCode: number;
}

export type TripKind = 'syn' | 'ports' | 'hosts';

/** A source crossed a fast-path threshold in the kernel; sent at once, not at the next tick. */
export interface Trip {
  sensor: string;
  kind: TripKind;
  src: string;
  window: number;
  /** SYN packets, or distinct ports/hosts (sketch estimate), when the threshold was reached. */
  value: number;
  threshold: number;
  packet: HeaderSample;
  /**
   * The source's counts in the current window up to the trip (read from the kernel when the trip
   * arrived), so a detector can evaluate its rules before the window ends.
   */
  sofar?: SourceWindow;
}

export interface Sample {
  sensor: string;
  reason: 'new-source' | 'watched';
  packet: HeaderSample;
}

export interface SensorTick {
  sensor: string;
  iface: string;
  /** Kernel window id (CLOCK_MONOTONIC ns / window length). */
  window: number;
  startMs: number;
  endMs: number;
  sources: SourceWindow[];
  destinations: DestinationWindow[];
  /** Packets of sources the insert throttle did not track, summed. */
  untracked: Omit<SourceWindow, 'src' | 'distinctPorts' | 'distinctHosts' | 'firstSeenMs'>;
  /** Global kernel counters for the window (deltas), by lower-case name, e.g. err_tcp_trunc. */
  globals: Record<string, number>;
  /** Sources tracked by the kernel at the end of the window. */
  trackedSources: number;
}

/** Where a sensor sends what it sees. */
export interface SensorSink {
  tick(tick: SensorTick): void | Promise<void>;
  trip(trip: Trip): void | Promise<void>;
  sample(sample: Sample): void | Promise<void>;
}
