import { ENUMS } from './kernel/layout.generated';

const { IDS_PORT_SERVICE: SERVICE, IDS_PORT_AMPLIFIER: AMPLIFIER } = ENUMS.ids_port_class;

/**
 * What a port number means to the kernel's classifications (enum ids_port_class): traffic from a
 * service port to an ephemeral one is a reply (a service answering a client), never a probe, so
 * it does not count as port fan-out; UDP from an amplifier port is what reflection attacks are
 * made of. Every port not listed here is ephemeral.
 */

/**
 * UDP services that answer a small request with a large one, the reflectors of amplification
 * attacks (US-CERT TA14-017A and later reports): echo, QOTD, chargen, DNS, TFTP, portmap, NTP,
 * NetBIOS, SNMP, CLDAP, SLP, IKE, RIP, IPMI, MS-SQL browser, SSDP, ARD, STUN, WS-Discovery, IKE
 * NAT-T, SIP, mDNS, CoAP, Ubiquiti discovery, memcached, Steam A2S, Plex GDM, DVR DHCPDiscover.
 * QUIC (443) is not one: its anti-amplification limit keeps answers within 3x.
 */
export const AMPLIFIER_PORTS: readonly number[] = [
  7, 17, 19, 53, 69, 111, 123, 137, 161, 389, 427, 500, 520, 623, 1434, 1900, 3283, 3478, 3702, 4500, 5060, 5353, 5683,
  10001, 11211, 27015, 32414, 37810,
];

/** Server ports above the well-known range (0-1023, all services) that clients connect to. */
export const REGISTERED_SERVICE_PORTS: readonly number[] = [
  1080, 1194, 1433, 1521, 1723, 1883, 2049, 2181, 2375, 2376, 3000, 3128, 3306, 3389, 4369, 5000, 5061, 5222, 5432,
  5601, 5672, 5900, 6379, 6443, 8000, 8008, 8080, 8081, 8443, 8883, 8888, 9000, 9042, 9090, 9092, 9200, 9300, 9418,
  10000, 25565, 27017,
];

/** The class of every port: one byte per port, in port order (the kernel's ids_ports array). */
export function portClassTable(extraServices: readonly number[] = []): Uint8Array {
  const table = new Uint8Array(65536);
  table.fill(SERVICE, 0, 1024);
  for (const port of [...REGISTERED_SERVICE_PORTS, ...extraServices]) table[port] = SERVICE;
  for (const port of AMPLIFIER_PORTS) table[port] = AMPLIFIER;
  return table;
}
