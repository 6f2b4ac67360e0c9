/**
 * One strict reading of address text everywhere: the API and CLI (sensor/addresses.ts, via
 * blocking/targets.ts and the allowlist), rule `except` lists and groupings
 * (detector/rules/addresses.ts) accept and refuse the same texts and read them alike.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { allowConflict } from '../../blocking/allowlist';
import { normalizeTarget } from '../../blocking/targets';
import { parseIpText } from '../../common/ip-text';
import { AddressSet, parseCidr, parseIPv4 } from '../../detector/rules/addresses';
import { checkRules } from '../../detector/rules/cli';
import { parseAddress, parsePrefix } from '../../sensor/addresses';
import { ruleYaml } from './rules-support';

const IPV4_RULE = '(IPv4 must be four decimal numbers 0-255 without leading zeros)';
const LEGACY = ['010.0.0.1', '1.2.3', '4294967295', '0x7f.0.0.1', '127.1', '1.2.3.04', '00.0.0.0', '0177.0.0.1'];
const GOOD = ['0.0.0.0', '10.0.0.1', '198.18.0.255', '255.255.255.255', '::', '::1', 'fd00:18::1', '2001:DB8::A', '::ffff:198.18.0.1', '1:2:3:4:5:6:7:8', '64:ff9b::192.0.2.1'];

describe('strict address text', () => {
  test.each(LEGACY)('legacy IPv4 text %j is refused by every parser with the same sentence', (text) => {
    const sentence = `not an IP address: ${JSON.stringify(text)} ${IPV4_RULE}`;
    expect(() => parseIpText(text)).toThrow(sentence);
    expect(() => parseAddress(text)).toThrow(sentence);
    expect(() => parsePrefix(`${text}/8`)).toThrow(sentence);
    expect(() => normalizeTarget(text)).toThrow(sentence);
    expect(() => parseCidr(text)).toThrow(sentence);
    expect(() => new AddressSet([`${text}/24`])).toThrow(sentence);
    expect(parseIPv4(text)).toBe(-1);
  });

  test('the IPv4 part of an IPv4-mapped address follows the same rule', () => {
    expect(() => parseIpText('::ffff:010.0.0.1')).toThrow(/^not an IP address: "::ffff:010\.0\.0\.1" \(the IPv4 part of an IPv6 address follows the IPv4 rule: IPv4 must be four decimal numbers 0-255 without leading zeros\)$/);
    expect(() => parsePrefix('::ffff:10.0.0.01/120')).toThrow(/the IPv4 part/);
    expect(() => parseCidr('::ffff:0x7f.0.0.1')).toThrow(/not an IP address/);
  });

  test('forms that ipaddr.js would misread or that mean nothing elsewhere are refused', () => {
    // ipaddr.js reads the IPv4-compatible ::a.b.c.d as the IPv4-mapped ::ffff:a.b.c.d.
    expect(() => parseIpText('::198.18.0.1')).toThrow(/IPv4-compatible IPv6 addresses are deprecated/);
    expect(() => parseIpText('fe80::1%eth0')).toThrow(/zone index/);
    expect(() => parseIpText('1::2::3')).toThrow(/neither IPv4 nor IPv6 text/);
    expect(() => parseIpText(' 10.0.0.1')).toThrow(/not an IP address/);
    expect(() => parseIpText('10.0.0.1\u202e')).toThrow('not an IP address: "10.0.0.1\\u202e"');
    expect(() => parsePrefix('10.0.0.0/08')).toThrow(/prefix length must be 0\.\.32/);
    expect(() => parseCidr('10.0.0.0/08')).toThrow(/the prefix length must be 0 to 32/);
  });

  test.each(GOOD)('%j reads the same in every parser and as Node reads it', (text) => {
    const address = parseIpText(text);
    const list = new net.BlockList();
    list.addAddress(address.toString(), address.kind());
    expect(list.check(text, address.kind())).toBe(true);
    const host = parsePrefix(text);
    const [cidr, bits] = parseCidr(text);
    expect(parsePrefix(`${cidr.toString()}/${bits}`)).toEqual(host);
    if (host.family === 4) expect(parseIPv4(parseAddress(text).toString())).toBe(host.bytes.readUInt32BE(0));
    expect(new AddressSet([text]).has(text, parseIPv4(text))).toBe(true);
  });

  test('the hand-written IPv4 path agrees with the shared reading on every octet form', () => {
    const octets = ['0', '00', '01', '1', '9', '10', '010', '99', '100', '255', '256', '0255', '1000', '', 'x'];
    for (const a of octets) {
      for (const b of octets) {
        const text = `${a}.1.${b}.0`;
        let shared = -1;
        try {
          shared = (parseIpText(text) as { toByteArray(): number[] }).toByteArray().reduce((n, byte) => n * 256 + byte, 0);
        } catch { /* refused */ }
        expect([text, parseIPv4(text)]).toEqual([text, shared]);
      }
    }
  });

  test('an allow entry and a block written alike cover the same addresses', () => {
    const allow = [{ prefix: normalizeTarget('10.0.0.0/8'), reason: 'office' }];
    expect(allowConflict(normalizeTarget('10.1.2.3'), allow)).toBeDefined();
    expect(() => normalizeTarget('010.1.2.3')).toThrow(/not an IP address/);
  });

  test('a rule whose except list has legacy text fails `rules check` with file:line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-ip-text-'));
    try {
      const file = path.join(dir, 'a.yaml');
      fs.writeFileSync(file, ruleYaml({ except: '["192.0.2.0/24", "010.0.0.0/8"]' }));
      const out = checkRules([dir]);
      expect(out.exitCode).toBe(1);
      expect(out.stderr).toBe(`${file}:7:26: not an IP address: "010.0.0.0" ${IPV4_RULE}\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
