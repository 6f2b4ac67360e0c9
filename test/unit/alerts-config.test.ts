import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, mailboxConfig, parseConfig } from '../../alerts/config';
import { eventLabels } from '../../alerts/labels';
import { matchesAll } from '../../alerts/matchers';
import type { BlockEvent } from '../../common/alert-events';

const HOOK_SECRET = 'whsec_' + Buffer.alloc(24, 7).toString('base64');
const ENV = { SMTP_PW: 'pw', HOOK_SECRET };

const VALID = `
receivers:
  - name: mail
    email: { host: smtp.example.test, username: ids, password_env: SMTP_PW, from: ids@example.test, to: [soc@example.test] }
  - name: hook
    webhook: { url: 'https://siem.example.test/x', secret_env: HOOK_SECRET }
routes:
  - name: ops
    matchers: [kind=exception]
    receivers: [mail]
    group_by: [code]
    repeat_interval: 4h
  - matchers: ['severity=~high|critical']
    receivers: [mail, hook]
    send_resolved: false
`;

function problems(text: string, env: NodeJS.ProcessEnv = ENV): string {
  try {
    parseConfig(text, 'alerts.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('config was accepted');
}

test('a valid config gets defaults, secrets from the environment and parsed matchers', () => {
  const c = parseConfig(VALID, 'alerts.yaml', ENV);
  expect(c.receivers.get('mail')).toMatchObject({ type: 'email', port: 587, secure: false, requireTls: true, auth: { user: 'ids', pass: 'pw' }, timeoutMs: 15_000 });
  expect(c.receivers.get('hook')).toMatchObject({ type: 'webhook', secret: HOOK_SECRET, format: 'json', timeoutMs: 10_000, attempts: 8 });
  expect(c.routes[0]).toMatchObject({ name: 'ops', groupBy: ['code'], groupWaitMs: 10_000, repeatIntervalMs: 14_400_000, sendResolved: true });
  expect(c.routes[1]).toMatchObject({ name: 'route-1', groupBy: ['attack'], sendResolved: false, matchers: [{ label: 'severity', op: '=~', value: 'high|critical' }] });
});

test('a mailbox receiver needs only a path, and the built-in mailbox config sends everything there', () => {
  const c = parseConfig(`${VALID}\n  - receivers: [box]\n`.replace('receivers:\n', 'receivers:\n  - name: box\n    mailbox: { path: /var/mail/ids.mbox }\n'), 'alerts.yaml', ENV);
  expect(c.receivers.get('box')).toEqual({ name: 'box', type: 'mailbox', attempts: 8, path: '/var/mail/ids.mbox', from: 'xdp-ids <xdp-ids@localhost>', to: ['soc@localhost'] });
  const local = mailboxConfig('/tmp/a "quoted" dir/alerts.mbox');
  expect(local.receivers.get('local-mailbox')).toMatchObject({ type: 'mailbox', path: '/tmp/a "quoted" dir/alerts.mbox' });
  expect(local.routes).toMatchObject([
    { name: 'block-expiries', receivers: ['local-mailbox'], groupBy: ['kind', 'phase'], groupWaitMs: 3_600_000 },
    { matchers: [], receivers: ['local-mailbox'], groupBy: ['attack'] },
  ]);
  // The end of an automatic block goes to the hourly digest; an operator's block's end is told at once.
  const expiry = (origin: BlockEvent['origin']): BlockEvent => ({ v: 1, id: `e-${origin}`, kind: 'block', phase: 'expired', target: '198.18.0.66/32', origin, atMs: 0 });
  const routeOf = (e: BlockEvent) => local.routes.find((r) => matchesAll(r.matchers, eventLabels(e)))!.name;
  expect([routeOf(expiry('rule')), routeOf(expiry('model')), routeOf(expiry('manual'))]).toEqual(['block-expiries', 'block-expiries', 'route-1']);
});

test.each([
  ['a missing secret', VALID, { SMTP_PW: 'pw' }, /^alerts\.yaml:6:64: receivers\[1\]\.webhook\.secret_env: environment variable HOOK_SECRET is not set$/],
  ['an unknown receiver in a route', VALID.replace('receivers: [mail, hook]', 'receivers: [mail, pager]'), ENV, /^alerts\.yaml:14:\d+: routes\[1\]\.receivers\[1\]: no receiver is named "pager"$/],
  ['a bad duration', VALID.replace('repeat_interval: 4h', 'repeat_interval: 4 hours'), ENV, /alerts\.yaml:12:\d+: routes\[0\]\.repeat_interval: not a duration: "4 hours"/],
  ['a bad matcher', VALID.replace('kind=exception', 'kind~exception'), ENV, /alerts\.yaml:9:16: routes\[0\]\.matchers\[0\]: not a matcher: "kind~exception"/],
  ['a bad regex', VALID.replace('high|critical', 'high|(critical'), ENV, /routes\[1\]\.matchers\[0\]: bad regular expression/],
  ['an unknown field', VALID.replace('send_resolved: false', 'send_resolve: false'), ENV, /routes\[1\]: Unrecognized key: "send_resolve"/],
  ['a password in the file', VALID.replace('password_env: SMTP_PW', 'password: hunter2'), ENV, /receivers\[0\]\.email: Unrecognized key: "password"/],
  ['a receiver with two kinds', VALID.replace("  - name: hook\n    webhook:", "  - name: hook\n    email: { host: h, from: a@b.c, to: [x@y.z] }\n    webhook:"), ENV, /receivers\[1\]: a receiver has exactly one of `email`, `webhook`, `mailbox` or `syslog`/],
  ['a non-http webhook', VALID.replace('https://siem', 'ftp://siem'), ENV, /receivers\[1\]\.webhook\.url: a webhook url is an http/],
  ['a subject template that does not parse', VALID.replace('to: [soc@example.test] }', "to: [soc@example.test], subject: '{{#if title}}x' }"), ENV, /receivers\[0\]\.email\.subject: bad template: /],
  ['broken YAML', 'receivers: [', ENV, /^alerts\.yaml:1:\d+: YAML: /],
])('%s is rejected with file:line:column and the path', (_what, text, env, message) => {
  expect(problems(text, env as NodeJS.ProcessEnv)).toMatch(message);
});

describe('receivers keep their secrets and their traffic private', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-alerts-config-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a plain-http webhook needs allow_http: true, and the error names the file and the place', () => {
    const http = VALID.replace("'https://siem.example.test/x'", "'http://siem.example.test/x'");
    expect(problems(http)).toBe('alerts.yaml:6:21: receivers[1].webhook.url: http://siem.example.test/x is plain http, so alerts and their signatures would cross the network in clear: use https, or set `allow_http: true` for a receiver on this host or behind a proxy that adds TLS');
    expect(parseConfig(http.replace('secret_env: HOOK_SECRET }', 'secret_env: HOOK_SECRET, allow_http: true }'), 'alerts.yaml', ENV).receivers.get('hook')).toMatchObject({ url: 'http://siem.example.test/x' });
  });

  test.each([
    ['short text', 'x'.repeat(23), /the secret in HOOK_SECRET has 23 bytes of key material; a signing secret needs at least 24/],
    ['short whsec_', `whsec_${Buffer.alloc(16).toString('base64')}`, /has 16 bytes of key material/],
    ['whsec_ that is not base64', 'whsec_not*base64!', /the secret in HOOK_SECRET starts with whsec_ but the rest is not base64/],
  ])('a signing secret of %s is refused without being repeated', (_what, secret, message) => {
    const text = problems(VALID, { ...ENV, HOOK_SECRET: secret });
    expect(text).toMatch(/^alerts\.yaml:6:64: receivers\[1\]\.webhook\.secret_env: /);
    expect(text).toMatch(message);
    expect(text).not.toContain(secret);
  });

  test('24 bytes of text or of whsec_ key are enough', () => {
    for (const secret of ['y'.repeat(24), `whsec_${Buffer.alloc(24).toString('base64')}`]) {
      expect(parseConfig(VALID, 'alerts.yaml', { ...ENV, HOOK_SECRET: secret }).receivers.get('hook')).toMatchObject({ secret });
    }
  });

  test('secrets from files only the owner can read; exactly one source per secret', () => {
    const secretFile = path.join(dir, 'hook-secret');
    const passwordFile = path.join(dir, 'smtp-password');
    fs.writeFileSync(secretFile, `${HOOK_SECRET}\n`, { mode: 0o600 });
    fs.writeFileSync(passwordFile, 'hunter2\n', { mode: 0o600 });
    const fromFiles = VALID.replace('secret_env: HOOK_SECRET', `secret_file: ${secretFile}`).replace('password_env: SMTP_PW', `password_file: ${passwordFile}`);
    const c = parseConfig(fromFiles, 'alerts.yaml', {});
    expect(c.receivers.get('hook')).toMatchObject({ secret: HOOK_SECRET });
    expect(c.receivers.get('mail')).toMatchObject({ auth: { user: 'ids', pass: 'hunter2' } });
    fs.chmodSync(secretFile, 0o644);
    expect(problems(fromFiles, {})).toMatch(new RegExp(`^alerts\\.yaml:6:\\d+: receivers\\[1\\]\\.webhook\\.secret_file: ${secretFile}: holds a secret but its group or others may read it \\(mode 0644\\): chmod 600 ${secretFile}$`));
    fs.chmodSync(passwordFile, 0o640);
    expect(problems(fromFiles, {})).toMatch(/receivers\[0\]\.email\.password_file: .*smtp-password: holds a secret .* \(mode 0640\): chmod 600/);
    const both = VALID.replace('secret_env: HOOK_SECRET', `secret_env: HOOK_SECRET, secret_file: ${secretFile}`);
    expect(problems(both)).toMatch(/receivers\[1\]\.webhook\.secret_env: give either `secret_env` or `secret_file`/);
    expect(problems(VALID.replace(', secret_env: HOOK_SECRET', ''))).toMatch(/receivers\[1\]\.webhook.*: give either `secret_env` or `secret_file`/);
  });
});

