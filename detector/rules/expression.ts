/**
 * `when` expressions: CEL parsed by @bufbuild/cel, type-checked here over the features of one
 * scope, and compiled once into JS closures over a feature vector (no eval, no interpreter per
 * window).
 *
 * Rules need a small part of CEL: number and bool literals, feature names, arithmetic,
 * comparisons, `!`, `&&`, `||` and `? :`. Everything else (strings beyond a type error, lists,
 * maps, field access, functions, macros, regexes) is refused with a message, which also rules out
 * regex denial of service and unbounded loops. Within that part the semantics are CEL's: every
 * feature is a double; int and uint appear only as literals, so integer arithmetic is folded at
 * compile time (overflow and division by zero are compile errors); arithmetic never mixes number
 * types (`2 * syn` is an error, `2.0 * syn` is not) while comparisons do (`syn > 100`); double
 * division by zero gives an infinity or NaN, and NaN compares false. Without variables of other
 * types no evaluation can fail, so `&&` and `||` short-circuit exactly as CEL's commutative
 * operators would.
 */
import { parse, unparse } from '@bufbuild/cel';
import { counterInputs, featuresOf, findFeature, type Feature, type Scope } from '../features';

type Expr = ReturnType<typeof parse>['expr'];
type Vector = Float64Array;
type NumFn = (v: Vector) => number;
type BoolFn = (v: Vector) => boolean;

const MAX_SOURCE_LENGTH = 4096;
const MAX_DEPTH = 64;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

export interface ExpressionProblem {
  /** Offset in the expression's text. */
  offset: number;
  message: string;
}

/** One comparison inside `when`, to show what made a rule fire. */
export interface ComparisonProbe {
  text: string;
  left: NumFn;
  right: NumFn;
  holds: BoolFn;
}

export interface CompiledExpression {
  source: string;
  scope: Scope;
  /** Features named in the expression, in order of first use. */
  features: readonly Feature[];
  /** Counter indexes the expression reads (directly or through derived features). */
  counters: readonly number[];
  holds: BoolFn;
  comparisons: readonly ComparisonProbe[];
}

export type CompileResult = { ok: true; expression: CompiledExpression } | { ok: false; problems: ExpressionProblem[] };

/** A checked node: its CEL type, and either a constant or a closure. */
type Typed =
  | { type: 'bool'; fn: BoolFn; constant?: boolean }
  | { type: 'double'; fn: NumFn; constant?: number; counter?: number }
  | { type: 'int' | 'uint'; constant: bigint }
  | { type: 'string' | 'bytes' | 'null'; constant: unknown };

const TYPE_WORDS: Record<Typed['type'], string> = {
  bool: 'a condition (bool)', double: 'a number (double)', int: 'an integer (int)', uint: 'an unsigned integer (uint)',
  string: 'a string', bytes: 'bytes', null: 'null',
};

const isNumeric = (t: Typed): t is Extract<Typed, { type: 'double' | 'int' | 'uint' }> => t.type === 'double' || t.type === 'int' || t.type === 'uint';

function numberFn(t: Extract<Typed, { type: 'double' | 'int' | 'uint' }>): NumFn {
  if (t.type === 'double') return t.fn;
  const n = Number(t.constant);
  return () => n;
}

function constantOf(t: Typed): number | undefined {
  if (t.type === 'double') return t.constant;
  if (t.type === 'int' || t.type === 'uint') return Number(t.constant);
  return undefined;
}

type Relation = '<' | '<=' | '>' | '>=' | '==' | '!=';

