/** Open and recent incidents, filtered by severity, rule, source and sensor; new ones and block changes show up live. */
import { api } from '../api.js';
import { fill, h, route, table } from '../dom.js';
import { ago, time } from '../format.js';
import { onLive } from '../live.js';
import type { IncidentRow } from '../types.js';
import type { Page } from './page.js';

const filters = { status: 'open', severity: '', rule: '', source: '', sensor: '' };

function field(name: keyof typeof filters, label: string, control: HTMLInputElement | HTMLSelectElement): HTMLElement {
  control.value = filters[name];
  control.addEventListener('change', () => { filters[name] = control.value; });
  return h('label', {}, label, control);
}

function select(name: string, options: [string, string][]): HTMLSelectElement {
  return h('select', { name }, ...options.map(([value, text]) => h('option', { value }, text)));
}

export const incidentsPage: Page = async (view) => {
  const list = h('div');
  const form = h('form', { class: 'inline', 'data-testid': 'incident-filters' },
    field('status', 'Status', select('status', [['open', 'open'], ['recent', 'recent (open and resolved)']])),
    field('severity', 'Severity', select('severity', [['', 'any'], ['critical', 'critical'], ['high', 'high and up'], ['medium', 'medium and up'], ['low', 'low and up']])),
    field('rule', 'Rule', h('input', { name: 'rule', placeholder: 'rule id' })),
    field('source', 'Source', h('input', { name: 'source', placeholder: 'address or part' })),
    field('sensor', 'Sensor', h('input', { name: 'sensor', placeholder: 'sensor id' })),
    h('button', { type: 'submit' }, 'Filter'));
  fill(view, h('h1', {}, 'Incidents'), form, list);

  const load = async (): Promise<void> => {
    const atLeast = ['critical', 'high', 'medium', 'low'];
    const severity = filters.severity ? atLeast.slice(0, atLeast.indexOf(filters.severity) + 1).join(',') : '';
    const query = new URLSearchParams(Object.entries({ ...filters, severity }).filter(([, v]) => v !== ''));
    const { incidents } = await api<{ incidents: IncidentRow[] }>('GET', `/v1/incidents?${query}`);
    fill(list, table('incidents', ['opened', 'severity', 'incident', 'key', 'sensors', 'detections', 'last seen', 'action', 'status'], incidents.map((i) => [
      time(i.openedMs), h('span', { 'data-severity': i.severity }, i.severity), h('a', { href: route('incident', i.ruleId, i.key) }, i.title, h('br'), h('span', { class: 'muted' }, i.ruleId)),
      i.overflowKeys === undefined ? i.key : `about ${i.overflowKeys} keys`, i.sensors.join(', '), i.detections, ago(i.lastSeenMs), i.action,
      i.resolvedMs === undefined ? 'open' : `resolved ${time(i.resolvedMs)}`,
    ]), 'No incident matches.'));
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
  await load();
  let pending: ReturnType<typeof setTimeout> | undefined;
  const off = onLive((event) => {
    if (event !== 'incident' && event !== 'ledger') return;
    clearTimeout(pending);
    pending = setTimeout(() => void load(), 300);
  });
  return () => {
    off();
    clearTimeout(pending);
  };
};
