/**
 * The reference model counts crafted packets the way bpf/README.md says the XDP program does.
 * Expected values here are derived from the README by hand, not from the model's code.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as pk from '../support/packets';
import {
  COUNTER_NAMES,
  IDS_CFG_BLOCKS,
  ReferenceModel,
  addrKey,
  foldAddress,
  hostBit,
  portBit,
  sketchHash,
  sourceBit,
  type CounterName,
  type ReferenceConfig,
  type SrcExpected,
} from '../support/reference';

const SRC4 = pk.DEFAULTS.src4;
const DST4 = pk.DEFAULTS.dst4;
const SRC6 = pk.DEFAULTS.src6;

function run(frames: Buffer[], config?: ReferenceConfig): ReferenceModel {
  const model = new ReferenceModel(config);
  for (const frame of frames) model.process(frame);
  return model;
}

function withoutZeros<T extends object>(record: T): Partial<T> {
  const nonZero = Object.entries(record).filter(([, value]) => value !== 0n && value !== 0);
  return Object.fromEntries(nonZero) as Partial<T>;
}

function globalsOf(frames: Buffer[], config?: ReferenceConfig): Partial<Record<CounterName, bigint>> {
  return withoutZeros(run(frames, config).globals());
}

function sourceOf(model: ReferenceModel, ip: string): SrcExpected {
  const source = model.sources().get(addrKey(ip));
  if (!source) throw new Error(`no source record for ${ip}`);
  return source;
}

/** The per-source counters a single frame from `ip` changes, besides packets and bytes. */
function countsOf(frame: Buffer, ip: string = SRC4): Partial<SrcExpected> {
  const { packets, bytes, ...rest } = sourceOf(run([frame]), ip);
  expect({ packets, bytes }).toEqual({ packets: 1n, bytes: BigInt(frame.length) });
  return withoutZeros(rest);
}

/** A parse error before the source stage: counted globally, passed, no source record. */
function expectEarlyError(frame: Buffer, error: CounterName): void {
  const model = run([frame]);
  const expected = { packets: 1n, bytes: BigInt(frame.length), pass: 1n, [error]: 1n };
  expect(withoutZeros(model.globals())).toEqual(withoutZeros(expected));
  expect(model.sources().size).toBe(0);
}

/** A parse error at the transport stage: the source's malformed and the global reason. */
function expectMalformed(frame: Buffer, error: CounterName, ip: string = SRC4): void {
  const model = run([frame]);
  expect(model.globals()[error]).toBe(1n);
  const { packets, malformed, host_bits, port_bits, syn, udp, icmp, fragments } = sourceOf(model, ip);
  expect({ packets, malformed, host_bits, port_bits, syn, udp, icmp, fragments }).toEqual({
    packets: 1n, malformed: 1, host_bits: 1, port_bits: 0, syn: 0, udp: 0, icmp: 0, fragments: 0,
  });
  expect(model.destinations().size).toBe(0);
}

/** MurmurHash3's fmix32, computed exactly with BigInt. */
function exactHash(x: number): number {
  const M = 2n ** 32n;
  let h = BigInt(x >>> 0);
  h = ((h ^ (h >> 16n)) * 0x85ebca6bn) % M;
  h = ((h ^ (h >> 13n)) * 0xc2b2ae35n) % M;
  return Number(h ^ (h >> 16n));
}

function foldOf(ip: string): number {
  const addr = Buffer.from(addrKey(ip), 'hex');
  let folded = 0;
  for (let i = 0; i < 16; i += 4) folded ^= addr.readUInt32LE(i);
  return folded >>> 0;
}

