import { problemsOf } from '../../common/fleet-status';

const NOW = 1_000_000;
const beat = (id: string, health: 'alive' | 'late', state: unknown) => ({ id, host: 'h', pid: 1, startedMs: 0, atMs: NOW - (health === 'alive' ? 1000 : 30_000), state, health });

describe('what makes a deployment degraded', () => {
  const detector = beat('d1', 'alive', { partitions: [0, 1], model: null, rulesVersion: 'v' });
  const alerter = beat('a1', 'alive', { receivers: ['mail'], routes: 1 });

  test('every part alive and every partition consumed: nothing', () => {
    expect(problemsOf({ atMs: NOW, sensors: [{ sensor: 's1', health: 'alive' }], detectors: [detector] as never, alerters: [alerter] as never, partitions: ['d1', 'd1'] })).toEqual([]);
  });

  test('a cleanly stopped sensor is not a problem; a late one, a late detector, an unconsumed partition and a missing alerter are', () => {
    const problems = problemsOf({
      atMs: NOW, sensors: [{ sensor: 'gone', health: 'stopped' }, { sensor: 'quiet', health: 'late' }],
      detectors: [detector, beat('d2', 'late', {})] as never, alerters: [], partitions: ['d1', null],
    });
    expect(problems).toEqual([
      'sensor quiet stopped reporting',
      'detector d2 stopped reporting 30 s ago',
      'no sensor is running: no traffic is watched and no block is enforced by a sensor',
      'no alerter is running: alerts wait in the queue',
      '1 of 2 windows partitions have no detector (1)',
    ]);
  });

  test('a sensor whose kernel does not hold the ledger yet is a problem until it has re-synced', () => {
    expect(problemsOf({ atMs: NOW, sensors: [{ sensor: 'restarted', health: 'syncing' }], detectors: [detector] as never, alerters: [alerter] as never, partitions: ['d1'] }))
      .toEqual(['sensor restarted has not synced its blocks with the ledger yet: its kernel may lack blocks']);
  });

  test('no sensor at all', () => {
    expect(problemsOf({ atMs: NOW, sensors: [], detectors: [detector] as never, alerters: [alerter] as never, partitions: ['d1'] }))
      .toEqual(['no sensor is running: no traffic is watched and no block is enforced by a sensor']);
  });

  test('no detector at all', () => {
    expect(problemsOf({ atMs: NOW, sensors: [{ sensor: 's1', health: 'alive' }], detectors: [], alerters: [alerter] as never, partitions: [null] })).toEqual([
      'no detector is running: windows wait in the queues and no incident opens or resolves', '1 of 1 windows partitions have no detector (0)',
    ]);
  });
});
