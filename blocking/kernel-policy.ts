/**
 * What an enforcer lets into its kernel from the ledger. The ledger is written by blockers that
 * already apply these rules, so a refusal here means something else wrote Redis (a compromised
 * or misconfigured client): the kernel still never drops the whole address space, a protected
 * address, or anything for longer than the longest block.
 */
import type { LimitEntry } from './limits';
import type { AllowEntry, LedgerEntry } from './ledger';
import { allowConflict, type AllowRule } from './allowlist';
import { normalizeTarget } from './targets';
import { checkWidth, type WidthLimits } from './widths';
import { MAX_LIMIT_RATE } from '../common/block-requests';
import { TRAFFIC_CLASSES } from '../common/traffic';
import type { Prefix } from '../sensor/addresses';

export interface KernelPolicy {
  widths: WidthLimits;
  maxTtlMs: number;
  /** Entries may say a little longer: the expiry is computed from a clock read on another host. */
  clockSlackMs: number;
}

/** The canonical prefix `text` names, or a sentence saying why it is not one. */
function canonical(text: unknown): Prefix | string {
  if (typeof text !== 'string') return 'no target';
  try {
    const prefix = normalizeTarget(text, { keepExplicitV6Host: true });
    return prefix.text === text ? prefix : `target ${JSON.stringify(text)} is not in canonical form (${prefix.text})`;
  } catch (err) {
    return (err as Error).message;
  }
}

function expiryProblem(expiresMs: unknown, policy: KernelPolicy, nowMs: number): string | undefined {
  if (typeof expiresMs !== 'number' || !Number.isFinite(expiresMs)) return 'no expiry';
  if (expiresMs > nowMs + policy.maxTtlMs + policy.clockSlackMs) return `expiry ${new Date(expiresMs).toISOString()} is beyond the longest block (${policy.maxTtlMs / 86_400_000} days)`;
  return undefined;
}

/** Why a block entry must not reach the kernel, or undefined. `allows` are every allow entry this sensor keeps. */
export function blockProblem(entry: LedgerEntry, allows: readonly AllowRule[], policy: KernelPolicy, nowMs: number): string | undefined {
  const prefix = canonical(entry.target);
  if (typeof prefix === 'string') return prefix;
  try {
    checkWidth(prefix, 'block', policy.widths);
  } catch (err) {
    return (err as Error).message;
  }
  const expiry = expiryProblem(entry.expiresMs, policy, nowMs);
  if (expiry) return expiry;
  const conflict = allowConflict(prefix, allows);
  return conflict && `it touches the allow entry ${conflict.prefix.text} (${conflict.reason})`;
}

export function allowProblem(entry: AllowEntry, policy: KernelPolicy): string | undefined {
  const prefix = canonical(entry.target);
  if (typeof prefix === 'string') return prefix;
  try {
    checkWidth(prefix, 'allow', policy.widths);
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

export function limitProblem(entry: LimitEntry, policy: KernelPolicy, nowMs: number): string | undefined {
  const prefix = canonical(entry.target.includes(':') ? `${entry.target}/128` : `${entry.target}/32`);
  if (typeof prefix === 'string') return prefix;
  if (prefix.text.split('/')[0] !== entry.target) return `target ${JSON.stringify(entry.target)} is not one address in canonical form`;
  if (!TRAFFIC_CLASSES.includes(entry.traffic)) return `unknown traffic class ${JSON.stringify(entry.traffic)}`;
  if (!Number.isInteger(entry.perSecond) || entry.perSecond < 1 || entry.perSecond > MAX_LIMIT_RATE) return `rate ${entry.perSecond} is not 1..${MAX_LIMIT_RATE}`;
  return expiryProblem(entry.expiresMs, policy, nowMs);
}