describe('counter names and sketch hashing', () => {
  test('COUNTER_NAMES is enum ids_counter of bpf/xdp_ids.h, in order', () => {
    const header = fs.readFileSync(path.join(__dirname, '..', '..', 'bpf', 'xdp_ids.h'), 'utf8');
    const body = /enum ids_counter \{([\s\S]*?)\};/.exec(header)?.[1] ?? '';
    const names = [...body.matchAll(/\bIDS_CNT_(\w+)/g)].map((m) => m[1].toLowerCase());
    expect(names.pop()).toBe('_max');
    expect(COUNTER_NAMES).toEqual(names);
  });

  test('hash, fold and bit indexes', () => {
    expect(sketchHash(0)).toBe(0);
    for (const x of [0, 80, 443, 65535, 0xfeff12c6, 0xffffffff]) expect(sketchHash(x)).toBe(exactHash(x));
    expect(portBit(1)).toBe(exactHash(1) >>> 24);
    expect(portBit(443)).toBe(exactHash(443) >>> 24);
    // ::ffff:198.18.0.1 as little-endian words: 0, 0, 0xffff0000, 0x010012c6
    expect(foldAddress(Buffer.from(addrKey('198.18.0.1'), 'hex'))).toBe(0xfeff12c6);
    expect(hostBit(Buffer.from(addrKey('198.18.0.1'), 'hex'))).toBe(exactHash(0xfeff12c6) >>> 25);
    expect(sourceBit(Buffer.from(addrKey('fd00::1'), 'hex'))).toBe(exactHash(foldOf('fd00::1')) >>> 23);
  });

  test('addrKey: IPv4 in the IPv4-mapped form', () => {
    expect(addrKey('198.18.0.1')).toBe('00000000000000000000ffffc6120001');
    expect(addrKey('::ffff:198.18.0.1')).toBe(addrKey('198.18.0.1'));
    expect(addrKey('fd00::1')).toBe('fd000000000000000000000000000001');
  });
});

describe('a plain TCP SYN', () => {
  test('global counters, source and destination', () => {
    const frame = pk.tcp4({ src: SRC4, dst: DST4, dport: 80, flags: 'S' });
    const model = run([frame]);
    expect(model.process(frame)).toBe('pass');
    const globals = withoutZeros(model.globals());
    expect(globals).toEqual({ packets: 2n, bytes: 108n, pass: 2n, ipv4: 2n, new_sources: 1n });
    expect(sourceOf(model, SRC4)).toEqual({
      ...zeroSource(), packets: 2n, bytes: 108n, syn: 2, syn_window: 2, port_bits: 1, host_bits: 1,
    });
    const destination = { syn: 2n, udp: 0n, icmp: 0n, bytes: 108n, src_bits: 1 };
    expect(model.destinations()).toEqual(new Map([[addrKey(DST4), destination]]));
  });
});

function zeroSource(): SrcExpected {
  return {
    packets: 0n, bytes: 0n, syn: 0, synack: 0, ack: 0, rst: 0, fin: 0, null_scan: 0, fin_only: 0, xmas: 0,
    synfin: 0, udp: 0, icmp: 0, fragments: 0, malformed: 0, port_bits: 0, host_bits: 0, syn_window: 0,
  };
}

describe.each([
  ['IPv4', (flags: string) => pk.tcp4({ flags }), SRC4],
  ['IPv6', (flags: string) => pk.tcp6({ flags }), SRC6],
])('TCP flag classes over %s', (_family, build, src) => {
  test.each<[string, string[]]>([
    ['S', ['syn']],
    ['SA', ['synack']],
    ['A', ['ack']],
    ['PA', ['ack']],
    ['UA', ['ack']],
    ['R', ['rst']],
    ['RA', ['rst']],
    ['SR', ['rst']],
    ['F', ['fin', 'fin_only']],
    ['FA', ['fin']],
    ['FP', ['fin']],
    ['FR', ['fin', 'rst']],
    ['FPU', ['fin', 'xmas']],
    ['FPUA', ['fin']],
    ['', ['null_scan']],
    ['C', ['null_scan']],
    ['EC', ['null_scan']],
    ['SF', ['synfin']],
    ['SFA', ['synfin']],
    ['SFR', ['rst', 'synfin']],
    ['SEC', ['syn']],
    ['SAE', ['synack']],
    ['P', []],
    ['PU', []],
  ])("flags '%s' → %j", (flags, classes) => {
    const { host_bits, port_bits, syn_window, ...counts } = countsOf(build(flags), src);
    expect(Object.keys(counts).sort()).toEqual([...classes].sort());
    expect({ host_bits, port_bits }).toEqual({ host_bits: 1, port_bits: 1 });
    expect(syn_window ?? 0).toBe(classes.includes('syn') ? 1 : 0);
  });
});

