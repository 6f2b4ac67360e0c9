/** A fixed, seeded dataset of source-windows for the model's unit tests. */
import { NO_UNTRACKED, sourceWindowOf, type SensorTick, type SourceWindow } from '../../common/sensor-tick';
import { seededRandom } from '../../detector/model/random';

export type Profile = 'web' | 'dns' | 'bulk' | 'scan' | 'null-scan';

export function windowOf(src: string, profile: Profile, random: () => number): SourceWindow {
  const n = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const w = sourceWindowOf(src);
  if (profile === 'web') {
    w.syn = n(1, 3);
    w.fin = w.syn;
    w.ackOnly = w.syn * n(3, 5);
    w.packets = w.syn + w.fin + w.ackOnly;
    w.bytes = w.packets * n(70, 200);
    w.distinctPorts = 1;
    w.distinctHosts = 1;
  } else if (profile === 'dns') {
    w.udp = n(1, 4);
    w.packets = w.udp;
    w.bytes = w.udp * n(70, 90);
    w.distinctPorts = 1;
    w.distinctHosts = 1;
  } else if (profile === 'bulk') {
    w.ackOnly = n(500, 1500);
    w.packets = w.ackOnly;
    w.bytes = w.packets * n(1300, 1500);
    w.distinctPorts = 1;
    w.distinctHosts = 1;
  } else if (profile === 'scan') {
    w.syn = n(400, 600);
    w.rst = n(0, 5);
    w.packets = w.syn + w.rst;
    w.bytes = w.packets * 58;
    w.distinctPorts = w.syn;
    w.distinctHosts = 1;
  } else {
    w.nullScan = n(100, 200);
    w.packets = w.nullScan;
    w.bytes = w.packets * 54;
    w.distinctPorts = w.nullScan;
    w.distinctHosts = 1;
  }
  return w;
}

export function tickOf(window: number, sources: SourceWindow[], sensor = 'unit'): SensorTick {
  return {
    sensor, iface: 'veth0', window, startMs: 1_700_000_000_000 + window * 1000, endMs: 1_700_000_000_000 + (window + 1) * 1000, sources, destinations: [],
    untracked: { ...NO_UNTRACKED }, globals: {}, trackedSources: sources.length, evictedSources: 0,
  };
}

/** `count` one-second ticks of `sources` benign sources (a third each web, DNS, and mostly-web with the odd bulk transfer). */
export function benignTicks(seed: number, count: number, sources = 40, firstWindow = 0): SensorTick[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, t) => tickOf(firstWindow + t, Array.from({ length: sources }, (_, s) => {
    const profile: Profile = s % 3 === 0 ? 'web' : s % 3 === 1 ? 'dns' : random() < 0.1 ? 'bulk' : 'web';
    return windowOf(`198.18.9.${s + 10}`, profile, random);
  })));
}
