/** A live "top sources" view of the sensor's ticks for a terminal (or one line per tick when piped). */
import type { IncidentEvent } from '../common/alert-events';
import type { Sample, SensorSink, SensorTick, SourceWindow, Trip } from '../common/sensor-tick';

const ROWS = 15;
const RECENT_TRIPS = 6;
const RECENT_INCIDENTS = 8;

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

export class TopView implements SensorSink {
  private readonly trips: Trip[] = [];
  private readonly incidents: IncidentEvent[] = [];

  private readonly notes: (() => string)[] = [];

  constructor(private readonly out: NodeJS.WriteStream, private readonly header: string) {}

  /** A line under the header, read at every redraw (e.g. the dashboard's current login link); printed once when not a terminal. */
  note(line: () => string): void {
    if (this.out.isTTY) this.notes.push(line);
    else this.out.write(`${line()}\n`);
  }

  tick(t: SensorTick): void {
    if (!this.out.isTTY) {
      const top = [...t.sources].sort((a, b) => b.packets - a.packets)[0];
      this.out.write(`${new Date(t.endMs).toISOString()} packets=${t.globals.packets} drops=${t.globals.drop_blocked} sources=${t.sources.length} tracked=${t.trackedSources}` +
        `${top ? ` top=${top.src}:${top.packets}` : ''}\n`);
      return;
    }
    const g = t.globals;
    const errors = Object.entries(g).filter(([k]) => k.startsWith('err_')).reduce((sum, [, v]) => sum + v, 0);
    const lines = [
      `\x1b[1m${this.header}\x1b[0m  window ${t.window}  ${new Date(t.endMs).toISOString()}`,
      ...this.notes.map((line) => line()),
      `packets ${human(g.packets)}/s  bytes ${human(g.bytes)}/s  dropped ${human(g.drop_blocked)}  parse errors ${human(errors)}  ` +
        `active ${t.sources.length}  tracked ${t.trackedSources}  untracked pkts ${human(t.untracked.packets)}  events ${human(g.events)}`,
      '',
      COLUMNS.map(([name, width]) => name.padStart(width)).join(' '),
      ...[...t.sources].sort((a, b) => b.packets - a.packets).slice(0, ROWS)
        .map((s) => COLUMNS.map(([, width, get]) => get(s).padStart(width)).join(' ')),
      '',
      'recent fast-path trips:',
      ...this.trips.map((tr) => `  ${new Date(tr.packet.tsMs).toISOString()} ${tr.src} ${tr.kind} ${tr.value} >= ${tr.threshold}` +
        ` (${tr.packet.protocol === 6 ? `tcp ${tr.packet.tcpFlags} -> ${tr.packet.dst}:${tr.packet.dstPort}` : `proto ${tr.packet.protocol} -> ${tr.packet.dst}`} ttl ${tr.packet.ttl})`),
      ...(this.showsIncidents ? ['', 'recent incidents:', ...this.incidents.map((e) => `  ${incidentLine(e)}`)] : []),
    ];
    this.out.write(`\x1b[H\x1b[2J${lines.join('\n')}\n`);
  }

  private showsIncidents = false;

  /** Shows the detector's incident transitions too (when the whole service runs in one process). */
  incident(e: IncidentEvent): void {
    this.showsIncidents = true;
    if (!this.out.isTTY) {
      this.out.write(`incident ${incidentLine(e)}\n`);
      return;
    }
    this.incidents.unshift(e);
    this.incidents.length = Math.min(this.incidents.length, RECENT_INCIDENTS);
  }

  trip(t: Trip): void {
    this.trips.unshift(t);
    this.trips.length = Math.min(this.trips.length, RECENT_TRIPS);
  }

  sample(_s: Sample): void {
    // Samples feed the detector's evidence; the top view shows counters only.
  }
}
