/** Where a server listens, as `host:port` options give it (`127.0.0.1:9477`, `[::1]:9478`). */
import { InvalidArgumentError } from 'commander';
import { parseAddress } from '../sensor/addresses';

export interface ListenAddress {
  host: string;
  port: number;
}

/** A commander parser for `flag host:port`; port 0 picks a free port. */
export function listenAddress(flag: string, example: string) {
  return (value: string): ListenAddress => {
    const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(value);
    if (!match || Number(match[2]) > 65535) throw new InvalidArgumentError(`${flag} must be host:port, e.g. ${example}`);
    return { host: match[1], port: Number(match[2]) };
  };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  try {
    return parseAddress(host).range() === 'loopback';
  } catch {
    return false;
  }
}

/** A URL's host part: IPv6 addresses in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