describe('destinations and sketches', () => {
  test('only SYN-class TCP, UDP, ICMP and ICMPv6 update the destination', () => {
    const frames = [
      pk.tcp4({ flags: 'S' }), pk.tcp4({ flags: 'SA' }), pk.tcp4({ flags: 'A' }), pk.tcp4({ flags: 'SF' }),
      pk.udp4(), pk.udp4(), pk.icmp4(), pk.tcp4({ ip: { fragOffset: 9 } }), pk.tcp4({ dataOffset: 2 }),
    ];
    const model = run(frames);
    const bytes = frames[0].length + frames[4].length * 2 + frames[6].length;
    const destination = model.destinations().get(addrKey(DST4));
    expect(destination).toEqual({ syn: 1n, udp: 2n, icmp: 1n, bytes: BigInt(bytes), src_bits: 1 });
    const icmpv6 = run([pk.icmp6({ dst: 'fd00::5' })]).destinations().get(addrKey('fd00::5'));
    expect(icmpv6).toMatchObject({ icmp: 1n });
  });

  test('src_bits counts distinct bits of hash(fold(src)) >> 23', () => {
    const sources = Array.from({ length: 40 }, (_, i) => `198.18.${i}.${i + 1}`);
    const model = run(sources.map((src) => pk.udp4({ src, dst: '198.19.0.9' })));
    const bits = new Set(sources.map((src) => exactHash(foldOf(src)) >>> 23));
    expect(model.destinations().get(addrKey('198.19.0.9'))?.src_bits).toBe(bits.size);
  });

  test('port_bits over TCP and UDP destination ports, host_bits over every counted packet', () => {
    const ports = Array.from({ length: 60 }, (_, i) => i * 1000 + 7);
    const hosts = Array.from({ length: 30 }, (_, i) => `198.19.${i}.1`);
    const frames = [
      ...ports.map((dport) => pk.tcp4({ dport, flags: 'A' })),
      ...ports.map((dport) => pk.udp4({ dport: dport + 1 })),
      pk.icmp4({ id: 1234 }),
      ...hosts.map((dst) => pk.tcp4({ dst, ip: { fragOffset: 1 } })),
    ];
    const source = sourceOf(run(frames), SRC4);
    const portBits = new Set([...ports, ...ports.map((p) => p + 1)].map((p) => exactHash(p) >>> 24));
    const hostBits = new Set([DST4, ...hosts].map((dst) => exactHash(foldOf(dst)) >>> 25));
    expect(source.port_bits).toBe(portBits.size);
    expect(source.host_bits).toBe(hostBits.size);
    expect(source.fragments).toBe(30);
  });

  test('bytes are frame bytes, padding included', () => {
    const model = run([pk.tcp4({ padding: 6 }), pk.udp4({ padding: 100 })]);
    expect(sourceOf(model, SRC4).bytes).toBe(60n + 142n);
    expect(model.destinations().get(addrKey(DST4))?.bytes).toBe(60n + 142n);
  });
});

