/** The rule set each detector runs: version, files, last rejected reload, and every rule with its embedded tests' results. */
import { api } from '../api.js';
import { append, fill, h, table } from '../dom.js';
import { ago, time } from '../format.js';
import type { Page } from './page.js';

interface RuleStatus {
  id: string; title: string; severity: string; enabled: boolean; scope: string; groupBy: string; when: string; version: string; where: string; actions: string[];
  tests: { passed: number; failed: { name: string; detail: string }[] };
}
interface RuleSetStatus {
  detector: string; atMs: number; version: string; loadedMs: number; files: string[]; rules: RuleStatus[];
  lastError?: { atMs: number; problems: string[]; keptVersion?: string };
}

export const rulesPage: Page = async (view) => {
  const { detectors } = await api<{ detectors: RuleSetStatus[] }>('GET', '/v1/rules');
  fill(view, h('h1', {}, 'Rules'));
  if (detectors.length === 0) append(view, h('p', { class: 'empty', 'data-testid': 'rule-sets' }, 'No detector has reported its rules.'));
  for (const d of detectors) {
    const failed = d.rules.reduce((n, r) => n + r.tests.failed.length, 0);
    const passed = d.rules.reduce((n, r) => n + r.tests.passed, 0);
    append(view,
      h('h2', {}, `Detector ${d.detector}`),
      h('dl', { class: 'facts', 'data-testid': 'rule-set' },
        h('dt', {}, 'rule set version'), h('dd', {}, d.version),
        h('dt', {}, 'loaded'), h('dd', {}, `${time(d.loadedMs)} (reported ${ago(d.atMs)})`),
        h('dt', {}, 'files'), h('dd', {}, d.files.join(', ')),
        h('dt', {}, 'embedded tests'), h('dd', { 'data-state': failed ? 'failing' : 'passing' }, `${passed} passed, ${failed} failed`),
        h('dt', {}, 'last reload error'), h('dd', { class: d.lastError ? 'error' : '' }, d.lastError
          ? h('div', {}, `${time(d.lastError.atMs)}: rejected; kept ${d.lastError.keptVersion ?? 'no set'}`, h('ul', {}, ...d.lastError.problems.map((p) => h('li', {}, p))))
          : 'none')),
      table('rules', ['rule', 'severity', 'enabled', 'scope', 'condition', 'actions', 'tests', 'defined at'], d.rules.map((r) => [
        h('span', {}, r.id, h('br'), h('span', { class: 'muted' }, r.title)), h('span', { 'data-severity': r.severity }, r.severity), r.enabled ? 'yes' : 'no',
        `${r.scope} by ${r.groupBy}`, r.when, r.actions.join(', '),
        r.tests.failed.length ? h('span', { class: 'error' }, `${r.tests.failed.length} failed: `, r.tests.failed.map((f) => `${f.name}: ${f.detail}`).join('; ')) : `${r.tests.passed} passed`,
        r.where,
      ]), 'No rules.'));
  }
  return undefined;
};
