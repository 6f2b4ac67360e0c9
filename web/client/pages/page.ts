/** A page draws itself into the view and returns what to undo when another page is shown (live subscriptions, timers). */
export type Page = (view: HTMLElement, args: string[]) => Promise<(() => void) | undefined>;
