/**
 * The HTTP control API: block, limit and allow changes and listings, health and Prometheus
 * metrics, and the web dashboard (web/) with the routes it reads. Every route but /health and the
 * dashboard's page needs a token (or a dashboard session) whose scope covers it (web/auth.ts:
 * GET needs `read`, changes need `write`); the token's name is the actor of the change. Without
 * configured tokens the API does not start; off the loopback it serves HTTPS only, unless told
 * otherwise in so many words.
 */
import os from 'node:os';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createRegistry } from '../common/metrics';
import { isLoopback, urlHost } from '../common/listen';
import { connectRedis, type RedisTarget } from '../common/redis';
import { LedgerBlocker, type BlockerConfig } from './blocker';
import { BlockControl, InputError } from './control';
import { BlockLedger } from './ledger';
import { LedgerMaintenance } from './maintenance';
import { blockingMetrics } from './metrics';
import { AlertQueueNotices } from './notices';
import type { ApiToken } from './tokens';
import type { WidthLimits } from './widths';
import { registerAuth } from '../web/auth';
import { registerDashboard } from '../web/dashboard';
import { Sessions } from '../web/sessions';

export interface ControlApiOptions {
  /** The control role's Redis (common/redis-roles.ts). */
  redisUrl: RedisTarget;
  host: string;
  port: number;
  tokens: ApiToken[];
  log: Logger;
  blocker?: Partial<BlockerConfig>;
  /** PEM certificate (chain) and key: the API serves HTTPS. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Serve plain HTTP on a non-loopback address (only behind something that adds TLS). */
  insecureHttp?: boolean;
  widths?: WidthLimits;
  /** Failed authentications an address may have in a minute; the next locks it out for a minute. Default 10. */
  maxAuthFailures?: number;
  /**
   * The dashboard's sessions, when the caller issues one-time login tokens from them (`xdp-ids
   * run`); then the API may start without configured tokens.
   */
  sessions?: Sessions;
}

export interface ControlApi {
  url: string;
  close(): Promise<void>;
}

function routes(app: FastifyInstance, control: BlockControl, ledger: BlockLedger): void {
  const registry = blockingMetrics(ledger, createRegistry('api'));

  app.get('/health', { config: { public: true } }, async (_req, reply) => {
    try {
      await ledger.redis.ping();
      return { status: 'ok', redis: 'up' };
    } catch {
      return reply.code(503).send({ status: 'degraded', redis: 'down' });
    }
  });
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  app.get('/v1/blocks', async () => ({ blocks: await control.listBlocks() }));
  app.get<{ Params: { '*': string } }>('/v1/blocks/*', async (req, reply) => {
    const entry = await control.showBlock(req.params['*']);
    return entry ?? reply.code(404).send({ error: `no active block for ${req.params['*']}` });
  });
  app.post('/v1/blocks', async (req, reply) => {
    const outcome = await control.addBlock(req.body ?? {}, req.actor);
    return reply.code(outcome.status === 'refused' ? 409 : outcome.status === 'blocked' ? 201 : 200).send(outcome);
  });
  app.delete<{ Params: { '*': string } }>('/v1/blocks/*', async (req, reply) => (await control.delBlock(req.params['*'], req.actor)
    ? { removed: true }
    : reply.code(404).send({ error: `no active block for ${req.params['*']}` })));

  app.get('/v1/limits', async () => ({ limits: await control.listLimits() }));
  app.post('/v1/limits', async (req, reply) => reply.code(201).send(await control.addLimit(req.body ?? {}, req.actor)));
  app.delete<{ Params: { '*': string }; Querystring: { traffic?: string } }>('/v1/limits/*', async (req, reply) => (await control.delLimit(req.params['*'], req.query.traffic ?? 'syn', req.actor)
    ? { removed: true }
    : reply.code(404).send({ error: `no active ${req.query.traffic ?? 'syn'} limit for ${req.params['*']}` })));

  app.get('/v1/allows', async () => ({ allows: await control.listAllows() }));
  app.post('/v1/allows', async (req, reply) => reply.code(201).send({ target: await control.addAllow(req.body ?? {}, req.actor) }));
  app.delete<{ Params: { '*': string } }>('/v1/allows/*', async (req, reply) => (await control.delAllow(req.params['*'], req.actor)
    ? { removed: true }
    : reply.code(404).send({ error: `no configured allow entry for ${req.params['*']}` })));
}

export async function startControlApi(opts: ControlApiOptions): Promise<ControlApi> {
  if (opts.tokens.length === 0 && !opts.sessions) throw new RangeError('no API tokens configured: set XDP_IDS_API_TOKENS or pass --token-file');
  if (!opts.tls && !opts.insecureHttp && !isLoopback(opts.host)) {
    throw new RangeError(`refusing to serve the control API (bearer tokens, block changes) over plain HTTP on ${opts.host}: pass --tls-cert and --tls-key, listen on a loopback address, or pass --insecure-http if something in front adds TLS`);
  }
  const app = Fastify({ loggerInstance: opts.log as FastifyBaseLogger, bodyLimit: 16 * 1024, https: opts.tls ?? null });
  const sessions = opts.sessions ?? new Sessions();
  await registerAuth(app, { tokens: opts.tokens, sessions, maxFailures: opts.maxAuthFailures ?? 10, tls: Boolean(opts.tls) });
  const redis = connectRedis(opts.redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => { /* reconnects on its own; requests fail with 500 meanwhile */ });
  const ledger = new BlockLedger(redis);
  const notices = new AlertQueueNotices(redis);
  const blocker = new LedgerBlocker(ledger, { component: `api@${os.hostname()}`, ...opts.blocker }, notices, opts.log);
  const control = new BlockControl(ledger, blocker, { notices, widths: opts.widths });
  const maintenance = new LedgerMaintenance(ledger, notices, opts.log).start();
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof InputError) return reply.code(400).send({ error: err.message });
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    opts.log.error({ err }, 'control API request failed');
    return reply.code(500).send({ error: 'internal error (see the API log)' });
  });
  routes(app, control, ledger);
  const dashboard = await registerDashboard(app, { redis, ledger, sessions, log: opts.log });

  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (err) {
    dashboard.close();
    await maintenance.stop();
    await notices.close();
    redis.disconnect();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${urlHost(opts.host)}:${port}`,
    async close() {
      dashboard.close();
      await app.close();
      await maintenance.stop();
      await notices.close();
      redis.disconnect();
    },
  };
}