/** Closures per relation: general, against a constant, and a counter against a constant (the common case). */
const RELATIONS: Record<Relation, { general(l: NumFn, r: NumFn): BoolFn; constant(l: NumFn, c: number): BoolFn; counter(i: number, c: number): BoolFn; flipped: Relation }> = {
  '<': { general: (l, r) => (v) => l(v) < r(v), constant: (l, c) => (v) => l(v) < c, counter: (i, c) => (v) => v[i] < c, flipped: '>' },
  '<=': { general: (l, r) => (v) => l(v) <= r(v), constant: (l, c) => (v) => l(v) <= c, counter: (i, c) => (v) => v[i] <= c, flipped: '>=' },
  '>': { general: (l, r) => (v) => l(v) > r(v), constant: (l, c) => (v) => l(v) > c, counter: (i, c) => (v) => v[i] > c, flipped: '<' },
  '>=': { general: (l, r) => (v) => l(v) >= r(v), constant: (l, c) => (v) => l(v) >= c, counter: (i, c) => (v) => v[i] >= c, flipped: '<=' },
  '==': { general: (l, r) => (v) => l(v) === r(v), constant: (l, c) => (v) => l(v) === c, counter: (i, c) => (v) => v[i] === c, flipped: '==' },
  '!=': { general: (l, r) => (v) => l(v) !== r(v), constant: (l, c) => (v) => l(v) !== c, counter: (i, c) => (v) => v[i] !== c, flipped: '!=' },
};

const COMPARE: Record<string, Relation> = { '_<_': '<', '_<=_': '<=', '_>_': '>', '_>=_': '>=', '_==_': '==', '_!=_': '!=' };

type Arithmetic = '+' | '-' | '*' | '/' | '%';
const ARITHMETIC: Record<string, Arithmetic> = { '_+_': '+', '_-_': '-', '_*_': '*', '_/_': '/', '_%_': '%' };
const ARITHMETIC_WORDS: Record<Arithmetic, string> = { '+': 'adds', '-': 'subtracts', '*': 'multiplies', '/': 'divides', '%': 'takes the remainder of' };

const DOUBLE_OPS: Record<Exclude<Arithmetic, '%'>, { fn(l: NumFn, r: NumFn): NumFn; apply(a: number, b: number): number }> = {
  '+': { fn: (l, r) => (v) => l(v) + r(v), apply: (a, b) => a + b },
  '-': { fn: (l, r) => (v) => l(v) - r(v), apply: (a, b) => a - b },
  '*': { fn: (l, r) => (v) => l(v) * r(v), apply: (a, b) => a * b },
  '/': { fn: (l, r) => (v) => l(v) / r(v), apply: (a, b) => a / b },
};

class Checker {
  readonly problems: ExpressionProblem[] = [];
  readonly features: Feature[] = [];
  readonly comparisons: ComparisonProbe[] = [];

  constructor(private readonly scope: Scope, private readonly positions: Record<string, number>) {}

  check(e: Expr, depth = 0): Typed | undefined {
    if (depth > MAX_DEPTH) return this.fail(e, `the expression is nested more than ${MAX_DEPTH} levels deep`);
    const kind = e.exprKind;
    switch (kind.case) {
      case 'constExpr':
        return this.literal(e, kind.value.constantKind);
      case 'identExpr':
        return this.identifier(e, kind.value.name);
      case 'callExpr': {
        const { function: fn, args, target } = kind.value;
        if (target) return this.fail(e, `\`${unparse(e)}\`: methods are not available in rules; \`when\` uses feature names, numbers and operators`);
        return this.call(e, fn, args, depth);
      }
      case 'selectExpr':
        return this.fail(e, `\`${unparse(e)}\`: field access is not available in rules; features are plain names such as syn or ack_per_syn`);
      case 'listExpr':
      case 'structExpr':
        return this.fail(e, `\`${unparse(e)}\`: lists and maps are not available in rules`);
      case 'comprehensionExpr':
        return this.fail(e, 'macros (all, exists, map, filter, has) are not available in rules');
      default:
        return this.fail(e, 'this part of CEL is not available in rules');
    }
  }

  /** Where the node's text starts: its leftmost part (binary operators are positioned at the operator). */
  private offsetOf(e: Expr): number {
    let offset = this.positions[String(e.id)] ?? Infinity;
    const kind = e.exprKind;
    if (kind.case === 'callExpr') {
      for (const part of [kind.value.target, ...kind.value.args]) if (part) offset = Math.min(offset, this.offsetOf(part));
    } else if (kind.case === 'selectExpr' && kind.value.operand) {
      offset = Math.min(offset, this.offsetOf(kind.value.operand));
    }
    return Number.isFinite(offset) ? offset : 0;
  }

  private fail(e: Expr, message: string): undefined {
    this.problems.push({ offset: this.offsetOf(e), message });
    return undefined;
  }

