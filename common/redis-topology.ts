/**
 * The shape of a Redis deployment, from its URL: one server (`redis://`, `rediss://`, `unix://`),
 * a primary that Sentinels watch and replace (`redis+sentinel://[user:password@]host:port,host:port/<primary name>`,
 * `rediss+sentinel://` with TLS to the servers and the Sentinels), or a Redis Cluster
 * (`redis+cluster://[user:password@]host:port,host:port`, `rediss+cluster://`). The user and
 * password are the role's (common/redis-roles.ts), on every server; Sentinels that want their own
 * credentials get them as `?sentinelUsername=...&sentinelPassword=...`. A list of hosts is no
 * WHATWG URL (it has no single port), so those URLs are parsed here; errors never quote the text,
 * which may hold a password.
 */

export interface HostPort {
  host: string;
  port: number;
}

export interface ServerTopology {
  kind: 'server';
  url: URL;
}

export interface SentinelTopology {
  kind: 'sentinel';
  tls: boolean;
  /** The Sentinels. */
  nodes: HostPort[];
  /** The primary's name in the Sentinels' configuration (`sentinel monitor <name> ...`). */
  name: string;
  username: string;
  password: string;
  sentinelUsername: string;
  sentinelPassword: string;
}

export interface ClusterTopology {
  kind: 'cluster';
  tls: boolean;
  /** Some of the cluster's nodes: the rest are found from them. */
  nodes: HostPort[];
  username: string;
  password: string;
}

export type RedisTopology = ServerTopology | SentinelTopology | ClusterTopology;

/** A Redis URL that cannot be used; the message never quotes it. */
export class RedisUrlError extends Error {}

export const REDIS_URL_FORMS = 'redis://[user:password@]host[:port][/db], rediss://... (TLS), unix:///path/to/redis.sock[?username=...&password=...], '
  + 'redis+sentinel://[user:password@]host:port,host:port/<primary name> (or rediss+sentinel://) or redis+cluster://[user:password@]host:port,host:port (or rediss+cluster://)';

const MULTI_HOST = /^(?<scheme>rediss?)\+(?<kind>sentinel|cluster):\/\/(?:(?<userInfo>[^/?]*)@)?(?<hosts>[^@/?]+)(?<path>\/[^?]*)?(?:\?(?<query>.*))?$/;
const DEFAULT_PORT = { sentinel: 26379, cluster: 6379 } as const;
const SENTINEL_PARAMETERS = ['sentinelUsername', 'sentinelPassword'];

function decode(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new RedisUrlError(`the ${what} in the Redis URL is not valid percent-encoding`);
  }
}

function hostPort(text: string, defaultPort: number): HostPort {
  let url: URL;
  try {
    url = new URL(`redis://${text}`);
  } catch {
    throw new RedisUrlError(`a host in the Redis URL's host list does not parse (host:port, [v6]:port)`);
  }
  if (url.hostname === '' || url.username || url.pathname !== '' || url.search) throw new RedisUrlError('a host in the Redis URL\'s host list is not host:port');
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? defaultPort : Number(url.port) };
}

