import { RuleEngine, type Detection } from '../../detector/rules/engine';
import { destinationWindow, ruleSet, ruleYaml, sourceWindow, tick } from './rules-support';

function engineFor(fields: Record<string, string>, opts?: ConstructorParameters<typeof RuleEngine>[1]): RuleEngine {
  return new RuleEngine(ruleSet({ 'r.yaml': ruleYaml(fields) }), opts);
}

/** The windows (1-based tick numbers) at which the engine reported a detection for `key`. */
function firing(engine: RuleEngine, ticks: ReturnType<typeof tick>[], key?: string): number[] {
  return ticks.filter((t) => engine.process(t).some((d) => key === undefined || d.key === key)).map((t) => t.window);
}

const A = '198.18.0.1';
const B = '198.18.0.2';

describe('rule engine', () => {
  test('sums counters over the window, and forgets what slid out of it', () => {
    const engine = engineFor({ window: '3s', when: 'syn >= 30' });
    const ticks = [1, 2, 3, 4, 5, 6].map((w) => tick(w, [sourceWindow(A, { syn: 10 })]));
    expect(firing(engine, ticks)).toEqual([3, 4, 5, 6]);
    // After a silence longer than the window the sum starts again from zero.
    expect(firing(engine, [tick(10, [sourceWindow(A, { syn: 10 })]), tick(11, [sourceWindow(A, { syn: 10 })]), tick(12, [sourceWindow(A, { syn: 10 })])])).toEqual([12]);
  });

  test('a silent window inside the window still counts what came before it', () => {
    const engine = engineFor({ window: '3s', when: 'syn >= 20' });
    expect(firing(engine, [tick(1, [sourceWindow(A, { syn: 10 })]), tick(2), tick(3, [sourceWindow(A, { syn: 10 })])])).toEqual([3]);
  });

  test('rates and ratios are recomputed from the window sums', () => {
    const engine = engineFor({ window: '4s', when: 'syn_per_s >= 25.0 && ack_per_syn < 0.5' });
    const d = [1, 2, 3, 4].map((w) => engine.process(tick(w, [sourceWindow(A, { syn: 50, ackOnly: w === 1 ? 40 : 0 })]))).flat();
    expect(d.map((x) => x.window)).toEqual([2, 3, 4]);
    expect(d[0].features).toEqual({ syn_per_s: 25, ack_per_syn: 0.4 });
  });

  test('`for` needs the condition at every window for that long; a failing window restarts it', () => {
    const engine = engineFor({ window: '1s', for: '3s', when: 'syn >= 10' });
    const syn = (w: number, n: number) => tick(w, [sourceWindow(A, { syn: n })]);
    expect(firing(engine, [syn(1, 10), syn(2, 10), syn(3, 10), syn(4, 10), syn(5, 0), syn(6, 10), syn(7, 10), syn(8, 10)])).toEqual([3, 4, 8]);
  });

  test('`for` streaks survive silent windows only while the window still covers them', () => {
    const oneSecond = engineFor({ window: '1s', for: '3s', when: 'syn >= 10' });
    expect(firing(oneSecond, [tick(1, [sourceWindow(A, { syn: 10 })]), tick(2), tick(3, [sourceWindow(A, { syn: 10 })]), tick(4, [sourceWindow(A, { syn: 10 })])])).toEqual([]);
    const threeSeconds = engineFor({ window: '3s', for: '4s', when: 'syn >= 10' });
    expect(firing(threeSeconds, [tick(1, [sourceWindow(A, { syn: 10 })]), tick(2), tick(3, [sourceWindow(A, { syn: 10 })]), tick(4, [sourceWindow(A, { syn: 10 })])])).toEqual([4]);
  });

  test('onset marks the first detection of an episode', () => {
    const engine = engineFor({ when: 'syn >= 10' });
    const onsets = [10, 10, 0, 10].map((n, i) => engine.process(tick(i + 1, [sourceWindow(A, { syn: n })]))[0]?.onset);
    expect(onsets).toEqual([true, false, undefined, true]);
  });

  test('group_by src_prefix/24 sums every source of the prefix; IPv6 sources group by /64', () => {
    const engine = engineFor({ group_by: 'src_prefix/24', when: 'syn >= 10' });
    const d = engine.process(tick(1, [sourceWindow(A, { syn: 6 }), sourceWindow(B, { syn: 6 }), sourceWindow('198.18.1.1', { syn: 6 }), sourceWindow('2001:db8:0:1::5', { syn: 6 }), sourceWindow('2001:db8:0:1::9', { syn: 6 })]));
    expect(d.map((x) => [x.key, x.features.syn])).toEqual([['198.18.0.0/24', 12], ['2001:db8:0:1::/64', 12]]);
    expect(d[0].groupBy).toBe('src_prefix/24');
  });

  test('prefix lengths for both families', () => {
    const engine = engineFor({ group_by: 'src_prefix/16/48', when: 'syn >= 10' });
    const d = engine.process(tick(1, [sourceWindow(A, { syn: 6 }), sourceWindow('198.18.200.9', { syn: 6 }), sourceWindow('2001:db8:1:2::5', { syn: 6 }), sourceWindow('2001:db8:1:3::9', { syn: 6 })]));
    expect(d.map((x) => x.key)).toEqual(['198.18.0.0/16', '2001:db8:1::/48']);
  });

  test('except: listed sources never match, and do not count towards their prefix', () => {
    const engine = engineFor({ when: 'syn >= 10', except: '[198.18.0.0/31, "2001:db8::/32"]' });
    expect(engine.process(tick(1, [sourceWindow(A, { syn: 50 }), sourceWindow(B, { syn: 50 }), sourceWindow('2001:db8::1', { syn: 50 }), sourceWindow('2001:db9::1', { syn: 50 })])).map((d) => d.key))
      .toEqual([B, '2001:db9::1']);
    const prefix = engineFor({ group_by: 'src_prefix/24', when: 'syn >= 10', except: `[${A}]` });
    expect(prefix.process(tick(1, [sourceWindow(A, { syn: 50 }), sourceWindow(B, { syn: 5 })]))).toEqual([]);
  });

  test('IPv4-mapped except entries match IPv4 sources', () => {
    const engine = engineFor({ when: 'syn >= 10', except: '["::ffff:198.18.0.0/120"]' });
    expect(engine.process(tick(1, [sourceWindow(A, { syn: 50 }), sourceWindow('198.18.1.1', { syn: 50 })])).map((d) => d.key)).toEqual(['198.18.1.1']);
  });

  test('disabled rules do not run', () => {
    const engine = engineFor({ when: 'syn >= 10', enabled: 'false' });
    expect(engine.process(tick(1, [sourceWindow(A, { syn: 50 })]))).toEqual([]);
    expect(engine.stats().lanes).toEqual([]);
  });

  test('destination rules see destination windows', () => {
    const engine = engineFor({ group_by: 'dst', when: 'syn >= 1000 && distinct_sources >= 100' });
    const d = engine.process(tick(1, [sourceWindow(A, { syn: 5000 })], [destinationWindow('198.18.0.10', { syn: 5000, distinctSources: 3000 }), destinationWindow('198.18.0.11', { syn: 5000, distinctSources: 1 })]));
    expect(d.map((x) => [x.scope, x.key])).toEqual([['destination', '198.18.0.10']]);
  });

  test('a detection says what fired, where, why and when', () => {
    const set = ruleSet({ 'r.yaml': ruleYaml({ window: '2s', when: 'syn >= 30 && ack_per_syn < 0.5', mitre: '[T1046]', tags: '[scan]', actions: '[alert, {block: {ttl: 10m}}]' }) });
    const engine = new RuleEngine(set);
    engine.process(tick(41, [sourceWindow(A, { syn: 20 })], [], 'sensor-a'));
    const [d] = engine.process(tick(42, [sourceWindow(A, { syn: 20, ackOnly: 2 })], [], 'sensor-a'));
    expect(d).toEqual<Detection>({
      ruleId: 'test-rule', ruleVersion: set.rules[0].version, title: 'Test rule', description: set.rules[0].description, severity: 'medium', mitre: ['T1046'], tags: ['scan'],
      actions: { alert: true, block: { ttlMs: 600_000, scope: expect.objectContaining({ text: 'src' }) } },
      sensor: 'sensor-a', scope: 'source', groupBy: 'src', key: A, when: 'syn >= 30 && ack_per_syn < 0.5', windowMs: 2000, forMs: 0,
      features: { syn: 40, ack_per_syn: 0.05 },
      conditions: [{ expression: 'syn >= 30', value: 40, threshold: 30, holds: true }, { expression: 'ack_per_syn < 0.5', value: 0.05, threshold: 0.5, holds: true }],
      firstWindowMs: 40_000, lastWindowMs: 42_000, window: 42, onset: true,
    });
  });

  test('sensors are kept apart', () => {
    const engine = engineFor({ window: '2s', when: 'syn >= 20' });
    engine.process(tick(1, [sourceWindow(A, { syn: 10 })], [], 'one'));
    expect(engine.process(tick(2, [sourceWindow(A, { syn: 10 })], [], 'two'))).toEqual([]);
    expect(engine.process(tick(2, [sourceWindow(A, { syn: 10 })], [], 'one'))).toHaveLength(1);
    expect(engine.stats().sensors).toBe(2);
  });

  test('windows longer than 20 sensor windows slide in buckets', () => {
    const engine = engineFor({ window: '60s', when: 'syn >= 10' });
    expect(firing(engine, [tick(1, [sourceWindow(A, { syn: 10 })])])).toEqual([1]);
    // 60 s in 20 buckets of 3 s: the sum still covers tick 1 at tick 59, not at tick 61.
    expect(firing(engine, [tick(59, [sourceWindow(A, { syn: 0 })])])).toEqual([59]);
    expect(firing(engine, [tick(61, [sourceWindow(A, { syn: 0 })])])).toEqual([]);
  });

  test('the sensor window length scales rule durations', () => {
    const engine = engineFor({ window: '10s', when: 'syn_per_s >= 10.0' }, { windowMs: 5000 });
    expect(engine.process(tick(1, [sourceWindow(A, { syn: 100 })]))[0].features.syn_per_s).toBe(10);
  });

  test('idle keys are forgotten', () => {
    const engine = engineFor({ window: '3s', when: 'syn >= 10' });
    engine.process(tick(1, [sourceWindow(A, { syn: 1 })]));
    engine.process(tick(2, [sourceWindow(B, { syn: 1 })]));
    expect(engine.stats().lanes[0].keys).toBe(2);
    engine.process(tick(40, [sourceWindow(B, { syn: 1 })]));
    expect(engine.stats().lanes[0]).toMatchObject({ keys: 1, evicted: 1 });
  });

  test('at the key cap the least recently seen keys go first', () => {
    const engine = engineFor({ window: '10s', when: 'syn >= 30' }, { maxKeysPerLane: 8 });
    for (let i = 0; i < 8; i++) engine.process(tick(1 + i, [sourceWindow(`10.0.0.${i}`, { syn: 1 })]));
    engine.process(tick(9, [sourceWindow('10.0.1.1', { syn: 1 })]));
    expect(engine.stats().lanes[0]).toMatchObject({ keys: 8, evicted: 1, dropped: 0 });
    // More new keys in one tick than the cap: the excess is dropped, never this tick's keys.
    engine.process(tick(10, Array.from({ length: 12 }, (_, i) => sourceWindow(`10.0.2.${i}`, { syn: 1 }))));
    expect(engine.stats().lanes[0].keys).toBe(8);
    expect(engine.stats().lanes[0].dropped).toBeGreaterThan(0);
  });

  test('a reload keeps window sums and the streaks of unchanged rules; changed rules restart their streaks', () => {
    const rule = (id: string, when: string) => `- ${ruleYaml({ id, window: '3s', for: '2s', when }).replace(/\n(?=.)/g, '\n  ')}`;
    const engine = new RuleEngine(ruleSet({ 'r.yaml': rule('kept', 'syn >= 30') + rule('changed', 'syn >= 30') }));
    engine.process(tick(1, [sourceWindow(A, { syn: 15 })]));
    engine.process(tick(2, [sourceWindow(A, { syn: 15 })]));
    engine.setRules(ruleSet({ 'r.yaml': rule('kept', 'syn >= 30') + rule('changed', 'syn >= 31') }));
    // Both see the 30 SYNs of ticks 1-2 (sums describe traffic, not rules); `kept` goes on with
    // the streak it started at tick 2, `changed` starts a new one at tick 3.
    expect(engine.process(tick(3, [sourceWindow(A, { syn: 16 })])).map((d) => d.ruleId)).toEqual(['kept']);
    expect(engine.process(tick(4, [sourceWindow(A, { syn: 16 })])).map((d) => d.ruleId)).toEqual(['kept', 'changed']);
    // A window of another length has no history to keep.
    engine.setRules(ruleSet({ 'r.yaml': rule('kept', 'syn >= 30').replace('window: 3s', 'window: 4s') }));
    expect(engine.process(tick(5, [sourceWindow(A, { syn: 16 })]))).toEqual([]);
  });

  test('a window id that goes back (a rebooted sensor) starts the sensor over', () => {
    const engine = engineFor({ window: '5s', when: 'syn >= 20' });
    engine.process(tick(100, [sourceWindow(A, { syn: 10 })]));
    expect(engine.process(tick(3, [sourceWindow(A, { syn: 10 })]))).toEqual([]);
  });
});

