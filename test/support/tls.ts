/**
 * Throwaway certificates made with openssl for one test file: a CA, certificates it signs, and a
 * CA that signed none of them; and a small HTTPS client that trusts one CA only.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';

export interface TestPki {
  ca: string;
  /** A CA unrelated to every certificate here. */
  otherCa: string;
  /** Signs a certificate (and makes its 0600 key) for these subject alternative names, e.g. `IP:127.0.0.1,DNS:localhost`. */
  issue(name: string, altNames: string): { cert: string; key: string };
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function newCa(dir: string, name: string): string {
  openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-subj', `/CN=xdp-ids test ${name}`);
  return path.join(dir, `${name}.pem`);
}

export function testPki(dir: string): TestPki {
  const ca = newCa(dir, 'ca');
  return {
    ca,
    otherCa: newCa(dir, 'other-ca'),
    issue(name, altNames) {
      fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${altNames}\n`);
      openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
        '-extfile', `${name}.ext`, '-out', `${name}.pem`);
      const key = path.join(dir, `${name}.key`);
      fs.chmodSync(key, 0o600);
      return { cert: path.join(dir, `${name}.pem`), key };
    },
  };
}

export interface TestCertificates {
  /** PEM texts. */
  ca: string;
  cert: string;
  key: string;
  /** Files of the same, the key with mode 600. */
  certFile: string;
  keyFile: string;
}

/** A CA and a server certificate it signed for 127.0.0.1, ::1 and localhost. */
export function makeTestCertificates(dir: string): TestCertificates {
  const pki = testPki(dir);
  const server = pki.issue('server', 'IP:127.0.0.1,IP:::1,DNS:localhost');
  const read = (file: string): string => fs.readFileSync(file, 'utf8');
  return { ca: read(pki.ca), cert: read(server.cert), key: read(server.key), certFile: server.cert, keyFile: server.key };
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
