/**
 * The CLI's command framework: what a command declares, and what every command gets from it.
 *
 * A command is a module that exports `defineCommand({ name, summary, usage, help, options, run })`
 * (or `defineGroup` for one with subcommands, like `context set|use|list|delete`). It is
 * registered by adding it to COMMANDS in commands.ts; nothing else changes. The framework gives
 * every command:
 *
 *   meshwork <command> --help | -h      its help (usage, text, options, exit codes), exit 0
 *   meshwork help <command> [sub]       the same
 *   meshwork <command> --bogus          one line naming the option, "see meshwork <command> --help", exit 2
 *   throw new UsageError(msg)           the same one-line form, exit 2
 *   throw new CommandError(msg)         `meshwork <command>: msg` (its details first), exit 1 (or `failureCode`);
 *                                       so is a ProjectError from loadProject() (meshwork.yaml's file:line errors)
 *   any other exception                 one line + "run with MESHWORK_DEBUG=1 for the stack", exit 1 (or `failureCode`)
 *
 * and the program-level `meshwork --help`, `meshwork --version | -v | version`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatIssue } from '../../config/validate.ts';
import { ProjectError } from '../project/project.ts';

/** A wrong invocation: exit 2, with a pointer to the command's help. */
export class UsageError extends Error {}

/**
 * The command ran and failed, already worded for the user (one or two lines). `details` (e.g.
 * `file:line:column` config errors) are printed before the message, one per line.
 */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly details: readonly string[] = [],
  ) {
    super(message);
  }
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: string | boolean | string[] | boolean[];
  /** The value's placeholder in help (`--url <URL>`); string options only. */
  value?: string;
  /** What the option does, one line in the options list of the help. */
  description: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

type One<S> = S extends { type: 'string' } ? string : boolean;
type Val<S> = S extends { multiple: true } ? One<S>[] : One<S>;
/** What parseArgs gives for `O`: options with a default are always set, the others may be missing. */
export type Values<O extends OptionSpecs> = {
  -readonly [K in keyof O as O[K] extends { default: unknown } ? K : never]: Val<O[K]>;
} & {
  -readonly [K in keyof O as O[K] extends { default: unknown } ? never : K]?: Val<O[K]>;
};

export interface CommandSpec<O extends OptionSpecs> {
  /** What the user types: `meshwork <name>`. Lower case, no spaces. */
  name: string;
  /** One line for the command list of `meshwork --help`. */
  summary: string;
  /** The arguments after `meshwork <name>`, e.g. `[-f <dir>] [--url <URL>] [-m <message>]`. */
  usage: string;
  /** The detailed help: what it does, defaults, examples. Plain text, wrapped at ~100 columns. */
  help: string;
  options?: O;
  /**
   * Positional arguments it takes, by name for messages (`['dir']`: at most one). A last name
   * ending in "..." takes any number (`['files...']`). Default: none.
   */
  args?: readonly string[];
  /** The exit codes section of its help; default EXIT_CODES. */
  exitCodes?: string;
  /** Exit code of a failure (CommandError or unexpected); default 1. `diff` uses 3 (1 = differences). */
  failureCode?: number;
  run(input: { values: Values<O>; positionals: string[] }): Promise<number> | number;
}

/** A registered command, as the framework sees it. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  /** The help text printed by `--help`, for `path` (e.g. ['context', 'set']). */
  helpText(path: readonly string[]): string;
  /** Runs it with the arguments after its name. Errors are thrown; `execute` words them. */
  run(argv: string[], path: readonly string[]): Promise<number>;
  /** Subcommands, for a group. */
  readonly subcommands?: readonly Command[];
  readonly failureCode: number;
}

export const EXIT_CODES = `exit codes:
  0  success
  1  the command ran and failed (invalid config, the gateway refused or could not be reached)
  2  usage error (unknown option, bad value, missing argument)`;

const HELP_OPTION = { type: 'boolean', short: 'h', description: 'show this help' } as const satisfies OptionSpec;

