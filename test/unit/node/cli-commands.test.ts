/**
 * The command framework (src/node/cli/command.ts) every `meshwork` command is built on: help,
 * version, usage errors and exit codes, first through its API (what a new command gets), then
 * through the CLI as a user runs it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CommandError, defineCommand, defineGroup, execute, UsageError } from '../../../src/node/cli/command.ts';
import { COMMANDS } from '../../../src/node/cli/commands.ts';
import { lines, meshwork, REPO, tempDir } from './cli-harness.ts';

/** Runs `execute` in this process, collecting what it prints. */
async function run(commands: Parameters<typeof execute>[0], argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  const code = await execute(commands, argv);
  vi.restoreAllMocks();
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the command framework', () => {
  const calls: unknown[] = [];
  const greet = defineCommand({
    name: 'greet',
    summary: 'say hello',
    usage: '[name] [--loud] [--times <n>]',
    help: 'Greets someone.',
    args: ['name'],
    options: {
      loud: { type: 'boolean', short: 'l', description: 'in capitals' },
      times: { type: 'string', default: '1', value: 'n', description: 'how often' },
    },
    run({ values, positionals }) {
      calls.push({ values, positionals });
      if (values.times === '0') throw new UsageError('--times must be at least 1');
      if (values.times === 'fail') throw new CommandError('the greeting failed\nask again later', ['detail one']);
      if (values.times === 'boom') throw new TypeError('x is undefined');
      console.log(`hello ${positionals[0] ?? 'world'}${values.loud ? '!' : ''}`);
      return 0;
    },
  });
  const odd = defineCommand({
    name: 'odd',
    summary: 'fails with 3',
    usage: '',
    help: 'x',
    failureCode: 3,
    run: () => {
      throw new CommandError('no');
    },
  });
  const group = defineGroup({ name: 'team', summary: 'teams', help: 'Team things.', subcommands: [greet] });
  const commands = [greet, odd, group];

  it('parses the declared options and positionals and runs the command', async () => {
    calls.length = 0;
    const r = await run(commands, ['greet', 'ana', '-l', '--times', '2']);
    expect(r).toEqual({ code: 0, stdout: 'hello ana!', stderr: '' });
    expect(calls).toEqual([{ values: { loud: true, times: '2' }, positionals: ['ana'] }]);
  });

  it('--help, -h and `help <command>` print the declared help, exit 0, without running it', async () => {
    calls.length = 0;
    const help = await run(commands, ['greet', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: meshwork greet [name] [--loud] [--times <n>]');
    expect(help.stdout).toContain('Greets someone.');
    expect(help.stdout).toMatch(/^ {2}-l, --loud +in capitals$/m);
    expect(help.stdout).toMatch(/^ {6}--times <n> +how often$/m);
    expect(help.stdout).toMatch(/^ {2}-h, --help +show this help$/m);
    expect(help.stdout).toContain('exit codes:');
    expect((await run(commands, ['greet', '-h'])).stdout).toBe(help.stdout);
    expect((await run(commands, ['help', 'greet'])).stdout).toBe(help.stdout);
    // Even among arguments that are wrong otherwise.
    expect((await run(commands, ['greet', '--bogus', '-h'])).code).toBe(0);
    expect(calls).toEqual([]);
  });

  it('a subcommand: its own help, and the group lists them', async () => {
    const sub = await run(commands, ['team', 'greet', '--help']);
    expect(sub.stdout).toContain('usage: meshwork team greet [name]');
    expect((await run(commands, ['help', 'team', 'greet'])).stdout).toBe(sub.stdout);
    const g = await run(commands, ['team', '--help']);
    expect(g.stdout).toMatch(/^ {2}greet +say hello$/m);
    expect((await run(commands, ['team', 'greet', 'bo'])).stdout).toBe('hello bo');
    const missing = await run(commands, ['team']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('meshwork team: needs a command: greet; see meshwork team --help');
  });

  it('usage errors are one line naming the problem and the help to read, exit 2', async () => {
    const cases: Array<[string[], string]> = [
      [['greet', '--bogus'], 'meshwork greet: unknown option --bogus; see meshwork greet --help'],
      [['greet', '-x'], 'meshwork greet: unknown option -x; see meshwork greet --help'],
      [['greet', '--times'], 'meshwork greet: --times needs a value; see meshwork greet --help'],
      [['greet', '--loud=yes'], 'meshwork greet: --loud takes no value; see meshwork greet --help'],
      [
        ['greet', 'a', 'b'],
        'meshwork greet: unexpected argument "b" (it takes at most 1: name); see meshwork greet --help',
      ],
      [['greet', '--times', '0'], 'meshwork greet: --times must be at least 1; see meshwork greet --help'],
      [['gret'], 'meshwork: unknown command "gret" (did you mean greet?); see meshwork --help'],
      [['team', 'grete'], 'meshwork team: unknown command "grete" (did you mean greet?); see meshwork team --help'],
    ];
    for (const [argv, message] of cases) {
      const r = await run(commands, argv);
      expect(r, argv.join(' ')).toEqual({ code: 2, stdout: '', stderr: message });
    }
  });

  it('a last argument named "..." takes any number of them', async () => {
    const seen: string[][] = [];
    const many = defineCommand({
      name: 'many',
      summary: 'many',
      usage: '<files...>',
      help: 'x',
      args: ['files...'],
      run: ({ positionals }) => {
        seen.push(positionals);
        return 0;
      },
    });
    expect((await run([many], ['many', 'a', 'b', 'c', '--', '--d'])).code).toBe(0);
    expect(seen).toEqual([['a', 'b', 'c', '--d']]);
  });

  it('a CommandError prints its details, then the message (two lines at most); exit 1 or the failureCode', async () => {
    const r = await run(commands, ['greet', '--times', 'fail']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'detail one\nmeshwork greet: the greeting failed\nask again later',
    });
    expect((await run(commands, ['odd'])).code).toBe(3);
  });

  it('anything else: one line and how to see the stack (MESHWORK_DEBUG=1), never the stack itself', async () => {
    const r = await run(commands, ['greet', '--times', 'boom']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('meshwork greet: unexpected error: x is undefined\nrun with MESHWORK_DEBUG=1 for the stack');
    vi.stubEnv('MESHWORK_DEBUG', '1');
    try {
      expect((await run(commands, ['greet', '--times', 'boom'])).stderr).toMatch(/TypeError: x is undefined\n\s+at /);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('the program help lists every command with its summary', async () => {
    const r = await run(commands, []);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}greet +say hello$/m);
    expect(r.stdout).toMatch(/^ {2}team +teams$/m);
    expect((await run(commands, ['--help'])).stdout).toBe(r.stdout);
    expect((await run(commands, ['help'])).stdout).toBe(r.stdout);
  });
});

describe('meshwork: help, version and usage errors, as a user sees them', () => {
  /** Every command and subcommand, as the words that name it. */
  const paths = COMMANDS.flatMap((c) => (c.subcommands ? c.subcommands.map((s) => [c.name, s.name]) : [[c.name]]));

  it('every command answers --help, -h and `meshwork help <command>` with its help, exit 0', async () => {
    expect(paths.map((p) => p.join(' '))).toEqual(
      expect.arrayContaining([
        'validate',
        'apply',
        'diff',
        'history',
        'rollback',
        'status',
        'metrics',
        'top',
        'token',
        'keys generate',
        'context set',
        'context use',
        'context list',
        'context delete',
        'init',
        'add service',
        'build',
        'dev',
        'deploy',
      ]),
    );
    // Every command through the framework in this process (fast); a few through bin/ below.
    for (const p of paths) {
      const long = await run(COMMANDS, [...p, '--help']);
      expect(long.code, p.join(' ')).toBe(0);
      expect(long.stderr).toBe('');
      expect(long.stdout).toContain(`usage: meshwork ${p.join(' ')}`);
      expect(long.stdout).toContain('exit codes:');
      expect((await run(COMMANDS, [...p, '-h'])).stdout).toBe(long.stdout);
      expect((await run(COMMANDS, ['help', ...p])).stdout).toBe(long.stdout);
    }
    for (const p of [['apply'], ['context', 'set']]) {
      const [long, short, viaHelp] = await Promise.all([
        meshwork([...p, '--help']),
        meshwork([...p, '-h']),
        meshwork(['help', ...p]),
      ]);
      expect(long.code).toBe(0);
      expect(long.stdout).toBe(`${(await run(COMMANDS, [...p, '--help'])).stdout}\n`);
      expect(short).toEqual(long);
      expect(viaHelp).toEqual(long);
    }
  }, 120_000);

  it('lists every command in the program help', async () => {
    const r = await meshwork(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^ {2}${c.name} +\\S`, 'm'));
    expect((await meshwork([])).stdout).toBe(r.stdout);
  });

  it("--version, -v and version print the CLI's own package version, whatever the working directory", async () => {
    const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    // A user's project has a package.json of its own: not the one that counts.
    const project = tempDir();
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', version: '9.9.9' }));
    for (const flag of ['--version', '-v', 'version']) {
      const r = await meshwork([flag], { cwd: project });
      expect(r, flag).toEqual({ code: 0, stdout: `meshwork ${version}\n`, stderr: '' });
    }
  });

  it('an unknown option is one line naming it and the help to read, exit 2', async () => {
    for (const p of [['apply'], ['status'], ['context', 'set'], ['top']]) {
      const r = await meshwork([...p, '--bogus']);
      expect(r.code, p.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(lines(r.stderr)).toEqual([
        `meshwork ${p.join(' ')}: unknown option --bogus; see meshwork ${p.join(' ')} --help`,
      ]);
    }
  });

  it('an unexpected failure is one line and a pointer to MESHWORK_DEBUG=1, which shows the stack', async () => {
    // A routes "file" that is a directory: reading it fails in a way no command words.
    const dir = tempDir();
    mkdirSync(join(dir, 'mesh.yaml'));
    const r = await meshwork(['validate', dir]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([
      expect.stringMatching(/^meshwork validate: unexpected error: EISDIR/),
      'run with MESHWORK_DEBUG=1 for the stack',
    ]);
    const debug = await meshwork(['validate', dir], { env: { MESHWORK_DEBUG: '1' } });
    expect(debug.stderr).toMatch(/\n\s+at /);
  });
});
