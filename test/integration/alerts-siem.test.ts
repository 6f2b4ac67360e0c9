/**
 * The SIEM formats with the real alerter on a real Redis. Webhooks `format: ecs` and `format: ocsf`
 * to a real HTTP receiver that verifies their signatures: one event a line. The syslog receiver
 * with the real alerter on a real Redis, to real TCP and TLS listeners: RFC
 * 5424 messages, one per event, framed by octet counting or newlines as configured, the MSG the
 * event's ECS document or a CEF line; a collector whose certificate the configured CA did not sign
 * gets nothing and the delivery is dead-lettered; a collector that is down is retried until it is up.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { RedisClient } from '../../common/redis';
import { parseConfig } from '../../alerts/config';
import { listDeadLetters } from '../../alerts/dead-letters';
import { startAlerterWith, type Alerter } from '../../alerts/service';
import { ALERTS_QUEUE, type AlertEvent } from '../../common/alert-events';
import { connectRedis } from '../../common/redis';
import { incident, incidentEvent } from '../support/alert-fixtures';
import { quietLogger } from '../support/quiet-logger';
import { testRedis, type TestRedis } from '../support/redis';
import { startSyslogCollector, type SyslogCollector } from '../support/syslog-collector';
import { startTestWebhookReceiver } from '../support/webhook-receiver';
import { makeTestCertificates, testPki, type TestCertificates } from '../support/tls';
import { until } from '../support/until';

/** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG` */
const RFC5424 = /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (\S{1,255}) (\S{1,48}) (\d+) (\S{1,32}) - (.*)$/s;

