import { parseConfig } from '../../alerts/config';
import { BACKOFF_TYPE, backoffStrategy } from '../../alerts/deliveries';
import { matchingRoutes } from '../../alerts/ingest';
import { eventLabels } from '../../alerts/labels';
import { matchesAll, parseMatcher } from '../../alerts/matchers';
import { renderEmail, renderWebhookBody } from '../../alerts/render';
import { RetryableError } from '../../alerts/send-errors';
import { retryAfterMs } from '../../alerts/webhook';
import type { AlertEvent } from '../../common/alert-events';
import { incident, incidentEvent } from '../support/alert-fixtures';

const labels = { severity: ['high'], tag: ['scan', 'tcp'], source: ['198.18.0.66'] };

test.each([
  ['severity=high', true], ['severity!=high', false], ['severity=~hi.*', true], ['severity=~hi', false], ['severity!~low|info', true],
  ['tag=scan', true], ['tag=tcp', true], ['tag!=scan', false], ['tag=~sc.*', true], ['missing=', true], ['missing!=""', false], ['source="198.18.0.66"', true],
])('%s on %j is %s', (text, expected) => {
  expect(matchesAll([parseMatcher(text)], labels)).toBe(expected);
});

test('routes: the first match wins unless it says continue', () => {
  const config = parseConfig(`
receivers: [{ name: a, webhook: { url: 'https://x.test', secret_env: S } }]
routes:
  - { name: ops, matchers: [kind=exception], receivers: [a] }
  - { name: digest, matchers: ['severity=~info|low'], receivers: [a], continue: true }
  - { name: scans, matchers: [tag=scan], receivers: [a] }
  - { name: rest, receivers: [a] }
`, 'alerts.yaml', { S: 'x'.repeat(24) });
  const names = (sev: 'low' | 'high', tags: string[]): string[] => matchingRoutes(config, eventLabels(incidentEvent('opened', incident({ severity: sev, tags })))).map((r) => r.name);
  expect(names('low', ['scan'])).toEqual(['digest', 'scans']);
  expect(names('high', ['scan'])).toEqual(['scans']);
  expect(names('high', ['flood'])).toEqual(['rest']);
});

test('a block target and an incident key are the same source label', () => {
  expect(eventLabels(incidentEvent('opened', incident({ key: '198.18.0.66' }))).source).toEqual(['198.18.0.66']);
  expect(eventLabels({ v: 1, id: 'b', atMs: 0, kind: 'block', phase: 'blocked', target: '198.18.0.66/32', origin: 'rule' }).source).toEqual(['198.18.0.66']);
  expect(eventLabels({ v: 1, id: 'b', atMs: 0, kind: 'block', phase: 'blocked', target: 'fd00:18::/64', origin: 'rule' }).source).toEqual(['fd00:18::/64']);
});

test('backoff doubles with ±50% jitter up to the cap, and Retry-After wins', () => {
  const strategy = backoffStrategy(1000, 10_000);
  for (let i = 0; i < 50; i++) {
    const first = strategy(1, BACKOFF_TYPE, new RetryableError('x'));
    const third = strategy(3, BACKOFF_TYPE, new RetryableError('x'));
    const tenth = strategy(10, BACKOFF_TYPE, new RetryableError('x'));
    expect(first).toBeGreaterThanOrEqual(500);
    expect(first).toBeLessThanOrEqual(1500);
    expect(third).toBeGreaterThanOrEqual(2000);
    expect(third).toBeLessThanOrEqual(6000);
    expect(tenth).toBeLessThanOrEqual(15_000);
  }
  expect(strategy(1, BACKOFF_TYPE, new RetryableError('429', 7000))).toBe(7000);
  expect(strategy(1, BACKOFF_TYPE, new RetryableError('429', 70_000))).toBe(10_000);
});

