/**
 * The UDP peers of the eval's benign cases, each its own process so that its sockets and pacing
 * never share an event loop with the sensor: run inside a lab namespace (servers) or in the root
 * namespace, the protected host (clients), whose inbound answers are what the sensor judges.
 *
 *   node udp-peers.js dns-server  --bind A            answers every A query (from port 53)
 *   node udp-peers.js dns-client  --server A --local B --count N --rate R
 *   node udp-peers.js ntp-server  --bind A            answers mode 3 requests (from port 123)
 *   node udp-peers.js ntp-client  --server A --local B --count N --interval-ms I
 *   node udp-peers.js quic-server --bind A --pps P --seconds S
 *   node udp-peers.js quic-client --server A --local B --seconds S
 *
 * Clients behave like the real thing where the sensor can tell: a stub resolver and an NTP client
 * use a new ephemeral port for every request (source port randomisation), a QUIC download is a
 * request followed by a paced stream of 1,200-byte datagrams from port 443. Servers print `ready`
 * once they listen. Every client is bounded in packets and seconds and prints one JSON line; a
 * quic-server serves one download and exits, the others run until they are killed.
 */
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';

const DNS_PORT = 53;
const NTP_PORT = 123;
const QUIC_PORT = 443;
const QUIC_DATAGRAM = 1200;
/** What every name resolves to: an address of the lab range that no host uses. */
const DNS_ANSWER = [198, 18, 40, 250];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function dnsQuery(id: number, name: string): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

/** The query's header and question with one A record appended (a name compression pointer to the question). */
function dnsAnswer(query: Buffer): Buffer | undefined {
  let end = 12;
  while (end < query.length && query[end] !== 0) end += query[end] + 1;
  if (end + 5 > query.length) return undefined;
  const head = Buffer.from(query.subarray(0, end + 5));
  head.writeUInt16BE(0x8180, 2);
  head.writeUInt16BE(1, 6);
  const record = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...DNS_ANSWER]);
  return Buffer.concat([head, record]);
}

/** One request from a fresh socket on an ephemeral port of `local`; resolves true when an answer came within timeoutMs. */
function exchange(server: string, port: number, local: string, request: Buffer, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const done = (answered: boolean): void => {
      clearTimeout(timer);
      socket.close();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('message', () => done(true));
    socket.once('error', () => done(false));
    socket.bind(0, local, () => socket.send(request, port, server));
  });
}

async function dnsClient(server: string, local: string, count: number, rate: number): Promise<object> {
  const started = Date.now();
  const pending: Promise<boolean>[] = [];
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
    pending.push(exchange(server, DNS_PORT, local, dnsQuery(i & 0xffff, `host-${i}.eval.lab.test`), 1000));
  }
  const answered = (await Promise.all(pending)).filter(Boolean).length;
  return { sent: count, answered, seconds: (Date.now() - started) / 1000 };
}

function ntpRequest(): Buffer {
  const packet = Buffer.alloc(48);
  packet[0] = (4 << 3) | 3;
  packet.writeUInt32BE(Math.floor(Date.now() / 1000) + 2_208_988_800, 40);
  return packet;
}

function ntpReply(request: Buffer): Buffer {
  const reply = Buffer.alloc(48);
  reply[0] = (4 << 3) | 4;
  reply[1] = 2;
  reply[2] = request[2];
  reply[3] = 0xec;
  request.copy(reply, 24, 40, 48);
  const now = Math.floor(Date.now() / 1000) + 2_208_988_800;
  reply.writeUInt32BE(now, 32);
  reply.writeUInt32BE(now, 40);
  return reply;
}

async function ntpClient(server: string, local: string, count: number, intervalMs: number): Promise<object> {
  const started = Date.now();
  let answered = 0;
  for (let i = 0; i < count; i++) {
    if (await exchange(server, NTP_PORT, local, ntpRequest(), 1000)) answered++;
    await sleep(intervalMs);
  }
  return { sent: count, answered, seconds: (Date.now() - started) / 1000 };
}

/** Answers each datagram with `reply(datagram)` from `port` until killed. */
function serve(bind: string, port: number, reply: (request: Buffer) => Buffer | undefined): void {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, peer) => {
    const answer = reply(msg);
    if (answer) socket.send(answer, peer.port, peer.address);
  });
  socket.bind(port, bind, announceReady);
}

/** Servers say when they listen, so that no client request is sent into the void. */
function announceReady(): void {
  process.stdout.write('ready\n');
}

/** Streams pps × seconds datagrams to whoever asks first, paced in 5 ms steps, then exits. */
function quicServer(bind: string, pps: number, seconds: number): void {
  const socket = dgram.createSocket('udp4');
  socket.once('message', (_request, peer) => {
    const total = pps * seconds;
    const perStep = Math.max(1, Math.round(pps / 200));
    const payload = Buffer.alloc(QUIC_DATAGRAM, 0x5a);
    let sent = 0;
    const started = Date.now();
    const step = (): void => {
      const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * pps) + perStep);
      while (sent < due) {
        socket.send(payload, peer.port, peer.address);
        sent++;
      }
      if (sent < total) setTimeout(step, 5);
      else setTimeout(() => process.exit(0), 100);
    };
    step();
  });
  socket.bind(QUIC_PORT, bind, announceReady);
}

async function quicClient(server: string, local: string, seconds: number): Promise<object> {
  const socket = dgram.createSocket('udp4');
  let received = 0;
  let lastMs = Date.now();
  socket.on('message', () => {
    received++;
    lastMs = Date.now();
  });
  await new Promise<void>((resolve) => socket.bind(0, local, resolve));
  const started = Date.now();
  socket.send(Buffer.alloc(QUIC_DATAGRAM, 0xc3), QUIC_PORT, server);
  // Done when the stream has been quiet for a second, or at the bound.
  while (Date.now() - started < (seconds + 5) * 1000 && (received === 0 || Date.now() - lastMs < 1000)) await sleep(100);
  socket.close();
  return { sent: 1, received, seconds: (Date.now() - started) / 1000 };
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: {
      bind: { type: 'string' }, server: { type: 'string' }, local: { type: 'string' }, count: { type: 'string' }, rate: { type: 'string' },
      'interval-ms': { type: 'string' }, pps: { type: 'string' }, seconds: { type: 'string' },
    },
  });
  const need = (name: keyof typeof values): string => {
    const v = values[name];
    if (!v) throw new Error(`${mode}: --${name} is required`);
    return v;
  };
  const print = (result: object): void => void process.stdout.write(`${JSON.stringify(result)}\n`);
  switch (mode) {
    case 'dns-server': return serve(need('bind'), DNS_PORT, dnsAnswer);
    case 'ntp-server': return serve(need('bind'), NTP_PORT, ntpReply);
    case 'quic-server': return quicServer(need('bind'), Number(need('pps')), Number(need('seconds')));
    case 'dns-client': return print(await dnsClient(need('server'), need('local'), Number(need('count')), Number(need('rate'))));
    case 'ntp-client': return print(await ntpClient(need('server'), need('local'), Number(need('count')), Number(need('interval-ms'))));
    case 'quic-client': return print(await quicClient(need('server'), need('local'), Number(need('seconds'))));
    default: throw new Error(`unknown mode ${mode}`);
  }
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`udp-peers: ${err.message}\n`);
    process.exit(1);
  });
}
