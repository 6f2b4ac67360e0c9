/** Every Redis key and queue the alerter uses, in one place, so the CLI and the service agree. */

/** `{alerter}` is the hash tag of all the alerter's state: its scripts and transactions span groups, flushes and items. */
export const KEY_PREFIX = 'xdp-ids:{alerter}';
export const FLUSH_QUEUE = '{alerts-flush}';
export const DELIVERY_QUEUE = '{alerts-deliveries}';

export const keys = {
  pending: (group: string) => `${KEY_PREFIX}:group:${group}:pending`,
  taken: (flushId: string) => `${KEY_PREFIX}:flush:${flushId}:taken`,
  flushDone: (flushId: string) => `${KEY_PREFIX}:flush:${flushId}:done`,
  nextFlush: (group: string) => `${KEY_PREFIX}:group:${group}:next`,
  lastFlush: (group: string) => `${KEY_PREFIX}:group:${group}:last`,
  item: (route: string, item: string) => `${KEY_PREFIX}:item:${route}:${item}`,
  inhibit: (rule: number, values: string) => `${KEY_PREFIX}:inhibit:${rule}:${values}`,
  silences: `${KEY_PREFIX}:silences`,
  disabledReceivers: `${KEY_PREFIX}:disabled-receivers`,
  deadLetters: `${KEY_PREFIX}:dlq`,
  deadLetterOrder: `${KEY_PREFIX}:dlq:order`,
  sent: (deliveryId: string) => `${KEY_PREFIX}:sent:${deliveryId}`,
  stats: `${KEY_PREFIX}:stats`,
};

/** Per-item state outlives its incident by this much, so late duplicates are still recognised. */
export const ITEM_STATE_TTL_MS = 7 * 86_400_000;
