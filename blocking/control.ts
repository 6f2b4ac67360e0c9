/**
 * What operators can do, shared by the CLI and the HTTP API so both validate the same way: block
 * add/del/list/show and allow add/del/list. Bad input throws InputError with a message meant for
 * the person who typed it; a refused block is an outcome, not an error.
 */
import { z } from 'zod';
import type { BlockOutcome } from '../common/alert-events';
import { formatDuration, parseDuration } from '../detector/rules/durations';
import type { LedgerBlocker } from './blocker';
import { ALLOW_CAPACITY, type AllowEntry, type BlockLedger, type LedgerEntry } from './ledger';
import { TRAFFIC_CLASSES } from '../common/traffic';
import type { LimitEntry } from './limits';
import { normalizeTarget } from './targets';

export class InputError extends Error {}

export const DEFAULT_MANUAL_TTL = '1h';

function target(text: string): string {
  try {
    return normalizeTarget(text, { keepExplicitV6Host: true }).text;
  } catch (err) {
    throw new InputError((err as Error).message);
  }
}

const scopePattern = /^(all|[\w.:@-]{1,64})$/;

export const blockInput = z.object({
  target: z.string().min(1, 'target is required'),
  ttl: z.string().default(DEFAULT_MANUAL_TTL),
  reason: z.string().max(200, 'reason: at most 200 characters').default('manual block'),
  scope: z.string().regex(scopePattern, 'scope: `all` or a sensor id').default('all'),
}).strict();

export const limitInput = z.object({
  target: z.string().min(1, 'target is required'),
  traffic: z.enum(TRAFFIC_CLASSES, { error: `traffic: one of ${TRAFFIC_CLASSES.join(', ')}` }).default('syn'),
  rate: z.coerce.number().int('rate: a whole number of packets a second').min(1, 'rate: at least 1 packet a second'),
  ttl: z.string().default(DEFAULT_MANUAL_TTL),
  reason: z.string().max(200, 'reason: at most 200 characters').default('manual limit'),
}).strict();

export const allowInput = z.object({
  target: z.string().min(1, 'target is required'),
  reason: z.string().min(1).max(200, 'reason: at most 200 characters').default('configured'),
}).strict();

/** One line per problem, e.g. `ttl: expected string`. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new InputError(result.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; '));
  return result.data;
}

export class BlockControl {
  constructor(private readonly ledger: BlockLedger, private readonly blocker: LedgerBlocker) {}

  private ttlMs(text: string): number {
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0) throw new InputError(`ttl: not a duration: ${JSON.stringify(text)} (e.g. 30s, 10m, 1h, 7d)`);
    const max = this.blocker.policy.maxTtlMs;
    if (ms > max) throw new InputError(`ttl: ${text} is longer than the maximum of ${formatDuration(max)}`);
    return ms;
  }

  async addBlock(raw: unknown): Promise<BlockOutcome> {
    const input = parseInput(blockInput, raw);
    const prefix = target(input.target);
    const ttlMs = this.ttlMs(input.ttl);
    return await this.blocker.request({
      target: prefix, ttlMs, origin: 'manual', ruleId: '', incidentId: '', title: input.reason, severity: 'info',
      sensor: input.scope === 'all' ? '' : input.scope, key: prefix, requestedMs: Date.now(),
    }, input.scope);
  }

  async delBlock(text: string): Promise<boolean> {
    return await this.blocker.unblock(target(text));
  }

  async listBlocks(): Promise<LedgerEntry[]> {
    return (await this.ledger.snapshot()).blocks.sort((a, b) => a.expiresMs - b.expiresMs);
  }

  async showBlock(text: string): Promise<LedgerEntry | undefined> {
    return await this.ledger.get(target(text));
  }

  async addLimit(raw: unknown): Promise<BlockOutcome> {
    const input = parseInput(limitInput, raw);
    const outcome = await this.blocker.limit({
      target: input.target, traffic: input.traffic, perSecond: input.rate, ttlMs: this.ttlMs(input.ttl), origin: 'manual', ruleId: '', incidentId: '',
      title: input.reason, severity: 'info', sensor: '', key: input.target, requestedMs: Date.now(),
    });
    if (outcome.status === 'refused') throw new InputError(`refused to limit ${input.target}: ${outcome.reason}`);
    return outcome;
  }

  async delLimit(text: string, traffic: unknown = 'syn'): Promise<boolean> {
    const parsed = z.enum(TRAFFIC_CLASSES).safeParse(traffic);
    if (!parsed.success) throw new InputError(`traffic: one of ${TRAFFIC_CLASSES.join(', ')}, got ${JSON.stringify(traffic)}`);
    return await this.blocker.unlimit(text, parsed.data);
  }

  async listLimits(): Promise<LimitEntry[]> {
    return await this.blocker.listLimits();
  }

  async addAllow(raw: unknown): Promise<string> {
    const input = parseInput(allowInput, raw);
    const prefix = target(input.target);
    if (!(await this.ledger.allow(prefix, input.reason))) throw new InputError(`the ledger already holds ${ALLOW_CAPACITY} configured allow entries, all the kernel can take: remove some first`);
    return prefix;
  }

  async delAllow(text: string): Promise<boolean> {
    return await this.ledger.disallow(target(text));
  }

  async listAllows(): Promise<AllowEntry[]> {
    return await this.ledger.allowEntries();
  }
}
