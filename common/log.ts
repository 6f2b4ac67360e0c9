import pino, { type Logger } from 'pino';

/** Structured logs on stderr (stdout belongs to the live views and command output). */
export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.XDP_IDS_LOG_LEVEL ?? 'info' }, pino.destination(2));
}
