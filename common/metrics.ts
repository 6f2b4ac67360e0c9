/**
 * Prometheus metrics (prom-client) of every long-running part. Each process has one registry:
 * the process's own metrics (CPU, memory, event loop) under `xdp_ids_<part>_`, and each part's
 * metrics (sensor/metrics.ts, blocking/enforcer-metrics.ts, detector/metrics.ts,
 * alerts/metrics.ts, blocking/metrics.ts) registered into it; `xdp-ids run` puts all its parts
 * into one. Names follow Prometheus' conventions: `xdp_ids_` prefix, base units (`_seconds`,
 * `_bytes`, `_ratio`), `_total` for counters, labels of bounded cardinality (never an address).
 *
 * The parts serve /metrics over plain HTTP without authentication, so by default on a loopback
 * address only: a scraper elsewhere needs `--metrics-listen` said in so many words (or a proxy).
 * The control API serves its metrics behind its tokens instead.
 */
import http from 'node:http';
import { Option } from 'commander';
import type { Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { isLoopback, listenAddress, urlHost, type ListenAddress } from './listen';

export type MetricsPart = 'sensor' | 'detector' | 'alerter' | 'api' | 'run';

/** Where each command serves its metrics unless told otherwise (the control API is 9477). */
export const DEFAULT_METRICS_PORTS = { run: 9476, sensor: 9478, detector: 9479, alerter: 9480 } as const;
export type ServedPart = keyof typeof DEFAULT_METRICS_PORTS;

export function createRegistry(part: MetricsPart): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: `xdp_ids_${part}_` });
  return registry;
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serves GET /metrics; every other path is a 404. */
export async function serveMetrics(registry: Registry, at: ListenAddress): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://${urlHost(at.host)}:${port}/metrics`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** `--metrics-listen host:port|off`, as every long-running command takes it. */
export function metricsListenOption(part: ServedPart): Option {
  const parse = listenAddress('--metrics-listen', `127.0.0.1:${DEFAULT_METRICS_PORTS[part]}`);
  return new Option('--metrics-listen <host:port>',
    `serve Prometheus metrics at http://host:port/metrics without authentication (off: none; default 127.0.0.1:${DEFAULT_METRICS_PORTS[part]}; anything but a loopback address exposes them to the network)`)
    .argParser((value: string) => (value === 'off' ? 'off' : parse(value)));
}

/**
 * Serves a command's metrics as `--metrics-listen` says. Without the option the default port
 * is tried, and a port already taken (a second detector on one host) costs only its metrics,
 * with a warning; a port given explicitly that cannot be had is an error.
 */
export async function serveCommandMetrics(registry: Registry, part: ServedPart, option: ListenAddress | 'off' | undefined, log: Logger): Promise<MetricsServer | undefined> {
  if (option === 'off') return undefined;
  const at = option ?? { host: '127.0.0.1', port: DEFAULT_METRICS_PORTS[part] };
  try {
    const server = await serveMetrics(registry, at);
    if (!isLoopback(at.host)) log.warn({ url: server.url }, 'metrics are served without authentication beyond this host');
    log.info({ url: server.url }, 'serving Prometheus metrics');
    return server;
  } catch (err) {
    if (option !== undefined || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw new Error(`cannot serve metrics on ${urlHost(at.host)}:${at.port}: ${(err as Error).message}`);
    log.warn({ port: at.port }, `metrics port ${at.port} is taken (another xdp-ids ${part} on this host?): running without metrics; choose one with --metrics-listen`);
    return undefined;
  }
}
