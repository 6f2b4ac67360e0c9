/**
 * Live: packets and drops a second (all sensors) as time-series charts, each sensor's top sources
 * of its newest tick, and the incidents opening, all pushed by the live feed.
 */
import uPlot from '../vendor/uPlot.esm.js';
import { fill, h, route, table } from '../dom.js';
import { num, time } from '../format.js';
import { KEEP_SECONDS, latestTicks, onLive, opened, perSecond } from '../live.js';
import type { Page } from './page.js';

function chart(title: string, label: string, color: string, width: number): uPlot {
  const opts: uPlot.Options = {
    title, width, height: 220,
    scales: { x: { time: true } },
    series: [{}, { label, stroke: color, width: 2, fill: `${color}22` }],
    axes: [{}, { size: 70, values: (_u, values) => values.map((v) => num(v)) }],
  };
  return new uPlot(opts, [[], []]);
}

export const livePage: Page = async (view) => {
  const boxes = [h('div', { class: 'chart', 'data-testid': 'chart-packets' }), h('div', { class: 'chart', 'data-testid': 'chart-drops' })];
  const rates = h('p', { 'data-testid': 'rates' });
  const top = h('div');
  const incidents = h('div');
  fill(view,
    h('h1', {}, 'Live'),
    rates,
    h('div', { class: 'charts' }, ...boxes),
    h('h2', {}, 'Top sources (newest tick of each sensor)'), top,
    h('h2', {}, 'Incidents opening'), incidents);
  // Sized to the boxes as laid out, less their padding.
  const width = Math.max(300, boxes[0].clientWidth - 16);
  const packets = chart('Packets a second', 'packets/s', '#1f5fbf', width);
  const drops = chart('Drops a second', 'drops/s', '#b3261e', width);
  boxes[0].append(packets.root);
  boxes[1].append(drops.root);

  const draw = (): void => {
    const seconds = [...perSecond.keys()].sort((a, b) => a - b);
    const xs = seconds.map((s) => s / 1000);
    packets.setData([xs, seconds.map((s) => perSecond.get(s)!.packets)]);
    drops.setData([xs, seconds.map((s) => perSecond.get(s)!.drops)]);
    const slots = seconds.map((s) => perSecond.get(s)!);
    const now = slots[slots.length - 1] ?? { packets: 0, drops: 0 };
    fill(rates, `Now ${num(now.packets)} packets/s, ${num(now.drops)} drops/s. Peak of the last ${Math.round(KEEP_SECONDS / 60)} minutes: `,
      `${num(Math.max(0, ...slots.map((x) => x.packets)))} packets/s, `, h('span', { 'data-testid': 'drops-peak' }, num(Math.max(0, ...slots.map((x) => x.drops)))), ' drops/s.');
    const rows = [...latestTicks.values()].flatMap((t) => t.top.map((s) => ({ sensor: t.sensor, seconds: t.seconds, ...s })))
      .sort((a, b) => b.packets / b.seconds - a.packets / a.seconds).slice(0, 15);
    fill(top, table('top-sources', ['source', 'sensor', 'packets/s', 'bytes/s', 'SYN/s', 'ports'],
      rows.map((r) => [r.src, r.sensor, num(r.packets / r.seconds), num(r.bytes / r.seconds), num(r.syn / r.seconds), num(r.ports)]), 'No traffic reported yet.'));
    fill(incidents, table('incidents-opening', ['opened', 'severity', 'incident', 'key', 'action'],
      opened.map((i) => [time(i.openedMs), h('span', { 'data-severity': i.severity }, i.severity), h('a', { href: route('incident', i.ruleId, i.key) }, i.title), i.key, i.action]),
      'No incident has opened since this page was loaded.'));
  };
  draw();
  const off = onLive((event) => {
    if (event !== 'ledger') draw();
  });
  return () => {
    off();
    packets.destroy();
    drops.destroy();
  };
};