  private literal(e: Expr, c: Extract<Expr['exprKind'], { case: 'constExpr' }>['value']['constantKind']): Typed | undefined {
    switch (c.case) {
      case 'boolValue': {
        const b = c.value;
        return { type: 'bool', fn: () => b, constant: b };
      }
      case 'doubleValue': {
        const d = c.value;
        return { type: 'double', fn: () => d, constant: d };
      }
      case 'int64Value':
        return { type: 'int', constant: c.value };
      case 'uint64Value':
        return { type: 'uint', constant: c.value };
      case 'stringValue':
        return { type: 'string', constant: c.value };
      case 'bytesValue':
        return { type: 'bytes', constant: c.value };
      case 'nullValue':
        return { type: 'null', constant: null };
      default:
        return this.fail(e, 'this kind of literal is not available in rules');
    }
  }

  private identifier(e: Expr, name: string): Typed | undefined {
    const feature = findFeature(this.scope, name);
    if (!feature) {
      const other: Scope = this.scope === 'source' ? 'destination' : 'source';
      if (findFeature(other, name)) {
        return this.fail(e, `\`${name}\` is a ${other} feature, and this rule groups by ${this.scope === 'source' ? 'source (src…)' : 'destination (dst…)'}: it sees ${this.scope} features only`);
      }
      const near = suggestions(name, featuresOf(this.scope).map((f) => f.name));
      return this.fail(e, `unknown feature \`${name}\`${near.length ? ` (did you mean ${near.map((n) => `\`${n}\``).join(' or ')}?)` : ''}; rules/FEATURES.md lists the ${this.scope} features`);
    }
    if (!this.features.includes(feature)) this.features.push(feature);
    if (feature.kind === 'counter') {
      const i = feature.index;
      return { type: 'double', fn: (v) => v[i], counter: i };
    }
    return { type: 'double', fn: feature.compute };
  }

  private call(e: Expr, fn: string, args: Expr[], depth: number): Typed | undefined {
    const known = fn in COMPARE || fn in ARITHMETIC || ['_&&_', '_||_', '!_', '-_', '_?_:_'].includes(fn);
    if (!known) {
      if (fn === '@in') return this.fail(e, '`in` is not available in rules: it works on lists and maps');
      if (fn === '_[_]') return this.fail(e, 'indexing (`[...]`) is not available in rules');
      return this.fail(e, `\`${unparse(e)}\`: functions are not available in rules; \`when\` uses feature names, numbers and operators`);
    }
    const typed = args.map((a) => this.check(a, depth + 1));
    if (typed.some((t) => t === undefined)) return undefined;
    const ts = typed as Typed[];
    if (fn in COMPARE) return this.compare(e, COMPARE[fn], ts[0], ts[1]);
    if (fn in ARITHMETIC) return this.arithmetic(e, ARITHMETIC[fn], ts[0], ts[1]);
    if (fn === '_&&_' || fn === '_||_') return this.logical(e, fn === '_&&_', ts[0], ts[1]);
    if (fn === '!_') return this.not(e, ts[0]);
    if (fn === '-_') return this.negate(e, ts[0]);
    return this.conditional(e, args, ts[0], ts[1], ts[2]);
  }

  private compare(e: Expr, relation: Relation, l: Typed, r: Typed): Typed | undefined {
    const text = unparse(e);
    if (isNumeric(l) && isNumeric(r)) {
      const lc = constantOf(l);
      const rc = constantOf(r);
      const left = numberFn(l);
      const right = numberFn(r);
      let fn: BoolFn;
      if (lc !== undefined && rc !== undefined) {
        const value = RELATIONS[relation].constant(() => lc, rc)(new Float64Array(0));
        return { type: 'bool', fn: () => value, constant: value };
      } else if (rc !== undefined) {
        fn = l.type === 'double' && l.counter !== undefined ? RELATIONS[relation].counter(l.counter, rc) : RELATIONS[relation].constant(left, rc);
      } else if (lc !== undefined) {
        const flipped = RELATIONS[RELATIONS[relation].flipped];
        fn = r.type === 'double' && r.counter !== undefined ? flipped.counter(r.counter, lc) : flipped.constant(right, lc);
      } else {
        fn = RELATIONS[relation].general(left, right);
      }
      this.comparisons.push({ text, left, right, holds: fn });
      return { type: 'bool', fn };
    }
    const equality = relation === '==' || relation === '!=';
    if (l.type === r.type && (equality || l.type === 'string')) {
      if (l.type === 'bool' && r.type === 'bool') {
        const [a, b] = [l.fn, r.fn];
        return { type: 'bool', fn: relation === '==' ? (v) => a(v) === b(v) : (v) => a(v) !== b(v) };
      }
      return this.fail(e, `\`${text}\` compares ${TYPE_WORDS[l.type]} values, which features never are`);
    }
    return this.fail(e, `\`${text}\` compares ${TYPE_WORDS[l.type]} with ${TYPE_WORDS[r.type]}`);
  }

