/**
 * alerts.yaml: receivers, routes, inhibition rules and delivery limits, validated with zod before
 * anything starts. Every problem is reported as `file:line:column: path: message`. Secrets are
 * never in the file: a receiver names the environment variable (or a file only its owner can
 * read) that holds its password or signing secret, and a missing one is a configuration error.
 * Webhooks go over https unless a receiver says `allow_http: true`, and a signing secret has at
 * least 24 bytes of key material.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { FileReadError, readBoundedFile } from '../common/files';
import { parseDuration } from '../detector/rules/durations';
import { formatProblem } from '../detector/rules/problems';
import { YamlSource } from '../detector/rules/yaml-source';
import { parseMatcher, type Matcher } from './matchers';
import { compileSubject } from './render';
import { WEBHOOK_FORMATS, type AlertsConfig, type Receiver, type Route } from './types';

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(text)} (e.g. 500ms, 30s, 5m, 1h, 1m30s)` });
    return z.NEVER;
  }
  return ms;
});

const matchers = z.array(z.string()).default([]).transform((texts, ctx) => {
  const out: Matcher[] = [];
  texts.forEach((text, i) => {
    try {
      out.push(parseMatcher(text));
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [i], message: (err as Error).message });
    }
  });
  return out;
});

const envName = z.string().regex(ENV_NAME, { error: 'an environment variable name is upper-case letters, digits and _' });

/** Standard Webhooks asks for 24 to 64 bytes of random key. */
export const MIN_SIGNING_KEY_BYTES = 24;
const MAX_SECRET_FILE_BYTES = 64 * 1024;
const MAX_CA_FILE_BYTES = 1 << 20;

/** The key bytes a signing secret stands for: base64 after `whsec_`, else the text's UTF-8 bytes (as webhook.ts signs). */
function signingKeyBytes(secret: string): number | undefined {
  if (!secret.startsWith('whsec_')) return Buffer.byteLength(secret, 'utf8');
  const base64 = secret.slice('whsec_'.length);
  return /^[A-Za-z0-9+/]+={0,2}$/.test(base64) && base64.length % 4 === 0 ? Buffer.from(base64, 'base64').length : undefined;
}

const EmailShape = z.strictObject({
  host: z.string().min(1),
  port: z.int().min(1).max(65535).default(587),
  /** true: TLS from the first byte (port 465); false: STARTTLS when the server offers it. */
  secure: z.boolean().default(false),
  /** Refuse to send over a connection that did not upgrade with STARTTLS. */
  require_tls: z.boolean().default(true),
  /** A PEM file of CAs to trust in addition to the system's (for a private mail relay). */
  ca_file: z.string().optional(),
  username: z.string().optional(),
  /** The password: an environment variable, or a file (mode 600) whose first line it is. */
  password_env: envName.optional(),
  password_file: z.string().min(1).optional(),
  from: z.string().min(3),
  to: z.array(z.string().min(3)).min(1),
  /** Handlebars template of the subject; see alerts/README.md for the fields. */
  subject: z.string().min(1).max(500).optional(),
  timeout: duration.default(15_000),
});

const WebhookShape = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'a webhook url is an http:// or https:// URL' }),
  /** Plain http: only for a receiver on this host or behind a proxy that adds TLS. */
  allow_http: z.boolean().default(false),
  /** The Standard Webhooks signing secret: an environment variable, or a file (mode 600) whose first line it is. */
  secret_env: envName.optional(),
  secret_file: z.string().min(1).optional(),
  /** `json`: the versioned payload of alerts/README.md; `slack`: a Slack/Teams-compatible `{text}` body; `ecs`, `ocsf`: SIEM events, one a line. */
  format: z.enum(WEBHOOK_FORMATS).default('json'),
  timeout: duration.default(10_000),
});

const MailboxShape = z.strictObject({
  /** An mbox file the emails are appended to (read with `mutt -f`); created when missing. */
  path: z.string().min(1),
  from: z.string().min(3).default('xdp-ids <xdp-ids@localhost>'),
  to: z.array(z.string().min(3)).min(1).default(['soc@localhost']),
});

