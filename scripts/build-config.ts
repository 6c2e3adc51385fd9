/**
 * Compiles routes/ into src/generated/mesh-config.json, which the gateway and the services
 * bundle. Wrangler runs this as the [build] command, so a deploy ships exactly what routes/
 * holds, and an invalid routes/ fails the deploy before anything is uploaded.
 *
 *   tsx scripts/build-config.ts [routes-dir] [--check-bindings <wrangler config>]
 *
 * With --check-bindings (the gateway's build), every binding the routes can send traffic to
 * must be declared in that wrangler config.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { missingGatewayBindings } from '../src/node/config/bindings.ts';
import { bundleRoutesDir } from '../src/node/config/load-dir.ts';
import { formatIssue } from '../src/config/validate.ts';
import { buildUi } from './build-ui.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { 'check-bindings': { type: 'string' } },
});
const dir = positionals[0] ?? process.env.MESHWORK_ROUTES ?? resolve(root, 'routes');
const out = resolve(root, 'src/generated/mesh-config.json');

try {
  // Under `npm run dev` (MESHWORK_DEV=1) URL backends on this machine are allowed.
  const result = await bundleRoutesDir(dir, { dev: process.env.MESHWORK_DEV === '1' });
  const bindingErrors =
    result.ok && values['check-bindings']
      ? await missingGatewayBindings(result.bundle.config, values['check-bindings'])
      : [];
  if (!result.ok || bindingErrors.length > 0) {
    const errors = result.ok ? bindingErrors : result.errors.map(formatIssue);
    for (const e of errors) console.error(e);
    // Under `npm run dev` a bad edit must not take the running mesh down: keep serving the last
    // good config and say so. A deploy (or a first build with nothing to keep) fails instead.
    if (process.env.MESHWORK_DEV === '1' && existsSync(out)) {
      console.error(`meshwork: ${errors.length} error(s) in ${dir}; still serving the last valid config`);
      process.exit(0);
    }
    console.error(`meshwork: ${errors.length} error(s) in ${dir}; nothing was built`);
    process.exit(1);
  }
  const json = `${JSON.stringify(result.bundle)}\n`;
  // Unchanged output is not rewritten, so watchers (wrangler dev) do not rebuild for nothing.
  if (!existsSync(out) || readFileSync(out, 'utf8') !== json) {
    mkdirSync(dirname(out), { recursive: true });
    // Write then rename: several wrangler builds may run this at once (npm run dev).
    const tmp = `${out}.${process.pid}.tmp`;
    writeFileSync(tmp, json);
    renameSync(tmp, out);
  }
  // The dashboard's assets (ui/, cytoscape), which the gateway bundles beside the config.
  buildUi();
  const { services, routes } = result.bundle.config;
  console.log(
    `meshwork: built config ${result.bundle.version} (${Object.keys(services).length} services, ${routes.length} routes)`,
  );
} catch (e) {
  console.error(`meshwork: ${(e as Error).message}`);
  process.exit(1);
}
