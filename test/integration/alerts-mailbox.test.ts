/**
 * The mailbox receiver against a real redis-server: incidents become emails appended to an mbox
 * file (what `xdp-ids run` uses without an alerts config), parsed back with mailparser; a burst
 * for one incident is one message, a hostile description stays on its line, and a body line
 * starting with "From " cannot split a message.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { simpleParser } from 'mailparser';
import type { AlertEvent } from '../../common/alert-events';
import { ALERTS_QUEUE } from '../../common/alert-events';
import { connectRedis, startEmbeddedRedis, type EmbeddedRedis } from '../../common/redis';
import { mailboxConfig } from '../../alerts/config';
import { appendToMailbox } from '../../alerts/mailbox';
import { startAlerterWith, type Alerter } from '../../alerts/service';
import { incident, incidentEvent } from '../support/alert-fixtures';
import { quietLogger } from '../support/quiet-logger';

/** Messages of an mboxrd file: split at separator lines, one level of `>From ` quoting undone. */
function messages(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split(/^From xdp-ids .*\n/m).slice(1).map((m) => m.replace(/^>(>*From )/gm, '$1'));
}

test('incidents arrive in the mailbox as one parseable email each', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-mailbox-'));
  const file = path.join(dir, 'alerts.mbox');
  const redisServer: EmbeddedRedis = await startEmbeddedRedis();
  const redis = connectRedis(redisServer.url);
  const queue = new Queue<AlertEvent>(ALERTS_QUEUE, { connection: redis });
  let alerter: Alerter | undefined;
  try {
    alerter = await startAlerterWith(mailboxConfig(file), { redisUrl: redisServer.url, log: quietLogger });
    const scan = incident({ id: 'inc-box-1', description: 'Probes many ports.\nFrom here on the text is hostile: a line that starts like an mbox separator.' });
    for (let i = 0; i < 50; i++) {
      const e = incidentEvent(i === 0 ? 'opened' : 'updated', { ...scan, detections: i + 1 });
      await queue.add(e.kind, e, { jobId: e.id });
    }
    const flood = incidentEvent('opened', incident({ id: 'inc-box-2', title: 'SYN flood from one source', key: '198.18.0.77' }));
    await queue.add(flood.kind, flood, { jobId: flood.id });
    const deadline = Date.now() + 20_000;
    while (messages(file).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 3000)); // a second message for the burst would come within group_wait
    const parsed = await Promise.all(messages(file).map((m) => simpleParser(m)));
    expect(parsed.map((m) => m.subject).sort()).toEqual([
      expect.stringMatching(/^\[HIGH\] OPENED: SYN flood from one source — 198\.18\.0\.77/),
      expect.stringMatching(/^\[HIGH\] OPENED: SYN port scan — 198\.18\.0\.66/),
    ]);
    const scanMail = parsed.find((m) => m.subject!.includes('port scan'))!;
    expect(scanMail.text).toContain('What:     Probes many ports. From here on the text is hostile');
    expect(scanMail.text).toContain('xdp-ids block del 198.18.0.66/32');
    expect(scanMail.html).toContain('198.18.0.66');
    expect(scanMail.from!.value[0].address).toBe('xdp-ids@localhost');
    await appendToMailbox({ name: 'box', type: 'mailbox', attempts: 1, path: file, from: 'a@localhost', to: ['b@localhost'] },
      { subject: 's', text: 'first line\nFrom here on the text is hostile', html: '' }, '<m@localhost>');
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^>From here on/m);
    expect(messages(file)).toHaveLength(3);
  } finally {
    await alerter?.stop();
    await queue.close();
    redis.disconnect();
    await redisServer.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
