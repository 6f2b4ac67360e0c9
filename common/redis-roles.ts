/**
 * Who may touch what in Redis. The key map below names every key, channel and queue of xdp-ids
 * once, by what it holds; each role is granted groups of it, read or write; the Redis 7 ACL users
 * (`xdp-ids redis acl`, and the private Redis of `xdp-ids run`) are generated from both. A sensor
 * reads the ledger and never writes it, so a compromised sensor cannot block anyone.
 */
import { createHash, randomBytes } from 'node:crypto';
import { DELIVERY_QUEUE, FLUSH_QUEUE, KEY_PREFIX as ALERTER_PREFIX, keys } from '../alerts/keys';
import { CHANGES_CHANNEL, NS as LEDGER_NS } from '../blocking/ledger';
import { INCIDENTS_PREFIX } from '../detector/incidents';
import { ALERTS_QUEUE } from './alert-events';
import { heartbeatKey } from './heartbeat';
import { urlWithCredentials } from './redis';
import { PARTITIONS, partitionQueue } from './windows-jobs';

/** A BullMQ queue's keys (default prefix `bull`). */
function queueKeys(queue: string): string {
  return `bull:${queue}:*`;
}

/** Every key pattern xdp-ids uses, by what it holds (where each lives on a Redis Cluster: docs/redis-keys.md). */
export const KEY_MAP = {
  /** The block ledger every sensor enforces: blocks, allow entries, SYN limits, their indexes, counters and revision. */
  ledger: ['block:*', 'blocks', 'blocks:*', 'allow', 'dstlimit:*', 'dstlimits', 'ledger:*'].map((k) => `${LEDGER_NS}${k}`),
  /** What each sensor writes about itself (its own allow entries, its kernel's repairs and drops) and the live sensors. */
  sensors: [`${LEDGER_NS}sensor:*`, `${LEDGER_NS}sensors`],
  /** Incidents and the attacks that gather them. */
  incidents: [`${INCIDENTS_PREFIX}:*`],
  /** Detectors' membership and their leases on the windows partitions. */
  partitions: ['xdp-ids:detectors', 'xdp-ids:partition:*'],
  /** Operators' requests to resolve an incident (`xdp-ids incidents resolve`), which a detector carries out. */
  incidentRequests: [`${INCIDENTS_PREFIX}:incident-requests`],
  /** What each detector and alerter says about itself, for `xdp-ids status` (common/heartbeat.ts). */
  detectorHeartbeats: [heartbeatKey('detector')],
  alerterHeartbeats: [heartbeatKey('alerter')],
  /** The rule set each detector runs, its embedded tests' results and its last rejected reload (detector/rules-status.ts). */
  ruleStatus: ['xdp-ids:rules:*'],
  /** Grouping, silences, dead letters, sent deliveries. */
  alerterState: [`${ALERTER_PREFIX}:*`],
  /** The dead-letter list alone (part of the alerter's state), which operators read and replay. */
  deadLetters: [keys.deadLetters, `${keys.deadLetterOrder}`],
  /** The windows partitions: sensors produce, detectors consume. */
  windowsQueues: Array.from({ length: PARTITIONS }, (_, p) => queueKeys(partitionQueue(p))),
  /** Events for the alerter: every component produces, the alerter consumes. */
  alertsQueue: [queueKeys(ALERTS_QUEUE)],
  /** The alerter's own queues. */
  alerterQueues: [queueKeys(FLUSH_QUEUE), queueKeys(DELIVERY_QUEUE)],
};

export type KeyGroup = keyof typeof KEY_MAP;

/** The ledger's broadcast channel (blocking/ledger.ts). */
export const LEDGER_CHANNEL = CHANGES_CHANNEL;

export type Role = 'sensor' | 'detector' | 'alerter' | 'control';

export interface RoleGrant {
  /** `write` includes reading. */
  keys: Partial<Record<KeyGroup, 'read' | 'write'>>;
  /** The ledger channel: sensors subscribe; the ledger's writers publish (from inside its scripts). */
  ledgerChannel?: 'subscribe' | 'publish';
}