  private arithmetic(e: Expr, op: Arithmetic, l: Typed, r: Typed): Typed | undefined {
    const text = unparse(e);
    if (!isNumeric(l) || !isNumeric(r)) {
      const bad = isNumeric(l) ? r : l;
      return this.fail(e, `\`${text}\`: \`${op}\` works on numbers, not on ${TYPE_WORDS[bad.type]}`);
    }
    if (l.type !== r.type) {
      const literal = l.type === 'double' ? r : l;
      const hint = literal.type !== 'double' ? `; write the integer as a double, e.g. ${String(literal.constant)}.0` : '';
      return this.fail(e, `\`${text}\` ${ARITHMETIC_WORDS[op]} ${TYPE_WORDS[l.type]} and ${TYPE_WORDS[r.type]}: CEL arithmetic never mixes number types${hint}`);
    }
    if (l.type === 'double' && r.type === 'double') {
      if (op === '%') return this.fail(e, `\`${text}\`: \`%\` works on integers only, and features are doubles`);
      const ops = DOUBLE_OPS[op];
      if (l.constant !== undefined && r.constant !== undefined) {
        const value = ops.apply(l.constant, r.constant);
        return { type: 'double', fn: () => value, constant: value };
      }
      return { type: 'double', fn: ops.fn(l.fn, r.fn) };
    }
    return this.integer(e, op, l as Extract<Typed, { type: 'int' | 'uint' }>, (r as Extract<Typed, { type: 'int' | 'uint' }>).constant);
  }

  /** Integer arithmetic happens only between literals: fold it, with CEL's 64-bit range checks. */
  private integer(e: Expr, op: Arithmetic, l: Extract<Typed, { type: 'int' | 'uint' }>, b: bigint): Typed | undefined {
    const a = l.constant;
    if ((op === '/' || op === '%') && b === 0n) return this.fail(e, `\`${unparse(e)}\` divides by zero`);
    const value = op === '+' ? a + b : op === '-' ? a - b : op === '*' ? a * b : op === '/' ? a / b : a % b;
    const [min, max] = l.type === 'int' ? [INT64_MIN, INT64_MAX] : [0n, UINT64_MAX];
    if (value < min || value > max) return this.fail(e, `\`${unparse(e)}\` overflows the ${l.type} range`);
    return { type: l.type, constant: value };
  }

  private logical(e: Expr, and: boolean, l: Typed, r: Typed): Typed | undefined {
    for (const side of [l, r]) {
      if (side.type !== 'bool') return this.fail(e, `\`${unparse(e)}\`: \`${and ? '&&' : '||'}\` needs conditions on both sides, not ${TYPE_WORDS[side.type]}`);
    }
    const [a, b] = [(l as Extract<Typed, { type: 'bool' }>), (r as Extract<Typed, { type: 'bool' }>)];
    if (a.constant !== undefined && b.constant !== undefined) {
      const value = and ? a.constant && b.constant : a.constant || b.constant;
      return { type: 'bool', fn: () => value, constant: value };
    }
    const [f, g] = [a.fn, b.fn];
    return { type: 'bool', fn: and ? (v) => f(v) && g(v) : (v) => f(v) || g(v) };
  }

  private not(e: Expr, t: Typed): Typed | undefined {
    if (t.type !== 'bool') return this.fail(e, `\`${unparse(e)}\`: \`!\` needs a condition, not ${TYPE_WORDS[t.type]}`);
    if (t.constant !== undefined) {
      const value = !t.constant;
      return { type: 'bool', fn: () => value, constant: value };
    }
    const f = t.fn;
    return { type: 'bool', fn: (v) => !f(v) };
  }

