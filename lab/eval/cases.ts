/**
 * The detection eval's cases and their expected verdicts: one table, so that a rule renamed or a
 * case added is a one-line change. Attack cases name the rule that should fire (several of those
 * rules may not exist yet: the eval then reports the case as missed or mislabeled); benign cases
 * expect no incident and no block. Each case runs from its own lab host against its own protected
 * address (lab/eval/addresses.ts), bounded in packets and seconds as written here.
 */
import { DEFAULT_UNVERIFIED_TTL_MS } from '../../blocking/blocker';
import type { HpingMode, NmapScan } from '../traffic';
import type { CaptureKind } from './captures';

export type Traffic =
  | { tool: 'nmap'; scan: NmapScan; ports: string; timing?: 'T3' | 'T4' | 'T5'; fragment?: boolean; decoys?: number; scanDelayMs?: number; ipv6?: boolean; maxSeconds: number }
  | { tool: 'masscan'; ports: string; rate: number }
  /** spoofSource: forge one address of the lab range that no host has (hping3 -a). */
  | { tool: 'hping3'; mode: HpingMode; count: number; intervalUs: number; dport?: number; sweepPorts?: boolean; randSource?: boolean; spoofSource?: boolean; sport?: number; dataBytes?: number; fragment?: boolean }
  /** A pcap written by captures.py at run time and played by tcpreplay: `count` datagrams at `pps` frames a second. */
  | { tool: 'replay'; capture: CaptureKind; count: number; pps: number }
  | { tool: 'curl'; requests: number }
  | { tool: 'wrk'; threads: number; connections: number; seconds: number }
  | { tool: 'iperf3'; udp: boolean; seconds: number; bitrate: string }
  /** The protected host resolves `names` names through a resolver in the lab, `rate` a second. */
  | { tool: 'dns'; names: number; rate: number }
  | { tool: 'ntp'; requests: number; intervalMs: number }
  /** The protected host asks a lab host for a download that comes back as UDP from port 443. */
  | { tool: 'quic'; pps: number; seconds: number };

export interface EvalCase {
  id: string;
  kind: 'attack' | 'benign';
  /** The rule that should open the incident (attack cases). */
  expect?: string;
  traffic: Traffic;
  /** Detector ticks after the traffic ends before the case's blocks are recorded and lifted (default DEFAULT_SETTLE_TICKS). */
  settleTicks?: number;
  /** Runs only once every earlier case has settled (a case that may break the pipeline for what follows). */
  exclusive?: boolean;
}

/** Covers the longest 5 s rule window and the early (trip) path; slow rules say how long they need. */
export const DEFAULT_SETTLE_TICKS = 8;

/**
 * A block on an address that may be forged (a decoy, an hping3 -a source) longer than this counts
 * as a long block: a forger must not be able to shut a real host out for longer than the blocker's
 * one short block on unverified evidence.
 */
export const SHORT_BLOCK_MAX_MS = DEFAULT_UNVERIFIED_TTL_MS;

