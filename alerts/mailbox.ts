/**
 * A receiver that appends each email to an mbox file instead of sending it: for hosts without a
 * mail relay, and for `xdp-ids run`, whose alerts an analyst reads with `mutt -f FILE`. The
 * message is built by nodemailer exactly as the SMTP receiver would send it.
 */
import fs from 'node:fs';
import nodemailer from 'nodemailer';
import type { MailboxReceiver } from './types';
import type { RenderedEmail } from './render';
import { RetryableError } from './send-errors';

const builder = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });

/** mboxrd: a body line starting with (>*)From gains one more `>`, so readers never split a message there. */
function quoteFromLines(message: string): string {
  return message.replace(/^(>*From )/gm, '>$1');
}

export async function appendToMailbox(r: MailboxReceiver, email: RenderedEmail, messageId: string): Promise<void> {
  const info = await builder.sendMail({ from: r.from, to: r.to, subject: email.subject, text: email.text, html: email.html, messageId });
  const message = quoteFromLines((info.message as Buffer).toString('utf8')).replace(/\n*$/, '\n');
  const separator = `From xdp-ids ${new Date().toUTCString().replace(/,/g, '')}\n`;
  try {
    // One write with O_APPEND: concurrent alerters never interleave inside a message.
    fs.appendFileSync(r.path, `${separator}${message}\n`, { mode: 0o640 });
  } catch (err) {
    throw new RetryableError(`mailbox ${r.path}: ${(err as Error).message}`);
  }
}
