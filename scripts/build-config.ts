/**
 * `npm run build:config`: `meshwork build` for this checkout (routes/ into
 * .meshwork/mesh-config.json, and the dashboard's assets), as the tests and the typecheck need
 * it. MESHWORK_ROUTES points it at another routes directory.
 *
 *   tsx scripts/build-config.ts [routes-dir] [--worker <wrangler config>]...
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildProject } from '../src/node/project/build.ts';
import { loadProject } from '../src/node/project/project.ts';
import { ROOT } from './bundle.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { worker: { type: 'string', multiple: true } },
});
try {
  const project = loadProject(ROOT);
  const dir = positionals[0] ?? process.env.MESHWORK_ROUTES;
  if (dir) project.routesDir = resolve(dir);
  const result = await buildProject(project, {
    dev: process.env.MESHWORK_DEV === '1',
    workers: values.worker ?? [],
  });
  for (const w of result.warnings) console.error(`warning: ${w}`);
  if (!result.ok) {
    for (const e of result.errors) console.error(e);
    console.error(`meshwork: ${result.errors.length} error(s); nothing was built`);
    process.exit(1);
  }
  const { services, routes } = result.bundle!.config;
  console.log(
    `meshwork: built config ${result.bundle!.version} (${Object.keys(services).length} services, ${routes.length} routes)`,
  );
} catch (e) {
  console.error(`meshwork: ${(e as Error).message}`);
  process.exit(1);
}
