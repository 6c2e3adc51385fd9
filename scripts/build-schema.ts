/**
 * Writes schema/routes.schema.json from the zod schema. Editors using yaml-language-server pick
 * it up through the modeline at the top of routes/*.yaml. A unit test fails if it is stale.
 *
 *   npm run build:schema
 */
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { routesJsonSchema } from '../src/config/json-schema.ts';

const out = resolve(dirname(fileURLToPath(import.meta.url)), '../schema/routes.schema.json');
writeFileSync(out, `${JSON.stringify(routesJsonSchema(), null, 2)}\n`);
console.log(`wrote ${out}`);
