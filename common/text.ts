/**
 * Text from outside (packets, rule files, operators, API clients) on its way to a person. Control
 * characters could forge lines in a text email or a terminal table, end a Slack code block, or
 * (Unicode bidi controls) make a reason or a rule title read differently on screen from what it
 * says. Input is refused where a person types it (hasUnsafeCharacters); every renderer cleans what
 * it shows anyway, since older entries and other sources never went through that check.
 */

/** C0 and C1 controls, the line and paragraph separators, and the bidi marks, embeddings, overrides and isolates. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const BREAKS = /[\t\n\v\f\r\u0085\u2028\u2029]/g;
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function hasUnsafeCharacters(text: string): boolean {
  return UNSAFE.test(text);
}

/** One line of plain text: breaks and tabs become spaces, other controls and bidi controls go, runs of spaces collapse. */
export function oneLine(text: string): string {
  return text.replace(BREAKS, ' ').replace(INVISIBLE, '').replace(/\s+/g, ' ').trim();
}

/** Like oneLine, but keeps the line breaks of multi-line text (e.g. pretty-printed details). */
export function plainLines(text: string): string {
  return text.replace(/\r\n?/g, '\n').split('\n').map((line) => line.replace(BREAKS, ' ').replace(INVISIBLE, '').trimEnd()).join('\n');
}

/**
 * For Slack mrkdwn, inside a code block or not: `&`, `<` and `>` are its only escapes, and it
 * has none for the backtick, so backticks become a look-alike (U+02CB) that cannot open or close
 * a code span.
 */
export function slackText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/`/g, '\u02cb');
}

/** A value quoted for an error message: JSON string syntax, with the characters above escaped too. */
export function quote(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\u009f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A terminal table, the first row its header. Cells are one line each: a reason or actor with line breaks or terminal escapes would forge rows. */
export function textTable(rows: string[][]): string {
  const cells = rows.map((row) => row.map((cell) => oneLine(cell) || '-'));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells.map((row) => `${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')}\n`).join('');
}
