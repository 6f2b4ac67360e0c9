/**
 * The shape of a rule file, checked with zod before anything is compiled. Values that need more
 * than a shape (durations, groupings, CIDRs, expressions, feature names in tests) are checked in
 * rule.ts, which knows what they mean; this file only makes sure they are there and of the right
 * kind, and turns zod's issues into sentences.
 */
import { z } from 'zod';
import type { DocPath } from './yaml-source';

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const MITRE = /^T\d{4}(\.\d{3})?$/;
const TAG = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;

const counts = z.record(z.string(), z.number().nonnegative({ error: 'counts are zero or more' }).finite({ error: 'counts are finite numbers' }));

export const TestCaseShape = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  features: counts.optional(),
  windows: z.array(counts).min(1).max(3600).optional(),
  repeat: z.int().min(1).max(3600).optional(),
  src: z.string().max(64).optional(),
  dst: z.string().max(64).optional(),
  expect: z.enum(['fire', 'quiet']),
  at: z.int().nonnegative().optional(),
});

export const RuleShape = z.strictObject({
  id: z.string().regex(ID, { error: 'an id is 1 to 64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit' }),
  title: z.string().trim().min(1).max(200),
  description: z.string().trim().min(1).max(10_000),
  severity: z.enum(SEVERITIES),
  mitre: z.array(z.string().regex(MITRE, { error: 'MITRE ATT&CK technique ids look like T1046 or T1498.001' })).max(20).default([]),
  tags: z.array(z.string().regex(TAG, { error: 'a tag is 1 to 64 letters, digits or ._:/-' })).max(20).default([]),
  /** Rules this one subsumes: when both fire for one key, the alert names this one and lists the other under it. */
  inhibits: z.array(z.string().regex(ID, { error: 'a rule id is 1 to 64 lower-case letters, digits, ".", "_" or "-"' })).max(50).default([]),
  group_by: z.string().max(32),
  when: z.string(),
  window: z.string().max(32).default('1s'),
  for: z.string().max(32).default('0s'),
  actions: z.array(z.unknown()).max(10).default(['alert']),
  except: z.array(z.string().max(64)).max(10_000).default([]),
  enabled: z.boolean().default(true),
  tests: z.array(z.unknown()).max(1000).default([]),
});
export type RuleDoc = z.infer<typeof RuleShape>;

export const RULE_FIELDS = Object.keys(RuleShape.shape);
export const TEST_FIELDS = Object.keys(TestCaseShape.shape);

/** A located message: `key` places it on a field's name rather than its value. */
export interface ShapeProblem {
  path: DocPath;
  key?: boolean;
  message: string;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'text', number: 'a number', int: 'a whole number', boolean: 'true or false', array: 'a list', object: 'a mapping (field: value)',
};

function typeOf(value: unknown): string {
  if (value === null) return 'empty (null)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the text ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value === 'number' ? 'the number' : ''} ${String(value)}`.trim();
}

function nameOf(path: DocPath): string {
  const last = [...path].reverse().find((p) => typeof p === 'string');
  return last === undefined ? 'this' : `\`${String(last)}\``;
}

function valueAt(root: unknown, path: DocPath): unknown {
  let v = root;
  for (const p of path) v = v && typeof v === 'object' ? (v as Record<string | number, unknown>)[p] : undefined;
  return v;
}

/** Issues of a zod parse of `input`, as sentences at paths relative to it. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], input: unknown, fields: readonly string[]): ShapeProblem[] {
  const out: ShapeProblem[] = [];
  for (const issue of issues) {
    const path = issue.path as (string | number)[];
    const value = valueAt(input, path);
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          const near = fields.filter((f) => f.startsWith(key.slice(0, 3)) || key.startsWith(f.slice(0, 3)));
          out.push({ path: [...path, key], key: true, message: `unknown field \`${key}\`${near.length ? ` (did you mean ${near.map((f) => `\`${f}\``).join(' or ')}?)` : ''}; fields are ${fields.join(', ')}` });
        }
        break;
      case 'invalid_type':
        out.push(value === undefined
          ? { path, message: `missing ${nameOf(path)}` }
          : { path, message: `${nameOf(path)} must be ${TYPE_WORDS[issue.expected] ?? issue.expected}, not ${typeOf(value)}` });
        break;
      case 'invalid_value':
        out.push({ path, message: `${nameOf(path)} must be one of ${issue.values.map(String).join(', ')}, not ${typeOf(value)}` });
        break;
      case 'too_small':
        out.push({ path, message: issue.origin === 'string' ? `${nameOf(path)} is empty` : issue.origin === 'array' ? `${nameOf(path)} needs at least ${issue.minimum} item(s)` : `${nameOf(path)}: ${issue.message}` });
        break;
      case 'too_big':
        out.push({ path, message: `${nameOf(path)} is too ${issue.origin === 'array' ? 'long' : issue.origin === 'string' ? 'long' : 'large'} (at most ${issue.maximum}${issue.origin === 'array' ? ' items' : issue.origin === 'string' ? ' characters' : ''})` });
        break;
      default:
        out.push({ path, message: `${nameOf(path)}: ${issue.message}` });
    }
  }
  return out;
}
