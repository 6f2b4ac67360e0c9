/** Throwaway certificates made with openssl for one test file: a CA, certificates it signs, and a CA that signed none of them. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
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