describe('Ethernet and VLAN tags', () => {
  test.each([0, 1, 2])('%i tags: parsed', (tags) => {
    const tpid = (i: number): number => (i === 0 ? pk.EtherType.QINQ : pk.EtherType.VLAN);
    const vlans = Array.from({ length: tags }, (_, i) => ({ tpid: tpid(i), tci: i + 1 }));
    const bytes = BigInt(54 + 4 * tags);
    expect(globalsOf([pk.tcp4({ vlans })])).toEqual({ packets: 1n, bytes, pass: 1n, ipv4: 1n, new_sources: 1n });
  });

  test('3 tags: ERR_VLAN_DEPTH, also when the third tag has no bytes', () => {
    expectEarlyError(pk.tcp4({ vlans: [{ tci: 1 }, { tci: 2 }, { tci: 3 }] }), 'err_vlan_depth');
    const thirdWithoutBytes = pk.frame(pk.ether(), pk.vlan(), pk.vlan({ etherType: pk.EtherType.VLAN }));
    expectEarlyError(thirdWithoutBytes, 'err_vlan_depth');
  });

  test('a tag needs 4 bytes', () => {
    for (let extra = 0; extra < 4; extra++) {
      const partial = pk.raw(Buffer.alloc(extra));
      expectEarlyError(pk.frame(pk.ether({ etherType: pk.EtherType.VLAN }), partial), 'err_vlan_trunc');
      expectEarlyError(pk.frame(pk.ether(), pk.vlan({ etherType: pk.EtherType.QINQ }), partial), 'err_vlan_trunc');
    }
  });

  test('frames shorter than 14 bytes', () => {
    for (let length = 0; length < 14; length++) {
      expectEarlyError(pk.tcp4().subarray(0, length), 'err_eth_trunc');
    }
  });

  test('non-IP EtherTypes, with and without tags', () => {
    expectEarlyError(pk.frame(pk.ether({ etherType: pk.EtherType.ARP }), pk.raw(Buffer.alloc(28))), 'non_ip');
    const lldp = pk.raw('x', { etherType: pk.EtherType.LLDP });
    expectEarlyError(pk.frame(pk.ether(), pk.vlan(), pk.vlan(), lldp), 'non_ip');
  });
});

describe('IPv4 header checks', () => {
  test.each([4, 8, 40])('%i option bytes move the transport header', (optionBytes) => {
    const frame = pk.tcp4({ ip: { options: Buffer.alloc(optionBytes, 1) } });
    expect(countsOf(frame)).toMatchObject({ syn: 1 });
  });

  test.each([0, 1, 4])('IHL %i → ERR_IPV4_BAD_IHL', (ihl) => {
    expectEarlyError(pk.tcp4({ ip: { ihl } }), 'err_ipv4_bad_ihl');
  });

  test('IHL beyond the frame → ERR_IPV4_TRUNC', () => {
    expectEarlyError(pk.linkFrame({}, [pk.ipv4({ ihl: 15 }), pk.raw(Buffer.alloc(39))]), 'err_ipv4_trunc');
  });

  test('fewer than 20 bytes → ERR_IPV4_TRUNC even when the version is wrong', () => {
    const short = pk.raw(Buffer.alloc(19, 0x65), { etherType: pk.EtherType.IPV4 });
    expectEarlyError(pk.linkFrame({}, [short]), 'err_ipv4_trunc');
  });

  test('version not matching the EtherType → ERR_IP_VERSION', () => {
    expectEarlyError(pk.tcp4({ ip: { version: 6 } }), 'err_ip_version');
    expectEarlyError(pk.tcp6({ ip: { version: 4 } }), 'err_ip_version');
    expectEarlyError(pk.tcp4({ ip: { version: 6, ihl: 2 } }), 'err_ip_version');
  });

  test.each([
    ['shorter than the header', { totalLength: 19 }],
    ['shorter than header with options', { totalLength: 23, options: Buffer.alloc(4, 1) }],
    ['beyond the frame', { totalLength: 41 }],
    ['far beyond the frame', { totalLength: 0xffff }],
  ])('total length %s → ERR_IPV4_BAD_LEN', (_name, ip) => {
    expectEarlyError(pk.tcp4({ ip }), 'err_ipv4_bad_len');
  });

  test('the transport ends where the IP packet ends, not where the frame does', () => {
    expectMalformed(pk.tcp4({ dataOffset: 6, padding: 20 }), 'err_tcp_bad_doff');
    expectMalformed(pk.udp4({ ip: { totalLength: 27 }, padding: 10 }), 'err_udp_trunc');
    expect(countsOf(pk.tcp4({ dataOffset: 6, ip: { totalLength: 44 }, padding: 4 }))).toMatchObject({ syn: 1 });
  });

  test('non-first fragments: counted, never parsed past IPv4', () => {
    const model = run([
      pk.tcp4({ ip: { fragOffset: 1 }, flags: 'S' }),
      pk.tcp4({ ip: { fragOffset: 0x1fff, mf: true }, dataOffset: 0 }),
    ]);
    expect(withoutZeros(model.globals())).toMatchObject({ fragments: 2n, ipv4: 2n });
    expect(model.globals().err_tcp_bad_doff).toBe(0n);
    const source = withoutZeros(sourceOf(model, SRC4));
    expect(source).toEqual({ packets: 2n, bytes: 108n, fragments: 2, host_bits: 1 });
    expect(model.destinations().size).toBe(0);
  });

  test('first fragments (MF, offset 0) are parsed', () => {
    expect(countsOf(pk.tcp4({ ip: { mf: true }, flags: 'S' }))).toMatchObject({ syn: 1 });
  });

  test('ICMP is IPv4 protocol 1 only; 4 bytes needed', () => {
    expect(countsOf(pk.icmp4())).toMatchObject({ icmp: 1 });
    expect(countsOf(pk.linkFrame({}, [pk.ipv4(), pk.icmpv6()]))).toEqual({ host_bits: 1 });
    expectMalformed(pk.icmp4({ ip: { totalLength: 23 } }), 'err_icmp_trunc');
    expect(countsOf(pk.icmp4({ ip: { totalLength: 24 } }))).toMatchObject({ icmp: 1 });
  });

  test('other protocols count only packets, bytes and the host bit', () => {
    const gre = pk.linkFrame({}, [pk.ipv4(), pk.raw('gre', { protocol: pk.IpProto.GRE })]);
    expect(countsOf(gre)).toEqual({ host_bits: 1 });
  });
});

