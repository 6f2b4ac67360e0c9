/**
 * The alerts `xdp-ids run` wrote into its mbox (alerts/mailbox.ts appends one message per
 * notification after a `From xdp-ids <date>` line), parsed with mailparser as a mail reader would.
 */
import fs from 'node:fs';
import { simpleParser } from 'mailparser';

export interface MailboxMessage {
  subject: string;
  text: string;
}

const SEPARATOR = /^From xdp-ids .*\n/m;

/** Reads the mailbox as it grows, parsing each message once (the alerter appends whole messages in one write). */
export class MailboxReader {
  private offset = 0;
  private readonly messages: MailboxMessage[] = [];

  constructor(private readonly file: string) {}

  async read(): Promise<MailboxMessage[]> {
    let fresh: Buffer;
    try {
      const all = fs.readFileSync(this.file);
      fresh = all.subarray(this.offset);
      this.offset = all.length;
    } catch {
      return this.messages;
    }
    const raw = fresh.toString('utf8').split(SEPARATOR).filter((m) => m.trim());
    for (const m of raw) {
      const parsed = await simpleParser(m);
      this.messages.push({ subject: parsed.subject ?? '', text: parsed.text ?? '' });
    }
    return this.messages;
  }
}

/** The incident ids a message is about (the text template lists an attack's incidents as `Incident <id> (<rule>, <key>)`). */
export function incidentIdsOf(message: MailboxMessage): string[] {
  return [...message.text.matchAll(/^Incident (\S+)/gm)].map((m) => m[1]);
}

/** Every IPv4 and IPv6 address or prefix the message names. */
export function addressesOf(message: MailboxMessage): string[] {
  const text = `${message.subject}\n${message.text}`;
  const v4 = [...text.matchAll(/(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(\/\d{1,2})?(?![\d.]*\d)/g)].map((m) => m[1] + (m[2] ?? ''));
  const v6 = [...text.matchAll(/(?<![\w:])((?:[0-9a-f]{1,4}:){1,7}:?(?:[0-9a-f]{1,4})?(?::[0-9a-f]{1,4})*)(\/\d{1,3})?(?![\w:])/gi)]
    .map((m) => m[1] + (m[2] ?? '')).filter((a) => a.includes('::') || a.split(':').length === 8);
  return [...new Set([...v4, ...v6])];
}
