/**
 * The dashboard of `xdp-ids run`: the control API on the loopback only, where whoever runs the
 * service signs in with a one-time login link (a fresh one as soon as the last is spent or has
 * expired) or with a token of XDP_IDS_API_TOKENS.
 */
import type { Logger } from 'pino';
import { startControlApi } from '../blocking/api';
import type { ApiToken } from '../blocking/tokens';
import type { RedisTarget } from '../common/redis';
import { Sessions, type Principal } from './sessions';

/** Who signs in with a login link: the person running the service, with every right it has. */
const RUN_OPERATOR: Principal = { name: 'run', scope: 'write' };

export interface LocalDashboard {
  url: string;
  /** A link that signs in once: the same one until it is spent or expires. */
  loginLink(): string;
  close(): Promise<void>;
}

export async function startLocalDashboard(opts: { redisUrl: RedisTarget; port: number; tokens: ApiToken[]; log: Logger }): Promise<LocalDashboard> {
  const sessions = new Sessions();
  let api: Awaited<ReturnType<typeof startControlApi>>;
  try {
    api = await startControlApi({ redisUrl: opts.redisUrl, host: '127.0.0.1', port: opts.port, tokens: opts.tokens, log: opts.log, sessions });
  } catch (err) {
    throw new Error(`the dashboard cannot listen on 127.0.0.1:${opts.port} (${(err as Error).message}): pass another --dashboard-port, or --no-dashboard`);
  }
  let token = sessions.issueLoginToken(RUN_OPERATOR);
  return {
    url: api.url,
    loginLink() {
      if (!sessions.loginTokenUnspent(token)) token = sessions.issueLoginToken(RUN_OPERATOR);
      return `${api.url}/#login=${token}`;
    },
    close: () => api.close(),
  };
}
