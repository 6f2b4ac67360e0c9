/** Sends one rendered email through a receiver's SMTP server (nodemailer: TLS or STARTTLS, auth). */
import nodemailer, { type Transporter } from 'nodemailer';
import type { RenderedEmail } from './render';
import { PermanentError, RetryableError } from './send-errors';
import type { EmailReceiver } from './types';

/** Pooled: a burst of alerts reuses a few TLS sessions instead of a handshake per message. */
export function emailTransport(r: EmailReceiver): Transporter {
  return nodemailer.createTransport({
    pool: true, maxConnections: 4, host: r.host, port: r.port, secure: r.secure, requireTLS: !r.secure && r.requireTls, auth: r.auth,
    tls: r.ca ? { ca: r.ca } : undefined,
    connectionTimeout: r.timeoutMs, greetingTimeout: r.timeoutMs, socketTimeout: r.timeoutMs,
  });
}

/** `messageId` is stable across retries and replays, so a mailbox can drop the duplicate a crash may cause. */
export async function sendEmail(transport: Transporter, r: EmailReceiver, email: RenderedEmail, messageId: string): Promise<void> {
  try {
    await transport.sendMail({ from: r.from, to: r.to, subject: email.subject, text: email.text, html: email.html, messageId });
  } catch (err) {
    const e = err as Error & { responseCode?: number };
    // SMTP 5xx replies are final (bad recipient, auth refused); everything else (4xx, connection) is worth retrying.
    if (e.responseCode !== undefined && e.responseCode >= 500) throw new PermanentError(`SMTP ${e.responseCode}: ${e.message}`);
    throw new RetryableError(`SMTP: ${e.message}`);
  }
}
