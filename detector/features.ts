/**
 * The one definition of what rules (and later an anomaly model) can see of a key's traffic.
 *
 * A scope's counters are read from the sensor's per-window records and summed over a rule's
 * window; derived features are always recomputed from those sums, never averaged. Rules name
 * features in snake_case; rules/FEATURES.md is generated from this file (detector/features-doc.ts).
 */
import type { DestinationWindow, SourceWindow } from '../common/sensor-tick';

export type Scope = 'source' | 'destination';

interface FeatureBase {
  /** As written in rules. */
  name: string;
  scope: Scope;
  unit: string;
  meaning: string;
}

/** The fields of a window record that hold counts. */
export type CountField<W> = { [K in keyof W]: W[K] extends number ? K : never }[keyof W];

export interface CounterFeature<W> extends FeatureBase {
  kind: 'counter';
  /** Position of the counter in a scope's feature vector. */
  index: number;
  /** The field of the sensor's window record it comes from. */
  field: CountField<W>;
  read(window: W): number;
}

export interface DerivedFeature extends FeatureBase {
  kind: 'derived';
  /** How it is computed, for people (FEATURES.md, rule authors). */
  formula: string;
  /** The counters it reads: windows keep only counters that some rule needs. */
  inputs: readonly number[];
  compute(vector: Float64Array): number;
}

export type Feature = CounterFeature<SourceWindow> | CounterFeature<DestinationWindow> | DerivedFeature;

/**
 * A scope's feature vector: its counters by index, summed over the window, then the window's
 * length in seconds at `secondsIndex` (rates divide by it).
 */
export interface ScopeLayout<W> {
  scope: Scope;
  counters: readonly CounterFeature<W>[];
  derived: readonly DerivedFeature[];
  secondsIndex: number;
  vectorLength: number;
}

type CounterSpec<W> = [name: string, unit: string, meaning: string, field: CountField<W>];
/** `make` receives the counters' indexes and the seconds index, and returns the computation with them bound. */
type DerivedSpec = [name: string, unit: string, meaning: string, formula: string, inputs: string[], make: (at: Record<string, number>, seconds: number) => (v: Float64Array) => number];

function layout<W>(scope: Scope, counterSpecs: CounterSpec<W>[], derivedSpecs: DerivedSpec[]): ScopeLayout<W> {
  const counters = counterSpecs.map(([name, unit, meaning, field], index): CounterFeature<W> => ({
    kind: 'counter', name, scope, unit, meaning, index, field, read: (w) => w[field] as number,
  }));
  const at: Record<string, number> = Object.fromEntries(counters.map((c) => [c.name, c.index]));
  const secondsIndex = counters.length;
  const derived = derivedSpecs.map(([name, unit, meaning, formula, inputNames, make]): DerivedFeature => {
    for (const input of inputNames) if (!(input in at)) throw new Error(`feature ${name} reads unknown counter ${input}`);
    return { kind: 'derived', name, scope, unit, meaning, formula, inputs: inputNames.map((n) => at[n]), compute: make(at, secondsIndex) };
  });
  return { scope, counters, derived, secondsIndex, vectorLength: secondsIndex + 1 };
}

/** x / max(y, 1): a ratio that stays finite (and equal to x) when the denominator is zero. */
function ratio(x: number, y: number): (v: Float64Array) => number {
  return (v) => v[x] / Math.max(v[y], 1);
}

function rate(x: number, seconds: number, scale = 1): (v: Float64Array) => number {
  return (v) => (v[x] * scale) / v[seconds];
}

