import { cefLine } from '../../alerts/cef';
import { frame, syslogMessage } from '../../alerts/syslog-message';
import type { BlockEvent } from '../../common/alert-events';
import { incident, incidentEvent } from '../support/alert-fixtures';

const RECEIVER = { facility: 10, appName: 'xdp-ids', format: 'json' as const };

describe('syslog messages (RFC 5424, RFC 6587 framing)', () => {
  test('octet counting counts UTF-8 bytes, not characters; newline framing ends the line', () => {
    expect(frame('é→x', 'octet-counting')).toBe('6 é→x');
    expect(frame('é→x', 'newline')).toBe('é→x\n');
  });

  test('the header: PRI from facility and severity, the event time, header fields without spaces, nil structured data', () => {
    const event = incidentEvent('opened', incident({ severity: 'critical' }));
    const message = syslogMessage({ phase: 'opened', event, changes: [] }, RECEIVER, 'host with spaces');
    expect(message.slice(0, message.indexOf(' - {'))).toBe(`<82>1 ${new Date(event.atMs).toISOString()} host_with_spaces xdp-ids ${process.pid} incident-opened`);
    expect(message).not.toContain('\n');
  });

  test('CEF: the header escapes | and \\, extension values escape \\ and = and line breaks; every text is one line', () => {
    const block: BlockEvent = {
      v: 1, id: 'b1', atMs: 1_700_000_000_000, kind: 'block', phase: 'blocked', target: '198.18.0.66/32', origin: 'manual', reason: 'a=b\\c\nforged line', actor: 'cli:alice@host1',
    };
    const line = cefLine({ phase: 'opened', event: block, changes: [] });
    expect(line).toBe('CEF:0|xdp-ids|xdp-ids|0.1.0|block-blocked|Block blocked: 198.18.0.66/32|1|rt=1700000000000 externalId=b1 cat=block/opened src=198.18.0.66 act=blocked '
      + 'suser=cli:alice@host1 msg=a\\=b\\\\c forged line cs3Label=target cs3=198.18.0.66/32');
    const title = cefLine({ phase: 'opened', event: incidentEvent('opened', incident({ title: 'scan | with \\ pipe' })), changes: [] });
    expect(title).toContain('|scan \\| with \\\\ pipe|8|');
  });
});
