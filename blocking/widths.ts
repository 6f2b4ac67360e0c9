/**
 * How wide a block or an allow entry may be. `allow add 0.0.0.0/0` would switch off all blocking
 * and `block add 2000::/3` would cut off most of the IPv6 internet; both are easy to type by
 * mistake and worth an attacker's while to ask for. Limits are minimum prefix lengths per family,
 * settable per deployment (stricter or looser), but a /0 is never accepted.
 */
import type { Prefix } from '../sensor/addresses';

export interface FamilyLimits {
  v4: number;
  v6: number;
}

/** Minimum prefix lengths: a prefix shorter than these is refused. */
export interface WidthLimits {
  block: FamilyLimits;
  allow: FamilyLimits;
}

/** Allow v4 /8 keeps the loopback default (127.0.0.0/8) acceptable. */
export const DEFAULT_WIDTH_LIMITS: WidthLimits = { block: { v4: 16, v6: 32 }, allow: { v4: 8, v6: 16 } };

const ENV = { block: 'XDP_IDS_BLOCK_MIN_PREFIX', allow: 'XDP_IDS_ALLOW_MIN_PREFIX' } as const;

function fromEnv(kind: 'block' | 'allow', env: NodeJS.ProcessEnv): FamilyLimits {
  const text = env[ENV[kind]]?.trim();
  if (!text) return DEFAULT_WIDTH_LIMITS[kind];
  const match = /^(\d{1,2})\/(\d{1,3})$/.exec(text);
  const v4 = Number(match?.[1]);
  const v6 = Number(match?.[2]);
  if (!match || v4 < 1 || v4 > 32 || v6 < 1 || v6 > 128) {
    throw new RangeError(`${ENV[kind]}=${JSON.stringify(text)}: expected <IPv4 length>/<IPv6 length>, e.g. ${DEFAULT_WIDTH_LIMITS[kind].v4}/${DEFAULT_WIDTH_LIMITS[kind].v6}, with IPv4 1-32 and IPv6 1-128 (a /0 is never allowed)`);
  }
  return { v4, v6 };
}

/** The limits of this deployment: XDP_IDS_BLOCK_MIN_PREFIX and XDP_IDS_ALLOW_MIN_PREFIX (`v4/v6`, e.g. `16/32`), else the defaults. */
export function widthLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): WidthLimits {
  return { block: fromEnv('block', env), allow: fromEnv('allow', env) };
}

/** Throws RangeError when `prefix` is wider than `kind` entries may be. */
export function checkWidth(prefix: Prefix, kind: 'block' | 'allow', limits: WidthLimits = widthLimitsFromEnv()): void {
  const family = prefix.family === 4 ? 'v4' : 'v6';
  const min = Math.max(1, limits[kind][family]);
  if (prefix.length >= min) return;
  const what = kind === 'block' ? 'blocks' : 'allow entries';
  throw new RangeError(`${prefix.text} is too wide: ${what} must be /${min} or narrower for IPv${prefix.family} (the limit is ${ENV[kind]}, now ${limits[kind].v4}/${limits[kind].v6}; a /0 is never allowed)`);
}
