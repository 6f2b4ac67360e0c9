/**
 * One rule file parsed with the `yaml` package, keeping node ranges so that any path into the
 * document (and any offset inside a scalar, such as a `when` expression) maps back to file:line:column.
 */
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node, type Pair, type Scalar } from 'yaml';
import type { Problem, SourcePosition } from './problems';

export type DocPath = readonly (string | number)[];

/** Aliases multiply data: a handful of anchors can expand to gigabytes ("billion laughs"). */
const MAX_ALIAS_COUNT = 100;

export class YamlSource {
  private readonly lines = new LineCounter();
  private readonly doc: Document.Parsed;

  constructor(readonly file: string, private readonly text: string) {
    this.doc = parseDocument(text, { lineCounter: this.lines, uniqueKeys: true, prettyErrors: false, merge: true });
  }

  /** YAML syntax errors (broken indentation, duplicate keys, unclosed brackets...). */
  syntaxProblems(): Problem[] {
    return this.doc.errors.map((e) => ({ ...this.at(e.pos[0]), severity: 'error', message: yamlMessage(e.message) }));
  }

  /** The document as plain data; throws for alias bombs. */
  value(): unknown {
    return this.doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  }

  /**
   * Where the node at `path` starts; for a path that does not exist (a missing field), where its
   * nearest existing parent starts. With `key`, where the key of the last path element is.
   */
  position(path: DocPath, opts: { key?: boolean } = {}): SourcePosition {
    if (opts.key && path.length > 0) {
      const parent = this.nodeAt(path.slice(0, -1));
      if (isMap(parent)) {
        const pair = (parent.items as Pair<unknown, unknown>[]).find((p) => isScalar(p.key) && p.key.value === path[path.length - 1]);
        const keyNode = pair?.key as Node | undefined;
        if (keyNode?.range) return this.at(keyNode.range[0]);
      }
    }
    for (let n = path.length; n >= 0; n--) {
      const node = this.nodeAt(path.slice(0, n));
      if (node?.range) return this.at(node.range[0]);
    }
    return { file: this.file, line: 1, column: 1 };
  }

  /** Where character `offset` of the string value at `path` is in the file. */
  positionInScalar(path: DocPath, offset: number): SourcePosition {
    const node = this.nodeAt(path);
    if (!isScalar(node) || typeof node.value !== 'string' || !node.range) return this.position(path);
    return this.at(scalarOffset(node as Scalar<string>, this.text, offset));
  }

  private nodeAt(path: DocPath): Node | undefined {
    if (path.length === 0) return (this.doc.contents as Node | null) ?? undefined;
    const node = this.doc.getIn(path, true);
    return node && typeof node === 'object' ? (node as Node) : undefined;
  }

  private at(offset: number): SourcePosition {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }
}

/**
 * The file offset of character `offset` of a string scalar's value. The value and the source
 * differ by quotes, escapes, block headers, indentation and folded line breaks: walk both,
 * skipping source characters that are layout, so that every value character lands on the source
 * character it came from.
 */
function scalarOffset(node: Scalar<string>, text: string, offset: number): number {
  const [start, end] = node.range!;
  let si = start;
  if (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') si++;
  else if (node.type === 'BLOCK_FOLDED' || node.type === 'BLOCK_LITERAL') si = text.indexOf('\n', start) + 1;
  const value = node.value;
  for (let vi = 0; vi < Math.min(offset, value.length); vi++) {
    while (si < end && text[si] !== value[vi] && /[\s"'\\]/.test(text[si])) si++;
    if (text[si] === value[vi]) si++;
  }
  while (si < end && /\s/.test(text[si]) && !/\s/.test(value[offset] ?? '')) si++;
  return Math.min(si, Math.max(start, end - 1));
}

/** The yaml package's messages, without the hints aimed at its own API. */
function yamlMessage(message: string): string {
  return `YAML: ${message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`;
}