describe('TCP and UDP header checks', () => {
  test.each([0, 1, 2, 3, 4])('data offset %i → ERR_TCP_BAD_DOFF', (dataOffset) => {
    expectMalformed(pk.tcp4({ dataOffset }), 'err_tcp_bad_doff');
  });

  test('data offset up to the end of the IP payload', () => {
    expect(countsOf(pk.tcp4({ options: Buffer.alloc(40, 1) }))).toMatchObject({ syn: 1 });
    expectMalformed(pk.tcp4({ options: Buffer.alloc(36, 1), dataOffset: 15 }), 'err_tcp_bad_doff');
  });

  test('IP payloads shorter than a TCP or UDP header', () => {
    for (let k = 0; k < 20; k++) expectMalformed(pk.tcp4({ ip: { totalLength: 20 + k } }), 'err_tcp_trunc');
    for (let k = 0; k < 20; k++) expectMalformed(pk.tcp6({ ip: { payloadLength: k } }), 'err_tcp_trunc', SRC6);
    for (let k = 0; k < 8; k++) expectMalformed(pk.udp4({ ip: { totalLength: 20 + k } }), 'err_udp_trunc');
    expect(countsOf(pk.udp4({ ip: { totalLength: 28 } }))).toMatchObject({ udp: 1, port_bits: 1 });
  });
});

