/**
 * Hot reload: watches rule files and directories, reloads the whole set after a burst of changes
 * settles, and swaps it in only if it has no errors. A broken file never takes the running rules
 * down: the last good set stays, and 'rejected' says why with file:line:column.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { loadRules, type LoadResult, type RuleSet } from './loader';
import type { Problem } from './problems';

export interface Reloaded {
  ruleSet: RuleSet;
  previous?: RuleSet;
  warnings: Problem[];
}

export interface Rejected {
  problems: Problem[];
  /** The set still in force (undefined if no good set was ever loaded). */
  kept?: RuleSet;
}

interface WatcherEvents {
  reloaded: [Reloaded];
  rejected: [Rejected];
}

export interface WatcherOptions {
  /** Editors write a file in several steps; reload once they are done. */
  debounceMs?: number;
  load?: (paths: readonly string[]) => LoadResult;
}

const RULE_FILE = /\.ya?ml$/;

export class RuleWatcher extends EventEmitter<WatcherEvents> {
  private current?: RuleSet;
  private readonly watchers: fs.FSWatcher[] = [];
  private timer?: NodeJS.Timeout;
  private readonly debounceMs: number;
  private readonly load: (paths: readonly string[]) => LoadResult;

  constructor(readonly paths: readonly string[], opts: WatcherOptions = {}) {
    super();
    this.debounceMs = opts.debounceMs ?? 200;
    this.load = opts.load ?? loadRules;
  }

  /** The rule set in force. */
  get ruleSet(): RuleSet | undefined {
    return this.current;
  }

  /** Loads the rules (emitting 'reloaded' or 'rejected') and starts watching for changes. */
  start(): LoadResult {
    const result = this.reload();
    for (const p of this.paths) {
      const isDir = fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
      const dir = isDir ? p : path.dirname(p);
      const only = isDir ? undefined : path.basename(p);
      const watcher = fs.watch(dir, (_event, name) => {
        const file = name?.toString();
        if (file && (only ? file !== only : !RULE_FILE.test(file))) return;
        this.schedule();
      });
      watcher.unref();
      this.watchers.push(watcher);
    }
    return result;
  }

  /** Loads the rules now; swaps them in if they have no errors and differ from the set in force. */
  reload(): LoadResult {
    const result = this.load(this.paths);
    if (!result.ruleSet) {
      this.emit('rejected', { problems: result.problems, kept: this.current });
    } else if (result.ruleSet.version !== this.current?.version) {
      const previous = this.current;
      this.current = result.ruleSet;
      this.emit('reloaded', { ruleSet: result.ruleSet, previous, warnings: result.problems });
    }
    return result;
  }

  close(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers.splice(0)) w.close();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload(), this.debounceMs);
    this.timer.unref();
  }
}
