/**
 * A real SMTP server for alert tests: STARTTLS with a certificate made by openssl for this run,
 * AUTH PLAIN/LOGIN, every accepted message parsed back with mailparser. It can be stopped and
 * started again on the same port to play an outage.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface TestSmtpServer {
  port: number;
  /** PEM of the self-signed certificate, for the client's trust. */
  caFile: string;
  messages: ParsedMail[];
  /** Waits until at least `n` messages have arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<ParsedMail[]>;
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestSmtpServer(auth: { user: string; pass: string }): Promise<TestSmtpServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-smtp-'));
  const keyFile = path.join(dir, 'key.pem');
  const caFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', caFile, '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  const messages: ParsedMail[] = [];
  const waiters = new Set<() => void>();
  let server: SMTPServer | undefined;
  let port = 0;

  const make = (): SMTPServer => new SMTPServer({
    key: fs.readFileSync(keyFile), cert: fs.readFileSync(caFile), authMethods: ['PLAIN', 'LOGIN'], logger: false,
    onAuth(a, _session, cb) {
      if (a.username === auth.user && a.password === auth.pass) cb(null, { user: a.username });
      else cb(new Error('invalid credentials'));
    },
    onData(stream, _session, cb) {
      simpleParser(stream).then((mail) => {
        messages.push(mail);
        for (const w of waiters) w();
        cb();
      }, cb);
    },
  });

  const up = (): Promise<void> => new Promise((resolve, reject) => {
    server = make();
    server.on('error', () => undefined);
    server.server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      port = (server!.server.address() as { port: number }).port;
      resolve();
    });
  });
  const down = (): Promise<void> => new Promise((resolve) => {
    if (!server) return resolve();
    const s = server;
    server = undefined;
    s.close(() => resolve());
  });
  await up();
  return {
    get port() { return port; },
    caFile, messages, up, down,
    waitFor(n, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (messages.length >= n) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(messages);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${n} email(s), got ${messages.length} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      await down();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
