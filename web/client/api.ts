/**
 * Requests to the control API with the session cookie, and with the session's CSRF token on
 * every change (web/auth.ts). A 401 means the session ended: the page goes back to sign-in.
 */

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

let csrf: string | undefined;
let signedOut: () => void = () => undefined;

export function useSession(token: string | undefined, onSignedOut: () => void): void {
  csrf = token;
  signedOut = onSignedOut;
}

export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const json = await res.json().catch(() => ({})) as { error?: string };
  if (res.status === 401 && path !== '/v1/session') signedOut();
  if (!res.ok) throw new ApiError(res.status, json.error ?? `${res.status} ${res.statusText}`);
  return json as T;
}

/** Runs a change and reports its failure next to the control that asked for it. */
export async function change(status: HTMLElement, work: () => Promise<unknown>, done: string): Promise<boolean> {
  status.textContent = '…';
  try {
    await work();
    status.textContent = done;
    status.dataset.state = 'ok';
    return true;
  } catch (err) {
    status.textContent = (err as Error).message;
    status.dataset.state = 'error';
    return false;
  }
}
