import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedRedis, type EmbeddedRedis, type EmbeddedRedisOptions } from '../../common/redis';

export interface TestRedis extends Pick<EmbeddedRedis, 'url' | 'dir' | 'stop'> {
  /** Stops the server and starts it again where it was (same port, password, users and data). */
  restart(downMs?: number): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<void>;
}

/** A real redis-server for one test file, in a temporary directory removed by stop(); optionally with ACL users (an ACL file's text) and TLS. */
export async function testRedis(opts: Pick<EmbeddedRedisOptions, 'acl' | 'tls' | 'maxmemory'> = {}): Promise<TestRedis> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-test-redis-'));
  let server: EmbeddedRedis | undefined = await startEmbeddedRedis({ ...opts, dir });
  const url = server.url;
  const { port, password } = new URL(url);
  const start = async (): Promise<void> => {
    server = await startEmbeddedRedis({ ...opts, dir, port: Number(port), password: decodeURIComponent(password) });
  };
  const kill = async (): Promise<void> => {
    await server?.stop();
    server = undefined;
  };
  return {
    url, dir, start, kill,
    async restart(downMs = 0) {
      await kill();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    async stop() {
      await kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
