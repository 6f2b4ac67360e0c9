import { NO_UNTRACKED, sourceWindowOf, type SensorTick } from '../../common/sensor-tick';
import { monotonicNs } from '../../sensor/clock';
import { TopView } from '../../sensor/top-view';
import { incident, incidentEvent } from '../support/alert-fixtures';

/** A terminal (or a pipe) that keeps what was written. */
function output(tty: boolean, rows = 60): NodeJS.WriteStream & { text: string } {
  const out = { isTTY: tty, rows: tty ? rows : undefined, columns: tty ? 160 : undefined, text: '', write(s: string) { out.text += s; return true; } };
  return out as unknown as NodeJS.WriteStream & { text: string };
}

function tick(globals: Record<string, number>): SensorTick {
  return {
    sensor: 's1', iface: 'lab0', window: 7, startMs: 1_000, endMs: 2_000, destinations: [], untracked: { ...NO_UNTRACKED }, globals, trackedSources: 2, evictedSources: 0,
    sources: [sourceWindowOf('198.18.0.66', { packets: 900, syn: 900, distinctPorts: 800 }), sourceWindowOf('198.18.0.10', { packets: 40, ackOnly: 30 })],
  };
}

const WARNING = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 0, 5), msg: 'Redis unreachable', part: 'publisher' });

describe('the live view', () => {
  test('on a terminal it redraws in place: traffic, drops by reason, top sources, open incidents, kernel blocks, notes and warnings', () => {
    const out = output(true);
    const view = new TopView(out, 'xdp-ids on lab0', { blocks: () => [{ prefix: '198.18.0.66/32', expiresNs: monotonicNs() + 120_000_000_000n, drops: 42, lastDropNs: 0n, retained: false }], incidents: true });
    let link = 'dashboard: http://127.0.0.1:9477/#login=xdpl_a';
    view.note(() => link);
    const scan = incident({ id: 'inc-1', ruleId: 'scan-tcp-vertical', key: '198.18.0.66' });
    const other = incident({ id: 'inc-2', ruleId: 'flood-syn', key: '198.18.0.77' });
    view.incident(incidentEvent('opened', scan));
    view.incident(incidentEvent('opened', other));
    view.incident(incidentEvent('resolved', other));
    view.warning(WARNING);
    view.tick(tick({ packets: 1000, bytes: 60_000, drop_blocked: 20, drop_dst_limit: 5 }));
    expect(out.text.startsWith('\x1b[H')).toBe(true);
    expect(out.text).not.toContain('\x1b[2J');
    expect(out.text).toContain('dashboard: http://127.0.0.1:9477/#login=xdpl_a');
    expect(out.text).toMatch(/packets 1000\/s .* drops 25\/s \(blocked 20, destination-limit 5, unparsed 0\)/);
    expect(out.text.indexOf('198.18.0.66 ')).toBeLessThan(out.text.indexOf('198.18.0.10 '));
    expect(out.text).toContain('open incidents: 1');
    expect(out.text).toMatch(/scan-tcp-vertical +198\.18\.0\.66/);
    expect(out.text).not.toContain('flood-syn');
    expect(out.text).toMatch(/198\.18\.0\.66\/32 +1(19|20) s left {2}42 dropped/);
    expect(out.text).toContain('12:00:05 WARN Redis unreachable (publisher)');

    out.text = '';
    link = 'dashboard: http://127.0.0.1:9477/#login=xdpl_b';
    view.tick(tick({ packets: 10 }));
    expect(out.text).toContain('xdpl_b');
  });

  test('on a small terminal it shows what fits', () => {
    const out = output(true, 6);
    new TopView(out, 'xdp-ids').tick(tick({ packets: 1 }));
    expect(out.text.split('\n').filter((l) => l.endsWith('\x1b[K'))).toHaveLength(5);
  });

  test('elsewhere it writes plain lines: one a tick, incidents, warnings, and notes when they change', () => {
    const out = output(false);
    const view = new TopView(out, 'xdp-ids on lab0');
    let progress = 'anomaly model: learning the lab\'s normal traffic, 0%';
    view.note(() => progress);
    view.tick(tick({ packets: 1000, drop_blocked: 3 }));
    view.tick(tick({ packets: 1000 }));
    progress = 'anomaly model: training';
    view.tick(tick({ packets: 1000 }));
    view.incident(incidentEvent('opened', incident({ id: 'inc-1', ruleId: 'scan-tcp-vertical', key: '198.18.0.66' })));
    view.warning(WARNING);
    const lines = out.text.trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith('anomaly model'))).toEqual(['anomaly model: learning the lab\'s normal traffic, 0%', 'anomaly model: training']);
    expect(lines.filter((l) => l.includes('packets='))).toHaveLength(3);
    expect(lines).toContainEqual(expect.stringMatching(/packets=1000 drops=3 sources=2 tracked=2 top=198\.18\.0\.66:900$/));
    expect(lines).toContainEqual(expect.stringMatching(/^incident .* opened +\w+ +scan-tcp-vertical 198\.18\.0\.66/));
    expect(lines[lines.length - 1]).toBe('12:00:05 WARN Redis unreachable (publisher)');
    expect(out.text).not.toContain('\x1b[');
  });
});
