/**
 * What `meshwork/config` resolves to when a worker's wrangler config does not alias it to the
 * compiled routes: a worker that would route by nothing fails at start-up and says why, rather
 * than answering 404 to everything.
 */
import type { MeshBundle } from '../config/schema.ts';

throw new Error(
  'meshwork: this worker was bundled without its mesh config. Add to its wrangler config\n' +
    '  [alias]\n  "meshwork/config" = "<path to the project root>/.meshwork/mesh-config.json"\n' +
    'and build with `npx meshwork build` (`npx meshwork init` and `meshwork add service` write both).',
);

// Never reached: gives the import its type.
const config: MeshBundle = undefined as never;
export default config;