test('alerts.example.yaml is a valid config', () => {
  const env = { XDP_IDS_SMTP_PASSWORD: 'pw', XDP_IDS_SIEM_WEBHOOK_SECRET: HOOK_SECRET, XDP_IDS_CHAT_WEBHOOK_SECRET: 'z'.repeat(32) };
  expect([...loadConfig(path.join(__dirname, '../../alerts/alerts.example.yaml'), env).receivers.keys()]).toEqual(['soc-email', 'ops-email', 'siem', 'chat', 'siem-syslog']);
});

describe('syslog receivers', () => {
  const withSyslog = (syslog: string): string => `receivers: [{ name: siem, syslog: ${syslog} }]\nroutes: [{ receivers: [siem] }]\n`;

  test('defaults: TLS on 6514, ECS JSON, octet counting, facility authpriv, app name xdp-ids', () => {
    expect(parseConfig(withSyslog('{ host: siem.example.test }'), 'alerts.yaml', ENV).receivers.get('siem')).toEqual({
      name: 'siem', type: 'syslog', attempts: 8, host: 'siem.example.test', port: 6514, transport: 'tls', ca: undefined, format: 'json',
      framing: 'octet-counting', facility: 10, appName: 'xdp-ids', timeoutMs: 10_000,
    });
  });

  test.each([
    ['{ host: siem.example.test, transport: tcp }', /receivers\[0\]\.syslog\.transport: plain TCP sends alerts across the network in clear: use `transport: tls`, or set `allow_plain_tcp: true`/],
    ['{ host: siem.example.test, transport: tcp, allow_plain_tcp: true, ca_file: /x }', /`ca_file` is for `transport: tls`/],
    ['{ host: siem.example.test, ca_file: /nonexistent/ca.pem }', /receivers\[0\]\.syslog\.ca_file: cannot read \/nonexistent\/ca\.pem/],
    ['{ host: siem.example.test, app_name: "x y" }', /app_name is 1 to 48 printable ASCII characters without spaces/],
    ['{ host: siem.example.test, format: leef }', /receivers\[0\]\.syslog\.format/],
    ['{ host: siem.example.test, facility: local9 }', /receivers\[0\]\.syslog\.facility/],
    ['{ host: siem.example.test, framing: crlf }', /receivers\[0\]\.syslog\.framing/],
  ])('%s is refused with a clear error', (syslog, message) => {
    expect(problems(withSyslog(syslog))).toMatch(message);
  });
});
