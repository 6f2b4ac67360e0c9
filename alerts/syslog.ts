/**
 * Sends a notification's syslog messages (syslog-message.ts) over one TCP or TLS connection
 * (RFC 5425; the CA of `ca_file` or the system's, the host name checked) and closes it. Syslog
 * over TCP has no acknowledgement: a delivery is done when the collector has read everything and
 * closed its side after ours. Refused connections, resets and timeouts are retried; a
 * certificate that does not verify is final until the configuration changes.
 */
import net from 'node:net';
import tls from 'node:tls';
import { PermanentError, RetryableError } from './send-errors';
import type { SyslogReceiver } from './types';

const CERTIFICATE_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH/;

export async function sendSyslog(r: SyslogReceiver, frames: string): Promise<void> {
  const where = `${r.transport}://${r.host.includes(':') ? `[${r.host}]` : r.host}:${r.port}`;
  await new Promise<void>((resolve, reject) => {
    const socket = r.transport === 'tls'
      ? tls.connect({ host: r.host, port: r.port, ca: r.ca, servername: net.isIP(r.host) ? undefined : r.host, minVersion: 'TLSv1.2' })
      : net.connect({ host: r.host, port: r.port });
    const fail = (err: Error): void => {
      socket.destroy();
      const code = (err as NodeJS.ErrnoException).code ?? '';
      reject(CERTIFICATE_ERRORS.test(code) ? new PermanentError(`${where}: the collector's certificate does not verify: ${err.message} (${code}); fix ca_file or the host name`)
        : new RetryableError(`${where}: ${err.message}`));
    };
    socket.setTimeout(r.timeoutMs, () => fail(new Error(`no progress within ${r.timeoutMs} ms`)));
    socket.once('error', fail);
    socket.once(r.transport === 'tls' ? 'secureConnect' : 'connect', () => socket.end(frames));
    // The collector read to our end and closed: everything was taken.
    socket.on('data', () => undefined);
    socket.once('close', (hadError) => {
      if (!hadError) resolve();
    });
  });
}
