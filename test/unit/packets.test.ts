/**
 * The packet builder writes the bytes it claims to: checked against hand-computed values and,
 * independently, against tshark's dissectors reading the frames from a pcap file.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as pk from '../support/packets';

/** Classic libpcap file, Ethernet link type, one record per frame. */
function pcapFile(frames: Buffer[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(0xffff, 16);
  header.writeUInt32LE(1, 20);
  const records = frames.map((frame, i) => {
    const record = Buffer.alloc(16);
    record.writeUInt32LE(i, 0);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length, 12);
    return Buffer.concat([record, frame]);
  });
  return Buffer.concat([header, ...records]);
}

const CHECKSUM_PREFERENCES = ['ip', 'tcp', 'udp'].flatMap((proto) => ['-o', `${proto}.check_checksum:TRUE`]);

/** tshark's values of `fields` for every frame; multiple occurrences joined with ','. */
function dissect(frames: Buffer[], fields: string[]): Array<Record<string, string>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-packets-'));
  try {
    const file = path.join(dir, 'frames.pcap');
    fs.writeFileSync(file, pcapFile(frames));
    const args = ['-r', file, ...CHECKSUM_PREFERENCES, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=,'];
    const output = execFileSync('tshark', [...args, ...fields.flatMap((field) => ['-e', field])], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 64 * 1024 * 1024,
    });
    return output
      .split('\n')
      .slice(0, frames.length)
      .map((line) => Object.fromEntries(line.split('\t').map((value, i) => [fields[i], value])));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** MSS 1460, NOP, NOP, SACK permitted. */
const TCP_OPTIONS = Buffer.from([2, 4, 5, 0xb4, 1, 1, 4, 2]);
const ROUTER_ALERT = Buffer.from([0x94, 4, 0, 0]);

/** Wireshark's checksum status values. */
const GOOD = '1';
const WARNING = 0x00600000;

function verifiesToZero(...parts: Buffer[]): boolean {
  return pk.internetChecksum(...parts) === 0;
}

function ipv4PseudoHeader(src: string, dst: string, protocol: number, length: number): Buffer {
  const pseudo = Buffer.alloc(12);
  pk.ipv4Bytes(src).copy(pseudo, 0);
  pk.ipv4Bytes(dst).copy(pseudo, 4);
  pseudo[9] = protocol;
  pseudo.writeUInt16BE(length, 10);
  return pseudo;
}

describe('addresses', () => {
  test.each([
    ['fd00::1', 'fd000000000000000000000000000001'],
    ['::', '00000000000000000000000000000000'],
    ['1::', '00010000000000000000000000000000'],
    ['2001:db8:0:0:1:0:0:1', '20010db8000000000001000000000001'],
    ['::ffff:198.18.0.1', '00000000000000000000ffffc6120001'],
    ['FD00:0:0:1::1C', 'fd00000000000001000000000000001c'],
  ])('%s', (text, hex) => {
    expect(pk.ipv6Bytes(text).toString('hex')).toBe(hex);
  });

  test.each(['1:2:3:4:5:6:7:8:9', '1::2::3', 'g::1', '1.2.3.4::', '1:2:3:4:5:6:7', '1:2:3:4::5:6:7:8'])(
    'rejects %s',
    (text) => {
      expect(() => pk.ipv6Bytes(text)).toThrow();
    },
  );

  test('IPv4 and MAC', () => {
    expect(pk.ipv4Bytes('198.18.0.1').toString('hex')).toBe('c6120001');
    expect(() => pk.ipv4Bytes('198.18.0')).toThrow();
    expect(() => pk.ipv4Bytes('198.18.0.256')).toThrow();
    expect(pk.ipBytes('198.19.255.254')).toHaveLength(4);
    expect(pk.ipBytes('fd00::1')).toHaveLength(16);
    expect(pk.macBytes('02:00:00:00:0a:FF').toString('hex')).toBe('020000000aff');
  });
});

describe('IPv4', () => {
  test('header matches a known checksum example (RFC 1071 style, 0xb861)', () => {
    const packet = pk.frame(
      pk.ipv4({ src: '192.168.0.1', dst: '192.168.0.199', df: true, ttl: 64 }),
      pk.raw(Buffer.alloc(95), { protocol: pk.IpProto.UDP }),
    );
    expect(packet.subarray(0, 20).toString('hex')).toBe('4500007300004000' + '4011b861' + 'c0a80001c0a800c7');
  });

  test('options set IHL and total length; the checksum covers them', () => {
    const packet = pk.tcp4({ ip: { options: Buffer.alloc(6, 1), tos: 0xb8, id: 0x1234, ttl: 3 } });
    const ip = packet.subarray(14);
    expect(ip[0]).toBe(0x47); // 6 option bytes padded to 8
    expect(ip[1]).toBe(0xb8);
    expect(ip.readUInt16BE(2)).toBe(28 + 20);
    expect(ip.readUInt16BE(4)).toBe(0x1234);
    expect(ip[8]).toBe(3);
    expect(ip[9]).toBe(6);
    expect(ip.subarray(20, 28).toString('hex')).toBe('0101010101010000');
    expect(verifiesToZero(ip.subarray(0, 28))).toBe(true);
    expect(packet).toHaveLength(14 + 28 + 20);
  });

  test('flags and fragment offset', () => {
    const flagsAndOffset = (o: Parameters<typeof pk.ipv4>[0]): number =>
      pk.frame(pk.ipv4(o)).readUInt16BE(6);
    expect(flagsAndOffset({ df: true })).toBe(0x4000);
    expect(flagsAndOffset({ mf: true, fragOffset: 0x1fff })).toBe(0x3fff);
    expect(flagsAndOffset({ fragOffset: 185 })).toBe(185);
  });

  test('overrides write exactly the bad value', () => {
    const packet = pk.tcp4({ ip: { ihl: 3, version: 6, totalLength: 9999, checksum: 0xbeef } });
    expect(packet[14]).toBe(0x63);
    expect(packet.readUInt16BE(16)).toBe(9999);
    expect(packet.readUInt16BE(24)).toBe(0xbeef);
    expect(packet).toHaveLength(54);
  });

  test('options longer than 40 bytes are refused', () => {
    expect(() => pk.tcp4({ ip: { options: Buffer.alloc(41) } })).toThrow();
  });
});

describe('Ethernet and VLAN', () => {
  test('MACs, EtherType and two tags', () => {
    const packet = pk.udp4({
      eth: { src: '02:00:00:00:00:aa', dst: '02:00:00:00:00:bb' },
      vlans: [{ tpid: pk.EtherType.QINQ, tci: 0x2064 }, { tci: 0x000a }],
    });
    expect(packet.subarray(0, 12).toString('hex')).toBe('0200000000bb0200000000aa');
    expect(packet.subarray(12, 22).toString('hex')).toBe('88a8' + '2064' + '8100' + '000a' + '0800');
  });

  test('padding lies outside the IP total length', () => {
    const packet = pk.tcp4({ padding: 6 });
    expect(packet).toHaveLength(60);
    expect(packet.readUInt16BE(16)).toBe(40);
    expect(pk.withPadding(pk.udp4(), 3, 0xaa).subarray(-3).toString('hex')).toBe('aaaaaa');
  });

  test('a non-IP next layer needs an explicit EtherType', () => {
    expect(() => pk.frame(pk.ether(), pk.raw('x'))).toThrow(/etherType/);
    expect(pk.frame(pk.ether(), pk.raw('x', { etherType: 0x0806 })).readUInt16BE(12)).toBe(0x0806);
  });
});

describe('PPPoE, MPLS and fragments', () => {
  test('a PPPoE session header carries the PPP protocol of what follows and its length', () => {
    const packet = pk.tcp4({ pppoe: { sessionId: 0x1234 } });
    expect(packet.subarray(12, 22).toString('hex')).toBe('8864' + '1100' + '1234' + '002a' + '0021');
    expect(pk.udp6({ pppoe: {} }).readUInt16BE(20)).toBe(0x0057);
    expect(() => pk.linkFrame({ pppoe: {} }, [pk.raw('lcp')])).toThrow(/pppProtocol/);
  });

  test('MPLS label entries: label, traffic class, bottom of stack on the last, TTL', () => {
    const packet = pk.udp4({ vlans: [{ tci: 7 }], mpls: [{ label: 100, trafficClass: 5, ttl: 9 }, { label: 0xfffff, ttl: 1 }] });
    expect(packet.readUInt16BE(16)).toBe(pk.EtherType.MPLS);
    expect(packet.readUInt32BE(18)).toBe(((100 << 12) | (5 << 9) | 9) >>> 0);
    expect(packet.readUInt32BE(22)).toBe(((0xfffff << 12) | 0x100 | 1) >>> 0);
    expect(packet[26] >> 4).toBe(4);
  });

  test('IPv4 fragments: offsets in 8-byte units, MF on all but the last, the payload cut exactly', () => {
    const segment = pk.tcp4({ dport: 22, flags: 'S', payload: 'abc' }).subarray(34);
    const fragments = pk.fragments4({ bytesPerFragment: 8, payload: 'abc' }, pk.tcp({ dport: 22, flags: 'S' }));
    expect(fragments).toHaveLength(3);
    expect(fragments.map((f) => f.readUInt16BE(20))).toEqual([0x2000, 0x2001, 0x0002]);
    expect(fragments.map((f) => f.readUInt16BE(16))).toEqual([28, 28, 27]);
    expect(fragments.every((f) => f[23] === pk.IpProto.TCP && verifiesToZero(f.subarray(14, 34)))).toBe(true);
    expect(Buffer.concat(fragments.map((f) => f.subarray(34))).equals(segment)).toBe(true);
    expect(() => pk.fragments4({ bytesPerFragment: 12 }, pk.tcp())).toThrow(RangeError);
  });

  test('IPv6 fragments: a fragment header after the other extension headers', () => {
    const [first, last] = pk.fragments6({ bytesPerFragment: 8, ext: [pk.hopByHop()], id: 99, payload: 'x' }, pk.udp({ dport: 53 }));
    expect(first[14 + 6]).toBe(pk.IpProto.HOPOPTS);
    expect([first[54], first[62], first.readUInt16BE(64), first.readUInt32BE(66)]).toEqual([pk.IpProto.FRAGMENT, pk.IpProto.UDP, 1, 99]);
    expect(first.readUInt16BE(18)).toBe(8 + 8 + 8);
    expect([last.readUInt16BE(64), last.length]).toEqual([1 << 3, 14 + 40 + 16 + 1]);
  });
});

describe('TCP, UDP, ICMP', () => {
  test('flag letters', () => {
    expect(pk.tcpFlagBits('SA')).toBe(0x12);
    expect(pk.tcpFlagBits('FSRPAUEC')).toBe(0xff);
    expect(pk.tcpFlagBits('')).toBe(0);
    expect(() => pk.tcpFlagBits('X')).toThrow();
  });

  test('TCP fields, options, data offset and checksum', () => {
    const options = Buffer.from([2, 4, 5, 0xb4, 3, 3, 7]); // MSS, window scale: padded to 8
    const fields = { sport: 1234, dport: 80, seq: 0xdeadbeef, ack: 7, flags: 'PA', window: 512 };
    const packet = pk.tcp4({ ...fields, options, payload: 'hi' });
    const segment = packet.subarray(34);
    expect(segment.readUInt16BE(0)).toBe(1234);
    expect(segment.readUInt16BE(2)).toBe(80);
    expect(segment.readUInt32BE(4)).toBe(0xdeadbeef);
    expect(segment.readUInt32BE(8)).toBe(7);
    expect(segment[12] >> 4).toBe(7);
    expect(segment[13]).toBe(0x18);
    expect(segment.readUInt16BE(14)).toBe(512);
    expect(segment.subarray(20, 28).toString('hex')).toBe('020405b403030700');
    expect(segment.subarray(28).toString()).toBe('hi');
    const pseudo = ipv4PseudoHeader(pk.DEFAULTS.src4, pk.DEFAULTS.dst4, 6, segment.length);
    expect(verifiesToZero(pseudo, segment)).toBe(true);
  });

  test('data offset override', () => {
    expect(pk.tcp4({ dataOffset: 3 })[46]).toBe(0x30);
  });

  test('UDP length and checksum; ICMP checksum', () => {
    const datagram = pk.udp4({ sport: 5, dport: 53, payload: 'abc' }).subarray(34);
    expect(datagram.readUInt16BE(4)).toBe(11);
    expect(verifiesToZero(ipv4PseudoHeader(pk.DEFAULTS.src4, pk.DEFAULTS.dst4, 17, 11), datagram)).toBe(true);
    const message = pk.icmp4({ type: 0, id: 9, seq: 10 }).subarray(34);
    expect(message.subarray(0, 2).toString('hex')).toBe('0000');
    expect(message.readUInt32BE(4)).toBe((9 << 16) | 10);
    expect(verifiesToZero(message)).toBe(true);
  });
});

describe('IPv6', () => {
  test('fixed header fields', () => {
    const ip = { trafficClass: 0xb8, flowLabel: 0xabcde, hopLimit: 9 };
    const packet = pk.udp6({ src: 'fd00::a', dst: 'fd00::b', ip });
    const header = packet.subarray(14);
    expect(packet.readUInt16BE(12)).toBe(0x86dd);
    expect(header.readUInt32BE(0)).toBe(((6 << 28) | (0xb8 << 20) | 0xabcde) >>> 0);
    expect(header.readUInt16BE(4)).toBe(8);
    expect(header[6]).toBe(17);
    expect(header[7]).toBe(9);
    expect(header.subarray(8, 24).toString('hex')).toBe('fd00000000000000000000000000000a');
  });

  test('extension header chain: next headers and lengths', () => {
    const fragment = pk.fragment6({ offset: 5, more: true, id: 77 });
    const ext = [pk.hopByHop(), pk.routing({ addresses: ['fd00::99'] }), pk.destOpts(), pk.ah(), fragment];
    const packet = pk.tcp6({ ext });
    const chain: Array<[number, number]> = [];
    let header = packet[14 + 6];
    let offset = 54;
    const lengthOf = (type: number, field: number): number =>
      type === 44 ? 8 : type === 51 ? (field + 2) * 4 : (field + 1) * 8;
    while (header !== 6) {
      const length = lengthOf(header, packet[offset + 1]);
      chain.push([header, length]);
      header = packet[offset];
      offset += length;
    }
    expect(chain).toEqual([[0, 8], [43, 24], [60, 8], [51, 24], [44, 8]]);
    expect(packet.readUInt16BE(18)).toBe(72 + 20);
    expect(packet.readUInt16BE(54 + 72 - 8 + 2)).toBe((5 << 3) | 1);
    expect(packet.readUInt32BE(54 + 72 - 8 + 4)).toBe(77);
    expect(packet).toHaveLength(54 + 72 + 20);
  });

  test('options headers are padded with PadN to a multiple of 8', () => {
    const packet = pk.udp6({ ext: [pk.destOpts({ options: Buffer.from([0x1e, 1, 0xff]) })] });
    expect(packet.subarray(54, 62).toString('hex')).toBe('1100' + '1e01ff' + '0101' + '00');
  });
});

describe('tshark reads the frames as built', () => {
  const fields = [
    'frame.protocols', 'eth.type', 'ieee8021ad.id', 'vlan.id',
    'ip.hdr_len', 'ip.len', 'ip.flags.mf', 'ip.frag_offset',
    'ip.checksum.status', 'ipv6.plen', 'ipv6.flow', 'ipv6.tclass', 'ipv6.fraghdr.offset', 'ah.length',
    'tcp.hdr_len', 'tcp.flags', 'tcp.checksum.status', 'udp.length', 'udp.checksum.status',
    'icmp.checksum.status', 'icmpv6.checksum.status', '_ws.malformed', '_ws.expert.severity',
    'pppoe.session_id', 'ppp.protocol', 'mpls.label', 'mpls.bottom',
  ];
  const frames = {
    syn: pk.tcp4({ flags: 'S', dport: 80 }),
    tcpOptions: pk.tcp4({ flags: 'SEC', options: TCP_OPTIONS, ip: { options: ROUTER_ALERT } }),
    udpPadded: pk.udp4({ dport: 9, payload: 'abc', padding: 7 }),
    icmpVlans: pk.icmp4({ vlans: [{ tpid: pk.EtherType.QINQ, tci: 100 }, { tci: 200 }] }),
    fragment: pk.udp4({ ip: { mf: true, fragOffset: 3 } }),
    tcp6: pk.tcp6({ flags: 'FPU', ip: { flowLabel: 0x12345, trafficClass: 0x20 } }),
    mapped: pk.tcp6({ src: '::ffff:198.18.0.9' }),
    udp6ext: pk.udp6({
      dport: 9,
      ext: [pk.hopByHop(), pk.routing({ addresses: ['fd00::9'] }), pk.destOpts(), pk.ah()],
    }),
    icmp6frag: pk.icmp6({ ext: [pk.fragment6({ offset: 0, more: true })] }),
    pppoe: pk.udp4({ vlans: [{ tci: 3 }], pppoe: { sessionId: 0x42 }, dport: 9 }),
    mpls: pk.tcp6({ mpls: [{ label: 100 }, { label: 200 }] }),
  };
  let rows: Record<string, Record<string, string>>;

  beforeAll(() => {
    const decoded = dissect(Object.values(frames), fields);
    rows = Object.fromEntries(Object.keys(frames).map((name, i) => [name, decoded[i]]));
  });

  test('no frame is malformed or carries a warning', () => {
    for (const row of Object.values(rows)) {
      expect(row['_ws.malformed']).toBe('');
      const severities = row['_ws.expert.severity'].split(',').map(Number);
      expect(severities.filter((severity) => severity >= WARNING)).toEqual([]);
    }
  });

  test('checksums are good', () => {
    expect(rows.syn['ip.checksum.status']).toBe(GOOD);
    expect(rows.syn['tcp.checksum.status']).toBe(GOOD);
    expect(rows.tcpOptions['tcp.checksum.status']).toBe(GOOD);
    expect(rows.udpPadded['udp.checksum.status']).toBe(GOOD);
    expect(rows.icmpVlans['icmp.checksum.status']).toBe(GOOD);
    expect(rows.tcp6['tcp.checksum.status']).toBe(GOOD);
    expect(rows.mapped['tcp.checksum.status']).toBe(GOOD);
    expect(rows.udp6ext['udp.checksum.status']).toBe(GOOD);
  });

  test('lengths, flags and tags', () => {
    expect(rows.tcpOptions).toMatchObject({ 'ip.hdr_len': '24', 'tcp.hdr_len': '28', 'tcp.flags': '0x00c2' });
    expect(rows.udpPadded).toMatchObject({ 'ip.len': '31', 'udp.length': '11' });
    expect(rows.icmpVlans).toMatchObject({ 'ieee8021ad.id': '100', 'vlan.id': '200' });
    expect(rows.fragment).toMatchObject({ 'ip.flags.mf': '1', 'ip.frag_offset': '3' });
    const numbers = ['tcp.flags', 'ipv6.flow', 'ipv6.tclass'].map((field) => Number(rows.tcp6[field]));
    expect(numbers).toEqual([0x29, 0x12345, 0x20]);
    expect(rows.udp6ext['frame.protocols']).toBe('eth:ethertype:ipv6:ipv6.hopopts:ipv6.routing:ipv6.dstopts:ah:udp');
    expect(rows.udp6ext['ah.length']).toBe('4');
    expect(rows.icmp6frag['ipv6.fraghdr.offset']).toBe('0');
    expect(rows.pppoe).toMatchObject({ 'frame.protocols': 'eth:ethertype:vlan:ethertype:pppoes:ppp:ip:udp', 'pppoe.session_id': '0x0042', 'ppp.protocol': '0x0021' });
    expect(rows.mpls).toMatchObject({ 'mpls.label': '100,200', 'mpls.bottom': '0,1', 'tcp.checksum.status': GOOD });
  });

  test('fragments reassemble into the packet they were cut from', () => {
    const fragments = pk.fragments4({ bytesPerFragment: 8, payload: 'hello' }, pk.tcp({ dport: 22, flags: 'S' }));
    const rows = dissect(fragments, ['ip.flags.mf', 'ip.frag_offset', 'tcp.dstport', 'tcp.checksum.status', 'tcp.payload']);
    expect(rows.map((row) => [row['ip.flags.mf'], row['ip.frag_offset']])).toEqual([['1', '0'], ['1', '1'], ['1', '2'], ['0', '3']]); // 8-byte units
    expect(rows[3]).toMatchObject({ 'tcp.dstport': '22', 'tcp.checksum.status': GOOD, 'tcp.payload': Buffer.from('hello').toString('hex') });
  });
});

describe('truncations', () => {
  test('every proper prefix, as copies', () => {
    const packet = pk.tcp4();
    const prefixes = pk.truncations(packet);
    expect(prefixes.map((prefix) => prefix.length)).toEqual([...Array(packet.length).keys()]);
    prefixes[20][14] = 0;
    expect(packet[14]).toBe(0x45);
    expect(prefixes[53].equals(packet.subarray(0, 53))).toBe(true);
  });
});

describe('randomness', () => {
  test('the PRNG is deterministic by seed and in range', () => {
    const draws = (seed: number): number[] => {
      const random = pk.rng(seed);
      return Array.from({ length: 100 }, () => random.u32());
    };
    expect(draws(1)).toEqual(draws(1));
    expect(draws(1)).not.toEqual(draws(2));
    const random = pk.rng(3);
    const ints = Array.from({ length: 1000 }, () => random.int(-2, 2));
    expect(new Set(ints)).toEqual(new Set([-2, -1, 0, 1, 2]));
  });

  test('randomPacket and mutate are deterministic by seed; mutate leaves its input alone', () => {
    const generate = (seed: number): Buffer[] => {
      const random = pk.rng(seed);
      return Array.from({ length: 200 }, () => {
        const packet = pk.randomPacket(random);
        const copy = Buffer.from(packet);
        const mutated = pk.mutate(packet, random);
        expect(packet.equals(copy)).toBe(true);
        return Buffer.concat([packet, mutated]);
      });
    };
    expect(generate(9)).toEqual(generate(9));
    expect(generate(9)).not.toEqual(generate(10));
  });

  test('mutations change packets in every way', () => {
    const random = pk.rng(4);
    const packet = pk.tcp6({ ext: [pk.hopByHop()] });
    const mutants = Array.from({ length: 300 }, () => pk.mutate(packet, random));
    expect(mutants.some((m) => m.length < packet.length)).toBe(true);
    expect(mutants.some((m) => m.length > packet.length)).toBe(true);
    expect(mutants.some((m) => m.length === packet.length && !m.equals(packet))).toBe(true);
    expect(pk.mutate(Buffer.alloc(0), random).length).toBeGreaterThan(0);
  });

  test('random packets are well formed and cover every kind', () => {
    const random = pk.rng(1);
    const frames = Array.from({ length: 20000 }, () => pk.randomPacket(random));
    const checksumFields = ['ip.checksum.status', 'tcp.checksum.status', 'udp.checksum.status'];
    const fields = ['frame.protocols', 'tcp.flags', 'ipv6.src', 'ip.frag_offset', 'ipv6.fraghdr.offset'];
    const rows = dissect(frames, [...fields, ...checksumFields]);
    const stacks = rows.map((row) => row['frame.protocols'].split(':'));
    const protocols = new Set(stacks.flat());
    const expected = ['vlan', 'ieee8021ad', 'pppoes', 'mpls', 'ip', 'ipv6', 'tcp', 'udp', 'icmp', 'icmpv6', 'arp'];
    const extensions = ['ipv6.hopopts', 'ipv6.routing', 'ipv6.dstopts', 'ah', 'ipv6.fraghdr'];
    for (const proto of [...expected, ...extensions]) expect(protocols).toContain(proto);
    const countOf = (stack: string[], names: string[]): number => stack.filter((p) => names.includes(p)).length;
    expect(stacks.some((stack) => countOf(stack, ['vlan', 'ieee8021ad']) === 5)).toBe(true);
    expect(stacks.some((stack) => countOf(stack, extensions) === 9)).toBe(true);
    const tcpFlags = new Set(rows.map((row) => row['tcp.flags']).filter((flags) => flags !== ''));
    expect(tcpFlags.size).toBe(256);
    expect(rows.some((row) => row['ipv6.src'].startsWith('::ffff:198.18.'))).toBe(true);
    expect(rows.some((row) => Number(row['ip.frag_offset']) > 0)).toBe(true);
    expect(rows.some((row) => Number(row['ipv6.fraghdr.offset']) > 0)).toBe(true);
    const checksums = rows.flatMap((row) => checksumFields.map((field) => row[field]));
    expect(checksums.filter((status) => status !== '' && status !== GOOD)).toEqual([]);
    expect(frames.some((frame) => frame.length === pk.ETH_MIN_FRAME)).toBe(true);
  });
});