export const SOURCE = layout<SourceWindow>('source', [
  ['packets', 'packets', 'Packets from the source that passed the sensor, malformed ones included', 'packets'],
  ['bytes', 'bytes', 'Frame bytes of those packets', 'bytes'],
  ['syn', 'packets', 'TCP SYN without ACK, RST or FIN: connection attempts and SYN scan probes', 'syn'],
  ['syn_ack', 'packets', 'TCP SYN+ACK: the source accepting connections (or reflecting SYNs)', 'synAck'],
  ['ack_only', 'packets', 'TCP ACK without SYN, RST or FIN (PSH/URG allowed): data and acknowledgements of established connections', 'ackOnly'],
  ['rst', 'packets', 'TCP packets with RST set (RST and RST+ACK)', 'rst'],
  ['fin', 'packets', 'TCP FIN without SYN (with or without ACK): connection closes, and FIN/XMAS probes', 'fin'],
  ['null_scan', 'packets', 'TCP packets with no flags at all (NULL scan probes)', 'nullScan'],
  ['fin_only', 'packets', 'TCP FIN alone, without ACK (FIN scan probes; real stacks close with FIN+ACK)', 'finOnly'],
  ['xmas', 'packets', 'TCP FIN+PSH+URG alone (XMAS scan probes)', 'xmas'],
  ['syn_fin', 'packets', 'TCP SYN and FIN together (never valid; scans and IDS evasion)', 'synFin'],
  ['udp', 'packets', 'UDP packets', 'udp'],
  ['icmp', 'packets', 'ICMP and ICMPv6 packets', 'icmp'],
  ['fragments', 'packets', 'Non-first IP fragments (their ports and flags are unknown)', 'fragments'],
  ['first_fragments', 'packets', 'First IP fragments (more fragments follow): their ports count in distinct_ports; when the fragment ends inside the TCP header (nmap -f) its flags are unknown and it is in no TCP class', 'firstFragments'],
  ['malformed', 'packets', 'Packets with a valid IP header and a truncated or invalid TCP/UDP/ICMP header, or more IPv6 extension headers than the sensor walks (8)', 'malformed'],
  ['replies', 'packets', 'TCP/UDP from a service port (well-known, registered or amplifier) to an ephemeral port, SYNs excepted: answers to requests of the protected host, not probes; they are not in distinct_ports', 'replies'],
  ['handshakes', 'handshakes', 'TCP handshakes the source completed with a protected host (it ACKed a SYN-ACK of ours with the right number): evidence that the address is not forged', 'handshakes'],
  ['ttl_mismatch', 'packets', 'Packets whose TTL is more than 2 away from the TTL of the source\'s last handshake: another path than the real host\'s, such as packets forged in its name', 'ttlMismatch'],
  ['distinct_ports', 'ports', 'Distinct TCP/UDP destination ports of probes (replies excluded) per window (sketch estimate); over several windows the sum of the per-window estimates, an upper bound that is exact when every window sees new ports, as a scan does', 'distinctPorts'],
  ['distinct_hosts', 'hosts', 'Distinct destination addresses per window (sketch estimate); over several windows the sum of the per-window estimates, like distinct_ports', 'distinctHosts'],
  ['distinct_protocols', 'protocols', 'Distinct IP protocols (after IPv6 extension headers) per window (sketch estimate over 32 bits, saturating near 100); summed over windows like distinct_ports', 'distinctProtocols'],
], [
  ['ack_per_syn', 'ratio', 'ACK-only packets per SYN: near 0 when SYNs are never followed by a connection (scans, floods), several for real connections', 'ack_only / max(syn, 1)', ['ack_only', 'syn'], (at) => ratio(at.ack_only, at.syn)],
  ['rst_per_syn', 'ratio', 'RST packets per SYN: around 1 at most for a client (one abort per connection); far above 1 for RST floods', 'rst / max(syn, 1)', ['rst', 'syn'], (at) => ratio(at.rst, at.syn)],
  ['syn_ack_per_syn', 'ratio', 'SYN+ACK packets per SYN sent by the source', 'syn_ack / max(syn, 1)', ['syn_ack', 'syn'], (at) => ratio(at.syn_ack, at.syn)],
  ['odd_flags', 'packets', 'Stealth-scan probes of every kind', 'null_scan + fin_only + xmas + syn_fin', ['null_scan', 'fin_only', 'xmas', 'syn_fin'],
    ({ null_scan: a, fin_only: b, xmas: c, syn_fin: d }) => (v) => v[a] + v[b] + v[c] + v[d]],
  ['avg_packet_bytes', 'bytes', 'Mean frame size', 'bytes / max(packets, 1)', ['bytes', 'packets'], (at) => ratio(at.bytes, at.packets)],
  ['pps', 'packets/s', 'Packets per second over the window', 'packets / seconds', ['packets'], (at, s) => rate(at.packets, s)],
  ['bps', 'bits/s', 'Bits per second over the window', 'bytes * 8 / seconds', ['bytes'], (at, s) => rate(at.bytes, s, 8)],
  ['syn_per_s', 'packets/s', 'SYN packets per second over the window', 'syn / seconds', ['syn'], (at, s) => rate(at.syn, s)],
  ['rst_per_s', 'packets/s', 'RST packets per second over the window', 'rst / seconds', ['rst'], (at, s) => rate(at.rst, s)],
  ['udp_per_s', 'packets/s', 'UDP packets per second over the window', 'udp / seconds', ['udp'], (at, s) => rate(at.udp, s)],
  ['icmp_per_s', 'packets/s', 'ICMP packets per second over the window', 'icmp / seconds', ['icmp'], (at, s) => rate(at.icmp, s)],
  ['fragments_per_s', 'packets/s', 'IP fragments (first and later) per second over the window', '(fragments + first_fragments) / seconds', ['fragments', 'first_fragments'],
    ({ fragments, first_fragments }, s) => (v) => (v[fragments] + v[first_fragments]) / v[s]],
]);

