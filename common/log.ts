import pino, { type Logger } from 'pino';

type Serialized = ReturnType<typeof pino.stdSerializers.err> & { command?: { name?: unknown; args?: unknown[] } };

/**
 * pino's error serializer, minus credentials: ioredis attaches the failed command to its errors,
 * and the command of a failed login (HELLO ... AUTH, AUTH) carries the password.
 */
export function serializeError(err: Error): Serialized {
  const serialized = pino.stdSerializers.err(err) as Serialized;
  const { command } = serialized;
  if (command && /^(auth|hello)$/i.test(String(command.name))) serialized.command = { name: command.name, args: ['[redacted]'] };
  return serialized;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface LogOptions {
  /** Default: $XDP_IDS_LOG_LEVEL, else info. */
  level?: string;
  /** Where the JSON lines go: a file (appended to), or stderr (the default). */
  file?: string;
  /** Also sees every line of `warn` and above (the JSON text), e.g. for a live screen to show. */
  warnings?: { write(line: string): void };
}

/** Structured logs on stderr or into a file (stdout belongs to the live views and command output). */
export function createLogger(name: string, opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.XDP_IDS_LOG_LEVEL ?? 'info';
  // Written synchronously: a line logged just before exit is not lost.
  const destination = opts.file ? pino.destination({ dest: opts.file, append: true, mkdir: true, sync: true }) : pino.destination(2);
  const options = { name, level, serializers: { err: serializeError } };
  if (!opts.warnings) return pino(options, destination);
  const streams: pino.StreamEntry[] = [{ level: 'warn', stream: opts.warnings }];
  if (level !== 'silent') streams.push({ level: level as pino.Level, stream: destination });
  // The logger passes on what either stream wants.
  const verbose = level !== 'silent' && pino.levels.values[level] < pino.levels.values.warn;
  return pino({ ...options, level: verbose ? level : 'warn' }, pino.multistream(streams));
}
