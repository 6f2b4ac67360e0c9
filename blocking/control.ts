/**
 * What operators can do, shared by the CLI and the HTTP API so both validate the same way: block
 * add/del/list/show, limit add/del/list and allow add/del/list. Every change names its actor
 * (`cli:<user>@<host>`, `api:<token name>`), which the ledger records and the alerter shows. Bad
 * input throws InputError with a message meant for the person who typed it; a refused block is
 * an outcome, not an error.
 */
import { z } from 'zod';
import type { BlockOutcome } from '../common/alert-events';
import { hasUnsafeCharacters, quote } from '../common/text';
import { formatDuration, parseDuration } from '../detector/rules/durations';
import { parseAddress } from '../sensor/addresses';
import type { LedgerBlocker } from './blocker';
import { ALLOW_CAPACITY, type AllowEntry, type BlockLedger, type LedgerEntry } from './ledger';
import { TRAFFIC_CLASSES } from '../common/traffic';
import type { LimitEntry } from './limits';
import type { Notices } from './notices';
import { normalizeTarget } from './targets';
import { checkWidth, widthLimitsFromEnv, type WidthLimits } from './widths';

export class InputError extends Error {}

export const DEFAULT_MANUAL_TTL = '1h';

function target(text: string, kind?: 'block' | 'allow', widths?: WidthLimits): string {
  try {
    const prefix = normalizeTarget(text, { keepExplicitV6Host: true });
    if (kind) checkWidth(prefix, kind, widths);
    return prefix.text;
  } catch (err) {
    throw new InputError((err as Error).message);
  }
}

/** Reasons end up in emails, chat and terminals: no control or bidi characters that could disguise them there. */
function reason(fallback: string) {
  return z.string().min(1, 'must not be empty').max(200, 'at most 200 characters')
    .refine((text) => !hasUnsafeCharacters(text), 'control characters (line breaks, tabs, escapes) and bidi controls are not allowed')
    .default(fallback);
}

const scopePattern = /^(all|[\w.:@/-]{1,128})$/;

export const blockInput = z.object({
  target: z.string().min(1, 'target is required'),
  ttl: z.string().default(DEFAULT_MANUAL_TTL),
  reason: reason('manual block'),
  scope: z.string().regex(scopePattern, '`all` or a sensor id').default('all'),
}).strict();

export const limitInput = z.object({
  target: z.string().min(1, 'target is required'),
  traffic: z.enum(TRAFFIC_CLASSES, { error: `traffic: one of ${TRAFFIC_CLASSES.join(', ')}` }).default('syn'),
  rate: z.coerce.number().int('rate: a whole number of packets a second').min(1, 'rate: at least 1 packet a second'),
  ttl: z.string().default(DEFAULT_MANUAL_TTL),
  reason: reason('manual limit'),
}).strict();

export const allowInput = z.object({
  target: z.string().min(1, 'target is required'),
  reason: reason('configured'),
}).strict();

/** One line per problem, e.g. `ttl: expected string`. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new InputError(result.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; '));
  return result.data;
}

export interface BlockControlOptions {
  /** Where allow changes are announced (blocks and limits are announced by the blocker). */
  notices?: Notices;
  /** Default: widthLimitsFromEnv(). */
  widths?: WidthLimits;
}

export class BlockControl {
  private readonly notices?: Notices;
  private readonly widths: WidthLimits;

  constructor(private readonly ledger: BlockLedger, private readonly blocker: LedgerBlocker, opts: BlockControlOptions = {}) {
    this.notices = opts.notices;
    this.widths = opts.widths ?? widthLimitsFromEnv();
  }

