/** Every sensor on this Redis: attached or not, mode, last tick, source-table fill, ring buffer losses, drops by reason, kernel repairs. */
import { api } from '../api.js';
import { fill, h, table } from '../dom.js';
import { ago, num, time } from '../format.js';
import type { Page } from './page.js';

interface Listing {
  sensor: string;
  seenMs: number;
  status?: {
    iface: string; mode: string; attachedMs: number; windowMs: number; lastTickMs: number; ready: boolean; trackedSources: number; sourceCapacity: number; detachedMs?: number;
    totals: { packets: number; drops: Record<string, number>; ringBufferLosses: number; eventsLimited: number; untrackedPackets: number; evictedSources: number };
  };
  kernel: { repairs: Record<string, number>; drops: Record<string, number> };
}

const REFRESH_MS = 5000;

function state(s: Listing): string {
  if (!s.status) return 'not reporting';
  if (s.status.detachedMs !== undefined) return `detached ${time(s.status.detachedMs)}`;
  if (Date.now() - s.status.lastTickMs > 5 * s.status.windowMs + 2000) return 'attached, ticks late';
  return s.status.ready ? 'attached' : 'attached, syncing blocks';
}

export const sensorsPage: Page = async (view) => {
  const list = h('div');
  fill(view, h('h1', {}, 'Sensors'), list);
  const load = async (): Promise<void> => {
    const { sensors } = await api<{ sensors: Listing[] }>('GET', '/v1/sensors');
    fill(list, table('sensors', ['sensor', 'state', 'interface', 'mode', 'attached since', 'last tick', 'sources tracked', 'ring buffer losses', 'drops', 'untracked packets', 'evicted', 'kernel repairs'],
      sensors.map((s) => {
        const st = s.status;
        if (!st) return [s.sensor, state(s), '-', '-', '-', `enforcer seen ${ago(s.seenMs)}`, '-', '-', '-', '-', '-', '-'];
        const fillPct = ((st.trackedSources / st.sourceCapacity) * 100).toFixed(1);
        return [
          s.sensor, h('span', { 'data-state': state(s) }, state(s)), st.iface, st.mode, time(st.attachedMs), ago(st.lastTickMs),
          `${num(st.trackedSources)} of ${num(st.sourceCapacity)} (${fillPct}%)`, num(st.totals.ringBufferLosses),
          Object.entries(st.totals.drops).map(([reason, n]) => `${reason} ${num(n)}`).join(', '), num(st.totals.untrackedPackets), num(st.totals.evictedSources),
          Object.entries(s.kernel.repairs).map(([k, n]) => `${k} ${n}`).join(', ') || '-',
        ];
      }), 'No sensor has reported to this Redis.'));
  };
  await load();
  const timer = setInterval(() => void load().catch(() => undefined), REFRESH_MS);
  return () => clearInterval(timer);
};
