import { InvalidArgumentError } from 'commander';
import { parsePrefix } from '../sensor/addresses';

/** A commander parser for an integer option from 1 to `max`. */
export function positiveInt(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}`);
    return n;
  };
}

/** A commander parser for a TCP port to listen on; 0 takes any free one. */
export function listenPort(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError(`${name} must be a port from 0 (any free one) to 65535`);
    return n;
  };
}

/** `--allow-ssh-peers [ports]`: true for port 22, or the comma-separated ports given. */
export function sshPorts(text: string): number[] {
  const ports = text.split(',').map((p) => Number(p.trim()));
  if (ports.length === 0 || !ports.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535)) {
    throw new InvalidArgumentError(`--allow-ssh-peers wants comma-separated TCP ports (1-65535), got ${JSON.stringify(text)}`);
  }
  return ports;
}

export const PROTECT_HELP = 'a protected prefix, repeatable (like a HOME_NET): only traffic towards them is judged (default: this host\'s own addresses)';
export const PARTNER_HELP = 'a partner, CDN or monitoring prefix, repeatable: automatic blocks of its addresses need a verified source (a completed handshake)';

/** A repeatable CIDR option (`--protect 10.0.0.0/8 --protect 2001:db8::/32`): each checked, in canonical form. */
export function cidrList(name: string) {
  return (value: string, previous: string[] = []): string[] => {
    try {
      return [...previous, parsePrefix(value).text];
    } catch (err) {
      throw new InvalidArgumentError(`${name}: ${(err as Error).message}`);
    }
  };
}
