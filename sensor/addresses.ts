import ipaddr from 'ipaddr.js';
import { parseIpText, parsePrefixLength, unmapped } from '../common/ip-text';
import { quote } from '../common/text';

/** A block/allow prefix in the form the kernel's LPM tries use. */
export interface Prefix {
  family: 4 | 6;
  /** Network bytes (4 or 16), host bits cleared. */
  bytes: Buffer;
  length: number;
  /** Canonical text, e.g. 198.18.0.0/24 or fd00::/64. */
  text: string;
}

const V4_MAPPED_PREFIX = Buffer.from('00000000000000000000ffff', 'hex');

/** The kernel's 16-byte source key: IPv4 and IPv4-mapped IPv6 as ::ffff:a.b.c.d. */
export function addressKey(address: string): Buffer {
  const parsed = parseAddress(address);
  if (parsed.kind() === 'ipv4') return Buffer.concat([V4_MAPPED_PREFIX, Buffer.from(parsed.toByteArray())]);
  return Buffer.from(parsed.toByteArray());
}

/** Text form of a 16-byte key; IPv4-mapped keys print as dotted quads. */
export function keyToAddress(key: Buffer, offset = 0): string {
  if (key.compare(V4_MAPPED_PREFIX, 0, 12, offset, offset + 12) === 0) {
    return `${key[offset + 12]}.${key[offset + 13]}.${key[offset + 14]}.${key[offset + 15]}`;
  }
  return ipaddr.fromByteArray([...key.subarray(offset, offset + 16)]).toString();
}

/** Strict address text (common/ip-text.ts); IPv4-mapped IPv6 comes back as IPv4. */
export function parseAddress(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  return unmapped(parseIpText(address));
}

/** Parses "a.b.c.d[/n]" or "x::y[/n]"; a bare address is a host prefix. Host bits are cleared. */
export function parsePrefix(text: string): Prefix {
  const [addr, len, ...rest] = text.trim().split('/');
  if (rest.length) throw new RangeError(`not a CIDR prefix: ${quote(text)}`);
  let ip = parseIpText(addr);
  const max = ip.kind() === 'ipv4' ? 32 : 128;
  let length = len === undefined ? max : parsePrefixLength(len, max);
  if (length === undefined) throw new RangeError(`not a CIDR prefix: ${quote(text)} (prefix length must be 0..${max})`);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress() && length >= 96) {
    ip = (ip as ipaddr.IPv6).toIPv4Address();
    length -= 96;
  }
  const bytes = Buffer.from(ip.toByteArray());
  for (let bit = length; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  const family = ip.kind() === 'ipv4' ? 4 : 6;
  const network = ipaddr.fromByteArray([...bytes]).toString();
  return { family, bytes, length, text: `${network}/${length}` };
}

export function formatMac(buf: Buffer, offset: number): string {
  return [...buf.subarray(offset, offset + 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