function optionLines(options: OptionSpecs): string {
  const all: Record<string, OptionSpec> = { ...options, help: HELP_OPTION };
  const rows = Object.entries(all).map(([long, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${long}${o.type === 'string' ? ` <${o.value ?? 'value'}>` : ''}`;
    const extra = o.multiple ? ' (repeatable)' : '';
    return [flag, `${o.description}${extra}`] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length));
  return rows.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`).join('\n');
}

/** `--help` or `-h` among the arguments (before a `--`), whatever else is wrong with them. */
function asksForHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/** Node's parseArgs errors, in one line. */
function parseError(e: unknown): UsageError | undefined {
  const code = (e as { code?: string }).code;
  if (!code?.startsWith('ERR_PARSE_ARGS')) return undefined;
  const message = (e as Error).message;
  // "'-t, --times <value>'": the option's long name.
  const named = /'([^']+)'/
    .exec(message)?.[1]
    ?.replace(/ <value>$/, '')
    .split(', ')
    .at(-1);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new UsageError(`unknown option ${named ?? message}`);
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/argument missing|ambiguous/.test(message)) return new UsageError(`${named ?? 'an option'} needs a value`);
    if (/does not take an argument/.test(message)) return new UsageError(`${named ?? 'an option'} takes no value`);
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL')
    return new UsageError(`unexpected argument ${named ? `"${named}"` : ''}`.trim());
  return new UsageError(message.split('\n')[0]);
}

export function defineCommand<const O extends OptionSpecs = Record<never, OptionSpec>>(spec: CommandSpec<O>): Command {
  const options = (spec.options ?? {}) as O;
  const args = spec.args ?? [];
  return {
    name: spec.name,
    summary: spec.summary,
    failureCode: spec.failureCode ?? 1,
    helpText: (path) =>
      [
        `${spec.summary}\n`,
        `usage: meshwork ${path.join(' ')}${spec.usage ? ` ${spec.usage}` : ''}\n`,
        `${spec.help.trim()}\n`,
        `options:\n${optionLines(options)}\n`,
        spec.exitCodes ?? EXIT_CODES,
      ].join('\n'),
    async run(argv, path) {
      let parsed;
      try {
        parsed = parseArgs({
          args: argv,
          options: { ...options, help: HELP_OPTION },
          allowPositionals: true,
          strict: true,
        });
      } catch (e) {
        if (asksForHelp(argv)) return printHelp(this, path);
        throw parseError(e) ?? e;
      }
      const { help, ...values } = parsed.values as Record<string, unknown>;
      if (help) return printHelp(this, path);
      if (!args.at(-1)?.endsWith('...') && parsed.positionals.length > args.length) {
        const extra = parsed.positionals[args.length]!;
        throw new UsageError(
          args.length === 0
            ? `unexpected argument "${extra}" (it takes none)`
            : `unexpected argument "${extra}" (it takes at most ${args.length}: ${args.join(', ')})`,
        );
      }
      return spec.run({ values: values as Values<O>, positionals: parsed.positionals });
    },
  };
}

export interface GroupSpec {
  name: string;
  summary: string;
  help: string;
  subcommands: readonly Command[];
}

/** A command with subcommands: `meshwork <name> <sub> ...`; each sub is a defineCommand. */
export function defineGroup(spec: GroupSpec): Command {
  const names = spec.subcommands.map((c) => c.name);
  return {
    name: spec.name,
    summary: spec.summary,
    subcommands: spec.subcommands,
    failureCode: 1,
    helpText: (path) => {
      const width = Math.max(...names.map((n) => n.length));
      return [
        `${spec.summary}\n`,
        `usage: meshwork ${path.join(' ')} <${names.join('|')}> [options]\n`,
        `${spec.help.trim()}\n`,
        `commands:\n${spec.subcommands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}\n`,
        `see meshwork ${path.join(' ')} <command> --help for one of them.`,
      ].join('\n');
    },
    async run(argv, path) {
      // `execute` has followed every subcommand name; what is left starts with an option, or is nothing.
      if (asksForHelp(argv)) return printHelp(this, path);
      throw new UsageError(argv.length === 0 ? `needs a command: ${names.join(', ')}` : `unknown option ${argv[0]}`);
    },
  };
}

function printHelp(command: Command, path: readonly string[]): number {
  console.log(command.helpText(path));
  return 0;
}

/** The CLI's own version: the package.json of this install (not the project's). */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