function parseMultiHost(text: string): SentinelTopology | ClusterTopology | undefined {
  const groups = MULTI_HOST.exec(text)?.groups;
  if (!groups) return undefined;
  const { scheme, hosts, userInfo = '', path = '', query = '' } = groups;
  const kind = groups.kind as 'sentinel' | 'cluster';
  const colon = userInfo.indexOf(':');
  const username = decode(colon < 0 ? userInfo : userInfo.slice(0, colon), 'user');
  const password = colon < 0 ? '' : decode(userInfo.slice(colon + 1), 'password');
  const nodes = hosts.split(',').map((h) => hostPort(h, DEFAULT_PORT[kind]));
  const params = new URLSearchParams(query);
  const tls = scheme === 'rediss';
  if (kind === 'cluster') {
    if (path !== '' && path !== '/') throw new RedisUrlError('a redis+cluster:// URL has no path: a cluster has one database');
    if ([...params.keys()].length) throw new RedisUrlError('a redis+cluster:// URL takes no query parameters');
    return { kind, tls, nodes, username, password };
  }
  const name = decode(path.replace(/^\//, ''), 'primary name');
  if (name === '' || name.includes('/')) throw new RedisUrlError('a redis+sentinel:// URL ends with the name the Sentinels know the primary by: redis+sentinel://host:26379,host2:26379/mymaster');
  const unknown = [...params.keys()].filter((p) => !SENTINEL_PARAMETERS.includes(p));
  if (unknown.length) throw new RedisUrlError(`a redis+sentinel:// URL takes only ${SENTINEL_PARAMETERS.join(' and ')} as query parameters, not ${unknown.join(', ')}`);
  return { kind, tls, nodes, name, username, password, sentinelUsername: params.get('sentinelUsername') ?? '', sentinelPassword: params.get('sentinelPassword') ?? '' };
}

/** The topology a URL describes, or a RedisUrlError saying what is wrong with it. */
export function parseRedisUrl(text: string): RedisTopology {
  if (/^rediss?\+/.test(text)) {
    const parsed = parseMultiHost(text);
    if (!parsed) throw new RedisUrlError(`the Redis URL does not parse; expected ${REDIS_URL_FORMS}`);
    return parsed;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RedisUrlError(`the Redis URL does not parse; expected ${REDIS_URL_FORMS}`);
  }
  if (!['redis:', 'rediss:', 'unix:'].includes(url.protocol)) throw new RedisUrlError(`the Redis URL has the scheme ${url.protocol}; expected ${REDIS_URL_FORMS}`);
  if (url.protocol === 'unix:' ? url.host !== '' || url.pathname.length < 2 : url.hostname === '') {
    throw new RedisUrlError(`the Redis URL names no ${url.protocol === 'unix:' ? 'socket path' : 'host'}; expected ${REDIS_URL_FORMS}`);
  }
  return { kind: 'server', url };
}

function formatHost({ host, port }: HostPort): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The URL text of a topology (parseRedisUrl's inverse, up to spelling). */
export function formatRedisUrl(t: RedisTopology): string {
  if (t.kind === 'server') return t.url.toString();
  const userInfo = t.username || t.password ? `${encodeURIComponent(t.username)}${t.password ? `:${encodeURIComponent(t.password)}` : ''}@` : '';
  const base = `${t.tls ? 'rediss' : 'redis'}+${t.kind}://${userInfo}${t.nodes.map(formatHost).join(',')}`;
  if (t.kind === 'cluster') return base;
  const params = new URLSearchParams();
  if (t.sentinelUsername) params.set('sentinelUsername', t.sentinelUsername);
  if (t.sentinelPassword) params.set('sentinelPassword', t.sentinelPassword);
  const query = params.toString();
  return `${base}/${encodeURIComponent(t.name)}${query ? `?${query}` : ''}`;
}

/** Query parameters ioredis turns into options that hold secrets (`password`, `sentinelPassword`...). */
function isSecretParameter(name: string): boolean {
  return /pass/i.test(name);
}

/** Whether the URL carries a password for the servers or the Sentinels. */
export function hasPassword(t: RedisTopology): boolean {
  if (t.kind === 'server') return t.url.password !== '' || [...t.url.searchParams.keys()].some(isSecretParameter);
  return t.password !== '' || (t.kind === 'sentinel' && t.sentinelPassword !== '');
}

/** The topology with every password replaced by `***` (user info without a password is often a password written where the user goes). */
export function redacted(t: RedisTopology): RedisTopology {
  if (t.kind === 'server') {
    const url = new URL(t.url.toString());
    if (url.password) url.password = '***';
    else if (url.username) url.username = '***';
    for (const name of [...url.searchParams.keys()]) if (isSecretParameter(name)) url.searchParams.set(name, '***');
    return { kind: 'server', url };
  }
  const hidden = { ...t, ...(t.password ? { password: '***' } : t.username ? { username: '***' } : {}) };
  return hidden.kind === 'sentinel' && hidden.sentinelPassword ? { ...hidden, sentinelPassword: '***' } : hidden;
}

/** The topology with a user's credentials (for unix://, in the query, where a URL has no room for them). */
export function withCredentials(t: RedisTopology, username: string, password: string): RedisTopology {
  if (t.kind !== 'server') return { ...t, username, password };
  const url = new URL(t.url.toString());
  if (url.protocol === 'unix:') {
    url.searchParams.set('username', username);
    url.searchParams.set('password', password);
  } else {
    url.username = encodeURIComponent(username);
    url.password = encodeURIComponent(password);
  }
  return { kind: 'server', url };
}

/** Every host the clients talk to (servers or Sentinels and cluster nodes named in the URL). */
export function hostsOf(t: RedisTopology): string[] {
  if (t.kind !== 'server') return t.nodes.map((n) => n.host);
  return t.url.protocol === 'unix:' ? [] : [t.url.hostname.replace(/^\[|\]$/g, '')];
}

export function usesTls(t: RedisTopology): boolean {
  return t.kind === 'server' ? t.url.protocol === 'rediss:' : t.tls;
}
