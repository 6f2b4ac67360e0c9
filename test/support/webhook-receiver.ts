/**
 * A real HTTP webhook receiver for alert tests: verifies every request's Standard Webhooks
 * signature, records the verified ones (an `application/x-ndjson` body as the array of its
 * lines' values), and answers what the test scripts (a status, a Retry-After, a delay), one
 * answer per request, then 200.
 */
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

export interface ReceivedWebhook {
  id: string;
  body: unknown;
  contentType: string;
  status: number;
  atMs: number;
  /** Answered 2xx to a sender that was still there to read it (a killed sender's request does not count). */
  accepted: boolean;
}

export interface ScriptedAnswer {
  status: number;
  retryAfter?: string;
  delayMs?: number;
}

export interface TestWebhookReceiver {
  url: string;
  /** Every verified request, including the ones answered with an error. */
  requests: ReceivedWebhook[];
  /** Requests whose signature did not verify. */
  rejected: number;
  /** Verified requests received so far, answered or not. */
  started: number;
  script(...answers: ScriptedAnswer[]): void;
  waitFor(predicate: (reqs: ReceivedWebhook[], started: number) => boolean, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestWebhookReceiver(secret: string): Promise<TestWebhookReceiver> {
  const verifier = new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' });
  const requests: ReceivedWebhook[] = [];
  const answers: ScriptedAnswer[] = [];
  const waiters = new Set<() => void>();
  let rejected = 0;
  let started = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      const ndjson = req.headers['content-type'] === 'application/x-ndjson';
      try {
        body = verifier.verify(raw, req.headers as Record<string, string>);
      } catch (err) {
        // The signature is checked before the body is parsed as one JSON value, which NDJSON is not.
        if (!(ndjson && err instanceof SyntaxError)) {
          rejected++;
          res.writeHead(401).end();
          return;
        }
      }
      if (ndjson) body = raw.split('\n').filter(Boolean).map((line) => JSON.parse(line) as unknown);
      started++;
      for (const w of waiters) w();
      const answer = answers.shift() ?? { status: 200 };
      const reply = (): void => {
        const accepted = answer.status < 300 && !req.socket.destroyed;
        requests.push({ id: String(req.headers['webhook-id']), body, contentType: String(req.headers['content-type']), status: answer.status, atMs: Date.now(), accepted });
        for (const w of waiters) w();
        res.writeHead(answer.status, answer.retryAfter ? { 'retry-after': answer.retryAfter } : {}).end();
      };
      if (answer.delayMs) setTimeout(reply, answer.delayMs);
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    get rejected() { return rejected; },
    get started() { return started; },
    script(...a) { answers.push(...a); },
    waitFor(predicate, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (predicate(requests, started)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`webhook receiver: condition not met within ${timeoutMs} ms (${requests.length} requests: ${requests.map((r) => r.status).join(',')})`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    stop: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