/** RFC 5424's facility names, in code order. */
export const FACILITIES = ['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'audit', 'alert', 'clock',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;

const SyslogShape = z.strictObject({
  host: z.string().min(1),
  port: z.int().min(1).max(65535).default(6514),
  /** `tls` (RFC 5425, default) or `tcp`: plain TCP only with `allow_plain_tcp` (alerts would cross the network in clear). */
  transport: z.enum(['tls', 'tcp']).default('tls'),
  allow_plain_tcp: z.boolean().default(false),
  /** A PEM file of CAs to trust instead of the system's (a private SIEM CA). */
  ca_file: z.string().optional(),
  format: z.enum(['json', 'cef']).default('json'),
  framing: z.enum(['octet-counting', 'newline']).default('octet-counting'),
  facility: z.enum(FACILITIES).default('authpriv'),
  app_name: z.string().regex(/^[!-~]{1,48}$/, { error: 'app_name is 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)' }).default('xdp-ids'),
  timeout: duration.default(10_000),
});

const ReceiverShape = z.strictObject({
  name: z.string().regex(NAME, { error: 'a receiver name is 1 to 64 lower-case letters, digits, ".", "_" or "-"' }),
  email: EmailShape.optional(),
  webhook: WebhookShape.optional(),
  mailbox: MailboxShape.optional(),
  syslog: SyslogShape.optional(),
  /** Delivery attempts before the message is dead-lettered. */
  attempts: z.int().min(1).max(100).default(8),
}).refine((r) => [r.email, r.webhook, r.mailbox, r.syslog].filter((x) => x !== undefined).length === 1, { error: 'a receiver has exactly one of `email`, `webhook`, `mailbox` or `syslog`' });

const TIMING = {
  group_by: z.array(z.string().regex(/^[a-z_][a-z0-9_]*$/)).optional(),
  group_wait: duration.optional(),
  group_interval: duration.optional(),
  repeat_interval: duration.optional(),
  send_resolved: z.boolean().optional(),
};

const RouteShape = z.strictObject({
  name: z.string().regex(NAME).optional(),
  matchers,
  receivers: z.array(z.string()).min(1),
  /** Keep looking for further matching routes after this one. */
  continue: z.boolean().default(false),
  ...TIMING,
});

const InhibitShape = z.strictObject({
  source: matchers,
  target: matchers,
  /** Labels that must be equal in source and target, e.g. [source]. */
  equal: z.array(z.string()).min(1),
  /** How long a source inhibits when it carries no expiry of its own (a block's expiry). */
  duration: duration.default(3_600_000),
});

const ConfigShape = z.strictObject({
  defaults: z.strictObject(TIMING).default({}),
  receivers: z.array(ReceiverShape).min(1),
  routes: z.array(RouteShape).min(1),
  inhibit_rules: z.array(InhibitShape).default([]),
  delivery: z.strictObject({
    /** First retry delay; doubles per attempt with ±50% jitter, capped at max_backoff. */
    backoff: duration.default(2000),
    max_backoff: duration.default(600_000),
    concurrency: z.int().min(1).max(256).default(8),
    /** Jobs waiting in the alerts or deliveries queue above which operators get a queue-backlog exception. */
    backlog_alert: z.int().min(1).default(10_000),
  }).default({ backoff: 2000, max_backoff: 600_000, concurrency: 8, backlog_alert: 10_000 }),
});

export class ConfigError extends Error {}

/**
 * One attack per message, the first after 10 s, repeats hourly (Alertmanager's defaults, grouped
 * per attack). An attack already groups by source; a group keyed by the sources themselves would
 * split whenever a decoy joined an attack after its first message.
 */
const DEFAULT_TIMING = { groupBy: ['attack'], groupWaitMs: 10_000, groupIntervalMs: 60_000, repeatIntervalMs: 3_600_000, sendResolved: true };

function pathText(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, p) => (typeof p === 'number' ? `${out}[${p}]` : out ? `${out}.${String(p)}` : String(p)), '');
}

