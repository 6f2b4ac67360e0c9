/**
 * Addresses a block must never take away from this host: loopback, its own addresses, its default
 * gateways, its resolvers, optionally the peers of active SSH sessions, and configured CIDRs. The
 * blocker refuses block requests over them; the enforcer also loads them into the kernel's allow
 * tries, which win over any block.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { Prefix } from '../sensor/addresses';
import { normalizeTarget, overlaps } from './targets';

export interface AllowRule {
  prefix: Prefix;
  reason: string;
}

export interface HostAllowOptions {
  /** Also allow the peers of established SSH sessions (port 22, or the ports given). */
  sshPeers?: boolean | number[];
  /** Extra CIDRs, e.g. from configuration: `{ '10.0.0.0/8': 'office' }`. */
  extra?: Record<string, string>;
  resolvConf?: string;
}

function exact(text: string): Prefix {
  return normalizeTarget(text.includes('/') ? text : `${text}/${text.includes(':') ? 128 : 32}`, { keepExplicitV6Host: true });
}

function gateways(): string[] {
  const out: string[] = [];
  for (const family of ['-4', '-6']) {
    try {
      const routes = JSON.parse(execFileSync('ip', ['-j', family, 'route', 'show', 'default'], { encoding: 'utf8' })) as { gateway?: string }[];
      for (const r of routes) if (r.gateway) out.push(r.gateway);
    } catch { /* no routing table for this family */ }
  }
  return out;
}

function resolvers(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1].replace(/%.*$/, ''));
}

function sshPeers(ports: number[]): string[] {
  const filter = ports.map((p) => `sport = :${p}`).join(' or ');
  const lines = execFileSync('ss', ['-Htn', 'state', 'established', `( ${filter} )`], { encoding: 'utf8' }).split('\n');
  return lines.filter(Boolean).map((line) => {
    const peer = line.trim().split(/\s+/).at(-1)!;
    return peer.replace(/:\d+$/, '').replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  });
}

/** The defaults of the host this runs on, each with why it is there. */
export function hostAllowRules(opts: HostAllowOptions = {}): AllowRule[] {
  const rules: AllowRule[] = [
    { prefix: exact('127.0.0.0/8'), reason: 'loopback' },
    { prefix: exact('::1/128'), reason: 'loopback' },
  ];
  const add = (address: string, reason: string): void => {
    try {
      rules.push({ prefix: exact(address), reason });
    } catch { /* not an IP address (e.g. a scoped or malformed entry): nothing to protect */ }
  };
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (!a.internal) add(a.address, `own address (${name})`);
  }
  for (const g of gateways()) add(g, 'default gateway');
  for (const r of resolvers(opts.resolvConf ?? '/etc/resolv.conf')) add(r, 'resolver');
  if (opts.sshPeers) for (const p of sshPeers(opts.sshPeers === true ? [22] : opts.sshPeers)) add(p, 'active SSH session');
  for (const [cidr, reason] of Object.entries(opts.extra ?? {})) rules.push({ prefix: normalizeTarget(cidr, { keepExplicitV6Host: true }), reason });
  return rules;
}

/** The first allow rule a block of `target` would touch (the block would cover it, or it covers the block). */
export function allowConflict(target: Prefix, rules: readonly AllowRule[]): AllowRule | undefined {
  return rules.find((rule) => overlaps(target, rule.prefix));
}