describe('IPv6 header and extension headers', () => {
  const headers: Array<[string, () => pk.Layer]> = [
    ['hop-by-hop', () => pk.hopByHop()],
    ['routing', () => pk.routing({ addresses: ['fd00::7', 'fd00::8'] })],
    ['destination options', () => pk.destOpts({ options: Buffer.from([0x1e, 10, ...Buffer.alloc(10)]) })],
    ['AH', () => pk.ah()],
    ['AH, 16 bytes ((len + 2) * 4, not (len + 1) * 8)', () => pk.ah({ icv: Buffer.alloc(4) })],
    ['fragment, offset 0', () => pk.fragment6({ more: true })],
  ];

  test.each(headers)('%s, then TCP', (_name, header) => {
    expect(countsOf(pk.tcp6({ ext: [header()] }), SRC6)).toMatchObject({ syn: 1, port_bits: 1 });
  });

  test('six extension headers are followed, a seventh is ERR_IPV6_EXT_LIMIT', () => {
    const six = headers.map(([, header]) => header());
    expect(countsOf(pk.udp6({ ext: six }), SRC6)).toMatchObject({ udp: 1 });
    expectMalformed(pk.udp6({ ext: [...six, pk.destOpts()] }), 'err_ipv6_ext_limit', SRC6);
  });

  test('the seventh header is refused before its bytes are looked at', () => {
    const seven = Array.from({ length: 7 }, () => pk.hopByHop());
    expectMalformed(pk.tcp6({ ext: seven, ip: { payloadLength: 6 * 8 } }), 'err_ipv6_ext_limit', SRC6);
  });

  test.each<[string, pk.Layer[], Partial<pk.Ipv6FrameOptions>]>([
    ['length field beyond the payload', [pk.hopByHop({ hdrExtLen: 5 })], {}],
    ['AH length field beyond the payload', [pk.ah({ payloadLen: 9 })], {}],
    ['first 2 bytes missing', [pk.hopByHop()], { ip: { payloadLength: 1 } }],
    ['fragment header needs 8 bytes', [pk.fragment6()], { ip: { payloadLength: 7 } }],
    ['beyond the payload though inside the frame', [pk.routing({ hdrExtLen: 2 })], { padding: 24 }],
    ['second header truncated', [pk.destOpts(), pk.hopByHop()], { ip: { payloadLength: 12 } }],
  ])('%s → ERR_IPV6_EXT_TRUNC', (_name, ext, options) => {
    expectMalformed(pk.udp6({ ...options, ext }), 'err_ipv6_ext_trunc', SRC6);
  });

  test('a fragment header with an offset makes a non-first fragment', () => {
    const model = run([pk.tcp6({ ext: [pk.hopByHop(), pk.fragment6({ offset: 1 })], dataOffset: 0 })]);
    expect(withoutZeros(model.globals())).toMatchObject({ fragments: 1n, ipv6: 1n });
    expect(withoutZeros(sourceOf(model, SRC6))).toMatchObject({ fragments: 1, host_bits: 1 });
    expect(model.destinations().size).toBe(0);
  });

  test('IPv6 header checks', () => {
    for (let length = 14; length < 54; length++) {
      expectEarlyError(pk.tcp6().subarray(0, length), 'err_ipv6_trunc');
    }
    expectEarlyError(pk.tcp6({ ip: { payloadLength: 21 } }), 'err_ipv6_bad_len');
    expect(countsOf(pk.tcp6({ ip: { payloadLength: 20 }, padding: 30 }), SRC6)).toMatchObject({ syn: 1 });
  });

  test('ICMPv6 is next header 58 only; 4 bytes needed', () => {
    expect(countsOf(pk.icmp6(), SRC6)).toMatchObject({ icmp: 1 });
    expect(countsOf(pk.linkFrame({}, [pk.ipv6(), pk.icmp()]), SRC6)).toEqual({ host_bits: 1 });
    expectMalformed(pk.icmp6({ ip: { payloadLength: 3 } }), 'err_icmp_trunc', SRC6);
    expect(countsOf(pk.linkFrame({}, [pk.ipv6(), pk.hopByHop()]), SRC6)).toEqual({ host_bits: 1 });
  });
});

