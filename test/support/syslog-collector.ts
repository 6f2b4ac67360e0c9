/**
 * A syslog collector for tests: a real TCP or TLS listener that reads RFC 6587 streams (octet
 * counting, or newline framing) until the sender closes, and keeps every message with the
 * framing it arrived in. A frame that is neither is kept as an error, so a test sees it.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

export interface CollectedMessage {
  framing: 'octet-counting' | 'newline';
  text: string;
}

export interface SyslogCollector {
  port: number;
  messages: CollectedMessage[];
  errors: string[];
  close(): Promise<void>;
}

/** Splits a whole stream: `LEN SP MSG` frames while it starts with a digit, else LF-ended lines. */
function parseStream(data: Buffer, out: CollectedMessage[], errors: string[]): void {
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = /^[1-9]\d{0,8}$/.test(data.subarray(at, space).toString('latin1')) ? Number(data.subarray(at, space).toString('latin1')) : undefined;
    if (length !== undefined && space + 1 + length <= data.length) {
      out.push({ framing: 'octet-counting', text: data.subarray(space + 1, space + 1 + length).toString('utf8') });
      at = space + 1 + length;
      continue;
    }
    const lf = data.indexOf(0x0a, at);
    if (lf < 0) {
      errors.push(`unframed trailing bytes: ${data.subarray(at).toString('utf8').slice(0, 80)}`);
      return;
    }
    out.push({ framing: 'newline', text: data.subarray(at, lf).toString('utf8') });
    at = lf + 1;
  }
}

/** Listens on 127.0.0.1, on `port` or a free one. */
export async function startSyslogCollector(opts: { tls?: { certFile: string; keyFile: string }; port?: number } = {}): Promise<SyslogCollector> {
  const messages: CollectedMessage[] = [];
  const errors: string[] = [];
  const onConnection = (socket: net.Socket): void => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => errors.push(err.message));
    socket.on('end', () => {
      parseStream(Buffer.concat(chunks), messages, errors);
      socket.end();
    });
  };
  const server = opts.tls
    ? tls.createServer({ cert: fs.readFileSync(opts.tls.certFile), key: fs.readFileSync(opts.tls.keyFile) }, onConnection)
    : net.createServer(onConnection);
  server.on('tlsClientError', (err: Error) => errors.push(`tls: ${err.message}`));
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port, messages, errors,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