/** Reads and validates a config file; throws ConfigError listing every problem with its place. */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): AlertsConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read alerts config ${file}: ${(err as Error).message}`);
  }
  return parseConfig(text, file, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): AlertsConfig {
  const source = new YamlSource(file, text);
  const syntax = source.syntaxProblems();
  if (syntax.length > 0) throw new ConfigError(syntax.map(formatProblem).join('\n'));
  const problems: string[] = [];
  const report = (path: readonly PropertyKey[], message: string): void => {
    const docPath = path.filter((p): p is string | number => typeof p !== 'symbol');
    problems.push(formatProblem({ ...source.position(docPath), severity: 'error', message: `${pathText(path) || '(top)'}: ${message}` }));
  };
  const parsed = ConfigShape.safeParse(source.value() ?? {});
  if (!parsed.success) {
    for (const issue of parsed.error.issues) report(issue.path, issue.message);
    throw new ConfigError(problems.join('\n'));
  }
  const doc = parsed.data;
  const receivers = new Map<string, Receiver>();
  doc.receivers.forEach((r, i) => {
    if (receivers.has(r.name)) report(['receivers', i, 'name'], `receiver ${JSON.stringify(r.name)} is defined twice`);
    const kind = r.email ? 'email' : r.webhook ? 'webhook' : 'syslog';
    // A secret comes from the environment variable `name` or the first line of `file`: exactly one of them.
    const secretOf = (what: 'password' | 'secret', name: string | undefined, file: string | undefined): string => {
      const at = (field: string): PropertyKey[] => ['receivers', i, kind, field];
      if ((name === undefined) === (file === undefined)) {
        report(at(`${what}_env`), `give either \`${what}_env\` or \`${what}_file\``);
        return '';
      }
      if (name !== undefined) {
        const value = env[name];
        if (!value) report(at(`${what}_env`), `environment variable ${name} is not set`);
        return value ?? '';
      }
      try {
        const value = readBoundedFile(file!, { maxBytes: MAX_SECRET_FILE_BYTES, secret: true }).split('\n')[0].trim();
        if (!value) report(at(`${what}_file`), `${file} is empty`);
        return value;
      } catch (err) {
        report(at(`${what}_file`), err instanceof FileReadError ? `${file}: ${err.message}` : `cannot read ${file}: ${(err as Error).message}`);
        return '';
      }
    };
    const caOf = (file: string | undefined): string | undefined => {
      if (!file) return undefined;
      try {
        return readBoundedFile(file, { maxBytes: MAX_CA_FILE_BYTES });
      } catch (err) {
        report(['receivers', i, kind, 'ca_file'], `cannot read ${file}: ${(err as Error).message}`);
        return undefined;
      }
    };
    if (r.email) {
      const e = r.email;
      const hasPassword = e.password_env !== undefined || e.password_file !== undefined;
      if ((e.username === undefined) === hasPassword) report(['receivers', i, 'email'], 'give both `username` and `password_env` (or `password_file`), or neither');
      const ca = caOf(e.ca_file);
      if (e.subject) {
        try {
          compileSubject(e.subject);
        } catch (err) {
          report(['receivers', i, 'email', 'subject'], `bad template: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      receivers.set(r.name, {
        name: r.name, type: 'email', attempts: r.attempts, host: e.host, port: e.port, secure: e.secure, requireTls: e.require_tls, ca,
        auth: e.username && hasPassword ? { user: e.username, pass: secretOf('password', e.password_env, e.password_file) } : undefined,
        from: e.from, to: e.to, subject: e.subject, timeoutMs: e.timeout,
      });
    } else if (r.webhook) {
      const w = r.webhook;
      if (new URL(w.url).protocol === 'http:' && !w.allow_http) {
        report(['receivers', i, 'webhook', 'url'], `${w.url} is plain http, so alerts and their signatures would cross the network in clear: use https, or set \`allow_http: true\` for a receiver on this host or behind a proxy that adds TLS`);
      }
      const secret = secretOf('secret', w.secret_env, w.secret_file);
      const keyBytes = signingKeyBytes(secret);
      if (secret && (keyBytes === undefined || keyBytes < MIN_SIGNING_KEY_BYTES)) {
        const where = w.secret_env !== undefined ? ['secret_env', `the secret in ${w.secret_env}`] : ['secret_file', `the secret in ${w.secret_file}`];
        report(['receivers', i, 'webhook', where[0]], keyBytes === undefined
          ? `${where[1]} starts with whsec_ but the rest is not base64`
          : `${where[1]} has ${keyBytes} bytes of key material; a signing secret needs at least ${MIN_SIGNING_KEY_BYTES} (e.g. whsec_$(openssl rand -base64 32))`);
      }
      receivers.set(r.name, {
        name: r.name, type: 'webhook', attempts: r.attempts, url: w.url, secret, format: w.format, timeoutMs: w.timeout,
      });
    } else if (r.mailbox) {
      receivers.set(r.name, { name: r.name, type: 'mailbox', attempts: r.attempts, path: r.mailbox.path, from: r.mailbox.from, to: r.mailbox.to });
    } else if (r.syslog) {
      const l = r.syslog;
      if (l.transport === 'tcp' && !l.allow_plain_tcp) {
        report(['receivers', i, 'syslog', 'transport'], 'plain TCP sends alerts across the network in clear: use `transport: tls`, or set `allow_plain_tcp: true` for a collector on this host or a trusted segment');
      }
      if (l.transport === 'tcp' && l.ca_file) report(['receivers', i, 'syslog', 'ca_file'], '`ca_file` is for `transport: tls`');
      receivers.set(r.name, {
        name: r.name, type: 'syslog', attempts: r.attempts, host: l.host, port: l.port, transport: l.transport, ca: caOf(l.ca_file), format: l.format,
        framing: l.framing, facility: FACILITIES.indexOf(l.facility), appName: l.app_name, timeoutMs: l.timeout,
      });
    }
  });
  const base = { ...DEFAULT_TIMING, ...timing(doc.defaults) };
  const routes: Route[] = doc.routes.map((r, i) => {
    r.receivers.forEach((name, j) => {
      if (!receivers.has(name)) report(['routes', i, 'receivers', j], `no receiver is named ${JSON.stringify(name)}`);
    });
    return { name: r.name ?? `route-${i}`, matchers: r.matchers, receivers: r.receivers, continue: r.continue, ...base, ...timing(r) };
  });
  if (problems.length > 0) throw new ConfigError(problems.join('\n'));
  return {
    receivers, routes,
    inhibitRules: doc.inhibit_rules.map((r) => ({ source: r.source, target: r.target, equal: r.equal, durationMs: r.duration })),
    delivery: { backoffMs: doc.delivery.backoff, maxBackoffMs: doc.delivery.max_backoff, concurrency: doc.delivery.concurrency, backlogAlert: doc.delivery.backlog_alert },
  };
}

