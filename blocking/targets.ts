/**
 * What a block or allow entry covers. IPv6 hosts change addresses within their /64 at will
 * (privacy addresses), so an IPv6 single address is widened to its /64 unless the caller
 * asked for a longer prefix on purpose.
 */
import ipaddr from 'ipaddr.js';
import { parsePrefix, type Prefix } from '../sensor/addresses';

export const DEFAULT_V6_SINGLE_PREFIX = 64;

export interface TargetOptions {
  /** Length an IPv6 single address widens to; 128 keeps it. */
  v6SinglePrefix?: number;
  /** An explicit `/128` (from an operator) is kept as written. */
  keepExplicitV6Host?: boolean;
}

/** Canonical prefix text of a block target, e.g. `198.18.2.66/32`, `fd00:18:2::/64`; throws RangeError on bad input. */
export function normalizeTarget(text: string, opts: TargetOptions = {}): Prefix {
  const explicit = text.includes('/');
  const prefix = parsePrefix(text);
  const widen = opts.v6SinglePrefix ?? DEFAULT_V6_SINGLE_PREFIX;
  if (prefix.family === 6 && prefix.length > widen && (!explicit || prefix.length === 128 && !opts.keepExplicitV6Host)) {
    return parsePrefix(`${ipaddr.fromByteArray([...prefix.bytes]).toString()}/${widen}`);
  }
  return prefix;
}

/** True when `outer` contains `inner` (equal prefixes included). */
export function contains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || outer.length > inner.length) return false;
  const range = ipaddr.fromByteArray([...outer.bytes]);
  const address = ipaddr.fromByteArray([...inner.bytes]);
  return address instanceof ipaddr.IPv4
    ? address.match(range as ipaddr.IPv4, outer.length)
    : (address as ipaddr.IPv6).match(range as ipaddr.IPv6, outer.length);
}

/** A block over an allowed address, or inside an allowed range. */
export function overlaps(a: Prefix, b: Prefix): boolean {
  return contains(a, b) || contains(b, a);
}
