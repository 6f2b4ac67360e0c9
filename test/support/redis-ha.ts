/**
 * Real Redis deployments that survive losing a node, started and stopped by a test, all on the
 * loopback: a primary with a replica watched by 3 Sentinels (Debian's redis-sentinel), and a
 * 3-primary Redis Cluster (`redis-cli --cluster create`), with a replica each if asked. Every server loads the roles' ACL users
 * and the replica's and Sentinels' (common/redis-roles.ts), which they use, and an
 * administrator's, whom the tests and redis-cli use.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import clusterKeySlot from 'cluster-key-slot';
import { freePort, startEmbeddedRedis, urlWithCredentials, type EmbeddedRedis } from '../../common/redis';
import { aclFileText, newPassword, newRolePasswords, roleUrls, SERVICE_USERS, type Role, type ServicePasswords } from '../../common/redis-roles';
import { until } from './until';

const run = promisify(execFile);
const ADMIN = 'xiflt-admin';

/** The roles' users, the replica's and the Sentinels' (as `xdp-ids redis acl` writes them) and an administrator, as every server of a deployment loads them. */
function users(): { acl: string; password: string; service: Required<ServicePasswords>; roleUrls(base: string): Record<Role, string> } {
  const password = randomBytes(18).toString('base64url');
  const passwords = newRolePasswords();
  const service = { replica: newPassword(), sentinel: newPassword() };
  return { acl: `${aclFileText(passwords, service)}user ${ADMIN} on >${password} ~* &* +@all\n`, password, service, roleUrls: (base) => roleUrls(base, passwords) };
}

/** redis-cli against one server, as the administrator (`password` undefined: a Sentinel, which has no users here); the password goes through the environment, not the command line. */
async function cli(port: number, password: string | undefined, args: string[]): Promise<string> {
  const auth = password === undefined ? [] : ['--user', ADMIN];
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], { env: { ...process.env, REDISCLI_AUTH: password ?? '' }, timeout: 30_000 });
  return stdout;
}

export interface SentinelSet {
  /** redis+sentinel:// URL of an administrator (every key and command). */
  url: string;
  /** Each role's redis+sentinel:// URL. */
  roles: Record<Role, string>;
  /** The primary's name in the Sentinels' configuration. */
  name: string;
  /** The Sentinels' ports (they have no users: anyone may subscribe to their announcements). */
  sentinelPorts: number[];
  servers: EmbeddedRedis[];
  /** The port of the server the Sentinels now call the primary. */
  primaryPort(): Promise<number>;
  /** SIGKILL of the server that is primary now; its port. */
  killPrimary(): Promise<number>;
  /** What the live servers' ACL LOGs hold (redis-cli's text: empty when no command or key was refused). */
  aclLog(): Promise<string>;
  stop(): Promise<void>;
}

/** The ACL LOGs of the servers that answer. */
async function aclLogs(servers: EmbeddedRedis[], password: string): Promise<string> {
  return (await Promise.all(servers.map((s) => cli(s.port, password, ['ACL', 'LOG']).catch(() => '')))).join('').trim();
}

