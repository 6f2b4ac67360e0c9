/** A form whose fields are sent as one JSON object to the API, with the outcome beside its button. */
import { api, change } from '../api.js';
import { h } from '../dom.js';

export function apiForm(testId: string, path: string, fields: [string, HTMLInputElement | HTMLSelectElement][], button: string, done: () => void): HTMLFormElement {
  const status = h('span', { class: 'status' });
  const form = h('form', { class: 'inline', 'data-testid': testId }, ...fields.map(([label, control]) => h('label', {}, label, control)), h('button', { type: 'submit' }, button), status);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const body = Object.fromEntries(fields.map(([, c]) => [c.name, c.value]).filter(([, v]) => v !== ''));
    void change(status, () => api('POST', path, body), 'done').then((ok) => ok && done());
  });
  return form;
}

export function input(name: string, placeholder: string, required = false): HTMLInputElement {
  return h('input', { name, placeholder, required });
}