describe('SIEM receivers: ECS and OCSF webhooks, syslog over TCP and TLS', () => {
  let redis: TestRedis;
  let client: RedisClient;
  let queue: Queue<AlertEvent>;
  let dir: string;
  let certs: TestCertificates;
  const collectors: SyslogCollector[] = [];
  let alerter: Alerter | undefined;

  beforeAll(async () => {
    redis = await testRedis();
    client = connectRedis(redis.url);
    queue = new Queue(ALERTS_QUEUE, { connection: client });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-syslog-'));
    for (const sub of ['pki', 'other']) fs.mkdirSync(path.join(dir, sub));
    certs = makeTestCertificates(path.join(dir, 'pki'));
  });

  afterAll(async () => {
    await alerter?.stop();
    for (const c of collectors) await c.close();
    await queue.close();
    client.disconnect();
    await redis.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function collector(withTls: boolean): Promise<SyslogCollector> {
    const c = await startSyslogCollector(withTls ? { tls: certs } : {});
    collectors.push(c);
    return c;
  }

  test('TLS with octet counting and JSON (ECS), TCP with newlines and CEF, TLS with CEF; a wrong CA is dead-lettered; a collector that is down is retried', async () => {
    const [tlsJson, tcpCef, tlsCef, wrongCa] = [await collector(true), await collector(false), await collector(true), await collector(true)];
    fs.writeFileSync(path.join(dir, 'ca.pem'), certs.ca);
    const otherCa = testPki(path.join(dir, 'other')).ca;
    const laterPort = (await collector(false)).port;
    await collectors.pop()!.close();
    const receivers = [
      `{ name: siem-tls, syslog: { host: 127.0.0.1, port: ${tlsJson.port}, ca_file: ${JSON.stringify(path.join(dir, 'ca.pem'))} } }`,
      `{ name: siem-tcp, syslog: { host: 127.0.0.1, port: ${tcpCef.port}, transport: tcp, allow_plain_tcp: true, format: cef, framing: newline, facility: local4, app_name: ids } }`,
      `{ name: siem-cef, syslog: { host: localhost, port: ${tlsCef.port}, ca_file: ${JSON.stringify(path.join(dir, 'ca.pem'))}, format: cef } }`,
      `{ name: siem-wrong-ca, attempts: 2, syslog: { host: 127.0.0.1, port: ${wrongCa.port}, ca_file: ${JSON.stringify(otherCa)} } }`,
      `{ name: siem-later, attempts: 20, syslog: { host: 127.0.0.1, port: ${laterPort}, transport: tcp, allow_plain_tcp: true } }`,
    ];
    const config = parseConfig(`
defaults: { group_wait: 100ms, group_interval: 1s }
delivery: { backoff: 200ms, max_backoff: 500ms }
receivers: [${receivers.join(', ')}]
routes: [{ matchers: [kind=incident], receivers: [siem-tls, siem-tcp, siem-cef, siem-wrong-ca, siem-later] }]
`, 'test');
    alerter = await startAlerterWith(config, { redisUrl: redis.url, log: quietLogger });
    const opened = incidentEvent('opened', incident({ title: 'SYN port scan | with = and \\ in it' }));
    await queue.add(opened.kind, opened, { jobId: opened.id });

    await until('the three collectors got the event', () => tlsJson.messages.length >= 1 && tcpCef.messages.length >= 1 && tlsCef.messages.length >= 1, 30_000);
    for (const c of [tlsJson, tcpCef, tlsCef]) expect(c.errors).toEqual([]);

    // TLS, octet counting, the ECS document; facility authpriv (10) and severity error (3) for a high incident.
    expect(tlsJson.messages).toHaveLength(1);
    const [, pri, timestamp, host, app, , msgid, msg] = RFC5424.exec(tlsJson.messages[0].text)!;
    expect({ framing: tlsJson.messages[0].framing, pri: Number(pri), timestamp, host, app, msgid }).toEqual({
      framing: 'octet-counting', pri: 10 * 8 + 3, timestamp: new Date(opened.atMs).toISOString(), host: os.hostname(), app: 'xdp-ids', msgid: 'incident-opened',
    });
    expect(JSON.parse(msg)).toMatchObject({ ecs: { version: '8.17.0' }, event: { id: opened.id, kind: 'alert' }, source: { ip: '198.18.0.66' }, rule: { id: 'scan.syn-ports' } });

    // TCP, newline framing, CEF, facility local4 (20), app name ids.
    const tcp = RFC5424.exec(tcpCef.messages[0].text)!;
    expect({ framing: tcpCef.messages[0].framing, pri: Number(tcp[1]), app: tcp[4] }).toEqual({ framing: 'newline', pri: 20 * 8 + 3, app: 'ids' });
    expect(tcp[7]).toMatch(/^CEF:0\|xdp-ids\|xdp-ids\|[\d.]+\|scan\.syn-ports\|SYN port scan \\\| with = and \\\\ in it\|8\|rt=\d+ externalId=\S+ cat=incident\/opened src=198\.18\.0\.66 /);
    expect(tcp[7]).toContain(' act=blocked 198.18.0.66/32 ');
    expect(tlsCef.messages[0]).toMatchObject({ framing: 'octet-counting', text: expect.stringContaining(' - CEF:0|xdp-ids|') });

    // The wrong CA: nothing reached its collector (the handshake failed), no retry, and the delivery is a dead letter saying why.
    const dead = await until('the wrong-CA delivery is dead-lettered', async () => (await listDeadLetters(client)).find((d) => d.receiver === 'siem-wrong-ca'), 30_000);
    expect(dead.error).toMatch(/certificate does not verify/);
    expect(dead.attempts).toBe(1);
    expect(wrongCa.messages).toEqual([]);
    expect(wrongCa.errors[0]).toMatch(/^tls: /);

    // The collector that was down: the delivery is retried until it listens.
    const later = await startSyslogCollector({ port: laterPort });
    collectors.push(later);
    await until('the retried delivery reached the collector once it listened', () => later.messages.length >= 1, 30_000);
    expect(JSON.parse(RFC5424.exec(later.messages[0].text)![7])).toMatchObject({ event: { id: opened.id } });
  }, 90_000);

  test('webhooks with format ecs and ocsf: signed, application/x-ndjson, one event a line, the attack as one OCSF finding through its life', async () => {
    const secret = 'siem-webhook-secret-0123456789abcdef';
    const hooks = await startTestWebhookReceiver(secret);
    const env = { SIEM_SECRET: secret };
    const config = parseConfig(`
defaults: { group_wait: 100ms, group_interval: 200ms }
receivers:
  - { name: elastic, webhook: { url: '${hooks.url}?ecs', allow_http: true, secret_env: SIEM_SECRET, format: ecs } }
  - { name: lake, webhook: { url: '${hooks.url}?ocsf', allow_http: true, secret_env: SIEM_SECRET, format: ocsf } }
routes: [{ matchers: [kind=incident], receivers: [elastic, lake] }]
`, 'test', env);
    await alerter?.stop();
    alerter = await startAlerterWith(config, { redisUrl: redis.url, log: quietLogger });
    try {
      const inc = incident({ id: 'inc-siem', key: '198.18.0.77' });
      const opened = incidentEvent('opened', inc);
      await queue.add(opened.kind, opened, { jobId: opened.id });
      await hooks.waitFor((reqs) => reqs.length >= 2);
      const resolved = incidentEvent('resolved', { ...inc, resolvedMs: Date.now() });
      await queue.add(resolved.kind, resolved, { jobId: resolved.id });
      await hooks.waitFor((reqs) => reqs.length >= 4);
      expect(hooks.rejected).toBe(0);
      expect(hooks.requests.map((r) => r.contentType)).toEqual(Array(4).fill('application/x-ndjson'));
      const lines = hooks.requests.flatMap((r) => r.body as Record<string, any>[]);
      const ecs = lines.filter((l) => l.ecs);
      const ocsf = lines.filter((l) => l.class_uid);
      expect(ecs.map((d) => [d.event.id, d.event.kind, d.source.ip])).toEqual([[opened.id, 'alert', '198.18.0.77'], [resolved.id, 'alert', '198.18.0.77']]);
      expect(ocsf.map((e) => [e.class_uid, e.activity_id, e.status_id, e.finding_info.uid, e.metadata.uid])).toEqual([[2004, 1, 1, 'inc-siem', opened.id], [2004, 3, 4, 'inc-siem', resolved.id]]);
    } finally {
      await hooks.stop();
    }
  });
});
