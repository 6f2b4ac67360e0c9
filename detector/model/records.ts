/**
 * Window records: SensorTicks as JSON lines, one tick per line, exactly as the sensor produced
 * them. `model record` writes them; `model train` and `model evaluate` read them. A bad line is
 * an error naming file:line and what is wrong with it; nothing is skipped silently.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { once } from 'node:events';
import { z } from 'zod';
import type { SensorTick } from '../../common/sensor-tick';

const count = z.number().refine(Number.isFinite, 'must be a finite number').refine((v) => v >= 0, 'must be >= 0');
const time = z.number().refine(Number.isFinite, 'must be a finite number');

const sourceWindow = z.object({
  src: z.string().min(1),
  packets: count, bytes: count, syn: count, synAck: count, ackOnly: count, rst: count, fin: count, nullScan: count, finOnly: count,
  xmas: count, synFin: count, udp: count, icmp: count, fragments: count, malformed: count, firstFragments: count, replies: count,
  handshakes: count, ttlMismatch: count, distinctPorts: count, distinctHosts: count, distinctProtocols: count, firstSeenMs: time, verifiedMs: time,
});

const tickSchema = z.object({
  sensor: z.string().min(1),
  iface: z.string(),
  window: time,
  startMs: time,
  endMs: time,
  sources: z.array(sourceWindow),
}).loose();

export class RecordError extends Error {
  constructor(readonly file: string, readonly line: number, problem: string) {
    super(`${file}:${line}: ${problem}`);
    this.name = 'RecordError';
  }
}

/** The ticks of record files, in file order then line order. */
export async function* readWindows(files: readonly string[]): AsyncGenerator<SensorTick> {
  for (const file of files) {
    let input: fs.ReadStream;
    try {
      input = fs.createReadStream(file, { encoding: 'utf8' });
      await once(input, 'open');
    } catch (err) {
      throw new RecordError(file, 0, `cannot read: ${(err as Error).message}`);
    }
    let line = 0;
    for await (const text of readline.createInterface({ input, crlfDelay: Infinity })) {
      line++;
      if (text.trim() === '') continue;
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new RecordError(file, line, `not JSON: ${(err as Error).message}`);
      }
      const parsed = tickSchema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new RecordError(file, line, `${issue.path.join('.')}: ${issue.message}`);
      }
      if (!(parsed.data.endMs > parsed.data.startMs)) throw new RecordError(file, line, `endMs ${parsed.data.endMs} is not after startMs ${parsed.data.startMs}`);
      yield parsed.data as unknown as SensorTick;
    }
  }
}

/** Appends ticks to a record file as JSON lines. */
export class WindowWriter {
  private readonly out: fs.WriteStream;
  ticks = 0;
  windows = 0;

  constructor(readonly file: string) {
    this.out = fs.createWriteStream(file, { flags: 'a' });
  }

  async write(tick: SensorTick): Promise<void> {
    this.ticks++;
    this.windows += tick.sources.length;
    if (!this.out.write(`${JSON.stringify(tick)}\n`)) await once(this.out, 'drain');
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

/** Writes the ticks that arrive within `durationMs` to `file`; resolves to what was written. */
export async function recordWindows(ticks: AsyncIterable<SensorTick>, file: string, durationMs: number): Promise<{ ticks: number; windows: number }> {
  const writer = new WindowWriter(file);
  try {
    await forEachTickWithin(ticks, durationMs, (tick) => writer.write(tick));
  } finally {
    await writer.close();
  }
  return { ticks: writer.ticks, windows: writer.windows };
}

/** Hands each tick that arrives within `durationMs` to `each`, until then or until the stream ends. */
export async function forEachTickWithin(ticks: AsyncIterable<SensorTick>, durationMs: number, each: (tick: SensorTick) => unknown): Promise<void> {
  const iterator = ticks[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'done'>((resolve) => (timer = setTimeout(() => resolve('done'), durationMs)));
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), deadline]);
      if (next === 'done' || next.done) break;
      await each(next.value);
    }
  } finally {
    clearTimeout(timer);
    await iterator.return?.();
  }
}
