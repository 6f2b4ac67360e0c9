/**
 * The dashboard's live feed. One poller per API process reads, once a second, what changed in
 * Redis: each sensor's new tick summaries (packets, drops, top sources), incidents that opened,
 * and the ledger's revision (a block, limit or allow entry changed); every open dashboard gets it
 * as server-sent events on `GET /v1/live`, after the recent tick history for its charts. It polls
 * only while a dashboard is connected, and a stream ends with the session it was opened with.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { BlockLedger } from '../blocking/ledger';
import type { IncidentStore } from '../detector/incidents';
import type { SensorStatusReader, TickSummary } from '../sensor/status';
import { SECURITY_HEADERS } from './headers';
import { incidentRow } from './incident-view';
import type { Sessions } from './sessions';

const POLL_MS = 1000;
/** Ticks of history per sensor a new stream starts with (five minutes of 1 s windows). */
const HISTORY_TICKS = 300;
const KEEP_ALIVE_MS = 15_000;
/** Streams at once (each holds a connection); past it new ones are refused. */
const MAX_STREAMS = 100;

export type LiveEvent =
  | { event: 'tick'; data: TickSummary }
  | { event: 'incident'; data: ReturnType<typeof incidentRow> }
  | { event: 'ledger'; data: { rev: number } };

interface Stream {
  send(e: LiveEvent): void;
  end(): void;
}

export interface LiveFeedDeps {
  sensors: SensorStatusReader;
  incidents: IncidentStore;
  ledger: BlockLedger;
  log: Logger;
}

export class LiveFeed {
  private readonly streams = new Set<Stream>();
  private timer?: NodeJS.Timeout;
  private cursors = new Map<string, string>();
  private sinceMs = 0;
  /** Incidents sent that opened at sinceMs: one detection opens several in the same millisecond, and a read may fall between them. */
  private sentAtSince = new Set<string>();
  private rev?: number;
  private polling = false;

  constructor(private readonly deps: LiveFeedDeps) {}

  get full(): boolean {
    return this.streams.size >= MAX_STREAMS;
  }

  add(stream: Stream): () => void {
    this.streams.add(stream);
    if (!this.timer) {
      this.sinceMs = Date.now();
      this.sentAtSince = new Set();
      this.cursors = new Map();
      this.rev = undefined;
      this.timer = setInterval(() => void this.poll(), POLL_MS);
    }
    return () => {
      this.streams.delete(stream);
      if (this.streams.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** Ends every stream (the server is closing). */
  close(): void {
    for (const stream of [...this.streams]) stream.end();
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const sensors = (await this.deps.sensors.list()).map((s) => s.sensor);
      const ticks = await this.deps.sensors.since(this.cursors, sensors, this.sinceMs);
      this.cursors = ticks.cursors;
      const opened = await this.deps.incidents.openedSince(this.sinceMs - 1);
      const { rev } = await this.deps.ledger.generation();
      const events: LiveEvent[] = ticks.summaries.map((data) => ({ event: 'tick', data }));
      for (const incident of opened) {
        if (incident.openedMs > this.sinceMs) {
          this.sinceMs = incident.openedMs;
          this.sentAtSince = new Set();
        }
        if (this.sentAtSince.has(incident.id)) continue;
        if (incident.openedMs === this.sinceMs) this.sentAtSince.add(incident.id);
        events.push({ event: 'incident', data: incidentRow(incident) });
      }
      if (this.rev !== undefined && rev !== this.rev) events.push({ event: 'ledger', data: { rev } });
      this.rev = rev;
      for (const stream of this.streams) for (const e of events) stream.send(e);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'live feed: reading Redis failed');
    } finally {
      this.polling = false;
    }
  }
}

export function registerLiveRoute(app: FastifyInstance, feed: LiveFeed, sensors: SensorStatusReader, sessions: Sessions): void {
  app.get('/v1/live', async (req, reply) => {
    if (feed.full) return reply.code(503).send({ error: 'too many live streams open' });
    const history = await sensors.history((await sensors.list()).map((s) => s.sensor), HISTORY_TICKS);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
    // JSON has no raw line breaks, so each event's data is one `data:` line.
    const write = (event: string, data: unknown): void => void raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    let ended = false;
    const stream: Stream = {
      send: (e) => {
        if (req.sessionKey && !sessions.holds(req.sessionKey)) return stream.end();
        write(e.event, e.data);
      },
      end: () => {
        if (ended) return;
        ended = true;
        remove();
        stopWatchingSession();
        clearInterval(keepAlive);
        raw.end();
      },
    };
    const remove = feed.add(stream);
    const stopWatchingSession = sessions.onEnd((key) => key === req.sessionKey && stream.end());
    const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
    req.raw.on('close', () => stream.end());
    write('history', { ticks: history });
  });
}
