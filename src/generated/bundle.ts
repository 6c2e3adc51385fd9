/**
 * The routes/ directory as compiled by `npm run build:config` (wrangler's [build] command runs
 * it, and so do the tests), so what is in routes/ at deploy time is what runs.
 */
import type { MeshBundle } from '../config/schema.ts';
import data from './mesh-config.json';

export const bundledConfig = data as unknown as MeshBundle;