  private ttlMs(text: string): number {
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0) throw new InputError(`ttl: not a duration: ${quote(text)} (e.g. 30s, 10m, 1h, 7d)`);
    const max = this.blocker.policy.maxTtlMs;
    if (ms > max) throw new InputError(`ttl: ${text} is longer than the maximum of ${formatDuration(max)}`);
    return ms;
  }

  /** `all`, or a sensor that is running now: a block scoped to a misspelt sensor would be enforced nowhere. */
  private async sensorScope(scope: string): Promise<string> {
    if (scope === 'all') return scope;
    const known = await this.ledger.liveSensors();
    if (!known.includes(scope)) throw new InputError(`scope: unknown sensor ${quote(scope)} (known: ${known.length ? known.join(', ') : 'none running'}; or all)`);
    return scope;
  }

  async addBlock(raw: unknown, actor: string): Promise<BlockOutcome> {
    const input = parseInput(blockInput, raw);
    const prefix = target(input.target, 'block', this.widths);
    const ttlMs = this.ttlMs(input.ttl);
    const scope = await this.sensorScope(input.scope);
    return await this.blocker.request({
      target: prefix, ttlMs, origin: 'manual', ruleId: '', incidentId: '', title: input.reason, severity: 'info',
      sensor: scope === 'all' ? '' : scope, key: prefix, requestedMs: Date.now(), actor,
    }, scope);
  }

  async delBlock(text: string, actor: string): Promise<boolean> {
    const prefix = target(text);
    return await this.blocker.unblock(prefix, 'manual unblock', actor);
  }

  async listBlocks(): Promise<LedgerEntry[]> {
    return (await this.ledger.snapshot()).blocks.sort((a, b) => a.expiresMs - b.expiresMs);
  }

  async showBlock(text: string): Promise<LedgerEntry | undefined> {
    return await this.ledger.get(target(text));
  }

  async addLimit(raw: unknown, actor: string): Promise<BlockOutcome> {
    const input = parseInput(limitInput, raw);
    const ttlMs = this.ttlMs(input.ttl);
    const outcome = await this.blocker.limit({
      target: input.target, traffic: input.traffic, perSecond: input.rate, ttlMs, origin: 'manual', ruleId: '', incidentId: '', title: input.reason,
      severity: 'info', sensor: '', key: input.target, requestedMs: Date.now(), actor,
    });
    if (outcome.status === 'refused') throw new InputError(`refused to limit ${input.target}: ${outcome.reason}`);
    return outcome;
  }

  async delLimit(text: string, traffic: unknown, actor: string): Promise<boolean> {
    const parsed = z.enum(TRAFFIC_CLASSES).safeParse(traffic);
    if (!parsed.success) throw new InputError(`traffic: one of ${TRAFFIC_CLASSES.join(', ')}, got ${JSON.stringify(traffic)}`);
    let address: string;
    try {
      address = parseAddress(text).toString();
    } catch (err) {
      throw new InputError((err as Error).message);
    }
    return await this.blocker.unlimit(address, parsed.data, 'manual removal', actor);
  }

  async listLimits(): Promise<LimitEntry[]> {
    return await this.blocker.listLimits();
  }

  async addAllow(raw: unknown, actor: string): Promise<string> {
    const input = parseInput(allowInput, raw);
    const prefix = target(input.target, 'allow', this.widths);
    if (!(await this.ledger.allow(prefix, input.reason, actor))) throw new InputError(`the ledger already holds ${ALLOW_CAPACITY} configured allow entries, all the kernel can take: remove some first`);
    await this.notices?.send({ kind: 'block', action: 'allow', phase: 'allowed', target: prefix, origin: 'manual', reason: input.reason, actor });
    return prefix;
  }

  async delAllow(text: string, actor: string): Promise<boolean> {
    const prefix = target(text);
    const removed = await this.ledger.disallow(prefix);
    if (removed) await this.notices?.send({ kind: 'block', action: 'allow', phase: 'disallowed', target: prefix, origin: 'manual', actor });
    return removed;
  }

  async listAllows(): Promise<AllowEntry[]> {
    return await this.ledger.allowEntries();
  }
}
