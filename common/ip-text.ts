/**
 * The one reading of IP address text, for every parser (API, CLI, rule `except` lists and tests,
 * allowlists, kernel prefixes): dotted-quad decimal IPv4 without leading zeros, and standard IPv6
 * text. Legacy IPv4 forms (`010.0.0.1`, `1.2.3`, `4294967295`, `0x7f.0.0.1`) are read differently
 * by different parsers (ipaddr.js reads `010` as octal 8, others as 10), so an allow entry and a
 * rule exception written alike could cover different hosts: they are refused, never guessed.
 * Node's own address checks (net.isIPv4/isIPv6) decide what is well-formed; ipaddr.js does the
 * arithmetic.
 */
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { quote } from './text';

const IPV4_RULE = 'IPv4 must be four decimal numbers 0-255 without leading zeros';

function notAnAddress(text: string, why: string): RangeError {
  return new RangeError(`not an IP address: ${quote(text)} (${why})`);
}

/** The address `text` names (IPv4-mapped IPv6 stays IPv6); throws RangeError saying what is wrong. */
export function parseIpText(text: string): ipaddr.IPv4 | ipaddr.IPv6 {
  if (net.isIPv4(text)) return ipaddr.IPv4.parse(text);
  if (!text.includes(':')) throw notAnAddress(text, IPV4_RULE);
  if (text.includes('%')) throw notAnAddress(text, 'a zone index such as %eth0 means something on one host only');
  // ipaddr.js reads the deprecated IPv4-compatible form ::a.b.c.d as the IPv4-mapped ::ffff:a.b.c.d.
  if (/^::\d+\.\d+\.\d+\.\d+$/.test(text)) throw notAnAddress(text, 'IPv4-compatible IPv6 addresses are deprecated: write the IPv4 address or ::ffff:a.b.c.d');
  if (net.isIPv6(text)) return ipaddr.IPv6.parse(text);
  if (/^[0-9a-f:]*:\d+\.[\d.]*$/i.test(text)) throw notAnAddress(text, `the IPv4 part of an IPv6 address follows the IPv4 rule: ${IPV4_RULE}`);
  throw notAnAddress(text, 'neither IPv4 nor IPv6 text');
}

/** IPv4-mapped IPv6 addresses as the IPv4 address they carry. */
export function unmapped(address: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() ? (address as ipaddr.IPv6).toIPv4Address() : address;
}

/** A prefix length as written after the slash: 0 to `max`, decimal without leading zeros like the addresses. */
export function parsePrefixLength(text: string, max: number): number | undefined {
  if (!/^(0|[1-9]\d{0,2})$/.test(text)) return undefined;
  const length = Number(text);
  return length <= max ? length : undefined;
}
