import { InvalidArgumentError } from 'commander';

/** A commander parser for an integer option from 1 to `max`. */
export function positiveInt(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}`);
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
