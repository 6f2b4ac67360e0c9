/**
 * ArcSight Common Event Format (CEF:0) lines for syslog receivers with `format: cef`: one line
 * per event, `CEF:0|Vendor|Product|Version|Signature ID|Name|Severity|Extension`. The header's
 * `|` and `\` are escaped, extension values escape `\`, `=` and line breaks (the CEF
 * specification's rules), and every text is one line first (common/text.ts).
 */
import net from 'node:net';
import type { AlertEvent, Severity } from '../common/alert-events';
import { oneLine } from '../common/text';
import { attackOf, leadOf, titleOf } from './attacks';
import { hostOf } from './labels';
import type { NoticeItem } from './types';
import { blockTitle } from './view';

const VERSION = '0.1.0';
/** CEF severity is 0-10. */
const SEVERITY: Record<Severity, number> = { info: 1, low: 3, medium: 5, high: 8, critical: 10 };

const header = (text: string): string => oneLine(text).replace(/[\\|]/g, (c) => `\\${c}`);
const value = (text: string): string => text.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r/g, '\\r').replace(/\n/g, '\\n');

interface Cef {
  signature: string;
  name: string;
  severity: Severity;
  /** Extension keys of the CEF dictionary, in order; undefined ones are left out. */
  extension: Extension;
}

type Extension = [string, string | number | undefined][];

/** A custom string field (`cs1`…) with its label, or nothing when there is no value. */
const custom = (key: string, label: string, text: string | undefined): Extension => (text ? [[`${key}Label`, label], [key, text]] : []);

const ip = (text: string | undefined): string | undefined => (text !== undefined && net.isIP(text) ? text : undefined);

function cefOf(item: NoticeItem): Cef {
  const event: AlertEvent = item.event;
  const common: Extension = [['rt', event.atMs], ['externalId', event.id], ['cat', `${event.kind}/${item.phase}`]];
  switch (event.kind) {
    case 'incident': {
      const a = attackOf(event);
      const lead = leadOf(a);
      const address = lead.overflow ? undefined : ip(hostOf(lead.key));
      return {
        signature: lead.ruleId, name: titleOf(a), severity: lead.severity,
        extension: [...common, [lead.scope === 'source' ? 'src' : 'dst', address], ['cnt', a.incidents.reduce((n, i) => n + i.detections, 0)],
          ['act', lead.block ? `${lead.block.status} ${lead.block.target}` : 'alert'], ['msg', oneLine(lead.description)],
          ...custom('cs1', 'rule', lead.ruleId), ...custom('cs2', 'attack', a.id), ...custom('cs3', 'key', lead.key), ['deviceExternalId', lead.sensors.join(',')]],
      };
    }
    case 'block':
      return {
        signature: `block-${event.phase}`, name: blockTitle(event), severity: event.phase === 'refused' ? 'medium' : 'info',
        extension: [...common, ['src', ip(hostOf(event.target))], ['act', event.phase], ['suser', event.actor], ['msg', event.reason ? oneLine(event.reason) : undefined],
          ...custom('cs1', 'rule', event.ruleId), ...custom('cs3', 'target', event.target), ['end', event.expiresMs]],
      };
    case 'exception':
      return {
        signature: `exception-${event.code}`, name: oneLine(event.message), severity: event.severity,
        extension: [...common, ['msg', oneLine(event.message)], ['dvchost', event.component]],
      };
  }
}

export function cefLine(item: NoticeItem): string {
  const c = cefOf(item);
  const extension = c.extension.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}=${value(String(v))}`).join(' ');
  return `CEF:0|xdp-ids|xdp-ids|${VERSION}|${header(c.signature)}|${header(c.name)}|${SEVERITY[c.severity]}|${extension}`;
}
