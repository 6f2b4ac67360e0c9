import type { Incident } from '../../common/alert-events';
import type { Detection } from '../../detector/rules/engine';
import { AwaitingEvidence } from '../../detector/awaiting-evidence';

const incident = (key: string, ruleId: string): Incident => ({ key, ruleId } as Incident);
const detection = (key: string, ruleId: string): Detection => ({ key, ruleId } as Detection);

describe('sources awaiting evidence', () => {
  test('a source waits with each rule that blocked it, until that rule is done with it', () => {
    const awaiting = new AwaitingEvidence(10);
    awaiting.add(detection('198.18.0.1', 'scan'), incident('198.18.0.1', 'scan'));
    awaiting.add(detection('198.18.0.1', 'flood'), incident('198.18.0.1', 'flood'));
    awaiting.add(detection('198.18.0.2', 'scan'), incident('198.18.0.2', 'scan'));
    expect(awaiting.of('198.18.0.1').map((a) => a.incident.ruleId)).toEqual(['scan', 'flood']);
    awaiting.delete('198.18.0.1', 'scan');
    expect(awaiting.of('198.18.0.1').map((a) => a.detection.ruleId)).toEqual(['flood']);
    awaiting.delete('198.18.0.1', 'flood');
    expect(awaiting.of('198.18.0.1')).toEqual([]);
    expect(awaiting.of('198.18.0.9')).toEqual([]);
  });

  test('at its bound the oldest source is forgotten first, and a repeat takes no extra room', () => {
    const awaiting = new AwaitingEvidence(2);
    awaiting.add(detection('198.18.0.1', 'scan'), incident('198.18.0.1', 'scan'));
    awaiting.add(detection('198.18.0.2', 'scan'), incident('198.18.0.2', 'scan'));
    awaiting.add(detection('198.18.0.2', 'scan'), incident('198.18.0.2', 'scan'));
    expect(awaiting.of('198.18.0.1')).toHaveLength(1);
    awaiting.add(detection('198.18.0.3', 'scan'), incident('198.18.0.3', 'scan'));
    expect(awaiting.of('198.18.0.1')).toEqual([]);
    expect(awaiting.of('198.18.0.2')).toHaveLength(1);
    expect(awaiting.of('198.18.0.3')).toHaveLength(1);
  });
});
