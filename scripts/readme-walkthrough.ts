/**
 * Runs the README's walk-through against your running `npm run dev`, printing each command,
 * its output and whether it is what the README shows:
 *
 *   npx tsx scripts/readme-walkthrough.ts [--url http://127.0.0.1:8787] [--readme README.md] [-q]
 *
 * The rules (what runs, how `…` matches) are in test/support/readme.ts; test/e2e/readme.test.ts
 * runs the same against a mesh of its own. The walk-through applies a config to the mesh and
 * rolls it back to the bundled routes; its copies of routes/ go to a scratch directory. The
 * README shows a first run: against a mesh that has seen an apply before, revision numbers in
 * `apply` and `history` differ (start with a fresh state: `npm run dev -- --persist-to $(mktemp -d)`).
 * Exit code 0 when every command matched, 1 when one did not, 2 on a usage error.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatResult, outputLines, parseWalkthrough, runWalkthrough } from '../test/support/readme.ts';

const ROOT = resolve(import.meta.dirname, '..');

async function main(): Promise<number> {
  let values: { url?: string | undefined; readme?: string | undefined; quiet?: boolean | undefined; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: 'string' },
        readme: { type: 'string' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    console.error(`readme-walkthrough: ${(e as Error).message}`);
    return 2;
  }
  if (values.help) {
    console.log(
      'usage: npx tsx scripts/readme-walkthrough.ts [--url http://127.0.0.1:8787] [--readme README.md] [-q]\n' +
        "Runs README.md's shell sessions against the running mesh (npm run dev) and says, for each\n" +
        'command, whether its output is what the README shows. -q prints only the commands that differ.',
    );
    return 0;
  }
  const url = (values.url ?? process.env.MESHWORK_URL ?? 'http://127.0.0.1:8787').replace(/\/+$/, '');
  try {
    const res = await fetch(`${url}/_mesh/health`, { signal: AbortSignal.timeout(10_000) });
    await res.body?.cancel();
  } catch {
    console.error(`readme-walkthrough: nothing answers at ${url}: start the mesh with \`npm run dev\` (or pass --url)`);
    return 1;
  }
  const readme = resolve(values.readme ?? resolve(ROOT, 'README.md'));
  const blocks = parseWalkthrough(readFileSync(readme, 'utf8'));
  for (const b of blocks.filter((x) => x.skip))
    console.log(`(skipping the block at README.md:${b.line} under "${b.heading}": ${b.skip})`);
  console.log(`running the README's walk-through against ${url}\n`);
  let heading = '';
  const results = await runWalkthrough(blocks, {
    url,
    cwd: ROOT,
    timeoutMs: 600_000,
    onStep: (r) => {
      if (values.quiet && r.match.ok) return;
      if (r.block.heading !== heading) {
        heading = r.block.heading;
        console.log(`== ${heading}\n`);
      }
      if (r.match.ok) {
        const out = outputLines(r.output ?? '').join('\n');
        console.log(`$ ${r.command}${out ? `\n${out}` : ''}\n  ok (README.md:${r.step.line})\n`);
      } else console.log(`${formatResult(r)}\n`);
    },
  });
  const failed = results.filter((r) => !r.match.ok).length;
  console.log(
    failed === 0
      ? `all ${results.length} commands printed what the README shows`
      : `${failed} of ${results.length} commands differ from the README\n` +
          '(it shows a first run: on a mesh that has had configs applied before, revision numbers differ;\n' +
          ' a fresh one: npm run dev -- --persist-to "$(mktemp -d)")',
  );
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
