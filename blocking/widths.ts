/**
 * How wide a block or allow entry may be. A block of 2000::/3 or an allow of 0.0.0.0/0 switches
 * the whole protection off (or the network), whoever asked: the narrowest prefix lengths are a
 * fleet setting (the same environment for every part), and the whole address space is refused
 * always.
 */
import type { Prefix } from '../sensor/addresses';

export interface WidthLimits {
  block: { v4: number; v6: number };
  allow: { v4: number; v6: number };
}

export const DEFAULT_WIDTH_LIMITS: WidthLimits = { block: { v4: 16, v6: 32 }, allow: { v4: 8, v6: 16 } };

const ENV = { block: 'XDP_IDS_BLOCK_MIN_PREFIX', allow: 'XDP_IDS_ALLOW_MIN_PREFIX' } as const;

function lengths(text: string | undefined, fallback: { v4: number; v6: number }, name: string): { v4: number; v6: number } {
  if (text === undefined || text === '') return fallback;
  const m = /^(\d{1,2})\/(\d{1,3})$/.exec(text.trim());
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 32 || Number(m[2]) < 1 || Number(m[2]) > 128) {
    throw new RangeError(`${name} must be <IPv4 length>/<IPv6 length>, e.g. 16/32 (1-32 and 1-128), got ${JSON.stringify(text)}`);
  }
  return { v4: Number(m[1]), v6: Number(m[2]) };
}

export function widthLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): WidthLimits {
  return {
    block: lengths(env[ENV.block], DEFAULT_WIDTH_LIMITS.block, ENV.block),
    allow: lengths(env[ENV.allow], DEFAULT_WIDTH_LIMITS.allow, ENV.allow),
  };
}

/** Throws a RangeError saying which limit `prefix` breaks. */
export function checkWidth(prefix: Prefix, kind: 'block' | 'allow', limits: WidthLimits = widthLimitsFromEnv()): void {
  if (prefix.length === 0) throw new RangeError(`${prefix.text} is the whole address space: never a ${kind} entry`);
  const min = prefix.family === 4 ? limits[kind].v4 : limits[kind].v6;
  if (prefix.length < min) {
    throw new RangeError(`${prefix.text} is wider than a ${kind} may be (at least /${min} for IPv${prefix.family}; ${ENV[kind]} sets the limits)`);
  }
}