describe('preview (fast-path trips)', () => {
  test("adds the window so far to the key's history, fires only what would start, and changes nothing", () => {
    const engine = engineFor({ window: '3s', when: 'syn >= 30' });
    engine.process(tick(10, [sourceWindow(A, { syn: 20 })]));
    expect(engine.preview('test', 11, sourceWindow(A, { syn: 5 }), 11_500)).toEqual([]);
    const [early] = engine.preview('test', 11, sourceWindow(A, { syn: 12 }), 11_500);
    expect(early).toMatchObject({ key: A, onset: true, early: true, features: { syn: 32 } });
    // The tick itself still reports the onset: the preview recorded nothing.
    expect(engine.process(tick(11, [sourceWindow(A, { syn: 12 })])).map((d) => d.onset)).toEqual([true]);
    expect(engine.preview('test', 12, sourceWindow(A, { syn: 1 }), 12_500)).toEqual([]);
  });

  test('leaves out buckets that slide out of the window, and windows already processed', () => {
    const engine = engineFor({ window: '2s', when: 'syn >= 30' });
    engine.process(tick(20, [sourceWindow(A, { syn: 25 })]));
    engine.process(tick(21, [sourceWindow(A, { syn: 1 })]));
    expect(engine.preview('test', 22, sourceWindow(A, { syn: 10 }), 22_500)).toEqual([]);
    expect(engine.preview('test', 21, sourceWindow(A, { syn: 100 }), 22_500)).toEqual([]);
    expect(engine.preview('another-sensor', 5, sourceWindow(A, { syn: 30 }), 5_500)).toHaveLength(1);
  });
});
