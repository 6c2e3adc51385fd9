/**
 * `meshwork <command>`. Exit codes: 0 success, 1 the command ran and failed (e.g. an invalid
 * config), 2 usage error.
 */
import { parseArgs } from 'node:util';
import { missingGatewayBindings } from '../config/bindings.ts';
import { bundleRoutesDir } from '../config/load-dir.ts';
import { formatIssue } from '../config/validate.ts';

const USAGE = `usage: meshwork <command> [options]

commands:
  validate [dir] [--check-bindings <wrangler config>]
                    check a routes directory (default: routes) and report errors as
                    file:line:column; with --check-bindings, also that the gateway's wrangler
                    config declares every binding the routes send traffic to
  help              show this help
`;

export class UsageError extends Error {}

type Command = (args: string[]) => Promise<number>;

async function validate(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { quiet: { type: 'boolean', short: 'q' }, 'check-bindings': { type: 'string' } },
  });
  if (positionals.length > 1) throw new UsageError('validate takes at most one directory');
  const dir = positionals[0] ?? 'routes';
  const result = await bundleRoutesDir(dir);
  if (!result.ok) {
    for (const issue of result.errors) console.error(formatIssue(issue));
    console.error(`\n${result.errors.length} error(s) in ${dir}`);
    return 1;
  }
  if (values['check-bindings']) {
    const missing = await missingGatewayBindings(result.bundle.config, values['check-bindings']);
    if (missing.length > 0) {
      for (const m of missing) console.error(m);
      return 1;
    }
  }
  if (!values.quiet) {
    const { services, routes } = result.bundle.config;
    console.log(`${dir}: valid (config ${result.bundle.version}: ${Object.keys(services).length} services, ${routes.length} routes)`);
  }
  return 0;
}

const COMMANDS: Record<string, Command> = {
  validate,
  help: async () => {
    console.log(USAGE);
    return 0;
  },
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const command = name === undefined || name === '--help' || name === '-h' ? COMMANDS.help! : COMMANDS[name];
  if (!command) {
    console.error(`meshwork: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`meshwork ${name}: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    console.error(`meshwork ${name}: ${(e as Error).message}`);
    return 1;
  }
}
