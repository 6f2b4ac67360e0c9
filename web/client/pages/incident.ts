/**
 * One incident's evidence: the rule's conditions with the values seen against their thresholds,
 * every feature's last and peak value, the sampled packet headers, a timeline, what was decided,
 * and the block or limit as the ledger holds it now, with undo and extend.
 */
import { api } from '../api.js';
import { fill, h, politeRedraw, table } from '../dom.js';
import { ago, time } from '../format.js';
import { onLive } from '../live.js';
import type { IncidentDetail } from '../types.js';
import { extend, removeBlock, removeLimit } from './ledger-actions.js';
import type { Page } from './page.js';

function facts(pairs: [string, string | Node][]): HTMLElement {
  return h('dl', { class: 'facts' }, ...pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function ledgerState(d: IncidentDetail, reload: () => void): HTMLElement {
  const { block, limit } = d.ledger;
  if (block) {
    return h('div', { 'data-testid': 'ledger-state', 'data-state': 'blocked' },
      facts([['in the ledger', `${block.target} blocked until ${time(block.expiresMs)} (${ago(block.expiresMs)})`], ['evidence', block.evidence],
        ['origin', `${block.origin}${block.actor ? ` by ${block.actor}` : ''}`], ['reason', block.reason], ['strikes', String(block.strikes)]]),
      h('p', {}, removeBlock(block, reload)), extend('block', block, reload));
  }
  if (limit) {
    return h('div', { 'data-testid': 'ledger-state', 'data-state': 'limited' },
      facts([['in the ledger', `${limit.traffic} to ${limit.target} limited to ${limit.perSecond}/s until ${time(limit.expiresMs)}`], ['origin', limit.origin], ['reason', limit.reason]]),
      h('p', {}, removeLimit(limit, reload)), extend('limit', limit, reload));
  }
  return h('p', { class: 'muted', 'data-testid': 'ledger-state', 'data-state': 'none' }, d.decision ? `No active entry for ${d.decision.target} in the ledger now.` : 'The rule does not block or limit.');
}

export const incidentPage: Page = async (view, [rule = '', key = '']) => {
  const load = async (): Promise<void> => {
    const d = await api<IncidentDetail>('GET', `/v1/incidents/${encodeURIComponent(rule)}/${encodeURIComponent(key)}`);
    const i = d.incident;
    fill(view,
      h('h1', {}, h('span', { 'data-severity': i.severity }, i.severity.toUpperCase()), ' ', i.title),
      h('p', {}, d.description),
      facts([
        ['rule', `${i.ruleId} (version ${d.ruleVersion})`], ['key', d.overflow ? `about ${d.overflow.keys} keys beyond the rule's maximum, e.g. ${d.overflow.sampleKeys.slice(0, 5).join(', ')}` : `${i.key} (${d.groupBy})`],
        ['status', i.resolvedMs === undefined ? 'open' : `resolved ${time(i.resolvedMs)}`], ['opened', time(i.openedMs)], ['last seen', `${time(i.lastSeenMs)} (${ago(i.lastSeenMs)})`],
        ['detections', String(i.detections)], ['sensors', i.sensors.join(', ')], ['condition', `${d.when} over ${d.windowMs / 1000} s`],
        ['MITRE ATT&CK', d.mitre.join(', ') || '-'], ['attack', d.attackId ?? '-'], ['decided', i.action],
      ]),
      h('h2', {}, 'Block state'), ledgerState(d, () => void load()),
      h('h2', {}, 'Counters against thresholds'),
      table('conditions', ['condition', 'value seen', 'threshold', 'held'], d.conditions.map((c) => [c.expression, c.value, c.threshold, c.holds ? 'yes' : 'no']), 'No comparisons recorded.'),
      d.explanation.length > 0 && h('h2', {}, 'What the model found unusual'),
      d.explanation.length > 0 && table('explanation', ['feature', 'value', 'share of the score'], d.explanation.map((e) => [e.feature, e.value, `${e.percent}%`]), ''),
      h('h2', {}, 'Features (last detection, peak)'),
      table('features', ['feature', 'last', 'peak'], d.features.map((f) => [f.name, f.value, f.peak]), 'No features recorded.'),
      h('h2', {}, 'Sampled packet headers'),
      table('samples', ['time', 'source', 'port', 'destination', 'port', 'protocol', 'flags', 'TTL', 'window', 'DSCP', 'length'],
        d.samples.map((s) => [s.time, s.src, String(s.srcPort), s.dst, String(s.dstPort), s.protocol, s.flags, s.ttl, String(s.window), s.dscp, s.length]), 'No packets sampled.'),
      h('h2', {}, 'Timeline'),
      h('ol', { class: 'timeline', 'data-testid': 'timeline' }, ...d.timeline.map((t) => h('li', {}, `${time(t.atMs)} — ${t.what}`))));
  };
  await load();
  const update = politeRedraw(view, () => void load());
  return onLive((event) => {
    if (event === 'ledger') update();
  });
};
