/** Alert events as the detector sends them, for alerter tests. */
import { ALERT_EVENT_VERSION, type Incident, type IncidentEvent } from '../../common/alert-events';
import type { HeaderSample } from '../../common/sensor-tick';

export function headerSample(over: Partial<HeaderSample> = {}): HeaderSample {
  return {
    tsMs: Date.UTC(2025, 0, 1, 12, 0, 0), src: '198.18.0.66', dst: '198.18.0.10', srcMac: '02:00:00:00:00:66', dstMac: '02:00:00:00:00:10',
    etherType: 0x0800, vlans: [], ipVersion: 4, protocol: 6, length: 54, ttl: 49, dscp: 10, ecn: 0, ipId: 4242, flowLabel: 0,
    fragment: { df: true, mf: false, nonFirst: false }, srcPort: 40001, dstPort: 22, tcpFlags: 'S', seq: 1, ack: 0, tcpWindow: 1024,
    icmpType: 0, icmpCode: 0, ...over,
  };
}

export function incident(over: Partial<Incident> = {}): Incident {
  const t0 = Date.UTC(2025, 0, 1, 12, 0, 0);
  return {
    id: 'inc-1', ruleId: 'scan.syn-ports', ruleVersion: 'a1b2c3d4', title: 'SYN port scan', description: 'One source probes many TCP ports.',
    severity: 'high', mitre: ['T1046'], tags: ['scan'], scope: 'source', groupBy: 'src', key: '198.18.0.66', sensors: ['lab/xi0'],
    when: 'syn >= 30 && distinct_ports >= 20', windowMs: 1000, firstWindowMs: t0, openedMs: t0 + 1000, lastSeenMs: t0 + 2000, detections: 2,
    features: { syn: 120, distinct_ports: 100 }, peak: { syn: 150, distinct_ports: 110 },
    conditions: [{ expression: 'syn >= 30', value: 120, threshold: 30, holds: true }, { expression: 'distinct_ports >= 20', value: 100, threshold: 20, holds: true }],
    evidence: [headerSample(), headerSample({ dstPort: 23, tcpFlags: 'S', ttl: 48 })],
    block: { status: 'blocked', target: '198.18.0.66/32', expiresMs: t0 + 3_600_000, undo: 'xdp-ids block del 198.18.0.66/32' },
    ...over,
  };
}

export function incidentEvent(phase: IncidentEvent['phase'], inc: Incident, id = `${inc.id}-${phase}-${Math.random().toString(36).slice(2)}`): IncidentEvent {
  return { v: ALERT_EVENT_VERSION, id, atMs: Date.now(), kind: 'incident', phase, incident: inc };
}
