/**
 * The live terminal view of a sensor (and of `xdp-ids run`): traffic and drops of the last tick,
 * the top sources, open incidents, the kernel's blocks, fast-path trips and recent warnings.
 * On a terminal it redraws in place every tick, cut to the window's size; otherwise it writes
 * plain lines (one per tick, incident change, warning and note change), which a log collector
 * or `tee` reads well.
 */
import type { IncidentEvent } from '../common/alert-events';
import type { Sample, SensorSink, SensorTick, SourceWindow, Trip } from '../common/sensor-tick';
import { monotonicNs } from './clock';
import type { BlockEntry } from './kernel/program';
import { DROP_REASONS, dropsOf } from './status';

const ROWS = 10;
const RECENT_TRIPS = 4;
const OPEN_INCIDENTS = 8;
const BLOCKS = 6;
const RECENT_WARNINGS = 4;

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  return String(Math.round(n));
}

function odd(s: SourceWindow): number {
  return s.nullScan + s.finOnly + s.xmas + s.synFin;
}

const COLUMNS: [string, number, (s: SourceWindow) => string][] = [
  ['source', 40, (s) => s.src],
  ['pkts', 7, (s) => human(s.packets)],
  ['bytes', 7, (s) => human(s.bytes)],
  ['syn', 6, (s) => human(s.syn)],
  ['synack', 6, (s) => human(s.synAck)],
  ['ack', 6, (s) => human(s.ackOnly)],
  ['rst', 6, (s) => human(s.rst)],
  ['fin', 6, (s) => human(s.fin)],
  ['odd', 6, (s) => human(odd(s))],
  ['udp', 6, (s) => human(s.udp)],
  ['icmp', 6, (s) => human(s.icmp)],
  ['ports', 6, (s) => human(s.distinctPorts)],
  ['hosts', 6, (s) => human(s.distinctHosts)],
];

function incidentLine(e: IncidentEvent): string {
  const i = e.incident;
  const action = i.block ? ` ${i.block.status} ${i.block.target}` : '';
  return `${new Date(e.atMs).toISOString()} ${e.phase.padEnd(8)} ${i.severity.padEnd(8)} ${i.ruleId} ${i.key} (${i.detections} detections)${action}`;
}

function openIncidentLine(e: IncidentEvent): string {
  const i = e.incident;
  return `  ${new Date(i.openedMs).toISOString().slice(11, 19)} ${i.severity.padEnd(8)} ${i.ruleId.padEnd(24)} ${i.key.padEnd(40)} ${i.block ? `${i.block.status} ${i.block.target}` : 'alert only'}`;
}

function dropsLine(globals: Readonly<Record<string, number>>, seconds: number): string {
  const reasons = Object.entries(DROP_REASONS).map(([reason, counter]) => `${reason} ${human((globals[counter] ?? 0) / seconds)}`).join(', ');
  return `drops ${human(dropsOf(globals) / seconds)}/s (${reasons})`;
}

/** A pino JSON line as `hh:mm:ss LEVEL message (part)`; anything else as it is. */
function warningText(line: string): string {
  try {
    const entry = JSON.parse(line) as { time?: number; level?: number; msg?: string; part?: string; err?: unknown };
    const level = (entry.level ?? 0) >= 50 ? 'ERROR' : 'WARN';
    const err = typeof entry.err === 'string' ? `: ${entry.err}` : '';
    return `${new Date(entry.time ?? Date.now()).toISOString().slice(11, 19)} ${level} ${entry.msg ?? ''}${err}${entry.part ? ` (${entry.part})` : ''}`;
  } catch {
    return line.trim();
  }
}

export interface TopViewOptions {
  /** The kernel's blocks now (a sensor's program), shown with their drops and time left. */
  blocks?: () => BlockEntry[];
  /** A detector runs in this process and reports its incidents (`incident`). */
  incidents?: boolean;
}

export class TopView implements SensorSink {
  private readonly trips: Trip[] = [];
  private readonly open = new Map<string, IncidentEvent>();
  private readonly warnings: string[] = [];
  private readonly notes: { line: () => string; printed?: string }[] = [];

  constructor(private readonly out: NodeJS.WriteStream, private readonly header: string, private readonly opts: TopViewOptions = {}) {}

  /**
   * A line under the header (the dashboard's login link, the demo model's progress), read at
   * every redraw; when not on a terminal, printed whenever it changed.
   */
  note(line: () => string): void {
    this.notes.push({ line });
    if (!this.out.isTTY) this.printNotes();
  }

  /** A log line of level warn or above (pino JSON), shown among the recent warnings. */
  warning(line: string): void {
    const text = warningText(line);
    if (!this.out.isTTY) {
      this.out.write(`${text}\n`);
      return;
    }
    this.warnings.unshift(text);
    this.warnings.length = Math.min(this.warnings.length, RECENT_WARNINGS);
  }

