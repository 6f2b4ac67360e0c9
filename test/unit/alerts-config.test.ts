import { ConfigError, mailboxConfig, parseConfig } from '../../alerts/config';

const ENV = { SMTP_PW: 'pw', HOOK_SECRET: 's3cret' };

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
  expect(c.receivers.get('hook')).toMatchObject({ type: 'webhook', secret: 's3cret', format: 'json', timeoutMs: 10_000, attempts: 8 });
  expect(c.routes[0]).toMatchObject({ name: 'ops', groupBy: ['code'], groupWaitMs: 10_000, repeatIntervalMs: 14_400_000, sendResolved: true });
  expect(c.routes[1]).toMatchObject({ name: 'route-1', groupBy: ['incident'], sendResolved: false, matchers: [{ label: 'severity', op: '=~', value: 'high|critical' }] });
});

test('a mailbox receiver needs only a path, and the built-in mailbox config sends everything there', () => {
  const c = parseConfig(`${VALID}\n  - receivers: [box]\n`.replace('receivers:\n', 'receivers:\n  - name: box\n    mailbox: { path: /var/mail/ids.mbox }\n'), 'alerts.yaml', ENV);
  expect(c.receivers.get('box')).toEqual({ name: 'box', type: 'mailbox', attempts: 8, path: '/var/mail/ids.mbox', from: 'xdp-ids <xdp-ids@localhost>', to: ['soc@localhost'] });
  const local = mailboxConfig('/tmp/a "quoted" dir/alerts.mbox');
  expect(local.receivers.get('local-mailbox')).toMatchObject({ type: 'mailbox', path: '/tmp/a "quoted" dir/alerts.mbox' });
  expect(local.routes).toMatchObject([{ matchers: [], receivers: ['local-mailbox'], groupBy: ['incident'] }]);
});

test.each([
  ['a missing secret', VALID, { SMTP_PW: 'pw' }, /^alerts\.yaml:6:64: receivers\[1\]\.webhook\.secret_env: environment variable HOOK_SECRET is not set$/],
  ['an unknown receiver in a route', VALID.replace('receivers: [mail, hook]', 'receivers: [mail, pager]'), ENV, /^alerts\.yaml:14:\d+: routes\[1\]\.receivers\[1\]: no receiver is named "pager"$/],
  ['a bad duration', VALID.replace('repeat_interval: 4h', 'repeat_interval: 4 hours'), ENV, /alerts\.yaml:12:\d+: routes\[0\]\.repeat_interval: not a duration: "4 hours"/],
  ['a bad matcher', VALID.replace('kind=exception', 'kind~exception'), ENV, /alerts\.yaml:9:16: routes\[0\]\.matchers\[0\]: not a matcher: "kind~exception"/],
  ['a bad regex', VALID.replace('high|critical', 'high|(critical'), ENV, /routes\[1\]\.matchers\[0\]: bad regular expression/],
  ['an unknown field', VALID.replace('send_resolved: false', 'send_resolve: false'), ENV, /routes\[1\]: Unrecognized key: "send_resolve"/],
  ['a password in the file', VALID.replace('password_env: SMTP_PW', 'password: hunter2'), ENV, /receivers\[0\]\.email: Unrecognized key: "password"/],
  ['a receiver with two kinds', VALID.replace("  - name: hook\n    webhook:", "  - name: hook\n    email: { host: h, from: a@b.c, to: [x@y.z] }\n    webhook:"), ENV, /receivers\[1\]: a receiver has exactly one of `email`, `webhook` or `mailbox`/],
  ['a non-http webhook', VALID.replace('https://siem', 'ftp://siem'), ENV, /receivers\[1\]\.webhook\.url: a webhook url is an http/],
  ['a subject template that does not parse', VALID.replace('to: [soc@example.test] }', "to: [soc@example.test], subject: '{{#if title}}x' }"), ENV, /receivers\[0\]\.email\.subject: bad template: /],
  ['broken YAML', 'receivers: [', ENV, /^alerts\.yaml:1:\d+: YAML: /],
])('%s is rejected with file:line:column and the path', (_what, text, env, message) => {
  expect(problems(text, env as NodeJS.ProcessEnv)).toMatch(message);
});
