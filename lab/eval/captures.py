#!/usr/bin/python3
"""
Writes the eval's attack captures as pcap files, for tcpreplay to play into a lab veth.

Traffic no lab tool sends by itself: answers of UDP reflectors (DNS, NTP monlist, memcached,
SSDP) arriving at one victim from hundreds of reflector addresses, and a slow SYN flood whose
sources never repeat. Every frame is addressed to the monitored interface's MAC and the victim's
address; the reflector and spoofed sources are drawn from --sources and never answered (the
victim's replies follow the lab's routing table, whose default is a blackhole).

    captures.py KIND --out FILE --dst-ip IP --dst-mac MAC --src-mac MAC --sources CIDR --count N [--dst-port P] [--seed S]

KIND: dns-amplification | ntp-monlist | memcached | ssdp | syn-spoofed-slow. --count is the number
of datagrams (or SYNs); IP fragments of one datagram count once. Prints one JSON line: frames
written, datagrams, distinct sources, bytes.
"""
import argparse
import ipaddress
import json
import random
import struct
import sys

from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Ether, PcapWriter, Raw, fragment

# Each kind: the reflectors' source port, how many reflectors, and the answer sizes (UDP payload bytes).
REFLECTIONS = {
    'dns-amplification': {'sport': 53, 'reflectors': 500, 'sizes': (1200, 3000)},
    'ntp-monlist': {'sport': 123, 'reflectors': 100, 'sizes': (440, 440)},
    'memcached': {'sport': 11211, 'reflectors': 50, 'sizes': (1400, 1400)},
    'ssdp': {'sport': 1900, 'reflectors': 300, 'sizes': (280, 360)},
}
MTU_PAYLOAD = 1480  # IP payload bytes per fragment on a 1500-byte link (a multiple of 8)


DNS_NAME = 'lab-amplify.test'
DNS_RR_OVERHEAD = len(DNS_NAME) + 2 + 10 + 1  # owner name, type/class/ttl/rdlength, the TXT string's length byte


def dns_answer(rng, size):
    """An answer to an ANY query filled with TXT records up to about `size` bytes, as open resolvers return."""
    base = len(bytes(DNS(qr=1, qd=DNSQR(qname=DNS_NAME, qtype=255))))
    records = []
    room = size - base
    while room > DNS_RR_OVERHEAD:
        text = min(255, room - DNS_RR_OVERHEAD)
        records.append(DNSRR(rrname=DNS_NAME, type='TXT', ttl=3600, rdata='v=' + 'x' * (text - 2)))
        room -= DNS_RR_OVERHEAD + text
    answer = DNS(id=rng.randrange(65536), qr=1, rd=1, ra=1, qd=DNSQR(qname=DNS_NAME, qtype=255))
    for record in records:
        answer.an = record if answer.an is None else answer.an / record
    return bytes(answer)


def ntp_monlist(rng, size):
    """A mode 7 (private) MON_GETLIST_1 response: 6 entries of 72 bytes after an 8-byte header."""
    header = struct.pack('!BBBBHH', 0xd7, rng.randrange(128), 3, 42, 6, 72)
    return (header + bytes(rng.randrange(256) for _ in range(size - 8)))[:size]


def memcached_value(rng, size):
    """A memcached UDP frame header (request id, sequence, total, reserved) and part of a huge VALUE."""
    header = struct.pack('!HHHH', rng.randrange(65536), 0, 1, 0)
    body = b'VALUE lab-amplify 0 1048576\r\n'
    return (header + body + b'A' * size)[:size]


def ssdp_response(rng, size):
    text = ('HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\nLOCATION: http://192.0.2.1:1900/rootDesc.xml\r\n'
            'SERVER: Linux/3.14 UPnP/1.0 lab/1.0\r\nST: upnp:rootdevice\r\n'
            f'USN: uuid:{rng.getrandbits(128):032x}::upnp:rootdevice\r\n\r\n').encode()
    return (text + b' ' * size)[:size]


PAYLOADS = {'dns-amplification': dns_answer, 'ntp-monlist': ntp_monlist, 'memcached': memcached_value, 'ssdp': ssdp_response}


def sources(cidr, count, rng):
    network = ipaddress.ip_network(cidr)
    if count > network.num_addresses - 2:
        sys.exit(f'{cidr} has too few addresses for {count} distinct sources')
    picks = rng.sample(range(1, network.num_addresses - 1), count)
    return [str(network.network_address + i) for i in picks]


def reflection(args, rng, out):
    spec = REFLECTIONS[args.kind]
    reflectors = sources(args.sources, spec['reflectors'], rng)
    # A few payloads per kind, reused: the sensor looks at headers and sizes, not at content.
    lo, hi = spec['sizes']
    payloads = [PAYLOADS[args.kind](rng, rng.randint(lo, hi)) for _ in range(16)]
    frames = 0
    total = 0
    for i in range(args.count):
        ip = IP(src=reflectors[i % len(reflectors)], dst=args.dst_ip, id=rng.randrange(65536), ttl=rng.randint(40, 120))
        datagram = ip / UDP(sport=spec['sport'], dport=rng.randint(1024, 65535)) / Raw(rng.choice(payloads))
        parts = fragment(datagram, fragsize=MTU_PAYLOAD) if len(datagram) > MTU_PAYLOAD + 20 else [datagram]
        for part in parts:
            frame = Ether(src=args.src_mac, dst=args.dst_mac) / part
            out.write(frame)
            frames += 1
            total += len(frame)
    return {'frames': frames, 'datagrams': args.count, 'sources': len(reflectors), 'bytes': total}


def syn_spoofed(args, rng, out):
    spoofed = sources(args.sources, args.count, rng)
    total = 0
    for src in spoofed:
        frame = (Ether(src=args.src_mac, dst=args.dst_mac)
                 / IP(src=src, dst=args.dst_ip, id=rng.randrange(65536), ttl=rng.randint(40, 120))
                 / TCP(sport=rng.randint(1024, 65535), dport=args.dst_port, flags='S', seq=rng.getrandbits(32), window=64240,
                       options=[('MSS', 1460), ('SAckOK', b''), ('NOP', None), ('WScale', 7)]))
        out.write(frame)
        total += len(frame)
    return {'frames': len(spoofed), 'datagrams': len(spoofed), 'sources': len(spoofed), 'bytes': total}


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('kind', choices=[*REFLECTIONS, 'syn-spoofed-slow'])
    parser.add_argument('--out', required=True)
    parser.add_argument('--dst-ip', required=True)
    parser.add_argument('--dst-mac', required=True)
    parser.add_argument('--src-mac', required=True)
    parser.add_argument('--sources', required=True, help='CIDR the reflector or spoofed addresses are drawn from')
    parser.add_argument('--count', type=int, required=True)
    parser.add_argument('--dst-port', type=int, default=8080)
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out = PcapWriter(args.out, linktype=1, sync=False)
    try:
        result = syn_spoofed(args, rng, out) if args.kind == 'syn-spoofed-slow' else reflection(args, rng, out)
    finally:
        out.close()
    print(json.dumps({'kind': args.kind, **result}))


if __name__ == '__main__':
    main()
