/**
 * Who may use the control API and the dashboard, and how they prove it. A script sends
 * `Authorization: Bearer <secret>` of a configured token; a browser signs in once (with a token's
 * secret, or a one-time login token from `xdp-ids run`) and then carries a session cookie
 * (HttpOnly, SameSite=Strict, Secure under TLS). The token's or session's scope decides what it
 * may do: GET needs `read`, anything else `write`. A change made with a session must come from
 * the dashboard's own origin (Origin header, Sec-Fetch-Site) and carry the session's CSRF token
 * in the `x-csrf-token` header: SameSite does not separate two ports of one host, so the cookie
 * alone would let another local site's page make changes.
 *
 * An address (IPv6: its /64) that fails to authenticate too often is locked out for a while, good
 * credentials or not, or guessing would simply go on. Only a wrong token or login token counts:
 * requests that authenticate, that present nothing, or whose session has ended do not.
 */
import fastifyCookie from '@fastify/cookie';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { findToken, scopeAllows, type ApiToken, type TokenScope } from '../blocking/tokens';
import { MAX_AGE_MS, Sessions, type Principal } from './sessions';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No credentials needed (health, the page itself, signing in). */
    public?: boolean;
    /** The scope the route needs, when not the method's (`read` for GET and HEAD, else `write`). */
    scope?: TokenScope;
  }
  interface FastifyRequest {
    /** `api:<token name>`, set once the request is authenticated. */
    actor: string;
    /** The session's key when the request came with a session cookie. */
    sessionKey?: string;
  }
}

export const CSRF_HEADER = 'x-csrf-token';
const AUTH_WINDOW_MS = 60_000;

export interface AuthOptions {
  tokens: readonly ApiToken[];
  sessions: Sessions;
  /** Failed authentications an address may have in a minute; the next locks it out for a minute. */
  maxFailures: number;
  /** Served over TLS: the cookie is Secure (and `__Host-` prefixed). */
  tls: boolean;
}

function tooManyFailures(reply: FastifyReply, seconds: number): FastifyReply {
  return reply.code(429).header('retry-after', String(seconds))
    .send({ error: `too many failed authentications from this address: retry in ${seconds} s` });
}

function isRead(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/** Why a request made with a session cookie cannot be a change the dashboard asked for; undefined when it can. */
function crossSiteProblem(req: FastifyRequest): string | undefined {
  const origin = req.headers.origin;
  if (origin !== `${req.protocol}://${req.headers.host}`) return `changes need the dashboard's own Origin (got ${origin === undefined ? 'none' : JSON.stringify(origin)})`;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return `changes must come from the dashboard itself (Sec-Fetch-Site: ${site})`;
  return undefined;
}

export async function registerAuth(app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const cookieName = opts.tls ? '__Host-xdp-ids-session' : 'xdp-ids-session';
  await app.register(fastifyCookie);
  await app.register(rateLimit, { global: false, continueExceeding: true });
  const failures = app.createRateLimit({ max: opts.maxFailures, timeWindow: AUTH_WINDOW_MS });
  app.decorateRequest('actor', '');
  app.decorateRequest('sessionKey', undefined);

  const lockedOut = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const lock = await failures(req, { increment: false });
    return !lock.isAllowed && lock.isExceeded ? tooManyFailures(reply, lock.ttlInSeconds) : undefined;
  };
  const refuse = async (req: FastifyRequest, reply: FastifyReply, code: 401 | 403, error: string, challenge?: string): Promise<FastifyReply> => {
    const failed = await failures(req);
    if (!failed.isAllowed && failed.isExceeded) return tooManyFailures(reply, failed.ttlInSeconds);
    if (challenge) reply.header('www-authenticate', challenge);
    return reply.code(code).send({ error });
  };

  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.public) return;
    const locked = await lockedOut(req, reply);
    if (locked) return locked;
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const sessionId = req.cookies[cookieName];
    let principal: Principal;
    if (bearer) {
      const token = findToken(bearer[1], opts.tokens);
      if (!token) return refuse(req, reply, 401, 'invalid token', 'Bearer error="invalid_token"');
      principal = token;
    } else if (sessionId) {
      const session = opts.sessions.get(sessionId);
      // Not counted: nobody guesses a 256-bit id, and every browser still holding a cookie from before an API restart would count.
      if (!session) return reply.code(401).send({ error: 'the session has ended: sign in again' });
      if (!isRead(req.method)) {
        // A forged request's victim is the session's own address: it must not count towards a lockout.
        const problem = crossSiteProblem(req) ?? (Sessions.csrfMatches(session.csrf, req.headers[CSRF_HEADER] as string | undefined) ? undefined : `missing or wrong ${CSRF_HEADER} header`);
        if (problem) return reply.code(403).send({ error: problem });
      }
      principal = session;
      req.sessionKey = session.key;
    } else {
      // Not counted: presenting nothing guesses nothing (a signed-out dashboard asks this on every load).
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing bearer token (Authorization: Bearer <token>) or session' });
    }
    const needed: TokenScope = req.routeOptions.config.scope ?? (isRead(req.method) ? 'read' : 'write');
    if (!scopeAllows(principal.scope, needed)) {
      return reply.code(403).header('www-authenticate', 'Bearer error="insufficient_scope", scope="write"')
        .send({ error: `token ${principal.name} has scope ${principal.scope}; ${req.method} ${req.url.split('?')[0]} needs a token with scope ${needed}` });
    }
    req.actor = `api:${principal.name}`;
  });

  app.post<{ Body: { token?: unknown } }>('/v1/session', { config: { public: true } }, async (req, reply) => {
    const locked = await lockedOut(req, reply);
    if (locked) return locked;
    // Signing a victim's browser in as someone else is a forgery too.
    const problem = crossSiteProblem(req);
    if (problem) return reply.code(403).send({ error: problem });
    const presented = typeof req.body?.token === 'string' ? req.body.token.trim() : '';
    const principal = presented.startsWith('xdpl_') ? opts.sessions.redeemLoginToken(presented) : findToken(presented, opts.tokens);
    if (!principal) return refuse(req, reply, 401, presented.startsWith('xdpl_') ? 'this login link was used already or has expired: start a new one' : 'invalid token');
    const session = opts.sessions.create({ name: principal.name, scope: principal.scope });
    reply.setCookie(cookieName, session.id, { path: '/', httpOnly: true, sameSite: 'strict', secure: opts.tls, maxAge: MAX_AGE_MS / 1000 });
    return { name: session.name, scope: session.scope, csrf: session.csrf };
  });

  app.get('/v1/session', async (req) => {
    const session = req.sessionKey ? opts.sessions.get(req.cookies[cookieName]!) : undefined;
    return { actor: req.actor, ...(session ? { name: session.name, scope: session.scope, csrf: session.csrf } : {}) };
  });

  app.delete('/v1/session', { config: { scope: 'read' } }, async (req, reply) => {
    if (req.sessionKey) opts.sessions.end(req.sessionKey);
    reply.clearCookie(cookieName, { path: '/', httpOnly: true, sameSite: 'strict', secure: opts.tls });
    return { signedOut: true };
  });
}