describe('truncation of a TCP SYN at every byte offset', () => {
  test.each<[string, Buffer, (length: number) => CounterName]>([
    ['IPv4', pk.tcp4(), (n) => (n < 14 ? 'err_eth_trunc' : n < 34 ? 'err_ipv4_trunc' : 'err_ipv4_bad_len')],
    [
      'IPv4 in a VLAN',
      pk.tcp4({ vlans: [{ tci: 5 }] }),
      (n) =>
        n < 14 ? 'err_eth_trunc' : n < 18 ? 'err_vlan_trunc' : n < 38 ? 'err_ipv4_trunc' : 'err_ipv4_bad_len',
    ],
    ['IPv6', pk.tcp6(), (n) => (n < 14 ? 'err_eth_trunc' : n < 54 ? 'err_ipv6_trunc' : 'err_ipv6_bad_len')],
  ])('%s', (_name, frame, errorAt) => {
    for (const prefix of pk.truncations(frame)) expectEarlyError(prefix, errorAt(prefix.length));
  });
});

describe('IPv4-mapped IPv6 sources', () => {
  const mapped = pk.tcp6({ src: '::ffff:198.18.0.1', flags: 'S' });

  test('share the IPv4 source record', () => {
    const model = run([mapped, pk.tcp4({ src: '198.18.0.1', flags: 'S' })]);
    expect(withoutZeros(model.globals())).toMatchObject({ ipv4: 1n, ipv6: 1n, new_sources: 1n });
    expect([...model.sources().keys()]).toEqual(['00000000000000000000ffffc6120001']);
    const hostBits = new Set([pk.DEFAULTS.dst6, DST4].map((dst) => exactHash(foldOf(dst)) >>> 25));
    expect(sourceOf(model, '198.18.0.1')).toMatchObject({ packets: 2n, syn: 2, host_bits: hostBits.size });
  });

  test('are looked up in the IPv4 block list', () => {
    expect(run([mapped], { blocks: [{ cidr: '198.18.0.0/24' }] }).globals().drop_blocked).toBe(1n);
    expect(run([mapped], { blocks: [{ cidr: '::ffff:198.18.0.0/120' }] }).globals().drop_blocked).toBe(1n);
    expect(run([mapped], { blocks: [{ cidr: '::/0' }] }).globals().drop_blocked).toBe(0n);
    const allowed = run([mapped], { blocks: [{ cidr: '0.0.0.0/0' }], allows: ['198.18.0.1'] });
    expect(allowed.allowHits('198.18.0.1/32')).toBe(1n);
  });
});