test('Retry-After in seconds or as an HTTP date', () => {
  const now = Date.UTC(2025, 0, 1, 0, 0, 0);
  expect(retryAfterMs('120', now)).toBe(120_000);
  expect(retryAfterMs('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
  expect(retryAfterMs('soon', now)).toBeUndefined();
  expect(retryAfterMs(null, now)).toBeUndefined();
});

describe('rendering', () => {
  const hostile = incident({
    title: '<img src=x onerror=alert(1)>', description: '"quoted" & <b>bold</b>', ruleId: 'r\r\nBcc: evil@example.test',
    evidence: [{ ...incident().evidence[0], tcpFlags: '<script>' }],
    explanation: [{ feature: 'syn', value: 900, share: 0.81 }, { feature: 'rst', value: 3, share: 0.1 }],
  });
  const notification = { id: 'n1', route: 'soc', groupLabels: {}, createdMs: 0, items: [{ phase: 'opened' as const, event: incidentEvent('opened', hostile), changes: [] }] };

  test('HTML escapes every value; the subject has no line breaks', () => {
    const email = renderEmail(notification, '{{title}} {{ruleId}}');
    expect(email.html).not.toMatch(/<img|<script>|<b>/);
    expect(email.html).toContain('&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;');
    expect(email.html).toContain('&quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt;');
    expect(email.html).toContain('<td>&lt;script&gt;</td>');
    expect(email.subject).toBe('<img src=x onerror=alert(1)> r Bcc: evil@example.test');
  });

  test('model detections list their top features', () => {
    const email = renderEmail(notification);
    expect(email.text).toContain('syn = 900 (81% of the anomaly score)');
    expect(email.html).toContain('<td>syn</td><td align="right">900</td><td align="right">81%</td>');
  });

  test('block and limit notices say which they are about', () => {
    const notice = (event: Record<string, unknown>) => renderEmail({
      id: 'n2', route: 'soc', groupLabels: {}, createdMs: 0,
      items: [{ phase: 'opened' as const, event: { v: 1, id: 'b', atMs: 0, kind: 'block', origin: 'rule', ...event } as never, changes: [] }],
    }, '{{title}}').subject;
    expect(notice({ phase: 'expired', target: '198.18.0.66/32' })).toBe('Block expired: 198.18.0.66/32');
    expect(notice({ phase: 'expired', action: 'limit', traffic: 'syn', target: '198.18.0.1', perSecond: 1000 })).toBe('Limit expired: SYNs to 198.18.0.1 (1,000/s)');
    expect(notice({ phase: 'unlimited', action: 'limit', traffic: 'udp-amp', target: '198.18.0.1' })).toBe('Limit removed: UDP from amplifier ports to 198.18.0.1');
    expect(notice({ phase: 'limited', action: 'limit', traffic: 'fragments', target: '198.18.0.1', perSecond: 50 })).toBe('Limit set: IP fragments to 198.18.0.1 (50/s)');
  });

  test('an overflow incident says how many sources it stands for, with examples, and gives no address to SIEMs', () => {
    const overflow = incident({
      key: '*', title: 'SYN flood from one source (many sources)', block: undefined,
      overflow: { keys: 4912, sampleKeys: Array.from({ length: 20 }, (_, i) => `10.0.0.${i + 1}`) },
    });
    const n = { id: 'n3', route: 'soc', groupLabels: {}, createdMs: 0, items: [{ phase: 'opened' as const, event: incidentEvent('opened', overflow), changes: [] }] };
    const email = renderEmail(n);
    expect(email.subject).toBe('[HIGH] OPENED: SYN flood from one source (many sources) — about 4,912 sources → 198.18.0.10 — alert only');
    expect(email.text).toContain("Folded:   about 4,912 sources beyond the rule's maximum of open incidents "
      + '(e.g. 10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5 +15 more); this incident never blocks');
    expect(email.html).toContain('<th align="left">Folded</th><td>about 4,912 sources');
    const alert = (JSON.parse(renderWebhookBody(n, 'json')) as { alerts: Record<string, unknown>[] }).alerts[0];
    expect(alert.source).toBeUndefined();
    expect(alert.xdp_ids).toMatchObject({ incident: { key: '*', overflow: { keys: 4912 } } });
  });

  test('the Slack body escapes &, < and >', () => {
    const body = JSON.parse(renderWebhookBody(notification, 'slack')) as { text: string };
    expect(body.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(body.text).not.toContain('<img');
  });

  describe('text from outside', () => {
    const forged = 'scan\r\nBcc: evil@example.test\n\n```\n<!channel> `rm -rf` \u202egnp.exe\u001b[2J';
    const tainted = incident({ title: forged, description: forged, key: '198.18.0.66\n', ruleId: 'r\u202e1', evidence: [{ ...incident().evidence[0], tcpFlags: 'S\nFAKE' }] });
    const note = (event: AlertEvent) => ({ id: 'n3', route: 'soc', groupLabels: {}, createdMs: 0, items: [{ phase: 'opened' as const, event, changes: [] }] });
    const manual: AlertEvent = { v: 1, id: 'b', atMs: 0, kind: 'block', phase: 'blocked', target: '198.18.0.66/32', origin: 'manual', reason: forged, actor: 'api:ops\u202e' };

    test('every value of the text part is one line without controls or bidi characters', () => {
      for (const event of [incidentEvent('opened', tainted), manual]) {
        const { subject, text, html } = renderEmail(note(event));
        for (const part of [subject, text, html]) expect(part).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
        expect(text).not.toMatch(/^Bcc:/m);
        expect(text).toContain('scan Bcc: evil@example.test ``` <!channel> `rm -rf` gnp.exe[2J');
        expect(subject).not.toMatch(/[\r\n]/);
      }
    });

    test('a backtick cannot close the Slack code block, nor a value mention anyone', () => {
      const body = (JSON.parse(renderWebhookBody(note(manual), 'slack')) as { text: string }).text;
      expect(body.match(/```/g)).toHaveLength(2);
      expect(body.endsWith('```')).toBe(true);
      expect(body).not.toContain('<!channel>');
      expect(body).toContain('\u02cbrm -rf\u02cb');
    });

    test('the JSON payload keeps full values where machines read them and one line where people do', () => {
      const [alert] = (JSON.parse(renderWebhookBody(note(incidentEvent('opened', tainted)), 'json')) as { alerts: any[] }).alerts;
      expect(alert.message).toBe('scan Bcc: evil@example.test ``` <!channel> `rm -rf` gnp.exe[2J');
      expect(alert.rule.name).toBe(alert.message);
      expect(alert.xdp_ids.incident.title).toBe(forged);
      const [block] = (JSON.parse(renderWebhookBody(note(manual), 'json')) as { alerts: any[] }).alerts;
      expect(block.message).toBe('Block blocked: 198.18.0.66/32 by api:ops');
      expect(block.user).toEqual({ name: 'api:ops\u202e' });
      expect(block.xdp_ids.block).toMatchObject({ reason: forged, actor: 'api:ops\u202e' });
    });
  });

  test('operator changes say who made them: email, Slack and webhook payload', () => {
    const event = (over: Record<string, unknown>): AlertEvent => ({ v: 1, id: 'b', atMs: 0, kind: 'block', origin: 'manual', target: '10.20.0.0/16', ...over }) as AlertEvent;
    const note = (e: AlertEvent) => ({ id: 'n4', route: 'soc', groupLabels: {}, createdMs: 0, items: [{ phase: 'opened' as const, event: e, changes: [] }] });
    const allowed = event({ action: 'allow', phase: 'allowed', reason: 'office', actor: 'cli:alice@host1' });
    const email = renderEmail(note(allowed));
    expect(email.subject).toBe('[INFO] OPENED: Allow entry added: 10.20.0.0/16 — 10.20.0.0/16 → this host — allowed: never blocked from now on');
    expect(email.text).toContain('What:     office\nAction:   allowed: never blocked from now on\nBy:       cli:alice@host1\n');
    expect(email.html).toContain('<tr><th align="left">By</th><td class="actor">cli:alice@host1</td></tr>');
    expect(renderEmail(note(event({ action: 'allow', phase: 'disallowed', actor: 'api:ops' })), '{{title}} by {{actor}}').subject).toBe('Allow entry removed: 10.20.0.0/16 by api:ops');
    expect((JSON.parse(renderWebhookBody(note(allowed), 'slack')) as { text: string }).text).toContain('By:       cli:alice@host1');
    const [alert] = (JSON.parse(renderWebhookBody(note(allowed), 'json')) as { alerts: any[] }).alerts;
    expect(alert).toMatchObject({ message: 'Allow entry added: 10.20.0.0/16 by cli:alice@host1', user: { name: 'cli:alice@host1' }, xdp_ids: { block: { action: 'allow', phase: 'allowed', actor: 'cli:alice@host1' } } });
    expect(renderEmail(note(event({ phase: 'expired', target: '198.18.0.66/32', origin: 'rule' }))).text).not.toContain('By:');
  });

  test('a template can neither call helpers that are not built in nor reach prototypes', () => {
    expect(() => renderEmail(notification, '{{exec "id"}}')).toThrow(/exec/);
    expect(renderEmail(notification, '[{{lookup title "constructor"}}]').subject).toBe('[]');
  });
});
