import type { IncidentStore } from '../../detector/incidents';
import type { BlockLedger } from '../../blocking/ledger';
import type { Incident } from '../../common/alert-events';
import type { SensorStatusReader } from '../../sensor/status';
import { LiveFeed, type LiveEvent } from '../../web/live';
import { incident } from '../support/alert-fixtures';
import { quietLogger } from '../support/quiet-logger';

const T0 = 1_800_000_000_000;

/** The incidents index as the feed reads it: opened after a time, oldest first. */
function fakeIncidents(stored: Incident[]): IncidentStore {
  return { openedSince: async (ms: number) => stored.filter((i) => i.openedMs > ms).sort((a, b) => a.openedMs - b.openedMs) } as unknown as IncidentStore;
}

describe('the live feed', () => {
  beforeEach(() => jest.useFakeTimers({ now: T0 }));
  afterEach(() => jest.useRealTimers());

  test('announces every incident once, also those opened in the same millisecond as one it already read', async () => {
    const stored: Incident[] = [];
    const sensors = { list: async () => [], since: async () => ({ summaries: [], cursors: new Map() }) } as unknown as SensorStatusReader;
    const ledger = { generation: async () => ({ rev: 1 }) } as unknown as BlockLedger;
    const feed = new LiveFeed({ sensors, incidents: fakeIncidents(stored), ledger, log: quietLogger });
    const sent: LiveEvent[] = [];
    const remove = feed.add({ send: (e) => sent.push(e), end: () => undefined });
    try {
      stored.push(incident({ id: 'inc-a', ruleId: 'flood-syn', openedMs: T0 + 500 }));
      await jest.advanceTimersByTimeAsync(1000);
      // Opened by the same detection, written just after the feed read the index.
      stored.push(incident({ id: 'inc-b', ruleId: 'scan-tcp-vertical', openedMs: T0 + 500 }));
      await jest.advanceTimersByTimeAsync(1000);
      stored.push(incident({ id: 'inc-c', ruleId: 'scan-tcp-slow', openedMs: T0 + 1700 }));
      await jest.advanceTimersByTimeAsync(2000);
      expect(sent.filter((e) => e.event === 'incident').map((e) => (e.data as { id: string }).id)).toEqual(['inc-a', 'inc-b', 'inc-c']);
    } finally {
      remove();
    }
  });
});
