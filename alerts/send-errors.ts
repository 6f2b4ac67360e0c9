/** How a send failed, which decides whether the delivery is retried, dead-lettered, or its receiver disabled. */

export class RetryableError extends Error {
  /** A wait the receiver asked for (Retry-After), used instead of the backoff. */
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
  }
}

export class PermanentError extends Error {}

/** The receiver is gone (HTTP 410): stop sending to it until an operator re-enables it. */
export class ReceiverGoneError extends PermanentError {}
