/**
 * `npm pack` / `npm publish` (the prepack script): what the package ships beside src/.
 *  - the dashboard's assets (src/generated/ui-assets.ts; the package has no ui/ sources);
 *  - declarations for the worker API (`meshwork`, `meshwork/gateway`) in dist/types, so a user's
 *    tsc type-checks against .d.ts files, never against this repo's sources and settings.
 * Runtime code ships as TypeScript: wrangler (esbuild) compiles it with the user's worker, and
 * stack traces point at the real source.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT } from './bundle.ts';
import { buildUi } from '../src/node/project/ui-assets.ts';

buildUi();
const out = resolve(ROOT, 'dist/types');
rmSync(out, { recursive: true, force: true });
execFileSync(process.execPath, [resolve(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.types.json'], {
  cwd: ROOT,
  stdio: 'inherit',
});

// The sources import each other as './x.ts'; declarations must say './x.js' (which resolves
// to x.d.ts) or a user's tsc without allowImportingTsExtensions refuses them.
function rewrite(dir: string): number {
  let files = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files += rewrite(path);
    else if (name.endsWith('.d.ts')) {
      const text = readFileSync(path, 'utf8');
      writeFileSync(path, text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1$2.js$3'));
      files++;
    }
  }
  return files;
}
console.log(`meshwork: ${rewrite(out)} declaration files in dist/types`);
