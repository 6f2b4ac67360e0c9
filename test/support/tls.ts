/**
 * A throwaway CA and a server certificate it signed (for 127.0.0.1, ::1 and localhost), made with
 * openssl in a directory of the caller's, and a small HTTPS client that trusts that CA only.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';

export interface TestCertificates {
  /** PEM texts. */
  ca: string;
  cert: string;
  key: string;
  /** Files of the same, the key with mode 600. */
  certFile: string;
  keyFile: string;
}

export function makeTestCertificates(dir: string): TestCertificates {
  const at = (name: string): string => path.join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe' });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.pem'), '-subj', '/CN=xdp-ids test CA', '-days', '1');
  openssl('req', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=localhost');
  fs.writeFileSync(at('server.ext'), 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n');
  openssl('x509', '-req', '-in', at('server.csr'), '-CA', at('ca.pem'), '-CAkey', at('ca.key'), '-CAcreateserial',
    '-out', at('server.pem'), '-days', '1', '-extfile', at('server.ext'));
  fs.chmodSync(at('server.key'), 0o600);
  const read = (name: string): string => fs.readFileSync(at(name), 'utf8');
  return { ca: read('ca.pem'), cert: read('server.pem'), key: read('server.key'), certFile: at('server.pem'), keyFile: at('server.key') };
}

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or the text when the body is not JSON. */
  json: any;
}

/** One HTTPS request that trusts `ca` and nothing else. */
export async function httpsRequest(url: string, ca: string, opts: { method?: string; token?: string; body?: unknown } = {}): Promise<HttpsAnswer> {
  const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return await new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: opts.method ?? 'GET', ca,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text.startsWith('{') ? JSON.parse(text) : text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