export const ROLES: Record<Role, RoleGrant> = {
  sensor: { keys: { ledger: 'read', sensors: 'write', windowsQueues: 'write', alertsQueue: 'write' }, ledgerChannel: 'subscribe' },
  detector: {
    keys: {
      ledger: 'write', sensors: 'read', incidents: 'write', incidentRequests: 'write', partitions: 'write', detectorHeartbeats: 'write', ruleStatus: 'write',
      windowsQueues: 'write', alertsQueue: 'write',
    },
    ledgerChannel: 'publish',
  },
  alerter: { keys: { alerterState: 'write', alerterHeartbeats: 'write', alertsQueue: 'write', alerterQueues: 'write' } },
  /**
   * The control API (with the dashboard) and the block/allow/limit, incidents and status CLI: the
   * ledger; what sensors, incidents, detectors and alerters say; requests to resolve incidents;
   * recent deliveries, and the dead letters to replay.
   */
  control: {
    keys: {
      ledger: 'write', sensors: 'read', incidents: 'read', incidentRequests: 'write', partitions: 'read', detectorHeartbeats: 'read', alerterHeartbeats: 'read',
      ruleStatus: 'read', deadLetters: 'write', alertsQueue: 'write', alerterQueues: 'write',
    },
    ledgerChannel: 'publish',
  },
};

export const ROLE_NAMES = Object.keys(ROLES) as Role[];

/**
 * Commands every role may run: data commands (the key patterns confine them), MULTI/EXEC,
 * scripts (ioredis and BullMQ send EVALSHA and fall back to EVAL; EVAL_RO runs read-only scripts
 * on keys a role may only read), the connection handshake, and INFO (ioredis' ready check,
 * BullMQ's version check, the memory watch, and which server is the primary behind Sentinels),
 * and on a Redis Cluster CLUSTER SLOTS and CLUSTER INFO (how ioredis learns which node serves
 * which slot). Nothing that reaches past the key patterns: no KEYS, SCAN or RANDOMKEY, no
 * FLUSHALL, CONFIG, DEBUG, ACL or CLIENT KILL (-@dangerous), no SELECT.
 */
const COMMANDS = '-@all +@read +@write +@transaction +@connection +eval +evalsha +eval_ro +evalsha_ro -@dangerous -scan -randomkey -select +info '
  + '+cluster|slots +cluster|info';

/** Redis 7 ACL rules for a role (keys, channels, commands), as ACL SETUSER and ACL files take them. */
export function aclRules(role: Role): string {
  const grant = ROLES[role];
  const keys = Object.entries(grant.keys).flatMap(([group, access]) => KEY_MAP[group as KeyGroup].map((p) => (access === 'write' ? `~${p}` : `%R~${p}`)));
  const channel = grant.ledgerChannel ? [`&${LEDGER_CHANNEL}`] : [];
  const pubsub = { subscribe: ['+subscribe', '+unsubscribe'], publish: ['+publish'], none: [] }[grant.ledgerChannel ?? 'none'];
  return ['resetkeys', ...keys, 'resetchannels', ...channel, COMMANDS, ...pubsub].join(' ');
}

/** The ACL user of a role. */
export function roleUser(role: Role): string {
  return `xdp-ids-${role}`;
}

export type RolePasswords = Record<Role, string>;

export function newRolePasswords(): RolePasswords {
  return Object.fromEntries(ROLE_NAMES.map((role) => [role, newPassword()])) as RolePasswords;
}

/**
 * The users Redis's own processes need when it is replicated, with the least the Redis manual
 * says they use: a replica syncs from its primary (and so reads every key: its password belongs
 * with the servers only), and a Sentinel watches the servers, announces itself on its hello
 * channel and promotes a replica.
 */
export const SERVICE_USERS = {
  replica: { user: 'xdp-ids-replica', rules: 'resetkeys resetchannels -@all +psync +replconf +ping' },
  sentinel: {
    user: 'xdp-ids-sentinel',
    rules: 'resetkeys resetchannels &__sentinel__:hello -@all +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill',
  },
} as const;
export type ServiceUser = keyof typeof SERVICE_USERS;
export type ServicePasswords = Partial<Record<ServiceUser, string>>;

export function newPassword(): string {
  return randomBytes(32).toString('base64url');
}

/** An ACL file: the default user off, one user per role, and the service users given. It holds SHA-256 hashes of the passwords, never the passwords. */
export function aclFileText(passwords: RolePasswords, service: ServicePasswords = {}): string {
  const hash = (password: string): string => createHash('sha256').update(password).digest('hex');
  return ['user default reset off', ...ROLE_NAMES.map((role) => `user ${roleUser(role)} reset on #${hash(passwords[role])} ${aclRules(role)}`),
    ...Object.entries(service).map(([name, password]) => `user ${SERVICE_USERS[name as ServiceUser].user} reset on #${hash(password)} ${SERVICE_USERS[name as ServiceUser].rules}`),
  ].join('\n') + '\n';
}

/** Each role's URL: `baseUrl` (where the components reach Redis, without credentials) with the role's user and password. */
export function roleUrls(baseUrl: string, passwords: RolePasswords): Record<Role, string> {
  return Object.fromEntries(ROLE_NAMES.map((role) => [role, urlWithCredentials(baseUrl, roleUser(role), passwords[role])])) as Record<Role, string>;
}
