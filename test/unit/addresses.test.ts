import { addressKey, keyToAddress, parsePrefix } from '../../sensor/addresses';

describe('addresses and prefixes', () => {
  test('IPv4 and IPv4-mapped IPv6 share the mapped key; keys print back', () => {
    expect(addressKey('198.18.0.1').toString('hex')).toBe('00000000000000000000ffffc6120001');
    expect(addressKey('::ffff:198.18.0.1')).toEqual(addressKey('198.18.0.1'));
    expect(keyToAddress(addressKey('198.18.0.1'))).toBe('198.18.0.1');
    expect(keyToAddress(addressKey('fd00::1'))).toBe('fd00::1');
  });

  test('prefixes are canonical with host bits cleared', () => {
    expect(parsePrefix('198.18.7.9/24')).toMatchObject({ family: 4, length: 24, text: '198.18.7.0/24' });
    expect(parsePrefix('fd00:1:2:3:4::1/64').text).toBe('fd00:1:2:3::/64');
    expect(parsePrefix('198.18.0.1').text).toBe('198.18.0.1/32');
    expect(parsePrefix('::ffff:198.18.0.0/120')).toMatchObject({ family: 4, length: 24 });
  });

  test.each(['198.18.0.0/33', 'fd00::/129', '1.2.3.4/24/1', '1.2.3.4/-1', '1.2.3.4/ 8'])('rejects %j with a clear error', (bad) => {
    expect(() => parsePrefix(bad)).toThrow(/not a CIDR prefix/);
  });

  test.each(['nonsense', '', '010.0.0.0/8'])('rejects the address of %j with a clear error', (bad) => {
    expect(() => parsePrefix(bad)).toThrow(/^not an IP address: /);
  });

  test('rejects hostile address strings', () => {
    expect(() => addressKey('198.18.0.1; rm -rf /')).toThrow(/not an IP address/);
  });
});
