import { arrange, destinationsOf } from '../../detector/attacks';
import { headerSample, incident } from '../support/alert-fixtures';

const inhibits = (rule: string): string[] => ({ 'scan-tcp-vertical': ['scan-tcp-slow', 'flood-syn', 'model.anomaly'] } as Record<string, string[]>)[rule] ?? [];

test('the incidents no other subsumes come first, by severity and then opening; a rule subsumes only incidents of its own key', () => {
  const of = (ruleId: string, key: string, severity: 'low' | 'medium' | 'high', openedMs: number) => incident({ id: `${ruleId}@${key}`, ruleId, key, severity, openedMs });
  const arranged = arrange([
    of('scan-tcp-slow', 'a', 'low', 1), of('flood-syn', 'a', 'high', 2), of('model.anomaly', 'a', 'medium', 9), of('scan-tcp-vertical', 'a', 'medium', 3),
    of('flood-syn', 'b', 'high', 5), of('scan-tcp-vertical', 'c', 'medium', 0),
  ], inhibits);
  expect(arranged.map((i) => [i.id, i.subsumedBy])).toEqual([
    ['flood-syn@b', undefined], ['scan-tcp-vertical@c', undefined], ['scan-tcp-vertical@a', undefined],
    ['flood-syn@a', 'scan-tcp-vertical'], ['model.anomaly@a', 'scan-tcp-vertical'], ['scan-tcp-slow@a', 'scan-tcp-vertical'],
  ]);
});

test("an incident's destinations are its key's sampled packets' (source scope) or its key (destination scope)", () => {
  const evidence = [headerSample({ src: '198.18.0.66', dst: '198.18.0.10' }), headerSample({ src: '198.18.0.66', dst: '198.18.0.11' }), headerSample({ src: '198.18.0.9', dst: '198.18.0.66' })];
  expect(destinationsOf(incident({ key: '198.18.0.66', evidence }))).toEqual(['198.18.0.10', '198.18.0.11']);
  expect(destinationsOf(incident({ scope: 'destination', key: '198.18.0.10', evidence }))).toEqual(['198.18.0.10']);
  expect(destinationsOf(incident({ key: '198.18.0.0/24', evidence: [] }))).toEqual([]);
});
