/**
 * Alertmanager-style matchers (`label=value`, `label!=value`, `label=~regex`, `label!~regex`),
 * the one syntax for routes, inhibition rules and silences. Regexes are anchored at both ends, as
 * in Alertmanager. Labels may hold several values (an incident's tags): a positive matcher holds
 * when any value matches, a negative one when none does.
 */

export type Labels = Record<string, readonly string[]>;

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  label: string;
  op: MatchOp;
  value: string;
}

const MATCHER = /^\s*([a-z_][a-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/;

/** Parses one matcher; throws an Error whose message says what is wrong with the text. */
export function parseMatcher(text: string): Matcher {
  const m = MATCHER.exec(text);
  if (!m) throw new Error(`not a matcher: ${JSON.stringify(text)} (expected label=value, label!=value, label=~regex or label!~regex)`);
  const [, label, op, raw] = m;
  const value = /^".*"$/.test(raw) ? raw.slice(1, -1) : raw;
  if (op === '=~' || op === '!~') compile(value);
  return { label, op: op as MatchOp, value };
}

const compiled = new Map<string, RegExp>();

function compile(source: string): RegExp {
  let re = compiled.get(source);
  if (!re) {
    try {
      re = new RegExp(`^(?:${source})$`);
    } catch (err) {
      throw new Error(`bad regular expression ${JSON.stringify(source)}: ${(err as Error).message}`);
    }
    compiled.set(source, re);
  }
  return re;
}

function matchesOne(m: Matcher, labels: Labels): boolean {
  const values = labels[m.label]?.length ? labels[m.label] : [''];
  switch (m.op) {
    case '=': return values.includes(m.value);
    case '!=': return !values.includes(m.value);
    case '=~': return values.some((v) => compile(m.value).test(v));
    case '!~': return !values.some((v) => compile(m.value).test(v));
  }
}

/** True when every matcher holds (an empty list matches everything). */
export function matchesAll(matchers: readonly Matcher[], labels: Labels): boolean {
  return matchers.every((m) => matchesOne(m, labels));
}

export function formatMatcher(m: Matcher): string {
  return `${m.label}${m.op}${m.value}`;
}
