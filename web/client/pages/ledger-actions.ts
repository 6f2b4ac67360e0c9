/**
 * The controls that change the ledger, shared by the incident, blocks and allowlist pages: remove a
 * block, a limit or an allow entry (a second click confirms), and extend a block or a limit to at
 * least a new time-to-live. Each says how it went next to itself.
 */
import { api, change } from '../api.js';
import { h } from '../dom.js';
import type { BlockEntry, LimitEntry } from '../types.js';

const CONFIRM_MS = 4000;

function confirmButton(testId: string, label: string, confirmLabel: string, act: (status: HTMLElement) => void): HTMLElement {
  const button = h('button', { type: 'button', class: 'danger', 'data-testid': testId }, label);
  const status = h('span', { class: 'status' });
  let armed: ReturnType<typeof setTimeout> | undefined;
  button.addEventListener('click', () => {
    if (!armed) {
      button.textContent = confirmLabel;
      armed = setTimeout(() => { armed = undefined; button.textContent = label; }, CONFIRM_MS);
      return;
    }
    clearTimeout(armed);
    armed = undefined;
    button.disabled = true;
    act(status);
  });
  return h('span', {}, button, ' ', status);
}

export function removeBlock(entry: Pick<BlockEntry, 'target'>, done: () => void): HTMLElement {
  return confirmButton('remove-block', 'Remove block', 'Confirm: remove block', (status) => void change(status,
    () => api('DELETE', `/v1/blocks/${entry.target}`), 'removed').then((ok) => ok && done()));
}

export function removeLimit(entry: Pick<LimitEntry, 'target' | 'traffic'>, done: () => void): HTMLElement {
  return confirmButton('remove-limit', 'Remove limit', 'Confirm: remove limit', (status) => void change(status,
    () => api('DELETE', `/v1/limits/${entry.target}?traffic=${encodeURIComponent(entry.traffic)}`), 'removed').then((ok) => ok && done()));
}

export function removeAllow(entry: { target: string }, done: () => void): HTMLElement {
  return confirmButton('remove-allow', 'Remove', 'Confirm: remove', (status) => void change(status,
    () => api('DELETE', `/v1/allows/${entry.target}`), 'removed').then((ok) => ok && done()));
}

/** Extends to at least now + the TTL given (a longer expiry stays). */
export function extend(kind: 'block', entry: BlockEntry, done: () => void): HTMLElement;
export function extend(kind: 'limit', entry: LimitEntry, done: () => void): HTMLElement;
export function extend(kind: 'block' | 'limit', entry: BlockEntry | LimitEntry, done: () => void): HTMLElement {
  const ttl = h('input', { name: 'ttl', value: '1h', size: '5', 'aria-label': 'time to live' });
  const status = h('span', { class: 'status' });
  const form = h('form', { class: 'inline', 'data-testid': `extend-${kind}` }, ttl, h('button', { type: 'submit' }, 'Extend'), status);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = kind === 'block'
      ? { target: entry.target, ttl: ttl.value, reason: entry.reason, scope: (entry as BlockEntry).scope }
      : { target: entry.target, ttl: ttl.value, reason: entry.reason, traffic: (entry as LimitEntry).traffic, rate: (entry as LimitEntry).perSecond };
    void change(status, () => api('POST', kind === 'block' ? '/v1/blocks' : '/v1/limits', body), 'extended').then((ok) => ok && done());
  });
  return form;
}