/** The nearest of `names` to `word` when it looks like a typo of it. */
function closest(word: string, names: readonly string[]): string | undefined {
  const distance = (a: string, b: string) => {
    const d = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let prev = d[0]!;
      d[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const here = d[j]!;
        d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = here;
      }
    }
    return d[b.length]!;
  };
  const best = names.map((n) => [n, distance(word, n)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= Math.ceil(best[0].length / 3) ? best[0] : undefined;
}

/** The command `words` names, following subcommands; the words used and the arguments left. */
function resolve(
  commands: readonly Command[],
  words: readonly string[],
): { command: Command; path: string[]; rest: string[] } | { unknown: string; path: string[]; names: string[] } {
  const [first, ...others] = words;
  let command = commands.find((c) => c.name === first);
  if (!command) return { unknown: first ?? '', path: [], names: commands.map((c) => c.name) };
  const path = [command.name];
  let rest = others;
  while (command.subcommands && rest[0] !== undefined && !rest[0].startsWith('-')) {
    const sub: Command | undefined = command.subcommands.find((c) => c.name === rest[0]);
    if (!sub) return { unknown: rest[0], path, names: command.subcommands.map((c) => c.name) };
    command = sub;
    path.push(sub.name);
    rest = rest.slice(1);
  }
  return { command, path, rest };
}

function programHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length), 'version'.length);
  const list = [
    ...commands.map((c) => [c.name, c.summary] as const),
    ['help', 'help for a command: meshwork help <command>'] as const,
    ['version', "this CLI's version (also --version, -v)"] as const,
  ];
  return `meshwork: a service mesh for Cloudflare Workers

usage: meshwork <command> [options]

commands:
${list.map(([n, s]) => `  ${n.padEnd(width)}  ${s}`).join('\n')}

Run meshwork <command> --help for a command's options and exit codes.
Commands that call a gateway find it through --url, then MESHWORK_URL, then the current saved
context (meshwork context), then the dev mesh \`npx meshwork dev\` runs in this project.`;
}

function report(prefix: string, e: unknown): void {
  if (e instanceof CommandError || e instanceof ProjectError) {
    // A broken meshwork.yaml (loadProject) is worded like any failure: its file:line errors, then what.
    const details = e instanceof CommandError ? e.details : e.issues.map(formatIssue);
    for (const line of details) console.error(line);
    console.error(`${prefix}: ${e.message}`);
    return;
  }
  const message = e instanceof Error ? e.message : String(e);
  if (process.env.MESHWORK_DEBUG === '1' && e instanceof Error && e.stack) {
    console.error(`${prefix}: ${e.stack}`);
    return;
  }
  console.error(`${prefix}: unexpected error: ${message.split('\n')[0]}`);
  console.error('run with MESHWORK_DEBUG=1 for the stack');
}

/** Runs the CLI: `argv` is what follows `meshwork`. Returns the exit code. */
export async function execute(commands: readonly Command[], argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h') {
    console.log(programHelp(commands));
    return 0;
  }
  if (first === '--version' || first === '-v' || first === 'version') {
    if (first === 'version' && rest.length > 0 && !asksForHelp(rest)) {
      console.error(`meshwork version: unexpected argument "${rest[0]}"; see meshwork --help`);
      return 2;
    }
    console.log(
      asksForHelp(rest) ? "usage: meshwork version\n\nPrints this CLI's version." : `meshwork ${cliVersion()}`,
    );
    return 0;
  }
  if (first === 'help') {
    if (rest.length === 0) {
      console.log(programHelp(commands));
      return 0;
    }
    const found = resolve(commands, rest);
    if ('unknown' in found) {
      const label = ['meshwork', 'help', ...found.path].join(' ');
      const guess = closest(found.unknown, found.names);
      console.error(
        `${label}: unknown command "${found.unknown}"${guess ? ` (did you mean ${guess}?)` : ''}; see meshwork --help`,
      );
      return 2;
    }
    if (found.rest.length > 0) {
      console.error(`meshwork help: unexpected argument "${found.rest[0]}"; see meshwork --help`);
      return 2;
    }
    console.log(found.command.helpText(found.path));
    return 0;
  }
  if (first.startsWith('-')) {
    console.error(`meshwork: unknown option ${first} (options go after the command); see meshwork --help`);
    return 2;
  }
  const found = resolve(commands, argv);
  if ('unknown' in found) {
    const label = ['meshwork', ...found.path].join(' ');
    const guess = closest(found.unknown, found.names);
    console.error(
      `${label}: unknown command "${found.unknown}"${guess ? ` (did you mean ${guess}?)` : ''}; see ${label} --help`,
    );
    return 2;
  }
  const { command, path } = found;
  const label = ['meshwork', ...path].join(' ');
  try {
    return await command.run(found.rest, path);
  } catch (e) {
    const usage = e instanceof UsageError ? e : parseError(e);
    if (usage) {
      // One line ends with where to read more; a message of two already says what to do next.
      console.error(`${label}: ${usage.message}${usage.message.includes('\n') ? '' : `; see ${label} --help`}`);
      return 2;
    }
    report(label, e);
    return command.failureCode;
  }
}
