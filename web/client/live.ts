/**
 * The page's one connection to the live feed (GET /v1/live, server-sent events), and what it
 * remembers of it while the page is open: packets and drops a second over the last minutes
 * (every sensor added up), each sensor's newest top sources, and the incidents that opened.
 */
import type { IncidentRow, TickSummary } from './types.js';

export const KEEP_SECONDS = 300;
const KEEP_OPENED = 20;

export type LiveListener = (event: 'tick' | 'incident' | 'ledger' | 'history', data: unknown) => void;

const listeners = new Set<LiveListener>();
let source: EventSource | undefined;

/** Per second (ms of the second's start): packets and drops, summed over sensors. */
export const perSecond = new Map<number, { packets: number; drops: number }>();
export const latestTicks = new Map<string, TickSummary>();
export const opened: IncidentRow[] = [];

function record(tick: TickSummary): void {
  const second = Math.floor(tick.endMs / 1000) * 1000;
  const slot = perSecond.get(second) ?? { packets: 0, drops: 0 };
  slot.packets += tick.packets / tick.seconds;
  slot.drops += tick.drops / tick.seconds;
  perSecond.set(second, slot);
  for (const key of perSecond.keys()) if (key < second - KEEP_SECONDS * 1000) perSecond.delete(key);
  const newest = latestTicks.get(tick.sensor);
  if (!newest || newest.endMs <= tick.endMs) latestTicks.set(tick.sensor, tick);
}

function dispatch(event: Parameters<LiveListener>[0], data: unknown): void {
  if (event === 'history') (data as { ticks: TickSummary[] }).ticks.forEach(record);
  if (event === 'tick') record(data as TickSummary);
  if (event === 'incident') {
    opened.unshift(data as IncidentRow);
    opened.length = Math.min(opened.length, KEEP_OPENED);
  }
  for (const listener of listeners) listener(event, data);
}

/** Opens the feed; `ended` runs when the server refuses it (the session ended). */
export function connect(ended: () => void): void {
  source?.close();
  perSecond.clear();
  latestTicks.clear();
  const es = new EventSource('/v1/live');
  source = es;
  for (const event of ['history', 'tick', 'incident', 'ledger'] as const) {
    es.addEventListener(event, (m) => dispatch(event, JSON.parse((m as MessageEvent<string>).data)));
  }
  // A network error reconnects on its own; a refusal (401, 503) closes the source for good.
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED && source === es) ended();
  };
}

export function disconnect(): void {
  source?.close();
  source = undefined;
}

export function onLive(listener: LiveListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
