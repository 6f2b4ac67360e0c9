/** What is wrong with a rule set, located in its files the way editors and compilers say it. */

export interface SourcePosition {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

export interface Problem extends SourcePosition {
  /** Errors reject a rule set; warnings are reported and let it load. */
  severity: 'error' | 'warning';
  message: string;
}

/** `file:line:column: message`, with `warning: ` before the message of a warning. */
export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.severity === 'warning' ? 'warning: ' : ''}${p.message}`;
}

export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === 'error');
}

/** Problems in file order, then by position. */
export function sortProblems(problems: Problem[]): Problem[] {
  return problems.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
}
