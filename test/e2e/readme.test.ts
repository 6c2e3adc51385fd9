/**
 * The README's walk-through, run line by line against the local mesh started as `npm run dev`
 * starts it, each command's output compared with the output the README shows.
 *
 * The rules (test/support/readme.ts has them in full):
 *  - every code block of README.md with `$ ` lines is a shell session; all of them run in
 *    document order as ONE bash session in the repository root (TOKEN set in one block is
 *    there in the next), unless the block is marked `<!-- readme-test: skip (why) -->`;
 *  - `$ cmd` is a command; the lines after it, up to the next `$ ` or `#` comment line, are its
 *    output (stdout and stderr together); a command followed directly by another or by a
 *    comment must print nothing;
 *  - `…` in a line matches any text within the line; a line of just `…` any number of lines;
 *    a tab or run of 2+ spaces matches any such run (table columns); trailing whitespace and
 *    `\r` are ignored; the rest is literal;
 *  - `127.0.0.1:8787` means the mesh under test (its free port), `/tmp/` a scratch directory of
 *    this run: nothing outside it is written (the live-change flow edits a copy of routes/);
 *  - no waiting or retrying here: where the mesh needs time, the README's own command polls
 *    (bounded), so the test sees what the reader's terminal does; no timing is asserted.
 *
 * A fresh mesh (new state directory) for the whole session: the README shows a first run
 * (revision 1 is the first apply, the rate-limit bucket of a new user is full).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, type RunningMesh } from '../support/mesh-process.ts';
import { formatResult, parseWalkthrough, runWalkthrough, type StepResult } from '../support/readme.ts';

const blocks = parseWalkthrough(readFileSync('README.md', 'utf8'));
let mesh: RunningMesh;
let results: StepResult[] = [];

beforeAll(async () => {
  mesh = await startMesh();
  results = await runWalkthrough(blocks, { url: mesh.url, cwd: process.cwd(), timeoutMs: 300_000 });
}, 480_000);

afterAll(async () => {
  await mesh?.stop();
});

describe('README.md walk-through, run as written', () => {
  it('has the sessions it documents', () => {
    const run = blocks.filter((b) => !b.skip);
    // The walk-through, the live change, validate, the metrics: a block dropped by a parser
    // change (or a broken fence) must not pass silently.
    expect(run.length).toBeGreaterThanOrEqual(4);
    expect(run.flatMap((b) => b.steps.map((s) => s.command))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^npx meshwork diff -f \/tmp\/live/),
        expect.stringMatching(/^npx meshwork apply -f \/tmp\/live/),
        'npx meshwork history',
        'npx meshwork rollback --to-bundled',
      ]),
    );
    expect(results).toHaveLength(run.reduce((n, b) => n + b.steps.length, 0));
  });

  it('every command prints what the README shows', () => {
    const failed = results.filter((r) => !r.match.ok);
    const report = failed.map((r) => formatResult(r)).join('\n\n');
    expect(failed.length, `${failed.length} of ${results.length} README commands differ:\n\n${report}`).toBe(0);
  });
});