/**
 * What `xdp-ids run` uses without an alerts config: every alert, one message per attack, as an
 * email into an mbox file. The expiries of automatic blocks come in an hourly digest: the attack's
 * message already said how long each block lasts, and nobody acts on its end.
 */
export function mailboxConfig(file: string): AlertsConfig {
  const yaml = `
defaults: { group_wait: 2s, group_interval: 30s }
receivers: [{ name: local-mailbox, mailbox: { path: ${JSON.stringify(file)} } }]
routes:
  - { name: block-expiries, matchers: [kind=block, phase=expired, 'origin=~rule|model'], receivers: [local-mailbox],
      group_by: [kind, phase], group_wait: 1h, group_interval: 1h, send_resolved: false }
  - { receivers: [local-mailbox] }
`;
  return parseConfig(yaml, '(built-in mailbox config)');
}

function timing(t: { group_by?: string[]; group_wait?: number; group_interval?: number; repeat_interval?: number; send_resolved?: boolean }): Partial<typeof DEFAULT_TIMING> {
  const out: Partial<typeof DEFAULT_TIMING> = {};
  if (t.group_by) out.groupBy = t.group_by;
  if (t.group_wait !== undefined) out.groupWaitMs = t.group_wait;
  if (t.group_interval !== undefined) out.groupIntervalMs = t.group_interval;
  if (t.repeat_interval !== undefined) out.repeatIntervalMs = t.repeat_interval;
  if (t.send_resolved !== undefined) out.sendResolved = t.send_resolved;
  return out;
}
