/**
 * The key layout a Redis Cluster needs (docs/redis-keys.md): each family that scripts span sits
 * in one slot, the windows partitions spread evenly over the slot space, and the roles' ACL
 * patterns still match the names the code makes.
 */
import clusterKeySlot from 'cluster-key-slot';
import { DELIVERY_QUEUE, FLUSH_QUEUE, keys } from '../../alerts/keys';
import { LIVE_SENSORS, NS, sensorKey } from '../../blocking/ledger';
import { ALERTS_QUEUE } from '../../common/alert-events';
import { KEY_MAP } from '../../common/redis-roles';
import { PARTITIONS, partitionQueue } from '../../common/windows-jobs';
import { INCIDENTS_PREFIX } from '../../detector/incidents';

/** Redis' glob (the subset ACL key patterns here use: `*` and literal text). */
function globMatches(pattern: string, key: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(key);
}

const slots = (names: string[]): Set<number> => new Set(names.map((n) => clusterKeySlot(n)));

test('the ledger, the sensors\' keys, the incidents and the alerter\'s state each sit in one slot', () => {
  expect(slots([`${NS}block:198.18.0.1/32`, `${NS}blocks`, `${NS}blocks:rev`, `${NS}allow`, `${NS}dstlimit:syn|198.18.0.1`, sensorKey('s1', 'allow'), LIVE_SENSORS, `${NS}ledger:epoch`]).size).toBe(1);
  expect(slots([`${INCIDENTS_PREFIX}:inc:scan|198.18.0.1`, `${INCIDENTS_PREFIX}:incidents:open`, `${INCIDENTS_PREFIX}:attack:a1`, `${INCIDENTS_PREFIX}:attacks:by-key`]).size).toBe(1);
  expect(slots([keys.pending('g'), keys.taken('f'), keys.nextFlush('g'), keys.deadLetters, keys.deadLetterOrder, keys.sent('d')]).size).toBe(1);
  for (const queue of [ALERTS_QUEUE, FLUSH_QUEUE, DELIVERY_QUEUE, partitionQueue(7)]) {
    expect(slots([`bull:${queue}:wait`, `bull:${queue}:active`, `bull:${queue}:meta`, `bull:${queue}:42`]).size).toBe(1);
  }
});

test('partition p\'s queue lies in the p-th sixteenth of the slot space, so equal slot ranges hold equal shares', () => {
  const share = 16_384 / PARTITIONS;
  const sixteenths = Array.from({ length: PARTITIONS }, (_, p) => Math.floor(clusterKeySlot(`bull:${partitionQueue(p)}:wait`) / share));
  expect(sixteenths).toEqual(Array.from({ length: PARTITIONS }, (_, p) => p));
  expect(partitionQueue(3)).toMatch(/^windows-3\{w3-\d+\}$/);
});

test('the roles\' key patterns match the names the code makes', () => {
  const cases: Array<[keyof typeof KEY_MAP, string]> = [
    ['ledger', `${NS}block:198.18.0.1/32`], ['ledger', `${NS}blocks:rev`], ['ledger', `${NS}dstlimit:syn|198.18.0.1`], ['ledger', `${NS}ledger:epoch`],
    ['sensors', sensorKey('s1', 'state')], ['sensors', LIVE_SENSORS],
    ['incidents', `${INCIDENTS_PREFIX}:inc:scan|198.18.0.1:peak`], ['incidents', `${INCIDENTS_PREFIX}:attacks:blocked`],
    ['alerterState', keys.sent('d1')], ['windowsQueues', `bull:${partitionQueue(15)}:wait`], ['alertsQueue', `bull:${ALERTS_QUEUE}:events`],
  ];
  for (const [family, key] of cases) expect([family, KEY_MAP[family].some((p) => globMatches(p, key))]).toEqual([family, true]);
  // And nothing of one family falls under another's patterns.
  expect(KEY_MAP.incidents.some((p) => globMatches(p, `${NS}blocks`))).toBe(false);
  expect(KEY_MAP.ledger.some((p) => globMatches(p, `${INCIDENTS_PREFIX}:inc:a|b`))).toBe(false);
});
