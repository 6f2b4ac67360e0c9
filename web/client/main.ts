/**
 * The dashboard's shell: signing in (a one-time login link's token arrives in the URL fragment,
 * which never reaches a server log, and is exchanged for a session at once), the navigation, the
 * live feed, and one page at a time by the URL's hash (`#/incidents`, `#/incident/<rule>/<key>`).
 */
import { api, change, useSession } from './api.js';
import { fill, h, route } from './dom.js';
import { connect, disconnect, onLive } from './live.js';
import { alertsPage } from './pages/alerts.js';
import { allowPage } from './pages/allow.js';
import { blocksPage } from './pages/blocks.js';
import { incidentPage } from './pages/incident.js';
import { incidentsPage } from './pages/incidents.js';
import { livePage } from './pages/live.js';
import { rulesPage } from './pages/rules.js';
import { sensorsPage } from './pages/sensors.js';
import type { Page } from './pages/page.js';
import type { IncidentRow } from './types.js';

interface SessionInfo { name: string; scope: 'read' | 'write'; csrf: string }

const PAGES: Record<string, Page> = {
  '': livePage, incidents: incidentsPage, incident: incidentPage, blocks: blocksPage, allow: allowPage, sensors: sensorsPage, rules: rulesPage, alerts: alertsPage,
};

const view = document.getElementById('view')!;
const nav = document.getElementById('nav')!;
const who = document.getElementById('who')!;
const openedBanner = document.getElementById('opened')!;
let leave: (() => void) | undefined;
let signedIn = false;

async function show(): Promise<void> {
  if (!signedIn) return;
  leave?.();
  leave = undefined;
  const [name = '', ...args] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const page = PAGES[name] ?? PAGES[''];
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('current', a.getAttribute('href') === `#/${name}`);
  fill(view, h('p', { class: 'muted' }, 'Loading…'));
  try {
    leave = await page(view, args);
  } catch (err) {
    fill(view, h('p', { class: 'error' }, (err as Error).message));
  }
}

function signOut(): void {
  signedIn = false;
  leave?.();
  leave = undefined;
  disconnect();
  useSession(undefined, signOut);
  nav.hidden = true;
  fill(who);
  fill(openedBanner);
  loginForm();
}

function loginForm(message = ''): void {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', required: true, placeholder: 'API token secret' });
  const status = h('span', { class: 'status' }, message);
  const form = h('form', { class: 'login', 'data-testid': 'login' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Use the login link that xdp-ids run printed, or an API token (the secret of name:scope:secret).'),
    h('label', {}, 'Token', input), h('p', {}, h('button', { type: 'submit' }, 'Sign in'), ' ', status));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void change(status, () => signIn(input.value), '');
  });
  fill(view, form);
}

async function signIn(token: string): Promise<void> {
  started(await api<SessionInfo>('POST', '/v1/session', { token }));
}

function started(session: SessionInfo): void {
  signedIn = true;
  useSession(session.csrf, signOut);
  nav.hidden = false;
  const out = h('button', { type: 'button' }, 'Sign out');
  out.addEventListener('click', () => void api('DELETE', '/v1/session').finally(signOut));
  fill(who, `${session.name} (${session.scope})`, out);
  connect(signOut);
  void show();
}

onLive((event, data) => {
  if (event !== 'incident') return;
  const i = data as IncidentRow;
  openedBanner.prepend(h('p', { 'data-testid': 'opened-banner' }, `Incident opened: `, h('a', { href: route('incident', i.ruleId, i.key) }, i.title), ` — ${i.key} (${i.severity})`));
  while (openedBanner.childElementCount > 3) openedBanner.lastElementChild!.remove();
});

window.addEventListener('hashchange', () => void show());

async function boot(): Promise<void> {
  const login = /^#login=([\w-]+)$/.exec(location.hash);
  if (login) {
    history.replaceState(null, '', `${location.pathname}#/`);
    try {
      await signIn(login[1]);
    } catch (err) {
      loginForm((err as Error).message);
    }
    return;
  }
  try {
    const session = await api<Partial<SessionInfo>>('GET', '/v1/session');
    if (session.csrf) return started(session as SessionInfo);
  } catch {
    // not signed in
  }
  loginForm();
}

void boot();
