/**
 * `meshwork <command>`: the commands are listed in commands.ts, the framework (help, errors,
 * exit codes) is command.ts. Exit codes: 0 success, 1 the command ran and failed, 2 usage error
 * (`diff`: 1 = differences, 3 = failed).
 */
import { execute } from './command.ts';
import { COMMANDS } from './commands.ts';

export function main(argv: string[]): Promise<number> {
  return execute(COMMANDS, argv);
}
