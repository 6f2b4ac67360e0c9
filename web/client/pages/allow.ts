/** The allowlist: configured entries (add, remove) and every running sensor's own defaults. */
import { api } from '../api.js';
import { fill, h, politeRedraw, table } from '../dom.js';
import { onLive } from '../live.js';
import { apiForm, input } from './forms.js';
import { removeAllow } from './ledger-actions.js';
import type { Page } from './page.js';

interface AllowEntry { target: string; reason: string; actor?: string; source: string }

export const allowPage: Page = async (view) => {
  const list = h('div');
  const load = async (): Promise<void> => {
    const { allows } = await api<{ allows: AllowEntry[] }>('GET', '/v1/allows');
    fill(list, table('allows', ['target', 'source', 'actor', 'reason', ''], allows.map((e) => [
      e.target, e.source, e.actor ?? '-', e.reason, e.source === 'manual' ? removeAllow(e, reload) : h('span', { class: 'muted' }, 'the sensor keeps it'),
    ]), 'No allow entries.'));
  };
  const reload = (): void => void load();
  fill(view, h('h1', {}, 'Allowlist'),
    h('p', { class: 'muted' }, 'Addresses here are never blocked: the blocker, every sensor and the kernel check them.'),
    apiForm('add-allow', '/v1/allows', [['Address or CIDR', input('target', '10.20.0.0/16', true)], ['Reason', input('reason', 'configured')]], 'Allow', reload),
    list);
  await load();
  const update = politeRedraw(view, reload);
  return onLive((event) => {
    if (event === 'ledger') update();
  });
};
