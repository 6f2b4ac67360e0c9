import { AddressSet, groupKey, groupingContains, parseGrouping, parseIPv4, type Grouping } from '../../detector/rules/addresses';
import { formatDuration, parseDuration } from '../../detector/rules/durations';

function grouping(text: string): Grouping {
  const g = parseGrouping(text);
  if (typeof g === 'string') throw new Error(g);
  return g;
}

const key = (g: string, address: string) => groupKey(grouping(g), address, parseIPv4(address));

describe('addresses', () => {
  test('parseIPv4 takes dotted quads only', () => {
    expect(parseIPv4('198.18.0.1')).toBe(0xc6120001);
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffff);
    for (const bad of ['198.18.0', '198.18.0.256', '1.2.3.4.5', '::1', '', '1..2.3', 'a.b.c.d', '010.0.0.1', '1.2.3.04']) expect(parseIPv4(bad)).toBe(-1);
  });

  test('groupings', () => {
    expect(grouping('src')).toMatchObject({ scope: 'source', v4Bits: 32, v6Bits: 128 });
    expect(grouping('dst_prefix/24')).toMatchObject({ scope: 'destination', v4Bits: 24, v6Bits: 64 });
    expect(grouping('src_prefix/48')).toMatchObject({ v4Bits: 24, v6Bits: 48 });
    expect(grouping('src_prefix/16/56')).toMatchObject({ v4Bits: 16, v6Bits: 56 });
    expect(parseGrouping('src_prefix/33/64')).toMatch(/first length is for IPv4/);
    expect(parseGrouping('src_prefix/129')).toMatch(/0 to 32/);
    expect(parseGrouping('prefix/24')).toMatch(/not a grouping/);
    expect(groupingContains(grouping('src_prefix/16'), grouping('src_prefix/24'))).toBe(true);
    expect(groupingContains(grouping('src'), grouping('src_prefix/24'))).toBe(false);
    expect(groupingContains(grouping('dst'), grouping('src'))).toBe(false);
  });

  test('group keys', () => {
    expect(key('src', '198.18.0.1')).toBe('198.18.0.1');
    expect(key('src_prefix/24', '198.18.7.200')).toBe('198.18.7.0/24');
    expect(key('src_prefix/0', '198.18.7.200')).toBe('0.0.0.0/0');
    expect(key('src_prefix/20', '198.18.255.1')).toBe('198.18.240.0/20');
    expect(key('src_prefix/24', '2001:db8:1:2:3::1')).toBe('2001:db8:1:2::/64');
    expect(key('src_prefix/24/36', '2001:db8:1fff::1')).toBe('2001:db8:1000::/36');
    expect(key('src_prefix/24', '::ffff:198.18.7.9')).toBe('198.18.7.0/24');
    expect(key('src_prefix/24', 'not an address')).toBeUndefined();
  });

  test('address sets', () => {
    const set = new AddressSet(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '::ffff:203.0.113.0/120']);
    const has = (a: string) => set.has(a, parseIPv4(a));
    expect(['10.1.2.3', '192.0.2.7', '2001:db8::99', '203.0.113.50', '::ffff:10.9.9.9'].map(has)).toEqual([true, true, true, true, true]);
    expect(['11.0.0.1', '192.0.2.8', '2001:db9::1', '203.0.114.1', 'junk'].map(has)).toEqual([false, false, false, false, false]);
    expect(() => new AddressSet(['10.0.0.0/40'])).toThrow('the prefix length must be 0 to 32');
    expect(() => new AddressSet(['10'])).toThrow('not an IP address: "10"');
  });
});

describe('durations', () => {
  test('parse and format', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    for (const bad of ['', '10', 's', '10 s', '1.5s', '-1s', '10sec']) expect(parseDuration(bad)).toBeUndefined();
    expect(formatDuration(90_500)).toBe('1m30s500ms');
    expect(formatDuration(0)).toBe('0s');
  });
});
