/**
 * `xdp-ids redis acl`: the Redis users of a deployment, one per role (common/redis-roles.ts),
 * with random passwords: an ACL file for redis-server, which holds only hashes of the passwords,
 * and each role's URL in a file of its own (0600) for the components of that role.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { parseRedisUrl, type RedisTopology } from '../common/redis-topology';
import { aclFileText, newPassword, newRolePasswords, ROLE_NAMES, roleUrls, SERVICE_USERS, type Role, type ServicePasswords } from '../common/redis-roles';

const WHO: Record<Role, string> = {
  sensor: 'every `xdp-ids sensor`',
  detector: 'every `xdp-ids detector`',
  alerter: '`xdp-ids alerter` and `xdp-ids alerts ...`',
  control: '`xdp-ids api` and `xdp-ids block|allow|limit ...`',
};

function fail(message: string): never {
  throw new CommanderError(1, 'xdp-ids.redis.acl', message);
}

/** Where the components reach Redis, without credentials (they are generated). */
function topologyOf(text: string): RedisTopology {
  let topology: RedisTopology;
  try {
    topology = parseRedisUrl(text);
  } catch (err) {
    // Not echoed: it may hold a password after all.
    fail(`--url: ${(err as Error).message}`);
  }
  const { username, password } = topology.kind === 'server'
    ? { username: topology.url.username || topology.url.searchParams.get('username'), password: topology.url.password || topology.url.searchParams.get('password') }
    : topology;
  if (username || password) fail('--url says where Redis is; leave the credentials out (they are generated)');
  return topology;
}

/**
 * The users Redis's own processes need besides the parts', when it is replicated: every server
 * that may become a replica (behind Sentinel, or a Cluster's) syncs as the replica user, and
 * Sentinels watch the servers as the sentinel user. Their passwords, and for each a secret file
 * of redis.conf or sentinel.conf lines.
 */
function serviceUsers(topology: RedisTopology, dir: string): { passwords: ServicePasswords; files: Array<{ file: string; text: string; use: string }> } {
  if (topology.kind === 'server') return { passwords: {}, files: [] };
  const replica = newPassword();
  const files = [{
    file: path.join(dir, 'redis-replication.conf'), use: 'every redis-server that may become a replica: include it in its redis.conf',
    text: `# xdp-ids: how a replica authenticates to its primary\nmasteruser ${SERVICE_USERS.replica.user}\nmasterauth ${replica}\n`,
  }];
  if (topology.kind === 'cluster') return { passwords: { replica }, files };
  const sentinel = newPassword();
  files.push({
    file: path.join(dir, 'sentinel-auth.conf'), use: 'every Sentinel: add its lines to sentinel.conf, after `sentinel monitor`',
    text: `# xdp-ids: how a Sentinel authenticates to the servers it watches\nsentinel auth-user ${topology.name} ${SERVICE_USERS.sentinel.user}\nsentinel auth-pass ${topology.name} ${sentinel}\n`,
  });
  return { passwords: { replica, sentinel }, files };
}

/** Writes through a new file renamed into place, so a secret never sits in a file with looser permissions. */
function writeFile(file: string, text: string, mode: number): void {
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, text, { mode, flag: 'wx' });
  fs.renameSync(temporary, file);
}

export function registerRedisCommands(program: Command): void {
  const redis = program.command('redis').description('set up the Redis that every part of xdp-ids shares');
  redis.command('acl')
    .description('write a Redis ACL file with one user per role (sensor, detector, alerter, control; random passwords; the default user off) and each role\'s URL in a secret file next to it')
    .option('--out <file>', 'the ACL file (redis.conf: aclfile FILE); the URL files go next to it as redis-<role>.url', 'redis-users.acl')
    .option('--url <url>', 'where the components reach Redis, without credentials: redis://host:6379, rediss://host:6380 (TLS), unix:///path/redis.sock, '
      + 'redis+sentinel://host:26379,host2:26379/mymaster or redis+cluster://host:6379,host2:6379', 'redis://127.0.0.1:6379')
    .option('--force', 'replace existing files (new passwords: Redis and every component must then load them)')
    .action(function (this: Command, opts: { out: string; url: string; force?: boolean }) {
      const topology = topologyOf(opts.url);
      const dir = path.dirname(path.resolve(opts.out));
      const files = { acl: path.resolve(opts.out), ...Object.fromEntries(ROLE_NAMES.map((role) => [role, path.join(dir, `redis-${role}.url`)])) } as Record<Role | 'acl', string>;
      const service = serviceUsers(topology, dir);
      const existing = [...Object.values(files), ...service.files.map((e) => e.file)].filter((file) => fs.existsSync(file));
      if (existing.length > 0 && !opts.force) fail(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}: --force replaces them (with new passwords)`);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const passwords = newRolePasswords();
      // Hashes only: redis-server, which often runs as a user of its own, must read it.
      writeFile(files.acl, aclFileText(passwords, service.passwords), 0o644);
      const urls = roleUrls(opts.url, passwords);
      for (const role of ROLE_NAMES) writeFile(files[role], `${urls[role]}\n`, 0o600);
      for (const e of service.files) writeFile(e.file, e.text, 0o600);
      this.configureOutput().writeOut?.([
        `${files.acl}: the ACL users (password hashes only); redis-server: aclfile ${files.acl}`,
        ...ROLE_NAMES.map((role) => `${files[role]}: the ${role} role's URL (0600), for ${WHO[role]}: XDP_IDS_REDIS_URL_FILE=${files[role]}`),
        ...service.files.map((e) => `${e.file}: (0600) for ${e.use}`),
      ].join('\n') + '\n');
    });
}
