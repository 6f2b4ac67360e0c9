import { readableComparison, readableDuration, readableFeature, readableNumber, readableValue } from '../../alerts/readable';
import { renderEmail, renderWebhookBody } from '../../alerts/render';
import { incident, incidentEvent } from '../support/alert-fixtures';

test.each([
  [311.6666666666667, '312'], [1000, '1,000'], [1234567.8, '1,234,568'], [12.5, '13'], [5.004136962890625, '5'], [1.119, '1.1'],
  [0.2, '0.2'], [0.008333, '0.0083'], [0, '0'], [7, '7'], [-0.5, '-0.5'], [Number.POSITIVE_INFINITY, '∞'], [Number.NaN, 'n/a'],
])('readableNumber(%p) is %p', (value, text) => {
  expect(readableNumber(value)).toBe(text);
});

test.each([
  [311.6666666666667, 'packets/s', '312/s'], [2.5, 'packets/s', '2.5/s'], [1119.0740864065351, 'bits/s', '1.1 kbit/s'], [100_000_000, 'bits/s', '100 Mbit/s'],
  [999, 'bits/s', '999 bit/s'], [54, 'bytes', '54 B'], [128_000_000, 'bytes', '128 MB'], [1460.2, 'bytes', '1.5 kB'], [0.4999, 'ratio', '0.5'], [212.4, 'ports', '212'],
])('readableValue(%p, %p) is %p', (value, unit, text) => {
  expect(readableValue(value, unit)).toBe(text);
});

test.each([
  [5.004136962890625 * 1000, '5 s'], [1500, '1.5 s'], [250, '250 ms'], [300_000, '5 min'], [270_000, '4 min 30 s'], [7_500_000, '2 h 5 min'], [7_205_000, '2 h'],
  [3 * 86_400_000 + 4 * 3_600_000, '3 d 4 h'],
])('readableDuration(%p) is %p', (ms, text) => {
  expect(readableDuration(ms)).toBe(text);
});

test('features and comparisons take the unit of their feature; model features that of the feature they decay', () => {
  expect(readableFeature('source', 'bps', 1119.0740864065351)).toBe('1.1 kbit/s');
  expect(readableFeature('source', 'syn_per_s@60s', 311.7)).toBe('312/s');
  expect(readableFeature('destination', 'udp_amp_bytes', 2_950_000)).toBe('3 MB');
  expect(readableFeature('source', 'no_such_feature', 1.23456)).toBe('1.2');
  expect(readableComparison('source', 'syn_per_s >= 300', 311.6666666666667)).toBe('312/s');
  expect(readableComparison('destination', 'udp_amp_bps >= 100000000.0', 1e8)).toBe('100 Mbit/s');
  expect(readableComparison('source', '10.0 * syn < distinct_ports', 30)).toBe('30');
});

test('emails and Slack texts show rounded numbers; the JSON payload keeps the full values', () => {
  const flood = incident({
    windowMs: 5004.136962890625, when: 'syn_per_s >= 300 && ack_per_syn < 0.2',
    features: { syn_per_s: 311.6666666666667, ack_per_syn: 0.0033333, bps: 1119.0740864065351 }, peak: { syn_per_s: 350.25, ack_per_syn: 0.01, bps: 2_500_000.5 },
    conditions: [{ expression: 'syn_per_s >= 300', value: 311.6666666666667, threshold: 300, holds: true }, { expression: 'ack_per_syn < 0.2', value: 0.0033333, threshold: 0.2, holds: true }],
  });
  const n = { id: 'n1', route: 'soc', groupLabels: {}, createdMs: 0, items: [{ phase: 'opened' as const, event: incidentEvent('opened', flood), changes: [] }] };
  const { text, html } = renderEmail(n);
  expect(text).toContain('window 5 s');
  expect(text).toContain('syn_per_s >= 300: saw 312/s, threshold 300/s (tripped)');
  expect(text).toContain('ack_per_syn < 0.2: saw 0.0033, threshold 0.2 (tripped)');
  expect(text).toContain('bps: 1.1 kbit/s / 2.5 Mbit/s');
  expect(html).toContain('<td align="right">312/s</td>');
  for (const part of [text, html, (JSON.parse(renderWebhookBody(n, 'slack')) as { text: string }).text]) {
    expect(part).not.toMatch(/\d\.\d{5}/);
  }
  const alert = (JSON.parse(renderWebhookBody(n, 'json')) as { alerts: any[] }).alerts[0];
  expect(alert.xdp_ids.incident.features.syn_per_s).toBe(311.6666666666667);
  expect(alert.xdp_ids.incident.windowMs).toBe(5004.136962890625);
});
