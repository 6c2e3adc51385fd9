/**
 * The README's walk-through, run as written: shared by test/e2e/readme.test.ts and
 * scripts/readme-walkthrough.ts (which runs it against a user's own `npm run dev`).
 *
 * What is run. Every fenced code block in README.md that holds a shell session, i.e. at least
 * one line starting with `$ `, in document order, as ONE bash session (variables such as TOKEN
 * carry over from block to block). A block whose last non-blank line before the fence is
 * `<!-- readme-test: skip (why) -->` is not run (it needs a deployed gateway, say).
 *
 * Inside a block:
 *  - `$ <command>` is a command (a line ending in `\` continues on the next line);
 *  - the lines after it, up to the next `$ ` line or comment line (`#` alone or `# ...`) or the
 *    end of the block, are its expected output, stdout and stderr together as a terminal shows
 *    them. Blank lines inside the output belong to it; trailing blank lines do not count;
 *  - a command followed directly by the next command or a comment must print nothing;
 *  - comment lines are for the reader. (So an output line cannot start with `# `.)
 *
 * How output is compared (each line; after trailing whitespace, `\r` and ANSI colours are
 * dropped):
 *  - `…` inside a line matches any text within that line, empty included: what truly varies
 *    from run to run (request ids, config version hashes, times, the counts of a random split);
 *  - a line that is only `…` matches any number of lines, none included;
 *  - a tab or a run of two or more spaces matches any tab or run of two or more spaces, so a
 *    table whose columns grow with a value (a user name, a hash) still matches;
 *  - everything else is literal.
 *
 * What is substituted, in commands and expected output alike: `127.0.0.1:8787` (the dev port)
 * becomes the mesh under test, and `/tmp/` becomes a scratch directory of this run (so the
 * walk-through's copies of routes/ never touch anything else). The session also gets
 * MESHWORK_URL (the mesh under test: what the CLI would find by itself with one `npm run dev`
 * running), an empty MESH_ADMIN_TOKEN (the dev mesh's own token is used), LC_ALL=C and NO_COLOR.
 *
 * Waiting: no rule here waits or retries. Where the mesh needs time (an applied config reaches
 * the gateway within 2 x registry.refreshInterval), the README's command itself polls, bounded,
 * e.g. `for i in $(seq 15); do curl ... | grep ... && break; sleep 1; done`, so the reader's
 * terminal and the test see the same thing.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const WILDCARD = '…';
export const SKIP_MARKER = /^<!--\s*readme-test:\s*skip\b.*-->$/;
export const DEV_ADDRESS = '127.0.0.1:8787';

export interface Step {
  /** The command as written (continuation lines joined with newlines). */
  command: string;
  /** The expected output lines, as written. */
  expected: string[];
  /** 1-based line of the `$ ` in the README. */
  line: number;
}

export interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  /** The `##`/`###` heading the block is under. */
  heading: string;
  steps: Step[];
  /** Set when the block carries the skip marker: why. */
  skip?: string;
}

export class ReadmeError extends Error {}

const COMMENT = /^#( |$)/;

/** The shell-session blocks of a markdown text (blocks without a `$ ` line are left out). */
export function parseWalkthrough(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^#{1,6} /.test(line)) heading = line.replace(/^#+ /, '').trim();
    const fence = /^(`{3,})\S*\s*$/.exec(line);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && l.trimEnd() === fence[1]);
    if (end < 0) throw new ReadmeError(`line ${i + 1}: code block never closed`);
    const body = lines.slice(i + 1, end);
    const start = i;
    i = end;
    if (!body.some((l) => l.startsWith('$ '))) continue;
    let before = start - 1;
    while (before >= 0 && lines[before]!.trim() === '') before--;
    const marker = before >= 0 ? lines[before]!.trim() : '';
    const block: Block = { line: start + 1, heading, steps: parseSession(body, start + 2) };
    if (SKIP_MARKER.test(marker)) block.skip = marker.replace(/^<!--\s*readme-test:\s*skip\s*|\s*-->$/g, '') || 'skip';
    blocks.push(block);
  }
  return blocks;
}

function parseSession(body: string[], firstLine: number): Step[] {
  const steps: Step[] = [];
  let current: Step | undefined;
  for (let k = 0; k < body.length; k++) {
    const line = body[k]!;
    if (line.startsWith('$ ')) {
      const at = k;
      let command = line.slice(2);
      while (command.endsWith('\\') && k + 1 < body.length) command += `\n${body[++k]!}`;
      current = { command, expected: [], line: firstLine + at };
      steps.push(current);
    } else if (COMMENT.test(line)) {
      current = undefined;
    } else if (current) {
      current.expected.push(line);
    } else if (line.trim() !== '') {
      throw new ReadmeError(
        `line ${firstLine + k}: output without a command before it (a comment ends a command's output): ${line}`,
      );
    }
  }
  for (const s of steps) while (s.expected.length > 0 && s.expected.at(-1)!.trim() === '') s.expected.pop();
  return steps;
}

