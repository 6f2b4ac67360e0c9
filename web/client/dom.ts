/**
 * The one way the dashboard puts anything on the page: elements made with createElement, text
 * set as text nodes, attributes from a fixed list. Nothing is ever parsed as HTML, so text from
 * packets, rule files, reasons or receivers' errors shows as the characters it is.
 */

type Child = Node | string | number | false | null | undefined;

/** Attributes a page may set; an event handler or a style attribute cannot be one of them. */
const ATTRIBUTES = new Set(['class', 'id', 'href', 'type', 'name', 'value', 'placeholder', 'title', 'for', 'colspan', 'disabled', 'required',
  'autocomplete', 'role', 'aria-label', 'aria-live', 'data-testid', 'data-severity', 'data-state', 'selected', 'min', 'size', 'list', 'maxlength']);

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (!ATTRIBUTES.has(name)) throw new Error(`attribute ${name} is not allowed`);
    if (name === 'href' && typeof value === 'string' && !value.startsWith('#')) throw new Error('links stay inside the dashboard');
    if (value === true) el.setAttribute(name, '');
    else if (typeof value === 'string') el.setAttribute(name, value);
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === false || child === null || child === undefined) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Replaces an element's content. */
export function fill(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** A table with a header row; `empty` is shown when there are no rows. */
export function table(testId: string, head: string[], rows: Child[][], empty: string): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty', 'data-testid': testId }, empty);
  return h('table', { 'data-testid': testId },
    h('thead', {}, h('tr', {}, ...head.map((cell) => h('th', {}, cell)))),
    h('tbody', {}, ...rows.map((row) => h('tr', {}, ...row.map((cell) => h('td', {}, cell))))));
}

/** A route inside the dashboard, each part encoded: `#/incident/<rule>/<key>`. */
export function route(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

/**
 * A redraw of `container` for live updates that waits while someone works a control inside it:
 * an update must not take away what they are typing, or a remove button they clicked once and are
 * about to confirm. It runs once focus leaves the container's controls.
 */
export function politeRedraw(container: HTMLElement, redraw: () => void): () => void {
  let waiting = false;
  const busy = (el: EventTarget | null): boolean => el instanceof Element && container.contains(el) && el.matches('input, select, button, textarea');
  container.addEventListener('focusout', (e) => {
    if (waiting && !busy(e.relatedTarget)) {
      waiting = false;
      redraw();
    }
  });
  return () => {
    waiting = busy(document.activeElement);
    if (!waiting) redraw();
  };
}
