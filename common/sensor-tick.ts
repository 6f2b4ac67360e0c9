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
  /** First fragments (more fragments follow, offset 0). */
  firstFragments: number;
  /** TCP/UDP from a service port to an ephemeral port: answers, not probes. */
  replies: number;
  /** SYN-ACKs of ours this source ACKed: handshakes only a real (unspoofed) source completes. */
  handshakes: number;
  /** Packets whose TTL differs from the one the source's last handshake had. */
  ttlMismatch: number;
  /** Distinct TCP/UDP destination ports of probes (replies excluded) in the window (linear-counting estimate). */
  distinctPorts: number;
  /** Distinct destination addresses in the window (linear-counting estimate). */
  distinctHosts: number;
  /** Distinct IP protocols in the window (linear-counting estimate). */
  distinctProtocols: number;
  /** Wall-clock ms when the kernel first saw this source (since the entry was created). */
  firstSeenMs: number;
  /** Wall-clock ms of the source's last handshake with a protected host; 0 = none while tracked. */
  verifiedMs: number;
}

/** Per-destination counts for one window (floods, reflection, backscatter); sources may be spoofed. */
export interface DestinationWindow {
  dst: string;
  syn: number;
  udp: number;
  icmp: number;
  /** Frame bytes of every packet counted for the destination. */
  bytes: number;
  synAck: number;
  /** UDP from amplifier service ports (DNS, NTP, memcached...). */
  udpAmp: number;
  udpAmpBytes: number;
  /** IP fragments, first and later. */
  fragments: number;
  fragmentBytes: number;
  /** Handshakes completed with this destination. */
  handshakes: number;
  /** SYNs this address sent (seen at TC egress). */
  synOut: number;
  /** Distinct sources of any counted class (linear-counting estimate). */
  distinctSources: number;
  /** Distinct sources of udpAmp (linear-counting estimate). */
  ampSources: number;
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
  untracked: Omit<SourceWindow, 'src' | 'distinctPorts' | 'distinctHosts' | 'distinctProtocols' | 'firstSeenMs' | 'verifiedMs'>;
  /** Global kernel counters for the window (deltas), by lower-case name, e.g. err_tcp_trunc. */
  globals: Record<string, number>;
  /** Sources tracked by the kernel at the end of the window. */
  trackedSources: number;
  /** Sources the kernel's full table evicted during the window to make room (their last counts are lost). */
  evictedSources: number;
}

/** Untracked counts of a tick in which the insert throttle refused nobody. */
export const NO_UNTRACKED: Readonly<SensorTick['untracked']> = {
  packets: 0, bytes: 0, syn: 0, synAck: 0, ackOnly: 0, rst: 0, fin: 0, nullScan: 0, finOnly: 0, xmas: 0, synFin: 0, udp: 0, icmp: 0, fragments: 0, malformed: 0,
  firstFragments: 0, replies: 0, handshakes: 0, ttlMismatch: 0,
};

/** A source window with the given counts and zero elsewhere (tests, rule test cases, benchmarks). */
export function sourceWindowOf(src: string, counts: Partial<Omit<SourceWindow, 'src'>> = {}): SourceWindow {
  return { src, ...NO_UNTRACKED, distinctPorts: 0, distinctHosts: 0, distinctProtocols: 0, firstSeenMs: 0, verifiedMs: 0, ...counts };
}

export function destinationWindowOf(dst: string, counts: Partial<Omit<DestinationWindow, 'dst'>> = {}): DestinationWindow {
  return {
    dst, syn: 0, udp: 0, icmp: 0, bytes: 0, synAck: 0, udpAmp: 0, udpAmpBytes: 0, fragments: 0, fragmentBytes: 0, handshakes: 0, synOut: 0,
    distinctSources: 0, ampSources: 0, ...counts,
  };
}

/** Where a sensor sends what it sees. */
export interface SensorSink {
  tick(tick: SensorTick): void | Promise<void>;
  trip(trip: Trip): void | Promise<void>;
  sample(sample: Sample): void | Promise<void>;
}