  private negate(e: Expr, t: Typed): Typed | undefined {
    if (t.type === 'double') {
      if (t.constant !== undefined) {
        const value = -t.constant;
        return { type: 'double', fn: () => value, constant: value };
      }
      const f = t.fn;
      return { type: 'double', fn: (v) => -f(v) };
    }
    if (t.type === 'int') {
      if (t.constant === INT64_MIN) return this.fail(e, `\`${unparse(e)}\` overflows the int range`);
      return { type: 'int', constant: -t.constant };
    }
    return this.fail(e, `\`${unparse(e)}\`: \`-\` needs an int or a double, not ${TYPE_WORDS[t.type]}`);
  }

  private conditional(e: Expr, args: Expr[], c: Typed, a: Typed, b: Typed): Typed | undefined {
    if (c.type !== 'bool') return this.fail(args[0], `the condition of \`? :\` must be true or false, but \`${unparse(args[0])}\` is ${TYPE_WORDS[c.type]}`);
    if (a.type !== b.type) return this.fail(e, `both branches of \`? :\` must have the same type: \`${unparse(args[1])}\` is ${TYPE_WORDS[a.type]}, \`${unparse(args[2])}\` is ${TYPE_WORDS[b.type]}`);
    if (c.constant !== undefined) return c.constant ? a : b;
    const cond = c.fn;
    if (a.type === 'bool' && b.type === 'bool') {
      const [f, g] = [a.fn, b.fn];
      return { type: 'bool', fn: (v) => (cond(v) ? f(v) : g(v)) };
    }
    if (a.type === 'double' && b.type === 'double') {
      const [f, g] = [a.fn, b.fn];
      return { type: 'double', fn: (v) => (cond(v) ? f(v) : g(v)) };
    }
    return this.fail(e, `\`${unparse(e)}\`: when its condition depends on features, \`? :\` can only choose between conditions or between doubles`);
  }
}

/** Names within two edits of `name`, or starting the same way. */
function suggestions(name: string, names: string[]): string[] {
  return names.filter((n) => editDistance(n, name) <= 2 || (name.length >= 3 && n.startsWith(name))).slice(0, 3);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

interface PeggyError {
  location?: { start: { offset: number } };
  found?: string | null;
}

function syntaxProblem(err: unknown): ExpressionProblem {
  if (err instanceof RangeError) return { offset: 0, message: 'the expression is nested too deeply to parse' };
  const e = err as PeggyError;
  const offset = e.location?.start.offset ?? 0;
  if (!e.found) return { offset, message: 'syntax error: the expression ends too early (an operand or a closing parenthesis is missing)' };
  return { offset, message: `syntax error at \`${e.found}\`: the expression is incomplete here or has a stray symbol` };
}

/** Parses, checks and compiles a `when` expression over the features of `scope`. */
export function compileExpression(source: string, scope: Scope): CompileResult {
  if (source.length > MAX_SOURCE_LENGTH) return { ok: false, problems: [{ offset: 0, message: `the expression is ${source.length} characters long; the limit is ${MAX_SOURCE_LENGTH}` }] };
  if (source.trim() === '') return { ok: false, problems: [{ offset: 0, message: '`when` is empty' }] };
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (err) {
    return { ok: false, problems: [syntaxProblem(err)] };
  }
  const positions: Record<string, number> = {};
  for (const [id, offset] of Object.entries(parsed.sourceInfo?.positions ?? {})) positions[id] = offset;
  const checker = new Checker(scope, positions);
  const root = checker.check(parsed.expr);
  if (!root) return { ok: false, problems: checker.problems };
  if (root.type !== 'bool') {
    return { ok: false, problems: [{ offset: 0, message: `\`when\` must be a condition (true or false), but \`${unparse(parsed.expr)}\` is ${TYPE_WORDS[root.type]}` }] };
  }
  const counters = [...new Set(checker.features.flatMap(counterInputs))].sort((a, b) => a - b);
  return { ok: true, expression: { source, scope, features: checker.features, counters, holds: root.fn, comparisons: checker.comparisons } };
}
