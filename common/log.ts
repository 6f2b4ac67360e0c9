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

/** Structured logs on stderr (stdout belongs to the live views and command output). */
export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.XDP_IDS_LOG_LEVEL ?? 'info', serializers: { err: serializeError } }, pino.destination(2));
}
