/**
 * The web dashboard inside the control API: the page and its scripts (web/client, built into
 * dist/web/client by `npm run build:web`) and uPlot from node_modules, all served from memory and
 * from this origin only (no CDN); the routes the page reads (routes.ts) and its live feed
 * (live.ts); security headers on every response (headers.ts). The page itself needs no
 * credentials; everything it shows comes from routes that do.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { BlockLedger } from '../blocking/ledger';
import { IncidentStore } from '../detector/incidents';
import { SensorStatusReader } from '../sensor/status';
import { SECURITY_HEADERS } from './headers';
import { LiveFeed, registerLiveRoute } from './live';
import { registerReadRoutes } from './routes';
import type { Sessions } from './sessions';

const ROOT = path.resolve(__dirname, '..', ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []));
const CLIENT_DIR = path.join(ROOT, 'dist', 'web', 'client');
const UPLOT_DIR = path.dirname(require.resolve('uplot/dist/uPlot.esm.js'));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml',
};

interface Asset {
  type: string;
  body: Buffer;
}

/** Every file the page may load, by URL path: the built client and uPlot's module and stylesheet. */
function loadAssets(): Map<string, Asset> {
  if (!fs.existsSync(path.join(CLIENT_DIR, 'index.html'))) throw new Error(`the dashboard is not built (${CLIENT_DIR}): run npm run build:web`);
  const assets = new Map<string, Asset>();
  const add = (url: string, file: string): void => {
    const type = TYPES[path.extname(file)];
    if (type) assets.set(url, { type, body: fs.readFileSync(file) });
  };
  for (const entry of fs.readdirSync(CLIENT_DIR, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    add(`/static/${path.relative(CLIENT_DIR, file).split(path.sep).join('/')}`, file);
  }
  add('/static/vendor/uPlot.esm.js', path.join(UPLOT_DIR, 'uPlot.esm.js'));
  add('/static/vendor/uPlot.min.css', path.join(UPLOT_DIR, 'uPlot.min.css'));
  return assets;
}

export interface DashboardDeps {
  /** The control role's connection. */
  redis: Redis;
  ledger: BlockLedger;
  sessions: Sessions;
  log: Logger;
}

export async function registerDashboard(app: FastifyInstance, deps: DashboardDeps): Promise<{ close(): void }> {
  const assets = loadAssets();
  app.addHook('onSend', async (_req, reply) => {
    reply.headers(SECURITY_HEADERS);
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });
  const serve = (reply: FastifyReply, url: string): FastifyReply => {
    const asset = assets.get(url);
    return asset ? reply.type(asset.type).send(asset.body) : reply.code(404).send({ error: 'not found' });
  };
  app.get('/', { config: { public: true } }, async (_req, reply) => serve(reply, '/static/index.html'));
  app.get<{ Params: { '*': string } }>('/static/*', { config: { public: true } }, async (req, reply) => serve(reply, `/static/${req.params['*']}`));

  const sensors = new SensorStatusReader(deps.redis);
  const incidents = new IncidentStore(deps.redis);
  registerReadRoutes(app, { redis: deps.redis, ledger: deps.ledger, sensors, incidents });
  const feed = new LiveFeed({ sensors, incidents, ledger: deps.ledger, log: deps.log });
  registerLiveRoute(app, feed, sensors, deps.sessions);
  return { close: () => feed.close() };
}
