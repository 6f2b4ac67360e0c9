/**
 * Dashboard sessions, in the memory of the API process: a browser that signs in with an API
 * token (or a one-time login token that `xdp-ids run` prints) gets a session id in an HttpOnly
 * cookie and a CSRF token that every change must carry in a header. A session has the name and
 * scope of what it signed in with, lasts at most MAX_AGE_MS and ends after IDLE_MS without a
 * request. Only digests of ids and tokens are kept. Sessions end with the process: signing in
 * again is the way back, and nothing secret needs to be stored anywhere.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TokenScope } from '../blocking/tokens';

export const MAX_AGE_MS = 12 * 3_600_000;
const IDLE_MS = 3_600_000;
/** Sessions held at once; signing in past it ends the oldest. */
const MAX_SESSIONS = 1000;
/** One-time login tokens are short-lived. */
export const LOGIN_TOKEN_TTL_MS = 15 * 60_000;
const MAX_LOGIN_TOKENS = 100;

export interface Principal {
  /** The token's name (the actor of changes: `api:<name>`). */
  name: string;
  scope: TokenScope;
}

export interface Session extends Principal {
  /** The value for the cookie (only its digest is kept). */
  id: string;
  csrf: string;
  expiresMs: number;
}

interface Held extends Principal {
  csrf: string;
  expiresMs: number;
  idleUntilMs: number;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function secret(): string {
  return randomBytes(32).toString('base64url');
}

export class Sessions {
  private readonly held = new Map<string, Held>();
  private readonly loginTokens = new Map<string, { expiresMs: number; principal: Principal }>();
  private readonly ended = new Set<(digest: string) => void>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A token that signs in once, within LOGIN_TOKEN_TTL_MS, as `principal`. */
  issueLoginToken(principal: Principal): string {
    this.sweep();
    if (this.loginTokens.size >= MAX_LOGIN_TOKENS) this.loginTokens.delete(this.loginTokens.keys().next().value!);
    const token = `xdpl_${secret()}`;
    this.loginTokens.set(digest(token), { expiresMs: this.now() + LOGIN_TOKEN_TTL_MS, principal });
    return token;
  }

  /** Whether a login token can still sign in (not spent, not expired). */
  loginTokenUnspent(token: string): boolean {
    const held = this.loginTokens.get(digest(token));
    return held !== undefined && held.expiresMs > this.now();
  }

  /** Whom a one-time login token signs in as; the token is spent either way. */
  redeemLoginToken(presented: string): Principal | undefined {
    const key = digest(presented);
    const held = this.loginTokens.get(key);
    this.loginTokens.delete(key);
    return held && held.expiresMs > this.now() ? held.principal : undefined;
  }

  create(principal: Principal): Session {
    this.sweep();
    if (this.held.size >= MAX_SESSIONS) this.end(this.held.keys().next().value!);
    const id = secret();
    const now = this.now();
    const session: Session = { ...principal, id, csrf: secret(), expiresMs: now + MAX_AGE_MS };
    this.held.set(digest(id), { name: principal.name, scope: principal.scope, csrf: session.csrf, expiresMs: session.expiresMs, idleUntilMs: now + IDLE_MS });
    return session;
  }

  /** The session of a cookie's id, kept alive by the use; undefined when unknown, expired or idle too long. */
  get(id: string): (Principal & { key: string; csrf: string }) | undefined {
    const key = digest(id);
    const held = this.held.get(key);
    if (!held) return undefined;
    const now = this.now();
    if (held.expiresMs <= now || held.idleUntilMs <= now) {
      this.end(key);
      return undefined;
    }
    held.idleUntilMs = now + IDLE_MS;
    return { key, name: held.name, scope: held.scope, csrf: held.csrf };
  }

  /** Whether a session (by the key `get` returned) is still held, without keeping it alive. */
  holds(key: string): boolean {
    const held = this.held.get(key);
    return held !== undefined && held.expiresMs > this.now() && held.idleUntilMs > this.now();
  }

  /** Compares a presented CSRF token with the session's in constant time. */
  static csrfMatches(expected: string, presented: string | undefined): boolean {
    if (typeof presented !== 'string') return false;
    const a = Buffer.from(digest(expected));
    const b = Buffer.from(digest(presented));
    return timingSafeEqual(a, b);
  }

  end(key: string): void {
    if (!this.held.delete(key)) return;
    for (const listener of this.ended) listener(key);
  }

  /** Called with a session's key when it ends (sign-out, expiry noticed, eviction): live streams of it close. */
  onEnd(listener: (key: string) => void): () => void {
    this.ended.add(listener);
    return () => this.ended.delete(listener);
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, held] of this.held) if (held.expiresMs <= now || held.idleUntilMs <= now) this.end(key);
    for (const [key, token] of this.loginTokens) if (token.expiresMs <= now) this.loginTokens.delete(key);
  }
}