export const CASES: EvalCase[] = [
  // nmap first: scan-tcp-slow (5-minute window) keeps their incidents open longest.
  { id: 'nmap-sS', kind: 'attack', expect: 'scan-tcp-vertical', traffic: { tool: 'nmap', scan: '-sS', ports: '1-1000', maxSeconds: 20 } },
  { id: 'nmap-sT', kind: 'attack', expect: 'scan-tcp-vertical', traffic: { tool: 'nmap', scan: '-sT', ports: '1-1000', maxSeconds: 20 } },
  { id: 'nmap-sF', kind: 'attack', expect: 'scan-tcp-fin', traffic: { tool: 'nmap', scan: '-sF', ports: '1-1000', maxSeconds: 20 } },
  { id: 'nmap-sN', kind: 'attack', expect: 'scan-tcp-null', traffic: { tool: 'nmap', scan: '-sN', ports: '1-1000', maxSeconds: 20 } },
  { id: 'nmap-sX', kind: 'attack', expect: 'scan-tcp-xmas', traffic: { tool: 'nmap', scan: '-sX', ports: '1-1000', maxSeconds: 20 } },
  { id: 'nmap-sA', kind: 'attack', expect: 'scan-tcp-ack', traffic: { tool: 'nmap', scan: '-sA', ports: '1-1000', maxSeconds: 20 } },
  { id: 'nmap-sW', kind: 'attack', expect: 'scan-tcp-ack', traffic: { tool: 'nmap', scan: '-sW', ports: '1-1000', maxSeconds: 20 } },
  { id: 'nmap-sU', kind: 'attack', expect: 'scan-udp', traffic: { tool: 'nmap', scan: '-sU', ports: '1-200', timing: 'T5', maxSeconds: 20 } },
  { id: 'nmap-sO', kind: 'attack', expect: 'scan-ip-protocol', traffic: { tool: 'nmap', scan: '-sO', ports: '0-255', maxSeconds: 20 } },
  { id: 'nmap-sS-f', kind: 'attack', expect: 'scan-fragmented', traffic: { tool: 'nmap', scan: '-sS', ports: '1-1000', fragment: true, maxSeconds: 20 } },
  { id: 'nmap-sS-D', kind: 'attack', expect: 'scan-tcp-vertical', traffic: { tool: 'nmap', scan: '-sS', ports: '1-1000', decoys: 5, maxSeconds: 20 } },
  // About 3 probes a second: below scan-tcp-vertical, 40 ports reached after about 13 s; the 5-minute window slides in 15 s steps.
  { id: 'nmap-sS-slow', kind: 'attack', expect: 'scan-tcp-slow', settleTicks: 35, traffic: { tool: 'nmap', scan: '-sS', ports: '1-60', scanDelayMs: 300, maxSeconds: 45 } },
  { id: 'masscan', kind: 'attack', expect: 'scan-tcp-vertical', traffic: { tool: 'masscan', ports: '1-1000', rate: 2000 } },

  // hping3 paces by -i (machines differ in how close they get): what arrived, and its peak a second, is recorded per case.
  { id: 'hping3-S-flood', kind: 'attack', expect: 'flood-syn', traffic: { tool: 'hping3', mode: 'syn', count: 6000, intervalUs: 200, dport: 8080 } },
  { id: 'hping3-S-rand-source', kind: 'attack', expect: 'flood-syn-spoofed', traffic: { tool: 'hping3', mode: 'syn', count: 30_000, intervalUs: 100, dport: 8080, randSource: true } },
  { id: 'hping3-S-spoofed-a', kind: 'attack', expect: 'flood-syn', traffic: { tool: 'hping3', mode: 'syn', count: 6000, intervalUs: 200, dport: 8080, spoofSource: true } },
  { id: 'hping3-udp-sport53', kind: 'attack', expect: 'flood-udp', traffic: { tool: 'hping3', mode: 'udp', count: 40_000, intervalUs: 50, dport: 53, sport: 53 } },
  { id: 'hping3-SA-rand-source', kind: 'attack', expect: 'reflection-syn-ack', traffic: { tool: 'hping3', mode: 'syn-ack', count: 20_000, intervalUs: 100, dport: 8080, randSource: true } },
  // 300 datagrams of 1,400 bytes in 16-byte fragments: about 26,000 frames.
  { id: 'hping3-udp-fragments', kind: 'attack', expect: 'flood-fragments', traffic: { tool: 'hping3', mode: 'udp', count: 300, intervalUs: 5000, dport: 53, dataBytes: 1400, fragment: true } },
  { id: 'hping3-icmp-flood', kind: 'attack', expect: 'flood-icmp', traffic: { tool: 'hping3', mode: 'icmp', count: 6000, intervalUs: 200 } },
  { id: 'hping3-icmp-rand-source', kind: 'attack', expect: 'flood-icmp-spoofed', traffic: { tool: 'hping3', mode: 'icmp', count: 30_000, intervalUs: 100, randSource: true } },
  { id: 'hping3-F-spoofed-a', kind: 'attack', expect: 'scan-tcp-fin', traffic: { tool: 'hping3', mode: 'fin', count: 500, intervalUs: 2000, dport: 1, sweepPorts: true, spoofSource: true } },

  { id: 'benign-curl', kind: 'benign', traffic: { tool: 'curl', requests: 300 } },
  { id: 'benign-wrk', kind: 'benign', traffic: { tool: 'wrk', threads: 2, connections: 20, seconds: 5 } },
  { id: 'benign-iperf3-tcp', kind: 'benign', traffic: { tool: 'iperf3', udp: false, seconds: 4, bitrate: '500M' } },
  // 50 Mbit/s of 1,400-byte datagrams is about 4,500 a second, under flood-udp's 5,000 (rules/floods.yaml).
  { id: 'benign-iperf3-udp', kind: 'benign', traffic: { tool: 'iperf3', udp: true, seconds: 4, bitrate: '50M' } },
  { id: 'benign-dns-resolver', kind: 'benign', traffic: { tool: 'dns', names: 3000, rate: 300 } },
  { id: 'benign-ntp-sync', kind: 'benign', traffic: { tool: 'ntp', requests: 8, intervalMs: 250 } },
  { id: 'benign-quic-download', kind: 'benign', traffic: { tool: 'quic', pps: 3000, seconds: 4 } },

  // Captures: reflected answers from hundreds of reflectors, and a slow spoofed SYN flood. After
  // the benign cases: today scan-udp blocks reflectors one by one until the blocking budget's
  // breaker opens, and then refuses every new block for 5 minutes.
  { id: 'replay-dns-amplification', kind: 'attack', expect: 'reflection-udp-amplification', traffic: { tool: 'replay', capture: 'dns-amplification', count: 4000, pps: 2000 } },
  { id: 'replay-ntp-monlist', kind: 'attack', expect: 'reflection-udp-amplification', traffic: { tool: 'replay', capture: 'ntp-monlist', count: 6000, pps: 2000 } },
  { id: 'replay-memcached', kind: 'attack', expect: 'reflection-udp-amplification', traffic: { tool: 'replay', capture: 'memcached', count: 3000, pps: 1000 } },
  { id: 'replay-ssdp', kind: 'attack', expect: 'reflection-udp-amplification', traffic: { tool: 'replay', capture: 'ssdp', count: 6000, pps: 2000 } },
  { id: 'replay-syn-spoofed-slow', kind: 'attack', expect: 'flood-syn-spoofed-slow', traffic: { tool: 'replay', capture: 'syn-spoofed-slow', count: 6000, pps: 300 } },

  // Last and alone: today an IPv6 source's fast-path trip stalls the sensor's publisher for good
  // (its BullMQ job id contains the address's ':'), and no window after it reaches the detector.
  { id: 'nmap-6-sS', kind: 'attack', expect: 'scan-tcp-vertical', exclusive: true, traffic: { tool: 'nmap', scan: '-sS', ports: '1-1000', ipv6: true, maxSeconds: 20 } },
];