/** A line as shown: no ANSI colours, no trailing whitespace (nor `\r`). */
function plainLine(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\s+$/, '');
}

/** A line as compared: plain, and every tab or run of two or more spaces as two spaces. */
export function normalizeLine(line: string): string {
  return plainLine(line).replace(/(\t| {2,})[\t ]*/g, '  ');
}

function lineRegex(expected: string): RegExp {
  const parts = normalizeLine(expected).split(WILDCARD);
  return new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('.*?')}$`, 's');
}

export function lineMatches(expected: string, actual: string): boolean {
  return lineRegex(expected).test(normalizeLine(actual));
}

/** A command's output as lines, as shown: plain, trailing blank lines dropped. */
export function outputLines(text: string): string[] {
  const lines = text.split('\n').map(plainLine);
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines;
}

export interface Match {
  ok: boolean;
  /** When not ok: the first expected line (0-based) no alignment got past, and what was there. */
  expectedLine?: number;
  actualLine?: number;
}

/** Whether `actual` (a command's output) is what `expected` (README lines) shows. */
export function matchOutput(expected: string[], actual: string): Match {
  const want = expected.map((l) => (l.trim() === WILDCARD ? null : lineRegex(l)));
  const got = outputLines(actual).map(normalizeLine);
  const memo = new Map<number, boolean>();
  let furthest = { e: 0, a: 0 };
  const match = (e: number, a: number): boolean => {
    const key = e * (got.length + 1) + a;
    const known = memo.get(key);
    if (known !== undefined) return known;
    if (e > furthest.e || (e === furthest.e && a > furthest.a)) furthest = { e, a };
    let ok: boolean;
    if (e === want.length) ok = a === got.length;
    else if (want[e] === null) {
      ok = false;
      for (let k = a; k <= got.length && !ok; k++) ok = match(e + 1, k);
    } else ok = a < got.length && want[e]!.test(got[a]!) && match(e + 1, a + 1);
    memo.set(key, ok);
    return ok;
  };
  if (match(0, 0)) return { ok: true };
  return { ok: false, expectedLine: furthest.e, actualLine: furthest.a };
}

/** What a failed comparison looks like, for a test failure or the script's output. */
export function describeMismatch(expected: string[], actual: string, m: Match): string {
  const got = outputLines(actual);
  const show = (lines: string[], mark: number | undefined) =>
    lines.length === 0 ? '    (nothing)' : lines.map((l, i) => `${i === mark ? '  > ' : '    '}${l}`).join('\n');
  const where =
    m.expectedLine !== undefined && m.expectedLine < expected.length
      ? `expected line ${m.expectedLine + 1} (${JSON.stringify(expected[m.expectedLine])}) not matched at output line ${(m.actualLine ?? 0) + 1}`
      : `output goes on after the expected lines (from output line ${(m.actualLine ?? 0) + 1})`;
  return `${where}\n  expected:\n${show(expected, m.expectedLine)}\n  got:\n${show(got, m.actualLine)}`;
}

export interface Substitutions {
  /** host:port of the mesh under test, instead of 127.0.0.1:8787. */
  address: string;
  /** The scratch directory, instead of /tmp. */
  scratch: string;
}

export function substitute(text: string, s: Substitutions): string {
  return text
    .split(DEV_ADDRESS)
    .join(s.address)
    .replace(/(^|[\s'"=(:])\/tmp\//gm, (_m, pre: string) => `${pre}${s.scratch}/`);
}

export interface StepResult {
  block: Block;
  step: Step;
  /** The command as run (substituted). */
  command: string;
  /** The expected lines as compared (substituted). */
  expected: string[];
  /** The command's output (stdout and stderr together); undefined if it never ran. */
  output: string | undefined;
  match: Match;
}

export interface RunOptions {
  /** The mesh under test, e.g. http://127.0.0.1:41234. */
  url: string;
  /** Where commands run: the repository root (routes/, meshwork.yaml). */
  cwd: string;
  /** The whole session's limit; steps not reached by then are reported as not run. */
  timeoutMs: number;
  /** Called as each step finishes (the script prints as it goes). */
  onStep?: (result: StepResult) => void;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs the blocks' steps (skipped blocks left out) as one bash script, with a marker printed
 * before each command, and compares each command's output with its expected lines.
 */
export async function runWalkthrough(blocks: Block[], options: RunOptions): Promise<StepResult[]> {
  const scratch = mkdtempSync(join(tmpdir(), 'meshwork-readme-'));
  const address = new URL(options.url).host;
  const subs: Substitutions = { address, scratch };
  const steps = blocks.filter((b) => !b.skip).flatMap((block) => block.steps.map((step) => ({ block, step })));
  const nonce = randomBytes(8).toString('hex');
  const marker = (i: number) => `<<readme-step-${nonce}-${i}>>`;
  const script = [
    'exec 2>&1',
    ...steps.flatMap(({ step }, i) => [`printf '\\n%s\\n' '${marker(i)}'`, substitute(step.command, subs)]),
    `printf '\\n%s\\n' '${marker(steps.length)}'`,
    '',
  ].join('\n');
  const file = join(scratch, 'walkthrough.sh');
  writeFileSync(file, script);

  const results: StepResult[] = [];
  const finish = (i: number, output: string | undefined) => {
    const { block, step } = steps[i]!;
    const expected = step.expected.map((l) => substitute(l, subs));
    const match: Match = output === undefined ? { ok: false } : matchOutput(expected, output);
    const r: StepResult = { block, step, command: substitute(step.command, subs), expected, output, match };
    results.push(r);
    options.onStep?.(r);
  };

  const child = spawn('bash', [file], {
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: a timeout takes every command down with it
    env: {
      ...process.env,
      ...options.env,
      MESHWORK_URL: options.url,
      MESH_ADMIN_TOKEN: '',
      LC_ALL: 'C',
      NO_COLOR: '1',
      npm_config_update_notifier: 'false',
    },
  });
  let buffer = '';
  let next = 0; // the marker awaited next
  const consume = () => {
    for (;;) {
      const m = buffer.indexOf(`\n${marker(next)}\n`);
      if (m < 0) return;
      if (next > 0) finish(next - 1, buffer.slice(0, m));
      buffer = buffer.slice(m + marker(next).length + 2);
      next++;
    }
  };
  child.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString();
    consume();
  });
  child.stderr!.on('data', (d: Buffer) => (buffer += d.toString()));
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }, options.timeoutMs);
  await new Promise<void>((resolve) => child.on('close', () => resolve()));
  clearTimeout(timer);
  rmSync(scratch, { recursive: true, force: true });
  consume();
  // A step that started but never finished (the session timed out) shows what it printed so far.
  if (next > 0 && next <= steps.length) finish(next - 1, `${buffer}\n(timed out after ${options.timeoutMs} ms)`);
  for (let i = Math.max(next, results.length); i < steps.length; i++) finish(i, undefined);
  return results;
}

/** One step's result as the script prints it and a test failure shows it. */
export function formatResult(r: StepResult, options: { showOutput?: boolean } = {}): string {
  const where = `README.md:${r.step.line}`;
  const cmd = r.command
    .split('\n')
    .map((l, i) => (i === 0 ? `$ ${l}` : `  ${l}`))
    .join('\n');
  if (r.output === undefined) return `${cmd}\n  not run (${where}): the session ended before it`;
  const out = options.showOutput ? outputLines(r.output).join('\n') : '';
  if (r.match.ok) return `${cmd}${out ? `\n${out}` : ''}\n  ok (${where})`;
  return `${cmd}\n  DIFFERS from ${where}: ${describeMismatch(r.expected, r.output, r.match)}`;
}