/** A primary, one replica in sync with it, and 3 Sentinels (quorum 2) that fail over 1 s after the primary stops answering. */
export async function startSentinelSet(name = 'xiflt'): Promise<SentinelSet> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-sentinel-'));
  const { acl, password, service, roleUrls: rolesAt } = users();
  const servers: EmbeddedRedis[] = [];
  const sentinels: ChildProcess[] = [];
  const sentinelPorts: number[] = [];
  const stop = async (): Promise<void> => {
    for (const s of sentinels) if (s.exitCode === null) s.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    // A replica of a killed primary turns primary; the old one, if it came back, would follow it. Replicas and Sentinels have only their own users' rights.
    const auth = [`masteruser ${SERVICE_USERS.replica.user}`, `masterauth ${service.replica}`];
    servers.push(await startEmbeddedRedis({ dir: path.join(dir, 'r0'), acl, config: auth }));
    servers.push(await startEmbeddedRedis({ dir: path.join(dir, 'r1'), acl, config: [...auth, `replicaof 127.0.0.1 ${servers[0].port}`] }));
    await until('the replica in sync', async () => /master_link_status:up/.test(await cli(servers[1].port, password, ['INFO', 'replication'])), 20_000);
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = path.join(dir, `sentinel-${i}.conf`);
      fs.writeFileSync(conf, [
        `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${servers[0].port} 2`, `sentinel auth-user ${name} ${SERVICE_USERS.sentinel.user}`, `sentinel auth-pass ${name} ${service.sentinel}`,
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
        const info = await cli(port, undefined, ['SENTINEL', 'master', name]).catch(() => '');
        const field = (f: string): number => Number(new RegExp(`^${f}\\n(\\d+)$`, 'm').exec(info)?.[1] ?? 0);
        return field('num-slaves') === 1 && field('num-other-sentinels') === 2;
      }, 30_000);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const primaryPort = async (): Promise<number> => {
    const [, port] = (await cli(sentinelPorts[0], undefined, ['SENTINEL', 'get-master-addr-by-name', name])).trim().split('\n');
    return Number(port);
  };
  const base = `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${name}`;
  return {
    url: urlWithCredentials(base, ADMIN, password),
    roles: rolesAt(base),
    name, servers, sentinelPorts, primaryPort, stop,
    aclLog: () => aclLogs(servers, password),
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
  /** Which primary's port serves a slot, as a live node sees it. */
  slotOwners(): Promise<Array<{ from: number; to: number; port: number }>>;
  /** The port of the primary that serves a key's slot now (none while its primary has failed and no replica has taken over). */
  primaryOf(key: string): Promise<number | undefined>;
  /** With replicas: until each replica has every write its primary has. */
  replicated(): Promise<void>;
  /** SIGKILL of the primary that serves a key's slot; its port. */
  killPrimaryOf(key: string): Promise<number>;
  /** What the live nodes' ACL LOGs hold (redis-cli's text: empty when no command or key was refused). */
  aclLog(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * 3 primaries, the slots split evenly (`redis-cli --cluster create`), and with `replicas` one
 * replica each, which takes its primary's slots over 2 s after the primary stops answering
 * (cluster-node-timeout); ready when every node says cluster_state:ok. Every node has the roles'
 * users, the replica's (which replicas use) and an administrator, whom the test and redis-cli use.
 */
export async function startRedisCluster(opts: { replicas?: boolean } = {}): Promise<TestCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdp-ids-cluster-'));
  const { acl, password, service, roleUrls: rolesAt } = users();
  const nodes: EmbeddedRedis[] = [];
  const killed = new Set<number>();
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const live = (): EmbeddedRedis[] => nodes.filter((n) => !killed.has(n.port));
  /** CLUSTER NODES as a live node sees it: port, whether primary, its slot ranges, and its primary's node id. */
  const clusterNodes = async (): Promise<Array<{ id: string; port: number; primary: boolean; failed: boolean; of: string; slots: Array<{ from: number; to: number }> }>> => {
    const lines = (await cli(live()[0].port, password, ['CLUSTER', 'NODES'])).trim().split('\n');
    return lines.map((line) => {
      const fields = line.split(' ');
      return {
        id: fields[0], port: Number(/:(\d+)@/.exec(fields[1])![1]), primary: /master/.test(fields[2]), failed: /fail/.test(fields[2]), of: fields[3],
        slots: fields.slice(8).filter((r) => /^\d/.test(r)).map((r) => {
          const [from, to = from] = r.split('-').map(Number);
          return { from, to };
        }),
      };
    });
  };
  const slotOwners = async (): Promise<Array<{ from: number; to: number; port: number }>> =>
    (await clusterNodes()).filter((n) => n.primary && !n.failed).flatMap((n) => n.slots.map((r) => ({ ...r, port: n.port })));
  const primaryOf = async (key: string): Promise<number | undefined> => {
    const slot = clusterKeySlot(key);
    return (await slotOwners()).find((r) => r.from <= slot && slot <= r.to)?.port;
  };
  const offset = async (port: number, field: string): Promise<number> =>
    Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(await cli(port, password, ['INFO', 'replication']))?.[1] ?? -1);
  try {
    const count = opts.replicas ? 6 : 3;
    for (let i = 0; i < count; i++) {
      // The bus port defaults to port + 10000, which may be taken or past 65535.
      const bus = await freePort();
      const config = ['cluster-enabled yes', `cluster-port ${bus}`, 'cluster-node-timeout 2000', `masteruser ${SERVICE_USERS.replica.user}`, `masterauth ${service.replica}`];
      nodes.push(await startEmbeddedRedis({ dir: path.join(dir, `n${i}`), acl, config }));
    }
    await run('redis-cli', ['--user', ADMIN, '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', opts.replicas ? '1' : '0', '--cluster-yes'],
      { env: { ...process.env, REDISCLI_AUTH: password }, timeout: 60_000 });
    for (const n of nodes) await until(`node ${n.port} in a healthy cluster`, async () => /cluster_state:ok/.test(await cli(n.port, password, ['CLUSTER', 'INFO'])), 30_000);
    if (opts.replicas) {
      await until('every replica linked to its primary', async () => {
        const infos = await Promise.all(nodes.map((n) => cli(n.port, password, ['INFO', 'replication'])));
        return infos.filter((i) => /role:slave/.test(i) && /master_link_status:up/.test(i)).length === 3;
      }, 30_000);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const base = `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  return {
    url: urlWithCredentials(base, ADMIN, password),
    roles: rolesAt(base),
    nodes, stop, slotOwners, primaryOf,
    aclLog: () => aclLogs(live(), password),
    async replicated() {
      const all = await clusterNodes();
      for (const replica of all.filter((n) => !n.primary && !n.failed)) {
        const primary = all.find((n) => n.id === replica.of)!;
        await until(`replica ${replica.port} caught up with ${primary.port}`, async () =>
          await offset(replica.port, 'slave_repl_offset') >= await offset(primary.port, 'master_repl_offset'), 10_000);
      }
    },
    async killPrimaryOf(key) {
      const port = await primaryOf(key);
      if (port === undefined) throw new Error(`no primary serves ${key}`);
      process.kill(nodes.find((n) => n.port === port)!.pid, 'SIGKILL');
      killed.add(port);
      return port;
    },
  };
}
