/**
 * What operators do to a running alerter, as functions of a Redis connection returning the text
 * to print: dead letters (list, show, replay), silences (add, list, delete), receivers disabled
 * after a 410 (list, enable), retry and dead-letter counts. The CLI (cli.ts) wires them to commands.
 */
import { Queue } from 'bullmq';
import type { RedisClient } from '../common/redis';
import { ALERT_EVENT_JOB_OPTIONS, ALERTS_QUEUE } from '../common/alert-events';
import { oneLine } from '../common/text';
import { formatDuration } from '../detector/rules/durations';
import { getDeadLetter, listDeadLetters, removeDeadLetter, type DeadLetter } from './dead-letters';
import { BACKOFF_TYPE, type DeliveryJob } from './deliveries';
import { REPLAY_JOB_NAME } from './event-jobs';
import { DELIVERY_QUEUE, keys } from './keys';
import { formatMatcher, parseMatcher } from './matchers';
import { addSilence, deleteSilence, listSilences } from './silences';
import { readStats } from './stats';

/** Cells are one line each: errors quote receivers and events, comments are typed by anyone with the CLI. */
function table(rows: string[][]): string {
  const cells = rows.map((r) => r.map(oneLine));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => `${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}\n`).join('');
}

const iso = (ms: number): string => new Date(ms).toISOString();

export async function dlqList(redis: RedisClient): Promise<string> {
  const letters = await listDeadLetters(redis);
  if (letters.length === 0) return 'no dead letters\n';
  return table([['ID', 'TYPE', 'RECEIVER', 'FAILED', 'ATTEMPTS', 'ERROR'],
    ...letters.map((l) => [l.id, l.type, l.receiver ?? '-', iso(l.failedMs), String(l.attempts), l.error])]);
}

export async function dlqShow(redis: RedisClient, id: string): Promise<string> {
  const letter = await getDeadLetter(redis, id);
  if (!letter) throw new Error(`no dead letter ${JSON.stringify(id)} (see \`xdp-ids alerts dlq list\`)`);
  return `${JSON.stringify(letter, null, 2)}\n`;
}

async function replayOne(redis: RedisClient, letter: DeadLetter, nowMs: number): Promise<void> {
  const replayId = `${letter.id}-replay-${nowMs}`;
  if (letter.type === 'delivery') {
    const job = letter.data as DeliveryJob;
    const q = new Queue<DeliveryJob>(DELIVERY_QUEUE, { connection: redis });
    try {
      // The delivery keeps its id, so the receiver sees the same webhook-id / Message-ID as before.
      await q.add('deliver', job, { jobId: replayId, attempts: letter.maxAttempts, backoff: { type: BACKOFF_TYPE } });
    } finally {
      await q.close();
    }
  } else {
    const q = new Queue(ALERTS_QUEUE, { connection: redis });
    try {
      // Retried and dead-lettered again like any event, should the cause still be there.
      await q.add(REPLAY_JOB_NAME, letter.data, { ...ALERT_EVENT_JOB_OPTIONS, jobId: replayId });
    } finally {
      await q.close();
    }
  }
  await removeDeadLetter(redis, letter.id);
}

/** Queues dead letters again (all of them, or the ones named) and removes them from the list. */
export async function dlqReplay(redis: RedisClient, ids: string[], all: boolean, nowMs = Date.now()): Promise<string> {
  if (all === (ids.length > 0)) throw new Error('name the dead letters to replay, or give --all');
  const letters = all ? await listDeadLetters(redis) : await Promise.all(ids.map(async (id) => {
    const l = await getDeadLetter(redis, id);
    if (!l) throw new Error(`no dead letter ${JSON.stringify(id)} (see \`xdp-ids alerts dlq list\`)`);
    return l;
  }));
  for (const letter of letters) await replayOne(redis, letter, nowMs);
  return `replayed ${letters.length} dead letter${letters.length === 1 ? '' : 's'}\n`;
}

export async function statsShow(redis: RedisClient): Promise<string> {
  return table([['COUNTER', 'TOTAL'], ...Object.entries(await readStats(redis)).map(([name, n]) => [name, String(n)])]);
}

export async function silenceAdd(redis: RedisClient, opts: { matchers: string[]; durationMs: number; comment: string; author: string }, nowMs = Date.now()): Promise<string> {
  const s = await addSilence(redis, { matchers: opts.matchers.map(parseMatcher), startsMs: nowMs, endsMs: nowMs + opts.durationMs, createdBy: opts.author, comment: opts.comment });
  return `${s.id}\n`;
}

export async function silenceList(redis: RedisClient, nowMs = Date.now()): Promise<string> {
  const silences = await listSilences(redis, nowMs);
  if (silences.length === 0) return 'no active silences\n';
  return table([['ID', 'ENDS', 'LEFT', 'BY', 'MATCHERS', 'COMMENT'],
    ...silences.map((s) => [s.id, iso(s.endsMs), formatDuration(Math.round((s.endsMs - nowMs) / 1000) * 1000), s.createdBy, s.matchers.map(formatMatcher).join(','), s.comment])]);
}

export async function silenceDelete(redis: RedisClient, id: string): Promise<string> {
  if (!(await deleteSilence(redis, id))) throw new Error(`no silence ${JSON.stringify(id)} (see \`xdp-ids alerts silence list\`)`);
  return `deleted silence ${id}\n`;
}

export async function receiverList(redis: RedisClient): Promise<string> {
  const disabled = Object.entries(await redis.hgetall(keys.disabledReceivers));
  if (disabled.length === 0) return 'no disabled receivers\n';
  return table([['RECEIVER', 'DISABLED', 'REASON'], ...disabled.map(([name, v]) => {
    const d = JSON.parse(v) as { atMs: number; reason: string };
    return [name, iso(d.atMs), d.reason];
  })]);
}

export async function receiverEnable(redis: RedisClient, name: string): Promise<string> {
  if ((await redis.hdel(keys.disabledReceivers, name)) === 0) throw new Error(`receiver ${JSON.stringify(name)} is not disabled`);
  return `enabled receiver ${name}; replay its dead letters with \`xdp-ids alerts dlq replay\`\n`;
}
