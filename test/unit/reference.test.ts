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
  ampSourceBit,
  foldAddress,
  hostBit,
  portBit,
  protoBit,
  sketchHash,
  sourceBit,
  type CounterName,
  type DstExpected,
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
  const nonZero = Object.entries(record).filter(([, value]) => value !== 0n && value !== 0 && value !== false);
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
      ...zeroSource(), packets: 2n, bytes: 108n, syn: 2, syn_window: 2, port_bits: 1, host_bits: 1, proto_bits: 1,
    });
    const destination = { ...zeroDestination(), syn: 2n, bytes: 108n, src_bits: 1 };
    expect(model.destinations()).toEqual(new Map([[addrKey(DST4), destination]]));
  });
});

function zeroSource(): SrcExpected {
  return {
    packets: 0n, bytes: 0n, syn: 0, synack: 0, ack: 0, rst: 0, fin: 0, null_scan: 0, fin_only: 0, xmas: 0,
    synfin: 0, udp: 0, icmp: 0, fragments: 0, malformed: 0, first_fragments: 0, replies: 0, handshakes: 0,
    ttl_mismatch: 0, verified: false, verified_ttl: 0, port_bits: 0, host_bits: 0, proto_bits: 0, syn_window: 0,
  };
}

function zeroDestination(): DstExpected {
  return {
    syn: 0n, udp: 0n, icmp: 0n, bytes: 0n, synack: 0n, udp_amp: 0n, udp_amp_bytes: 0n, fragments: 0n,
    fragment_bytes: 0n, handshakes: 0n, syn_out: 0n, src_bits: 0, amp_src_bits: 0,
  };
}

function destinationOf(model: ReferenceModel, ip: string): DstExpected {
  const destination = model.destinations().get(addrKey(ip));
  if (!destination) throw new Error(`no destination record for ${ip}`);
  return destination;
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
    ['SAEC', ['synack']],
    ['P', []],
    ['PU', []],
  ])("flags '%s' → %j", (flags, classes) => {
    const { host_bits, port_bits, proto_bits, syn_window, ...counts } = countsOf(build(flags), src);
    expect(Object.keys(counts).sort()).toEqual([...classes].sort());
    expect({ host_bits, port_bits, proto_bits }).toEqual({ host_bits: 1, port_bits: 1, proto_bits: 1 });
    expect(syn_window ?? 0).toBe(classes.includes('syn') ? 1 : 0);
  });
});