describe('block and allow lists', () => {
  const frame = pk.tcp4({ src: '198.18.0.1', flags: 'S' });

  test('a live block drops and counts nothing else', () => {
    const model = new ReferenceModel({ blocks: [{ cidr: '198.18.0.0/24' }] });
    expect(model.process(frame)).toBe('drop');
    expect(withoutZeros(model.globals())).toEqual({ packets: 1n, bytes: 54n, ipv4: 1n, drop_blocked: 1n });
    expect(model.blockDrops('198.18.0.0/24')).toBe(1n);
    expect(model.blockDrops('198.18.0.77/24')).toBe(1n); // the same prefix, host bits aside
    expect(model.sources().size).toBe(0);
    expect(model.destinations().size).toBe(0);
  });

  test('the longest allow prefix wins over a live block', () => {
    const model = new ReferenceModel({
      blocks: [{ cidr: '198.18.0.0/16' }],
      allows: ['198.18.0.0/24', '198.18.0.1'],
    });
    expect(model.process(frame)).toBe('pass');
    expect(withoutZeros(model.globals())).toMatchObject({ allowlisted: 1n, pass: 1n, new_sources: 1n });
    expect(model.allowHits('198.18.0.1/32')).toBe(1n);
    expect(model.allowHits('198.18.0.0/24')).toBe(0n);
    expect(model.blockDrops('198.18.0.0/16')).toBe(0n);
  });

  test('an expired longest block passes even if a shorter live one matches; allows are not consulted', () => {
    const model = run([frame], {
      blocks: [{ cidr: '198.18.0.0/16' }, { cidr: '198.18.0.0/24', expired: true }],
      allows: ['198.18.0.0/24'],
    });
    expect(withoutZeros(model.globals())).toMatchObject({ block_expired: 1n, pass: 1n });
    expect(model.globals().allowlisted).toBe(0n);
    expect(model.allowHits('198.18.0.0/24')).toBe(0n);
  });

  test('a live longest block drops even if a shorter one expired', () => {
    const blocks = [{ cidr: '198.18.0.0/16', expired: true }, { cidr: '198.18.0.0/24' }];
    const model = run([frame], { blocks });
    expect([model.blockDrops('198.18.0.0/24'), model.blockDrops('198.18.0.0/16')]).toEqual([1n, 0n]);
    expect(model.globals().block_expired).toBe(0n);
  });

  test('allows alone never count', () => {
    expect(globalsOf([frame], { allows: ['198.18.0.0/24'] }).allowlisted).toBeUndefined();
    const withFlag = globalsOf([frame], { allows: ['198.18.0.0/24'], flags: IDS_CFG_BLOCKS });
    expect(withFlag.allowlisted).toBeUndefined();
  });

  test('without IDS_CFG_BLOCKS the lists are not looked at', () => {
    expect(globalsOf([frame], { blocks: [{ cidr: '198.18.0.0/24' }], flags: 0 })).toMatchObject({ pass: 1n });
  });

  test('families are separate', () => {
    const v6 = pk.tcp6({ src: 'fd00::1' });
    const globals = run([frame, v6], { blocks: [{ cidr: 'fd00::/8' }] }).globals();
    expect(globals).toMatchObject({ drop_blocked: 1n, ipv4: 1n, ipv6: 1n });
    expect(run([frame, v6], { blocks: [{ cidr: '0.0.0.0/0' }] }).sources().has(addrKey('fd00::1'))).toBe(true);
  });

  test('unknown prefixes are an error', () => {
    expect(() => new ReferenceModel().blockDrops('10.0.0.0/8')).toThrow();
    for (const cidr of ['10.0.0.0/33', '10.0.0.0/', '10.0.0.0/-1', 'fd00::/129', '10.0.0/8']) {
      expect(() => new ReferenceModel({ blocks: [{ cidr }] })).toThrow();
    }
  });
});

describe('scope of the model', () => {
  test('the insert throttle and events are refused', () => {
    expect(() => new ReferenceModel({ insertRate: 100 })).toThrow(/insert/);
    expect(() => new ReferenceModel({ eventRate: 100 })).toThrow(/events/);
  });

  test('the crafted corpus and its truncations reach every counter the model keeps', () => {
    const corpus = pk.craftedCorpus();
    const model = run([...corpus, ...corpus.flatMap((frame) => pk.truncations(frame))]);
    const notReached = COUNTER_NAMES.filter((name) => model.globals()[name] === 0n);
    const lists = ['drop_blocked', 'allowlisted', 'block_expired'];
    const outsideScope = ['drop_dst_limit', 'untracked', 'events', 'events_limited', 'ringbuf_full'];
    expect(notReached).toEqual([...lists, ...outsideScope]);
  });

  test('random and mutated packets: every packet passes or drops exactly once', () => {
    const random = pk.rng(5);
    const frames = Array.from({ length: 5000 }, () => pk.mutate(pk.randomPacket(random), random));
    const model = run(frames, {
      blocks: [{ cidr: '198.18.0.0/28' }, { cidr: 'fd00::/16', expired: true }],
      allows: ['198.18.0.8/29'],
    });
    const globals = model.globals();
    expect(globals.pass + globals.drop_blocked).toBe(5000n);
    expect(globals.drop_blocked > 0n && globals.allowlisted > 0n && globals.block_expired > 0n).toBe(true);
    const sourcePackets = [...model.sources().values()].reduce((sum, source) => sum + source.packets, 0n);
    expect(sourcePackets).toBe(globals.ipv4 + globals.ipv6 - globals.drop_blocked);
  });
});