export const DESTINATION = layout<DestinationWindow>('destination', [
  ['syn', 'packets', 'TCP SYN packets (SYN without ACK, RST or FIN) to the destination, from any source, spoofed ones included', 'syn'],
  ['syn_ack', 'packets', 'TCP SYN-ACKs to the destination: answers to its own connection attempts, or backscatter of SYNs forged in its name (reflection)', 'synAck'],
  ['udp', 'packets', 'UDP packets to the destination', 'udp'],
  ['icmp', 'packets', 'ICMP and ICMPv6 packets to the destination', 'icmp'],
  ['udp_amp', 'packets', 'UDP from amplifier service ports (DNS 53, NTP 123, SNMP 161, CLDAP 389, SSDP 1900, memcached 11211 and the others of sensor/ports.ts) to the destination', 'udpAmp'],
  ['udp_amp_bytes', 'bytes', 'Frame bytes of udp_amp', 'udpAmpBytes'],
  ['fragments', 'packets', 'IP fragments (first and later) to the destination', 'fragments'],
  ['fragment_bytes', 'bytes', 'Frame bytes of those fragments', 'fragmentBytes'],
  ['handshakes', 'handshakes', 'TCP handshakes completed with the destination (its SYN-ACKs ACKed): real clients complete, forged sources never do', 'handshakes'],
  ['syn_out', 'packets', 'SYNs the destination itself sent out (seen at TC egress): what SYN-ACKs to it may legitimately answer', 'synOut'],
  ['bytes', 'bytes', 'Frame bytes of every packet counted per destination (the classes above)', 'bytes'],
  ['distinct_sources', 'sources', 'Distinct sources of the classes above per window (sketch estimate, saturating near 3,200); over several windows the sum of the per-window estimates', 'distinctSources'],
  ['amp_sources', 'sources', 'Distinct sources of udp_amp per window (sketch estimate, saturating near 600): reflectors; a resolver answering the host is one', 'ampSources'],
], [
  ['packets', 'packets', 'SYN, SYN-ACK, UDP and ICMP packets to the destination', 'syn + syn_ack + udp + icmp', ['syn', 'syn_ack', 'udp', 'icmp'],
    ({ syn, syn_ack, udp, icmp }) => (v) => v[syn] + v[syn_ack] + v[udp] + v[icmp]],
  ['syn_per_source', 'packets', 'SYNs per distinct source: about 1 for spoofed floods until the sketch saturates', 'syn / max(distinct_sources, 1)', ['syn', 'distinct_sources'], (at) => ratio(at.syn, at.distinct_sources)],
  ['handshakes_per_syn', 'ratio', 'Handshakes completed per SYN received: near 1 for real clients, near 0 when the SYNs come from forged sources', 'handshakes / max(syn, 1)', ['handshakes', 'syn'], (at) => ratio(at.handshakes, at.syn)],
  ['unsolicited_syn_ack', 'packets', 'SYN-ACKs beyond the SYNs the destination sent: answers to connections it never opened', 'max(syn_ack - syn_out, 0)', ['syn_ack', 'syn_out'],
    ({ syn_ack, syn_out }) => (v) => Math.max(v[syn_ack] - v[syn_out], 0)],
  ['pps', 'packets/s', 'SYN, SYN-ACK, UDP and ICMP packets per second over the window', 'packets / seconds', ['syn', 'syn_ack', 'udp', 'icmp'],
    ({ syn, syn_ack, udp, icmp }, s) => (v) => (v[syn] + v[syn_ack] + v[udp] + v[icmp]) / v[s]],
  ['bps', 'bits/s', 'Bits per second of every packet counted per destination', 'bytes * 8 / seconds', ['bytes'], (at, s) => rate(at.bytes, s, 8)],
  ['syn_per_s', 'packets/s', 'SYN packets per second over the window', 'syn / seconds', ['syn'], (at, s) => rate(at.syn, s)],
  ['syn_ack_per_s', 'packets/s', 'SYN-ACKs per second over the window', 'syn_ack / seconds', ['syn_ack'], (at, s) => rate(at.syn_ack, s)],
  ['udp_per_s', 'packets/s', 'UDP packets per second over the window', 'udp / seconds', ['udp'], (at, s) => rate(at.udp, s)],
  ['udp_amp_per_s', 'packets/s', 'UDP packets from amplifier ports per second', 'udp_amp / seconds', ['udp_amp'], (at, s) => rate(at.udp_amp, s)],
  ['udp_amp_bps', 'bits/s', 'Bits per second of UDP from amplifier ports', 'udp_amp_bytes * 8 / seconds', ['udp_amp_bytes'], (at, s) => rate(at.udp_amp_bytes, s, 8)],
  ['fragments_per_s', 'packets/s', 'IP fragments per second', 'fragments / seconds', ['fragments'], (at, s) => rate(at.fragments, s)],
  ['fragment_bps', 'bits/s', 'Bits per second of IP fragments', 'fragment_bytes * 8 / seconds', ['fragment_bytes'], (at, s) => rate(at.fragment_bytes, s, 8)],
  ['icmp_per_s', 'packets/s', 'ICMP packets per second over the window', 'icmp / seconds', ['icmp'], (at, s) => rate(at.icmp, s)],
]);

