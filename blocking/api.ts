/**
 * The HTTP control API: block add/del/list/show, allow add/del/list, health and Prometheus
 * metrics. Every route but /health needs `Authorization: Bearer <token>`; without configured
 * tokens the API does not start at all.
 */
import os from 'node:os';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { connectRedis, type RedisTarget } from '../common/redis';
import { LedgerBlocker, type BlockerConfig } from './blocker';
import { BlockControl, InputError } from './control';
import { BlockLedger } from './ledger';
import { blockingMetrics } from './metrics';
import { AlertQueueNotices } from './notices';
import { tokenMatches } from './tokens';

export interface ControlApiOptions {
  /** The control role's Redis (common/redis-roles.ts). */
  redisUrl: RedisTarget;
  host: string;
  port: number;
  tokens: string[];
  log: Logger;
  blocker?: Partial<BlockerConfig>;
}

export interface ControlApi {
  url: string;
  close(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    public?: boolean;
  }
}

function routes(app: FastifyInstance, control: BlockControl, ledger: BlockLedger): void {
  const registry = blockingMetrics(ledger);

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
    const outcome = await control.addBlock(req.body ?? {});
    return reply.code(outcome.status === 'refused' ? 409 : outcome.status === 'blocked' ? 201 : 200).send(outcome);
  });
  app.delete<{ Params: { '*': string } }>('/v1/blocks/*', async (req, reply) => (await control.delBlock(req.params['*'])
    ? { removed: true }
    : reply.code(404).send({ error: `no active block for ${req.params['*']}` })));

  app.get('/v1/limits', async () => ({ limits: await control.listLimits() }));
  app.post('/v1/limits', async (req, reply) => reply.code(201).send(await control.addLimit(req.body ?? {})));
  app.delete<{ Params: { '*': string } }>('/v1/limits/*', async (req, reply) => (await control.delLimit(req.params['*'])
    ? { removed: true }
    : reply.code(404).send({ error: `no active SYN limit for ${req.params['*']}` })));

  app.get('/v1/allows', async () => ({ allows: await control.listAllows() }));
  app.post('/v1/allows', async (req, reply) => reply.code(201).send({ target: await control.addAllow(req.body ?? {}) }));
  app.delete<{ Params: { '*': string } }>('/v1/allows/*', async (req, reply) => (await control.delAllow(req.params['*'])
    ? { removed: true }
    : reply.code(404).send({ error: `no configured allow entry for ${req.params['*']}` })));
}

export async function startControlApi(opts: ControlApiOptions): Promise<ControlApi> {
  if (opts.tokens.length === 0) throw new RangeError('no API tokens configured: set XDP_IDS_API_TOKENS or pass --token-file');
  const redis = connectRedis(opts.redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => { /* reconnects on its own; requests fail with 500 meanwhile */ });
  const ledger = new BlockLedger(redis);
  const notices = new AlertQueueNotices(redis);
  const blocker = new LedgerBlocker(ledger, { component: `api@${os.hostname()}`, ...opts.blocker }, notices, opts.log);
  const control = new BlockControl(ledger, blocker);
  const app = Fastify({ loggerInstance: opts.log as FastifyBaseLogger, bodyLimit: 16 * 1024 });

  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.public) return;
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing bearer token (Authorization: Bearer <token>)' });
    if (!tokenMatches(match[1], opts.tokens)) return reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').send({ error: 'invalid token' });
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof InputError) return reply.code(400).send({ error: err.message });
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    opts.log.error({ err }, 'control API request failed');
    return reply.code(500).send({ error: 'internal error (see the API log)' });
  });
  routes(app, control, ledger);

  await app.listen({ host: opts.host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  return {
    url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`,
    async close() {
      await app.close();
      await notices.close();
      redis.disconnect();
    },
  };
}
