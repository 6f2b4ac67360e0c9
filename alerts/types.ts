/**
 * The types the alerter's modules share: the checked configuration (receivers, routes,
 * inhibition), and what a group flush hands to renderers and receivers (a notification and its
 * items). They live below every module that uses them, so that config, grouping, rendering and
 * delivery import downwards and never each other in a circle.
 */
import type { AlertEvent } from '../common/alert-events';
import type { Matcher } from './matchers';

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
  format: WebhookFormat;
  timeoutMs: number;
}

/** `json`: the versioned payload; `slack`: `{text}`; `ecs`, `ocsf`: one SIEM event a line. */
export const WEBHOOK_FORMATS = ['json', 'slack', 'ecs', 'ocsf'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

export interface MailboxReceiver {
  name: string;
  type: 'mailbox';
  attempts: number;
  path: string;
  from: string;
  to: string[];
}

/** RFC 5424 syslog over TCP or TLS (alerts/syslog.ts): one message per event. */
export interface SyslogReceiver {
  name: string;
  type: 'syslog';
  attempts: number;
  host: string;
  port: number;
  transport: 'tcp' | 'tls';
  /** PEM CAs to trust instead of the system's (TLS). */
  ca?: string;
  /** The MSG of each message: the event's ECS document as JSON, or a CEF line. */
  format: 'json' | 'cef';
  /** RFC 6587: `octet-counting` (`LEN SP MSG`, what RFC 5425 requires over TLS) or `newline` (MSG LF). */
  framing: 'octet-counting' | 'newline';
  /** Facility code 0-23. */
  facility: number;
  appName: string;
  timeoutMs: number;
}

export type Receiver = EmailReceiver | WebhookReceiver | MailboxReceiver | SyslogReceiver;

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

export type NoticePhase = 'opened' | 'repeat' | 'resolved';

export interface NoticeItem {
  phase: NoticePhase;
  event: AlertEvent;
  /** For repeats: what changed since the last message about this item. */
  changes: string[];
}

/** One message to every receiver of a route: the items of one group flush. */
export interface Notification {
  id: string;
  route: string;
  groupLabels: Record<string, string>;
  items: NoticeItem[];
  createdMs: number;
}

export interface FlushJob {
  route: string;
  group: string;
  groupLabels: Record<string, string>;
}
