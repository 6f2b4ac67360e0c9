import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compileRuleSources, loadRules } from '../../detector/rules/loader';
import { formatProblem } from '../../detector/rules/problems';
import { ruleYaml } from './rules-support';

/** The errors of a set of files, formatted as the CLI prints them (warnings have their own test). */
function check(files: Record<string, string>, limits?: Parameters<typeof compileRuleSources>[1]): string[] {
  return compileRuleSources(Object.entries(files).map(([file, text]) => ({ file, text })), limits).problems.filter((p) => p.severity === 'error').map(formatProblem);
}

describe('rule validation reports file:line:column: message', () => {
  test('a valid rule loads, as one rule or as a list', () => {
    expect(check({ 'a.yaml': ruleYaml({ tests: '[{features: {syn: 10}, expect: fire}]' }) })).toEqual([]);
    const list = compileRuleSources([{ file: 'b.yaml', text: `- ${ruleYaml({ id: 'one' }).replace(/\n(?=.)/g, '\n  ')}- ${ruleYaml({ id: 'two' }).replace(/\n(?=.)/g, '\n  ')}` }]);
    expect(list.ruleSet?.rules.map((r) => r.id)).toEqual(['one', 'two']);
  });

  test('broken YAML', () => {
    expect(check({ 'a.yaml': 'id: x\ntitle: [unclosed\nseverity: low\n' })).toEqual([
      expect.stringMatching(/^a\.yaml:3:1: YAML: /),
    ]);
  });

  test('duplicate keys are a YAML error', () => {
    expect(check({ 'a.yaml': ruleYaml() + 'when: syn > 1\n' })).toEqual([expect.stringMatching(/^a\.yaml:7:1: YAML: Map keys must be unique/)]);
  });

  test('unknown fields point at the key, with a suggestion', () => {
    expect(check({ 'a.yaml': ruleYaml({ windwo: '5s' }) })).toEqual([
      expect.stringMatching(/^a\.yaml:7:1: unknown field `windwo` \(did you mean `window`\?\)/),
    ]);
  });

  test('missing fields and wrong types', () => {
    expect(check({ 'a.yaml': ruleYaml({ title: '', severity: 'urgent', enabled: 'maybe' }) })).toEqual([
      'a.yaml:1:1: missing `title`',
      'a.yaml:3:11: `severity` must be one of info, low, medium, high, critical, not the text "urgent"',
      'a.yaml:6:10: `enabled` must be true or false, not the text "maybe"',
    ]);
  });

  test('ids and MITRE technique ids have a format', () => {
    expect(check({ 'a.yaml': ruleYaml({ id: 'Bad Id', mitre: '[T1046, X1046]' }) })).toEqual([
      'a.yaml:1:5: `id`: an id is 1 to 64 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
      'a.yaml:7:16: `mitre`: MITRE ATT&CK technique ids look like T1046 or T1498.001',
    ]);
  });

  test('unknown feature names in when, at their position in the expression', () => {
    expect(check({ 'a.yaml': ruleYaml({ when: 'syn >= 10 && ack_per_sin < 0.5' }) })).toEqual([
      'a.yaml:6:20: unknown feature `ack_per_sin` (did you mean `ack_per_syn`?); rules/FEATURES.md lists the source features',
    ]);
  });

  test('positions inside quoted and block scalars', () => {
    expect(check({ 'a.yaml': ruleYaml({ when: '"syn >= 10 && bogus > 1"' }) })).toEqual([expect.stringMatching(/^a\.yaml:6:21: unknown feature `bogus`/)]);
    expect(check({ 'a.yaml': ruleYaml({ when: '>\n  syn >= 10 &&\n  2 * rst > 1.0' }) })).toEqual([
      expect.stringMatching(/^a\.yaml:8:3: `2 \* rst` multiplies an integer \(int\) and a number \(double\)/),
    ]);
  });

  test('CEL syntax errors', () => {
    expect(check({ 'a.yaml': ruleYaml({ when: 'syn >= ' }) })).toEqual([expect.stringMatching(/^a\.yaml:6:11: syntax error at `>`/)]);
  });

  test('CEL type errors: a number compared with a string, and a when that is not a condition', () => {
    expect(check({ 'a.yaml': ruleYaml({ when: `'syn > "ten"'` }) })).toEqual(['a.yaml:6:8: `syn > "ten"` compares a number (double) with a string']);
    expect(check({ 'a.yaml': ruleYaml({ when: 'syn + rst' }) })).toEqual(['a.yaml:6:7: `when` must be a condition (true or false), but `syn + rst` is a number (double)']);
  });

  test('a feature of the other scope', () => {
    expect(check({ 'a.yaml': ruleYaml({ group_by: 'dst', when: 'ack_only > 1' }) })).toEqual([
      'a.yaml:6:7: `ack_only` is a source feature, and this rule groups by destination (dst…): it sees destination features only',
    ]);
  });

  test('bad durations', () => {
    expect(check({ 'a.yaml': ruleYaml({ window: '10 seconds', for: '2h' }) })).toEqual([
      'a.yaml:7:9: "10 seconds" is not a duration: write a number and a unit (ms, s, m, h, d), e.g. 10s, 5m or 1m30s',
      'a.yaml:8:6: 2h is out of range: use 0s to 1h',
    ]);
  });

  test('bad groupings', () => {
    expect(check({ 'a.yaml': ruleYaml({ group_by: 'source' }) })).toEqual([
      'a.yaml:5:11: "source" is not a grouping: use src, dst, src_prefix/<length> or dst_prefix/<length> (e.g. src_prefix/24)',
    ]);
    expect(check({ 'a.yaml': ruleYaml({ group_by: 'src_prefix/24/200' }) })).toEqual([
      'a.yaml:5:11: in "src_prefix/24/200" the second length is for IPv6 and must be 0 to 128',
    ]);
  });

  test('bad CIDRs in except', () => {
    expect(check({ 'a.yaml': ruleYaml({ except: '[10.0.0.0/8, 10.0.0.0/33, "2001:db8::/129", 10.0.0, example.com]' }) })).toEqual([
      'a.yaml:7:22: "10.0.0.0/33": the prefix length must be 0 to 32',
      'a.yaml:7:35: "2001:db8::/129": the prefix length must be 0 to 128',
      'a.yaml:7:53: not an IP address: "10.0.0" (IPv4 must be four decimal numbers 0-255 without leading zeros)',
      'a.yaml:7:61: not an IP address: "example.com" (IPv4 must be four decimal numbers 0-255 without leading zeros)',
    ]);
  });

  test('actions', () => {
    expect(check({ 'a.yaml': ruleYaml({ actions: '[alert, page]' }) })).toEqual(['a.yaml:7:18: an action is `alert`, `block: { ttl: 10m, scope: src }` or `limit: { traffic: syn, rate: 1000, ttl: 10m }`']);
    expect(check({ 'a.yaml': ruleYaml({ actions: '[{block: {ttl: forever}}]' }) })).toEqual([expect.stringMatching(/^a\.yaml:7:25: "forever" is not a duration/)]);
    expect(check({ 'a.yaml': ruleYaml({ group_by: 'src_prefix/24', actions: '[{block: {ttl: 10m, scope: src}}]' }) })).toEqual([
      "a.yaml:7:37: this rule's keys are src_prefix/24 groups; blocking src would need one address out of many: use src_prefix/24 or a shorter prefix",
    ]);
    expect(check({ 'a.yaml': ruleYaml({ group_by: 'dst', actions: '[alert, {block: {ttl: 10m}}]' }) })).toEqual([
      expect.stringMatching(/^a\.yaml:7:26: a rule grouped by destination cannot block/),
    ]);
    expect(compileRuleSources([{ file: 'a.yaml', text: ruleYaml({ actions: '[{block: {ttl: 10m, scope: src_prefix/24}}]' }) }]).ruleSet?.rules[0].actions)
      .toMatchObject({ alert: false, block: { ttlMs: 600_000, scope: { text: 'src_prefix/24' } } });
    expect(compileRuleSources([{ file: 'a.yaml', text: ruleYaml({ group_by: 'dst', actions: '[alert, {limit: {traffic: udp-amp, rate: 1000, ttl: 10m}}]' }) }]).ruleSet?.rules[0].actions)
      .toEqual({ alert: true, limit: { traffic: 'udp-amp', perSecond: 1000, ttlMs: 600_000 } });
    expect(check({ 'a.yaml': ruleYaml({ actions: '[{limit: {traffic: syn, rate: 1000, ttl: 10m}}]' }) })).toEqual([
      expect.stringMatching(/^a\.yaml:7:\d+: limit caps traffic to one destination: the rule must be grouped by dst/),
    ]);
    expect(check({ 'a.yaml': ruleYaml({ group_by: 'dst', actions: '[{limit: {traffic: http, rate: 10, ttl: 10m}}]' }) })).toEqual([
      'a.yaml:7:29: limit needs `traffic`, what it caps: syn, syn-ack, udp-amp, fragments',
    ]);
    expect(check({ 'a.yaml': ruleYaml({ group_by: 'dst', actions: '[{limit: {traffic: syn, rate: 0.5, ttl: 10m, burst: 3}}]' }) })).toEqual([
      expect.stringMatching(/^a\.yaml:7:\d+: limit needs `rate`/),
      expect.stringMatching(/^a\.yaml:7:\d+: unknown field `burst` in limit; fields are traffic and rate and ttl/),
    ]);
  });

  test('test cases: shape, counter names, at, addresses', () => {
    const tests = `
  - features: {syn: 1, ack_per_syn: 2, bogus: 3}
    expect: fire
  - windows: [{syn: 1}]
    features: {syn: 1}
    expect: quiet
  - features: {syn: 1}
    expect: maybe
  - windows: [{syn: 1}]
    at: 1
    expect: fire
  - features: {syn: 1}
    src: 10.0.0.0/8
    expect: fire`;
    expect(check({ 'a.yaml': ruleYaml({ tests }) })).toEqual([
      expect.stringMatching(/^a\.yaml:8:24: `ack_per_syn` is computed from counts; a test gives counts only/),
      expect.stringMatching(/^a\.yaml:8:40: unknown source counter `bogus`/),
      'a.yaml:10:5: a test case has either `features` (one window) or `windows` (a list, one per second)',
      'a.yaml:14:13: `expect` must be one of fire, quiet, not the text "maybe"',
      'a.yaml:16:9: `at: 1` is past the last window (index 0)',
      'a.yaml:19:10: "10.0.0.0/8" is a prefix; a test\'s src is one address',
    ]);
  });

  test('duplicate ids across files name the first definition', () => {
    expect(check({ 'a.yaml': ruleYaml(), 'b.yaml': `\n${ruleYaml()}` })).toEqual(['b.yaml:2:5: duplicate rule id `test-rule` (first defined at a.yaml:1:1)']);
  });

  test('oversized files and too many rules', () => {
    const big = `# ${'x'.repeat(2000)}\n${ruleYaml()}`;
    expect(check({ 'big.yaml': big }, { fileBytes: 1000, rules: 10, files: 10 })).toEqual([
      `big.yaml:1:1: the file is ${big.length} bytes; the limit is 1000 (split it into several files)`,
    ]);
    const many = Array.from({ length: 4 }, (_, i) => `- ${ruleYaml({ id: `r${i}` }).replace(/\n(?=.)/g, '\n  ')}`).join('');
    expect(check({ 'many.yaml': many }, { fileBytes: 1 << 20, rules: 3, files: 10 })).toEqual(['many.yaml:1:1: more than 3 rules in the set']);
  });

  test('YAML alias bombs are refused', () => {
    const bomb = 'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
    expect(check({ 'bomb.yaml': bomb })).toEqual([expect.stringMatching(/^bomb\.yaml:1:1: YAML: .*alias/i)]);
  });

  test('a file that is not a rule or a list of rules', () => {
    expect(check({ 'a.yaml': 'just text\n' })).toEqual(['a.yaml:1:1: a rule file holds one rule (a mapping of fields) or a list of rules']);
    expect(check({ 'a.yaml': '- 42\n' })).toEqual(['a.yaml:1:3: a rule is a mapping of fields (id, title, when, ...)']);
  });

  test('warnings: rules that would fire on everything, rules without tests', () => {
    const result = compileRuleSources([{ file: 'a.yaml', text: ruleYaml({ when: 'syn >= 0 || rst > 5' }) }]);
    expect(result.ruleSet).toBeDefined();
    expect(result.problems.map(formatProblem)).toEqual([
      'a.yaml:1:5: warning: rule test-rule has no tests: add a case that fires and one that stays quiet',
      expect.stringMatching(/^a\.yaml:6:7: warning: `when` holds for an idle key and for ordinary traffic .*: rule test-rule would fire for every key$/),
    ]);
  });

  test('loading from disk: directories, missing paths', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-rules-'));
    try {
      fs.writeFileSync(path.join(dir, 'b.yaml'), ruleYaml({ id: 'b' }));
      fs.writeFileSync(path.join(dir, 'a.yml'), ruleYaml({ id: 'a' }));
      fs.writeFileSync(path.join(dir, 'notes.md'), 'not a rule');
      expect(loadRules([dir]).ruleSet?.rules.map((r) => r.id)).toEqual(['a', 'b']);
      expect(loadRules([path.join(dir, 'b.yaml')]).ruleSet?.rules.map((r) => r.id)).toEqual(['b']);
      expect(loadRules([path.join(dir, 'missing')]).problems.filter((p) => p.severity === 'error').map(formatProblem)).toEqual([`${path.join(dir, 'missing')}:1:1: no such file or directory`]);
      fs.writeFileSync(path.join(dir, 'huge.yaml'), 'x'.repeat((1 << 20) + 1));
      expect(loadRules([dir]).problems.filter((p) => p.severity === 'error').map(formatProblem)).toEqual([`${path.join(dir, 'huge.yaml')}:1:1: the file is 1048577 bytes; the limit is 1048576 (split it into several files)`]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('inhibits: ids, not itself, not twice; rules missing from the set are a warning, rules inhibiting each other an error', () => {
    expect(check({ 'a.yaml': ruleYaml({ inhibits: '[other, Bad]' }) })).toEqual([
      'a.yaml:7:19: `inhibits`: a rule id is 1 to 64 lower-case letters, digits, ".", "_" or "-"',
    ]);
    expect(check({ 'a.yaml': ruleYaml({ inhibits: '[test-rule, other, other]' }) })).toEqual([
      'a.yaml:7:12: a rule cannot inhibit itself (`test-rule`)',
      'a.yaml:7:30: `other` is listed twice',
    ]);
    const missing = compileRuleSources([{ file: 'a.yaml', text: ruleYaml({ inhibits: '[scan-tcp-slwo]', tests: '[{features: {syn: 10}, expect: fire}]' }) }]);
    expect(missing.ruleSet!.rules[0].inhibits).toEqual(['scan-tcp-slwo']);
    expect(missing.problems.map(formatProblem)).toEqual(['a.yaml:7:12: warning: rule test-rule inhibits `scan-tcp-slwo`, which is not in this rule set: it subsumes nothing']);
    const circle = {
      'a.yaml': ruleYaml({ id: 'a', inhibits: '[b]' }), 'b.yaml': ruleYaml({ id: 'b', inhibits: '[c]' }), 'c.yaml': ruleYaml({ id: 'c', inhibits: '[a]' }),
    };
    expect(check(circle)).toEqual([
      'a.yaml:7:12: rules a and b inhibit each other (directly or through others): neither could be named first',
      'b.yaml:7:12: rules b and c inhibit each other (directly or through others): neither could be named first',
      'c.yaml:7:12: rules c and a inhibit each other (directly or through others): neither could be named first',
    ]);
  });

  test('the version hash changes with behaviour, not with tests or enabled', () => {
    const version = (fields: Record<string, string>) => compileRuleSources([{ file: 'a.yaml', text: ruleYaml(fields) }]).ruleSet!.rules[0].version;
    const base = version({});
    expect(version({ tests: '[{features: {syn: 10}, expect: fire}]' })).toBe(base);
    expect(version({ enabled: 'false' })).toBe(base);
    expect(version({ when: 'syn >= 11' })).not.toBe(base);
    expect(version({ window: '2s' })).not.toBe(base);
    expect(version({ window: '1000ms' })).toBe(base);
    expect(version({ inhibits: '[other]' })).not.toBe(base);
  });
});
