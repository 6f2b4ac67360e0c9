/** Blocks and destination limits in the ledger: add, extend, remove; kept current by the live feed. */
import { api } from '../api.js';
import { fill, h, politeRedraw, route, table } from '../dom.js';
import { ago, time } from '../format.js';
import { onLive } from '../live.js';
import type { BlockEntry, LimitEntry } from '../types.js';
import { apiForm, input } from './forms.js';
import { extend, removeBlock, removeLimit } from './ledger-actions.js';
import type { Page } from './page.js';

const TRAFFIC = ['syn', 'syn-ack', 'udp-amp', 'fragments'];

export const blocksPage: Page = async (view) => {
  const blocks = h('div');
  const limits = h('div');
  const load = async (): Promise<void> => {
    const [b, l] = await Promise.all([api<{ blocks: BlockEntry[] }>('GET', '/v1/blocks'), api<{ limits: LimitEntry[] }>('GET', '/v1/limits')]);
    fill(blocks, table('blocks', ['target', 'expires', 'origin', 'evidence', 'rule', 'actor', 'reason', 'strikes', 'scope', ''], b.blocks.map((e) => [
      e.target, `${time(e.expiresMs)} (${ago(e.expiresMs)})`, e.origin, e.evidence,
      e.ruleId && e.key ? h('a', { href: route('incident', e.ruleId, e.key) }, e.ruleId) : e.ruleId ?? '-', e.actor ?? '-', e.reason, e.strikes, e.scope,
      h('div', {}, removeBlock(e, reload), extend('block', e, reload)),
    ]), 'No active blocks.'));
    fill(limits, table('limits', ['address', 'traffic', 'per second', 'expires', 'origin', 'rule', 'reason', ''], l.limits.map((e) => [
      e.target, e.traffic, e.perSecond, `${time(e.expiresMs)} (${ago(e.expiresMs)})`, e.origin, e.ruleId ?? '-', e.reason,
      h('div', {}, removeLimit(e, reload), extend('limit', e, reload)),
    ]), 'No active limits.'));
  };
  const reload = (): void => void load();
  const traffic = h('select', { name: 'traffic' }, ...TRAFFIC.map((t) => h('option', { value: t }, t)));
  fill(view,
    h('h1', {}, 'Blocks & limits'),
    h('h2', {}, 'Blocks'),
    apiForm('add-block', '/v1/blocks', [['Address or CIDR', input('target', '203.0.113.7', true)], ['TTL', input('ttl', '1h')], ['Reason', input('reason', 'manual block')],
      ['Sensor', input('scope', 'all')]], 'Block', reload),
    blocks,
    h('h2', {}, 'Destination limits'),
    apiForm('add-limit', '/v1/limits', [['Protected address', input('target', '198.51.100.10', true)], ['Traffic', traffic], ['Packets/s', input('rate', '1000', true)],
      ['TTL', input('ttl', '1h')], ['Reason', input('reason', 'manual limit')]], 'Limit', reload),
    limits);
  await load();
  const update = politeRedraw(view, reload);
  return onLive((event) => {
    if (event === 'ledger') update();
  });
};
