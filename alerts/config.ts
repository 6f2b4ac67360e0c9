/**
 * alerts.yaml: receivers, routes, inhibition rules and delivery limits, validated with zod before
 * anything starts. Every problem is reported as `file:line:column: path: message`. Secrets are
 * never in the file: a receiver names the environment variable that holds its password or
 * signing secret, and a missing variable is a configuration error.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { parseDuration } from '../detector/rules/durations';
import { formatProblem } from '../detector/rules/problems';
import { YamlSource } from '../detector/rules/yaml-source';
import { parseMatcher, type Matcher } from './matchers';
import { compileSubject } from './render';

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
  password_env: envName.optional(),
  from: z.string().min(3),
  to: z.array(z.string().min(3)).min(1),
  /** Handlebars template of the subject; see alerts/README.md for the fields. */
  subject: z.string().min(1).max(500).optional(),
  timeout: duration.default(15_000),
});

const WebhookShape = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'a webhook url is an http:// or https:// URL' }),
  secret_env: envName,
  /** `json`: the versioned payload of alerts/README.md; `slack`: a Slack/Teams-compatible `{text}` body. */
  format: z.enum(['json', 'slack']).default('json'),
  timeout: duration.default(10_000),
});

const MailboxShape = z.strictObject({
  /** An mbox file the emails are appended to (read with `mutt -f`); created when missing. */
  path: z.string().min(1),
  from: z.string().min(3).default('xdp-ids <xdp-ids@localhost>'),
  to: z.array(z.string().min(3)).min(1).default(['soc@localhost']),
});

const ReceiverShape = z.strictObject({
  name: z.string().regex(NAME, { error: 'a receiver name is 1 to 64 lower-case letters, digits, ".", "_" or "-"' }),
  email: EmailShape.optional(),
  webhook: WebhookShape.optional(),
  mailbox: MailboxShape.optional(),
  /** Delivery attempts before the message is dead-lettered. */
  attempts: z.int().min(1).max(100).default(8),
}).refine((r) => [r.email, r.webhook, r.mailbox].filter((x) => x !== undefined).length === 1, { error: 'a receiver has exactly one of `email`, `webhook` or `mailbox`' });

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

export interface EmailReceiver {
  name: string;
  type: 'email';
  attempts: number;
  host: string;
  port: number;
  secure: boolean;
  requireTls: boolean;
  ca?: string;
  auth?: { user: string; pass: string };
  from: string;
  to: string[];
  subject?: string;
  timeoutMs: number;
}

export interface WebhookReceiver {
  name: string;
  type: 'webhook';
  attempts: number;
  url: string;
  secret: string;
  format: 'json' | 'slack';
  timeoutMs: number;
}

export interface MailboxReceiver {
  name: string;
  type: 'mailbox';
  attempts: number;
  path: string;
  from: string;
  to: string[];
}

export type Receiver = EmailReceiver | WebhookReceiver | MailboxReceiver;

export interface Route {
  name: string;
  matchers: Matcher[];
  receivers: string[];
  continue: boolean;
  groupBy: string[];
  groupWaitMs: number;
  groupIntervalMs: number;
  repeatIntervalMs: number;
  sendResolved: boolean;
}

export interface InhibitRule {
  source: Matcher[];
  target: Matcher[];
  equal: string[];
  durationMs: number;
}

export interface AlertsConfig {
  receivers: Map<string, Receiver>;
  routes: Route[];
  inhibitRules: InhibitRule[];
  delivery: { backoffMs: number; maxBackoffMs: number; concurrency: number; backlogAlert: number };
}

export class ConfigError extends Error {}

/** One incident per message, the first after 10 s, repeats hourly (Alertmanager's defaults, but grouped per incident). */
const DEFAULT_TIMING = { groupBy: ['incident'], groupWaitMs: 10_000, groupIntervalMs: 60_000, repeatIntervalMs: 3_600_000, sendResolved: true };

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
    const secretOf = (field: string, name: string): string => {
      const value = env[name];
      if (!value) report(['receivers', i, r.email ? 'email' : 'webhook', field], `environment variable ${name} is not set`);
      return value ?? '';
    };
    if (r.email) {
      const e = r.email;
      if ((e.username === undefined) !== (e.password_env === undefined)) report(['receivers', i, 'email'], 'give both `username` and `password_env`, or neither');
      let ca: string | undefined;
      if (e.ca_file) {
        try {
          ca = fs.readFileSync(e.ca_file, 'utf8');
        } catch (err) {
          report(['receivers', i, 'email', 'ca_file'], `cannot read ${e.ca_file}: ${(err as Error).message}`);
        }
      }
      if (e.subject) {
        try {
          compileSubject(e.subject);
        } catch (err) {
          report(['receivers', i, 'email', 'subject'], `bad template: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      receivers.set(r.name, {
        name: r.name, type: 'email', attempts: r.attempts, host: e.host, port: e.port, secure: e.secure, requireTls: e.require_tls, ca,
        auth: e.username && e.password_env ? { user: e.username, pass: secretOf('password_env', e.password_env) } : undefined,
        from: e.from, to: e.to, subject: e.subject, timeoutMs: e.timeout,
      });
    } else if (r.webhook) {
      const w = r.webhook;
      receivers.set(r.name, {
        name: r.name, type: 'webhook', attempts: r.attempts, url: w.url, secret: secretOf('secret_env', w.secret_env), format: w.format, timeoutMs: w.timeout,
      });
    } else if (r.mailbox) {
      receivers.set(r.name, { name: r.name, type: 'mailbox', attempts: r.attempts, path: r.mailbox.path, from: r.mailbox.from, to: r.mailbox.to });
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

/** What `xdp-ids run` uses without an alerts config: every alert, one message per incident, as an email into an mbox file. */
export function mailboxConfig(file: string): AlertsConfig {
  const yaml = `
defaults: { group_wait: 2s, group_interval: 30s }
receivers: [{ name: local-mailbox, mailbox: { path: ${JSON.stringify(file)} } }]
routes: [{ receivers: [local-mailbox] }]
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