export const LAYOUTS: { source: ScopeLayout<SourceWindow>; destination: ScopeLayout<DestinationWindow> } = { source: SOURCE, destination: DESTINATION };

export type AnyLayout = ScopeLayout<SourceWindow> | ScopeLayout<DestinationWindow>;

export function featuresOf(scope: Scope): readonly Feature[] {
  const l: AnyLayout = LAYOUTS[scope];
  return [...l.counters, ...l.derived];
}

const BY_NAME = {
  source: new Map(featuresOf('source').map((f) => [f.name, f])),
  destination: new Map(featuresOf('destination').map((f) => [f.name, f])),
};

export function findFeature(scope: Scope, name: string): Feature | undefined {
  return BY_NAME[scope].get(name);
}

/** The counter indexes a feature reads. */
export function counterInputs(feature: Feature): readonly number[] {
  return feature.kind === 'counter' ? [feature.index] : feature.inputs;
}

/** A feature's value from a feature vector (counters summed, seconds last). */
export function featureValue(feature: Feature, vector: Float64Array): number {
  return feature.kind === 'counter' ? vector[feature.index] : feature.compute(vector);
}

/** A feature vector for one window of the given counts (by counter name; missing = 0). */
export function vectorOf(scope: Scope, counts: Readonly<Record<string, number>>, seconds: number): Float64Array {
  const l: AnyLayout = LAYOUTS[scope];
  const v = new Float64Array(l.vectorLength);
  for (const c of l.counters) v[c.index] = counts[c.name] ?? 0;
  v[l.secondsIndex] = seconds;
  return v;
}