  tick(t: SensorTick): void {
    const seconds = Math.max(0.001, (t.endMs - t.startMs) / 1000);
    if (!this.out.isTTY) {
      this.printNotes();
      const top = [...t.sources].sort((a, b) => b.packets - a.packets)[0];
      this.out.write(`${new Date(t.endMs).toISOString()} packets=${t.globals.packets ?? 0} drops=${dropsOf(t.globals)} sources=${t.sources.length} tracked=${t.trackedSources}` +
        `${top ? ` top=${top.src}:${top.packets}` : ''}\n`);
      return;
    }
    this.draw(this.screen(t, seconds));
  }

  /** An incident's change, from the detector of this process. */
  incident(e: IncidentEvent): void {
    if (e.phase === 'resolved') this.open.delete(e.incident.id);
    else this.open.set(e.incident.id, e);
    if (!this.out.isTTY) this.out.write(`incident ${incidentLine(e)}\n`);
  }

  trip(t: Trip): void {
    this.trips.unshift(t);
    this.trips.length = Math.min(this.trips.length, RECENT_TRIPS);
  }

  sample(_s: Sample): void {
    // Samples feed the detector's evidence; the view shows counters only.
  }

  private printNotes(): void {
    for (const note of this.notes) {
      const text = note.line();
      if (text !== note.printed) this.out.write(`${text}\n`);
      note.printed = text;
    }
  }

  private screen(t: SensorTick, seconds: number): string[] {
    const g = t.globals;
    const errors = Object.entries(g).filter(([k]) => k.startsWith('err_')).reduce((sum, [, v]) => sum + v, 0);
    const lines = [
      `\x1b[1m${this.header}\x1b[0m  window ${t.window}  ${new Date(t.endMs).toISOString()}`,
      ...this.notes.map((n) => n.line()),
      `packets ${human((g.packets ?? 0) / seconds)}/s  bytes ${human((g.bytes ?? 0) / seconds)}/s  ${dropsLine(g, seconds)}  parse errors ${human(errors)}`,
      `sources active ${t.sources.length}  tracked ${t.trackedSources}  untracked pkts ${human(t.untracked.packets)}  events ${human(g.events ?? 0)}`,
      '',
      COLUMNS.map(([name, width]) => name.padStart(width)).join(' '),
      ...[...t.sources].sort((a, b) => b.packets - a.packets).slice(0, ROWS)
        .map((s) => COLUMNS.map(([, width, get]) => get(s).padStart(width)).join(' ')),
    ];
    if (this.opts.incidents) {
      const open = [...this.open.values()].sort((a, b) => b.incident.openedMs - a.incident.openedMs);
      lines.push('', `open incidents: ${open.length}`, ...open.slice(0, OPEN_INCIDENTS).map(openIncidentLine));
    }
    if (this.opts.blocks) {
      const now = monotonicNs();
      const blocks = this.opts.blocks().sort((a, b) => b.drops - a.drops);
      lines.push('', `blocks in the kernel: ${blocks.length}`, ...blocks.slice(0, BLOCKS).map((b) =>
        `  ${b.prefix.padEnd(43)} ${b.expiresNs === 0n ? 'no expiry' : `${Math.max(0, Math.round(Number(b.expiresNs - now) / 1e9))} s left`}  ${human(b.drops)} dropped`));
    }
    if (this.trips.length > 0) {
      lines.push('', 'recent fast-path trips:', ...this.trips.map((tr) => `  ${new Date(tr.packet.tsMs).toISOString().slice(11, 23)} ${tr.src} ${tr.kind} ${tr.value} >= ${tr.threshold}` +
        ` (${tr.packet.protocol === 6 ? `tcp ${tr.packet.tcpFlags} -> ${tr.packet.dst}:${tr.packet.dstPort}` : `proto ${tr.packet.protocol} -> ${tr.packet.dst}`} ttl ${tr.packet.ttl})`));
    }
    if (this.warnings.length > 0) lines.push('', 'recent warnings:', ...this.warnings.map((w) => `  ${w}`));
    return lines;
  }

  /** Overwrites the screen line by line (no clearing first, so it does not flicker), cut to the terminal's size. */
  private draw(lines: string[]): void {
    const rows = this.out.rows ? this.out.rows - 1 : lines.length;
    const columns = this.out.columns ?? Infinity;
    // The header's bold escapes take no columns.
    const cut = (line: string, i: number): string => (i === 0 ? line : line.slice(0, columns));
    this.out.write(`\x1b[H${lines.slice(0, rows).map((line, i) => `${cut(line, i)}\x1b[K`).join('\n')}\n\x1b[J`);
  }
}
