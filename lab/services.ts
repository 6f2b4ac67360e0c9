/** Servers on the protected host (the root namespace) for the lab's benign traffic and scans. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NetnsLab } from './netns';

export interface LabServices {
  httpUrl: string;
  httpUrl6: string;
  close(): Promise<void>;
}

export const HTTP_PORT = 8080;
export const IPERF_PORT = 5201;

export async function startLabServices(lab: NetnsLab): Promise<LabServices> {
  const handler: http.RequestListener = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('xdp-ids lab\n');
  };
  const servers = [http.createServer(handler), http.createServer(handler)];
  await Promise.all([
    new Promise<void>((resolve) => servers[0].listen(HTTP_PORT, lab.hostV4, resolve)),
    new Promise<void>((resolve) => servers[1].listen(HTTP_PORT, lab.hostV6, resolve)),
  ]);
  const iperf = lab.spawn(undefined, ['iperf3', '-s', '-B', lab.hostV4, '-p', String(IPERF_PORT)]);
  const port = (servers[0].address() as AddressInfo).port;
  return {
    httpUrl: `http://${lab.hostV4}:${port}/`,
    httpUrl6: `http://[${lab.hostV6}]:${port}/`,
    async close() {
      iperf.kill('SIGTERM');
      await Promise.all(servers.map((s) => new Promise<void>((resolve) => { s.closeAllConnections(); s.close(() => resolve()); })));
    },
  };
}
