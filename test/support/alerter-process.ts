/** An alerter in its own process, so a test can kill it with SIGKILL mid-delivery. */
import pino from 'pino';
import { startAlerter } from '../../alerts/service';

startAlerter({
  redisUrl: process.env.TEST_ALERTER_REDIS_URL!, configPath: process.env.TEST_ALERTER_CONFIG!,
  log: pino({ level: 'silent' }), lockDurationMs: Number(process.env.TEST_ALERTER_LOCK_MS),
}).then(() => process.stdout.write('ready\n'), (err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
