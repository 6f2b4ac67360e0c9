/**
 * API tokens, each `name:scope:secret`: from XDP_IDS_API_TOKENS (comma-separated) and/or a file
 * (one per line, `#` comments; refused unless only its owner can read it). The name is who acts
 * (`api:<name>` in the ledger and the alerts); the scope is `read` (listings, metrics) or `write`
 * (changes, and reading). A presented secret is compared in constant time with every token, so
 * neither a match nor its position leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readBoundedFile } from '../common/files';
import { quote } from '../common/text';

export type TokenScope = 'read' | 'write';

export interface ApiToken {
  name: string;
  scope: TokenScope;
  secret: string;
}

export const MIN_SECRET_LENGTH = 16;
const NAME = /^[a-z0-9_-]{1,32}$/;
const MAX_TOKEN_FILE_BYTES = 64 * 1024;
const FORMAT = `name:scope:secret, e.g. ops:write:$(openssl rand -hex 24) (scope read or write, secret at least ${MIN_SECRET_LENGTH} characters)`;

/** `where` names the place for error messages; no message ever repeats a secret. */
function parseToken(text: string, where: string): ApiToken {
  const [name, scope, ...rest] = text.split(':');
  const secret = rest.join(':');
  if (rest.length === 0) throw new RangeError(`${where}: expected ${FORMAT}`);
  if (!NAME.test(name)) throw new RangeError(`${where}: the token name ${quote(name)} must be 1-32 of a-z, 0-9, _ and -`);
  if (scope !== 'read' && scope !== 'write') throw new RangeError(`${where}: token ${name} has scope ${quote(scope)}; use read or write`);
  if (secret.length < MIN_SECRET_LENGTH) throw new RangeError(`${where}: the secret of token ${name} has ${secret.length} characters; it needs at least ${MIN_SECRET_LENGTH}`);
  return { name, scope, secret };
}

export function loadTokens(opts: { env?: NodeJS.ProcessEnv; file?: string } = {}): ApiToken[] {
  const env = opts.env ?? process.env;
  const entries: [string, string][] = (env.XDP_IDS_API_TOKENS ?? '').split(',').map((t, i): [string, string] => [t.trim(), `XDP_IDS_API_TOKENS entry ${i + 1}`]);
  if (opts.file) {
    let text: string;
    try {
      text = readBoundedFile(opts.file, { maxBytes: MAX_TOKEN_FILE_BYTES, secret: true });
    } catch (err) {
      throw new RangeError(`token file ${opts.file}: ${(err as Error).message}`);
    }
    text.split('\n').forEach((line, i) => entries.push([line.trim(), `${opts.file}:${i + 1}`]));
  }
  const tokens: ApiToken[] = [];
  const names = new Map<string, string>();
  const secrets = new Map<string, string>();
  for (const [text, where] of entries) {
    if (!text || text.startsWith('#')) continue;
    const token = parseToken(text, where);
    const sameName = names.get(token.name);
    if (sameName) throw new RangeError(`${where}: token name ${token.name} is already used (${sameName}); every token needs its own name`);
    // Two names for one secret would make the actor of a request a guess.
    const sameSecret = secrets.get(token.secret);
    if (sameSecret) throw new RangeError(`${where}: token ${token.name} has the same secret as token ${sameSecret}`);
    names.set(token.name, where);
    secrets.set(token.secret, token.name);
    tokens.push(token);
  }
  return tokens;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The token whose secret was presented, or undefined. */
export function findToken(presented: string, tokens: readonly ApiToken[]): ApiToken | undefined {
  const seen = digest(presented);
  let found: ApiToken | undefined;
  for (const token of tokens) {
    const match = timingSafeEqual(seen, digest(token.secret));
    found = match ? token : found;
  }
  return found;
}

/** `write` tokens may also read. */
export function scopeAllows(scope: TokenScope, needed: TokenScope): boolean {
  return scope === 'write' || needed === 'read';
}