describe('destinations and sketches', () => {
  test('only SYN, SYN-ACK, UDP, ICMP, ICMPv6, amplifier traffic and fragments update the destination', () => {
    const frames = [
      pk.tcp4({ flags: 'S' }), pk.tcp4({ flags: 'SA' }), pk.tcp4({ flags: 'A' }), pk.tcp4({ flags: 'SF' }),
      pk.udp4(), pk.udp4(), pk.icmp4(), pk.tcp4({ ip: { fragOffset: 9 } }), pk.tcp4({ dataOffset: 2 }),
    ];
    const model = run(frames);
    const fragment = BigInt(frames[7].length);
    const bytes = BigInt(frames[0].length + frames[1].length + frames[4].length * 2 + frames[6].length) + fragment;
    expect(destinationOf(model, DST4)).toEqual({
      ...zeroDestination(), syn: 1n, synack: 1n, udp: 2n, icmp: 1n, fragments: 1n, fragment_bytes: fragment, bytes, src_bits: 1,
    });
    expect(destinationOf(run([pk.icmp6({ dst: 'fd00::5' })]), 'fd00::5')).toMatchObject({ icmp: 1n });
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
  test.each([0, 1, 2, 3, 4])('%i tags: parsed', (tags) => {
    const tpid = (i: number): number => (i === 0 ? pk.EtherType.QINQ : pk.EtherType.VLAN);
    const vlans = Array.from({ length: tags }, (_, i) => ({ tpid: tpid(i), tci: i + 1 }));
    const bytes = BigInt(54 + 4 * tags);
    expect(globalsOf([pk.tcp4({ vlans })])).toEqual({ packets: 1n, bytes, pass: 1n, ipv4: 1n, new_sources: 1n });
  });

  test('5 tags: ERR_ENCAP_DEPTH, also when the fifth tag has no bytes', () => {
    expectEarlyError(pk.tcp4({ vlans: tags(5) }), 'err_encap_depth');
    const fifthWithoutBytes = pk.frame(pk.ether(), ...tags(3).map((t) => pk.vlan(t)), pk.vlan({ etherType: pk.EtherType.VLAN }));
    expectEarlyError(fifthWithoutBytes, 'err_encap_depth');
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

function tags(n: number): pk.LinkOptions['vlans'] & object {
  return Array.from({ length: n }, (_, i) => ({ tpid: i % 2 ? pk.EtherType.VLAN : pk.EtherType.QINQ, tci: i + 1 }));
}

function labels(n: number): pk.LinkOptions['mpls'] & object {
  return Array.from({ length: n }, (_, i) => ({ label: 100 + i }));
}

describe('PPPoE and MPLS', () => {
  test('a PPPoE session carries IPv4 or IPv6 by its PPP protocol; anything else is NON_IP', () => {
    expect(countsOf(pk.tcp4({ pppoe: {} }))).toMatchObject({ syn: 1 });
    expect(countsOf(pk.tcp6({ vlans: tags(2), pppoe: {} }), SRC6)).toMatchObject({ syn: 1 });
    expectEarlyError(pk.linkFrame({ pppoe: { pppProtocol: pk.PppProtocol.LCP } }, [pk.raw(Buffer.alloc(20))]), 'non_ip');
    expectEarlyError(pk.linkFrame({ pppoe: { pppProtocol: pk.PppProtocol.IPV6 } }, [pk.ipv4(), pk.tcp()]), 'err_ip_version');
  });

  test('a PPPoE session header needs its 8 bytes', () => {
    const frame = pk.tcp4({ pppoe: {} });
    for (let length = 14; length < 22; length++) expectEarlyError(frame.subarray(0, length), 'err_pppoe_trunc');
    expectEarlyError(frame.subarray(0, 22), 'err_ipv4_trunc');
  });

  test.each([1, 2, 3, 4])('%i MPLS labels: the first nibble after the bottom one names the payload', (n) => {
    expect(countsOf(pk.udp4({ mpls: labels(n) }))).toMatchObject({ udp: 1 });
    expect(countsOf(pk.tcp6({ vlans: tags(1), mpls: labels(n) }), SRC6)).toMatchObject({ syn: 1 });
    expectEarlyError(pk.linkFrame({ mpls: labels(n) }, [pk.raw(Buffer.from([0x00, 0x01]))]), 'non_ip');
    expectEarlyError(pk.linkFrame({ mpls: labels(n) }, [pk.raw(Buffer.from([0x45]))]), 'err_ipv4_trunc');
  });

  test('MPLS: a label, or the first byte after the bottom one, cut off → ERR_MPLS_TRUNC', () => {
    const frame = pk.udp4({ mpls: labels(2) });
    for (let length = 14; length <= 22; length++) expectEarlyError(frame.subarray(0, length), 'err_mpls_trunc');
    expectEarlyError(frame.subarray(0, 23), 'err_ipv4_trunc');
  });

  test('a fifth MPLS label: ERR_ENCAP_DEPTH, recognised by the fourth one not being the bottom', () => {
    expectEarlyError(pk.udp4({ mpls: labels(5) }), 'err_encap_depth');
    expectEarlyError(pk.linkFrame({ mpls: labels(4).map((l) => ({ ...l, bottom: false })) }, []), 'err_encap_depth');
  });

  test('too deep a frame is dropped (DROP_UNPARSED) only while blocks are in force and the flag is set', () => {
    const deep = pk.tcp4({ vlans: tags(5) });
    const blocks = [{ cidr: '203.0.113.0/24' }];
    const model = new ReferenceModel({ blocks, dropUnparsed: true });
    expect(model.process(deep)).toBe('drop');
    expect(model.process(pk.udp4({ mpls: labels(5) }))).toBe('drop');
    expect(model.process(pk.frame(pk.ether({ etherType: pk.EtherType.VLAN }), pk.raw('x')))).toBe('pass');
    expect(withoutZeros(model.globals())).toEqual({
      packets: 3n, bytes: BigInt(deep.length + pk.udp4({ mpls: labels(5) }).length + 15), err_encap_depth: 2n, drop_unparsed: 2n,
      err_vlan_trunc: 1n, pass: 1n,
    });
    expect(new ReferenceModel({ dropUnparsed: true }).process(deep)).toBe('pass');
    expect(new ReferenceModel({ blocks }).process(deep)).toBe('pass');
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
    expect(source).toEqual({ packets: 2n, bytes: 108n, fragments: 2, host_bits: 1, proto_bits: 1 });
    expect(withoutZeros(destinationOf(model, DST4))).toEqual({ fragments: 2n, fragment_bytes: 108n, bytes: 108n, src_bits: 1 });
  });

  test('first fragments (MF, offset 0) are parsed', () => {
    expect(countsOf(pk.tcp4({ ip: { mf: true }, flags: 'S' }))).toMatchObject({ syn: 1, first_fragments: 1, port_bits: 1 });
  });

  test('ICMP is IPv4 protocol 1 only; 4 bytes needed', () => {
    expect(countsOf(pk.icmp4())).toMatchObject({ icmp: 1 });
    expect(countsOf(pk.linkFrame({}, [pk.ipv4(), pk.icmpv6()]))).toEqual({ host_bits: 1, proto_bits: 1 });
    expectMalformed(pk.icmp4({ ip: { totalLength: 23 } }), 'err_icmp_trunc');
    expect(countsOf(pk.icmp4({ ip: { totalLength: 24 } }))).toMatchObject({ icmp: 1 });
  });

  test('other protocols count only packets, bytes, the host bit and the protocol bit', () => {
    const gre = pk.linkFrame({}, [pk.ipv4(), pk.raw('gre', { protocol: pk.IpProto.GRE })]);
    expect(countsOf(gre)).toEqual({ host_bits: 1, proto_bits: 1 });
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

  test('eight extension headers are followed, a ninth is ERR_IPV6_EXT_LIMIT', () => {
    const eight = [...headers.map(([, header]) => header()), pk.hopByHop(), pk.routing()];
    expect(countsOf(pk.udp6({ ext: eight }), SRC6)).toMatchObject({ udp: 1, first_fragments: 1 });
    const nine = pk.udp6({ ext: [...eight.filter((h) => h.kind !== 'frag6'), pk.destOpts(), pk.destOpts()] });
    expectMalformed(nine, 'err_ipv6_ext_limit', SRC6);
  });

  test('the ninth header is refused before its bytes are looked at', () => {
    const nine = Array.from({ length: 9 }, () => pk.hopByHop());
    expectMalformed(pk.tcp6({ ext: nine, ip: { payloadLength: 8 * 8 } }), 'err_ipv6_ext_limit', SRC6);
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
    expect(destinationOf(model, pk.DEFAULTS.dst6)).toMatchObject({ fragments: 1n, syn: 0n });
  });

  test('a fragment header with an offset makes a non-first fragment even after a first-fragment header', () => {
    const model = run([pk.udp6({ ext: [pk.fragment6({ more: true }), pk.fragment6({ offset: 4 })] })]);
    expect(withoutZeros(model.globals())).toMatchObject({ fragments: 1n });
    expect(model.globals().first_fragments).toBe(0n);
    expect(withoutZeros(sourceOf(model, SRC6))).toMatchObject({ fragments: 1 });
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
    expect(countsOf(pk.linkFrame({}, [pk.ipv6(), pk.icmp()]), SRC6)).toEqual({ host_bits: 1, proto_bits: 1 });
    expectMalformed(pk.icmp6({ ip: { payloadLength: 3 } }), 'err_icmp_trunc', SRC6);
    expect(countsOf(pk.linkFrame({}, [pk.ipv6(), pk.hopByHop()]), SRC6)).toEqual({ host_bits: 1, proto_bits: 1 });
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

  test('an expired longest block hands over to the covering live one', () => {
    const model = new ReferenceModel({ blocks: [{ cidr: '198.18.0.0/16' }, { cidr: '198.18.0.1/32', expired: true }] });
    expect(model.process(frame)).toBe('drop');
    expect([model.blockDrops('198.18.0.0/16'), model.globals().block_expired]).toEqual([1n, 0n]);
  });

  test('up to four entries deep: an expired /32, /28, /26 and /25 hand over to a live /24, not past it', () => {
    const expired = ['198.18.0.1/32', '198.18.0.0/28', '198.18.0.0/26', '198.18.0.0/25'].map((cidr) => ({ cidr, expired: true }));
    const three = new ReferenceModel({ blocks: [...expired.slice(1), { cidr: '198.18.0.0/24' }] });
    expect(three.process(frame)).toBe('drop');
    expect(three.blockDrops('198.18.0.0/24')).toBe(1n);
    const four = new ReferenceModel({ blocks: [...expired, { cidr: '198.18.0.0/24' }] });
    expect(four.process(frame)).toBe('pass');
    expect(withoutZeros(four.globals())).toMatchObject({ block_expired: 1n, pass: 1n });
  });

  test('an expired entry with nothing live around it passes; an expired /0 ends the search', () => {
    const alone = run([frame, frame], { blocks: [{ cidr: '198.18.0.0/24', expired: true }], allows: ['198.18.0.0/24'] });
    expect(withoutZeros(alone.globals())).toMatchObject({ block_expired: 2n, pass: 2n });
    expect(alone.allowHits('198.18.0.0/24')).toBe(0n);
    expect(run([frame], { blocks: [{ cidr: '0.0.0.0/0', expired: true }] }).globals().block_expired).toBe(1n);
  });

  test('a live /32 inside an expired /24 drops', () => {
    const model = new ReferenceModel({ blocks: [{ cidr: '198.18.0.0/24', expired: true }, { cidr: '198.18.0.1/32' }] });
    expect([model.process(frame), model.process(pk.tcp4({ src: '198.18.0.2' }))]).toEqual(['drop', 'pass']);
    expect(model.globals().block_expired).toBe(1n);
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

describe('first fragments', () => {
  test('a TCP SYN cut into 8-byte fragments (nmap -f): the first one has ports but no flags, the others are fragments', () => {
    const fragments = pk.fragments4({ bytesPerFragment: 8 }, pk.tcp({ dport: 22, flags: 'S' }));
    const bytes = BigInt(fragments.reduce((sum, f) => sum + f.length, 0));
    const model = run(fragments);
    expect(withoutZeros(model.globals())).toEqual({ packets: 3n, bytes, pass: 3n, ipv4: 3n, new_sources: 1n, first_fragments: 1n, fragments: 2n });
    expect(withoutZeros(sourceOf(model, SRC4))).toEqual({ packets: 3n, bytes, first_fragments: 1, fragments: 2, port_bits: 1, host_bits: 1, proto_bits: 1 });
    expect(withoutZeros(destinationOf(model, DST4))).toEqual({ fragments: 3n, fragment_bytes: bytes, bytes, src_bits: 1 });
  });

  test('a first fragment with a whole TCP header is TCP', () => {
    const [first] = pk.fragments4({ bytesPerFragment: 24, payload: 'more than 4 bytes' }, pk.tcp({ flags: 'S' }));
    expect(countsOf(first)).toMatchObject({ syn: 1, syn_window: 1, first_fragments: 1 });
  });

  test('fewer than the 4 port bytes: malformed; ICMP gets no such leniency', () => {
    const cut = (protocol: number, bytes: number[]) => pk.linkFrame({}, [pk.ipv4({ mf: true, protocol }), pk.raw(Buffer.from(bytes))]);
    expectMalformedFirstFragment(cut(pk.IpProto.TCP, [0x9c, 0x40, 0]), 'err_tcp_trunc');
    expectMalformedFirstFragment(cut(pk.IpProto.UDP, [0x9c, 0x40, 0]), 'err_udp_trunc');
    expectMalformedFirstFragment(cut(pk.IpProto.ICMP, [8, 0]), 'err_icmp_trunc');
  });

  test('a cut TCP header that would be malformed anyway (data offset 2) still only tells its ports', () => {
    const frame = pk.linkFrame({}, [pk.ipv4({ mf: true }), pk.tcp({ dataOffset: 2 })]);
    expect(withoutZeros(run([frame]).globals())).toEqual({ packets: 1n, bytes: BigInt(frame.length), pass: 1n, ipv4: 1n, new_sources: 1n, first_fragments: 1n });
  });

  test('UDP from an amplifier port, cut in its header: amplifier traffic and a reply, not udp', () => {
    const frame = pk.linkFrame({}, [pk.ipv4({ mf: true, protocol: pk.IpProto.UDP }), pk.raw(Buffer.from([0, 123, 0x9c, 0x40, 0, 0]))]);
    const model = run([frame]);
    expect(withoutZeros(sourceOf(model, SRC4))).toMatchObject({ first_fragments: 1, replies: 1, host_bits: 1, proto_bits: 1 });
    expect(sourceOf(model, SRC4).port_bits).toBe(0);
    const length = BigInt(frame.length);
    expect(withoutZeros(destinationOf(model, DST4))).toEqual({
      udp_amp: 1n, udp_amp_bytes: length, fragments: 1n, fragment_bytes: length, bytes: length, src_bits: 1, amp_src_bits: 1,
    });
  });

  test('IPv6: a fragment header with M set and offset 0 makes a first fragment, whatever follows', () => {
    const [first, second] = pk.fragments6({ bytesPerFragment: 8, ext: [pk.hopByHop()] }, pk.tcp({ dport: 443, flags: 'S' }));
    const model = run([first, second]);
    expect(withoutZeros(model.globals())).toMatchObject({ first_fragments: 1n, fragments: 1n });
    expect(withoutZeros(sourceOf(model, SRC6))).toMatchObject({ first_fragments: 1, fragments: 1, port_bits: 1 });
    const broken = run([pk.udp6({ ext: [pk.fragment6({ more: true }), pk.hopByHop({ hdrExtLen: 9 })] })]);
    expect(withoutZeros(broken.globals())).toMatchObject({ first_fragments: 1n, err_ipv6_ext_trunc: 1n });
    expect(destinationOf(broken, pk.DEFAULTS.dst6)).toMatchObject({ fragments: 1n });
  });
});

function expectMalformedFirstFragment(frame: Buffer, error: CounterName): void {
  const model = run([frame]);
  expect(withoutZeros(model.globals())).toMatchObject({ [error]: 1n, first_fragments: 1n });
  expect(withoutZeros(sourceOf(model, SRC4))).toMatchObject({ malformed: 1, first_fragments: 1 });
  expect(sourceOf(model, SRC4).port_bits).toBe(0);
}

describe('port classes: replies and amplifier traffic', () => {
  test.each<[string, Buffer, boolean, boolean]>([
    ['TCP ACK 443 → 50000', pk.tcp4({ sport: 443, dport: 50000, flags: 'A' }), true, false],
    ['TCP SYN-ACK 443 → 50000', pk.tcp4({ sport: 443, dport: 50000, flags: 'SA' }), true, false],
    ['TCP SYN 80 → 50000: a SYN is never a reply', pk.tcp4({ sport: 80, dport: 50000, flags: 'S' }), false, false],
    ['TCP 80 → 1023: below 1024', pk.tcp4({ sport: 80, dport: 1023, flags: 'A' }), false, false],
    ['TCP 80 → 8080: to a service port', pk.tcp4({ sport: 80, dport: 8080, flags: 'A' }), false, false],
    ['TCP 40000 → 50000: from an ephemeral port', pk.tcp4({ sport: 40000, dport: 50000, flags: 'A' }), false, false],
    ['TCP 53 → 50000: a reply, but amplifiers are UDP', pk.tcp4({ sport: 53, dport: 50000, flags: 'PA' }), true, false],
    ['UDP 53 → 50000', pk.udp4({ sport: 53, dport: 50000 }), true, true],
    ['UDP 123 → 123', pk.udp4({ sport: 123, dport: 123 }), false, true],
    ['UDP 11211 → 37810: an amplifier port is not ephemeral', pk.udp4({ sport: 11211, dport: 37810 }), false, true],
    ['UDP 40000 → 53', pk.udp4({ sport: 40000, dport: 53 }), false, false],
    ['UDP 1900 → 50000 over IPv6', pk.udp6({ src: SRC4.replace(/^/, '::ffff:'), sport: 1900, dport: 50000 }), true, true],
  ])('%s', (_name, frame, reply, amplifier) => {
    const model = run([frame]);
    const source = sourceOf(model, SRC4);
    expect({ replies: source.replies, port_bits: source.port_bits }).toEqual({ replies: reply ? 1 : 0, port_bits: reply ? 0 : 1 });
    const destination = [...model.destinations().values()][0];
    const length = BigInt(frame.length);
    expect({ udp_amp: destination?.udp_amp ?? 0n, udp_amp_bytes: destination?.udp_amp_bytes ?? 0n, amp_src_bits: destination?.amp_src_bits ?? 0 })
      .toEqual(amplifier ? { udp_amp: 1n, udp_amp_bytes: length, amp_src_bits: 1 } : { udp_amp: 0n, udp_amp_bytes: 0n, amp_src_bits: 0 });
  });

  test('amp_src_bits counts distinct bits of hash(fold(src)) >> 25 over amplifier sources only', () => {
    const reflectors = Array.from({ length: 40 }, (_, i) => `198.18.${i}.53`);
    const model = run([...reflectors.map((src) => pk.udp4({ src, sport: 53, dport: 50000 })), pk.udp4({ src: '198.18.99.1', sport: 40000 })]);
    const bits = new Set(reflectors.map((src) => exactHash(foldOf(src)) >>> 25));
    expect(destinationOf(model, DST4)).toMatchObject({ udp_amp: 40n, udp: 41n, amp_src_bits: bits.size });
    expect(ampSourceBit(Buffer.from(addrKey('fd00::1'), 'hex'))).toBe(exactHash(foldOf('fd00::1')) >>> 25);
  });

  test('the port class table is an input: a port made a service makes replies', () => {
    const table = new Uint8Array(65536);
    table[7777] = 1;
    const model = run([pk.tcp4({ sport: 7777, dport: 50000, flags: 'A' }), pk.tcp4({ sport: 443, dport: 50000, flags: 'A' })], { portClasses: table });
    expect(sourceOf(model, SRC4)).toMatchObject({ replies: 1, port_bits: 1 });
  });
});

describe('protocol bits', () => {
  test('distinct bits of hash(protocol) >> 27, the protocol taken after the extension headers', () => {
    const gre = pk.linkFrame({}, [pk.ipv4(), pk.raw('gre', { protocol: pk.IpProto.GRE })]);
    const model = run([pk.tcp4(), pk.udp4(), pk.icmp4(), gre, pk.tcp4({ ip: { fragOffset: 3 } })]);
    const bits = new Set([6, 17, 1, 47].map((protocol) => exactHash(protocol) >>> 27));
    expect(sourceOf(model, SRC4).proto_bits).toBe(bits.size);
    expect(protoBit(58)).toBe(exactHash(58) >>> 27);
    expect(sourceOf(run([pk.udp6({ ext: [pk.hopByHop(), pk.destOpts()] })]), SRC6).proto_bits).toBe(1);
  });

  test("when the extension header walk fails, the IPv6 header's next header", () => {
    const hopByHop = run([pk.tcp6({ ext: [pk.hopByHop({ hdrExtLen: 9 })] }), pk.linkFrame({}, [pk.ipv6(), pk.raw('', { protocol: 0 })])]);
    expect(sourceOf(hopByHop, SRC6)).toMatchObject({ malformed: 2, proto_bits: 1 });
    const routing = run([pk.tcp6({ ext: [pk.routing(), pk.hopByHop({ hdrExtLen: 9 })] }), pk.linkFrame({}, [pk.ipv6(), pk.raw('', { protocol: 43 })])]);
    expect(sourceOf(routing, SRC6)).toMatchObject({ malformed: 2, proto_bits: 1 });
  });
});

describe('protected prefixes', () => {
  const protect = ['198.19.0.0/24', 'fd00::1:0/112'];

  test('traffic to an unprotected destination counts NOT_PROTECTED and its parse errors, nothing per source or destination', () => {
    const frames = [pk.tcp4({ dst: '198.20.0.1', flags: 'S' }), pk.tcp4({ dst: '198.20.0.1', dataOffset: 2 }), pk.udp6({ dst: 'fd00::2:1' })];
    const model = run(frames, { protect });
    expect(withoutZeros(model.globals())).toEqual({
      packets: 3n, bytes: BigInt(frames.reduce((sum, f) => sum + f.length, 0)), pass: 3n, ipv4: 2n, ipv6: 1n, not_protected: 3n, err_tcp_bad_doff: 1n,
    });
    expect([model.sources().size, model.destinations().size]).toEqual([0, 0]);
  });

  test('protected destinations are judged as without the list; IPv4-mapped ones in the IPv4 trie', () => {
    const model = run([pk.tcp4({ flags: 'S' }), pk.tcp6({ dst: '::ffff:198.19.0.9', flags: 'S' }), pk.tcp6({ flags: 'S' })], { protect });
    expect(withoutZeros(model.globals())).toMatchObject({ new_sources: 2n, pass: 3n });
    expect(model.globals().not_protected).toBe(0n);
  });

  test('no protected prefix: every destination is protected', () => {
    expect(run([pk.tcp4({ dst: '203.0.113.1' })]).globals().not_protected).toBe(0n);
  });

  test("a mirror port: a protected host's SYN-ACK to an outside peer records a challenge, and the peer's ACK completes it", () => {
    const model = new ReferenceModel({ protect });
    model.process(pk.tcp4({ src: '198.19.0.5', dst: '203.0.113.7', sport: 443, dport: 45000, flags: 'SA', seq: 99 }));
    model.process(pk.tcp4({ src: '198.18.0.5', dst: '203.0.113.7', sport: 443, dport: 45001, flags: 'SA', seq: 99 })); // not protected
    model.process(pk.tcp4({ src: '198.19.0.5', dst: '203.0.113.7', sport: 443, dport: 45002, flags: 'A', seq: 99 })); // not a SYN-ACK
    expect(withoutZeros(model.globals())).toMatchObject({ challenges: 1n, not_protected: 3n });
    model.process(pk.tcp4({ src: '203.0.113.7', dst: '198.19.0.5', sport: 45000, dport: 443, flags: 'A', ack: 100 }));
    expect(model.globals().handshakes).toBe(1n);
    expect(sourceOf(model, '203.0.113.7')).toMatchObject({ handshakes: 1, verified: true });
  });
});

describe('handshakes', () => {
  const HOST = DST4;
  const CLIENT = SRC4;
  const synAck = (o: pk.Ipv4FrameOptions & pk.TcpOptions = {}): Buffer => pk.tcp4({ src: HOST, dst: CLIENT, sport: 80, dport: 40000, flags: 'SA', seq: 1000, ...o });
  const fromClient = (o: pk.Ipv4FrameOptions & pk.TcpOptions = {}): Buffer => pk.tcp4({ src: CLIENT, dst: HOST, sport: 40000, dport: 80, flags: 'A', ack: 1001, ...o });

  function afterSynAck(frames: Buffer[], config?: ReferenceConfig): ReferenceModel {
    const model = new ReferenceModel(config);
    model.egress(synAck());
    for (const frame of frames) model.process(frame);
    return model;
  }

  test('the egress SYN-ACK is a challenge; the ACK carrying its sequence number + 1 completes it, once', () => {
    const model = afterSynAck([fromClient({ flags: 'S', ack: 0 }), fromClient({ ip: { ttl: 57 } }), fromClient({ ip: { ttl: 57 } })]);
    expect(withoutZeros(model.globals())).toMatchObject({ challenges: 1n, handshakes: 1n });
    expect(sourceOf(model, CLIENT)).toMatchObject({ handshakes: 1, verified: true, verified_ttl: 57, ttl_mismatch: 0 });
    expect(destinationOf(model, HOST).handshakes).toBe(1n);
    expect(model.pendingChallenges()).toBe(0);
  });

  test.each<[string, Buffer]>([
    ['the wrong number', fromClient({ ack: 1000 })],
    ['another source port', fromClient({ sport: 40001 })],
    ['another destination port', fromClient({ dport: 81 })],
    ['another source', fromClient({ src: '198.18.0.2' })],
    ['RST', fromClient({ flags: 'RA' })],
    ['SYN-ACK', fromClient({ flags: 'SA' })],
    ['a cut TCP header', fromClient({ dataOffset: 2 })],
  ])('%s completes nothing', (_name, frame) => {
    const model = afterSynAck([frame]);
    expect(model.globals().handshakes).toBe(0n);
    expect(model.pendingChallenges()).toBe(1);
  });

  test.each(['PA', 'FA', 'UA', 'AEC'])("flags '%s' acknowledge too", (flags) => {
    expect(afterSynAck([fromClient({ flags })]).globals().handshakes).toBe(1n);
  });

  test('the key holds no local address: the ACK may reach another address of the host', () => {
    expect(afterSynAck([fromClient({ dst: '198.19.0.2' })]).globals().handshakes).toBe(1n);
  });

  test('after the handshake, packets whose TTL is more than 2 off count ttl_mismatch', () => {
    const model = afterSynAck([fromClient({ ip: { ttl: 60 } }), ...[58, 59, 62, 63, 57, 0, 255].map((ttl) => fromClient({ flags: 'PA', ip: { ttl } })), pk.udp4({ ip: { ttl: 1 } })]);
    expect(sourceOf(model, CLIENT)).toMatchObject({ verified_ttl: 60, ttl_mismatch: 5 }); // 63, 57, 0, 255 and the UDP datagram's 1
    expect(sourceOf(afterSynAck([fromClient({ flags: 'PA', ip: { ttl: 1 } })], {}), CLIENT).ttl_mismatch).toBe(0);
  });

  test('a verified source is not checked again within the refresh interval; its challenges wait', () => {
    const model = afterSynAck([fromClient()]);
    model.egress(synAck({ dport: 40005, seq: 5 }));
    model.process(fromClient({ sport: 40005, ack: 6 }));
    expect([model.globals().handshakes, model.pendingChallenges()]).toEqual([1n, 1]);
  });

  test('the destination counts handshakes only when its record exists', () => {
    expect(afterSynAck([fromClient()]).destinations().size).toBe(0);
  });

  test('sequence numbers wrap; IPv6 and IPv4-mapped peers', () => {
    expect(afterSynAck([]).pendingChallenges()).toBe(1);
    const model = new ReferenceModel();
    model.egress(synAck({ seq: 0xffffffff }));
    model.process(fromClient({ ack: 0 }));
    model.egress(pk.tcp6({ src: 'fd00::1:1', dst: '::ffff:198.18.0.9', sport: 22, dport: 50000, flags: 'SA', seq: 7 }));
    model.process(pk.tcp4({ src: '198.18.0.9', dst: HOST, sport: 50000, dport: 22, flags: 'A', ack: 8 }));
    expect(model.globals().handshakes).toBe(2n);
  });

  test('egress: only SYN-ACKs and SYNs of protected sources; SYNs count syn_out where the destination record exists', () => {
    const model = new ReferenceModel({ protect: ['198.19.0.0/24'] });
    model.process(pk.tcp4({ dst: HOST, flags: 'S' }));
    model.egress(pk.tcp4({ src: HOST, dst: CLIENT, flags: 'S' }));
    model.egress(pk.tcp4({ src: HOST, dst: CLIENT, flags: 'SEC' }));
    model.egress(pk.tcp4({ src: '198.19.0.99', dst: CLIENT, flags: 'S' })); // no record
    model.egress(pk.tcp4({ src: '198.20.0.1', dst: CLIENT, flags: 'SA' })); // not protected
    model.egress(pk.tcp4({ src: HOST, dst: CLIENT, flags: 'SAF' }));
    model.egress(pk.tcp4({ src: HOST, dst: CLIENT, flags: 'SA', dataOffset: 3 }));
    model.egress(pk.udp4({ src: HOST, dst: CLIENT }));
    expect(destinationOf(model, HOST).syn_out).toBe(2n);
    expect(withoutZeros(model.globals())).toEqual({ packets: 1n, bytes: 54n, pass: 1n, ipv4: 1n, new_sources: 1n });
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
    const listsAndEgress = ['drop_blocked', 'allowlisted', 'block_expired', 'drop_unparsed', 'not_protected', 'challenges', 'handshakes'];
    const outsideScope = ['drop_dst_limit', 'untracked', 'events', 'events_limited', 'ringbuf_full'];
    expect(notReached.sort()).toEqual([...listsAndEgress, ...outsideScope].sort());
  });

  test('random and mutated packets: every packet passes or drops exactly once', () => {
    const random = pk.rng(5);
    const frames = Array.from({ length: 5000 }, () => pk.mutate(pk.randomPacket(random), random));
    const model = run(frames, {
      blocks: [{ cidr: '198.18.0.0/28' }, { cidr: 'fd00::/16', expired: true }],
      allows: ['198.18.0.8/29'],
      protect: ['198.19.0.0/25', 'fd00::/8'],
      dropUnparsed: true,
    });
    const globals = model.globals();
    expect(globals.pass + globals.drop_blocked + globals.drop_unparsed).toBe(5000n);
    const reached = [globals.drop_blocked, globals.allowlisted, globals.block_expired, globals.drop_unparsed, globals.not_protected];
    expect(reached.every((count) => count > 0n)).toBe(true);
    const sourcePackets = [...model.sources().values()].reduce((sum, source) => sum + source.packets, 0n);
    expect(sourcePackets).toBe(globals.ipv4 + globals.ipv6 - globals.drop_blocked - globals.not_protected);
  });
});
