/**
 * API tokens: from XDP_IDS_API_TOKENS (comma-separated) and/or a file (one per line, `#`
 * comments). Compared in constant time against every token, so neither the match nor its
 * position leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';

export const MIN_TOKEN_LENGTH = 16;

export function loadTokens(opts: { env?: NodeJS.ProcessEnv; file?: string } = {}): string[] {
  const env = opts.env ?? process.env;
  const fromEnv = (env.XDP_IDS_API_TOKENS ?? '').split(',');
  const fromFile = opts.file ? fs.readFileSync(opts.file, 'utf8').split('\n').filter((l) => !l.trim().startsWith('#')) : [];
  const tokens = [...fromEnv, ...fromFile].map((t) => t.trim()).filter(Boolean);
  const short = tokens.find((t) => t.length < MIN_TOKEN_LENGTH);
  if (short !== undefined) throw new RangeError(`API tokens must be at least ${MIN_TOKEN_LENGTH} characters (one has ${short.length})`);
  return tokens;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function tokenMatches(presented: string, tokens: readonly string[]): boolean {
  const seen = digest(presented);
  let match = false;
  for (const token of tokens) match = timingSafeEqual(seen, digest(token)) || match;
  return match;
}
