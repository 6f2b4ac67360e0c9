/**
 * Turns a notification into what a receiver sends: an email (subject, text, HTML) or a webhook
 * body. Templates are Handlebars files under alerts/templates (or a subject from the config):
 * data, with only the built-in block helpers, so a template can place and loop over fields but
 * not run code. HTML is escaped by Handlebars (`{{x}}`; the templates use no `{{{x}}}`); text
 * parts are not escaped, so the values they get are cleaned to one line of plain text in
 * view.ts, and the subject is one line whatever its template does, so nothing can add mail
 * headers.
 */
import fs from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { oneLine, slackText } from '../common/text';
import { ecsLines } from './ecs';
import { ocsfLines } from './ocsf';
import { webhookPayload } from './payload';
import type { Notification, WebhookFormat } from './types';
import { notificationView } from './view';

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

type Template = (view: object) => string;

const handlebars = Handlebars.create();

function compile(source: string, kind: 'text' | 'html'): Template {
  return handlebars.compile(source, { noEscape: kind === 'text', knownHelpersOnly: true, strict: false });
}

function templatesDir(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the repository root above ${__dirname}`);
    dir = parent;
  }
  return path.join(dir, 'alerts', 'templates');
}

function load(name: string, kind: 'text' | 'html'): Template {
  return compile(fs.readFileSync(path.join(templatesDir(), name), 'utf8'), kind);
}

let builtIn: { subject: Template; text: Template; html: Template } | undefined;
const subjects = new Map<string, Template>();

/** Checks a subject template from the config; throws with Handlebars' message when it does not parse. */
export function compileSubject(source: string): Template {
  let t = subjects.get(source);
  if (!t) {
    t = compile(source, 'text');
    t({});
    subjects.set(source, t);
  }
  return t;
}

export function renderEmail(n: Notification, subjectTemplate?: string): RenderedEmail {
  builtIn ??= { subject: load('subject.hbs', 'text'), text: load('email.txt.hbs', 'text'), html: load('email.html.hbs', 'html') };
  const view = notificationView(n);
  const subject = oneLine((subjectTemplate ? compileSubject(subjectTemplate) : builtIn.subject)(view));
  return { subject, text: builtIn.text(view), html: builtIn.html(view) };
}

/** Slack and Teams incoming webhooks take `{text}` in their markup: the subject in bold, the text part in a code block that no value can close. */
function slackBody(n: Notification): object {
  const { subject, text } = renderEmail(n);
  return { text: `*${slackText(subject)}*\n\`\`\`${slackText(text)}\`\`\`` };
}

/** `ecs` and `ocsf` are one event a line (alerts/ecs.ts, alerts/ocsf.ts); `json` and `slack` one JSON object. */
export function renderWebhookBody(n: Notification, format: WebhookFormat): string {
  switch (format) {
    case 'slack': return JSON.stringify(slackBody(n));
    case 'json': return JSON.stringify(webhookPayload(n));
    case 'ecs': return ecsLines(n);
    case 'ocsf': return ocsfLines(n);
  }
}

export function webhookContentType(format: WebhookFormat): string {
  return format === 'ecs' || format === 'ocsf' ? 'application/x-ndjson' : 'application/json';
}
