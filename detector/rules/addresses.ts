/**
 * Addresses as rules see them: grouping keys (a source, a destination or the prefix holding it)
 * and `except` lists. Both run for every window of every key, so IPv4 dotted quads (what the
 * sensor reports for IPv4 and IPv4-mapped sources) take a hand-written path; everything else
 * goes through the shared strict reading of common/ip-text.ts, which the hand-written path
 * agrees with (test/unit/ip-text.test.ts).
 */
import ipaddr from 'ipaddr.js';
import { parseIpText, parsePrefixLength, unmapped } from '../../common/ip-text';
import { quote } from '../../common/text';
import type { Scope } from '../features';

/** A dotted quad (decimal, no leading zeros) as an unsigned 32-bit number, or -1 for anything else. */
export function parseIPv4(text: string): number {
  let value = 0;
  let part = -1;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (part < 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = -1;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (part === 0) return -1;
      part = part < 0 ? c - 48 : part * 10 + (c - 48);
      if (part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || part < 0) return -1;
  return value * 256 + part;
}

function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** An IPv6 address (IPv4-mapped ones unwrapped to IPv4), or undefined if `text` is no address. */
function parseOther(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  try {
    return unmapped(parseIpText(text));
  } catch {
    return undefined;
  }
}

/**
 * How a rule groups windows: by the address itself, or by the prefix holding it. A prefix
 * grouping has a length for each family: `src_prefix/24` groups IPv4 sources by /24 and IPv6
 * sources by /64; `src_prefix/48` groups IPv6 by /48 (IPv4 by /24); `src_prefix/16/48` sets both.
 */
export interface Grouping {
  scope: Scope;
  /** As written, e.g. `src`, `src_prefix/24`. */
  text: string;
  v4Bits: number;
  v6Bits: number;
}

const GROUPING = /^(src|dst)(?:_prefix\/(\d{1,3})(?:\/(\d{1,3}))?)?$/;
const DEFAULT_V4_BITS = 24;
const DEFAULT_V6_BITS = 64;

/** The grouping for `text`, or a sentence saying what is wrong with it. */
export function parseGrouping(text: string): Grouping | string {
  const m = GROUPING.exec(text);
  if (!m) return `"${text}" is not a grouping: use src, dst, src_prefix/<length> or dst_prefix/<length> (e.g. src_prefix/24)`;
  const scope: Scope = m[1] === 'src' ? 'source' : 'destination';
  if (m[2] === undefined) return { scope, text, v4Bits: 32, v6Bits: 128 };
  const first = Number(m[2]);
  const second = m[3] === undefined ? undefined : Number(m[3]);
  if (second !== undefined) {
    if (first > 32) return `in "${text}" the first length is for IPv4 and must be 0 to 32`;
    if (second > 128) return `in "${text}" the second length is for IPv6 and must be 0 to 128`;
    return { scope, text, v4Bits: first, v6Bits: second };
  }
  if (first > 128) return `"${text}": a prefix length must be 0 to 32 (IPv4) or up to 128 (IPv6)`;
  return first <= 32 ? { scope, text, v4Bits: first, v6Bits: DEFAULT_V6_BITS } : { scope, text, v4Bits: DEFAULT_V4_BITS, v6Bits: first };
}

/** True if every key of `inner` lies inside one key of `outer` (same scope, prefixes no longer). */
export function groupingContains(outer: Grouping, inner: Grouping): boolean {
  return outer.scope === inner.scope && outer.v4Bits <= inner.v4Bits && outer.v6Bits <= inner.v6Bits;
}

/**
 * The key of `address` under `grouping`; `v4` is parseIPv4(address), computed once per window
 * by the caller. Undefined for text that is no address.
 */
export function groupKey(grouping: Grouping, address: string, v4: number): string | undefined {
  if (v4 >= 0) return grouping.v4Bits === 32 ? address : `${formatIPv4((v4 & maskOf(grouping.v4Bits)) >>> 0)}/${grouping.v4Bits}`;
  const addr = parseOther(address);
  if (!addr) return undefined;
  if (addr.kind() === 'ipv4') return groupKey(grouping, addr.toString(), parseIPv4(addr.toString()));
  if (grouping.v6Bits === 128) return addr.toString();
  const bytes = addr.toByteArray();
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, grouping.v6Bits - i * 8));
    bytes[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return `${ipaddr.fromByteArray(bytes).toString()}/${grouping.v6Bits}`;
}

/** A list of CIDRs (or single addresses) to test addresses against. */
export class AddressSet {
  private readonly v4: { net: number; mask: number }[] = [];
  private readonly v6: [ipaddr.IPv6, number][] = [];

  /** Throws with a plain message when an entry is not a CIDR or an address. */
  constructor(readonly entries: readonly string[]) {
    for (const entry of entries) {
      const [addr, bits] = parseCidr(entry);
      if (addr.kind() === 'ipv4') {
        const mask = maskOf(bits);
        this.v4.push({ net: (parseIPv4(addr.toString()) & mask) >>> 0, mask });
      } else {
        this.v6.push([addr as ipaddr.IPv6, bits]);
      }
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** `v4` as for groupKey. */
  has(address: string, v4: number): boolean {
    if (v4 >= 0) {
      for (const { net, mask } of this.v4) if (((v4 & mask) >>> 0) === net) return true;
      return false;
    }
    const addr = parseOther(address);
    if (!addr) return false;
    if (addr.kind() === 'ipv4') return this.has(addr.toString(), parseIPv4(addr.toString()));
    for (const range of this.v6) if ((addr as ipaddr.IPv6).match(range)) return true;
    return false;
  }
}

/** An address/prefix pair; IPv4-mapped IPv6 prefixes of /96 or longer become IPv4 prefixes. */
export function parseCidr(entry: string): [ipaddr.IPv4 | ipaddr.IPv6, number] {
  const slash = entry.indexOf('/');
  const addr = parseIpText(slash < 0 ? entry : entry.slice(0, slash));
  const max = addr.kind() === 'ipv4' ? 32 : 128;
  const bits = slash < 0 ? max : parsePrefixLength(entry.slice(slash + 1), max);
  if (bits === undefined) throw new Error(`${quote(entry)}: the prefix length must be 0 to ${max}`);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) return [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96];
  return [addr, bits];
}
