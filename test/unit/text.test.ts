import { hasUnsafeCharacters, oneLine, plainLines, quote, slackText } from '../../common/text';

describe('text from outside on its way to a person', () => {
  test('oneLine: breaks and tabs become spaces, C0/C1 and bidi controls go, whitespace collapses', () => {
    expect(oneLine('a\r\nBcc: evil@example.test')).toBe('a Bcc: evil@example.test');
    expect(oneLine('  tab\tand\u000bvt\fff  ')).toBe('tab and vt ff');
    expect(oneLine('esc\u001b[2Jcleared\u0007')).toBe('esc[2Jcleared');
    expect(oneLine('nel\u0085csi\u009b31m')).toBe('nel csi31m');
    expect(oneLine('line\u2028para\u2029end')).toBe('line para end');
    expect(oneLine('invoice\u202egnp.exe \u2066iso\u2069 \u200emark\u200f \u061calm')).toBe('invoicegnp.exe iso mark alm');
    expect(oneLine('Ünïcödé — 日本 ✓')).toBe('Ünïcödé — 日本 ✓');
  });

  test('plainLines keeps line breaks and nothing else that moves text', () => {
    expect(plainLines('{\r\n  "a": "x\u202ey"\t,\n  "b": 1   \n}')).toBe('{\n  "a": "xy" ,\n  "b": 1\n}');
  });

  test('slackText: &, < and > escaped, backticks cannot open or close code', () => {
    expect(slackText('```<!channel> & `x`')).toBe('\u02cb\u02cb\u02cb&lt;!channel&gt; &amp; \u02cbx\u02cb');
  });

  test('hasUnsafeCharacters finds what oneLine would change, besides spaces', () => {
    for (const bad of ['a\nb', 'a\tb', '\u001b', '\u007f', '\u0085', '\u202e', '\u2066', '\u200f', '\u2028']) expect(hasUnsafeCharacters(bad)).toBe(true);
    for (const good of ['manual block', 'Ünïcödé — 日本', 'a  b', '`code`']) expect(hasUnsafeCharacters(good)).toBe(false);
  });

  test('quote escapes controls and bidi characters in error messages', () => {
    expect(quote('10.0.0.1\u202e\n')).toBe('"10.0.0.1\\u202e\\n"');
  });
});
