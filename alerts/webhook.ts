/**
 * POSTs one webhook body, signed per Standard Webhooks (webhook-id, webhook-timestamp,
 * webhook-signature), and classifies the answer: 2xx done; 408, 429 and 5xx (and timeouts and
 * connection errors) retried, honouring Retry-After; 410 disables the receiver; other 4xx final.
 */
import { Webhook } from 'standardwebhooks';
import { PermanentError, ReceiverGoneError, RetryableError } from './send-errors';
import { webhookContentType } from './render';
import type { WebhookReceiver } from './types';

/** Retry-After is either seconds or an HTTP date. */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

const signers = new Map<string, Webhook>();

function signerFor(secret: string): Webhook {
  let signer = signers.get(secret);
  if (!signer) {
    // standardwebhooks takes `whsec_<base64>` secrets; any other text is used as raw key bytes.
    signer = secret.startsWith('whsec_') ? new Webhook(secret) : new Webhook(Buffer.from(secret, 'utf8'), { format: 'raw' });
    signers.set(secret, signer);
  }
  return signer;
}

export async function sendWebhook(r: WebhookReceiver, body: string, webhookId: string): Promise<void> {
  const now = new Date();
  const headers = {
    'content-type': webhookContentType(r.format),
    'user-agent': 'xdp-ids-alerter',
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': signerFor(r.secret).sign(webhookId, now, body),
  };
  let res: Response;
  try {
    res = await fetch(r.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(r.timeoutMs), redirect: 'error' });
    await res.arrayBuffer();
  } catch (err) {
    const e = err as Error;
    throw new RetryableError(e.name === 'TimeoutError' ? `no answer within ${r.timeoutMs} ms` : `${e.message}${e.cause ? `: ${(e.cause as Error).message}` : ''}`);
  }
  if (res.ok) return;
  const what = `HTTP ${res.status} ${res.statusText}`;
  if (res.status === 410) throw new ReceiverGoneError(`${what}: the receiver says it is gone`);
  if (res.status === 408 || res.status === 429 || res.status >= 500) throw new RetryableError(what, retryAfterMs(res.headers.get('retry-after'), Date.now()));
  throw new PermanentError(what);
}
