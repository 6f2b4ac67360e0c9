/** What the alerter delivered lately, and the dead letters (deliveries that gave up, events it could not read), with replay. */
import { api, change } from '../api.js';
import { fill, h, table } from '../dom.js';
import { time } from '../format.js';
import type { Page } from './page.js';

interface Delivery { id: string; receiver: string; state: string; summary: string; attempts: number; createdMs: number; finishedMs?: number; error?: string }
interface DeadLetter { id: string; type: string; receiver?: string; summary: string; error: string; attempts: number; maxAttempts: number; failedMs: number }

/** Deliveries change without a live event: the lists are read again this often. */
const REFRESH_MS = 5000;

export const alertsPage: Page = async (view) => {
  const deliveries = h('div');
  const letters = h('div');
  // Outside the tables, which a replay redraws: what became of the last replay stays in view.
  const replayed = h('p', { class: 'status', 'data-testid': 'replay-status' });
  fill(view, h('h1', {}, 'Alerts'), h('h2', {}, 'Recent deliveries'), deliveries, h('h2', {}, 'Dead letters'), replayed, letters);
  const load = async (): Promise<void> => {
    const [d, l] = await Promise.all([
      api<{ deliveries: Delivery[] }>('GET', '/v1/alerts/deliveries'), api<{ deadLetters: DeadLetter[] }>('GET', '/v1/alerts/dead-letters'),
    ]);
    fill(deliveries, table('deliveries', ['queued', 'receiver', 'message', 'state', 'attempts', 'finished', 'last error'], d.deliveries.map((x) => [
      time(x.createdMs), x.receiver, x.summary, h('span', { 'data-state': x.state }, x.state), x.attempts, time(x.finishedMs), x.error ?? '',
    ]), 'Nothing delivered in the last day.'));
    fill(letters, table('dead-letters', ['failed', 'id', 'type', 'receiver', 'what', 'error', 'attempts', ''], l.deadLetters.map((x) => {
      const replay = h('button', { type: 'button', 'data-testid': 'replay' }, 'Replay');
      replay.addEventListener('click', () => {
        replay.disabled = true;
        void change(replayed, () => api('POST', `/v1/alerts/dead-letters/${encodeURIComponent(x.id)}/replay`), `${x.summary} (${x.id}): queued again`)
          .then(async (ok) => { if (ok) await load(); });
      });
      return [time(x.failedMs), x.id, x.type, x.receiver ?? '-', x.summary, x.error, `${x.attempts} of ${x.maxAttempts}`, replay];
    }), 'No dead letters.'));
  };
  await load();
  const timer = setInterval(() => void load().catch(() => undefined), REFRESH_MS);
  return () => clearInterval(timer);
};
