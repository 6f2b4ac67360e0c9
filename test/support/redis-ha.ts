/**
 * Real Redis deployments that survive losing a node, started and stopped by a test, all on the
 * loopback: a primary with a replica watched by 3 Sentinels (Debian's redis-sentinel; every
 * server has the same password), and a 3-primary Redis Cluster (`redis-cli --cluster create`;
 * every node has the roles' ACL users).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, startEmbeddedRedis, urlWithCredentials, type EmbeddedRedis } from '../../common/redis';
import { aclFileText, newRolePasswords, roleUrls, type Role } from '../../common/redis-roles';
import { until } from './until';

const run = promisify(execFile);

/** redis-cli against one server; the password goes through the environment, not the command line. */
async function cli(port: number, password: string, args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { env: { ...process.env, REDISCLI_AUTH: password }, timeout: 30_000 });
  return stdout;
}

export interface SentinelSet {
  /** redis+sentinel:// URL with the servers' password. */
  url: string;
  /** The primary's name in the Sentinels' configuration. */
  name: string;
  password: string;
  servers: EmbeddedRedis[];
  /** The port of the server the Sentinels now call the primary. */
  primaryPort(): Promise<number>;
  /** SIGKILL of the server that is primary now; its port. */
  killPrimary(): Promise<number>;
  stop(): Promise<void>;
}

/** A primary, one replica in sync with it, and 3 Sentinels (quorum 2) that fail over 1 s after the primary stops answering. */
export async function startSentinelSet(name = 'xiflt'): Promise<SentinelSet> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-sentinel-'));
  const password = randomBytes(18).toString('base64url');
  const servers: EmbeddedRedis[] = [];
  const sentinels: ChildProcess[] = [];
  const sentinelPorts: number[] = [];
  const stop = async (): Promise<void> => {
    for (const s of sentinels) if (s.exitCode === null) s.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    // A replica of a killed primary turns primary; the old one, if it came back, would follow it.
    const auth = [`masterauth ${password}`];
    servers.push(await startEmbeddedRedis({ dir: path.join(dir, 'r0'), password, config: auth }));
    servers.push(await startEmbeddedRedis({ dir: path.join(dir, 'r1'), password, config: [...auth, `replicaof 127.0.0.1 ${servers[0].port}`] }));
    await until('the replica in sync', async () => /master_link_status:up/.test(await cli(servers[1].port, password, ['INFO', 'replication'])), 20_000);
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = path.join(dir, `sentinel-${i}.conf`);
      fs.writeFileSync(conf, [
        `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${servers[0].port} 2`, `sentinel auth-pass ${name} ${password}`,
        `sentinel down-after-milliseconds ${name} 1000`, `sentinel failover-timeout ${name} 5000`, `sentinel parallel-syncs ${name} 1`,
      ].join('\n') + '\n', { mode: 0o600 });
      const child = spawn('redis-sentinel', [conf], { stdio: 'ignore', detached: true });
      process.once('exit', () => child.exitCode === null && child.kill('SIGKILL'));
      sentinels.push(child);
      sentinelPorts.push(port);
    }
    // Every Sentinel answers and knows the replica and the other two: a failover needs them.
    for (const port of sentinelPorts) {
      await until(`Sentinel ${port} to see the replica and its peers`, async () => {
        const info = await cli(port, '', ['SENTINEL', 'master', name]).catch(() => '');
        const field = (f: string): number => Number(new RegExp(`^${f}\\n(\\d+)$`, 'm').exec(info)?.[1] ?? 0);
        return field('num-slaves') === 1 && field('num-other-sentinels') === 2;
      }, 30_000);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const primaryPort = async (): Promise<number> => {
    const [, port] = (await cli(sentinelPorts[0], '', ['SENTINEL', 'get-master-addr-by-name', name])).trim().split('\n');
    return Number(port);
  };
  return {
    url: `redis+sentinel://:${encodeURIComponent(password)}@${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${name}`,
    name, password, servers, primaryPort, stop,
    async killPrimary() {
      const port = await primaryPort();
      const primary = servers.find((s) => s.port === port)!;
      process.kill(primary.pid, 'SIGKILL');
      return port;
    },
  };
}

export interface TestCluster {
  /** redis+cluster:// URL of an administrator (every key and command). */
  url: string;
  /** Each role's URL (common/redis-roles.ts): every node loads the roles' ACL file. */
  roles: Record<Role, string>;
  nodes: EmbeddedRedis[];
  /** Which node's port serves a slot. */
  slotOwners(): Promise<Array<{ from: number; to: number; port: number }>>;
  /** What the nodes' ACL LOGs hold (redis-cli's text: empty when no command or key was refused). */
  aclLog(): Promise<string>;
  stop(): Promise<void>;
}

const ADMIN = 'xiflt-admin';

/**
 * 3 primaries, no replicas, the slots split evenly (`redis-cli --cluster create`), ready when
 * every node says cluster_state:ok. Every node has the roles' users and an administrator, whom
 * the test and redis-cli use.
 */
export async function startRedisCluster(): Promise<TestCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-cluster-'));
  const password = randomBytes(18).toString('base64url');
  const passwords = newRolePasswords();
  const acl = `${aclFileText(passwords)}user ${ADMIN} on >${password} ~* &* +@all\n`;
  const nodes: EmbeddedRedis[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const admin = ['--user', ADMIN];
  try {
    for (let i = 0; i < 3; i++) {
      // The bus port defaults to port + 10000, which may be taken or past 65535.
      const bus = await freePort();
      nodes.push(await startEmbeddedRedis({ dir: path.join(dir, `n${i}`), acl, config: ['cluster-enabled yes', `cluster-port ${bus}`, 'cluster-node-timeout 2000'] }));
    }
    await run('redis-cli', [...admin, '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-yes'], { env: { ...process.env, REDISCLI_AUTH: password }, timeout: 60_000 });
    for (const n of nodes) await until(`node ${n.port} in a healthy cluster`, async () => /cluster_state:ok/.test(await cli(n.port, password, [...admin, 'CLUSTER', 'INFO'])), 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  const base = `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  return {
    url: urlWithCredentials(base, ADMIN, password),
    roles: roleUrls(base, passwords),
    nodes, stop,
    async aclLog() {
      return (await Promise.all(nodes.map((n) => cli(n.port, password, [...admin, 'ACL', 'LOG'])))).join('').trim();
    },
    async slotOwners() {
      const lines = (await cli(nodes[0].port, password, [...admin, 'CLUSTER', 'NODES'])).trim().split('\n');
      return lines.flatMap((line) => {
        const fields = line.split(' ');
        const port = Number(/:(\d+)@/.exec(fields[1])![1]);
        return fields.slice(8).filter((r) => /^\d/.test(r)).map((r) => {
          const [from, to = from] = r.split('-').map(Number);
          return { from, to, port };
        });
      });
    },
  };
}
