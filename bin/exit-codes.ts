/**
 * What `xdp-ids` exits with, for scripts: 0 done; 1 it failed (Redis unreachable, refused, a
 * runtime error); 2 the command line is wrong (unknown command or option, a bad value); 3 the
 * answer is "no": the incident does not exist (`incidents show|resolve`), or a part is not
 * alive or a partition has no detector (`status`).
 */
import { CommanderError } from 'commander';

export const EXIT = { ok: 0, error: 1, usage: 2, notFound: 3, degraded: 3 } as const;

const USAGE = new Set([
  'commander.unknownCommand', 'commander.unknownOption', 'commander.missingArgument', 'commander.optionMissingArgument',
  'commander.missingMandatoryOptionValue', 'commander.invalidArgument', 'commander.excessArguments', 'commander.conflictingOption',
]);

/** The exit code of a failed command. */
export function exitCodeOf(err: unknown): number {
  if (!(err instanceof CommanderError)) return EXIT.error;
  if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.ok;
  // A command group called without a subcommand prints its help as an error.
  if (err.code === 'commander.help') return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  return USAGE.has(err.code) ? EXIT.usage : err.exitCode;
}
