import { LOGIN_TOKEN_TTL_MS, MAX_AGE_MS, Sessions } from '../../web/sessions';

describe('dashboard sessions', () => {
  let now: number;
  let sessions: Sessions;
  beforeEach(() => {
    now = 1_000_000;
    sessions = new Sessions(() => now);
  });

  test('a login token signs in once, within its time', () => {
    const token = sessions.issueLoginToken({ name: 'run', scope: 'write' });
    expect(sessions.loginTokenUnspent(token)).toBe(true);
    expect(sessions.redeemLoginToken(token)).toEqual({ name: 'run', scope: 'write' });
    expect(sessions.loginTokenUnspent(token)).toBe(false);
    expect(sessions.redeemLoginToken(token)).toBeUndefined();

    const late = sessions.issueLoginToken({ name: 'run', scope: 'write' });
    now += LOGIN_TOKEN_TTL_MS;
    expect(sessions.loginTokenUnspent(late)).toBe(false);
    expect(sessions.redeemLoginToken(late)).toBeUndefined();
  });

  test('a session keeps its scope, ends after an hour idle or its maximum age, and tells who listens', () => {
    const ended: string[] = [];
    sessions.onEnd((key) => ended.push(key));
    const s = sessions.create({ name: 'viewer', scope: 'read' });
    const held = sessions.get(s.id)!;
    expect(held).toMatchObject({ name: 'viewer', scope: 'read', csrf: s.csrf });
    now += 3_599_000;
    expect(sessions.get(s.id)).toBeDefined();
    now += 3_600_000;
    expect(sessions.holds(held.key)).toBe(false);
    expect(sessions.get(s.id)).toBeUndefined();
    expect(ended).toEqual([held.key]);

    const busy = sessions.create({ name: 'ops', scope: 'write' });
    for (let t = 0; t < MAX_AGE_MS; t += 1_800_000) {
      now += 1_800_000;
      sessions.get(busy.id);
    }
    expect(sessions.get(busy.id)).toBeUndefined();
  });

  test('the CSRF token must match exactly', () => {
    const s = sessions.create({ name: 'ops', scope: 'write' });
    expect(Sessions.csrfMatches(s.csrf, s.csrf)).toBe(true);
    expect(Sessions.csrfMatches(s.csrf, undefined)).toBe(false);
    expect(Sessions.csrfMatches(s.csrf, `${s.csrf}x`)).toBe(false);
    expect(Sessions.csrfMatches(s.csrf, '')).toBe(false);
  });

  test('an unknown session id is no session', () => {
    expect(sessions.get('not-a-session')).toBeUndefined();
  });
});
